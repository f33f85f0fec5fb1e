"""Timing sections of the GPU campaign: the public Triton-backed functions against eager naive
PyTorch, torch.compile of the naive form, and pykeops / geomloss where importable, with the floor
computed from the rates measured in the same run and the peak memory of each call.

Every call is timed with CUDA events (perf_counter in the dry run), repeats interleaved across the
backends of a row, warm-up excluded, median reported (campaign_core.time_interleaved). Kernels are
compiled ahead in the worker pool (each call once at a size with the same Triton specialization),
so the timed process mostly loads them from the disk cache.

A row is skipped with a note when a backend would not fit in memory (the estimate of
benchmarks/bench_pairwise.estimated_gib), when one call is predicted to take more than MAX_CALL_S,
or when the row's predicted cost would overrun the budget. Predictions come from the floors times
GAP before a backend has run, then from its time at the previous N scaled by (N / N_prev)^2.
"""
from __future__ import annotations

import contextlib
import importlib.util
import math
import os
from dataclasses import dataclass, replace

import torch

from .campaign_core import Section, SectionResult, register, time_interleaved
from .campaign_floors import gemm_rate, rates, tf32_matmul
from .campaign_internals import (_gaussian_variants, _keops_mmd2, _naive_mmd2, _one_pass, _ratio_variants, _step,
                                 engine_work, estimated_gib, floor_seconds, tiles_overridden)

GAP = 4.0  # assumed time over the floor of a backend not yet measured
COMPILE_GRAPH_S = 25.0  # assumed seconds for torch.compile to build one graph (inductor, cold, in the pool)
COMPILE_WARM_S = 5.0  # ... and to trace it again in the timed process, inductor's caches warm
PREWARM_S = 20.0  # assumed seconds for the pool to compile a section's Triton kernels ahead
COMPILE_BACKEND = os.environ.get("GPU_CAMPAIGN_COMPILE_BACKEND", "inductor")  # the dry run traces only ("eager")
MAX_CALL_S = 20.0  # a single call predicted longer than this is skipped
TARGET_S = 0.3  # seconds of samples per call and row (at least 3 timed repeats)


def sizes(ctx) -> dict:
    """The problem sizes of the timing sections: the issue's on the GPU, tiny in the dry run."""
    if ctx.dry_run:
        return {"target": (16, 3), "target_passes": (True,), "grid_n": (16,), "grid_d": (3,), "grid_bw": ((1.0,),),
                "test": (16, 3, 20), "mixture": (16, 3), "mixture_naive": (12, 3), "losses": (1000, 3000),
                "latent_d": 8}
    return {"target": (16384, 64), "target_passes": (False, True), "grid_n": (4096, 16384, 65536, 262144),
            "grid_d": (2, 16, 64, 256), "grid_bw": ((1.0,), (0.25, 0.5, 1.0, 2.0, 4.0)), "test": (16384, 16, 1000),
            "mixture": (65536, 16), "mixture_naive": (16384, 16), "losses": (4 * 2**20, 64 * 2**20), "latent_d": 64}


def available_peers() -> list[str]:
    return [name for name in ("pykeops", "geomloss") if importlib.util.find_spec(name) is not None]


PLAN_GPU_GIB = 139.0  # the H200's memory, for --plan on a machine without a GPU
PREWARM_GIB = 8.0  # larger calls compile in the timed process: the pool's calls run side by side


def max_gib(ctx) -> float:
    """What a baseline may take: 80% of the device's memory (1 GiB in the dry run)."""
    if ctx.dry_run:
        return 1.0
    total = torch.cuda.get_device_properties(0).total_memory / 2**30 if torch.cuda.is_available() else PLAN_GPU_GIB
    return 0.8 * total


# ---- calls --------------------------------------------------------------------------------------

class Prewarm:
    """As a pool task: build the call and run it once, which compiles (and caches) its kernels."""

    def gib(self) -> float:
        """Estimated peak memory of the call (0 for the fused ops)."""
        return 0.0

    def seeded(self, seed: int):
        """The call's device and a generator on it: every backend of a row draws the same inputs."""
        dev = torch.device(self.device)
        return dev, torch.Generator(device=dev).manual_seed(seed)

    def run(self) -> dict:
        fn = self.build()
        fn()
        if self.device == "cuda":
            torch.cuda.synchronize()
        return {"status": "pass"}


_COMPILED: dict = {}


