"""Speed of MMD^2 on every available backend, forward and forward+backward, and of the permutation
test, with the machine's floor next to the engine.

    python -m benchmarks.bench_pairwise [--quick] [--max-gib 6] [--repeats 3]

Grid: N = M in {1024, 4096, 16384}, d in {2, 16, 64}, one RBF bandwidth and a 5-bandwidth mixture;
backends: the naive reference, the naive matrix-product form most trainers write (the issue's
"naive PyTorch"), torch.compile of the reference, cpp, triton (CUDA tensors, when
CUDA is there) and pykeops when importable. A baseline is skipped where it would not fit in
--max-gib, or where its time at the previous N, scaled by N^2, exceeds --max-seconds. All timings of one configuration come from this process,
with the backends' repeats interleaved, and the median is reported; the ratios are the numbers to
read. A baseline whose estimated memory exceeds --max-gib is skipped (the naive reference stores an
(N, M, d) difference tensor). --quick runs N = 512, d in {2, 16}, without torch.compile.

Floor: the dot products at the machine's GEMM rate (torch.matmul, 2048^3) plus one exp per pair
and bandwidth at torch.exp's rate on a 2^24 buffer, over the pair evaluations the engine does:
forward N^2/2 + M^2/2 + NM (the symmetric sums take each unordered tile pair once), backward
N^2 + M^2 + 2NM more, each with a second d-long contraction.
"""
from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time

import torch

import implicitdiv as idv
from implicitdiv.bench.cases import naive_mmd2
from implicitdiv.reference import pairwise as ref

SIZES = (1024, 4096, 16384)
DIMS = (2, 16, 64)
BANDWIDTHS = {"rbf": (1.0,), "rbf x5": (0.25, 0.5, 1.0, 2.0, 4.0)}
MMD_TEST = {"n": 4096, "d": 16, "permutations": 1000}
# the targets: N = 16384, forward+backward
TARGETS = ((2, "rbf"), (64, "rbf"), (16, "rbf x5"))


# ---- backends -----------------------------------------------------------------------------------

def _reference_mmd2(bandwidths):
    return lambda x, y: ref.mmd2(x.unsqueeze(0), y.unsqueeze(0), "rbf", bandwidths, "biased")[0]


def _naive_mmd2(bandwidths):
    """The naive PyTorch a trainer writes (implicitdiv.bench's peer): it still runs at N = 16384."""
    return lambda x, y: naive_mmd2(x, y, bandwidths)


def _compiled_reference_mmd2(bandwidths):
    # every configuration compiles afresh: the closures share one code object, and dynamo's
    # recompile limit would otherwise silently fall back to eager after a few configurations
    torch._dynamo.reset()
    return torch.compile(_reference_mmd2(bandwidths))


def _compiled_naive_mmd2(bandwidths):
    torch._dynamo.reset()
    return torch.compile(_naive_mmd2(bandwidths))


def _keops_mmd2(bandwidths):
    from pykeops.torch import LazyTensor

    def mmd2(x, y):
        def ksum(a, b):
            s = ((LazyTensor(a[:, None, :]) - LazyTensor(b[None, :, :])) ** 2).sum(-1)
            k = sum((-s / (2.0 * h * h)).exp() for h in bandwidths)
            return k.sum(1).sum()

        n, m = x.shape[0], y.shape[0]
        return ksum(x, x) / (n * n) + ksum(y, y) / (m * m) - 2.0 * ksum(x, y) / (n * m)

    return mmd2


