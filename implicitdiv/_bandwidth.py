"""Learned bandwidths: the gradient of a kernel sum with respect to a bandwidth given as a tensor
that requires grad (MMD-GAN-style trainers, a trainable sigma), from the gradient with respect to
the points that every fused pass computes.

A bandwidth only rescales distances: k_sigma(x, y) = k_sigma0(r x, r y) with r = (sigma0 / sigma)^p,
p = 1 for rbf (||x - y||^2 / sigma^2) and laplacian (||x - y|| / sigma), p = 1/2 for imq
(||x - y||^2 / sigma). So the sum at sigma is the sum at the fixed value sigma0 of sigma over the
points c + r (x - c), for any center c, and

    d out / d sigma = -(p / sigma) sum_i (x_i - c) . d out / d x_i      (y likewise)

which autograd forms from the fused ops' point gradients when the points are passed as
x + (x - c) (r - 1): the same values (r - 1 is exactly 0), with r carrying sigma's gradient. A
mixture of bandwidths runs one pass per bandwidth. "energy" and "linear" have no scale: their
result does not depend on the bandwidth.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch

SCALE_POWER = {"rbf": 1.0, "laplacian": 1.0, "imq": 0.5}


def learned(bandwidth) -> torch.Tensor | None:
    """The bandwidth as a 1-dim tensor when grad mode is on and it (or an entry of a sequence of
    tensors) requires grad; else None."""
    if not torch.is_grad_enabled():
        return None
    if isinstance(bandwidth, torch.Tensor):
        return bandwidth.reshape(-1) if bandwidth.requires_grad else None
    if isinstance(bandwidth, Sequence) and not isinstance(bandwidth, str):
        if any(isinstance(v, torch.Tensor) and v.requires_grad for v in bandwidth):
            entries = [v if isinstance(v, torch.Tensor) else torch.tensor(float(v)) for v in bandwidth]
            if any(v.numel() != 1 for v in entries):
                raise ValueError("bandwidth entries must be numbers or one-element tensors")
            dtype = torch.promote_types(torch.float32, entries[0].dtype)
            return torch.stack([v.reshape(()).to(dtype) for v in entries])
    return None


def center(*points: torch.Tensor) -> torch.Tensor:
    """The mean of the rows of the given (..., N, d) point sets, detached: (..., 1, d)."""
    rows = torch.cat([p.detach() for p in points], -2)
    return rows.mean(-2, keepdim=True)


def rescaled(points: torch.Tensor, c: torch.Tensor, sigma: torch.Tensor, kernel: str) -> torch.Tensor:
    """points, with the same values, as c + r (points - c), r = (sigma0 / sigma)^p carrying sigma's
    gradient (sigma0 its value)."""
    r = (sigma.detach() / sigma) ** SCALE_POWER[kernel]
    return points + (points - c) * (r - 1.0).to(points.dtype)