def compiled(fn_key, factory, dynamic: bool):
    """One torch.compile per naive function and mode, kept for the run. Static shapes unless
    `dynamic` (a new shape compiles anew, as the pool compiled it ahead, so inductor's cache has
    it). The naive forms' closures share one code object, and dynamo counts recompiles per code
    object: past its limit it would silently run them eagerly, so the limit is raised."""
    cfg = torch._dynamo.config
    for name in ("recompile_limit", "cache_size_limit"):
        if hasattr(cfg, name):
            setattr(cfg, name, max(getattr(cfg, name), 256))
    key = (fn_key, dynamic)
    if key not in _COMPILED:
        _COMPILED[key] = torch.compile(factory(), dynamic=dynamic, backend=COMPILE_BACKEND)
    return _COMPILED[key]


def _geomloss_mmd2(bandwidths):
    """geomloss's kernel MMD: SamplesLoss("gaussian") with blur sigma is (1/2) MMD^2 of
    exp(-|x - y|^2 / (2 sigma^2)), summed over the bandwidths."""
    from geomloss import SamplesLoss

    losses = [SamplesLoss("gaussian", blur=h) for h in bandwidths]
    return lambda x, y: sum(2.0 * loss(x, y) for loss in losses)


@dataclass(frozen=True)
class MmdCall(Prewarm):
    """One mmd2 call (N = M) by one backend: "triton", "eager" (the naive matmul form), "compile"
    (torch.compile of it), "pykeops", "geomloss"."""
    backend: str
    n: int
    d: int
    bandwidths: tuple
    dtype: str
    precision: str
    backward: bool
    device: str
    dynamic: bool = False
    tiles: tuple = ()  # (launch, ((field, value), ...)): a tile override for the sweep

    def function(self):
        bw = self.bandwidths
        if self.backend == "triton":
            import implicitdiv as idv

            return lambda x, y: idv.mmd2(x, y, bandwidth=bw, backend="triton", precision=self.precision)
        if self.backend == "eager":
            return _naive_mmd2(bw)
        if self.backend == "compile":
            return compiled(("mmd2", bw, self.precision), lambda: _naive_mmd2(bw), self.dynamic)
        return {"pykeops": _keops_mmd2, "geomloss": _geomloss_mmd2}[self.backend](bw)

    def inputs(self):
        dev, gen = self.seeded(self.n + self.d)
        dtype = getattr(torch, self.dtype)
        x = torch.randn(self.n, self.d, device=dev, generator=gen).to(dtype).requires_grad_(self.backward)
        y = (torch.randn(self.n, self.d, device=dev, generator=gen) + 0.1).to(dtype).requires_grad_(self.backward)
        return x, y

    def build(self):
        fn, (x, y) = self.function(), self.inputs()
        tf32 = self.precision == "tf32" and self.backend != "triton"

        def call():
            with tf32_matmul(True) if tf32 else contextlib.nullcontext():
                if not self.tiles:
                    return _one_pass(fn, x, y, self.backward)
                launch, fields = self.tiles
                with tiles_overridden(launch, **dict(fields)) as used:
                    _one_pass(fn, x, y, self.backward)
                if not used:
                    raise RuntimeError(f"the launchers no longer consult blocks({launch!r}): nothing to sweep")
        return call

    def prewarm(self) -> "MmdCall":
        """The same compiled kernels at a small size: N keeps its divisibility by 16 (Triton
        specializes on it); torch.compile keeps the real size unless its shapes are dynamic."""
        if self.backend == "triton" or self.dynamic:
            return replace(self, n=min(self.n, 256 if self.n % 16 == 0 else 257))
        return self

    def gib(self) -> float:
        name = {"eager": "naive matmul", "compile": "compile naive matmul"}.get(self.backend, self.backend)
        return estimated_gib(name, self.n, self.d, self.backward, len(self.bandwidths))


