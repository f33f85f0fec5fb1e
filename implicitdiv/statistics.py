"""Statistics shared by the estimators of every backend and of implicitdiv.distributed: the MMD^2
pair weights, the median heuristic's bandwidth, the permutation test's weight matrix and its p-value.
Not a backend: the reference, the fused path and the distributed path all read them from here."""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch


class MMD2Weights(NamedTuple):
    """MMD^2 = sum_ij xx k(x_i, x_j) xx + sum_ij yy k(y_i, y_j) yy + sum_ij cross_x k(x_i, y_j) cross_y."""
    xx: float
    yy: float
    cross_x: float
    cross_y: float


def mmd2_weights(n: int, m: int, unbiased: bool) -> MMD2Weights:
    """The constant pair weights of MMD^2 over N = n and M = m samples:

        biased:   xx = 1/N, yy = 1/M (the diagonal included)
        unbiased: xx = 1/sqrt(N(N-1)), yy = 1/sqrt(M(M-1)) (the diagonal left out)
        cross:    cross_x = 1/N, cross_y = -2/M.

    csrc/pairwise_bindings.cpp (mmd2_t) writes the same weights in C++."""
    xx = 1.0 / math.sqrt(n * (n - 1)) if unbiased else 1.0 / n
    yy = 1.0 / math.sqrt(m * (m - 1)) if unbiased else 1.0 / m
    return MMD2Weights(xx, yy, 1.0 / n, -2.0 / m)


MEDIAN_MAX_POINTS = 2048


def median_distance(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Median of ||z_i - z_j|| over the distinct pairs i < j of the pooled rows z = [x; y].

    Above MEDIAN_MAX_POINTS pooled rows, an evenly spaced subset of that many rows is used, so the
    cost stays bounded and the answer deterministic. Returns a detached 0-dim tensor.
    """
    z = torch.cat([x, y], dim=0).detach()
    if z.shape[0] > MEDIAN_MAX_POINTS:
        idx = torch.linspace(0, z.shape[0] - 1, MEDIAN_MAX_POINTS, device=z.device).round().long()
        z = z[idx]
    n = z.shape[0]
    iu = torch.triu_indices(n, n, offset=1, device=z.device)
    diff = z.unsqueeze(-2) - z.unsqueeze(-3)  # explicit differences: exact for near points
    return (diff * diff).sum(-1)[iu[0], iu[1]].sqrt().median()


def median_as_bandwidths(median) -> tuple[float, ...]:
    """The bandwidth tuple of bandwidth="median": the pooled median distance, an error when it is 0."""
    bw = float(median)
    if bw == 0.0:
        raise ValueError("bandwidth='median' is 0 because the pooled samples coincide; pass a number")
    return (bw if bw > 0 else 1.0,)  # NaN data: any bandwidth, the statistic is NaN anyway


def permutation_weights(n: int, m: int, permutations: int, seed, dtype, device) -> torch.Tensor:
    """(n + m, 1 + permutations) weights: column 0 labels the observed split, the others random
    relabelings. A row labelled "x" weighs 1/n and a row labelled "y" weighs -1/m, so that
    w^T K w is the biased MMD^2 of that labelling. Each relabeling shuffles the labels with numpy's
    PCG64 generator seeded with ``seed`` (numpy's Generator.permuted, a Fisher-Yates pass per
    column): same seed, same permutations, on any machine and device. torch offers only randperm
    and argsort of random keys, 20-30 ms each at n + m = 65536 here, i.e. 20-30 s for 1000."""
    seed = int(seed) if seed is not None else torch.seed() % (2**63)
    rng = np.random.Generator(np.random.PCG64(seed))
    order = np.tile(np.arange(n + m, dtype=np.int32), (1 + permutations, 1))
    rng.permuted(order[1:], axis=1, out=order[1:])
    x_weight, y_weight = torch.tensor(1.0 / n, dtype=dtype), torch.tensor(-1.0 / m, dtype=dtype)
    return torch.where(torch.from_numpy(order) < n, x_weight, y_weight).t().contiguous().to(device)


def p_value(stats: torch.Tensor) -> torch.Tensor:
    """stats[0] observed, stats[1:] under the null: (1 + #{null >= observed}) / (1 + P)."""
    null = stats[1:]
    if torch.isnan(stats[0]):
        return stats[0].clone()
    return (1.0 + (null >= stats[0]).sum().to(stats.dtype)) / (1.0 + null.numel())


def permutation_test(x: torch.Tensor, y: torch.Tensor, permutations: int, seed, sum_fn):
    """(statistic, p-value) of the permutation test of the biased MMD^2: every labelling is a column of
    one weight matrix W, and stats = diag(W^T K W) = sum_fn(z, W) is one symmetric kernel sum over the
    pooled sample z = [x; y] (sum_fn takes (1, N + M, d) points and (1, N + M, P) weights)."""
    z = torch.cat([x, y], dim=0)
    w = permutation_weights(x.shape[0], y.shape[0], permutations, seed, z.dtype, z.device)
    stats = sum_fn(z.unsqueeze(0), w.unsqueeze(0))[0]
    return stats[0], p_value(stats)