def backends(quick: bool) -> dict:
    """name -> (device, factory(bandwidths) -> fn(x, y))."""
    found = {"reference": ("cpu", _reference_mmd2), "naive matmul": ("cpu", _naive_mmd2)}
    if not quick:
        found["compile"] = ("cpu", _compiled_reference_mmd2)
        found["compile naive matmul"] = ("cpu", _compiled_naive_mmd2)
    if "cpp" in idv.backends():
        found["cpp"] = ("cpu", lambda bw: lambda x, y: idv.mmd2(x, y, bandwidth=bw, backend="cpp"))
    if torch.cuda.is_available() and "triton" in idv.backends():
        found["triton"] = ("cuda", lambda bw: lambda x, y: idv.mmd2(x, y, bandwidth=bw, backend="triton"))
    try:
        import pykeops  # noqa: F401

        found["pykeops"] = ("cuda" if torch.cuda.is_available() else "cpu", _keops_mmd2)
    except ImportError:
        pass
    return found


def estimated_gib(backend: str, n: int, d: int, backward: bool, nb: int = 1) -> float:
    """Peak memory of a baseline: the reference keeps (N, N, d) differences and N x N matrices
    (three sums' worth when it keeps them for backward); compiled code keeps a few N x N matrices."""
    pairs = n * n * 4
    if backend == "reference":
        return pairs * ((d + 3) * (3 if backward else 1)) / 2**30
    if backend in ("compile", "compile naive matmul"):
        return pairs * (6 if backward else 1) / 2**30
    if backend == "naive matmul":  # s, the exps and their sum per bandwidth, kept for backward
        return pairs * ((2 + 6 * nb) if backward else 3) / 2**30
    return 0.0


# ---- timing -------------------------------------------------------------------------------------

def _sync(device):
    if device == "cuda":
        torch.cuda.synchronize()


def _one_pass(fn, x, y, backward: bool):
    if backward:
        v = fn(x, y)
        torch.autograd.grad(v, (x, y))
    else:
        with torch.no_grad():
            fn(x, y)


def _timed(fn, x, y, backward, device) -> float:
    _sync(device)
    start = time.perf_counter()
    _one_pass(fn, x, y, backward)
    _sync(device)
    return time.perf_counter() - start


