"""implicitdiv: fused, memory-frugal divergence estimators for training implicit generative models.

Three families share one API whatever the backend (reference PyTorch, fused C++ on CPU, fused
Triton on GPU): kernel sums and MMD, discriminator log-ratio losses, Gaussian latent terms.
"""
from . import nn
from .backend import backends, use_backend
from .gaussian import gaussian_mixture_logpdf, gaussian_nll, kl_gaussians, kl_std_normal, reparameterize
from .kernel_sums import kernel_sum
from .kid import kid
from .mmd import median_bandwidth, mmd2, mmd_test
from .ratio import (
    FDIVERGENCES,
    adversarial_losses,
    discriminator_loss,
    fdiv_estimate,
    generator_loss,
    log_density_ratio,
    ratio_matching_loss,
)

__version__ = "0.1.0"

__all__ = [
    "FDIVERGENCES",
    "adversarial_losses",
    "backends",
    "discriminator_loss",
    "fdiv_estimate",
    "gaussian_mixture_logpdf",
    "gaussian_nll",
    "generator_loss",
    "kernel_sum",
    "kid",
    "kl_gaussians",
    "kl_std_normal",
    "log_density_ratio",
    "median_bandwidth",
    "mmd2",
    "mmd_test",
    "nn",
    "ratio_matching_loss",
    "reparameterize",
    "use_backend",
]
