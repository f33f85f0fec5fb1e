"""Naive kernel matrices: the ground truth every fused pairwise kernel is compared with.

All kernels are written as a map of the pair's squared distance s = ||x - y||^2, except "linear"
and "polynomial", maps of the dot product s = x.y.

A kernel's parameters travel as one tuple of floats, `params` (the public functions' bandwidth,
degree, gamma and coef0, resolved by implicitdiv._validate.kernel_parameters):
  rbf, laplacian, imq   the bandwidths sigma, the kernel being the sum over them
  energy, linear        unused (no scale)
  polynomial            (gamma, coef0, degree), degree a whole number >= 1
The kernel names, and the code of each in the fused backends, come from implicitdiv._codes.
"""
from __future__ import annotations

import torch

from .._codes import KERNELS


def squared_distances(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """s_ij = sum_k (x_ik - y_jk)^2 from explicit differences (exact for near points).

    x: (..., N, d), y: (..., M, d) -> (..., N, M).
    """
    diff = x.unsqueeze(-2) - y.unsqueeze(-3)
    return (diff * diff).sum(-1)


def _safe_sqrt(s: torch.Tensor) -> torch.Tensor:
    """sqrt(s) whose gradient at s = 0 is 0 (the symmetric subgradient) instead of inf/NaN."""
    positive = s > 0
    return torch.where(positive, torch.sqrt(torch.where(positive, s, torch.ones_like(s))), torch.zeros_like(s))


def polynomial(dot: torch.Tensor, params: tuple[float, ...]) -> torch.Tensor:
    """(gamma dot + coef0)^degree, params = (gamma, coef0, degree)."""
    gamma, coef0, degree = params
    return (gamma * dot + coef0) ** int(degree)


def kernel_matrix(x: torch.Tensor, y: torch.Tensor, kernel: str, bandwidths: tuple[float, ...]) -> torch.Tensor:
    """K_ij = sum over bandwidths sigma of k_sigma(x_i, y_j).

    rbf:       exp(-s / (2 sigma^2))
    laplacian: exp(-sqrt(s) / sigma)
    imq:       C / (C + s), C = sigma
    energy:    -sqrt(s)            (no scale: one term whatever the bandwidths)
    linear:    x_i . y_j           (no scale: one term whatever the bandwidths)
    polynomial: (gamma x_i . y_j + coef0)^degree with (gamma, coef0, degree) = bandwidths
    """
    if kernel == "linear":
        return x @ y.transpose(-1, -2)
    if kernel == "polynomial":
        return polynomial(x @ y.transpose(-1, -2), bandwidths)
    s = squared_distances(x, y)
    if kernel == "energy":
        return -_safe_sqrt(s)
    total = None
    for sigma in bandwidths:
        if kernel == "rbf":
            k = torch.exp(-s / (2.0 * sigma * sigma))
        elif kernel == "laplacian":
            k = torch.exp(-_safe_sqrt(s) / sigma)
        elif kernel == "imq":
            k = sigma / (sigma + s)
        else:
            raise ValueError(f"kernel must be one of {KERNELS}, got {kernel!r}")
        total = k if total is None else total + k
    return total


def kernel_diagonal(x: torch.Tensor, kernel: str, bandwidths: tuple[float, ...]) -> torch.Tensor:
    """k(x_i, x_i) for every row: (..., N)."""
    if kernel == "linear":
        return (x * x).sum(-1)
    if kernel == "polynomial":
        return polynomial((x * x).sum(-1), bandwidths)
    if kernel == "energy":
        return torch.zeros(x.shape[:-1], dtype=x.dtype, device=x.device)
    return torch.full(x.shape[:-1], float(len(bandwidths)), dtype=x.dtype, device=x.device)


def paired_kernel(x: torch.Tensor, y: torch.Tensor, kernel: str, bandwidths: tuple[float, ...]) -> torch.Tensor:
    """k(x_i, y_i) row by row (used by the linear-time MMD): (..., N)."""
    return kernel_matrix(x.unsqueeze(-2), y.unsqueeze(-2), kernel, bandwidths).squeeze(-1).squeeze(-1)
