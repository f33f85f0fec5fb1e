"""Backend selection: "reference" (naive PyTorch), "cpp" (fused C++ on CPU tensors), "triton"
(fused Triton on CUDA tensors, or CPU tensors under TRITON_INTERPRET=1) and "auto" (the default:
triton on CUDA, cpp on CPU, else the reference with one warning per function)."""
from __future__ import annotations

import importlib
import importlib.util
import os
import warnings

import torch

from .ops import registry

BACKENDS = ("reference", "cpp", "triton", "auto")

_global_default = ["auto"]
_warned: set[str] = set()


def _importable(module: str) -> bool:
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


# probed once at import, so that torch.compile, tracing resolve(), reads a constant instead of an import
_CPP_BUILT = _importable("implicitdiv._C")


def cpp_built() -> bool:
    return _CPP_BUILT


def triton_interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


# likewise probed once at import, without importing triton (TRITON_INTERPRET is read at its import)
_TRITON_INSTALLED = importlib.util.find_spec("triton") is not None


def triton_installed() -> bool:
    return _TRITON_INSTALLED


def backends(function: str | None = None) -> tuple[str, ...]:
    """The backends usable in this process, "reference" first; with ``function`` (a public
    function's name, e.g. "mmd2"), only those with a fused op for it."""
    found = ["reference"]
    if cpp_built():
        found.append("cpp")
    if triton_installed() and (torch.cuda.is_available() or triton_interpreting()):
        found.append("triton")
    if function is not None:
        found = [b for b in found if b == "reference" or registry.has(b, function)]
    return tuple(found)


def current_backend() -> str:
    return _global_default[0]


class use_backend:
    """Set the default backend: ``use_backend("cpp")`` sets it for the process, and
    ``with use_backend("reference"): ...`` sets it for the block and restores the previous one."""

    def __init__(self, name: str):
        if name not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {name!r}")
        self._previous = _global_default[0]
        _global_default[0] = name

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        _global_default[0] = self._previous
        return False


def _device_ok(backend: str, device: torch.device) -> bool:
    if backend == "cpp":
        return device.type == "cpu" and cpp_built()
    if backend == "triton":
        if not triton_installed():
            return False
        return device.type == "cuda" or (device.type == "cpu" and triton_interpreting())
    return False


# (backend asked for, function, device type) -> backend, for the outcomes that neither warn nor raise:
# every call of a public function resolves its backend, which small calls feel.
_resolved: dict[tuple[str, str, str], str] = {}


def resolve(backend: str | None, function: str, device: torch.device) -> str:
    """The backend that runs ``function`` on tensors of ``device``."""
    name = current_backend() if backend is None else backend
    key = (name, function, device.type)
    found = _resolved.get(key)
    if found is not None:
        return found
    found = _resolve(name, function, device)
    if name != "auto" or found != "reference":  # an auto fallback warns once; not memoized
        _resolved[key] = found
    return found


def _resolve(name: str, function: str, device: torch.device) -> str:
    if name not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {name!r}")
    if name == "reference":
        return name
    if name == "auto":
        preferred = "triton" if device.type == "cuda" else "cpp"
        if _device_ok(preferred, device) and registry.has(preferred, function):
            return preferred
        if function not in _warned:
            _warned.add(function)
            warnings.warn(
                f"implicitdiv: no fused {function} for {device.type} tensors here; using the reference",
                RuntimeWarning,
                stacklevel=4,
            )
        return "reference"
    if not _device_ok(name, device):
        where = {"cpp": "CPU tensors and a built implicitdiv._C", "triton": "CUDA tensors, or CPU tensors with TRITON_INTERPRET=1"}[name]
        raise RuntimeError(f"backend={name!r} needs {where}; got tensors on {device}")
    if not registry.has(name, function):
        raise NotImplementedError(f"backend={name!r} has no fused {function} yet; use backend='reference' or 'auto'")
    return name
