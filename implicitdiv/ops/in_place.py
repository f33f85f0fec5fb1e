"""The fused backwards' last step: the derivatives saved by the forward, which the backward owns,
scaled (and shifted) by the upstream gradients in place, so they become the input gradients
without a new buffer.

Upstreams are tensors, or Python numbers: a 0-dim CPU upstream outside torch.compile is read as a
number (no device sync, no graph break), and then the backend's one-pass scale_shift_ does the
work, and an upstream of exactly 1 (loss.backward() of the loss itself) costs nothing.
"""
from __future__ import annotations

import torch


def cpu_eager(grads) -> bool:
    """Whether every upstream gradient is a CPU tensor outside torch.compile."""
    return not torch.compiler.is_compiling() and all(g.device.type == "cpu" for g in grads)


def _number(g):
    """g as a Python number where it is a 0-dim CPU tensor outside torch.compile, else as it is."""
    if isinstance(g, torch.Tensor) and g.dim() == 0 and cpu_eager((g,)):
        return float(g)
    return g


def scale_in_place(d: torch.Tensor, g, kernels) -> torch.Tensor:
    """d * g written over d; kernels is the backend's kernel module (its scale_shift_)."""
    g = _number(g)
    if isinstance(g, torch.Tensor):
        return d.mul_(g)
    return d if g == 1 else kernels.scale_shift_(d, g, 0.0)


def affine_in_place(d: torch.Tensor, a, b, kernels) -> torch.Tensor:
    """d * a + b written over d (b None: d * a); an exact 0 shift (the other output's upstream
    gradient is zero) or unit scale is skipped."""
    if b is None:
        return scale_in_place(d, a, kernels)
    a, b = _number(a), _number(b)
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return d.mul_(a).add_(b)
    if b == 0:
        return scale_in_place(d, a, kernels)
    return kernels.scale_shift_(d, a, b)
