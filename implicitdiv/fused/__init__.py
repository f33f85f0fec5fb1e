"""The fused implementations (the compute kernels) behind the public functions. Each backend package
(cpp/, triton/) exposes, per op family, module-level functions with one protocol, so one autograd
Function in implicitdiv.ops serves both."""
import importlib


_loaded: dict = {}


def load(backend: str, family: str):
    """The kernel module of ``family`` ("pairwise", "ratio", "gaussian") for ``backend``, imported on
    first use (importlib's lookup costs microseconds a call, which small calls feel)."""
    module = _loaded.get((backend, family))
    if module is None:
        module = _loaded[(backend, family)] = importlib.import_module(f"implicitdiv.fused.{backend}.{family}")
    return module
