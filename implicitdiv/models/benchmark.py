"""What benchmarks/grid25.py and benchmarks/digits.py share: the command line, the loop over
models (each model's seeds trained stacked, its records appended to a JSON-lines log as soon as
they finish, so a cut-off run keeps its results), and the step-time ratio of the fast backend
against the reference."""
from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time
from pathlib import Path

import torch

import implicitdiv as idv

from . import networks
from .artefacts import append_records, curve_log
from .data import load
from .evaluation import evaluate_seeds
from .registry import get
from .trainer import PAPER, TrainConfig, train


def parser(description: str, models: tuple[str, ...], steps: int, config: TrainConfig = PAPER) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--steps", type=int, default=steps, help=f"generator updates per run (default {steps})")
    p.add_argument("--seeds", type=int, default=5, help="seeds 0 .. S-1, trained stacked (default 5)")
    p.add_argument("--models", default=",".join(models), help="comma-separated MODELS names")
    p.add_argument("--lr", type=float, default=config.lr, help=f"Adam learning rate (default {config.lr})")
    p.add_argument("--arch", default=config.arch, choices=networks.ARCHS,
                   help=f"network size (implicitdiv.models.networks; default {config.arch})")
    p.add_argument("--decay-every", type=int, default=config.decay_every or 0,
                   help=f"lr / sqrt(1 + t // N); 0: constant (default {config.decay_every or 0})")
    p.add_argument("--backend", default="reference", help="backend of the training runs (default reference)")
    p.add_argument("--device", default="cpu", help="torch device of the training runs (default cpu)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1: the machine is shared)")
    p.add_argument("--log", default=None, help="JSON-lines file of finished runs (default runs/bench/<name>.jsonl)")
    p.add_argument("--results", default=str(Path(__file__).resolve().parents[2] / "benchmarks" / "RESULTS.md"))
    p.add_argument("--timing-steps", type=int, default=0,
                   help="also time N steps per model on the fast backend against the reference (0: skip)")
    p.add_argument("--checkpoint-every", type=int, default=0,
                   help="also log every seed's metrics every N iterations (to <log>_curve.jsonl; 0: never)")
    p.add_argument("--no-write", action="store_true", help="print the tables, leave RESULTS.md alone")
    return p


def fast_backend(model: str) -> tuple[str | None, str]:
    """The fast backend to time a model on, and a note: "cpp" when every implicitdiv function the
    model calls is fused there, "auto" (fused where possible) when some are, else None."""
    uses = get(model).uses
    if "cpp" not in idv.backends():
        return None, "implicitdiv._C is not built"
    fused = [f for f in uses if "cpp" in idv.backends(f)]
    if not uses:
        return None, "calls no implicitdiv function with a backend"
    if len(fused) == len(uses):
        return "cpp", "all fused"
    if fused:
        return "auto", f"fused: {', '.join(fused)}; reference: {', '.join(f for f in uses if f not in fused)}"
    return None, f"no fused cpp op yet for {', '.join(uses)}"


