"""Statistics shared by the estimators of every backend and of implicitdiv.distributed: the MMD^2
pair weights, the permutation test's weight matrix and its p-value. Not a backend: the reference,
the fused path and the distributed path all read them from here."""
from __future__ import annotations

import math

import numpy as np
import torch


def mmd2_weights(n: int, m: int, unbiased: bool) -> tuple[float, float, float, float]:
    """(w_xx, w_yy, a_xy, b_xy): MMD^2 = sum a_i k(x_i, x_j) a_j with a = w_xx, the same over y with
    w_yy, plus sum_ij a_xy k(x_i, y_j) b_xy, i.e.

        biased:   w_xx = 1/N, w_yy = 1/M (the diagonal included)
        unbiased: w_xx = 1/sqrt(N(N-1)), w_yy = 1/sqrt(M(M-1)) (the diagonal left out)
        cross:    a_xy = 1/N, b_xy = -2/M.

    csrc/pairwise_bindings.cpp (mmd2_t) writes the same weights in C++."""
    w_xx = 1.0 / math.sqrt(n * (n - 1)) if unbiased else 1.0 / n
    w_yy = 1.0 / math.sqrt(m * (m - 1)) if unbiased else 1.0 / m
    return w_xx, w_yy, 1.0 / n, -2.0 / m


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
