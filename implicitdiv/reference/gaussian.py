"""Naive Gaussian latent terms in the log-variance parameterization."""
from __future__ import annotations

import math

import torch

from .ratio import expm1
from .widen import wide


class _Expm1MinusIdentity(torch.autograd.Function):
    """e^t - 1 - t whose derivative is formed as expm1(t): autograd's own, (e^t - 1 + 1) - 1 through
    torch.expm1's backward, loses all precision at small t (relative error u / |t|). The backward is
    itself differentiable (double backward)."""

    @staticmethod
    def forward(ctx, t):
        ctx.save_for_backward(t)
        return expm1(t) - t

    @staticmethod
    def backward(ctx, g):
        (t,) = ctx.saved_tensors
        return g * expm1(t)


def expm1_minus_identity(t: torch.Tensor) -> torch.Tensor:
    """e^t - 1 - t, with an accurate derivative e^t - 1."""
    return _Expm1MinusIdentity.apply(t)

LOG_2PI = math.log(2.0 * math.pi)


def gaussian_nll(z, mean, logvar) -> torch.Tensor:
    """-log N(z; m, diag exp(lv)) = 1/2 sum_k [(z - m)^2 exp(-lv) + lv + log 2 pi], per row, with
    (z - m)^2 exp(-lv) formed in float64 (reference.widen): exp(-lv) alone overflows float32 below lv = -88.7,
    where the term may not, and so may the products of its gradient."""
    diff = wide(z - mean)
    return (0.5 * diff * diff * torch.exp(-wide(logvar)) + 0.5 * (logvar + LOG_2PI)).sum(-1)


def kl_std_normal(mean, logvar) -> torch.Tensor:
    """KL(N(m, diag exp(lv)) || N(0, I)) = 1/2 sum_k [exp(lv) + m^2 - 1 - lv], per row, with
    exp(lv) - 1 as expm1 (no cancellation near lv = 0)."""
    return 0.5 * (expm1_minus_identity(logvar) + mean * mean).sum(-1)


def kl_gaussians(mean_q, logvar_q, mean_p, logvar_p) -> torch.Tensor:
    """KL(q || p) = 1/2 sum_k [lv_p - lv_q + exp(lv_q - lv_p) + (m_q - m_p)^2 exp(-lv_p) - 1], with
    exp(t) - 1 - t, t = lv_q - lv_p, as expm1(t) - t: with lv_q = lv_p the rest, (m_q - m_p)^2
    exp(-lv_p), can be far below the rounding of 1 (4e-35 at lv = 80) and must not vanish into it, in
    the value or in the gradient (which then meets only the exact 0 of e^t - 1 at t)."""
    diff = wide(mean_q - mean_p)  # as in gaussian_nll
    t = logvar_q - logvar_p
    return (0.5 * expm1_minus_identity(t) + 0.5 * diff * diff * torch.exp(-wide(logvar_p))).sum(-1)


def reparameterize(mean, logvar, eps):
    """z = m + exp(lv / 2) eps and log q(z) = -1/2 sum_k [eps^2 + lv + log 2 pi]."""
    z = mean + torch.exp(0.5 * logvar) * eps
    log_q = -0.5 * (eps * eps + logvar + LOG_2PI).sum(-1)
    return z, log_q