@dataclass(frozen=True)
class MixtureCall(Prewarm):
    backend: str  # "triton", "eager" (the reference), "compile" (of the reference)
    n: int
    d: int
    backward: bool
    device: str
    tiles: tuple = ()

    def build(self):
        import implicitdiv as idv
        from implicitdiv.reference import pairwise as ref

        dev, gen = self.seeded(self.n)
        z, means = (torch.randn(self.n, self.d, device=dev, generator=gen) for _ in range(2))
        logvars = torch.rand(self.n, self.d, device=dev, generator=gen) * 3.0 - 2.0
        ins = [t.requires_grad_(self.backward) for t in (z, means, logvars)]
        if self.backend == "triton":
            fn = lambda *t: idv.gaussian_mixture_logpdf(*t, backend="triton")  # noqa: E731
        elif self.backend == "eager":
            fn = ref.gaussian_mixture_logpdf
        else:
            fn = compiled(("mixture",), lambda: ref.gaussian_mixture_logpdf, False)

        def once():
            if self.backward:
                torch.autograd.grad(fn(*ins).sum(), ins)
            else:
                with torch.no_grad():
                    fn(*ins)

        def call():
            if not self.tiles:
                return once()
            launch, fields = self.tiles
            with tiles_overridden(launch, **dict(fields)) as used:
                once()
            if not used:
                raise RuntimeError(f"the launchers no longer consult blocks({launch!r}): nothing to sweep")
        return call

    def prewarm(self) -> "MixtureCall":
        return replace(self, n=min(self.n, 256)) if self.backend == "triton" else self

    def gib(self) -> float:
        """The reference keeps (N, M, d) differences, compiled code N x M scores (x3 with backward)."""
        if self.backend == "triton":
            return 0.0
        per = self.n * self.n * 4 * (self.d if self.backend == "eager" else 1) / 2**30
        return per * ((6 if self.backward else 3) if self.backend == "eager" else (6 if self.backward else 2))


