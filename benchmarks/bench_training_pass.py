"""The C++ engine's training pass against its forward-then-backward schedule, op by op.

    python -m benchmarks.bench_training_pass [--n 16384] [--d 64] [--threads 1] [--repeats 3]

For the symmetric sum sum_ij a_i k(x_i, x_j) a_j and the cross sum sum_ij a_i k(x_i, y_j) b_j (rbf,
float32, one weight column), times in one process with interleaved repeats (median):

  forward     the plain sum (kernel_sum[_sym]_forward)
  backward    the row passes of the gradient (kernel_sum[_sym]_backward, x only / x and y)
  training    the value and the same gradients from one walk over the pairs (kernel_sum[_sym]_fused)

and each one's GFLOP/s from the flops it does: a dot product (2d) per pair evaluation, plus a
contraction (2d) per pair and gradient side.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from implicitdiv.fused.cpp import pairwise as cpp


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=16384)
    p.add_argument("--d", type=int, default=64)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    n, d = args.n, args.d
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(1, n, d, generator=g), torch.randn(1, n, d, generator=g) + 0.1
    a, one, bw = torch.full((1, n, 1), 1.0 / n), torch.ones(1, 1), (d ** 0.5,)
    half, full = n * n / 2, float(n * n)
    cases = {
        "sym forward": (lambda: cpp.kernel_sum_sym_forward(x, a, "rbf", bw, False), half * 2 * d),
        "sym backward": (lambda: cpp.kernel_sum_sym_backward(one, x, a, "rbf", bw, False, (True, False)), full * 4 * d),
        "sym training": (lambda: cpp.kernel_sum_sym_fused(x, a, "rbf", bw, False, (True, False)), half * 6 * d),
        "cross forward": (lambda: cpp.kernel_sum_forward(x, y, a, a, "rbf", bw), full * 2 * d),
        "cross backward": (lambda: cpp.kernel_sum_backward(one, x, y, a, a, "rbf", bw, (True, True, False, False)),
                           2 * full * 4 * d),
        "cross training": (lambda: cpp.kernel_sum_fused(x, y, a, a, "rbf", bw, (True, True, False, False)), full * 6 * d),
    }
    for fn, _ in cases.values():
        fn()
    times = {k: [] for k in cases}
    for _ in range(args.repeats):
        for k, (fn, _) in cases.items():
            start = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - start)
    print(f"N = M = {n}, d = {d}, rbf, float32, {args.threads} thread(s), median of {args.repeats}")
    sec = {k: statistics.median(v) for k, v in times.items()}
    for k, (_, flops) in cases.items():
        print(f"{k:15s} {sec[k]:8.3f} s  {flops / sec[k] / 1e9:6.1f} GFLOP/s")
    for side in ("sym", "cross"):
        two = sec[f"{side} forward"] + sec[f"{side} backward"]
        print(f"{side}: forward + backward {two:.3f} s, training pass {sec[f'{side} training']:.3f} s "
              f"({two / sec[f'{side} training']:.2f}x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
