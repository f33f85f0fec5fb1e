"""The mode-collapse table of the DALI paper on VEEGAN's 5 x 5 grid of Gaussians.

Protocol (ALI/PacGAN networks): generator z in R^2 -> 4 x [400, batch norm, ReLU] -> 2;
discriminators 3 maxout layers of 200 units with 5 pieces; Adam lr 1e-4, beta1 0.8, batch 100;
2,500 samples scored by modes captured and % high-quality samples (within 3 std of a mode).

    python benchmarks/grid25.py --steps 300 --seeds 5 [--models gan,ali] [--timing-steps 20]
    python benchmarks/grid25.py --seeds 0 --timing-steps 10 --models ...   (step-time ratios only)
    python benchmarks/grid25.py --seeds 0 --loss-share                     (loss share of a step)
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from implicitdiv.models import benchmark  # noqa: E402
from implicitdiv.models.report import mean_spread, write_subsection  # noqa: E402

MODELS = ("gan", "ali", "alice_l2", "dali", "dali_f", "vidm", "asvae", "wgan_gp", "gmmn", "mmdgan")
# modes captured / % high-quality samples, as printed in the DALI paper's table
PUBLISHED = {"gan": (3.3, 0.5), "ali": (15.84, 1.6), "unrolled GAN": (23.6, 16), "VEEGAN": (24.6, 40),
             "SN-GAN": (25, 67.8), "dali": (25, 81.1), "dali_f": (25, 66.4)}


def table(records: list[dict], models: list[str]) -> str:
    lines = ["| model | modes (of 25) | % high quality | published modes / % HQ | runs | steps |",
             "|---|---|---|---|---|---|"]
    for m in models:
        rs = [r for r in records if r["model"] == m]
        pub = PUBLISHED.get(m)
        lines.append(f"| {m} | {mean_spread([r['metrics']['modes'] for r in rs])} | "
                     f"{mean_spread([r['metrics']['high_quality_percent'] for r in rs])} | "
                     f"{f'{pub[0]} / {pub[1]}' if pub else '-'} | {len(rs)} | {rs[0]['steps'] if rs else '-'} |")
    for name in ("unrolled GAN", "VEEGAN", "SN-GAN"):
        lines.append(f"| {name} (not run here) | - | - | {PUBLISHED[name][0]} / {PUBLISHED[name][1]} | 0 | - |")
    return "\n".join(lines)


def main(argv=None) -> None:
    p = benchmark.parser(__doc__.splitlines()[0], MODELS, steps=300)
    p.add_argument("--loss-share", action="store_true", help="time the gan and gmmn loss calls against a step")
    args = p.parse_args(argv)
    models, config = benchmark.setup(args)
    if args.seeds:
        benchmark.run_and_report("grid25", models, args, config, table, "grid25: modes captured and % high-quality samples")
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
