"""Peak memory of MMD^2 forward+backward on the cpp backend, in a fresh process.

    python -m benchmarks.bench_memory [--quick] [--n 65536] [--d 16]

A child process imports implicitdiv, draws x and y (N x d, float32), runs mmd2 forward and backward
with backend="cpp" and reports resource.getrusage(RUSAGE_SELF).ru_maxrss (KiB on Linux) before
the data exists, after it is drawn, and at the end; the increase over the data is what the
estimator used. The fused engine never builds the N x N matrix (65536^2 float32 = 16 GiB).
--quick uses N = 16384.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

CHILD = r"""
import json, resource, sys, time
import torch
import implicitdiv as idv
n, d = int(sys.argv[1]), int(sys.argv[2])
rss = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
before = rss()
g = torch.Generator().manual_seed(0)
x = torch.randn(n, d, generator=g).requires_grad_()
y = (torch.randn(n, d, generator=g) + 0.1).requires_grad_()
with_data = rss()
start = time.perf_counter()
v = idv.mmd2(x, y, kernel="rbf", bandwidth=(0.5, 1.0, 2.0), estimator="unbiased", backend="cpp")
gx, gy = torch.autograd.grad(v, (x, y))
seconds = time.perf_counter() - start
print(json.dumps({"n": n, "d": d, "rss_import_mib": before, "rss_data_mib": with_data, "rss_peak_mib": rss(),
                  "seconds": seconds, "mmd2": float(v), "threads": torch.get_num_threads()}))
"""


def run(quick: bool = False, n: int | None = None, d: int = 16) -> list[dict]:
    """One row: the child's peak RSS (MiB) at each stage, for mmd2 forward+backward at N = M = n."""
    n = n or (16384 if quick else 65536)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", CHILD, str(n), str(d)], capture_output=True, text=True, check=True)
    row = json.loads(done.stdout.strip().splitlines()[-1])
    row["wall_s"] = time.perf_counter() - start
    row["dense_matrix_gib"] = n * n * 4 / 2**30
    return [row]


def print_rows(rows: list[dict], out=sys.stdout) -> None:
    for r in rows:
        print(f"mmd2 fwd+bwd, cpp, N = M = {r['n']}, d = {r['d']}, 3 bandwidths, {r['threads']} threads: "
              f"peak RSS {r['rss_peak_mib']:.0f} MiB (after import {r['rss_import_mib']:.0f} MiB, with data "
              f"{r['rss_data_mib']:.0f} MiB); {r['seconds']:.1f} s; one dense N x N float32 matrix would be "
              f"{r['dense_matrix_gib']:.0f} GiB", file=out)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="N = 16384")
    parser.add_argument("--n", type=int, default=None)
    parser.add_argument("--d", type=int, default=16)
    args = parser.parse_args(argv)
    rows = run(quick=args.quick, n=args.n, d=args.d)
    print_rows(rows)
    return 0 if rows[0]["rss_peak_mib"] < 1024 else 1


if __name__ == "__main__":
    raise SystemExit(main())
