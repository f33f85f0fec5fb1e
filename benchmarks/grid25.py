"""Table 2 of the DALI paper (mode collapse on VEEGAN's 5 x 5 grid of Gaussians), run here.

Protocol (--paper): the DALI authors' toy (github.com/alexanderhanboli/AIM, gaussian_example.py and
main.py's defaults; ../shared/MODELS.md), which uses ALI/PacGAN's 2D networks:
- data: 25 Gaussians, means {-4, -2, 0, 2, 4}^2, std 0.05; 100,000 training points per seed;
- networks: generator z in R^2 -> 4 x [400, batch norm, ReLU] -> 2; every critic 3 maxout layers
  of 200 units with 5 pieces, then a linear logit (a sigmoid inside the loss); encoders like the
  generator (x -> 4 x [400, BN, ReLU] -> mean, log-variance), DALI's on the critic's features
  (1 shared [400, BN, ReLU] layer, then mean and log-variance heads of [400, BN, ReLU]); weights
  N(0, 0.02^2), zero biases;
- optimiser: Adam, lr 2e-4, betas (0.5, 0.999), lr / sqrt(1 + epoch) with an epoch of 1,562
  iterations (100,000 / 64), batch 64, 20 epochs = 31,240 iterations (the paper's length);
- every model updates its critics first, then (DALI, VAEGAN) its encoder, then its generator;
- scoring: 2,500 samples of the generator in eval mode; high quality = within 3 std of the nearest
  mode; modes = components nearest to at least one high-quality sample; 5 seeds per row, trained
  stacked (one set of networks with a leading seed axis; each seed as its run alone).
Rows: GAN, ALI, Unrolled GAN (5 unrolling steps), VAEGAN, VEEGAN, SN-GAN, DALI, DALI-f.

    python benchmarks/grid25.py --paper [--steps N] [--models dali,gan] [--log FILE]
    python benchmarks/grid25.py --table-from runs/bench/grid25_paper.jsonl      (table from a log)
    python benchmarks/grid25.py --step-cost 30                                   (stacked vs one by one)
    python benchmarks/grid25.py --before-after 30                  (main before issue 12 against this trainer)
    python benchmarks/grid25.py --training-spread 12      (what tests/test_training.py's threshold rests on)
    python benchmarks/grid25.py --steps 300 --seeds 5 --models gan,ali           (any models, any length)
    python benchmarks/grid25.py --seeds 0 --timing-steps 10 --models ...        (step-time ratios only)
    python benchmarks/grid25.py --seeds 0 --loss-share                          (loss share of a step)

From Python (e.g. a GPU campaign): paper_rows(device="cuda", budget_seconds=3600) runs every row at
the paper's length, or at the longest common length that the budget allows.
"""
from __future__ import annotations

import dataclasses
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from implicitdiv.models import PAPER, artefacts, benchmark, load_data, train  # noqa: E402
from implicitdiv.models.report import PAPERS, mean_spread, write_subsection  # noqa: E402

TABLE2 = ("gan", "ali", "unrolled_gan", "vaegan", "veegan", "sngan", "dali", "dali_f")
MODELS = TABLE2 + ("alice_l2", "vidm", "asvae", "wgan", "wgan_gp", "gmmn", "mmdgan")
# modes captured / % high-quality samples, as printed in the DALI paper's Table 2
PUBLISHED = {"gan": (3.3, 0.5), "ali": (15.84, 1.6), "unrolled_gan": (23.6, 16), "vaegan": (21.4, 34.1),
             "veegan": (24.6, 40), "sngan": (25, 67.8), "dali": (25, 81.1), "dali_f": (25, 66.4)}
PAPER_LOG = Path("runs/bench/grid25_paper.jsonl")
TITLE = "grid25: Table 2 of the DALI paper, run here"


