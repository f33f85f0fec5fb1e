"""What every objective of the model set shares: the loss-term dictionary and the two
reconstruction costs for which implicitdiv has no function (it is a divergence library; a cost
between paired points is elementwise and needs no kernel)."""
from __future__ import annotations

import torch

Terms = dict[str, torch.Tensor]
"""Named loss terms of one step. "generator" is minimized by the generator side (generator,
encoder, InfoGAN's Q head, the decoder variance), "discriminator" by the critics, "encoder" by the
encoder of the models that update it on its own (DALI, VAEGAN); every other entry is a
diagnostic (a divergence estimate, a reconstruction error, ...)."""


def row_squared_error(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """||x_i - y_i||_2^2 for every row i over the last dim: (..., N)."""
    d = x - y
    return (d * d).sum(-1)


def squared_error(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """c(x, y) = ||x - y||_2^2 per row, averaged over rows (and seeds) (the WAE cost)."""
    return row_squared_error(x, y).mean()


def row_absolute_error(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """||x_i - y_i||_1 for every row i: (..., N)."""
    return (x - y).abs().sum(-1)


def absolute_error(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """||x - y||_1 per row, averaged over rows (and seeds) (alpha-GAN's reconstruction)."""
    return row_absolute_error(x, y).mean()
