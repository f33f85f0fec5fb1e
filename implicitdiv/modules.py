"""nn.Module fronts of the public functions, for trainers that compose losses as modules.

Each holds its configuration (kernel, bandwidths, kind, reduction, backend) and calls the functional
form in forward; the formulas are in the docstrings of the functions they call."""
from __future__ import annotations

import torch
from torch import nn

from .gaussian import gaussian_nll, kl_std_normal
from .mmd import mmd2
from .ratio import adversarial_losses, discriminator_loss, generator_loss


class MMD2(nn.Module):
    """MMD^2(x, y) with a fixed kernel, bandwidth(s) and estimator (see implicitdiv.mmd2)."""

    def __init__(self, kernel="rbf", bandwidth=1.0, estimator="biased", backend=None):
        super().__init__()
        self.kernel, self.bandwidth, self.estimator, self.backend = kernel, bandwidth, estimator, backend

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return mmd2(x, y, kernel=self.kernel, bandwidth=self.bandwidth, estimator=self.estimator, backend=self.backend)

    def extra_repr(self) -> str:
        return f"kernel={self.kernel!r}, bandwidth={self.bandwidth!r}, estimator={self.estimator!r}"


class DiscriminatorLoss(nn.Module):
    """discriminator_loss(real, fake) of one kind (gan, hinge, wgan, lsgan or an f-divergence)."""

    def __init__(self, kind="gan", reduction="mean", backend=None):
        super().__init__()
        self.kind, self.reduction, self.backend = kind, reduction, backend

    def forward(self, real: torch.Tensor, fake: torch.Tensor):
        return discriminator_loss(real, fake, kind=self.kind, reduction=self.reduction, backend=self.backend)


class GeneratorLoss(nn.Module):
    """generator_loss(fake) of one kind, saturating or not."""

    def __init__(self, kind="gan", saturating=False, reduction="mean", backend=None):
        super().__init__()
        self.kind, self.saturating, self.reduction, self.backend = kind, saturating, reduction, backend

    def forward(self, fake: torch.Tensor) -> torch.Tensor:
        return generator_loss(fake, kind=self.kind, saturating=self.saturating, reduction=self.reduction,
                              backend=self.backend)


class AdversarialLosses(nn.Module):
    """(discriminator loss, generator loss) from one pass over the logits."""

    def __init__(self, kind="gan", saturating=False, backend=None):
        super().__init__()
        self.kind, self.saturating, self.backend = kind, saturating, backend

    def forward(self, real: torch.Tensor, fake: torch.Tensor):
        return adversarial_losses(real, fake, kind=self.kind, saturating=self.saturating, backend=self.backend)


class GaussianNLL(nn.Module):
    """gaussian_nll(z, mean, logvar): the diagonal-Gaussian negative log-likelihood."""

    def __init__(self, reduction="mean", backend=None):
        super().__init__()
        self.reduction, self.backend = reduction, backend

    def forward(self, z: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        return gaussian_nll(z, mean, logvar, reduction=self.reduction, backend=self.backend)


class KLStdNormal(nn.Module):
    """kl_std_normal(mean, logvar): KL of a diagonal Gaussian to N(0, I), a VAE's prior term."""

    def __init__(self, reduction="mean", backend=None):
        super().__init__()
        self.reduction, self.backend = reduction, backend

    def forward(self, mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        return kl_std_normal(mean, logvar, reduction=self.reduction, backend=self.backend)
