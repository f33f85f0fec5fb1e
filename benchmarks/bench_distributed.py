"""Distributed MMD^2 at a fixed total sample count on 1, 2 and 4 gloo processes of this machine:
time of forward + backward, each process's peak extra memory, and the bytes each rank sends.

One set of processes (the largest rank count) runs every configuration, with subgroups for the
smaller counts, so the configurations are interleaved repeat by repeat and the times compare
within one run (the median over repeats of the slowest rank). Ranks outside a subgroup wait in a
barrier. Threads per rank: the machine's cores divided by the ranks in use (at least 1), so more
ranks than cores oversubscribe.

    .venv/bin/python benchmarks/bench_distributed.py --n 4096 --d 32 --ranks 1 2 4 --repeats 3
"""
from __future__ import annotations

import argparse
import ctypes
import datetime
import json
import os
import socket
import threading
import time
import warnings

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import implicitdiv
import implicitdiv.distributed as idd

PAGE = os.sysconf("SC_PAGE_SIZE")
LIBC = ctypes.CDLL("libc.so.6")


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


class PeakRss:
    """The largest resident set size seen while the block runs, sampled every millisecond, minus
    the size when it started (after handing the heap's free pages back, so reused ones count)."""

    def __enter__(self):
        LIBC.malloc_trim(0)
        self.start = self.peak = rss_bytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        while not self._stop.wait(0.001):
            self.peak = max(self.peak, rss_bytes())

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_bytes())
        self.extra = self.peak - self.start
        return False


def _shard(t: torch.Tensor, part: int, parts: int) -> torch.Tensor:
    bounds = np.linspace(0, t.shape[0], parts + 1).round().astype(int)
    return t[bounds[part]: bounds[part + 1]]


def _measure(args, x_all, y_all, group, world, exchange):
    """One forward + backward on this rank; returns (seconds, peak extra bytes, bytes sent forward,
    bytes sent backward) for this rank."""
    rank = dist.get_rank(group)
    torch.set_num_threads(max(1, args.cores // world))
    x = _shard(x_all, rank, world).clone().requires_grad_()
    y = _shard(y_all, rank, world).clone().requires_grad_()
    dist.barrier(group=group)
    with PeakRss() as mem:
        idd.TRAFFIC.reset()
        start = time.perf_counter()
        if exchange == "single process":
            out = implicitdiv.mmd2(x, y, bandwidth=args.bandwidths, estimator=args.estimator, backend=args.backend)
            sent_fwd = 0
        else:
            out = idd.mmd2(x, y, bandwidth=args.bandwidths, estimator=args.estimator, backend=args.backend,
                           group=group, exchange=exchange)
            sent_fwd = idd.TRAFFIC.bytes_sent
        out.backward()
        elapsed = time.perf_counter() - start
    return elapsed, mem.extra, sent_fwd, idd.TRAFFIC.bytes_sent - sent_fwd


def _worker(rank, args, port, out_path):
    warnings.simplefilter("ignore", RuntimeWarning)
    size = max(args.ranks)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=size,
                            timeout=datetime.timedelta(minutes=10))
    groups = {w: (dist.group.WORLD if w == size else dist.new_group(list(range(w)))) for w in args.ranks}
    gen = torch.Generator().manual_seed(0)
    x_all = torch.randn(args.n, args.d, generator=gen).to(args.dtype)
    y_all = (torch.randn(args.n, args.d, generator=gen) + 0.2).to(args.dtype)
    configs = [(1, "single process")] if 1 in args.ranks else []
    configs += [(w, ex) for w in args.ranks for ex in args.exchanges if w > 1 or ex == args.exchanges[0]]
    results = {c: [] for c in configs}
    for repeat in range(args.repeats + 1):  # the first round warms up and is dropped
        for world, exchange in configs:
            row = torch.zeros(4, dtype=torch.float64)
            if rank < world:
                row = torch.tensor(_measure(args, x_all, y_all, groups[world], world, exchange), dtype=torch.float64)
            dist.all_reduce(row, op=dist.ReduceOp.MAX)  # the slowest rank, the largest memory and traffic
            if repeat > 0:
                results[(world, exchange)].append(row.tolist())
    if rank == 0:
        table = []
        for (world, exchange), rows in results.items():
            rows = np.array(rows)
            table.append({"ranks": world, "exchange": exchange, "threads_per_rank": max(1, args.cores // world),
                          "seconds_median": float(np.median(rows[:, 0])), "seconds_all": rows[:, 0].tolist(),
                          "peak_extra_mib": float(np.max(rows[:, 1])) / 2**20,
                          "sent_forward_kib": float(rows[-1, 2]) / 2**10, "sent_backward_kib": float(rows[-1, 3]) / 2**10})
        with open(out_path, "w") as f:
            json.dump({"args": {k: (str(v) if k == "dtype" else v) for k, v in vars(args).items()}, "results": table}, f,
                      indent=1)
    dist.destroy_process_group()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=4096, help="samples in x and in y, in total over the ranks")
    parser.add_argument("--d", type=int, default=32)
    parser.add_argument("--ranks", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--exchanges", nargs="+", default=list(idd.EXCHANGES), choices=idd.EXCHANGES)
    parser.add_argument("--estimator", default="unbiased", choices=("biased", "unbiased"))
    parser.add_argument("--bandwidths", type=float, nargs="+", default=[0.5, 1.0, 4.0])
    parser.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args()
    args.dtype = getattr(torch, args.dtype)
    args.cores = os.cpu_count()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out_path = args.json or f"/tmp/bench_distributed_{os.getpid()}.json"
    mp.start_processes(_worker, args=(args, port, out_path), nprocs=max(args.ranks), start_method="spawn")
    with open(out_path) as f:
        report = json.load(f)
    with open("/proc/loadavg") as f:
        load = f.read().split()[:3]
    print(f"mmd2 {args.estimator}, N = M = {args.n}, d = {args.d}, {len(args.bandwidths)} bandwidths, "
          f"{str(args.dtype)[6:]}, backend={args.backend} ({implicitdiv.backends()}), {args.cores} cores, "
          f"load average after the run {' '.join(load)}; forward + backward, median of {args.repeats}")
    base = next((r["seconds_median"] for r in report["results"] if r["exchange"] == "single process"), None)
    print(f"{'ranks':>5} {'exchange':>15} {'thr':>3} {'seconds':>8} {'vs 1 proc':>9} {'peak+MiB':>9} "
          f"{'sent fwd KiB':>12} {'sent bwd KiB':>12}")
    for r in report["results"]:
        ratio = f"{r['seconds_median'] / base:9.2f}" if base else f"{'':>9}"
        print(f"{r['ranks']:>5} {r['exchange']:>15} {r['threads_per_rank']:>3} {r['seconds_median']:8.3f} {ratio} "
              f"{r['peak_extra_mib']:9.1f} {r['sent_forward_kib']:12.1f} {r['sent_backward_kib']:12.1f}")


if __name__ == "__main__":
    main()
