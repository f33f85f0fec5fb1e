"""nn.Module fronts of the public functions, for trainers that compose their losses as modules.

Each module holds its configuration (kernel, bandwidths, kind, reduction, backend) and calls the
function of the same family in forward; the formulas are in those functions' docstrings. None has
parameters or buffers. ``reduction`` ("mean", "sum" or "none") appears where the function takes it,
as in torch.nn's losses.

    loss_fn = implicitdiv.nn.MMDLoss(kernel="rbf", bandwidth=(0.5, 1.0, 2.0), estimator="unbiased")
    loss = loss_fn(generated, data)
"""
from __future__ import annotations

import torch
from torch import nn

from ._types import Bandwidth
from .gaussian import gaussian_mixture_logpdf, gaussian_nll, kl_gaussians, kl_std_normal, reparameterize
from .kernel_sums import kernel_sum
from .mmd import mmd2
from .ratio import adversarial_losses, discriminator_loss, fdiv_estimate, generator_loss, ratio_matching_loss


__all__ = [
    "AdversarialLoss",
    "DiscriminatorLoss",
    "FDivergence",
    "GaussianMixtureLogPDF",
    "GaussianNLLLoss",
    "GeneratorLoss",
    "KLGaussiansLoss",
    "KLStdNormalLoss",
    "KernelSum",
    "MMDLoss",
    "RatioMatchingLoss",
    "Reparameterize",
]


class _Front(nn.Module):
    """Shows the configuration its subclass stores as plain attributes in repr."""

    def extra_repr(self) -> str:
        shown = {k: v for k, v in vars(self).items() if not k.startswith("_") and k != "training"}
        return ", ".join(f"{k}={v!r}" for k, v in shown.items())


class KernelSum(_Front):
    """``kernel_sum(x, y, x_weights=, y_weights=)``: sum_ij a_i k(x_i, y_j) b_j (implicitdiv.kernel_sum)."""

    def __init__(self, kernel: str = "rbf", bandwidth: Bandwidth = 1.0, backend: str | None = None,
                 precision: str = "ieee") -> None:
        super().__init__()
        self.kernel = kernel
        self.bandwidth = bandwidth
        self.backend = backend
        self.precision = precision

    def forward(self, x: torch.Tensor, y: torch.Tensor, x_weights: torch.Tensor | None = None,
                y_weights: torch.Tensor | None = None) -> torch.Tensor:
        return kernel_sum(x, y, kernel=self.kernel, bandwidth=self.bandwidth, x_weights=x_weights,
                          y_weights=y_weights, backend=self.backend, precision=self.precision)


class MMDLoss(_Front):
    """``mmd2(x, y)``: the squared MMD with a fixed kernel, bandwidth(s) and estimator (implicitdiv.mmd2)."""

    def __init__(self, kernel: str = "rbf", bandwidth: Bandwidth = 1.0, estimator: str = "biased",
                 backend: str | None = None, precision: str = "ieee") -> None:
        super().__init__()
        self.kernel = kernel
        self.bandwidth = bandwidth
        self.estimator = estimator
        self.backend = backend
        self.precision = precision

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return mmd2(x, y, kernel=self.kernel, bandwidth=self.bandwidth, estimator=self.estimator,
                    backend=self.backend, precision=self.precision)


