"""Toy trainer for every model of the set: plain PyTorch MLPs, Adam, a seed and a backend.

One step draws a data batch and prior noise, asks the model's spec for its terms, and updates
both players simultaneously: the generator side (generator, encoder, code head, decoder variance)
on terms["generator"], the critics on terms["discriminator"] (critic_steps times per generator
update where the model asks for it). Gradients of both players are taken from one graph before
either steps.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from . import metrics, networks
from .data import Dataset, load
from .registry import ModelSpec, StepContext, get

GENERATOR_NETS = ("G", "E", "Q", "x_logvar")
SAMPLES = 2_500
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


PAPER = TrainConfig(arch="paper", lr=1e-4, betas=(0.8, 0.999), batch_size=100)  # ALI/PacGAN's 2D setting


@dataclass
class Run:
    spec: ModelSpec
    data: Dataset
    nets: nn.ModuleDict
    latent_dim: int
    history: dict[str, list[float]] = field(default_factory=dict)
    step_seconds: float = float("nan")  # mean wall time of one generator update


def latent_dim_for(data: Dataset, config: TrainConfig) -> int:
    return config.latent_dim or (2 if data.dim <= 2 else min(data.dim, 8))


def _critic(kind: str, d: int, latent: int, a: networks.Arch) -> nn.Module:
    if kind == "data":
        return networks.critic_mlp(d, 1, a)
    if kind == "features":
        return networks.FeatureCritic(d, 16, a)
    if kind == "autoencoder":
        return networks.AutoencoderCritic(d, max(1, min(latent, d // 2)), a)  # a bottleneck: no identity map
    if kind == "pair":
        return networks.Concat(networks.critic_mlp(d + latent, 1, a))
    if kind == "latent":
        return networks.critic_mlp(latent, 1, a)
    if kind == "cycle":
        return networks.Concat(networks.critic_mlp(2 * d, 1, a))
    raise ValueError(f"unknown critic kind {kind!r}")


def _spectral_norm(net: nn.Module) -> None:
    for name, child in list(net.named_children()):
        if isinstance(child, nn.Linear):
            setattr(net, name, nn.utils.parametrizations.spectral_norm(child))
        else:
            _spectral_norm(child)


def build(spec: ModelSpec, data: Dataset, config: TrainConfig) -> tuple[nn.ModuleDict, int]:
    """The model's networks (initialized from torch's global generator) and its latent dim."""
    a = networks.arch(config.arch)
    latent = latent_dim_for(data, config)
    nets = nn.ModuleDict({"G": networks.generator_mlp(latent + spec.code_dim, data.dim, a, squash=data.unit_interval)})
    if spec.encoder:
        nets["E"] = networks.generator_mlp(data.dim, 2 * latent, a)
    if spec.code_dim:
        nets["Q"] = networks.CodeHead(data.dim, spec.code_dim, a)
    if spec.x_logvar:
        nets["x_logvar"] = networks.LogVariance(data.dim)
    for name, kind in spec.critics.items():
        nets[name] = _critic(kind, data.dim, latent, a)
        if spec.spectral_norm:
            _spectral_norm(nets[name])
    return nets, latent


def players(nets: nn.ModuleDict) -> dict[str, list[nn.Parameter]]:
    gen = [p for n, m in nets.items() if n in GENERATOR_NETS for p in m.parameters()]
    critic = [p for n, m in nets.items() if n not in GENERATOR_NETS for p in m.parameters()]
    return {"generator": gen, "discriminator": critic}


def _update(terms, groups, optimizers) -> None:
    """Gradients of every player from the same graph, then every optimizer steps."""
    grads = {k: torch.autograd.grad(terms[k], groups[k], retain_graph=True, allow_unused=True) for k in optimizers}
    for k, opt in optimizers.items():
        opt.zero_grad(set_to_none=True)
        for p, g in zip(groups[k], grads[k]):
            p.grad = g
        opt.step()


def _check_config(config: TrainConfig) -> None:
    for name in ("steps", "batch_size"):
        v = getattr(config, name)
        if isinstance(v, bool) or not isinstance(v, int) or v < (0 if name == "steps" else 1):
            raise ValueError(f"{name} must be an integer >= {0 if name == 'steps' else 1}, got {v!r}")
    if not (config.lr > 0) or math.isinf(config.lr):
        raise ValueError(f"lr must be finite and > 0, got {config.lr!r}")
    networks.arch(config.arch)


def train(model: str, data: Dataset, *, backend=None, seed: int = 0, config: TrainConfig = TrainConfig()) -> Run:
    """Train `model` (a MODELS name) on `data` for config.steps generator updates."""
    spec = get(model)
    _check_config(config)
    torch.manual_seed(seed)
    nets, latent = build(spec, data, config)
    nets.train()
    groups = players(nets)
    opts = {k: torch.optim.Adam(v, lr=config.lr, betas=config.betas) for k, v in groups.items() if v}
    centered = data.train - data.train.mean(0)
    ctx = StepContext(backend=backend, total_variance=float((centered * centered).sum(1).mean()))
    rows = torch.Generator().manual_seed(seed)
    run = Run(spec, data, nets, latent)
    bar = tqdm(range(config.steps), desc=f"{spec.name} [{backend or 'auto'}]", disable=not config.progress, leave=False)
    start = time.perf_counter()
    for _ in bar:
        for k in range(spec.critic_steps):
            x = data.train[torch.randint(0, data.train.shape[0], (config.batch_size,), generator=rows)]
            z = torch.randn(config.batch_size, latent)
            terms = spec.step(nets, x, z, ctx)
            last = k == spec.critic_steps - 1
            active = {n: o for n, o in opts.items() if n in terms and (last or n == "discriminator")}
            _update(terms, groups, active)
            if spec.clip is not None and "discriminator" in active:
                with torch.no_grad():
                    for p in groups["discriminator"]:
                        p.clamp_(-spec.clip, spec.clip)
        for name, value in terms.items():
            run.history.setdefault(name, []).append(float(value.detach()))
        shown = {n: f"{run.history[n][-1]:.3g}" for n in ("generator", "discriminator") if n in terms}
        bar.set_postfix(shown, refresh=False)
    if config.steps:
        run.step_seconds = (time.perf_counter() - start) / config.steps
    nets.eval()
    return run


@torch.no_grad()
def sample(run: Run, n: int = SAMPLES, seed: int = 12345) -> torch.Tensor:
    """n rows from the generator (eval mode), from a fixed noise seed."""
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(n, run.latent_dim + run.spec.code_dim, generator=gen)
    run.nets.eval()
    return run.nets["G"](z)


@torch.no_grad()
def reconstruct(run: Run, rows: torch.Tensor) -> torch.Tensor:
    """x -> mean of q(z | x) -> G."""
    run.nets.eval()
    mean, _ = run.nets["E"](rows).chunk(2, dim=-1)
    return run.nets["G"](mean)


def evaluate(run: Run, samples: torch.Tensor | None = None) -> dict[str, float]:
    """Mode metrics (mixtures of Gaussians), sample MMD^2 against held-out rows, and the held-out
    reconstruction MSE for models with an encoder."""
    samples = sample(run) if samples is None else samples
    out: dict[str, float] = {}
    if run.data.modes is not None:
        out.update(metrics.mode_metrics(samples, run.data.modes, run.data.std))
    out["mmd2"] = metrics.sample_mmd2(samples, run.data.test)
    if run.spec.encoder:
        out["reconstruction_mse"] = metrics.reconstruction_mse(run.data.test, reconstruct(run, run.data.test))
    return out


def train_and_write(model: str, data_name: str, *, steps: int = DEFAULT_STEPS, backend=None, seed: int = 0,
                    out: str | Path | None = None) -> dict:
    """Train, then write metrics.json, samples.npy (2,500 rows), samples.png and, for models with
    an encoder, reconstructions.png into `out`. Returns the metrics record."""
    from . import plots

    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps must be an integer >= 0, got {steps!r}")
    data = load(data_name, seed=seed)
    config = TrainConfig(steps=steps)
    run = train(model, data, backend=backend, seed=seed, config=config)
    samples = sample(run)
    out = Path(out or f"runs/{run.spec.name}-{data.name}-s{seed}")
    out.mkdir(parents=True, exist_ok=True)
    record = {
        "model": run.spec.name, "data": data.name, "steps": steps, "backend": backend or "auto", "seed": seed,
        "arch": config.arch, "step_seconds": run.step_seconds, "metrics": evaluate(run, samples),
        "final_terms": {k: v[-1] for k, v in run.history.items()},
    }
    (out / "metrics.json").write_text(json.dumps(record, indent=2) + "\n")
    np.save(out / "samples.npy", samples.numpy())
    plots.samples(out / "samples.png", samples, data, title=f"{run.spec.name} on {data.name}, {steps} steps")
    if run.spec.encoder:
        rows = data.test[:64]
        plots.reconstructions(out / "reconstructions.png", rows, reconstruct(run, rows), data)
    return record


def run_from_cli(args) -> int:
    """`implicitdiv train MODEL --data D [--steps N] [--backend B] [--seed S] [--out DIR]`:
    train_and_write() with the parsed arguments; prints the metrics, returns the exit status 0."""
    steps = getattr(args, "steps", None)
    seed = getattr(args, "seed", None)
    record = train_and_write(args.model, args.data, steps=DEFAULT_STEPS if steps is None else steps,
                             backend=getattr(args, "backend", None), seed=0 if seed is None else seed,
                             out=getattr(args, "out", None))
    print(json.dumps({k: record[k] for k in ("model", "data", "steps", "backend", "seed", "metrics")}))
    return 0