def run_stack(data_name: str, model: str, seeds: int, config: TrainConfig, backend: str, log: Path,
              device="cpu", checkpoint_every: int = 0) -> list[dict]:
    """Train `model` for seeds 0 .. seeds-1 stacked into one set of networks (seed s on
    load(data_name, seed=s)), then append one record per seed to the JSON-lines `log`; every
    `checkpoint_every` iterations, the seeds' metrics so far go to curve_log(log)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    base = {"model": model, "data": data_name, "steps": config.steps, "lr": config.lr, "batch_size": config.batch_size,
            "arch": config.arch, "backend": backend, "device": str(device), "threads": torch.get_num_threads(),
            "stacked_seeds": seeds}

    def checkpoint(t, run):
        records = [{**base, "seed": s, "checkpoint": t, "wall_seconds": time.perf_counter() - t0, "metrics": m}
                   for s, m in zip(run.seeds, evaluate_seeds(run))]
        append_records(curve_log(log), records, echo=False)

    run = train(model, lambda s: load(data_name, seed=s), backend=backend, seeds=list(range(seeds)), config=config,
                device=device, checkpoint_every=checkpoint_every, on_checkpoint=checkpoint)
    wall = time.perf_counter() - t0
    records = [{**base, "seed": seed, "step_seconds": run.step_seconds, "wall_seconds": wall, "metrics": m}
               for seed, m in zip(run.seeds, evaluate_seeds(run))]
    append_records(log, records)
    return records


def run_all(data_name: str, models: list[str], seeds: int, config: TrainConfig, backend: str, log: Path,
            device="cpu", checkpoint_every: int = 0) -> list[dict]:
    return [r for model in models
            for r in run_stack(data_name, model, seeds, config, backend, log, device, checkpoint_every)]


def run_and_report(data_name: str, models: list[str], args, config: TrainConfig, table, title: str,
                   section: str | None = None) -> None:
    """Train every model over args.seeds stacked seeds, print the table with the command that made
    it, and (unless --no-write) put it under ``title`` in the results file."""
    from .report import SECTION, write_subsection

    log = Path(args.log or f"runs/bench/{data_name}.jsonl")
    records = run_all(data_name, models, args.seeds, config, args.backend, log, args.device, args.checkpoint_every)
    body = (f"Command: `{command_line()}` (backend {args.backend}, {args.threads} torch thread(s); "
            f"mean ± std over seeds 0..{args.seeds - 1}, trained stacked; per-run log {log}).\n\n"
            + table(records, models))
    print(body)
    if not args.no_write:
        write_subsection(Path(args.results), title, body, section or SECTION)


def step_time_ratios(data_name: str, models: list[str], steps: int, config: TrainConfig, repeats: int = 3) -> list[dict]:
    """Per model: median over interleaved repeats of (reference step time / fast step time)."""
    data = load(data_name, seed=0)
    out = []
    cfg = dataclasses.replace(config, steps=steps, progress=False)
    for model in models:
        fast, note = fast_backend(model)
        if fast is None:
            out.append({"model": model, "fast": None, "note": note})
            continue
        ratios = []
        for _ in range(repeats):
            ref = train(model, data, backend="reference", seed=0, config=cfg).step_seconds
            fst = train(model, data, backend=fast, seed=0, config=cfg).step_seconds
            ratios.append(ref / fst)
        out.append({"model": model, "fast": fast, "note": note, "ratio": statistics.median(ratios), "ratios": ratios})
        print(json.dumps(out[-1]), flush=True)
    return out


def _adversarial_loss(backend, batch):
    r, f = torch.randn(batch, requires_grad=True), torch.randn(batch, requires_grad=True)
    d, g = idv.adversarial_losses(r, f, kind="gan", backend=backend)
    torch.autograd.grad(d + g, (r, f))


def _gmmn_loss(backend, batch):
    from .moment_matching import GMMN_BANDWIDTHS

    x, y = torch.randn(batch, 2), torch.randn(batch, 2, requires_grad=True)
    torch.autograd.grad(idv.mmd2(x, y, kernel="rbf", bandwidth=GMMN_BANDWIDTHS, backend=backend), y)


LOSS_PROBES = {"gan": ("adversarial_losses", _adversarial_loss), "gmmn": ("mmd2, 7 bandwidths", _gmmn_loss)}


def loss_share(data_name: str, config: TrainConfig, repeats: int = 200) -> list[dict]:
    """How much of a reference training step the loss takes: forward + backward of the model's
    loss call alone at the training batch size, reference and cpp interleaved (median of
    `repeats`), against the median reference step time of three 20-step runs."""
    data = load(data_name, seed=0)
    cfg = dataclasses.replace(config, steps=20, progress=False)
    rows = []
    for model, (what, probe) in LOSS_PROBES.items():
        step = statistics.median(train(model, data, backend="reference", seed=0, config=cfg).step_seconds
                                 for _ in range(3))
        times = {"reference": [], "cpp": []}
        for _ in range(repeats):
            for b in times:
                t0 = time.perf_counter()
                probe(b, config.batch_size)
                times[b].append(time.perf_counter() - t0)
        med = {b: statistics.median(v) for b, v in times.items()}
        rows.append({"model": model, "loss": what, "step_ms": 1e3 * step, "reference_us": 1e6 * med["reference"],
                     "cpp_us": 1e6 * med["cpp"]})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def loss_share_table(rows: list[dict], command: str) -> str:
    lines = ["| model | loss call | reference step | loss fwd+bwd, reference | loss fwd+bwd, cpp "
             "| loss share of the step, reference / cpp |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['loss']} | {r['step_ms']:.0f} ms | {r['reference_us']:.0f} us | "
                     f"{r['cpp_us']:.0f} us | {100 * r['reference_us'] / (1e3 * r['step_ms']):.1f} % / "
                     f"{100 * r['cpp_us'] / (1e3 * r['step_ms']):.1f} % |")
    return (f"The loss call alone at batch 100 (forward + backward, reference and cpp interleaved, median of 200) "
            f"against a reference training step (median of three 20-step runs). Command: `{command}`\n\n"
            + "\n".join(lines))


def timing_table(rows: list[dict], steps: int, command: str) -> str:
    lines = ["| model | fast backend | reference / fast step time (median of 3) | note |", "|---|---|---|---|"]
    for r in rows:
        ratio = f"{r['ratio']:.2f}x" if "ratio" in r else "-"
        lines.append(f"| {r['model']} | {r['fast'] or '-'} | {ratio} | {r['note']} |")
    return (f"Training step time, {steps} steps per measurement, interleaved reference/fast repeats in one "
            f"process. Command: `{command}`\n\n" + "\n".join(lines))


def setup(args, config: TrainConfig = PAPER) -> tuple[list[str], TrainConfig]:
    torch.set_num_threads(args.threads)
    models = [get(m).name for m in args.models.split(",") if m]
    return models, dataclasses.replace(config, steps=args.steps, lr=args.lr, arch=args.arch,
                                       decay_every=args.decay_every or None, progress=False)


def command_line() -> str:
    return "python " + " ".join(sys.argv)
