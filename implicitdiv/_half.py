"""float16 and bfloat16 inputs: computed in float32, returned in the input dtype.

Only the Triton pairwise kernels take half-precision tensors themselves (tensor cores with float32
accumulation, implicitdiv/fused/triton/pairwise.py); every other backend (the C++ kernels, the
Triton loss kernels, the reference) gets the inputs converted to float32, and the results are
rounded back to the input dtype. The conversions are autograd ops, so gradients come back in the
input dtype too.
"""
from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import TypeVar

import torch

from .backend import resolve

HALF = (torch.float16, torch.bfloat16)
F = TypeVar("F", bound=Callable)


def _tensors(args, kwargs):
    return [a for a in (*args, *kwargs.values()) if isinstance(a, torch.Tensor) and a.is_floating_point()]


def _cast(value, dtype, memo=None):
    """value with its floating tensors in dtype; one tensor passed twice (kernel_sum(x, x)) stays one."""
    if isinstance(value, torch.Tensor):
        if not value.is_floating_point():
            return value
        if memo is None:
            return value.to(dtype)
        if id(value) not in memo:
            memo[id(value)] = value.to(dtype)
        return memo[id(value)]
    if isinstance(value, tuple):
        return tuple(_cast(v, dtype, memo) for v in value)
    return value


def half_in_float32(function: str, native=None) -> Callable[[F], F]:
    """Decorator of a public function whose first argument is a tensor: half-precision inputs (all of
    one dtype; mixed dtypes are left for the function's own check to reject) run in float32 unless
    native(resolved backend, keyword arguments, dtype, whether a gradient is wanted) says the
    backend takes them as they are."""

    def wrap(fn: F) -> F:
        first_name = next(iter(inspect.signature(fn).parameters))

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            first = args[0] if args else kwargs.get(first_name)
            if not isinstance(first, torch.Tensor) or first.dtype not in HALF:
                return fn(*args, **kwargs)
            dtype = first.dtype
            if any(t.dtype != dtype for t in _tensors(args, kwargs) if t is not kwargs.get("bandwidth")):
                return fn(*args, **kwargs)
            grad = torch.is_grad_enabled() and any(t.requires_grad for t in _tensors(args, kwargs))
            if native is not None and native(resolve(kwargs.get("backend"), function, first.device), kwargs, dtype, grad):
                return fn(*args, **kwargs)
            memo: dict = {}
            up = [_cast(a, torch.float32, memo) for a in args]
            up_kw = {k: (v if k == "bandwidth" else _cast(v, torch.float32, memo)) for k, v in kwargs.items()}
            return _cast(fn(*up, **up_kw), dtype)

        return wrapper  # type: ignore[return-value]

    return wrap


def triton_pairwise(backend: str, kwargs, dtype: torch.dtype, grad: bool) -> bool:
    """The Triton pairwise kernels take half-precision tensors (the linear-time MMD runs the reference),
    but not float16 when a gradient is wanted: with float16's range the point gradients of a wide
    kernel fall below its smallest normal number, where the kernels' float16 operands lost digits
    (measured: 3.6 % off, or flushed to 0, at bandwidths of 1e3; tests/test_pairwise_triton.py), so
    a training pass on float16 inputs runs in float32. bfloat16 has float32's range."""
    if backend != "triton" or kwargs.get("estimator", "biased") == "linear":
        return False
    return not (grad and dtype == torch.float16)
