"""Plain PyTorch networks of the toy trainers, stacked over seeds.

Every network holds the parameters of S independent runs (one per seed) with a leading seed axis
and maps inputs (S, B, d) -> (S, B, d'): a linear layer is one batched matmul over the seeds, a
batch norm normalizes each seed's batch with its own statistics. Seed s of a stack is initialized
from its own generator exactly as a stack of one with that generator, and nothing mixes seeds, so
seed s of an S-stack trains as the run of seed s alone would (tests/test_training.py checks it).

Sizes: "toy" (small MLPs, for tests and quick runs), "small" (3 x 128 MLPs with batch norm in
the generator and encoders as in the paper's networks, LeakyReLU critics: a cheap scale for long CPU
runs; "small_nobn" is the same without the batch norm, where DALI's learned-variance latent term
drives its generator into collapse: benchmarks/RESULTS.md "Table 2 (25 Gaussians)") and "paper" (the ALI/PacGAN/VEEGAN 2D
networks, also those of the DALI authors' toy: generator 4 x [400 units, batch norm, ReLU],
discriminator 3 maxout layers of 200 units with 5 pieces, weights drawn from N(0, 0.02^2) and
zero biases as the DALI authors' `utils.initialize_weights` does).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

ARCHS = ("toy", "small", "small_nobn", "paper")
POWER_ITERATIONS_AT_START = 15  # as torch.nn.utils.parametrizations.spectral_norm


@dataclass(frozen=True)
class Arch:
    name: str
    hidden: int  # generator / encoder width
    layers: int  # generator / encoder hidden layers
    batch_norm: bool
    critic_hidden: int
    critic_layers: int
    maxout_pieces: int  # 1: LeakyReLU units instead of maxout
    init_std: float | None  # N(0, init_std^2) weights and zero biases; None: torch's nn.Linear default


def arch(name: str) -> Arch:
    if name == "toy":
        return Arch("toy", hidden=64, layers=2, batch_norm=False, critic_hidden=64, critic_layers=2, maxout_pieces=1,
                    init_std=None)
    if name == "small":
        return Arch("small", hidden=128, layers=3, batch_norm=True, critic_hidden=128, critic_layers=3,
                    maxout_pieces=1, init_std=None)
    if name == "small_nobn":  # the ablation of RESULTS.md's Table 2 section
        return Arch("small_nobn", hidden=128, layers=3, batch_norm=False, critic_hidden=128, critic_layers=3,
                    maxout_pieces=1, init_std=None)
    if name == "paper":
        return Arch("paper", hidden=400, layers=4, batch_norm=True, critic_hidden=200, critic_layers=3,
                    maxout_pieces=5, init_std=0.02)
    raise ValueError(f"arch must be one of {ARCHS}, got {name!r}")


def _unit(v: torch.Tensor) -> torch.Tensor:
    return v / v.norm(dim=-1, keepdim=True).clamp_min(1e-12)


class Linear(nn.Module):
    """y_s = x_s W_s + b_s for every seed s: (S, B, n_in) -> (S, B, n_out), one batched matmul.

    spectral=True divides W_s by its largest singular value, estimated as in Miyato et al. (2018,
    algorithm 1) and torch's spectral_norm: one power iteration per forward in training mode
    (15 at construction), the vectors u, v kept as buffers and not differentiated."""

    def __init__(self, n_in: int, n_out: int, gens: list[torch.Generator], init_std: float | None = None,
                 spectral: bool = False):
        super().__init__()
        s = len(gens)
        weight, bias = torch.empty(s, n_in, n_out), torch.zeros(s, 1, n_out)
        for i, g in enumerate(gens):
            if init_std is None:  # nn.Linear: U(-1/sqrt(n_in), 1/sqrt(n_in)) for weights and biases
                bound = 1.0 / math.sqrt(n_in)
                weight[i] = (2.0 * torch.rand(n_in, n_out, generator=g) - 1.0) * bound
                bias[i, 0] = (2.0 * torch.rand(n_out, generator=g) - 1.0) * bound
            else:
                weight[i] = init_std * torch.randn(n_in, n_out, generator=g)
        self.weight, self.bias = nn.Parameter(weight), nn.Parameter(bias)
        self.spectral = spectral
        if spectral:
            self.register_buffer("u", _unit(torch.stack([torch.randn(n_out, generator=g) for g in gens])))
            self.register_buffer("v", _unit(torch.stack([torch.randn(n_in, generator=g) for g in gens])))
            self._power_iteration(POWER_ITERATIONS_AT_START)

    @torch.no_grad()
    def _power_iteration(self, count: int) -> None:
        w = self.weight  # as a map n_in -> n_out it is W^T: u lives in n_out, v in n_in
        for _ in range(count):
            self.v.copy_(_unit(torch.bmm(w, self.u.unsqueeze(-1)).squeeze(-1)))
            self.u.copy_(_unit(torch.bmm(self.v.unsqueeze(1), w).squeeze(1)))

    def effective_weight(self) -> torch.Tensor:
        if not self.spectral:
            return self.weight
        if self.training:
            self._power_iteration(1)
        u, v = self.u.clone(), self.v.clone()  # the next forward updates the buffers in place
        sigma = torch.bmm(torch.bmm(v.unsqueeze(1), self.weight), u.unsqueeze(-1)).reshape(-1, 1, 1)
        return self.weight / sigma

    def forward(self, x):
        return torch.baddbmm(self.bias, x, self.effective_weight())


class BatchNorm(nn.Module):
    """nn.BatchNorm1d for every seed over its own batch: (S, B, n), statistics over B."""

    def __init__(self, n: int, seeds: int):
        super().__init__()
        self.weight, self.bias = nn.Parameter(torch.ones(seeds, n)), nn.Parameter(torch.zeros(seeds, n))
        self.register_buffer("running_mean", torch.zeros(seeds * n))
        self.register_buffer("running_var", torch.ones(seeds * n))

    def forward(self, x):
        s, b, n = x.shape  # seed s, feature j is channel s * n + j of one (B, S * n) batch norm
        y = F.batch_norm(x.transpose(0, 1).reshape(b, s * n), self.running_mean, self.running_var,
                         self.weight.reshape(-1), self.bias.reshape(-1), self.training, 0.1, 1e-5)
        return y.view(b, s, n).transpose(0, 1)


class Maxout(nn.Module):
    """y = max over k pieces of (W_k x + b_k)."""

    def __init__(self, n_in: int, n_out: int, pieces: int, gens, init_std=None, spectral=False):
        super().__init__()
        self.pieces = pieces
        self.linear = Linear(n_in, n_out * pieces, gens, init_std, spectral)

    def forward(self, x):
        y = self.linear(x)
        return y.view(*y.shape[:-1], self.pieces, -1).amax(-2)  # pieces-major: the fastest of the layouts tried


def _hidden_stack(n_in: int, width: int, layers: int, a: Arch, gens) -> tuple[list[nn.Module], int]:
    mods: list[nn.Module] = []
    for _ in range(layers):
        mods.append(Linear(n_in, width, gens, a.init_std))
        if a.batch_norm:
            mods.append(BatchNorm(width, len(gens)))
        mods.append(nn.ReLU())
        n_in = width
    return mods, n_in


def generator_mlp(n_in: int, n_out: int, a: Arch, gens, squash: bool = False, layers: int | None = None) -> nn.Sequential:
    """n_in -> layers x [hidden, (batch norm), ReLU] -> n_out (sigmoid when the data lie in [0, 1])."""
    mods, width = _hidden_stack(n_in, a.hidden, a.layers if layers is None else layers, a, gens)
    mods.append(Linear(width, n_out, gens, a.init_std))
    if squash:
        mods.append(nn.Sigmoid())
    return nn.Sequential(*mods)


class Critic(nn.Module):
    """n_in -> critic_layers x [maxout(critic_hidden, pieces) or Linear + LeakyReLU(0.2)] (the trunk,
    whose output are the critic's features) -> Linear to n_out (the head)."""

    def __init__(self, n_in: int, n_out: int, a: Arch, gens, spectral: bool = False):
        super().__init__()
        mods: list[nn.Module] = []
        width = n_in
        for _ in range(a.critic_layers):
            if a.maxout_pieces > 1:
                mods.append(Maxout(width, a.critic_hidden, a.maxout_pieces, gens, a.init_std, spectral))
            else:
                mods += [Linear(width, a.critic_hidden, gens, a.init_std, spectral), nn.LeakyReLU(0.2)]
            width = a.critic_hidden
        self.features = width
        self.trunk = nn.Sequential(*mods)
        self.head = Linear(width, n_out, gens, a.init_std, spectral)

    def forward(self, x):
        return self.head(self.trunk(x))


class AutoencoderCritic(nn.Module):
    """The EBGAN / BEGAN discriminator: an autoencoder D(x) = dec(enc(x)) whose reconstruction
    error is the energy."""

    def __init__(self, n_in: int, code: int, a: Arch, gens, spectral: bool = False):
        super().__init__()
        self.encode = Critic(n_in, code, a, gens, spectral)
        self.decode = Critic(code, n_in, a, gens, spectral)

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

    def __init__(self, n_in: int, n_features: int, a: Arch, gens, spectral: bool = False):
        super().__init__()
        self.phi = Critic(n_in, n_features, a, gens, spectral)

    def forward(self, x):
        return torch.cat([x, self.phi(x)], dim=-1)


class CodeHead(nn.Module):
    """InfoGAN's Q: x -> (mean, log-variance) of the code, concatenated."""

    def __init__(self, n_in: int, code_dim: int, a: Arch, gens):
        super().__init__()
        self.code_dim = code_dim
        self.net = Critic(n_in, 2 * code_dim, a, gens)

    def forward(self, x):
        return self.net(x)


class FeatureEncoder(nn.Module):
    """DALI's encoder on the discriminator's features (DALI paper, section 4): a shared layer, then
    a mean head and a log-variance head (as in the DALI authors' toy), concatenated:
    h -> [hidden, (batch norm), ReLU] -> {mean, logvar} each [hidden, (batch norm), ReLU] -> latent."""

    def __init__(self, n_features: int, latent: int, a: Arch, gens):
        super().__init__()
        mods, width = _hidden_stack(n_features, a.hidden, 1, a, gens)
        self.shared = nn.Sequential(*mods)
        self.mean = generator_mlp(width, latent, a, gens, layers=1)
        self.logvar = generator_mlp(width, latent, a, gens, layers=1)

    def forward(self, h):
        shared = self.shared(h)
        return torch.cat([self.mean(shared), self.logvar(shared)], dim=-1)


class LogVariance(nn.Module):
    """A learned per-coordinate log-variance of a Gaussian decoder p(x | z), one per seed: (S, 1, d)."""

    def __init__(self, dim: int, seeds: int):
        super().__init__()
        self.value = nn.Parameter(torch.zeros(seeds, 1, dim))

    def forward(self):
        return self.value
