"""What every objective of the model set shares: the loss-term dictionary and the two
reconstruction costs for which implicitdiv has no function (it is a divergence library; a cost
between paired points is elementwise and needs no kernel)."""
from __future__ import annotations

import torch

Terms = dict[str, torch.Tensor]
"""Named loss terms of one step. "generator" is minimized by the generator side (generator,
encoder, InfoGAN's Q head, the decoder variance), "discriminator" by the critics; every other
entry is a diagnostic (a divergence estimate, a reconstruction error, ...)."""


def row_squared_error(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """||x_i - y_i||_2^2 for every row i: (N,)."""
    d = x - y
    return (d * d).flatten(1).sum(1)


def squared_error(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """c(x, y) = ||x - y||_2^2 per row, averaged over rows (the WAE cost)."""
    return row_squared_error(x, y).mean()


def absolute_error(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """||x - y||_1 per row, averaged over rows (alpha-GAN's reconstruction, BEGAN's energy)."""
    return (x - y).abs().flatten(1).sum(1).mean()
