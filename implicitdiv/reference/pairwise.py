"""Naive pairwise estimators: kernel sums, MMD^2, the permutation test and the Gaussian-mixture
log-density. Each builds the full N x M matrix; they are the ground truth.

Shapes are the canonical ones the public layer hands down: x (B, N, d), y (B, M, d),
weights a (B, N, P), b (B, M, P); results (B, P).
"""
from __future__ import annotations

import math

import torch

from ..statistics import permutation_test
from .kernels import kernel_matrix, paired_kernel


def kernel_sum(x, y, a, b, kernel: str, bandwidths: tuple[float, ...]) -> torch.Tensor:
    """out_bp = sum_ij a_bip k(x_bi, y_bj) b_bjp."""
    k = kernel_matrix(x, y, kernel, bandwidths)
    return torch.einsum("bnp,bnm,bmp->bp", a, k, b)


def kernel_sum_sym(x, a, kernel: str, bandwidths: tuple[float, ...], exclude_diag: bool) -> torch.Tensor:
    """out_bp = sum_ij a_bip k(x_bi, x_bj) a_bjp, over i != j when exclude_diag."""
    return torch.einsum("bnp,bnm,bmp->bp", a, _self_matrix(x, kernel, bandwidths, exclude_diag), a)


def mmd2(x, y, kernel: str, bandwidths: tuple[float, ...], estimator: str) -> torch.Tensor:
    """MMD^2 between the rows of x (B, N, d) and y (B, M, d); result (B,).

    biased:   mean_ij k(x_i, x_j) + mean_ij k(y_i, y_j) - 2 mean_ij k(x_i, y_j)
    unbiased: the same with the i = j terms of the first two sums left out
              (divided by N(N-1) and M(M-1))
    linear:   mean over disjoint pairs i < n2 = min(N, M) // 2 of
              k(x_2i, x_2i+1) + k(y_2i, y_2i+1) - k(x_2i, y_2i+1) - k(x_2i+1, y_2i)
    """
    n, m = x.shape[-2], y.shape[-2]
    if estimator == "linear":
        h = min(n, m) // 2
        x0, x1 = x[..., 0 : 2 * h : 2, :], x[..., 1 : 2 * h : 2, :]
        y0, y1 = y[..., 0 : 2 * h : 2, :], y[..., 1 : 2 * h : 2, :]
        terms = (
            paired_kernel(x0, x1, kernel, bandwidths)
            + paired_kernel(y0, y1, kernel, bandwidths)
            - paired_kernel(x0, y1, kernel, bandwidths)
            - paired_kernel(x1, y0, kernel, bandwidths)
        )
        return terms.mean(-1)
    # the unbiased sums leave the diagonal out rather than subtract it: k(x_i, x_i) = 1 next to
    # off-diagonal values of 1e-28 would take every digit of theirs with it, even in float64
    unbiased = estimator == "unbiased"
    kxx = _self_matrix(x, kernel, bandwidths, unbiased).sum((-1, -2))
    kyy = _self_matrix(y, kernel, bandwidths, unbiased).sum((-1, -2))
    kxy = kernel_matrix(x, y, kernel, bandwidths).sum((-1, -2))
    if not unbiased:
        return kxx / (n * n) + kyy / (m * m) - 2.0 * kxy / (n * m)
    return kxx / (n * (n - 1)) + kyy / (m * (m - 1)) - 2.0 * kxy / (n * m)


def _self_matrix(x, kernel: str, bandwidths: tuple[float, ...], exclude_diag: bool) -> torch.Tensor:
    """k(x_i, x_j) (B, N, N), with 0 on the diagonal when exclude_diag."""
    k = kernel_matrix(x, x, kernel, bandwidths)
    if exclude_diag:
        k = k.masked_fill(torch.eye(x.shape[-2], dtype=torch.bool, device=x.device), 0.0)
    return k


def mmd_test(x, y, kernel: str, bandwidths: tuple[float, ...], permutations: int, seed):
    """Permutation two-sample test of the biased MMD^2 (implicitdiv.statistics.permutation_test) with
    the naive symmetric kernel sum."""
    return permutation_test(x, y, permutations, seed, lambda z, w: kernel_sum_sym(z, w, kernel, bandwidths, False))


LOG_2PI = math.log(2.0 * math.pi)


def gaussian_mixture_logpdf(z, means, logvars) -> torch.Tensor:
    """log (1/M) sum_j N(z_i; m_j, diag exp(lv_j)) for z (N, d), means and logvars (M, d): (N,)."""
    diff = z.unsqueeze(1) - means.unsqueeze(0)
    comp = -0.5 * (diff * diff * torch.exp(-logvars).unsqueeze(0) + logvars.unsqueeze(0) + LOG_2PI).sum(-1)
    return torch.logsumexp(comp, dim=1) - math.log(means.shape[0])
