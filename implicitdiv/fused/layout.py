"""How the elementwise-plus-row-sum kernels (Gaussian terms) address their inputs' rows."""
from __future__ import annotations

import torch


def row_stride(x: torch.Tensor) -> int:
    """Elements between consecutive rows of x (..., d): d for a contiguous tensor, whatever its
    shape (its rows follow one another); else x must be a (rows, d) view with unit column stride,
    and it is x.stride(0) (0 for an input broadcast over rows)."""
    return x.shape[-1] if x.is_contiguous() else x.stride(0)


def addressable(x: torch.Tensor) -> bool:
    """Whether row_stride describes x: contiguous, or (rows, d) with unit column stride."""
    return x.is_contiguous() or (x.dim() == 2 and (x.shape[1] == 1 or x.stride(1) == 1))
