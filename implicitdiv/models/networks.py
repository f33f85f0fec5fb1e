"""Plain PyTorch networks for the toy trainers: MLPs, maxout discriminators, autoencoder critics.

Two sizes: "toy" (small MLPs, for tests and quick runs) and "paper" (the ALI/PacGAN/VEEGAN 2D
networks: generator 4 x [400 units, batch norm, ReLU], discriminator 3 maxout layers of 200 units
with 5 pieces).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

ARCHS = ("toy", "paper")


@dataclass(frozen=True)
class Arch:
    name: str
    hidden: int  # generator / encoder width
    layers: int  # generator / encoder hidden layers
    batch_norm: bool
    critic_hidden: int
    critic_layers: int
    maxout_pieces: int  # 1: LeakyReLU units instead of maxout


def arch(name: str) -> Arch:
    if name == "toy":
        return Arch("toy", hidden=64, layers=2, batch_norm=False, critic_hidden=64, critic_layers=2, maxout_pieces=1)
    if name == "paper":
        return Arch("paper", hidden=400, layers=4, batch_norm=True, critic_hidden=200, critic_layers=3, maxout_pieces=5)
    raise ValueError(f"arch must be one of {ARCHS}, got {name!r}")


class Maxout(nn.Module):
    """y = max over k pieces of (W_k x + b_k)."""

    def __init__(self, n_in: int, n_out: int, pieces: int):
        super().__init__()
        self.pieces = pieces
        self.linear = nn.Linear(n_in, n_out * pieces)

    def forward(self, x):
        y = self.linear(x)
        return y.view(*y.shape[:-1], -1, self.pieces).amax(-1)


def generator_mlp(n_in: int, n_out: int, a: Arch, squash: bool = False) -> nn.Sequential:
    """n_in -> layers x [hidden, (batch norm), ReLU] -> n_out (sigmoid when the data lie in [0, 1])."""
    mods: list[nn.Module] = []
    width = n_in
    for _ in range(a.layers):
        mods.append(nn.Linear(width, a.hidden))
        if a.batch_norm:
            mods.append(nn.BatchNorm1d(a.hidden))
        mods.append(nn.ReLU())
        width = a.hidden
    mods.append(nn.Linear(width, n_out))
    if squash:
        mods.append(nn.Sigmoid())
    return nn.Sequential(*mods)


def critic_mlp(n_in: int, n_out: int, a: Arch) -> nn.Sequential:
    """n_in -> critic_layers x [maxout(critic_hidden, pieces) or Linear + LeakyReLU(0.2)] -> n_out."""
    mods: list[nn.Module] = []
    width = n_in
    for _ in range(a.critic_layers):
        if a.maxout_pieces > 1:
            mods.append(Maxout(width, a.critic_hidden, a.maxout_pieces))
        else:
            mods += [nn.Linear(width, a.critic_hidden), nn.LeakyReLU(0.2)]
        width = a.critic_hidden
    mods.append(nn.Linear(width, n_out))
    return nn.Sequential(*mods)


class AutoencoderCritic(nn.Module):
    """The EBGAN / BEGAN discriminator: an autoencoder D(x) = dec(enc(x)) whose reconstruction
    error is the energy."""

    def __init__(self, n_in: int, code: int, a: Arch):
        super().__init__()
        self.encode = critic_mlp(n_in, code, a)
        self.decode = critic_mlp(code, n_in, a)

    def forward(self, x):
        return self.decode(self.encode(x))


class Concat(nn.Module):
    """A critic on several inputs: net(cat(inputs, -1)), e.g. the joint critic D(x, z)."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, *parts):
        return self.net(torch.cat(parts, dim=-1))


class FeatureCritic(nn.Module):
    """MMD-GAN's critic: the features [x, phi(x)]; keeping x makes the map injective, so the kernel
    on features stays characteristic whatever phi learns (the role of the paper's autoencoder)."""

    def __init__(self, n_in: int, n_features: int, a: Arch):
        super().__init__()
        self.phi = critic_mlp(n_in, n_features, a)

    def forward(self, x):
        return torch.cat([x, self.phi(x)], dim=-1)


class CodeHead(nn.Module):
    """InfoGAN's Q: x -> (mean, log-variance) of the code, concatenated."""

    def __init__(self, n_in: int, code_dim: int, a: Arch):
        super().__init__()
        self.code_dim = code_dim
        self.net = critic_mlp(n_in, 2 * code_dim, a)

    def forward(self, x):
        return self.net(x)


class LogVariance(nn.Module):
    """A learned per-coordinate log-variance of a Gaussian decoder p(x | z)."""

    def __init__(self, dim: int):
        super().__init__()
        self.value = nn.Parameter(torch.zeros(dim))
