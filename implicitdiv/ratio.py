"""Public discriminator log-ratio losses: GAN, hinge, WGAN, LSGAN and the f-GAN family.

A discriminator logit v is a log density ratio estimate. For an f-divergence the critic is
T = g_f(v) (output activation) and the variational bound is D_f(P || Q) >= E_P[T] - E_Q[f*(T)]
(Nowozin et al., 2016):

    kind        g_f(v)                  f*(g_f(v))
    kl          v                       exp(v - 1)
    reverse_kl  -exp(-v)                v - 1
    pearson     v                       v^2/4 + v
    hellinger   1 - exp(-v)             exp(v) - 1
    js          log 2 - softplus(-v)    softplus(v) - log 2
    gan         -softplus(-v)           softplus(v)
    tv          tanh(v) / 2             tanh(v) / 2
"""
from __future__ import annotations

import math

import torch

from . import _validate as check
from .backend import resolve
from .ops import ratio as ops
from .reference import ratio as ref
from .reference.ratio import FDIVERGENCES, KINDS


def _logits(t, name: str) -> torch.Tensor:
    check.tensor(t, name)
    if t.numel() == 0:
        raise ValueError(f"{name} is empty")
    return t


def _finite_rule(out, reduction: str, *inputs):
    """NaN or Inf logits give NaN (not the finite limit some kinds reach, e.g. softplus(-inf) = 0).
    The reference needs it applied; the fused ops apply it in their own pass over the logits."""
    if reduction == "none":
        return check.nan_where_nonfinite(out, inputs[0])
    return check.nan_unless_finite(out, *inputs)


def discriminator_loss(real, fake, *, kind="gan", reduction="mean", backend=None):
    """Discriminator loss on logits of real and fake samples; per-sample terms (t_real, t_fake):

        gan    softplus(-v_r),        softplus(v_f)
        hinge  relu(1 - v_r),         relu(1 + v_f)
        wgan   -v_r,                  v_f
        lsgan  (v_r - 1)^2 / 2,       v_f^2 / 2
        f-GAN  -g_f(v_r),             f*(g_f(v_f))     (the negated variational bound)

    "mean": mean(t_real) + mean(t_fake); "sum": sum(t_real) + sum(t_fake); "none": the tuple
    (t_real, t_fake), since real and fake may differ in size."""
    check.choice(kind, "kind", KINDS)
    check.reduction(reduction)
    _logits(real, "real")
    _logits(fake, "fake")
    check.same_kind(real=real, fake=fake)
    name = resolve(backend, "discriminator_loss", real.device)
    if name != "reference":
        return ops.discriminator_loss(real, fake, kind, reduction, backend=name)
    out = ref.discriminator_loss(real, fake, kind, reduction)
    if reduction == "none":
        return _finite_rule(out[0], "none", real), _finite_rule(out[1], "none", fake)
    return _finite_rule(out, reduction, real, fake)


def generator_loss(fake, *, kind="gan", saturating=False, reduction="mean", backend=None):
    """Generator loss on the discriminator's logits of fake samples, per sample:

        gan / f-GAN  saturating: -f*(g_f(v))   (gan: -softplus(v) = log(1 - D))
                     non-saturating: -g_f(v)   (gan: softplus(-v) = -log D)
        hinge, wgan  -v
        lsgan        (v - 1)^2 / 2
    """
    check.choice(kind, "kind", KINDS)
    check.reduction(reduction)
    _logits(fake, "fake")
    name = resolve(backend, "generator_loss", fake.device)
    if name != "reference":
        return ops.generator_loss(fake, kind, bool(saturating), reduction, backend=name)
    return _finite_rule(ref.generator_loss(fake, kind, bool(saturating), reduction), reduction, fake)


def adversarial_losses(real, fake, *, kind="gan", saturating=False, backend=None):
    """(discriminator_loss, generator_loss) with mean reduction, from one read of the fake logits."""
    check.choice(kind, "kind", KINDS)
    _logits(real, "real")
    _logits(fake, "fake")
    check.same_kind(real=real, fake=fake)
    name = resolve(backend, "adversarial_losses", real.device)
    if name != "reference":
        return ops.adversarial_losses(real, fake, kind, bool(saturating), backend=name)
    d, g = ref.adversarial_losses(real, fake, kind, bool(saturating))
    fake_ok = check.all_finite(fake)  # one pass over the fake logits serves both losses' NaN rule
    nan = float("nan")
    return torch.where(check.all_finite(real) & fake_ok, d, nan), torch.where(fake_ok, g, nan)


def fdiv_estimate(real, fake, *, divergence="kl", backend=None):
    """Variational lower bound on D_f(P || Q) from critic logits on samples of P (real) and Q (fake):

        E_P[g_f(v)] - E_Q[f*(g_f(v))]

    tight when g_f(v) = f'(p/q). divergence: kl, reverse_kl, pearson, hellinger, js, gan, tv."""
    check.choice(divergence, "divergence", FDIVERGENCES)
    _logits(real, "real")
    _logits(fake, "fake")
    check.same_kind(real=real, fake=fake)
    name = resolve(backend, "fdiv_estimate", real.device)
    if name != "reference":
        return ops.fdiv_estimate(real, fake, divergence, backend=name)
    return _finite_rule(ref.fdiv_estimate(real, fake, divergence), "mean", real, fake)


def log_density_ratio(logits, n_numer=None, n_denom=None):
    """log p(x)/q(x) = c(x) + log(n_denom / n_numer) from the logit c of a classifier trained on
    n_numer samples of p (label 1) against n_denom samples of q (label 0); equal or unknown
    counts leave the logit as it is."""
    _logits(logits, "logits")
    if (n_numer is None) != (n_denom is None):
        raise ValueError("give both n_numer and n_denom, or neither")
    if n_numer is None:
        return logits
    for n, v in (("n_numer", n_numer), ("n_denom", n_denom)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not (v > 0) or math.isinf(v):
            raise ValueError(f"{n} must be a positive finite count, got {v!r}")
    return ref.log_density_ratio(logits, n_numer, n_denom)


def ratio_matching_loss(r_p, r_q, *, backend=None):
    """Least-squares density-ratio matching (uLSIF; Kanamori et al., 2009):

        1/2 E_Q[r(x)^2] - E_P[r(x)]

    from ratio estimates r_p on samples of P and r_q on samples of Q; its minimizer is r = p/q."""
    _logits(r_p, "r_p")
    _logits(r_q, "r_q")
    check.same_kind(r_p=r_p, r_q=r_q)
    name = resolve(backend, "ratio_matching_loss", r_p.device)
    if name != "reference":
        return ops.ratio_matching_loss(r_p, r_q, backend=name)
    return _finite_rule(ref.ratio_matching_loss(r_p, r_q), "mean", r_p, r_q)
