"""Toy trainer for every model of the set: seeds stacked into one set of networks, Adam, a backend.

One iteration draws every seed's data batch and prior noise, then updates the model's players in
its spec's order (spec.order: e.g. the critics, then the generator side; DALI: D, then E, then G).
Each player's update recomputes the objective with the networks as they are at that moment, so a
later player sees the earlier players' new parameters (alternating updates); a network output whose
networks were not updated since it was computed is reused (StepNets). A critic_steps > 1 model
updates its critics on that many fresh batches per generator update.

Seeds: train(..., seeds=[0, 1, 2, 3, 4]) trains five runs at once, each with its own data set,
initialization and random draws, in networks whose parameters carry a leading seed axis. The loss
of a player is the sum over seeds of each seed's mean loss, and Adam is elementwise, so each seed's
update is the one its run alone would make (checked in tests/test_training.py); the stack only
saves per-call overhead (benchmarks/RESULTS.md, "Stacked seeds").
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, NamedTuple

import torch
from torch import nn
from tqdm import tqdm

from . import networks
from .data import Dataset
from .registry import ModelSpec, StepContext, get

DEFAULT_STEPS = 2_000


@dataclass(frozen=True)
class TrainConfig:
    steps: int = DEFAULT_STEPS
    batch_size: int = 100
    arch: str = "toy"
    lr: float = 1e-3
    betas: tuple[float, float] = (0.5, 0.999)
    latent_dim: int | None = None  # default: 2 for 2D data, else min(d, 8)
    progress: bool = True
    decay_every: int | None = None  # lr_t = lr / sqrt(1 + t // decay_every); None: constant
    dtype: torch.dtype = torch.float32


EPOCH = 100_000 // 64  # 1,562 iterations: one pass of the DALI authors' toy over its 100k points
# The DALI authors' toy (alexanderhanboli/AIM, gaussian_example.py with main.py's defaults): ALI's
# 2D networks, batch 64, Adam lr 2e-4, betas (0.5, 0.999), lr / sqrt(epoch + 1) per epoch of
# 1,562 iterations, 20 epochs.
PAPER = TrainConfig(steps=20 * EPOCH, arch="paper", lr=2e-4, betas=(0.5, 0.999), batch_size=64, decay_every=EPOCH)


class Draws:
    """Each seed's random stream: every draw is made per seed from that seed's (CPU) generator and
    stacked, so seed s draws the same numbers whatever the other seeds and the device are. Within
    one iteration a named draw is made once and then reused (every player's update sees the same
    noise)."""

    def __init__(self, seeds: list[int], dtype: torch.dtype, device="cpu"):
        self.gens = [torch.Generator().manual_seed(s) for s in seeds]
        self.dtype, self.device = dtype, torch.device(device)
        self.memo: dict[str, torch.Tensor] = {}

    def _stack(self, name, make):
        if name is None or name not in self.memo:
            out = torch.stack([make(g) for g in self.gens])
            if self.device.type == "cuda":  # pinned and asynchronous: no stream sync per draw
                out = out.pin_memory().to(self.device, non_blocking=True)
            elif self.device.type != "cpu":
                out = out.to(self.device)
            if name is None:
                return out
            self.memo[name] = out
        return self.memo[name]

    def normal(self, name: str | None, *shape: int) -> torch.Tensor:
        return self._stack(name, lambda g: torch.randn(*shape, generator=g, dtype=self.dtype))

    def uniform(self, name: str | None, *shape: int) -> torch.Tensor:
        return self._stack(name, lambda g: torch.rand(*shape, generator=g, dtype=self.dtype))

    def integers(self, name: str | None, high: int, *shape: int) -> torch.Tensor:
        return self._stack(name, lambda g: torch.randint(0, high, shape, generator=g))

    def shifts(self, name: str, n: int) -> torch.Tensor:
        """(S, n) indices (i + k) mod n with one k in 1..n-1 per seed: every row paired with another
        row of its batch (a derangement of a randomly ordered batch)."""
        return self._stack(name, lambda g: (torch.arange(n) + torch.randint(1, max(2, n), (1,), generator=g)) % n)


class NetCall(NamedTuple):
    """One network call as StepNets remembers it; the inputs by identity."""
    net: str
    method: str
    input_ids: tuple[int, ...]

    @classmethod
    def of(cls, net: str, method: str, inputs: tuple) -> NetCall:
        return cls(net, method, tuple(id(t) for t in inputs))


class NetOutput(NamedTuple):
    inputs: tuple  # kept while the output is remembered, so that their ids stay unique
    value: Any


class StepNets:
    """The networks as a step sees them: nets("G", z) or nets("D", x, method="trunk") calls the
    network and remembers the output until the player that owns the network is updated."""

    def __init__(self, nets: nn.ModuleDict, owner: dict[str, str]):
        self.nets, self.owner = nets, owner
        self.memo: dict[NetCall, NetOutput] = {}
        self.before: dict[NetCall, NetOutput] = {}  # forgotten outputs, detached: their value before the update

    def module(self, name: str) -> nn.Module:
        return self.nets[name]

    def __call__(self, name: str, *inputs, method: str = "forward"):
        key = NetCall.of(name, method, inputs)
        if key not in self.memo:
            net = self.nets[name]
            fn = net if method == "forward" else getattr(net, method)  # modules called, so hooks run
            self.memo[key] = NetOutput(inputs, fn(*inputs))
        return self.memo[key].value

    def before_update(self, name: str, *inputs, method: str = "forward"):
        """The output as it was before the owner's last update in this iteration, detached (the
        current one if there was none): for terms that are only reported, never differentiated,
        in a later player's update, e.g. a critic's logits on data in the generator's update."""
        key = NetCall.of(name, method, inputs)
        if key in self.before:
            return self.before[key].value
        return self(name, *inputs, method=method)

    def forget(self, player: str | None = None) -> None:
        """Drop the outputs of the networks of `player` (all when None)."""
        if player is None:
            self.memo, self.before = {}, {}
            return
        for k in [k for k in self.memo if self.owner[k.net] == player]:
            inputs, out = self.memo.pop(k)
            self.before[k] = NetOutput(inputs, out.detach() if torch.is_tensor(out) else out)


