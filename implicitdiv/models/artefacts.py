"""Run outputs on disk: the files of one run (metrics.json, samples.npy and the figures) and the
JSON-lines logs that the benchmarks append finished runs and checkpoints to."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from .data import Dataset
from .evaluation import reconstruct
from .trainer import Run


def write_run(out: Path, run: Run, data: Dataset, record: dict, samples: torch.Tensor) -> None:
    """metrics.json (the record), samples.npy, samples.png and, for models with an encoder,
    reconstructions.png of 64 held-out rows, into the folder `out` (made when missing)."""
    from . import plots  # matplotlib is imported only where figures are drawn

    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(record, indent=2) + "\n")
    np.save(out / "samples.npy", samples.numpy())
    plots.samples(out / "samples.png", samples, data, title=f"{run.spec.name} on {data.name}, {record['steps']} steps")
    if run.spec.encoder:
        rows = data.test[:64]
        plots.reconstructions(out / "reconstructions.png", rows, reconstruct(run, rows.unsqueeze(0))[0], data)


def append_records(path: Path, records: list[dict], echo: bool = True) -> None:
    """Append one JSON line per record to `path` (and print them when `echo`)."""
    with path.open("a") as f:
        f.write("".join(json.dumps(rec) + "\n" for rec in records))
    if echo:
        for rec in records:
            print(json.dumps(rec), flush=True)


def read_log(log: Path) -> list[dict]:
    return [json.loads(line) for line in Path(log).read_text().splitlines() if line.strip()]


def curve_log(log: Path) -> Path:
    """Where the checkpoints of the runs logged to `log` go."""
    return log.with_name(log.stem + "_curve.jsonl")
