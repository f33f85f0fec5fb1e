"""implicitdiv next to the libraries people use today, on the same inputs: the largest relative
difference of the values, the time and the peak memory of each, at sizes where the peer fits in
memory and one where it does not (there only implicitdiv runs, and the peer's need is computed).

    python -m benchmarks.bench_peers [--quick] [--only geomloss,pykeops,torchmetrics,alibi] [--repeats 3]

Peers (each where importable; none is a requirement of implicitdiv):
  geomloss      SamplesLoss("gaussian" | "laplacian" | "energy", blur=sigma, backend="tensorized")
                = 1/2 our biased mmd2 (kernel "rbf" | "laplacian" | "energy", bandwidth=sigma); its
                distances are floored at 1e-4, which moves the laplacian and energy diagonal terms.
  pykeops       sum_ij exp(-|x_i - y_j|^2 / (2 sigma^2)) b_jp as a LazyTensor reduction
                = kernel_sum(x, y, kernel="rbf", bandwidth=sigma, y_weights=b).
  torchmetrics  KernelInceptionDistance(feature=Identity()).compute() after torch.manual_seed(s)
                = kid(real, fake, seed=s) (the same subsets); both kid schedules are timed.
  alibi         alibi_detect.cd.pytorch.mmd.MMDDriftTorch(x, sigma=[sigma]).score(y): statistic the
                unbiased mmd2, p = #{null >= observed} / P over torch.randperm relabelings of its
                (N + M)^2 kernel matrix; mmd_test: the biased statistic, p = (1 + #) / (1 + P) from
                one pass over the pairs for all relabelings.

Times: median of --repeats calls, the two sides' calls interleaved in this process, after a
warm-up call (pykeops compiles there); the ratio is the number to read. Peak memory: the largest
resident set size above the one before the call (bench_distributed.PeakRss: the heap's free pages
handed back first, then sampled every millisecond; the inputs exist before the call and are not
counted); the script re-runs itself with MALLOC_MMAP_THRESHOLD_ fixed at 128 KiB, so that glibc
maps every large block afresh and hands it back when freed. Installing the peers without touching torch: pip install
--no-deps torchmetrics lightning-utilities geomloss (make test does); pykeops and keopscore with
--no-deps into a folder put on PYTHONPATH (they compile with the machine's g++ at first use);
alibi-detect (numpy < 2, transformers, ...) into a scratch venv with torch==2.13.0, its
site-packages after this venv's on PYTHONPATH.
"""
from __future__ import annotations

import argparse
import importlib
import os
import statistics
import sys
import time
import warnings

import torch

import implicitdiv as idv

from .bench_distributed import PeakRss

GIB = 2.0**30
MEMORY_GIB = 24.0  # this machine's memory: a peer needing more does not fit


def measure(sides: dict, repeats: int) -> dict:
    """{name: (value, median seconds, peak bytes)} for zero-argument callables, interleaved."""
    values, times, peaks = {}, {n: [] for n in sides}, {n: 0 for n in sides}
    for name, fn in sides.items():
        values[name] = fn()  # warm-up (JIT compiles, allocator pools)
    for _ in range(repeats):
        for name, fn in sides.items():
            with PeakRss() as mem:
                start = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - start)
            peaks[name] = max(peaks[name], mem.extra)
    return {n: (values[n], statistics.median(times[n]), peaks[n]) for n in sides}


def rel_diff(a, b) -> float:
    a, b = torch.as_tensor(a, dtype=torch.float64).flatten(), torch.as_tensor(b, dtype=torch.float64).flatten()
    return float(((a - b).abs() / b.abs().clamp(min=1e-300)).max())


def row(peer, case, ours, theirs, note=""):
    (v_o, t_o, m_o), (v_t, t_t, m_t) = ours, theirs
    return (f"| {peer} | {case} | {rel_diff(v_o, v_t):.1e} | {t_o * 1e3:.1f} ms | {t_t * 1e3:.1f} ms | "
            f"{t_t / t_o:.2f}x | {m_o / 2**20:.0f} MiB | {m_t / 2**20:.0f} MiB | {note} |")


