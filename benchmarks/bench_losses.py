"""Speed of the fused ratio losses and Gaussian latent terms, forward + backward, against the naive
reference and torch.compile of it, with the machine's memory-bandwidth floor next to them.

    python -m benchmarks.bench_losses [--quick] [--repeats 5] [--threads N]

Cases (float32): adversarial_losses(kind="gan") on N real and N fake logits, N in {256, 65536,
4194304}; gaussian_nll and kl_std_normal on (rows, d) latents in {(4096, 64), (65536, 512)}. Each is
timed as loss.backward() after the forward, for:

  naive     the reference math (implicitdiv.reference), what one writes by hand
  compiled  torch.compile (inductor) of that same function
  fused     the public function with backend="cpp" (input checks and the NaN/Inf rule included)
  fused op  the fused op alone (implicitdiv.ops), without the public layer's checks

All variants of one case run in this process with their repeats interleaved (at least --repeats,
more for short cases, up to about 0.3 s per variant); the median is reported and the ratios
naive / variant are the numbers to read. --quick runs the two smaller logit sizes and
the smaller latent, three repeats, without torch.compile (its compile time alone would exceed the
budget).

Floor: the bytes a forward + backward must move at least (read every input once, write every input
gradient once) over the bandwidth of a large torch copy measured here (read + write).

Faults: the median minor page faults of one step per variant. Every variant allocates its gradients
afresh each step (x.grad = None, as with zero_grad(set_to_none=True)); whether those buffers come back
from glibc's heap or as new pages to fault in (about 2 us a 4 KiB page on a VM) depends on what the
variant before it freed and when glibc last trimmed the heap, so at large sizes that cost can land on
one variant and not another. Running with MALLOC_TRIM_THRESHOLD_ and MALLOC_MMAP_THRESHOLD_ set high
(glibc keeps freed memory mapped) takes it out for all of them.
"""
from __future__ import annotations

import argparse
import statistics
import time

try:
    import resource
except ImportError:  # not on Windows: no fault counts
    resource = None

import torch

import implicitdiv as idv
from implicitdiv.ops import gaussian as gaussian_ops
from implicitdiv.ops import ratio as ratio_ops
from implicitdiv.reference import gaussian as ref_gaussian
from implicitdiv.reference import ratio as ref_ratio

LOGITS = (256, 65536, 4194304)
LATENTS = ((4096, 64), (65536, 512))
COPY_BYTES = 256 * 2**20
MAX_REPEATS = 200


# ---- the functions timed ------------------------------------------------------------------------

def _ratio_variants():
    def naive(real, fake):
        d, g = ref_ratio.adversarial_losses(real, fake, "gan", False)
        return d + g

    def fused(real, fake):
        d, g = idv.adversarial_losses(real, fake, kind="gan", backend="cpp")
        return d + g

    def fused_op(real, fake):
        d, g = ratio_ops.adversarial_losses(real, fake, "gan", False, backend="cpp")
        return d + g

    return naive, fused, fused_op


def _gaussian_variants(function):
    def naive(*xs):
        return getattr(ref_gaussian, function)(*xs).mean()

    def fused(*xs):
        return getattr(idv, function)(*xs, backend="cpp")

    def fused_op(*xs):
        return getattr(gaussian_ops, function)(*xs, "mean", backend="cpp")

    return naive, fused, fused_op


def _cases(quick: bool):
    logits = LOGITS[:2] if quick else LOGITS
    latents = LATENTS[:1] if quick else LATENTS
    for n in logits:
        yield "adversarial_losses gan", f"N = {n}", _ratio_variants(), (n, n)
    for rows, d in latents:
        yield "gaussian_nll", f"{rows} x {d}", _gaussian_variants("gaussian_nll"), ((rows, d),) * 3
        yield "kl_std_normal", f"{rows} x {d}", _gaussian_variants("kl_std_normal"), ((rows, d),) * 2


# ---- timing --------------------------------------------------------------------------------------

def _step(fn, inputs):
    for x in inputs:
        x.grad = None
    fn(*inputs).backward()


def _minor_faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt if resource is not None else 0


