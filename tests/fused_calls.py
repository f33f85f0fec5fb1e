"""One small call of every public function with a fused op, for tests that go over all of them."""
from __future__ import annotations

import torch

import implicitdiv as idv

FUSED = [b for b in ("cpp", "triton") if b in idv.backends()]


def fused_calls(backend):
    """(name, fn(*xs), xs) for every public function with a fused op."""
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(9, 3, generator=g), torch.randn(7, 3, generator=g)
    a, b = torch.rand(9, generator=g), torch.rand(7, generator=g)
    r, f = torch.randn(6, 1, generator=g), torch.randn(5, 1, generator=g)
    m, lv, z = torch.randn(4, 3, generator=g), 0.3 * torch.randn(4, 3, generator=g), torch.randn(4, 3, generator=g)
    kw = {"backend": backend}
    return [
        ("mmd2", lambda x, y: idv.mmd2(x, y, bandwidth=(0.5, 2.0), estimator="unbiased", **kw), (x, y)),
        ("kernel_sum", lambda x, y: idv.kernel_sum(x, y, x_weights=a, y_weights=b, **kw), (x, y)),
        ("kernel_sum (symmetric)", lambda x: idv.kernel_sum(x, x, kernel="imq", **kw), (x,)),
        ("gaussian_mixture_logpdf", lambda z, m, lv: idv.gaussian_mixture_logpdf(z, m, lv, **kw), (z, m, lv)),
        ("adversarial_losses", lambda r, f: idv.adversarial_losses(r, f, kind="js", **kw), (r, f)),
        ("discriminator_loss", lambda r, f: idv.discriminator_loss(r, f, kind="hinge", reduction="sum", **kw), (r, f)),
        ("generator_loss", lambda f: idv.generator_loss(f, kind="gan", saturating=True, **kw), (f,)),
        ("fdiv_estimate", lambda r, f: idv.fdiv_estimate(r, f, divergence="pearson", **kw), (r, f)),
        ("ratio_matching_loss", lambda r, f: idv.ratio_matching_loss(r, f, **kw), (r, f)),
        ("gaussian_nll", lambda z, m, lv: idv.gaussian_nll(z, m, lv, **kw), (z, m, lv)),
        ("kl_std_normal", lambda m, lv: idv.kl_std_normal(m, lv, reduction="none", **kw), (m, lv)),
        ("kl_gaussians", lambda z, m, lv, q: idv.kl_gaussians(z, lv, m, q, **kw), (z, m, lv, 0.5 * lv)),
        ("reparameterize", lambda m, lv, z: idv.reparameterize(m, lv, z, **kw), (m, lv, z)),
    ]


def total(out):
    items = out if isinstance(out, tuple) else (out,)
    return sum(o.sum() for o in items)
