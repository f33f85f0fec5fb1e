"""Held-out reconstruction MSE of the models with an encoder on sklearn's 8 x 8 digits.

The grid25 networks (4 x [400, batch norm, ReLU] generator and encoder, maxout critics), latent
dim 8, Adam lr 1e-4, beta1 0.8, batch 100; the score is the mean squared error of
x -> E(x) mean -> G(.) over the 360 held-out digits (pixels in [0, 1]).

    python benchmarks/digits.py --steps 300 --seeds 5 [--models vae,dali]
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from implicitdiv.models import benchmark  # noqa: E402
from implicitdiv.models.report import mean_spread  # noqa: E402

MODELS = ("vae", "aae", "wae_mmd", "ali", "alice_l2", "dali", "dali_l2", "asvae", "vidm")


def table(records: list[dict], models: list[str]) -> str:
    lines = ["| model | held-out reconstruction MSE | sample MMD^2 | runs | steps |", "|---|---|---|---|---|"]
    for m in models:
        rs = [r for r in records if r["model"] == m]
        lines.append(f"| {m} | {mean_spread([r['metrics']['reconstruction_mse'] for r in rs], 4)} | "
                     f"{mean_spread([r['metrics']['mmd2'] for r in rs], 4)} | {len(rs)} | "
                     f"{rs[0]['steps'] if rs else '-'} |")
    return "\n".join(lines)


def main(argv=None) -> None:
    args = benchmark.parser(__doc__.splitlines()[0], MODELS, steps=300).parse_args(argv)
    models, config = benchmark.setup(args)
    benchmark.run_and_report("digits", models, args, config, table, "digits: held-out reconstruction MSE")


if __name__ == "__main__":
    main()