def _time(fns: dict, inputs, repeats: int) -> tuple[dict, dict]:
    """Median seconds of one forward + backward per variant, repeats interleaved across variants,
    and the median minor page faults of a step; short cases get more repeats (about 0.3 s per
    variant), so a scheduler hiccup on a shared machine cannot move their median."""
    for fn in fns.values():  # warm-up (and compilation)
        _step(fn, inputs)
    start = time.perf_counter()
    for fn in fns.values():
        _step(fn, inputs)
    per_round = time.perf_counter() - start
    repeats = max(repeats, min(MAX_REPEATS, int(0.3 * len(fns) / max(per_round, 1e-9))))
    times = {name: [] for name in fns}
    faults = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            before = _minor_faults()
            start = time.perf_counter()
            _step(fn, inputs)
            times[name].append(time.perf_counter() - start)
            faults[name].append(_minor_faults() - before)
    return ({name: statistics.median(t) for name, t in times.items()},
            {name: statistics.median(f) for name, f in faults.items()})


def copy_bandwidth(repeats: int = 5) -> float:
    """Bytes per second of a large torch copy, counting the read and the write."""
    src = torch.empty(COPY_BYTES // 4, dtype=torch.float32).uniform_()
    dst = torch.empty_like(src)
    dst.copy_(src)
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        dst.copy_(src)
        seconds.append(time.perf_counter() - start)
    return 2 * COPY_BYTES / statistics.median(seconds)


def run(quick: bool = False, repeats: int | None = None) -> list[dict]:
    """One row per case: median milliseconds of every variant, ratios naive / variant, the minimum
    bytes moved and the bandwidth floor in milliseconds."""
    repeats = repeats or (3 if quick else 5)
    if "cpp" not in idv.backends():
        print("bench_losses: implicitdiv._C is not built; nothing fused to time")
        return []
    bandwidth = copy_bandwidth()
    rows = []
    torch.manual_seed(0)
    for op, size, (naive, fused, fused_op), shapes in _cases(quick):
        inputs = [torch.randn(s, dtype=torch.float32, requires_grad=True) for s in shapes]
        fns = {"naive": naive, "fused": fused, "fused op": fused_op}
        if not quick:
            torch._dynamo.reset()
            fns["compiled"] = torch.compile(naive)
        seconds, faults = _time(fns, inputs, repeats)
        ms = {k: 1e3 * v for k, v in seconds.items()}
        moved = 2 * sum(x.numel() * x.element_size() for x in inputs)  # read each input, write its gradient
        rows.append({
            "op": op, "size": size, "ms": ms,
            "speedup": {k: ms["naive"] / v for k, v in ms.items() if k != "naive"},
            "faults": faults, "min_bytes": moved, "floor_ms": 1e3 * moved / bandwidth, "copy_gbps": bandwidth / 1e9,
            "threads": torch.get_num_threads(),
        })
    return rows


def format_rows(rows: list[dict]) -> str:
    variants = ("naive", "compiled", "fused", "fused op")
    head = ("| op | size | " + " | ".join(f"{v} ms" for v in variants)
            + " | naive/compiled | naive/fused | naive/fused op | compiled/fused | min MB | floor ms"
            + " | faults/step " + "/".join(variants) + " |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        ms = r["ms"]
        cells = [f"{ms[v]:.3f}" if v in ms else "-" for v in variants]
        sp = r["speedup"]
        ratio = [f"{sp[v]:.2f}x" if v in sp else "-" for v in ("compiled", "fused", "fused op")]
        vs_compiled = f"{ms['compiled'] / ms['fused']:.2f}x" if "compiled" in ms else "-"
        faults = "/".join(f"{r['faults'][v]:.0f}" if v in r["faults"] else "-" for v in variants)
        lines.append(f"| {r['op']} | {r['size']} | " + " | ".join(cells) + " | " + " | ".join(ratio)
                     + f" | {vs_compiled} | {r['min_bytes'] / 1e6:.1f} | {r['floor_ms']:.3f} | {faults} |")
    if rows:
        lines.append(f"\ncopy bandwidth {rows[0]['copy_gbps']:.2f} GB/s (read + write), "
                     f"{rows[0]['threads']} threads, float32")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch.set_num_threads for every variant (the fused kernels use the same count)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(format_rows(run(quick=args.quick, repeats=args.repeats)))


if __name__ == "__main__":
    main()