class DiscriminatorLoss(_Front):
    """``discriminator_loss(real, fake)`` of one kind (gan, hinge, wgan, lsgan or an f-divergence);
    with reduction="none" the pair (terms on real, terms on fake)."""

    def __init__(self, kind: str = "gan", reduction: str = "mean", backend: str | None = None) -> None:
        super().__init__()
        self.kind = kind
        self.reduction = reduction
        self.backend = backend

    def forward(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        return discriminator_loss(real, fake, kind=self.kind, reduction=self.reduction, backend=self.backend)


class GeneratorLoss(_Front):
    """``generator_loss(fake)`` of one kind, saturating or not."""

    def __init__(self, kind: str = "gan", saturating: bool = False, reduction: str = "mean",
                 backend: str | None = None) -> None:
        super().__init__()
        self.kind = kind
        self.saturating = saturating
        self.reduction = reduction
        self.backend = backend

    def forward(self, fake: torch.Tensor) -> torch.Tensor:
        return generator_loss(fake, kind=self.kind, saturating=self.saturating, reduction=self.reduction,
                              backend=self.backend)


class AdversarialLoss(_Front):
    """``adversarial_losses(real, fake)``: (discriminator loss, generator loss), means, from one pass."""

    def __init__(self, kind: str = "gan", saturating: bool = False, backend: str | None = None) -> None:
        super().__init__()
        self.kind = kind
        self.saturating = saturating
        self.backend = backend

    def forward(self, real: torch.Tensor, fake: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return adversarial_losses(real, fake, kind=self.kind, saturating=self.saturating, backend=self.backend)


class FDivergence(_Front):
    """``fdiv_estimate(real, fake)``: the variational lower bound on D_f(P || Q) from critic logits."""

    def __init__(self, divergence: str = "kl", backend: str | None = None) -> None:
        super().__init__()
        self.divergence = divergence
        self.backend = backend

    def forward(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        return fdiv_estimate(real, fake, divergence=self.divergence, backend=self.backend)


class RatioMatchingLoss(_Front):
    """``ratio_matching_loss(r_p, r_q)``: least-squares density-ratio matching (uLSIF)."""

    def __init__(self, backend: str | None = None) -> None:
        super().__init__()
        self.backend = backend

    def forward(self, r_p: torch.Tensor, r_q: torch.Tensor) -> torch.Tensor:
        return ratio_matching_loss(r_p, r_q, backend=self.backend)


class GaussianNLLLoss(_Front):
    """``gaussian_nll(z, mean, logvar)``: the diagonal-Gaussian negative log-likelihood, summed over
    the last dim. Unlike torch.nn.GaussianNLLLoss it takes the log-variance and keeps the log 2 pi."""

    def __init__(self, reduction: str = "mean", backend: str | None = None) -> None:
        super().__init__()
        self.reduction = reduction
        self.backend = backend

    def forward(self, z: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        return gaussian_nll(z, mean, logvar, reduction=self.reduction, backend=self.backend)


class KLStdNormalLoss(_Front):
    """``kl_std_normal(mean, logvar)``: KL of a diagonal Gaussian to N(0, I), a VAE's prior term."""

    def __init__(self, reduction: str = "mean", backend: str | None = None) -> None:
        super().__init__()
        self.reduction = reduction
        self.backend = backend

    def forward(self, mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        return kl_std_normal(mean, logvar, reduction=self.reduction, backend=self.backend)


class KLGaussiansLoss(_Front):
    """``kl_gaussians(mean_q, logvar_q, mean_p, logvar_p)``: KL(q || p) of diagonal Gaussians."""

    def __init__(self, reduction: str = "mean", backend: str | None = None) -> None:
        super().__init__()
        self.reduction = reduction
        self.backend = backend

    def forward(self, mean_q: torch.Tensor, logvar_q: torch.Tensor, mean_p: torch.Tensor,
                logvar_p: torch.Tensor) -> torch.Tensor:
        return kl_gaussians(mean_q, logvar_q, mean_p, logvar_p, reduction=self.reduction, backend=self.backend)


class Reparameterize(_Front):
    """``reparameterize(mean, logvar, eps)``: (z, log q(z)), the sampling layer of a VAE's encoder."""

    def __init__(self, backend: str | None = None) -> None:
        super().__init__()
        self.backend = backend

    def forward(self, mean: torch.Tensor, logvar: torch.Tensor,
                eps: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        return reparameterize(mean, logvar, eps, backend=self.backend)


class GaussianMixtureLogPDF(_Front):
    """``gaussian_mixture_logpdf(z, means, logvars)``: log-density under the equal-weight mixture."""

    def __init__(self, backend: str | None = None) -> None:
        super().__init__()
        self.backend = backend

    def forward(self, z: torch.Tensor, means: torch.Tensor, logvars: torch.Tensor) -> torch.Tensor:
        return gaussian_mixture_logpdf(z, means, logvars, backend=self.backend)
