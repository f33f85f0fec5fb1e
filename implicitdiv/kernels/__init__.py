"""Backend kernels. Each backend package (cpp/, triton/) exposes, per op family, module-level
functions with one protocol, so one autograd Function in implicitdiv.ops serves both."""
import importlib


def load(backend: str, family: str):
    """The kernel module of ``family`` ("pairwise", "ratio", "gaussian") for ``backend``."""
    return importlib.import_module(f"implicitdiv.kernels.{backend}.{family}")
