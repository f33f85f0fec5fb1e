"""`implicitdiv train MODEL --data D [--steps N] [--backend B] [--seed S] [--out DIR]`: train one
model on a named data set, score it, and write its files."""
from __future__ import annotations

import json
from pathlib import Path

from . import artefacts
from .data import load
from .evaluation import evaluate, sample
from .trainer import DEFAULT_STEPS, TrainConfig, train


def train_and_write(model: str, data_name: str, *, steps: int = DEFAULT_STEPS, backend=None, seed: int = 0,
                    out: str | Path | None = None) -> dict:
    """Train, then write metrics.json, samples.npy (2,500 rows), samples.png and, for models with
    an encoder, reconstructions.png into `out`. Returns the metrics record."""
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps must be an integer >= 0, got {steps!r}")
    data = load(data_name, seed=seed)
    config = TrainConfig(steps=steps)
    run = train(model, data, backend=backend, seed=seed, config=config)
    samples = sample(run)[0]
    record = {
        "model": run.spec.name, "data": data.name, "steps": steps, "backend": backend or "auto", "seed": seed,
        "arch": config.arch, "step_seconds": run.step_seconds, "metrics": evaluate(run, samples),
        "final_terms": {k: v[-1] for k, v in run.history.items()},
    }
    artefacts.write_run(Path(out or f"runs/{run.spec.name}-{data.name}-s{seed}"), run, data, record, samples)
    return record


def run_from_cli(args) -> int:
    """train_and_write() with the parsed arguments (those absent or None take its defaults);
    prints the metrics, returns the exit status 0."""
    given = {k: getattr(args, k) for k in ("steps", "backend", "seed", "out") if getattr(args, k, None) is not None}
    record = train_and_write(args.model, args.data, **given)
    print(json.dumps({k: record[k] for k in ("model", "data", "steps", "backend", "seed", "metrics")}))
    return 0