def table(records: list[dict], models: list[str] | None = None) -> str:
    """One row per (model, length) in the records, Table 2's rows first, with the published column,
    the seeds, the length against the paper's and the wall time of the row (its seeds stacked)."""
    groups: dict[tuple[str, int], list[dict]] = {}
    for r in records:
        groups.setdefault((r["model"], r["steps"]), []).append(r)
    order = {m: i for i, m in enumerate(list(TABLE2) + sorted({m for m, _ in groups} - set(TABLE2)))}
    lines = ["| model | modes (of 25) | % high quality | published modes / % HQ | seeds | iterations (paper: "
             f"{PAPER.steps:,}) | wall time, seeds stacked |", "|---|---|---|---|---|---|---|"]
    for (m, steps), rs in sorted(groups.items(), key=lambda kv: (order[kv[0][0]], -kv[0][1])):
        if models is not None and m not in models:
            continue
        pub = PUBLISHED.get(m)
        walls = sorted({(r.get("wall_seconds", 0.0), r.get("device", "cpu"), r.get("threads", 1)) for r in rs})
        wall = " + ".join(f"{w / 60:.1f} min" for w, _, _ in walls)
        where = ", ".join(sorted({f"{d}, {t} thread(s)" for _, d, t in walls}))
        lines.append(f"| {m} | {mean_spread([r['metrics']['modes'] for r in rs])} | "
                     f"{mean_spread([r['metrics']['high_quality_percent'] for r in rs])} | "
                     f"{f'{pub[0]} / {pub[1]}' if pub else '-'} | {len(rs)} | {steps:,} | {wall} ({where}) |")
    missing = [m for m in TABLE2 if not any(k[0] == m for k in groups)]
    if missing:
        lines.append("")
        lines.append(f"Not run yet: {', '.join(missing)}.")
    return "\n".join(lines)


def curve_table(records: list[dict]) -> str:
    """Mean modes / % high quality over seeds at every checkpoint of every (model, length)."""
    groups: dict[tuple[str, int], dict[int, list[dict]]] = {}
    for r in records:
        groups.setdefault((r["model"], r["steps"]), {}).setdefault(r["checkpoint"], []).append(r["metrics"])
    lines = ["| model (length) | iteration: mean modes / mean % high quality over seeds |", "|---|---|"]
    for (m, steps), points in sorted(groups.items()):
        cells = ", ".join(f"{t:,}: {statistics.fmean(x['modes'] for x in ms):.1f} / "
                          f"{statistics.fmean(x['high_quality_percent'] for x in ms):.1f}"
                          for t, ms in sorted(points.items()))
        lines.append(f"| {m} ({steps:,}) | {cells} |")
    return "\n".join(lines)


def paper_config(steps: int = PAPER.steps):
    return dataclasses.replace(PAPER, steps=steps, progress=False)


def _seconds_per_step(model: str, device, backend, seeds: int, steps: int) -> float:
    config = paper_config(steps)
    run = train(model, lambda s: load_data("grid25", seed=s), backend=backend, seeds=list(range(seeds)), config=config,
                device=device)
    return run.step_seconds