def row_alone(peer, case, ours, need_gib, note=""):
    _, t_o, m_o = ours
    fits = "not run" if need_gib < MEMORY_GIB else f"does not fit in {MEMORY_GIB:.0f} GiB"
    return (f"| {peer} | {case} | - | {t_o * 1e3:.1f} ms | {fits} | - | {m_o / 2**20:.0f} MiB | "
            f"needs {need_gib:.0f} GiB | {note} |")


def samples(n, m, d, seed=0, offset=0.3):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g), torch.randn(m, d, generator=g) + offset


def alone(fn, repeats):
    return measure({"ours": fn}, repeats)["ours"]


# ---- the peers ----------------------------------------------------------------------------------

def bench_geomloss(quick, repeats):
    from geomloss import SamplesLoss

    rows = []
    n, d = (1024, 16) if quick else (4096, 16)
    x, y = samples(n, n, d)
    for kernel, name in (("rbf", "gaussian"), ("laplacian", "laplacian"), ("energy", "energy")):
        loss = SamplesLoss(name, blur=1.0, backend="tensorized")
        res = measure({"ours": lambda: idv.mmd2(x, y, kernel=kernel, bandwidth=1.0),
                       "theirs": lambda: 2.0 * loss(x, y)}, repeats)
        rows.append(row("geomloss", f"{name}, N = M = {n}, d = {d}", res["ours"], res["theirs"],
                        "ours = 2 x theirs" + ("; theirs floors distances at 1e-4" if kernel != "rbf" else "")))
    big = 16384 if quick else 65536
    x, y = samples(big, big, d)
    need = 3 * 2 * big * big * 4 / GIB  # three N x N float32 kernel matrices and their distance matrices
    rows.append(row_alone("geomloss", f"gaussian, N = M = {big}, d = {d}",
                          alone(lambda: idv.mmd2(x, y, kernel="rbf", bandwidth=1.0), 1), need))
    return rows


def bench_pykeops(quick, repeats):
    from pykeops.torch import LazyTensor

    rows = []
    for n, d in ((2048, 16), (8192, 16)) if quick else ((4096, 16), (16384, 16)):
        x, y = samples(n, n, d)
        b = torch.randn(n, 4, generator=torch.Generator().manual_seed(1))

        def keops_sum():
            k = (-((LazyTensor(x[:, None, :]) - LazyTensor(y[None, :, :])) ** 2).sum(-1) / 2.0).exp()
            return (k @ b).sum(0)

        res = measure({"ours": lambda: idv.kernel_sum(x, y, kernel="rbf", bandwidth=1.0, y_weights=b),
                       "theirs": keops_sum}, repeats)
        rows.append(row("pykeops", f"Gaussian sum, 4 weight columns, N = M = {n}, d = {d}", res["ours"], res["theirs"],
                        "never stores N x M either"))
    return rows


def bench_torchmetrics(quick, repeats):
    from torchmetrics.image.kid import KernelInceptionDistance

    rows = []
    n, d, subsets, m = (2000, 256, 10, 500) if quick else (10000, 2048, 100, 1000)
    g = torch.Generator().manual_seed(0)
    real, fake = torch.rand(n, d, generator=g), torch.rand(n, d, generator=g) + 0.01
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        metric = KernelInceptionDistance(feature=torch.nn.Identity(), subsets=subsets, subset_size=m)
    metric.update(real, real=True)
    metric.update(fake, real=False)

    def theirs():  # the class's compute: the instance's wrapper would return its cached first result
        torch.manual_seed(5)
        return torch.stack(KernelInceptionDistance.compute(metric))

    sides = {f"ours ({s})": (lambda s=s: torch.stack(idv.kid(real, fake, subsets=subsets, subset_size=m, seed=5,
                                                              schedule=s)))
             for s in ("subsets", "columns")}
    res = measure({**sides, "theirs": theirs}, repeats)
    case = f"KID, {n} x {d} per side, {subsets} subsets of {m}"
    for s in sides:
        rows.append(row("torchmetrics", f"{case}, {s}", res[s], res["theirs"], "(mean, std)"))
    big, d_big = (8000, 16) if quick else (40000, 64)
    real, fake = torch.rand(big, d_big, generator=g), torch.rand(big, d_big, generator=g) + 0.01
    need = 3 * 2 * big * big * 4 / GIB  # three m x m float32 kernel matrices and the products before ** 3
    rows.append(row_alone("torchmetrics", f"KID, {big} x {d_big} per side, 1 subset of {big}",
                          alone(lambda: idv.kid(real, fake, subsets=1, subset_size=big, seed=0), 1), need))
    return rows


