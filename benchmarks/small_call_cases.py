"""The cases of bench_small_calls: every public function that has a fused op, its inputs at a size,
and the naive PyTorch a trainer writes for it (the form the fused op replaces).

A case is (function, size label, make) where make(dtype) returns (fused, naive, inputs): two callables
of the same inputs returning a tensor or a tuple of them, and the tensors that take gradients.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

import implicitdiv as idv

LOG_2PI = math.log(2.0 * math.pi)
# (N = M, d, bandwidths) of the pairwise cases: N = 8, then the table rows
PAIRWISE_SIZES = ((8, 4, 1), (64, 2, 1), (128, 2, 5), (256, 16, 2), (512, 64, 1), (1024, 64, 1), (2048, 16, 1),
                  (4096, 16, 1))
LOGIT_SIZES = (8, 128, 1024, 4096)
GAUSSIAN_SIZES = ((8, 4), (128, 16), (512, 32), (4096, 64))
BANDWIDTHS = (1.0, 0.5, 2.0, 0.25, 4.0)


@dataclass(frozen=True)
class Case:
    function: str
    size: str
    make: Callable  # (backend, generator) -> (fused, naive, inputs)
    backward: bool = True  # whether forward+backward applies (mmd_test has no gradient)


def _kernel_mean(a, b, bandwidths):
    s = (a * a).sum(-1)[:, None] + (b * b).sum(-1)[None, :] - 2.0 * a @ b.T
    return sum(torch.exp(-s / (2.0 * h * h)) for h in bandwidths).mean()


def naive_mmd2(x, y, bandwidths):
    """Biased RBF MMD^2 from N x M kernel matrices (||x||^2 + ||y||^2 - 2 x.y)."""
    return _kernel_mean(x, x, bandwidths) + _kernel_mean(y, y, bandwidths) - 2.0 * _kernel_mean(x, y, bandwidths)


def _pairwise(n, d, nb, backend, gen):
    x = torch.randn(n, d, generator=gen)
    y = torch.randn(n, d, generator=gen) + 0.1
    return x, y, BANDWIDTHS[:nb]


def _mmd2(n, d, nb):
    def make(backend, gen):
        x, y, bw = _pairwise(n, d, nb, backend, gen)
        return (lambda x, y: idv.mmd2(x, y, bandwidth=bw, backend=backend)), (lambda x, y: naive_mmd2(x, y, bw)), (x, y)
    return make


def _kernel_sum(n, d, nb):
    def make(backend, gen):
        x, y, bw = _pairwise(n, d, nb, backend, gen)
        a, b = torch.rand(n, generator=gen), torch.rand(n, generator=gen)

        def naive(x, y):
            s = (x * x).sum(-1)[:, None] + (y * y).sum(-1)[None, :] - 2.0 * x @ y.T
            return (a[:, None] * sum(torch.exp(-s / (2.0 * h * h)) for h in bw) * b[None, :]).sum()
        return (lambda x, y: idv.kernel_sum(x, y, bandwidth=bw, x_weights=a, y_weights=b, backend=backend)), naive, (x, y)
    return make


def _mmd_test(n, d, permutations=100):
    def make(backend, gen):
        x, y, _ = _pairwise(n, d, 1, backend, gen)

        def naive(x, y):
            z = torch.cat([x, y])
            g = torch.Generator().manual_seed(0)
            bw = (torch.cdist(z, z).flatten().median(),)
            stat = naive_mmd2(x, y, bw)
            null = [naive_mmd2(*torch.split(z[torch.randperm(2 * n, generator=g)], n), bw) for _ in range(permutations)]
            return stat, (1 + sum(float(v >= stat) for v in null)) / (1 + permutations)
        return (lambda x, y: idv.mmd_test(x, y, permutations=permutations, seed=0, backend=backend)), naive, (x, y)
    return make


def _mixture(n, d):
    def make(backend, gen):
        z, m, lv = torch.randn(n, d, generator=gen), torch.randn(n, d, generator=gen), 0.1 * torch.randn(n, d, generator=gen)

        def naive(z, m, lv):
            diff = z[:, None, :] - m[None, :, :]
            comp = -0.5 * (diff * diff * torch.exp(-lv)[None] + lv[None] + LOG_2PI).sum(-1)
            return torch.logsumexp(comp, 1) - math.log(m.shape[0])
        return (lambda z, m, lv: idv.gaussian_mixture_logpdf(z, m, lv, backend=backend)), naive, (z, m, lv)
    return make


def _logits(n, function):
    naive = {
        "discriminator_loss": lambda r, f: F.softplus(-r).mean() + F.softplus(f).mean(),
        "generator_loss": lambda r, f: F.softplus(-f).mean(),
        "adversarial_losses": lambda r, f: (F.softplus(-r).mean() + F.softplus(f).mean(), F.softplus(-f).mean()),
        "fdiv_estimate": lambda r, f: r.mean() - torch.exp(f - 1.0).mean(),
        "ratio_matching_loss": lambda r, f: 0.5 * (f * f).mean() - r.mean(),
    }[function]

    def make(backend, gen):
        r, f = torch.randn(n, 1, generator=gen), torch.randn(n, 1, generator=gen)
        fused = {
            "discriminator_loss": lambda r, f: idv.discriminator_loss(r, f, backend=backend),
            "generator_loss": lambda r, f: idv.generator_loss(f, backend=backend),
            "adversarial_losses": lambda r, f: idv.adversarial_losses(r, f, backend=backend),
            "fdiv_estimate": lambda r, f: idv.fdiv_estimate(r, f, divergence="kl", backend=backend),
            "ratio_matching_loss": lambda r, f: idv.ratio_matching_loss(r, f, backend=backend),
        }[function]
        return fused, naive, (r, f)
    return make


def _gaussian(n, d, function):
    naive = {
        "gaussian_nll": lambda z, m, lv: 0.5 * ((z - m) ** 2 * torch.exp(-lv) + lv + LOG_2PI).sum(-1).mean(),
        "kl_std_normal": lambda m, lv: 0.5 * (torch.exp(lv) + m * m - 1.0 - lv).sum(-1).mean(),
        "kl_gaussians": lambda mq, lq, mp, lp: 0.5 * (lp - lq + torch.exp(lq - lp) + (mq - mp) ** 2 * torch.exp(-lp)
                                                      - 1.0).sum(-1).mean(),
        "reparameterize": lambda m, lv, eps: (m + torch.exp(0.5 * lv) * eps, -0.5 * (eps * eps + lv + LOG_2PI).sum(-1)),
    }[function]
    arity = {"gaussian_nll": 3, "kl_std_normal": 2, "kl_gaussians": 4, "reparameterize": 3}[function]

    def make(backend, gen):
        xs = tuple(0.5 * torch.randn(n, d, generator=gen) for _ in range(arity))
        fused = {
            "gaussian_nll": lambda z, m, lv: idv.gaussian_nll(z, m, lv, backend=backend),
            "kl_std_normal": lambda m, lv: idv.kl_std_normal(m, lv, backend=backend),
            "kl_gaussians": lambda mq, lq, mp, lp: idv.kl_gaussians(mq, lq, mp, lp, backend=backend),
            "reparameterize": lambda m, lv, eps: idv.reparameterize(m, lv, eps, backend=backend),
        }[function]
        return fused, naive, xs
    return make


LOGIT_FUNCTIONS = ("discriminator_loss", "generator_loss", "adversarial_losses", "fdiv_estimate", "ratio_matching_loss")


# Public functions only: bench_small_calls --before runs these cases against an older package.
GAUSSIAN_FUNCTIONS = ("gaussian_nll", "kl_std_normal", "kl_gaussians", "reparameterize")


def all_cases(max_n: int = 4096) -> list[Case]:
    cases = []
    for n, d, nb in PAIRWISE_SIZES:
        if n <= max_n:
            cases.append(Case("mmd2", f"N={n} d={d} bw={nb}", _mmd2(n, d, nb)))
    for n, d, nb in PAIRWISE_SIZES[:1] + PAIRWISE_SIZES[3:6]:
        if n <= max_n:
            cases.append(Case("kernel_sum", f"N={n} d={d} bw={nb}", _kernel_sum(n, d, nb)))
    for n, d in ((8, 4), (64, 8), (256, 16)):
        cases.append(Case("mmd_test", f"N={n} d={d} P=100", _mmd_test(n, d), backward=False))
    for n, d in ((8, 4), (256, 16), (1024, 32)):
        if n <= max_n:
            cases.append(Case("gaussian_mixture_logpdf", f"N={n} d={d}", _mixture(n, d)))
    for function in LOGIT_FUNCTIONS:
        for n in LOGIT_SIZES:
            cases.append(Case(function, f"n={n}", _logits(n, function)))
    for function in GAUSSIAN_FUNCTIONS:
        for n, d in GAUSSIAN_SIZES:
            cases.append(Case(function, f"{n}x{d}", _gaussian(n, d, function)))
    return cases
