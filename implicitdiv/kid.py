"""Kernel Inception Distance: the unbiased MMD^2 of a cubic polynomial kernel over random subsets of
feature vectors (Binkowski et al. 2018, "Demystifying MMD GANs"; not among /work/shared/seeds/, whose
003 slides list MMD-GAN in the model set), as torchmetrics' KernelInceptionDistance and
torch-fidelity compute it."""
from __future__ import annotations

import torch

from . import _validate as check
from .backend import resolve
from .mmd import mmd2
from .ops import pairwise as ops

# Bytes of features gathered per side and batch of the subset-by-subset schedule: bounds its extra
# memory (the engine runs a batch's elements one after the other, so larger batches gain nothing).
GATHER_BYTES = 32 << 20


def kid_subsets(n_real: int, n_fake: int, subsets: int, subset_size: int, seed=None):
    """Row indices (subsets, subset_size) of each side's subsets, drawn without replacement:
    for each subset, torch.randperm(n_real)[:subset_size] then torch.randperm(n_fake)[:subset_size],
    from a generator seeded with `seed`, or torch's global generator when seed is None. These are
    torchmetrics' draws: KernelInceptionDistance.compute() after torch.manual_seed(s) picks the
    subsets of seed=s."""
    gen = None if seed is None else torch.Generator().manual_seed(seed)
    real, fake = [], []
    for _ in range(subsets):
        real.append(torch.randperm(n_real, generator=gen)[:subset_size])
        fake.append(torch.randperm(n_fake, generator=gen)[:subset_size])
    return torch.stack(real), torch.stack(fake)


def _indicators(idx: torch.Tensor, n: int, like: torch.Tensor) -> torch.Tensor:
    """(1, n, S) with entry (i, s) = 1 where row i is in subset s."""
    ind = like.new_zeros((idx.shape[0], n))
    ind.scatter_(1, idx.to(like.device), 1.0)
    return ind.t().contiguous().unsqueeze(0)


def _by_columns(real, fake, real_idx, fake_idx, params, backend, precision):
    """Every subset's MMD^2 from three weighted sums over all pairs (each subset a 0/1 weight column):
    sum_{i != j in X_s} k_ij, the same over Y_s, and sum_{X_s x Y_s} k_ij."""
    m = real_idx.shape[1]
    a, b = _indicators(real_idx, real.shape[0], real), _indicators(fake_idx, fake.shape[0], fake)
    x, y = real.unsqueeze(0).contiguous(), fake.unsqueeze(0).contiguous()
    xx = ops.kernel_sum_sym(x, a, "polynomial", params, True, backend, precision)[0]
    yy = ops.kernel_sum_sym(y, b, "polynomial", params, True, backend, precision)[0]
    xy = ops.kernel_sum(x, y, a, b, "polynomial", params, backend, precision)[0]
    return (xx.double() + yy.double()) / (m * (m - 1.0)) - 2.0 * xy.double() / (m * m)


