"""Scoring a trained run: samples and reconstructions of every seed's networks (eval mode, one
fixed noise draw), and per seed the metrics of metrics.py."""
from __future__ import annotations

import torch

from . import metrics
from .trainer import Run, StepNets

SAMPLES = 2_500


def _noise(run: Run, n: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    w = run.nets["G"][0].weight
    z = torch.randn(n, run.latent_dim + run.spec.code_dim, generator=gen, dtype=w.dtype)
    return z.to(w.device).expand(len(run.seeds), -1, -1)


@torch.no_grad()
def sample(run: Run, n: int = SAMPLES, seed: int = 12345) -> torch.Tensor:
    """n rows from every seed's generator (eval mode), from one fixed noise draw: (S, n, d)."""
    run.nets.eval()
    return run.nets["G"](_noise(run, n, seed))


@torch.no_grad()
def reconstruct(run: Run, rows: torch.Tensor) -> torch.Tensor:
    """x -> mean of q(z | x) -> G, for (S, n, d) rows."""
    run.nets.eval()
    nets = StepNets(run.nets, {name: "" for name in run.nets})
    return run.nets["G"](run.spec.encode(nets, rows))


def evaluate_seeds(run: Run, samples: torch.Tensor | None = None) -> list[dict[str, float]]:
    """Per seed: mode metrics (mixtures of Gaussians), sample MMD^2 against held-out rows, and the
    held-out reconstruction MSE for models with an encoder."""
    samples = (sample(run) if samples is None else samples).cpu()
    if run.spec.encoder:
        n_test = min(d.test.shape[0] for d in run.data)
        w = run.nets["G"][0].weight
        tests = torch.stack([d.test[:n_test] for d in run.data]).to(w.device, w.dtype)
        recs = reconstruct(run, tests).cpu()
        tests = tests.cpu()
    out = []
    for i, data in enumerate(run.data):
        m: dict[str, float] = {}
        if data.modes is not None:
            m.update(metrics.mode_metrics(samples[i], data.modes, data.std))
        m["mmd2"] = metrics.sample_mmd2(samples[i], data.test)
        if run.spec.encoder:
            m["reconstruction_mse"] = metrics.reconstruction_mse(tests[i], recs[i])
        out.append(m)
    return out


def evaluate(run: Run, samples: torch.Tensor | None = None) -> dict[str, float]:
    """evaluate_seeds() of a one-seed run (samples: (n, d) or (1, n, d))."""
    if len(run.seeds) != 1:
        raise ValueError(f"evaluate() takes a one-seed run, this one has seeds {run.seeds}: use evaluate_seeds()")
    if samples is not None and samples.dim() == 2:
        samples = samples.unsqueeze(0)
    return evaluate_seeds(run, samples)[0]