def _row(model: str, device, budget_seconds: float, seeds: int, backend, log: str, calibration_steps: int,
         max_steps: int) -> list[dict]:
    """One row in a process of its own: calibrate, then the longest length the budget allows."""
    torch.set_num_threads(1)
    start = time.perf_counter()
    per_step = _seconds_per_step(model, device, backend, seeds, calibration_steps)
    steps = int(min(max_steps, max(0.0, budget_seconds - (time.perf_counter() - start)) / (1.1 * per_step)))
    print(f"paper_rows: {model} {per_step:.4f} s per iteration; {steps} iterations", flush=True)
    if steps < 1:
        return []
    return benchmark.run_stack("grid25", model, seeds, paper_config(steps), backend or "auto", Path(log), device,
                               checkpoint_every=max(1, steps // 10))


def paper_rows(device="cuda", budget_seconds: float = 3600.0, models=TABLE2, seeds: int = 5, backend=None,
               log: Path = PAPER_LOG, calibration_steps: int = 30, max_steps: int = PAPER.steps,
               parallel: bool = False) -> list[dict]:
    """Every Table 2 row (`models`), `seeds` seeds stacked, on `device`, within about
    `budget_seconds`. Each model's iteration is timed on `calibration_steps` iterations first.
    parallel=False: the rows run one after another, all at the same length, the paper's 31,240
    iterations (max_steps) or the longest that the rest of the budget allows. parallel=True: every
    row runs in a process of its own (one CPU core each; on a GPU the rows' small kernels then
    overlap), each at the longest length its budget allows. Records are appended to `log` as each
    row finishes, with the length, so the table labels shorter rows; returns them."""
    if parallel:
        import concurrent.futures
        import multiprocessing

        ctx = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(len(models), mp_context=ctx) as pool:
            jobs = [pool.submit(_row, m, device, budget_seconds, seeds, backend, str(log), calibration_steps,
                                max_steps) for m in models]
            return [r for job in jobs for r in job.result()]
    start = time.perf_counter()
    per_step = {m: _seconds_per_step(m, device, backend, seeds, calibration_steps) for m in models}
    left = budget_seconds - (time.perf_counter() - start)
    per_iteration = sum(per_step.values()) * 1.1  # evaluation and start-up of each row
    steps = int(min(max_steps, max(0.0, left) / per_iteration))
    print(f"paper_rows: {per_step} s per iteration; {steps} iterations per row", flush=True)
    if steps < 1:
        return []
    return benchmark.run_all("grid25", list(models), seeds, paper_config(steps), backend or "auto", Path(log), device,
                             checkpoint_every=max(1, steps // 10))


def _timing_row(model: str, steps: int, repeats: int, first, second) -> str:
    """A table row: ms per iteration of first() and of second() (each trains `steps` iterations),
    median of `repeats` interleaved repeats, and their ratio; printed as it is made."""
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeats):
        for fn, out in zip((first, second), times):
            t = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t)
    a, b = statistics.median(times[0]), statistics.median(times[1])
    row = f"| {model} | {1e3 * a / steps:.0f} | {1e3 * b / steps:.0f} | {a / b:.2f}x |"
    print(row, flush=True)
    return row


def step_cost(steps: int, models=("gan", "ali", "dali", "dali_f"), seeds: int = 5, repeats: int = 3) -> str:
    """Wall time of `seeds` seeds trained one after another (stacks of one) against one stack of
    `seeds`, paper networks, interleaved repeats in one process, median."""
    config = paper_config(steps)
    data = {s: load_data("grid25", seed=s) for s in range(seeds)}
    lines = ["| model | one by one, ms per iteration of all seeds | stacked | one by one / stacked |",
             "|---|---|---|---|"]
    for m in models:
        lines.append(_timing_row(m, steps, repeats,
                                 lambda: [train(m, data[s], seed=s, backend="reference", config=config)
                                          for s in range(seeds)],
                                 lambda: train(m, [data[s] for s in range(seeds)], seeds=list(range(seeds)),
                                               backend="reference", config=config)))
    return (f"{seeds} seeds, {steps} iterations, paper networks, batch {config.batch_size}, reference backend, "
            f"{torch.get_num_threads()} torch thread(s), median of {repeats} interleaved repeats. "
            f"Command: `{benchmark.command_line()}`\n\n" + "\n".join(lines))


def training_spread(seeds: int, steps: int = 200) -> None:
    """Per model of the set, trained / untrained value of its metric for each of `seeds` seeds
    (toy networks, batch 64, `steps` steps, stacked), as JSON lines: the seed-to-seed spread that
    the threshold of tests/test_training.py rests on."""
    from implicitdiv.models import MODELS, TrainConfig, evaluate_seeds

    data = load_data("grid25")
    for model, spec in sorted(MODELS.items()):
        before = evaluate_seeds(train(model, data, seeds=list(range(seeds)), backend="reference",
                                      config=TrainConfig(steps=0, progress=False)))
        after = evaluate_seeds(train(model, data, seeds=list(range(seeds)), backend="reference",
                                     config=TrainConfig(steps=steps, batch_size=64, progress=False)))
        ratios = [a[spec.metric] / b[spec.metric] for a, b in zip(after, before)]
        worst_half = sorted(ratios, reverse=True)[:max(1, seeds // 2)]
        print(json.dumps({"model": model, "metric": spec.metric, "ratios": [round(r, 3) for r in ratios],
                          "mean_of_worst_half": round(statistics.fmean(worst_half), 3)}), flush=True)


BEFORE = "6e65cf9"  # main before issue 12: one seed at a time, both players updated from one graph


def before_after(steps: int, models=("gan", "ali", "dali", "dali_f"), seeds: int = 5, repeats: int = 3) -> str:
    """main's trainer at BEFORE (its implicitdiv/models extracted with git archive and imported as
    a package of its own, over this checkout's public functions), 5 seeds one after another,
    against this trainer with the seeds stacked: paper networks, batch 64, interleaved repeats in
    one process, median."""
    import importlib
    import subprocess
    import tempfile

    root = Path(__file__).resolve().parents[1]
    tmp = Path(tempfile.mkdtemp())
    archive = subprocess.run(["git", "-C", str(root), "archive", BEFORE, "implicitdiv/models"], check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(tmp)], input=archive, check=True)
    (tmp / "implicitdiv" / "models").rename(tmp / "models_before")
    sys.path.insert(0, str(tmp))
    old = importlib.import_module("models_before.trainer")
    old_data = importlib.import_module("models_before.data")
    old_config = old.TrainConfig(steps=steps, batch_size=64, arch="paper", lr=PAPER.lr, betas=PAPER.betas,
                                 progress=False)
    config = paper_config(steps)
    data = {s: load_data("grid25", seed=s) for s in range(seeds)}
    data_before = {s: old_data.load("grid25", seed=s) for s in range(seeds)}
    lines = [f"| model | before: {seeds} seeds one by one, ms per iteration of all {seeds} | after: stacked | "
             "before / after |", "|---|---|---|---|"]
    for m in models:
        lines.append(_timing_row(m, steps, repeats,
                                 lambda: [old.train(m, data_before[s], backend="reference", seed=s, config=old_config)
                                          for s in range(seeds)],
                                 lambda: train(m, [data[s] for s in range(seeds)], seeds=list(range(seeds)),
                                               backend="reference", config=config)))
    return (f"main at {BEFORE} against this trainer, {steps} iterations, median of {repeats} interleaved repeats, "
            f"{torch.get_num_threads()} torch thread(s). Command: `{benchmark.command_line()}`\n\n" + "\n".join(lines))


def main(argv=None) -> None:
    p = benchmark.parser(__doc__.splitlines()[0], MODELS, steps=PAPER.steps)
    p.add_argument("--paper", action="store_true", help="every Table 2 row with the protocol above")
    p.add_argument("--table-from", default=None, help="write the Table 2 table from this JSON-lines log, run nothing")
    p.add_argument("--step-cost", type=int, default=0, help="time N iterations stacked against one by one")
    p.add_argument("--before-after", type=int, default=0, help=f"time N iterations of main at {BEFORE} against now")
    p.add_argument("--loss-share", action="store_true", help="time the gan and gmmn loss calls against a step")
    p.add_argument("--training-spread", type=int, default=0, help="trained / untrained metric of every model, N seeds")
    args = p.parse_args(argv)
    if args.training_spread:
        torch.set_num_threads(args.threads)
        training_spread(args.training_spread)
        return
    if args.table_from:
        body = f"Table written from the log {args.table_from} by `{benchmark.command_line()}`.\n\n" + table(
            artefacts.read_log(Path(args.table_from)))
        curve = artefacts.curve_log(Path(args.table_from))
        if curve.exists():
            body += f"\n\nDuring training ({curve}):\n\n" + curve_table(artefacts.read_log(curve))
        print(body)
        if not args.no_write:
            write_subsection(Path(args.results), TITLE, body, PAPERS)
        return
    if args.paper:
        if args.models == p.get_default("models"):
            args.models = ",".join(TABLE2)
        args.log = args.log or str(PAPER_LOG)
    models, config = benchmark.setup(args)
    if args.before_after:
        body = before_after(args.before_after)
        print(body)
        if not args.no_write:
            write_subsection(Path(args.results), "Before and after: main's trainer against this one", body, PAPERS)
        return
    if args.step_cost:
        body = step_cost(args.step_cost)
        print(body)
        if not args.no_write:
            write_subsection(Path(args.results), "Stacked seeds: the cost of an iteration", body, PAPERS)
    elif args.seeds:
        log = Path(args.log or "runs/bench/grid25.jsonl")
        benchmark.run_all("grid25", models, args.seeds, config, args.backend, log, args.device, args.checkpoint_every)
        body = (f"Command: `{benchmark.command_line()}` (backend {args.backend}, {args.threads} torch thread(s); "
                f"mean ± std over seeds 0..{args.seeds - 1}; the table reads every record of the log {log}).\n\n"
                + table(artefacts.read_log(log)))
        print(body)
        if not args.no_write:
            write_subsection(Path(args.results), TITLE if args.paper else "grid25: modes and % high quality", body,
                             PAPERS)
    if args.loss_share:
        sbody = benchmark.loss_share_table(benchmark.loss_share("grid25", config), benchmark.command_line())
        print(sbody)
        if not args.no_write:
            write_subsection(Path(args.results), "Share of a training step spent in the loss (grid25 networks)", sbody)
    if args.timing_steps:
        rows = benchmark.step_time_ratios("grid25", models, args.timing_steps, config)
        tbody = benchmark.timing_table(rows, args.timing_steps, benchmark.command_line())
        print(tbody)
        if not args.no_write:
            write_subsection(Path(args.results), "Step time: fast backend against the reference (grid25 networks)", tbody)


if __name__ == "__main__":
    main()
