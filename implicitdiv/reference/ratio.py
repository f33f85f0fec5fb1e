"""Naive discriminator log-ratio losses.

A discriminator's logit v estimates a log density ratio. The f-GAN family (Nowozin et al., 2016)
maps v through an output activation g_f and uses the Fenchel conjugate f*: the variational bound is
D_f(P || Q) >= E_P[g_f(v)] - E_Q[f*(g_f(v))]. Every form here is written in a stable way
(softplus, never log(sigmoid)).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .widen import wide

FDIVERGENCES = ("kl", "reverse_kl", "pearson", "hellinger", "js", "gan", "tv")
KINDS = ("gan", "hinge", "wgan", "lsgan") + tuple(k for k in FDIVERGENCES if k != "gan")
LOG2 = math.log(2.0)


def expm1(x: torch.Tensor) -> torch.Tensor:
    """e^x - 1 whose autograd derivative is e^x to full precision: torch.expm1's backward forms
    (e^x - 1) + 1, which is 0 instead of e^x once x < -37; below -1 use exp(x) - 1 (no cancellation)."""
    low = x < -1.0
    return torch.where(low, torch.exp(x.clamp(max=-1.0)) - 1.0, torch.expm1(x.clamp(min=-1.0)))


def tanh(v: torch.Tensor) -> torch.Tensor:
    """tanh(v) whose autograd derivative keeps its precision: torch.tanh's backward forms 1 - tanh^2,
    which is 0 instead of 4 e^(-2|v|) once |v| > 19; for |v| > 1 use sign(v) (1 - 2 sigmoid(-2|v|))."""
    big = v.abs() > 1.0
    outer = v.where(big, torch.ones_like(v))
    inner = v.where(~big, torch.zeros_like(v))
    return torch.where(big, torch.sign(outer) * (1.0 - 2.0 * torch.sigmoid(-2.0 * outer.abs())), torch.tanh(inner))


def activation(v: torch.Tensor, divergence: str) -> torch.Tensor:
    """g_f(v): the f-GAN output activation mapping a logit into the domain of f*."""
    if divergence in ("kl", "pearson"):
        return v
    if divergence == "reverse_kl":
        return -torch.exp(-wide(v))
    if divergence == "hellinger":
        return -expm1(-wide(v))
    if divergence == "js":
        return LOG2 - F.softplus(-v)
    if divergence == "gan":
        return -F.softplus(-v)
    if divergence == "tv":
        return 0.5 * tanh(v)
    raise ValueError(f"divergence must be one of {FDIVERGENCES}, got {divergence!r}")


def conjugate_of_activation(v: torch.Tensor, divergence: str) -> torch.Tensor:
    """f*(g_f(v)), simplified per divergence so it stays finite wherever the math does."""
    if divergence == "kl":  # f*(t) = exp(t - 1)
        return torch.exp(wide(v) - 1.0)
    if divergence == "reverse_kl":  # f*(t) = -1 - log(-t)
        return v - 1.0
    if divergence == "pearson":  # f*(t) = t^2/4 + t
        return 0.25 * v * v + v
    if divergence == "hellinger":  # f*(t) = t / (1 - t)
        return expm1(wide(v))
    if divergence == "js":  # f*(t) = -log(2 - exp(t))
        return F.softplus(v) - LOG2
    if divergence == "gan":  # f*(t) = -log(1 - exp(t))
        return F.softplus(v)
    if divergence == "tv":  # f*(t) = t on |t| <= 1/2
        return 0.5 * tanh(v)
    raise ValueError(f"divergence must be one of {FDIVERGENCES}, got {divergence!r}")


def discriminator_terms(real: torch.Tensor, fake: torch.Tensor, kind: str):
    """Per-sample discriminator loss terms (on real, on fake); the loss is their mean sum."""
    if kind == "gan":
        return F.softplus(-real), F.softplus(fake)
    if kind == "hinge":
        return F.relu(1.0 - real), F.relu(1.0 + fake)
    if kind == "wgan":
        return -real, fake
    if kind == "lsgan":
        return 0.5 * (real - 1.0) ** 2, 0.5 * fake * fake
    return -activation(real, kind), conjugate_of_activation(fake, kind)


def generator_terms(fake: torch.Tensor, kind: str, saturating: bool) -> torch.Tensor:
    """Per-sample generator loss terms.

    gan/f-GAN saturating:      -f*(g_f(v))  (minimize the discriminator's objective directly)
    gan/f-GAN non-saturating:  -g_f(v)      (Goodfellow's / Nowozin's alternative)
    hinge, wgan:               -v
    lsgan:                     (v - 1)^2 / 2
    """
    if kind in ("hinge", "wgan"):
        return -fake
    if kind == "lsgan":
        return 0.5 * (fake - 1.0) ** 2
    if saturating:
        return -conjugate_of_activation(fake, kind)
    return -activation(fake, kind)


def reduce(t: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "mean":
        return t.mean()
    if reduction == "sum":
        return t.sum()
    return t


def discriminator_loss(real, fake, kind: str, reduction: str):
    tr, tf = discriminator_terms(real, fake, kind)
    if reduction == "none":
        return tr.to(real.dtype), tf.to(fake.dtype)
    return (reduce(tr, reduction) + reduce(tf, reduction)).to(real.dtype)


def generator_loss(fake, kind: str, saturating: bool, reduction: str):
    return reduce(generator_terms(fake, kind, saturating), reduction).to(fake.dtype)


def adversarial_losses(real, fake, kind: str, saturating: bool):
    return discriminator_loss(real, fake, kind, "mean"), generator_loss(fake, kind, saturating, "mean")


def fdiv_estimate(real, fake, divergence: str) -> torch.Tensor:
    """E_P[g_f(v)] - E_Q[f*(g_f(v))]: a lower bound on D_f(P || Q), tight at the optimal critic."""
    return (activation(real, divergence).mean() - conjugate_of_activation(fake, divergence).mean()).to(real.dtype)


def log_density_ratio(logits, n_numer, n_denom) -> torch.Tensor:
    """log p/q = c(x) + log(n_denom / n_numer) for a classifier c trained on n_numer samples of p
    (label 1) against n_denom samples of q (label 0)."""
    return logits + math.log(n_denom / n_numer)


def ratio_matching_loss(r_p, r_q) -> torch.Tensor:
    """Least-squares ratio matching (uLSIF): 1/2 E_Q[r^2] - E_P[r], minimized by r = p/q."""
    return 0.5 * (r_q * r_q).mean() - r_p.mean()