@dataclass
class Run:
    spec: ModelSpec
    data: list[Dataset]  # one per seed
    nets: nn.ModuleDict
    latent_dim: int
    seeds: list[int]
    history: dict[str, list[float]] = field(default_factory=dict)  # per step, the mean over seeds
    step_seconds: float = float("nan")  # mean wall time of one generator update (all seeds)


def latent_dim_for(data: Dataset, config: TrainConfig) -> int:
    return config.latent_dim or (2 if data.dim <= 2 else min(data.dim, 8))


def _critic(kind: str, d: int, latent: int, a: networks.Arch, gens, spectral: bool) -> nn.Module:
    if kind == "data":
        return networks.Critic(d, 1, a, gens, spectral)
    if kind == "features":
        return networks.FeatureCritic(d, 16, a, gens, spectral)
    if kind == "autoencoder":  # a bottleneck: no identity map
        return networks.AutoencoderCritic(d, max(1, min(latent, d // 2)), a, gens, spectral)
    if kind == "pair":
        return networks.Concat(networks.Critic(d + latent, 1, a, gens, spectral))
    if kind == "latent":
        return networks.Critic(latent, 1, a, gens, spectral)
    if kind == "cycle":
        return networks.Concat(networks.Critic(2 * d, 1, a, gens, spectral))
    raise ValueError(f"unknown critic kind {kind!r}")


class Networks(NamedTuple):
    nets: nn.ModuleDict
    latent_dim: int


def build(spec: ModelSpec, data: Dataset, config: TrainConfig, seeds: list[int]) -> Networks:
    """The model's networks for `seeds` (seed s initialized from torch.Generator().manual_seed(s)
    alone) and its latent dim."""
    a = networks.arch(config.arch)
    latent = latent_dim_for(data, config)
    gens = [torch.Generator().manual_seed(s) for s in seeds]
    before = torch.get_default_dtype()
    torch.set_default_dtype(config.dtype)  # parameters drawn (and spectral norms iterated) in the run's dtype
    try:
        nets = _networks(spec, data, a, latent, gens)
    finally:
        torch.set_default_dtype(before)
    return Networks(nets, latent)


def _networks(spec: ModelSpec, data: Dataset, a: networks.Arch, latent: int, gens) -> nn.ModuleDict:
    nets = nn.ModuleDict({"G": networks.generator_mlp(latent + spec.code_dim, data.dim, a, gens,
                                                      squash=data.unit_interval)})
    for name, kind in spec.critics.items():
        nets[name] = _critic(kind, data.dim, latent, a, gens, spec.spectral_norm)
    if spec.encoder == "data":
        nets["E"] = networks.generator_mlp(data.dim, 2 * latent, a, gens)
    elif spec.encoder == "features":
        nets["E"] = networks.FeatureEncoder(nets["D"].features, latent, a, gens)
    if spec.code_dim:
        nets["Q"] = networks.CodeHead(data.dim, spec.code_dim, a, gens)
    if spec.x_logvar:
        nets["x_logvar"] = networks.LogVariance(data.dim, len(gens))
    return nets


def players(spec: ModelSpec, nets: nn.ModuleDict) -> tuple[dict[str, str], dict[str, list[nn.Parameter]]]:
    """(network -> player, player -> parameters)."""
    owner = {name: spec.player_of(name) for name in nets}
    groups: dict[str, list[nn.Parameter]] = {p: [] for p in spec.order}
    for name, module in nets.items():
        groups[owner[name]].extend(module.parameters())
    return owner, groups


def _optimizer(spec: ModelSpec, params, config: TrainConfig) -> torch.optim.Optimizer:
    if spec.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, lr=config.lr)
    return torch.optim.Adam(params, lr=config.lr, betas=config.betas, fused=True)


def _check_config(config: TrainConfig) -> None:
    for name in ("steps", "batch_size"):
        v = getattr(config, name)
        if isinstance(v, bool) or not isinstance(v, int) or v < (0 if name == "steps" else 1):
            raise ValueError(f"{name} must be an integer >= {0 if name == 'steps' else 1}, got {v!r}")
    if not (config.lr > 0) or math.isinf(config.lr):
        raise ValueError(f"lr must be finite and > 0, got {config.lr!r}")
    if config.decay_every is not None and (not isinstance(config.decay_every, int) or config.decay_every < 1):
        raise ValueError(f"decay_every must be None or an integer >= 1, got {config.decay_every!r}")
    networks.arch(config.arch)


def _seed_list(seed, seeds) -> list[int]:
    out = [seed] if seeds is None else list(seeds)
    if not out or any(isinstance(s, bool) or not isinstance(s, int) for s in out) or len(set(out)) != len(out):
        raise ValueError(f"seeds must be distinct integers, at least one, got {out!r}")
    return out


def _datasets(data: Dataset | list[Dataset] | Callable[[int], Dataset], seeds: list[int]) -> list[Dataset]:
    if isinstance(data, Dataset):
        return [data] * len(seeds)
    if callable(data):
        return [data(s) for s in seeds]
    if len(data) != len(seeds) or len({(d.dim, d.unit_interval, d.train.shape[0]) for d in data}) != 1:
        raise ValueError("give one data set per seed, all of the same shape")
    return list(data)


def train(model: str, data, *, backend=None, seed: int = 0, seeds: list[int] | None = None,
          config: TrainConfig = TrainConfig(), device="cpu", checkpoint_every: int = 0,
          on_checkpoint: Callable[[int, Run], None] | None = None) -> Run:
    """Train `model` (a MODELS name) for config.steps generator updates, one run per seed (`seed`,
    or every seed of `seeds` stacked into one set of networks), on `device`. data: a Dataset, one
    Dataset per seed, or a function seed -> Dataset. on_checkpoint(t, run) is called after every
    `checkpoint_every` iterations before the last, with the networks in eval mode."""
    spec = get(model)
    _check_config(config)
    seeds = _seed_list(seed, seeds)
    datasets = _datasets(data, seeds)
    nets, latent = build(spec, datasets[0], config, seeds)
    nets.to(device).train()
    owner, groups = players(spec, nets)
    opts = {k: _optimizer(spec, v, config) for k, v in groups.items() if v}
    s = len(seeds)
    trains = [d.train.to(device, config.dtype) for d in datasets]
    variances = [float(((t - t.mean(0)) ** 2).sum(1).mean()) for t in trains]
    draws = Draws(seeds, config.dtype, device)
    ctx = StepContext(backend=backend, total_variance=torch.tensor(variances, dtype=config.dtype, device=device)
                      .view(s, 1), draws=draws, optimizers=opts)
    step_nets = StepNets(nets, owner)
    run = Run(spec, datasets, nets, latent, seeds)
    bar = tqdm(range(config.steps), desc=f"{spec.name} x{s} [{backend or 'auto'}]", disable=not config.progress,
               leave=False)
    start = time.perf_counter()
    terms: dict = {}
    curves: dict[str, list[torch.Tensor]] = {}
    for t in bar:
        if config.decay_every is not None:
            for opt in opts.values():
                for group in opt.param_groups:
                    group["lr"] = config.lr / math.sqrt(1 + t // config.decay_every)
        for k in range(spec.critic_steps):
            draws.memo = {}
            step_nets.forget()
            rows = draws.integers(None, trains[0].shape[0], config.batch_size)
            x = torch.stack([tr[r] for tr, r in zip(trains, rows)])
            z = draws.normal(None, config.batch_size, latent)
            last = k == spec.critic_steps - 1
            for player in spec.order:
                if (not last and player != "discriminator") or player not in opts:
                    continue
                ctx.phase = player
                terms = spec.step(step_nets, x, z, ctx)
                grads = torch.autograd.grad(s * terms[player], groups[player], retain_graph=True, allow_unused=True)
                opt = opts[player]
                opt.zero_grad(set_to_none=True)
                for p, g in zip(groups[player], grads):
                    p.grad = g
                opt.step()
                if spec.clip is not None and player == "discriminator":
                    with torch.no_grad():
                        for p in groups[player]:
                            p.clamp_(-spec.clip, spec.clip)
                step_nets.forget(player)
        for name, value in terms.items():
            curves.setdefault(name, []).append(value.detach())  # read back at the end: no sync per step
        if on_checkpoint is not None and checkpoint_every and (t + 1) % checkpoint_every == 0 and t + 1 < config.steps:
            nets.eval()
            on_checkpoint(t + 1, run)
            nets.train()
        if config.progress and t % 100 == 0:
            bar.set_postfix({n: f"{float(terms[n].detach()):.3g}" for n in ("generator", "discriminator") if n in terms},
                            refresh=False)
    run.history = {name: torch.stack(values).tolist() for name, values in curves.items()}
    if config.steps:
        run.step_seconds = (time.perf_counter() - start) / config.steps
    nets.eval()
    return run
