"""Speed of the C++ kernels built for each instruction set (baseline x86-64, AVX2 + FMA, AVX-512)
against each other, in one process: implicitdiv.bench with every set this CPU runs, the sets'
rounds interleaved, medians kept.

    python -m benchmarks.bench_isa [--threads 1] [--repeats 5] [--min-time 0.1] [--quick] [--out FILE.json]

Prints a markdown table: per case, the median time of cpp[baseline] and the speedup of each other
set over it (baseline time / that set's time).
"""
from __future__ import annotations

import argparse
import json

import torch

from implicitdiv import _C
from implicitdiv.bench import run

# (function, sizes, dims, passes)
GRID = (
    ("mmd2", (1024,), (2, 16, 64), ("fwd", "fwd+bwd")),
    ("kernel_sum", (2048,), (16,), ("fwd", "fwd+bwd")),
    ("gaussian_mixture_logpdf", (2048,), (16,), ("fwd", "fwd+bwd")),
    ("adversarial_losses", (65536, 4194304), (0,), ("fwd+bwd",)),
    ("gaussian_nll", (65536,), (64,), ("fwd+bwd",)),
    ("kl_std_normal", (65536,), (64,), ("fwd+bwd",)),
)
QUICK = (("mmd2", (1024,), (16,), ("fwd+bwd",)), ("gaussian_nll", (4096,), (64,), ("fwd+bwd",)))


def table(rows: list[dict], isas: tuple[str, ...]) -> str:
    others = [i for i in isas if i != "baseline"]
    lines = ["| function | N | d | pass | cpp[baseline] | " + " | ".join(f"{i} / baseline" for i in others) + " |",
             "|---|---|---|---|---|" + "---|" * len(others)]
    cases: dict[tuple, dict[str, dict]] = {}
    for r in rows:
        cases.setdefault((r["function"], r["n"], r["d"], r["pass"]), {})[r["variant"]] = r
    for (function, n, d, pass_name), by in cases.items():
        base = by["cpp[baseline]"]["seconds"]
        cells = [f"{by[f'cpp[{i}]']['speedup']:.2f}x" for i in others]
        lines.append(f"| {function} | {n} | {d or '-'} | {pass_name} | {base * 1e3:.2f} ms | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--min-time", type=float, default=0.1)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--out", default=None, help="also write the rows as JSON")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    isas = _C.runnable()
    rows: list[dict] = []
    for function, sizes, dims, passes in (QUICK if args.quick else GRID):
        rows += run([function], sizes, dims or (1,), [torch.float32], "cpu", ["cpp"], peers=(), isas=isas,
                    passes=passes, repeats=args.repeats, min_time=args.min_time, baseline="cpp[baseline]",
                    progress=lambda r: print(f"  {r['function']} N={r['n']} d={r['d']} {r['pass']} {r['variant']}: "
                                             f"{r['seconds'] * 1e3:.3f} ms", flush=True))
    print(f"\nthreads {args.threads}, float32, sets {', '.join(isas)} (implicitdiv._C.use_isa), medians of "
          f"{args.repeats} interleaved rounds of >= {args.min_time} s each\n")
    print(table(rows, isas))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