def bench_alibi(quick, repeats):
    import numpy as np
    from alibi_detect.cd.pytorch.mmd import MMDDriftTorch

    rows = []
    n, d, perms = (1000, 16, 100) if quick else (2000, 16, 100)
    x, y = samples(n, n, d, offset=0.05)
    detector = MMDDriftTorch(x.numpy(), sigma=np.array([1.0], dtype=np.float32), n_permutations=perms, device="cpu")

    def theirs():
        torch.manual_seed(0)
        p, stat, _ = detector.score(y.numpy())
        return torch.tensor([stat, p])

    def ours():
        stat = idv.mmd2(x, y, kernel="rbf", bandwidth=1.0, estimator="unbiased")
        _, p = idv.mmd_test(x, y, bandwidth=1.0, permutations=perms, seed=0)
        return torch.stack([stat, p])

    res = measure({"ours": ours, "theirs": theirs}, repeats)
    (v_o, *_), (v_t, *_) = res["ours"], res["theirs"]
    note = (f"statistic: unbiased mmd2 vs theirs; p: ours {float(v_o[1]):.3f} = (1 + #)/(1 + P), "
            f"theirs {float(v_t[1]):.3f} = #/P, own permutations")
    res["ours"] = (v_o[:1], *res["ours"][1:])
    res["theirs"] = (v_t[:1], *res["theirs"][1:])
    rows.append(row("alibi-detect", f"MMD drift, N = M = {n}, d = {d}, {perms} permutations", res["ours"],
                    res["theirs"], note))
    big = 8000 if quick else 32768
    x, y = samples(big, big, d, offset=0.05)
    need = 2 * (2 * big) ** 2 * 4 / GIB  # the (N + M)^2 kernel matrix and its permuted copy
    rows.append(row_alone("alibi-detect", f"MMD drift, N = M = {big}, d = {d}, {perms} permutations",
                          alone(lambda: idv.mmd_test(x, y, bandwidth=1.0, permutations=perms, seed=0), 1), need))
    return rows


PEERS = {"geomloss": ("geomloss", bench_geomloss), "pykeops": ("pykeops.torch", bench_pykeops),
         "torchmetrics": ("torchmetrics.image.kid", bench_torchmetrics),
         "alibi": ("alibi_detect.cd.pytorch.mmd", bench_alibi)}

HEADER = ("| peer | case | largest rel. diff | implicitdiv | peer | peer / implicitdiv | implicitdiv peak | "
          "peer peak | note |\n|---|---|---|---|---|---|---|---|---|")


def main(argv=None) -> int:
    if os.environ.get("MALLOC_MMAP_THRESHOLD_") is None:
        env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": str(128 << 10)}
        os.execve(sys.executable, [sys.executable, "-m", "benchmarks.bench_peers", *(argv or sys.argv[1:])], env)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes")
    parser.add_argument("--only", default=",".join(PEERS), help="comma-separated peers")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    print(f"# {time.strftime('%H:%M UTC', time.gmtime())}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"load average {os.getloadavg()[0]:.1f}", flush=True)
    print(HEADER, flush=True)
    for name in args.only.split(","):
        module, bench = PEERS[name]
        try:
            importlib.import_module(module)
        except ImportError as e:
            print(f"| {name} | not installed ({e}) | | | | | | | |", flush=True)
            continue
        for line in bench(args.quick, args.repeats):
            print(line, flush=True)
    print(f"# done {time.strftime('%H:%M UTC', time.gmtime())}, load average {os.getloadavg()[0]:.1f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
