"""Turning tensors into the raw buffers implicitdiv._C takes."""
from __future__ import annotations

import torch

from ... import _C

SUPPORTED = (torch.float32, torch.float64)


def prepare(t: torch.Tensor) -> torch.Tensor:
    """A contiguous CPU tensor of a supported dtype whose data_ptr can be handed to C++."""
    if t.device.type != "cpu":
        raise RuntimeError(f"the cpp backend takes CPU tensors, got {t.device}")
    if t.dtype not in SUPPORTED:
        raise TypeError(f"the cpp backend takes float32 or float64 tensors, got {t.dtype}")
    return t.contiguous()


def scale_shift_(d: torch.Tensor, a: float, b: float) -> torch.Tensor:
    """d <- a * d + b in place, in one pass (a contiguous CPU float32/float64 tensor; a, b numbers)."""
    _C.scale_shift(d.data_ptr(), d.numel(), float(a), float(b), torch.get_num_threads(), d.dtype == torch.float64)
    return d
