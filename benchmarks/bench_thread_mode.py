"""A small C++ call right after torch work: mmd2 forward+backward alone and right after a torch
matmul, in the kernels' current thread mode (implicitdiv.fused.cpp.OPENMP_TEAMS).

    python -m benchmarks.bench_thread_mode [--n 1024] [--d 16] [--repeats 15]
    IMPLICITDIV_THREADS=std python -m benchmarks.bench_thread_mode      # the kernels' own std::threads

torch's OpenMP workers spin for a while after the matmul; the two timings differ by what that
costs the call (medians of interleaved repeats, one process).
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

import implicitdiv as idv
from implicitdiv.fused import cpp


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=1024)
    p.add_argument("--d", type=int, default=16)
    p.add_argument("--repeats", type=int, default=15)
    args = p.parse_args(argv)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(args.n, args.d, generator=g, requires_grad=True)
    y = torch.randn(args.n, args.d, generator=g, requires_grad=True)
    w = torch.randn(1024, 1024, generator=g)

    def step():
        v = idv.mmd2(x, y, bandwidth=float(args.d) ** 0.5, backend="cpp")
        torch.autograd.grad(v, (x, y))

    for _ in range(5):
        step()
    alone, after = [], []
    for _ in range(args.repeats):
        start = time.perf_counter()
        step()
        alone.append(time.perf_counter() - start)
        w @ w
        start = time.perf_counter()
        step()
        after.append(time.perf_counter() - start)
    mode = "torch's OpenMP workers" if cpp.OPENMP_TEAMS else "own std::threads"
    print(f"mmd2 fwd+bwd, N = M = {args.n}, d = {args.d}, {torch.get_num_threads()} threads ({mode}): "
          f"alone {1e3 * statistics.median(alone):.2f} ms, right after a 1024^2 matmul "
          f"{1e3 * statistics.median(after):.2f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
