"""What ``implicitdiv bench`` times: each public function on inputs of size (N, d), reduced to a
scalar so that a backward can follow, and its peers: the naive PyTorch a trainer writes by hand
and torch.compile of that.

Pairwise functions take N = M rows of d features (N^2 pairs); the ratio losses take N real and N
fake logits (d is not used); the Gaussian terms take (N, d) latents.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

import implicitdiv as idv
from implicitdiv.reference import gaussian as ref_gaussian
from implicitdiv.reference import ratio as ref_ratio

BANDWIDTHS = (0.5, 1.0, 2.0)
LOG_2PI = math.log(2.0 * math.pi)


@dataclass(frozen=True)
class Case:
    function: str
    shapes: Callable[[int, int], tuple[tuple[int, ...], ...]]
    call: Callable[..., torch.Tensor]  # call(*inputs, backend=name) -> scalar
    naive: Callable[..., torch.Tensor]  # call(*inputs) -> scalar, plain PyTorch
    pairwise: bool = False  # N x N work; the naive forms hold N x N matrices
    positive: tuple[int, ...] = ()  # inputs drawn in [0.5, 1.5] instead of N(0, 1)

    def inputs(self, n: int, d: int, dtype: torch.dtype, device: str, seed: int = 0) -> list[torch.Tensor]:
        g = torch.Generator().manual_seed(seed)
        out = []
        for i, shape in enumerate(self.shapes(n, d)):
            t = torch.rand(shape, generator=g) + 0.5 if i in self.positive else torch.randn(shape, generator=g)
            out.append(t.to(device=device, dtype=dtype))
        return out

    def naive_gib(self, n: int, d: int, dtype: torch.dtype, backward: bool) -> float:
        """Rough peak memory of the naive form: a few N x N matrices per bandwidth for the pairwise
        sums (kept for backward), an (N, N, d) difference for the mixture; small otherwise."""
        if not self.pairwise:
            return 0.0
        item = torch.finfo(dtype).bits // 8
        per = n * n * item
        if self.function == "gaussian_mixture_logpdf":
            return per * d * (3 if backward else 1) / 2**30
        return per * ((2 + 6 * len(BANDWIDTHS)) if backward else 3) / 2**30


def _rbf_mean(a: torch.Tensor, b: torch.Tensor, bandwidths: Sequence[float] = BANDWIDTHS,
              wa: torch.Tensor | None = None) -> torch.Tensor:
    """mean_ij (or sum_ij wa_i) of the sum of RBF kernels, from ||a||^2 + ||b||^2 - 2 a.b."""
    s = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    k = sum(torch.exp(-s / (2.0 * h * h)) for h in bandwidths)
    assert isinstance(k, torch.Tensor)
    return k.mean() if wa is None else (wa[:, None] * k).sum()


def naive_mmd2(x: torch.Tensor, y: torch.Tensor, bandwidths: Sequence[float] = BANDWIDTHS) -> torch.Tensor:
    """The biased RBF MMD^2 as trainers write it: three N x N kernel matrices from matrix products
    (less memory than the reference's explicit differences)."""
    return _rbf_mean(x, x, bandwidths) + _rbf_mean(y, y, bandwidths) - 2.0 * _rbf_mean(x, y, bandwidths)


def naive_mixture_logpdf(z: torch.Tensor, means: torch.Tensor, logvars: torch.Tensor) -> torch.Tensor:
    lv = 0.3 * logvars
    log_n = -0.5 * (((z[:, None, :] - means[None]) ** 2) * torch.exp(-lv)[None] + lv[None] + LOG_2PI).sum(-1)
    return (torch.logsumexp(log_n, dim=1) - math.log(means.shape[0])).mean()


def _total(pair: tuple[torch.Tensor, torch.Tensor], mean: bool = False) -> torch.Tensor:
    return pair[0].mean() + pair[1].mean() if mean else pair[0] + pair[1]


def _pair(n: int, d: int) -> tuple[tuple[int, ...], ...]:
    return ((n, d), (n, d))


def _logits(n: int, d: int) -> tuple[tuple[int, ...], ...]:
    return ((n,), (n,))


def _latent(k: int) -> Callable[[int, int], tuple[tuple[int, ...], ...]]:
    return lambda n, d: ((n, d),) * k


CASES: dict[str, Case] = {c.function: c for c in (
    Case("mmd2", _pair, lambda x, y, backend: idv.mmd2(x, y, bandwidth=BANDWIDTHS, backend=backend), naive_mmd2,
         pairwise=True),
    Case("kernel_sum", lambda n, d: ((n, d), (n, d), (n,)),
         lambda x, y, a, backend: idv.kernel_sum(x, y, bandwidth=BANDWIDTHS, x_weights=a, backend=backend),
         lambda x, y, a: _rbf_mean(x, y, wa=a), pairwise=True),
    Case("gaussian_mixture_logpdf", _latent(3),
         lambda z, m, lv, backend: idv.gaussian_mixture_logpdf(z, m, 0.3 * lv, backend=backend).mean(),
         naive_mixture_logpdf, pairwise=True),
    Case("adversarial_losses", _logits,
         lambda r, f, backend: _total(idv.adversarial_losses(r, f, kind="gan", backend=backend)),
         lambda r, f: _total(ref_ratio.adversarial_losses(r, f, "gan", False))),
    Case("discriminator_loss", _logits, lambda r, f, backend: idv.discriminator_loss(r, f, kind="hinge", backend=backend),
         lambda r, f: ref_ratio.discriminator_loss(r, f, "hinge", "mean")),
    Case("generator_loss", lambda n, d: ((n,),), lambda f, backend: idv.generator_loss(f, kind="gan", backend=backend),
         lambda f: ref_ratio.generator_loss(f, "gan", False, "mean")),
    Case("fdiv_estimate", _logits, lambda r, f, backend: idv.fdiv_estimate(r, f, divergence="js", backend=backend),
         lambda r, f: ref_ratio.fdiv_estimate(r, f, "js")),
    Case("ratio_matching_loss", _logits, lambda p, q, backend: idv.ratio_matching_loss(p, q, backend=backend),
         lambda p, q: ref_ratio.ratio_matching_loss(p, q), positive=(0, 1)),
    Case("gaussian_nll", _latent(3), lambda z, m, lv, backend: idv.gaussian_nll(z, m, lv, backend=backend),
         lambda z, m, lv: ref_gaussian.gaussian_nll(z, m, lv).mean()),
    Case("kl_std_normal", _latent(2), lambda m, lv, backend: idv.kl_std_normal(m, lv, backend=backend),
         lambda m, lv: ref_gaussian.kl_std_normal(m, lv).mean()),
    Case("kl_gaussians", _latent(4), lambda a, b, c, d, backend: idv.kl_gaussians(a, b, c, d, backend=backend),
         lambda a, b, c, d: ref_gaussian.kl_gaussians(a, b, c, d).mean()),
    Case("reparameterize", _latent(3),
         lambda m, lv, e, backend: _total(idv.reparameterize(m, lv, e, backend=backend), mean=True),
         lambda m, lv, e: _total(ref_gaussian.reparameterize(m, lv, e), mean=True)),
)}
