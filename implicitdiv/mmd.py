"""Public MMD estimators: mmd2, the median bandwidth heuristic and the permutation two-sample test."""
from __future__ import annotations

import functools
import operator

import torch
from torch import Tensor

from . import _bandwidth
from . import _validate as check
from ._types import Bandwidth
from ._half import half_in_float32, triton_pairwise
from .backend import resolve
from .ops import pairwise as ops
from .reference import pairwise as ref
from .reference.kernels import KERNELS
from .statistics import median_as_bandwidths, median_distance, permutation_test

ESTIMATORS = ("biased", "unbiased", "linear")


@half_in_float32("mmd2", native=triton_pairwise)
def mmd2(x: Tensor, y: Tensor, *, kernel: str = "rbf", bandwidth: Bandwidth = 1.0, estimator: str = "biased",
         backend: str | None = None, precision: str = "ieee", degree: int = 3, gamma: float | None = None,
         coef0: float = 1.0) -> Tensor:
    """Squared maximum mean discrepancy between the rows of x and y.

    biased (V-statistic):   1/N^2 sum_ij k(x_i,x_j) + 1/M^2 sum_ij k(y_i,y_j) - 2/(NM) sum_ij k(x_i,y_j)
    unbiased (U-statistic): 1/(N(N-1)) sum_{i!=j} k(x_i,x_j) + 1/(M(M-1)) sum_{i!=j} k(y_i,y_j)
                            - 2/(NM) sum_ij k(x_i,y_j)
    linear (Gretton et al. 2012, O(N)): the mean over the n2 = min(N, M) // 2 disjoint pairs of
                            k(x_2i,x_2i+1) + k(y_2i,y_2i+1) - k(x_2i,y_2i+1) - k(x_2i+1,y_2i)

    x: (N, d) or (B, N, d); y: (M, d) or (B, M, d). Kernels, bandwidths, the polynomial kernel's
    degree, gamma and coef0, and precision as in kernel_sum.
    Returns a scalar, or (B,) for batched samples; NaN when the data hold a NaN or an Inf. The fused
    backends never build the N x M matrix. A bandwidth tensor that requires grad gets its gradient
    (implicitdiv._bandwidth); float16/bfloat16 inputs as in kernel_sum.
    """
    check.choice(kernel, "kernel", KERNELS)
    check.choice(estimator, "estimator", ESTIMATORS)
    sigma = _bandwidth.learned(bandwidth)
    if sigma is not None and kernel in _bandwidth.SCALE_POWER:
        check.matching_samples(x, y)
        c = _bandwidth.center(x, y)
        terms = [mmd2(_bandwidth.rescaled(x, c, sigma[k], kernel), _bandwidth.rescaled(y, c, sigma[k], kernel),
                      kernel=kernel, bandwidth=value, estimator=estimator, backend=backend, precision=precision)
                 for k, value in enumerate(check.bandwidths(sigma.detach()))]
        return functools.reduce(operator.add, terms)
    if sigma is not None:  # no scale: MMD^2 does not depend on the bandwidth
        bandwidth = sigma.detach()
    check.choice(precision, "precision", ops.PRECISIONS)
    check.matching_samples(x, y)
    bandwidths = check.kernel_parameters(kernel, bandwidth, x.shape[-1], degree, gamma, coef0)
    assert bandwidths is not None  # None only for bandwidth="median", which mmd2 does not take
    n, m = x.shape[-2], y.shape[-2]
    if estimator != "biased" and min(n, m) < 2:
        which = "x" if n < 2 else "y"
        raise ValueError(f"estimator={estimator!r} needs at least 2 samples in {which}, got {min(n, m)}")
    batched = x.dim() == 3
    xb, yb = (x, y) if batched else (x.unsqueeze(0), y.unsqueeze(0))
    name = resolve(backend, "mmd2", x.device)
    if name == "reference" or estimator == "linear":  # the linear estimate is O(N) elementwise already
        out = check.nan_unless_finite(ref.mmd2(xb, yb, kernel, bandwidths, estimator), xb, yb, batched=True)
    else:  # the fused ops apply the NaN rule in their own pass over the points
        out = ops.mmd2(xb, yb, kernel, bandwidths, estimator == "unbiased", name, precision)
    return out if batched else out[0]


def median_bandwidth(x: Tensor, y: Tensor) -> Tensor:
    """The median heuristic: sigma = median over distinct pairs of the pooled rows z = [x; y] of
    ||z_i - z_j|| (on an evenly spaced subset of 2048 rows when there are more). Returns a
    detached 0-dim tensor."""
    check.matching_samples(x, y)
    if x.dim() != 2:
        raise ValueError(f"median_bandwidth takes (N, d) samples, got x of shape {tuple(x.shape)}")
    if x.shape[0] + y.shape[0] < 2:
        raise ValueError("median_bandwidth needs at least 2 pooled samples")
    return median_distance(x, y)


@half_in_float32("mmd_test", native=triton_pairwise)
def mmd_test(x: Tensor, y: Tensor, *, kernel: str = "rbf", bandwidth: Bandwidth | str = "median", permutations: int = 1000,
             seed: int | None = None, backend: str | None = None, precision: str = "ieee", degree: int = 3,
             gamma: float | None = None, coef0: float = 1.0) -> tuple[Tensor, Tensor]:
    """Permutation two-sample test of H0: P = Q with the biased MMD^2 statistic.

    The observed labelling and `permutations` random relabelings of the pooled sample are the
    columns of one weight matrix W ((N + M) x (1 + permutations), +1/N for an "x" row and -1/M
    for a "y" row), so every statistic diag(W^T K W) comes from one pass over the pairs.
    p = (1 + #{null statistics >= observed}) / (1 + permutations).

    bandwidth: "median" (median_bandwidth of the pooled sample) or as in kernel_sum; degree, gamma,
    coef0 and precision as in kernel_sum.
    Returns (statistic, p_value) as 0-dim tensors.
    """
    check.choice(kernel, "kernel", KERNELS)
    check.matching_samples(x, y)
    if x.dim() != 2:
        raise ValueError(f"mmd_test takes (N, d) samples, got x of shape {tuple(x.shape)}")
    check.positive_int(permutations, "permutations")
    check.choice(precision, "precision", ops.PRECISIONS)
    bandwidths = check.kernel_parameters(kernel, bandwidth, x.shape[-1], degree, gamma, coef0, median_ok=True)
    if bandwidths is None:
        bandwidths = median_as_bandwidths(median_bandwidth(x, y))
    name = resolve(backend, "mmd_test", x.device)

    def sum_fn(z, w):
        return ops.kernel_sum_sym(z, w, kernel, bandwidths, False, name, precision)
    with torch.no_grad():
        x, y = x.detach(), y.detach()
        stat, p = permutation_test(x, y, permutations, seed, sum_fn)
        if name == "reference":
            return check.nan_unless_finite(stat, x, y), check.nan_unless_finite(p, x, y)
        return stat, p  # the fused sums apply the NaN rule; p_value keeps a NaN statistic