@dataclass(frozen=True)
class LossCall(Prewarm):
    """forward + backward of a fused loss: adversarial_losses (gan) on n real and n fake logits, or
    gaussian_nll / kl_std_normal on (n / d, d) latents."""
    function: str
    backend: str  # "triton", "eager" (the reference), "compile" (of the reference)
    n: int
    d: int
    device: str

    def build(self):
        import implicitdiv as idv

        dev, gen = self.seeded(self.n)
        if self.function == "adversarial_losses":
            shapes, naive = [(self.n,)] * 2, _ratio_variants()[0]

            def fast(real, fake):
                d, g = idv.adversarial_losses(real, fake, kind="gan", backend="triton")
                return d + g
        else:
            shapes = [(self.n // self.d, self.d)] * (3 if self.function == "gaussian_nll" else 2)
            naive = _gaussian_variants(self.function)[0]

            def fast(*xs):
                return getattr(idv, self.function)(*xs, backend="triton")
        fn = {"triton": fast, "eager": naive}.get(self.backend) or compiled((self.function,), lambda: naive, False)
        ins = [torch.randn(s, device=dev, generator=gen).requires_grad_() for s in shapes]
        return lambda: _step(fn, ins)

    def prewarm(self) -> "LossCall":
        return replace(self, n=min(self.n, 2**14)) if self.backend == "triton" else self

    def gib(self) -> float:
        return 0.0 if self.backend == "triton" else 12 * self.n * 4 / 2**30  # inputs, gradients, intermediates


@dataclass(frozen=True)
class TestCall(Prewarm):
    """mmd_test (median bandwidth, `permutations` relabelings) by Triton, or its naive matrix form:
    K of the pooled sample in the matmul form, then diag(W^T K W) as ((K @ W) * W).sum(0); or only
    the drawing of the permutation weights both of them do ("weights")."""
    backend: str  # "triton", "eager" or "weights"
    n: int
    d: int
    permutations: int
    precision: str
    device: str

    def build(self):
        import implicitdiv as idv
        from implicitdiv.statistics import p_value, permutation_weights

        dev, gen = self.seeded(self.n)
        x = torch.randn(self.n, self.d, device=dev, generator=gen)
        y = torch.randn(self.n, self.d, device=dev, generator=gen) + 0.1
        if self.backend == "triton":
            return lambda: idv.mmd_test(x, y, permutations=self.permutations, seed=0, backend="triton",
                                        precision=self.precision)
        if self.backend == "weights":
            return lambda: permutation_weights(self.n, self.n, self.permutations, 0, x.dtype, x.device)
        bw = float(idv.median_bandwidth(x, y))

        def naive():
            z = torch.cat([x, y])
            w = permutation_weights(self.n, self.n, self.permutations, 0, z.dtype, z.device)
            with tf32_matmul(self.precision == "tf32"):
                sq = (z * z).sum(1)
                k = torch.exp(-(sq[:, None] + sq[None, :] - 2.0 * z @ z.T) / (2.0 * bw * bw))
                return p_value(((k @ w) * w).sum(0))
        return naive

    def prewarm(self) -> "TestCall":
        return replace(self, n=min(self.n, 256))

    def gib(self) -> float:
        return 0.0 if self.backend == "triton" else 2 * (2 * self.n) ** 2 * 4 / 2**30


# ---- rows ---------------------------------------------------------------------------------------

class Predictor:
    """Predicted seconds of one call: the model until the backend has run, then its time at the
    previous size of the same (backend, shape class) scaled by the work ratio."""

    def __init__(self):
        self.seen: dict = {}

    def predict(self, key, work: float, model_s: float) -> float:
        if key in self.seen:
            work0, sec0 = self.seen[key]
            return sec0 * work / work0
        return model_s

    def record(self, key, work: float, sec: float):
        self.seen[key] = (work, sec)


def mmd_floor_s(ctx, n, d, nb, backward, dtype, precision) -> float:
    """The engine's pair work (benchmarks/bench_pairwise.engine_work: each unordered pair once) at the
    measured matmul rate of the precision plus one exp per pair and bandwidth."""
    work = engine_work(n, d, nb, backward)
    return floor_seconds(work, {"gemm_flops": gemm_rate(ctx, dtype, precision), "exps": rates(ctx)["exp_per_s"]})


def naive_mmd_s(ctx, n, d, nb, backward) -> float:
    """The naive matmul form: three N x N matrices, each written and read (4 + 3 nb) times (distances,
    exps, sums), three times as often with the backward, plus its three matmuls."""
    r, passes = rates(ctx), (4 + 3 * nb) * (3 if backward else 1)
    return 3 * n * n * 4 * passes / r["copy_bytes_per_s"] + 6 * n * n * d * (3 if backward else 1) / r["gemm_fp32"]


def model_s(ctx, call: MmdCall) -> float:
    nb, dtype = len(call.bandwidths), getattr(torch, call.dtype)
    if call.backend == "triton":
        return GAP * mmd_floor_s(ctx, call.n, call.d, nb, call.backward, dtype, call.precision)
    return naive_mmd_s(ctx, call.n, call.d, nb, call.backward) * (0.5 if call.backend == "compile" else 1.0)


def time_calls(ctx, built: dict) -> tuple[dict, list[str]]:
    """time_interleaved over the row's calls; if that fails (out of memory, a compile error), each
    call alone, so one failing backend costs its own cell and not the row."""
    try:
        return time_interleaved(built, ctx, target_s=TARGET_S), []
    except Exception:
        pass
    timings, notes = {}, []
    for name, fn in built.items():
        try:
            timings.update(time_interleaved({name: fn}, ctx, target_s=TARGET_S))
        except Exception as exc:  # recorded in the row; the campaign goes on
            notes.append(f"{name}: {type(exc).__name__}: {str(exc).splitlines()[0][:100] if str(exc) else ''}")
            if ctx.device.type == "cuda":
                torch.cuda.empty_cache()
    return timings, notes


def row_cost(preds: list[float], overhead: float = 0.0) -> float:
    """Predicted seconds of a row: each call warmed up once and repeated as time_interleaved will,
    plus a one-off overhead (compilation)."""
    if not preds:
        return overhead
    reps = min(20, max(3, math.ceil(TARGET_S / max(max(preds), 1e-6))))
    return sum(preds) * (1 + reps) + overhead


def peak_mib(t) -> float | None:
    return None if t.peak_bytes is None else t.peak_bytes / 2**20


def pool_failure(warmed: dict, call) -> str:
    """Why this call must not run in the timed process ("" when it may): it crashed its worker, or
    left the worker's CUDA context broken, when the pool ran it ahead; here that would end every
    later measurement. Other failures (out of memory, a compile error) are left to the row, which
    reports them."""
    result = warmed.get(call, {"status": "pass"})
    if result.get("status") == "crashed" or "CUDA error" in result.get("error", ""):
        return f"failed in the pool: {result.get('error', result['status'])[:100]}"
    return ""


def time_mmd_row(ctx, calls: list[MmdCall], predictor: Predictor, compiles: set, warmed: dict) -> dict:
    """One row: every backend's median time and peak memory, the floor, the ratios; backends that
    would not fit, take too long or overrun the budget are named in the note."""
    c0 = calls[0]
    nb, dtype = len(c0.bandwidths), getattr(torch, c0.dtype)
    row = {"N": c0.n, "d": c0.d, "bw": nb, "pass": "fwd+bwd" if c0.backward else "fwd", "mode": f"{c0.dtype}/{c0.precision}"}
    notes, keep, preds, overhead = [], [], [], 0.0
    work = float(c0.n) ** 2
    for c in calls:
        gib = c.gib()
        key = (c.backend, c.d, nb, c.backward, c.dtype, c.precision)
        pred = predictor.predict(key, work, model_s(ctx, c))
        if pool_failure(warmed, c):
            notes.append(f"{c.backend}: {pool_failure(warmed, c)}")
        elif gib > max_gib(ctx):
            notes.append(f"{c.backend}: needs ~{gib:.0f} GiB")
        elif pred > MAX_CALL_S:
            notes.append(f"{c.backend}: ~{pred:.0f} s a call predicted")
        else:
            keep.append(c)
            first_compile = c.backend == "compile" and (c.bandwidths, c.precision, c.dynamic, c.backward) not in compiles
            preds.append(pred)
            overhead += COMPILE_WARM_S if first_compile else 0.0
    cost = row_cost(preds, overhead)
    if cost > ctx.left():
        row["note"] = f"skipped: ~{cost:.0f} s predicted, {max(ctx.left(), 0):.0f} s left"
        return row
    built = {c.backend: c.build() for c in keep}
    compiles |= {(c.bandwidths, c.precision, c.dynamic, c.backward) for c in keep if c.backend == "compile"}
    timings, failed = time_calls(ctx, built) if built else ({}, [])
    notes += failed
    floor = mmd_floor_s(ctx, c0.n, c0.d, nb, c0.backward, dtype, c0.precision)
    for c in keep:
        if c.backend not in timings:
            continue
        t = timings[c.backend]
        predictor.record((c.backend, c.d, nb, c.backward, c.dtype, c.precision), work, t.median_s)
        row[f"{c.backend} ms"] = 1e3 * t.median_s
        row[f"{c.backend} MiB"] = peak_mib(t)
    row["floor ms"] = 1e3 * floor
    if "triton" in timings:
        tri = timings["triton"].median_s
        for b in timings:
            if b != "triton":
                row[f"x {b}"] = timings[b].median_s / tri
        row["x floor"] = tri / floor
        row["reps"] = timings["triton"].reps
    row["note"] = "; ".join(notes)
    return row


def _mmd_calls(ctx, n, d, bw, dtype, precision, backward, backends, dynamic=False) -> list[MmdCall]:
    return [MmdCall(b, n, d, bw, dtype, precision, backward, ctx.device.type, dynamic=dynamic) for b in backends]


def prewarm(ctx, calls) -> dict:
    """Compile the calls' kernels ahead in the pool (deduplicated, those that fit in memory), each
    call run once at its small size in a worker; returns {call: the worker's result} for the calls
    it ran, so a call that failed there (a tile that does not compile, or crashes the context) need
    not run in the timed process."""
    chosen = [c for c in calls if c.backend in ("triton", "compile") and c.prewarm().gib() <= PREWARM_GIB]
    tasks = list(dict.fromkeys(c.prewarm() for c in chosen))
    results = dict(zip(tasks, ctx.pool().run(tasks)))
    return {c: results[c.prewarm()] for c in chosen}


# ---- sections -----------------------------------------------------------------------------------

TARGET_MODES = (("float32", "ieee"), ("float32", "tf32"), ("bfloat16", "ieee"))


def _target_calls(ctx):
    n, d = sizes(ctx)["target"]
    backends = ["triton", "eager", "compile"] + available_peers()
    return [_mmd_calls(ctx, n, d, (1.0,), dt, pr, bwd, backends) for dt, pr in TARGET_MODES
            for bwd in sizes(ctx)["target_passes"]]


def target_errors(ctx, n, d) -> list[dict]:
    """Each mode's mmd2 value and x-gradient at the target against the float64 naive form on the same
    (rounded) inputs: value error over the scale 4 (the terms' size for one rbf bandwidth), gradient
    error normwise."""
    rows = []
    naive = _naive_mmd2((1.0,))
    for dtype, precision in TARGET_MODES:
        x, y = MmdCall("triton", n, d, (1.0,), dtype, precision, True, ctx.device.type).inputs()
        x64, y64 = (t.detach().double().requires_grad_() for t in (x, y))
        ref = naive(x64, y64)
        (g_ref,) = torch.autograd.grad(ref, (x64,))
        import implicitdiv as idv

        out = idv.mmd2(x, y, bandwidth=1.0, backend="triton", precision=precision)
        (g,) = torch.autograd.grad(out, (x,))
        value, truth = out.item(), ref.item()
        rows.append({"mode": f"{dtype}/{precision}", "mmd2": value, "float64": truth,
                     "value err / 4": abs(value - truth) / 4.0,
                     "grad rel err": float((g.double() - g_ref).norm() / g_ref.norm())})
        del x64, y64, ref, g_ref
    return rows


def _targets_estimate(ctx) -> float:
    rows = [row_cost([model_s(ctx, c) for c in calls], COMPILE_WARM_S) for calls in _target_calls(ctx)]
    return PREWARM_S + COMPILE_GRAPH_S + sum(rows) + 5.0


def _targets_run(ctx) -> SectionResult:
    groups = _target_calls(ctx)
    warmed = prewarm(ctx, [c for calls in groups for c in calls])
    predictor, compiles = Predictor(), set()
    rows = [time_mmd_row(ctx, calls, predictor, compiles, warmed) for calls in groups]
    n, d = sizes(ctx)["target"]
    errors = target_errors(ctx, n, d)
    summary = []
    for r in rows:
        if "triton ms" not in r:
            summary.append({"what": f"mmd2 {r['mode']} {r['pass']}", "result": r.get("note", "")})
            continue
        verdict = []
        if "x eager" in r:
            verdict.append(f"{r['x eager']:.1f}x eager{' (>= 10x)' if r['x eager'] >= 10 else ' (< 10x)'}")
        if "x compile" in r:
            verdict.append(f"{r['x compile']:.1f}x compile{' (>= 3x)' if r['x compile'] >= 3 else ' (< 3x)'}")
        verdict.append(f"{r['x floor']:.2f}x floor{' (<= 2x)' if r['x floor'] <= 2 else ' (> 2x)'}")
        summary.append({"what": f"mmd2 N={n} d={d} {r['mode']} {r['pass']}: {r['triton ms']:.3g} ms",
                        "result": ", ".join(verdict), "note": f"peak {r['triton MiB']:.1f} MiB" if r.get("triton MiB")
                        is not None else ""})
    for e in errors:
        summary.append({"what": f"error at target {e['mode']}", "result": f"value {e['value err / 4']:.2g} of the "
                        f"scale, grad {e['grad rel err']:.2g} normwise"})
    input_mib = 2 * n * d * 4 / 2**20
    notes = [f"targets (N = M = {n}, d = {d}, float32 forward+backward): >= 10x eager naive, >= 3x torch.compile "
             f"(naive), within 2x of the floor; inputs are {input_mib:.1f} MiB (the peak memory of an O(N + M) "
             f"call is a small multiple of that)",
             "floor = engine pair work (bench_pairwise.engine_work) at the measured matmul rate of the mode + one "
             "exp per pair at the measured exp rate"]
    return SectionResult(rows=rows + errors, summary=summary, notes=notes)


def _grid_calls(ctx):
    sz = sizes(ctx)
    backends = ["triton", "eager", "compile"] + available_peers()
    groups = []
    for n in sz["grid_n"]:
        for d in sz["grid_d"]:
            for bw in sz["grid_bw"]:
                for backward in (False, True):
                    groups.append(_mmd_calls(ctx, n, d, bw, "float32", "ieee", backward, backends, dynamic=True))
    return groups


def _grid_estimate(ctx) -> float:
    """The whole grid as planned (rows predicted over MAX_CALL_S or out of memory left out); the
    section runs whatever fits in what is left, cheapest N first."""
    total = PREWARM_S + COMPILE_GRAPH_S + 4 * COMPILE_WARM_S
    for calls in _grid_calls(ctx):
        preds = [model_s(ctx, c) for c in calls if c.gib() <= max_gib(ctx)]
        total += row_cost([p for p in preds if p <= MAX_CALL_S])
    return total


def _grid_run(ctx) -> SectionResult:
    groups = _grid_calls(ctx)
    warmed = prewarm(ctx, [c for calls in groups for c in calls])
    predictor, compiles = Predictor(), set()
    rows = [time_mmd_row(ctx, calls, predictor, compiles, warmed) for calls in groups]
    ran = [r for r in rows if "triton ms" in r]
    summary = [{"what": f"{len(ran)} of {len(rows)} rows timed", "result": ""}]
    if ran:
        best = min(ran, key=lambda r: r["x floor"])
        worst = max(ran, key=lambda r: r["x floor"])
        summary[0]["result"] = (f"x floor {best['x floor']:.2f} (N={best['N']} d={best['d']} {best['pass']}) to "
                                f"{worst['x floor']:.2f} (N={worst['N']} d={worst['d']} {worst['pass']})")
        for b in ("eager", "compile", "pykeops", "geomloss"):
            xs = [r[f"x {b}"] for r in ran if f"x {b}" in r]
            if xs:
                summary.append({"what": f"triton vs {b}", "result": f"{min(xs):.1f}x to {max(xs):.1f}x faster "
                                f"({len(xs)} rows)"})
    return SectionResult(rows=rows, summary=summary, notes=[
        "float32 ieee, biased estimator; torch.compile with dynamic=True (one graph per bandwidth set and pass); "
        "rows cheapest first, skipped with a note when out of memory, over MAX_CALL_S or over the budget"])


def _time_simple(ctx, label: dict, calls: dict, floor_s: float, warmed: dict) -> dict:
    """A row of named calls (one of them "triton") with their medians, peaks, ratios and floor."""
    if ctx.left() <= 0:
        return {**label, "note": "skipped: the budget is spent"}
    refused = [f"{name}: {pool_failure(warmed, c)}" for name, c in calls.items() if pool_failure(warmed, c)]
    built = {name: c.build() for name, c in calls.items() if not pool_failure(warmed, c)}
    timings, failed = time_calls(ctx, built)
    failed = refused + failed
    row = dict(label)
    for name, t in timings.items():
        row[f"{name} ms"] = 1e3 * t.median_s
        row[f"{name} MiB"] = peak_mib(t)
    if failed:
        row["failed"] = "; ".join(failed)
    if "triton" not in timings:
        return row
    tri = timings["triton"].median_s
    for name, t in timings.items():
        if name != "triton":
            row[f"x {name}"] = t.median_s / tri
    row["floor ms"] = 1e3 * floor_s
    row["x floor"] = tri / floor_s
    row["reps"] = timings["triton"].reps
    return row


def speedups(row: dict) -> str:
    """'12.3 ms, 4.1x eager, 1.2x compile, 1.9x floor' from a timed row (what it has of it)."""
    if "triton ms" not in row:
        return row.get("note") or "not timed"
    parts = [f"{row['triton ms']:.3g} ms"] + [f"{row[k]:.2f}x {k[2:]}" for k in row if k.startswith("x ")]
    return ", ".join(parts)


def _losses_calls(ctx):
    sz = sizes(ctx)
    d = sz["latent_d"]
    for function in ("adversarial_losses", "gaussian_nll", "kl_std_normal"):
        for n in sz["losses"]:
            yield function, n, {b: LossCall(function, b, n, d, ctx.device.type) for b in ("triton", "eager", "compile")}


def _loss_bytes(function, n) -> int:
    """Read every input once, write every input's gradient once (float32)."""
    inputs = {"adversarial_losses": 2, "gaussian_nll": 3, "kl_std_normal": 2}[function]
    return 2 * inputs * n * 4


def _losses_estimate(ctx) -> float:
    r = rates(ctx)
    total = PREWARM_S + COMPILE_GRAPH_S
    for function, n, _ in _losses_calls(ctx):
        floor = _loss_bytes(function, n) / r["copy_bytes_per_s"]
        total += row_cost([GAP * floor, 8 * GAP * floor, 3 * GAP * floor], COMPILE_WARM_S)
    return total


def _losses_run(ctx) -> SectionResult:
    groups = list(_losses_calls(ctx))
    warmed = prewarm(ctx, [c for _, _, calls in groups for c in calls.values()])
    rows = [_time_simple(ctx, {"function": function, "elements": n}, calls,
                         _loss_bytes(function, n) / rates(ctx)["copy_bytes_per_s"], warmed) for function, n, calls in groups]
    summary = [{"what": f"{r['function']} {r['elements'] / 2**20:.3g}M", "result": speedups(r), "note": r.get("failed", "")}
               for r in rows]
    return SectionResult(rows=rows, summary=summary, notes=[
        "forward + backward (loss.backward() after the forward), float32; elements per input tensor (latents "
        f"are (elements / {sizes(ctx)['latent_d']}, {sizes(ctx)['latent_d']})); floor = bytes read + gradient "
        "bytes written at the measured copy bandwidth"])


def mixture_floor_s(ctx, n, d, backward) -> float:
    """Scores as two d-long dot products per pair (4d flops) and one exp; the backward adds the z pass
    and the component pass (16d flops, 2 exps per pair)."""
    r = rates(ctx)
    flops, exps = (20 * d, 3) if backward else (4 * d, 1)
    return n * n * (flops / r["gemm_fp32"] + exps / r["exp_per_s"])


def _mixture_rows(ctx):
    sz = sizes(ctx)
    for n, d in (sz["mixture_naive"], sz["mixture"]):
        for backward in (False, True):
            calls, notes = {}, []
            for name in ("triton", "eager", "compile"):
                call = MixtureCall(name, n, d, backward, ctx.device.type)
                if call.gib() <= max_gib(ctx):
                    calls[name] = call
                else:
                    notes.append(f"{name}: needs ~{call.gib():.0f} GiB")
            yield n, d, backward, calls, "; ".join(notes)


def _mixture_estimate(ctx) -> float:
    total = PREWARM_S + COMPILE_GRAPH_S
    for n, d, backward, calls, _ in _mixture_rows(ctx):
        floor = mixture_floor_s(ctx, n, d, backward)
        eager = n * n * d * 4 * 8 * (3 if backward else 1) / rates(ctx)["copy_bytes_per_s"]
        preds = [GAP * floor] + [eager * (0.3 if b == "compile" else 1.0) for b in calls if b != "triton"]
        total += row_cost(preds, COMPILE_WARM_S if "compile" in calls else 0.0)
    return total


def _mixture_run(ctx) -> SectionResult:
    groups = list(_mixture_rows(ctx))
    warmed = prewarm(ctx, [c for *_, calls, _ in groups for c in calls.values()])
    rows = []
    for n, d, backward, calls, note in groups:
        label = {"N = M": n, "d": d, "pass": "fwd+bwd" if backward else "fwd"}
        rows.append({**_time_simple(ctx, label, calls, mixture_floor_s(ctx, n, d, backward), warmed), "note": note})
    summary = [{"what": f"mixture N=M={r['N = M']} d={r['d']} {r['pass']}", "result": speedups(r),
                "note": "; ".join(x for x in (r.get("note"), r.get("failed")) if x)} for r in rows]
    return SectionResult(rows=rows, summary=summary, notes=[
        "gaussian_mixture_logpdf, float32; eager = the reference (explicit (N, M, d) differences), compile = "
        "torch.compile of it; forward+backward differentiates z, means and logvars"])


def test_floor_s(ctx, n, d, permutations, precision) -> float:
    """K of the pooled 2N sample once per unordered pair (2d flops, one exp) and K W with 1 + P columns."""
    r, pooled = rates(ctx), 2 * n
    pairs = pooled * pooled / 2
    flops = pairs * 2 * d + pooled * pooled * 2 * (permutations + 1)
    return flops / gemm_rate(ctx, torch.float32, precision) + pairs / r["exp_per_s"]


def _test_rows(ctx):
    n, d, perms = sizes(ctx)["test"]
    for precision in ("ieee", "tf32"):
        yield n, d, perms, precision, {b: TestCall(b, n, d, perms, precision, ctx.device.type)
                                       for b in ("triton", "eager", "weights")}


WEIGHTS_S_PER_ENTRY = 3e-8  # drawing the permutation weights on the host: rand + argsort per entry (assumed)


def _test_estimate(ctx) -> float:
    total = PREWARM_S
    for n, d, perms, precision, _ in _test_rows(ctx):
        floor, weights = test_floor_s(ctx, n, d, perms, precision), WEIGHTS_S_PER_ENTRY * 2 * n * perms
        total += row_cost([GAP * floor + weights, 2 * GAP * floor + weights, weights])
    return total


def _test_run(ctx) -> SectionResult:
    groups = list(_test_rows(ctx))
    warmed = prewarm(ctx, [c for *_, calls in groups for c in calls.values()])
    rows = [_time_simple(ctx, {"N = M": n, "d": d, "permutations": p, "precision": pr}, calls,
                         test_floor_s(ctx, n, d, p, pr), warmed) for n, d, p, pr, calls in groups]
    summary = [{"what": f"mmd_test N=M={r['N = M']} d={r['d']} P={r['permutations']} {r['precision']}",
                "result": speedups(r), "note": r.get("failed", "")} for r in rows]
    return SectionResult(rows=rows, summary=summary, notes=[
        "mmd_test with the median bandwidth; eager = the pooled kernel matrix in the matmul form and "
        "((K @ W) * W).sum(0) over the same permutation weights, at the same precision; both draw the "
        "weights (statistics.permutation_weights, on the CPU) inside the call: 'weights' times that alone, "
        "and 'x weights' is its share of the Triton call"])


register(Section("timing.targets", 40, _targets_estimate, _targets_run,
                 "mmd2 at the issue's target size: float32 ieee/tf32 and bfloat16, fwd and fwd+bwd, vs eager, "
                 "compile, peers; floor, peak memory, error vs float64"))
register(Section("timing.losses", 60, _losses_estimate, _losses_run,
                 "fused ratio losses and Gaussian terms at 4M and 64M elements vs eager and compile"))
register(Section("timing.mixture", 70, _mixture_estimate, _mixture_run,
                 "gaussian_mixture_logpdf at N = M = 65536 (and 16384, where the reference fits)"))
register(Section("timing.mmd_test", 80, _test_estimate, _test_run, "mmd_test with 1000 permutations"))
register(Section("timing.mmd2_grid", 90, _grid_estimate, _grid_run,
                 "mmd2 fwd and fwd+bwd over N in {4096..262144}, d in {2, 16, 64, 256}, 1 and 5 bandwidths",
                 partial_after_s=PREWARM_S + COMPILE_GRAPH_S))
