"""The implicitdiv command line: two-sample tests, benchmarks and toy training runs."""
from __future__ import annotations

import argparse
import sys

from .backend import BACKENDS
from .bench.cli import add_arguments as add_bench_arguments
from .kernel_sums import KERNELS

ALPHA = 0.05


def _bandwidth(text: str):
    if text == "median":
        return text
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"bandwidth must be 'median' or a positive number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"bandwidth must be > 0, got {value}")
    return value


def two_sample(args) -> int:
    import torch

    from . import mmd2, mmd_test
    from .samples_io import SampleFileError, load_samples

    try:
        a, b = load_samples(args.a), load_samples(args.b)
    except SampleFileError as e:
        print(f"implicitdiv two-sample: {e}", file=sys.stderr)
        return 2
    if a.shape[1] != b.shape[1]:
        print(f"implicitdiv two-sample: dimensions differ: {args.a} has d = {a.shape[1]}, {args.b} has d = {b.shape[1]}",
              file=sys.stderr)
        return 2
    x, y = torch.from_numpy(a), torch.from_numpy(b)
    try:
        stat, p = mmd_test(x, y, kernel=args.kernel, bandwidth=args.bandwidth, permutations=args.permutations,
                           seed=args.seed, backend=args.backend)
    except ValueError as e:
        print(f"implicitdiv two-sample: {e}", file=sys.stderr)
        return 2
    from .mmd import median_bandwidth

    bw = float(median_bandwidth(x, y)) if args.bandwidth == "median" else args.bandwidth
    unbiased = float(mmd2(x, y, kernel=args.kernel, bandwidth=bw, estimator="unbiased", backend=args.backend)) \
        if min(len(a), len(b)) >= 2 else float("nan")
    print(f"samples: {len(a)} x {a.shape[1]} vs {len(b)} x {b.shape[1]}, kernel {args.kernel}")
    print(f"bandwidth: {bw:.6g}" + (" (median heuristic)" if args.bandwidth == "median" else ""))
    print(f"MMD^2 biased: {float(stat):.6g}   unbiased: {unbiased:.6g}")
    print(f"p-value: {float(p):.4g} ({args.permutations} permutations)")
    reject = float(p) <= ALPHA
    print(f"decision at alpha = {ALPHA}: " + ("reject H0, the samples differ" if reject else "keep H0, no evidence the samples differ"))
    return 0


def bench(args) -> int:
    from .bench.cli import main_args

    return main_args(args)


def doctor(args) -> int:
    from .doctor import main as doctor_main

    return doctor_main()


def train(args) -> int:
    from .models.train_command import run_from_cli

    return run_from_cli(args) or 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="implicitdiv", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("two-sample", help="kernel two-sample (MMD permutation) test of two sample files")
    p.add_argument("a", help="samples of P: .npy, .npz or .csv rows")
    p.add_argument("b", help="samples of Q: .npy, .npz or .csv rows")
    p.add_argument("--kernel", default="rbf", choices=KERNELS)
    p.add_argument("--bandwidth", type=_bandwidth, default="median", help="'median' (default) or a number > 0")
    p.add_argument("--permutations", type=int, default=1000)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--backend", default=None, choices=BACKENDS)
    p.set_defaults(run=two_sample)

    p = sub.add_parser("bench", help="time the functions on every backend, C++ instruction set and peer; "
                                     "table, CSV, JSON, plot")
    add_bench_arguments(p)
    p.set_defaults(run=bench)

    p = sub.add_parser("doctor", help="versions, backends (and why one is missing), instruction set, thread mode, "
                                      "and a self-check of each backend; exit code 0 only if all pass")
    p.set_defaults(run=doctor)

    p = sub.add_parser("train", help="train a model of the set on toy data")
    p.add_argument("model")
    p.add_argument("--data", default="grid25", help="grid25, ring8, digits, mnist5k or a .npy file of rows")
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--backend", default=None, choices=BACKENDS)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--out", default="runs/latest")
    p.set_defaults(run=train)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "permutations", 1) is not None and getattr(args, "permutations", 1) < 1:
        print("implicitdiv two-sample: --permutations must be >= 1", file=sys.stderr)
        return 2
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