def measure_floor() -> dict:
    """The machine's rates on one thread, times the thread count (what perfect scaling would give):
    GEMM flops from torch.matmul (2048^3) and exps from torch.exp into a cache-resident 2^16-float
    buffer (64 times, so memory traffic counts little); medians of 5."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        a = torch.randn(2048, 2048)
        e = torch.rand(2**16) * -10.0
        out = torch.empty_like(e)
        mm, ex = [], []
        for _ in range(5):
            start = time.perf_counter()
            a @ a
            mm.append(time.perf_counter() - start)
            start = time.perf_counter()
            for _ in range(64):
                torch.exp(e, out=out)
            ex.append(time.perf_counter() - start)
    finally:
        torch.set_num_threads(threads)
    return {"gemm_flops": threads * 2 * 2048**3 / statistics.median(mm),
            "exps": threads * 64 * 2**16 / statistics.median(ex)}


def engine_work(n: int, d: int, nb: int, backward: bool) -> dict:
    """Pair evaluations, flops and exps the cpp engine does for biased MMD^2 with N = M = n: each
    unordered x-x and y-y pair and each x-y pair once, with a d-long dot product (2d flops), and in
    the training pass (forward+backward) two d-long contractions more (4d flops)."""
    pairs = n * n / 2 + n * n / 2 + n * n
    flops = (6 if backward else 2) * d * pairs
    return {"pairs": pairs, "flops": flops, "exps": pairs * nb, "bytes": 4 * (2 * n * d) * (2 if backward else 1)}


def floor_seconds(work: dict, floor: dict) -> float:
    return work["flops"] / floor["gemm_flops"] + work["exps"] / floor["exps"]


def run_config(n, d, label, bandwidths, found, repeats, max_gib, floor, max_seconds=math.inf, history=None,
               passes=(False, True)) -> list[dict]:
    """Rows for one (N, d, kernel): each backend's median over `repeats` interleaved runs. A baseline
    is skipped when its estimated memory exceeds max_gib, or when its time at a smaller N (in
    `history`), scaled by N^2, exceeds max_seconds."""
    history = {} if history is None else history
    gen = torch.Generator().manual_seed(n + d)
    x_cpu = torch.randn(n, d, generator=gen)
    y_cpu = torch.randn(n, d, generator=gen) + 0.1
    rows = []
    for backward in passes:
        fns = {}
        pass_name = "fwd+bwd" if backward else "fwd"
        for name, (device, factory) in found.items():
            gib = estimated_gib(name, n, d, backward, len(bandwidths))
            key = (name, d, label, pass_name)
            predicted = history[key][1] * (n / history[key][0]) ** 2 if key in history else 0.0
            skip = None
            if gib > max_gib:
                skip = f"skipped: needs ~{gib:.0f} GiB > --max-gib {max_gib:g}"
            elif name != "cpp" and predicted > max_seconds:
                skip = f"skipped: ~{predicted:.0f} s a call from N = {history[key][0]} > --max-seconds {max_seconds:g}"
            if skip:
                rows.append({"n": n, "d": d, "kernel": label, "pass": pass_name, "backend": name, "seconds": None,
                             "note": skip})
                continue
            x = x_cpu.to(device).requires_grad_(backward)
            y = y_cpu.to(device).requires_grad_(backward)
            fn = factory(bandwidths)
            _one_pass(fn, x, y, backward)  # warm-up (and compilation)
            fns[name] = (fn, x, y, device)
        times = {name: [] for name in fns}
        for _ in range(repeats):
            for name, (fn, x, y, device) in fns.items():
                times[name].append(_timed(fn, x, y, backward, device))
        work = engine_work(n, d, len(bandwidths), backward)
        floor_s = floor_seconds(work, floor)
        base = statistics.median(times["cpp"]) if "cpp" in times else None
        for name, ts in times.items():
            sec = statistics.median(ts)
            history[(name, d, label, "fwd+bwd" if backward else "fwd")] = (n, sec)
            row = {"n": n, "d": d, "kernel": label, "pass": "fwd+bwd" if backward else "fwd", "backend": name,
                   "seconds": sec, "x_cpp": (sec / base) if base else None}
            if name == "cpp":
                row.update(pairs=work["pairs"], gflop=work["flops"] / 1e9, floor_s=floor_s, x_floor=sec / floor_s)
            rows.append(row)
        del fns
    return rows


def run_mmd_test(repeats_reference: int = 2) -> list[dict]:
    """mmd_test with 1000 permutations (one kernel sum with 1001 weight columns) against looping the
    reference mmd2 over the permutations, timed on `repeats_reference` of them and scaled to 1001."""
    n, d, perms = MMD_TEST["n"], MMD_TEST["d"], MMD_TEST["permutations"]
    gen = torch.Generator().manual_seed(11)
    x = torch.randn(n, d, generator=gen)
    y = torch.randn(n, d, generator=gen) + 0.1
    bw = float(idv.median_bandwidth(x, y))
    rows = []
    if "cpp" in idv.backends():
        start = time.perf_counter()
        idv.mmd_test(x, y, bandwidth=bw, permutations=perms, seed=0, backend="cpp")
        fast = time.perf_counter() - start
        rows.append({"test": f"mmd_test N=M={n} d={d} P={perms}", "backend": "cpp", "seconds": fast})
    z = torch.cat([x, y])
    per = []
    for k in range(repeats_reference):
        perm = torch.randperm(2 * n, generator=torch.Generator().manual_seed(k))
        start = time.perf_counter()
        with torch.no_grad():
            idv.mmd2(z[perm[:n]], z[perm[n:]], bandwidth=bw, backend="reference")
        per.append(time.perf_counter() - start)
    loop = statistics.median(per) * (perms + 1)
    rows.append({"test": f"mmd_test N=M={n} d={d} P={perms}", "backend": "reference mmd2 loop",
                 "seconds": loop, "note": f"median of {repeats_reference} reference mmd2 calls x {perms + 1}"})
    if "cpp" in idv.backends():
        rows[-1]["x_cpp"] = loop / fast
    return rows


def run(quick: bool = False, max_gib: float = 6.0, repeats: int = 3, max_seconds: float = 130.0,
        targets: bool = False, only: tuple[str, ...] = ()) -> list[dict]:
    """All rows of the benchmark (see the module docstring); targets=True: only N = 16384
    forward+backward for (d = 2, rbf), (d = 64, rbf), (d = 16, 5 bandwidths)."""
    found = backends(quick)
    if only:
        found = {k: v for k, v in found.items() if k in only or k == "cpp"}
    floor = measure_floor()
    rows = [{"floor": True, "gemm_gflops": floor["gemm_flops"] / 1e9, "gexp_per_s": floor["exps"] / 1e9,
             "threads": torch.get_num_threads(), "load": os.getloadavg()[0]}]
    sizes, dims = ((512,), (2, 16)) if quick else (SIZES, DIMS)
    history: dict = {}
    if targets:
        for d, label in TARGETS:
            rows += run_config(16384, d, label, BANDWIDTHS[label], found, repeats, max_gib, floor, passes=(True,))
        rows.append({"load_after": os.getloadavg()[0]})
        return rows
    for n in sizes:
        for d in dims:
            for label, bandwidths in BANDWIDTHS.items():
                rows += run_config(n, d, label, bandwidths, found, repeats, max_gib, floor, max_seconds, history)
    if not quick:
        rows += run_mmd_test()
    rows.append({"load_after": os.getloadavg()[0]})
    return rows


def _fmt(sec):
    return "-" if sec is None else (f"{sec * 1e3:9.1f} ms" if sec < 10 else f"{sec:9.2f} s ")


def print_rows(rows: list[dict], out=sys.stdout, flush=False) -> None:
    for r in rows:
        if r.get("floor"):
            print(f"floor: GEMM {r['gemm_gflops']:.1f} GFLOP/s, exp {r['gexp_per_s']:.2f} G/s; "
                  f"threads {r['threads']}, load average {r['load']:.1f}", file=out)
            print(f"{'N':>6} {'d':>3} {'kernel':>7} {'pass':>8} {'backend':>20} {'time':>12} {'x cpp':>8}  notes", file=out)
        elif "load_after" in r:
            print(f"load average at the end: {r['load_after']:.1f}", file=out)
        elif "test" in r:
            ratio = f"{r['x_cpp']:8.1f}" if r.get("x_cpp") else f"{'':8}"
            print(f"{r['test']:>38} {r['backend']:>20} {_fmt(r['seconds'])} {ratio}  {r.get('note', '')}", file=out)
        else:
            ratio = f"{r['x_cpp']:8.2f}" if r.get("x_cpp") else f"{'':8}"
            note = r.get("note", "")
            if r["backend"] == "cpp":
                note = (f"{r['pairs'] / 1e6:.0f} M pair evals, {r['gflop']:.1f} GFLOP; floor {_fmt(r['floor_s']).strip()}"
                        f" -> {r['x_floor']:.1f}x floor")
            print(f"{r['n']:>6} {r['d']:>3} {r['kernel']:>7} {r['pass']:>8} {r['backend']:>20} {_fmt(r['seconds'])} "
                  f"{ratio}  {note}", file=out, flush=flush)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="N = 512, d in {2, 16}, no torch.compile")
    parser.add_argument("--max-gib", type=float, default=6.0, help="skip baselines estimated to need more memory")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--max-seconds", type=float, default=130.0,
                        help="skip a baseline whose call, scaled from a smaller N, would take longer")
    parser.add_argument("--targets", action="store_true",
                        help="only the issue's targets: N = 16384 forward+backward, (d, kernel) in " + str(TARGETS))
    parser.add_argument("--only", default="", help="comma-separated baselines to time beside cpp")
    args = parser.parse_args(argv)
    rows = run(quick=args.quick, max_gib=args.max_gib, repeats=args.repeats, max_seconds=args.max_seconds,
               targets=args.targets, only=tuple(b for b in args.only.split(",") if b))
    print_rows(rows, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