def _by_subsets(real, fake, real_idx, fake_idx, kernel, backend, precision):
    """Every subset's MMD^2 as one batch element of mmd2, GATHER_BYTES of gathered rows at a time."""
    per_batch = max(1, GATHER_BYTES // (real_idx.shape[1] * real.shape[1] * real.element_size()))
    scores = []
    for s in range(0, real_idx.shape[0], per_batch):
        xs = real[real_idx[s:s + per_batch].to(real.device)]
        ys = fake[fake_idx[s:s + per_batch].to(fake.device)]
        scores.append(mmd2(xs, ys, estimator="unbiased", backend=backend, precision=precision, **kernel).double())
    return torch.cat(scores)


# Time per multiply-add of the subset schedule over the column schedule's: three small passes per
# subset (packing, thread start-up) against three large ones. Measured at 10,000 x 2048 per side,
# 100 subsets of 1000 (benchmarks/RESULTS.md, "Peers"): 1.05x the multiply-adds in 0.62x the time.
SUBSET_OVERHEAD = 1.7


def by_columns_is_cheaper(n_real: int, n_fake: int, d: int, subsets: int, subset_size: int) -> bool:
    """Whether the weight-column schedule is the faster: it visits the (n_real + n_fake)^2 / 2 pairs
    once, each for a d-long dot product and a contraction with the `subsets` weight columns; the
    subset schedule visits 2 subset_size^2 pairs per subset (half of each symmetric sum), each for a
    dot product and one weight, at SUBSET_OVERHEAD times the cost per multiply-add."""
    pooled = (n_real + n_fake) ** 2 / 2 * (d + subsets)
    per_subset = 2.0 * subsets * subset_size**2 * (d + 1)
    return pooled < SUBSET_OVERHEAD * per_subset


def kid(real_features: torch.Tensor, fake_features: torch.Tensor, *, subsets: int = 100, subset_size: int = 1000,
        seed: int | None = None, degree: int = 3, gamma: float | None = None, coef0: float = 1.0, schedule: str = "auto",
        backend: str | None = None, precision: str = "ieee") -> tuple[torch.Tensor, torch.Tensor]:
    """Kernel Inception Distance between two sets of feature vectors (Binkowski et al. 2018): for
    each of `subsets` random subsets X_s of subset_size rows of
    real_features and Y_s of fake_features (m = subset_size, drawn without replacement),

        KID_s = 1/(m(m-1)) sum_{i != j} [k(x_i, x_j) + k(y_i, y_j)] - 2/m^2 sum_ij k(x_i, y_j),
        k(x, y) = (gamma x.y + coef0)^degree   (defaults: degree 3, gamma = 1/d, coef0 = 1),

    and returns (mean over s, population standard deviation over s), torchmetrics'
    KernelInceptionDistance.compute() on the same features and subsets (kid_subsets).

    Args:
        real_features: (N_r, d); fake_features: (N_f, d), N_r, N_f >= subset_size.
        subsets, subset_size: integers, subset_size >= 2.
        seed: the subsets' seed; None draws them from torch's global generator (as torchmetrics).
        degree, gamma, coef0: the polynomial kernel, as in kernel_sum.
        schedule: "columns" (every subset a weight column of three sums over all pairs: one pass
            over the pairs for all subsets), "subsets" (one MMD^2 per subset, in batches of mmd2)
            or "auto" (default: the one of by_columns_is_cheaper; "subsets" on the reference
            backend, where "columns" would build the N x N matrices).
        backend, precision: as in kernel_sum.

    Returns:
        (mean, std) as 0-dim tensors of the features' dtype; NaN when the features hold a NaN or an
        Inf. Differentiable with respect to both feature sets.
    """
    check.matching_samples(real_features, fake_features, "real_features", "fake_features")
    if real_features.dim() != 2:
        raise ValueError(f"kid takes (N, d) features, got real_features of shape {tuple(real_features.shape)}")
    check.positive_int(subsets, "subsets")
    check.positive_int(subset_size, "subset_size", minimum=2)
    for name, t in (("real_features", real_features), ("fake_features", fake_features)):
        if t.shape[0] < subset_size:
            raise ValueError(f"{name} has {t.shape[0]} rows, fewer than subset_size = {subset_size}")
    if seed is not None:
        check.positive_int(seed, "seed", minimum=0)
    check.choice(schedule, "schedule", ("auto", "columns", "subsets"))
    check.choice(precision, "precision", ops.PRECISIONS)
    d = real_features.shape[1]
    kernel = {"kernel": "polynomial", "degree": degree, "gamma": gamma, "coef0": coef0}
    params = check.kernel_parameters("polynomial", 1.0, d, degree, gamma, coef0)
    name = resolve(backend, "kid", real_features.device)
    n_real, n_fake = real_features.shape[0], fake_features.shape[0]
    real_idx, fake_idx = kid_subsets(n_real, n_fake, subsets, subset_size, seed)
    if schedule == "auto":
        cheaper = by_columns_is_cheaper(n_real, n_fake, d, subsets, subset_size)
        schedule = "columns" if cheaper and name != "reference" else "subsets"
    if schedule == "columns":
        scores = _by_columns(real_features, fake_features, real_idx, fake_idx, params, name, precision)
        scores = check.nan_unless_finite(scores, real_features, fake_features) if name == "reference" else scores
    else:
        scores = _by_subsets(real_features, fake_features, real_idx, fake_idx, kernel, name, precision)
    dtype = real_features.dtype
    return scores.mean().to(dtype), scores.std(correction=0).to(dtype)
