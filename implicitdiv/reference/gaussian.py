"""Naive Gaussian latent terms in the log-variance parameterization."""
from __future__ import annotations

import math

import torch

LOG_2PI = math.log(2.0 * math.pi)


def gaussian_nll(z, mean, logvar) -> torch.Tensor:
    """-log N(z; m, diag exp(lv)) = 1/2 sum_k [(z - m)^2 exp(-lv) + lv + log 2 pi], per row."""
    diff = z - mean
    return 0.5 * (diff * diff * torch.exp(-logvar) + logvar + LOG_2PI).sum(-1)


def kl_std_normal(mean, logvar) -> torch.Tensor:
    """KL(N(m, diag exp(lv)) || N(0, I)) = 1/2 sum_k [exp(lv) + m^2 - 1 - lv], per row."""
    return 0.5 * (torch.exp(logvar) + mean * mean - 1.0 - logvar).sum(-1)


def kl_gaussians(mean_q, logvar_q, mean_p, logvar_p) -> torch.Tensor:
    """KL(q || p) = 1/2 sum_k [lv_p - lv_q + exp(lv_q - lv_p) + (m_q - m_p)^2 exp(-lv_p) - 1]."""
    diff = mean_q - mean_p
    return 0.5 * (logvar_p - logvar_q + torch.exp(logvar_q - logvar_p) + diff * diff * torch.exp(-logvar_p) - 1.0).sum(-1)


def reparameterize(mean, logvar, eps):
    """z = m + exp(lv / 2) eps and log q(z) = -1/2 sum_k [eps^2 + lv + log 2 pi]."""
    z = mean + torch.exp(0.5 * logvar) * eps
    log_q = -0.5 * (eps * eps + logvar + LOG_2PI).sum(-1)
    return z, log_q
