"""float16 and bfloat16 inputs: computed in float32, returned in the input dtype.

Only the Triton pairwise kernels take half-precision tensors themselves (tensor cores with float32
accumulation, implicitdiv/kernels/triton/pairwise.py); every other backend (the C++ kernels, the
Triton loss kernels, the reference) gets the inputs converted to float32, and the results are
rounded back to the input dtype. The conversions are autograd ops, so gradients come back in the
input dtype too.
"""
from __future__ import annotations

import functools

import torch

from .backend import resolve

HALF = (torch.float16, torch.bfloat16)


def _tensors(args, kwargs):
    return [a for a in (*args, *kwargs.values()) if isinstance(a, torch.Tensor) and a.is_floating_point()]


def _cast(value, dtype):
    if isinstance(value, torch.Tensor):
        return value.to(dtype) if value.is_floating_point() else value
    if isinstance(value, tuple):
        return tuple(_cast(v, dtype) for v in value)
    return value


def half_in_float32(function: str, native=None):
    """Decorator of a public function whose first argument is a tensor: half-precision inputs (all of
    one dtype; mixed dtypes are left for the function's own check to reject) run in float32 unless
    native(resolved backend, keyword arguments) says the backend takes them as they are."""

    def wrap(fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            first = args[0] if args else None
            if not isinstance(first, torch.Tensor) or first.dtype not in HALF:
                return fn(*args, **kwargs)
            dtype = first.dtype
            if any(t.dtype != dtype for t in _tensors(args, kwargs) if t is not kwargs.get("bandwidth")):
                return fn(*args, **kwargs)
            if native is not None and native(resolve(kwargs.get("backend"), function, first.device), kwargs):
                return fn(*args, **kwargs)
            up = [_cast(a, torch.float32) for a in args]
            up_kw = {k: (v if k == "bandwidth" else _cast(v, torch.float32)) for k, v in kwargs.items()}
            if len(args) > 1 and args[1] is args[0]:  # keep x and y one tensor (the symmetric kernel sum)
                up[1] = up[0]
            for k in ("x_weights", "y_weights"):
                if k == "y_weights" and kwargs.get(k) is not None and kwargs.get(k) is kwargs.get("x_weights"):
                    up_kw[k] = up_kw["x_weights"]
            return _cast(fn(*up, **up_kw), dtype)

        return wrapper

    return wrap


def triton_pairwise(backend: str, kwargs) -> bool:
    """The Triton pairwise kernels take half-precision tensors (the linear-time MMD runs the reference)."""
    return backend == "triton" and kwargs.get("estimator", "biased") != "linear"
