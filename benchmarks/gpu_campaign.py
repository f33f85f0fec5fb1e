"""The GPU campaign: correctness, tile tuning and the numbers of the Triton kernels, in one command.

    PYTHONPATH=. python3 -m benchmarks.gpu_campaign --out DIR [--budget-s 480] [--sections a,b] [--workers N]
    python -m benchmarks.gpu_campaign --dry-run --out DIR     # the same code paths on the CPU, tiny sizes
    python -m benchmarks.gpu_campaign --plan                  # each section's estimated seconds on an H200

On a CUDA machine it installs and builds nothing (Triton needs no implicitdiv._C) and runs its
sections in order of value, each skipped with a note when its estimate would overrun --budget-s:

  correctness.pairwise / correctness.losses  every Triton-backed public function vs the float64 reference
  floors                                      matmul TFLOP/s per precision, exp rate, copy bandwidth
  timing.targets                              mmd2 at N = M = 16384, d = 64 (the issue's targets)
  sweep.tiles                                 the pairwise kernels' tile candidates at 3 shapes
  timing.losses, timing.mixture, timing.mmd_test, timing.mmd2_grid
  models.table2                               the DALI paper's Table 2 rows in what is left (campaign_models.py)

--out DIR gets report.md and campaign.json; the summary table is printed last. --dry-run sets
TRITON_INTERPRET=1 before triton is imported and runs everything on CPU tensors at tiny sizes
(tests/test_gpu_campaign.py runs it in CI).

Adding a section: a module under benchmarks/, named in SECTION_MODULES, that calls
campaign_core.register(Section(name, order, estimate, run, about)) -- `order` places it among the
others, estimate(ctx) gives its seconds from ctx.floors (campaign_floors.rates), run(ctx) returns a
SectionResult (rows for the report, lines for the summary), and checks ctx.left() if it can stop
early (partial_after_s then lets it start with less than its full estimate left).
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path

SECTION_MODULES = ("campaign_correctness", "campaign_floors", "campaign_timing", "campaign_sweep", "campaign_models")
PLAN_WORKERS = 12  # the device machine's 16 cores, less the timed process and some slack


def load_sections():
    """Import the section modules (each registers its sections); returns campaign_core."""
    for name in SECTION_MODULES:
        importlib.import_module(f"benchmarks.{name}")
    return importlib.import_module("benchmarks.campaign_core")


def parse(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dry-run", action="store_true", help="CPU tensors under TRITON_INTERPRET=1, tiny sizes")
    p.add_argument("--budget-s", type=float, default=480.0, help="seconds for all sections (default 480)")
    p.add_argument("--out", type=Path, default=None, help="folder for report.md and campaign.json")
    p.add_argument("--sections", default="", help="comma-separated section names (default: all)")
    p.add_argument("--workers", type=int, default=None,
                   help="worker processes for correctness cases and pre-compilation (0: none)")
    p.add_argument("--plan", action="store_true", help="print each section's estimate for the GPU and exit")
    p.add_argument("--list", action="store_true", help="list the sections and exit")
    return p.parse_args(argv)


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse(argv)
    if args.dry_run:
        os.environ["TRITON_INTERPRET"] = "1"  # before triton is imported, here and in the workers
        os.environ["GPU_CAMPAIGN_COMPILE_BACKEND"] = "eager"  # torch.compile traces only: inductor's C++ build is slow
    core = load_sections()
    if args.list:
        for s in core.ordered():
            print(f"{s.order:4d} {s.name:24s} {s.about}")
        return 0
    workers = args.workers if args.workers is not None else (
        1 if args.dry_run else max(0, min(PLAN_WORKERS, (os.cpu_count() or 4) - 2)))
    config = core.Config(dry_run=args.dry_run, budget_s=args.budget_s, out=args.out, workers=workers,
                         sections=tuple(s for s in args.sections.split(",") if s))
    sections = core.ordered(config.sections)
    if args.plan:
        return plan(core, config, sections)
    import torch

    if not args.dry_run and not torch.cuda.is_available():
        print("gpu_campaign: no CUDA device here; use --dry-run (CPU, TRITON_INTERPRET=1) or --plan", file=sys.stderr)
        return 2
    ctx = core.Context(config)
    env = core.environment(ctx)
    print(" ".join(f"{k}={v}" for k, v in env.items()), flush=True)
    try:
        core.run_sections(ctx, sections, log=lambda msg: print(msg, flush=True),
                          after_each=lambda: core.write_report(ctx, env, argv))
    finally:
        ctx.close()
    files = core.write_report(ctx, env, argv)
    print("\n".join(f"wrote {f}" for f in files))
    print(f"\n## Summary ({ctx.elapsed():.0f} s of {config.budget_s:.0f} s)\n")
    print(core.markdown_table(core.summary_rows(ctx)), flush=True)
    failed = [r["name"] for r in ctx.records if r["status"] == "error"]
    return 1 if failed else 0


def plan(core, config, sections) -> int:
    """Each section's estimate on the GPU from the vendor peaks (nothing runs)."""
    workers = config.workers if config.workers > 0 else PLAN_WORKERS
    ctx = core.Context(core.Config(dry_run=False, budget_s=config.budget_s, out=None, workers=workers))
    total = 0.0
    print(f"| section | estimate s | cumulative s | what |\n|---|---|---|---|")
    for s in sections:
        est = s.estimate(ctx)
        total += est
        print(f"| {s.name} | {est:.0f} | {total:.0f} | {s.about} |")
    print(f"\nworkers {workers}, budget {config.budget_s:.0f} s; estimates from the vendor peaks "
          f"(benchmarks/campaign_floors.VENDOR_PEAKS) and the assumed compile and gap factors")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
