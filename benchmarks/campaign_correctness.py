"""Correctness on the device: every Triton-backed public function on device tensors against the
float64 reference (the same public function with backend="reference", on the same device), values
and the gradients of <outputs, u> for a random upstream u, in float32 "ieee" and "tf32", bfloat16 and
float16 where the op takes them, and float64; sizes on either side of the device's own tiles (read
from blocks(), so they follow the tiles the launchers pick), N = 1 included.

Pass/fail is the test harness's (implicitdiv.testing: assert_close with the dtype's tolerance,
errors measured against the size of the terms for sums that cancel); tf32 is held to the bfloat16
tolerance. Each comparison also records the normwise relative error |fast - ref| / |ref| and the
worst error over its bound (<= 1 passes). Outputs of the fast call are poisoned (torch.empty fills
with NaN while it runs), so an element a kernel never writes fails the NaN check.

Cases run in worker processes (benchmarks/campaign_core.WorkerPool) so their many kernel variants
compile in parallel; a case that crashes its worker is reported and the rest go on.
"""
from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass

import numpy as np
import torch

from implicitdiv import FDIVERGENCES
from implicitdiv._codes import KERNELS as CODED_KERNELS
from implicitdiv.reference.ratio import KINDS as RATIO_KINDS

from .campaign_core import Section, SectionResult, register
from .campaign_internals import TOLERANCES, assert_close, loss_blocks, ratio_loss_scales, tile_sizes, triton_functions

KERNELS = tuple(k for k in CODED_KERNELS if k != "polynomial")  # polynomial takes (gamma, coef0, degree)
MODES = (("float32", "ieee"), ("float32", "tf32"), ("bfloat16", "ieee"), ("float16", "ieee"), ("float64", "ieee"))
TOLERANCE_OF = {"tf32": torch.bfloat16}  # tf32 rounds the dot products' operands to 10 bits
HALF = ("bfloat16", "float16")
GAUSSIAN = {"gaussian_nll": ("z", "mean", "logvar"), "kl_std_normal": ("mean", "logvar"),
            "kl_gaussians": ("mean_q", "logvar_q", "mean_p", "logvar_p"), "reparameterize": ("mean", "logvar", "eps")}
MAX_SUMMARY_FAILURES = 8  # the rest are in the report: the summary must fit the output the device tool returns
COMPILE_S = 2.0  # assumed seconds to compile one kernel variant on the device's host (calibrated at run time)


# ---- one case ----------------------------------------------------------------------------------

def _draw(name: str, shape, rng, extreme: bool, offset: float) -> np.ndarray:
    """Input values by role: sample points spread 1/sqrt(d), weights, logits (+-1e4 and +-80 mixed
    in when extreme), positive ratios, latent means and log-variances."""
    d = shape[-1] if shape else 1
    if name in ("x", "y"):
        return rng.standard_normal(shape) / math.sqrt(d) + (offset if name == "y" else 0.0)
    if name in ("real_features", "fake_features"):  # nonnegative, as Inception pool features
        return rng.uniform(0.0, 2.0, shape) + (0.05 if name == "fake_features" else 0.0)
    if name == "logvars":  # mixture components
        return rng.uniform(-2.0, 1.0, shape)
    if name in ("real", "fake", "logvar", "logvar_q", "logvar_p"):
        logits = name in ("real", "fake")
        v = rng.standard_normal(shape) * 3.0 if logits else rng.uniform(-3.0, 2.0, shape)
        if extreme and v.size > 1:
            k = max(1, v.size // 4)
            v.reshape(-1)[:k] = rng.choice([-1e4, 1e4, -80.0, 80.0] if logits else [-80.0, 80.0], k)
        return v
    if name in ("r_p", "r_q"):
        return np.abs(rng.standard_normal(shape))
    return rng.standard_normal(shape)  # weights, z, means, eps


@contextlib.contextmanager
def poisoned_outputs():
    """torch.empty returns NaN-filled memory inside the block (torch's deterministic mode)."""
    det, fill = torch.are_deterministic_algorithms_enabled(), torch.utils.deterministic.fill_uninitialized_memory
    warn = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.utils.deterministic.fill_uninitialized_memory = True
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(det, warn_only=warn)
        torch.utils.deterministic.fill_uninitialized_memory = fill


def _flat(out) -> list:
    return list(out) if isinstance(out, (tuple, list)) else [out]


def kernel_magnitude(x, y, a, b, kernel, bandwidth) -> float:
    """sum_ij |a_i| |k(x_i, y_j)| |b_j|: the size of the terms of a kernel sum, which its rounding
    error follows (rbf, laplacian, imq are positive, energy negative; |x.y| <= |x|.|y|)."""
    import implicitdiv as idv

    if kernel in ("linear", "polynomial"):  # |x|.|y| >= |x.y| (the polynomial's coef0 is 1 here)
        x, y = x.abs(), y.abs()
    s = idv.kernel_sum(x, y, kernel=kernel, bandwidth=bandwidth, x_weights=None if a is None else a.abs(),
                       y_weights=None if b is None else b.abs(), backend="reference")
    return float(s.detach().abs().max())


def output_scales(function: str, ins: dict, kwargs: dict) -> dict:
    """Error scales of the outputs that are sums with cancellation, keyed "out0", "out1"."""
    if function == "kernel_sum":
        return {"out0": kernel_magnitude(ins["x"], ins["y"], ins.get("x_weights"), ins.get("y_weights"),
                                         kwargs["kernel"], kwargs["bandwidth"])}
    if function in ("mmd2", "mmd_test"):  # all three sums at once: the pooled sample, weights 1/n and 1/m
        x, y = ins["x"], ins["y"]
        z = torch.cat([x, y], dim=-2)
        w = torch.cat([torch.full(x.shape[:-1], 1.0 / x.shape[-2]), torch.full(y.shape[:-1], 1.0 / y.shape[-2])],
                      dim=-1).to(z)
        return {"out0": kernel_magnitude(z, z, w, w, kwargs.get("kernel", "rbf"), kwargs["bandwidth"])}
    if function == "kid":  # each subset's value is a difference of means of kernel values up to this
        x, y = ins["real_features"].abs(), ins["fake_features"].abs()
        k = float(((x.norm(dim=1).max() * y.norm(dim=1).max()) / x.shape[1] + 1.0) ** 3)
        return {"out0": k, "out1": k}
    if function in ("discriminator_loss", "generator_loss", "adversarial_losses", "fdiv_estimate",
                    "ratio_matching_loss"):
        return ratio_loss_scales(function, {n: v.detach().cpu() for n, v in ins.items()}, kwargs)
    return {}


def representable(tensors, dtype: torch.dtype) -> bool:
    """Whether every nonzero peak lies in the dtype's normal range with room to spare (float16
    flushes a 1e-16 gradient to 0: an error no tolerance describes)."""
    if dtype not in (torch.float16, torch.bfloat16):
        return True
    info = torch.finfo(dtype)
    for t in tensors:
        t = t.detach().abs()
        t = t[torch.isfinite(t)]
        peak = float(t.max()) if t.numel() else 0.0
        if peak != 0.0 and not (2**10 * info.tiny < peak < info.max / 4):
            return False
    return True


def compare(fast, ref, tol_dtype, what, scale) -> dict:
    """The harness's verdict plus the normwise relative error and the worst error over its bound."""
    try:
        assert_close(fast.cpu(), ref.cpu(), tol_dtype, what, scale)
        failure = ""
    except AssertionError as exc:
        failure = str(exc)
    a, e = fast.detach().double().cpu().reshape(-1), ref.detach().double().cpu().reshape(-1)
    ok = torch.isfinite(e) & torch.isfinite(a)
    a, e = a[ok], e[ok]
    rel = float((a - e).norm() / e.norm()) if e.numel() and float(e.norm()) > 0 else float((a - e).norm())
    tol = TOLERANCES[tol_dtype]
    s = max(float(e.abs().max()) if e.numel() else 0.0, scale or 0.0, 1e-30)
    over = float(((a - e).abs() / (tol.atol * s + tol.rtol * e.abs())).max()) if e.numel() else 0.0
    return {"what": what, "rel": rel, "err/bound": over, "failure": failure}


@dataclass(frozen=True)
class Case:
    """One call of a public function: inputs by name and shape, drawn from `seed`."""
    function: str
    shapes: tuple  # ((name, shape), ...)
    kwargs: tuple  # ((key, value), ...)
    grad_names: tuple
    dtype: str
    precision: str | None  # for the functions that take precision=
    seed: int
    device: str
    extreme: bool = False
    offset: float = 0.3  # of y from x

    def label(self) -> str:
        shapes = " ".join(f"{n}{list(s)}" for n, s in self.shapes)
        kw = " ".join(f"{k}={v}" for k, v in self.kwargs)
        return f"{self.function} {kw} {shapes}"

    def mode(self) -> str:
        return self.dtype + ("/" + self.precision if self.precision else "")

    def run(self) -> dict:
        import implicitdiv as idv

        dev, dtype = torch.device(self.device), getattr(torch, self.dtype)
        rng = np.random.default_rng(self.seed)
        values = {n: torch.as_tensor(_draw(n, s, rng, self.extreme, self.offset), dtype=torch.float64)
                  .to(dtype).double() for n, s in self.shapes}  # rounded to the dtype: both sides see the same inputs
        kwargs = dict(self.kwargs)
        fn = getattr(idv, self.function)
        extra = {"precision": self.precision} if self.precision else {}
        ref_in = {n: v.to(dev).requires_grad_(n in self.grad_names) for n, v in values.items()}
        ref_out = _flat(fn(**ref_in, **kwargs, backend="reference"))
        diff = [i for i, r in enumerate(ref_out) if r.requires_grad]
        gen = torch.Generator().manual_seed(self.seed)
        ups = [(torch.randn(ref_out[i].shape, generator=gen, dtype=torch.float64) + 0.5).to(dev) for i in diff]
        names = [n for n in values if n in self.grad_names]
        ref_g = list(torch.autograd.grad([ref_out[i] for i in diff], [ref_in[n] for n in names], ups,
                                         allow_unused=True)) if diff and names else []
        if not representable(ref_out + [g for g in ref_g if g is not None], dtype):
            return {"status": "skipped", "error": f"the reference's values do not fit {self.dtype}"}
        with poisoned_outputs():
            fast_in = {n: v.to(dev, dtype).requires_grad_(n in self.grad_names) for n, v in values.items()}
            fast_out = _flat(fn(**fast_in, **kwargs, **extra, backend="triton"))
            fast_g = list(torch.autograd.grad([fast_out[i] for i in diff], [fast_in[n] for n in names],
                                              [u.to(fast_out[i].dtype) for u, i in zip(ups, diff)],
                                              allow_unused=True)) if diff and names else []
        tol_dtype = TOLERANCE_OF.get(self.precision, dtype)
        scales = output_scales(self.function, ref_in, kwargs)
        checks = []
        for i, (f, r) in enumerate(zip(fast_out, ref_out)):
            if f.dtype != dtype:
                checks.append({"what": f"out{i}", "rel": math.nan, "err/bound": math.inf,
                               "failure": f"out{i} has dtype {f.dtype}, expected {dtype}"})
            elif self.function == "mmd_test" and i == 1:  # the p-value: the same count of null >= observed
                cols = dict(self.kwargs)["permutations"] + 1
                same = round(float(f) * cols) == round(float(r) * cols)
                checks.append({"what": "p-value count", "rel": abs(float(f) - float(r)), "err/bound": 0.0 if same
                               else math.inf, "failure": "" if same else f"p = {float(f)} != reference {float(r)}"})
            else:
                checks.append(compare(f, r, tol_dtype, f"out{i}", scales.get(f"out{i}")))
        finite = [float(g.detach().abs()[torch.isfinite(g)].max()) for g in ref_g if g is not None and g.numel()]
        grad_scale = max(finite + [0.0])
        for n, f, r in zip(names, fast_g, ref_g):
            f = torch.zeros_like(fast_in[n]) if f is None else f
            r = torch.zeros_like(ref_in[n]) if r is None else r
            checks.append(compare(f, r, tol_dtype, f"grad:{n}", grad_scale))
        failures = [c["failure"] for c in checks if c["failure"]]
        outs = [c for c in checks if not c["what"].startswith("grad")]
        grads = [c for c in checks if c["what"].startswith("grad")]
        return {"status": "fail" if failures else "pass",
                "rel out": max(c["rel"] for c in outs),
                "rel grad": max((c["rel"] for c in grads), default=None),
                "err/bound": max(c["err/bound"] for c in checks),
                "error": failures[0][:600] if failures else ""}


# ---- the case lists ----------------------------------------------------------------------------

def _cycle(values, i):
    return values[i % len(values)]


def pairwise_cases(device: torch.device, tiny: bool) -> list[Case]:
    """kernel_sum and mmd2 for every kernel x mode, the mixture log-density in every dtype, mmd_test in
    float32 ieee/tf32 and bfloat16. Sizes cycle through values on either side of the tiles; `tiny`
    (the dry run) caps them at one interpreter tile plus one."""
    t = tile_sizes(device)
    small, big, feat, of, bp = t["rowcol"][0], t["rowcol"][-1], t["feat"][0], t["out_feat"][-1], max(t["weights"])
    ns = [1, small + 1, big - 1, big, 2 * big + 1, small]
    ms = [big + 1, 1, small - 1, 2 * big + 1, big]
    ds = [1, feat - 1, feat + 1, of, of + 1, 2 * of + 3, 3]
    ps = [1, 2, 3, bp + 1]
    if tiny:
        ns, ms, ds, ps = ([min(v, 17) for v in vs] for vs in (ns, ms, ds, ps))
    batches = [(), (2,), ()]
    bws = [1.0, (0.6, 2.0), (0.25, 0.5, 1.0, 2.0, 4.0)]
    dev = device.type
    cases = []
    for k, kernel in enumerate(KERNELS):
        for j, (dtype, precision) in enumerate(MODES):
            i = len(MODES) * k + j
            n, m, d, p, lead = _cycle(ns, i), _cycle(ms, i + 2), _cycle(ds, i), _cycle(ps, i), _cycle(batches, i)
            shapes = [("x", lead + (n, d)), ("y", lead + (m, d))]
            if i % 4:  # every fourth call takes the default weights
                shapes += [("x_weights", lead + (n,) + ((p,) if p > 1 else ())),
                           ("y_weights", lead + (m,) + ((p,) if p > 1 else ()))]
            kw = (("kernel", kernel), ("bandwidth", _cycle(bws, i)))
            cases.append(Case("kernel_sum", tuple(shapes), kw, tuple(n for n, _ in shapes), dtype, precision,
                              1000 + i, dev))
            est = ("biased", "unbiased")[i % 2]
            n2, m2 = (max(n, 2), max(m, 2)) if est == "unbiased" else (n, m)
            cases.append(Case("mmd2", (("x", lead + (n2, d)), ("y", lead + (m2, d))),
                              kw + (("estimator", est),), ("x", "y"), dtype, precision, 2000 + i, dev))
    for j, dtype in enumerate(["float32", "float64", "bfloat16", "float16"] * 2):
        n, m, d = _cycle(ns, j + 1), _cycle(ms, j), _cycle(ds, j + 3)
        cases.append(Case("gaussian_mixture_logpdf", (("z", (n, d)), ("means", (m, d)), ("logvars", (m, d))), (),
                          ("z", "means", "logvars"), dtype, None, 3000 + j, dev))
    if not tiny:  # many programs along each grid axis, thousands of rows, weight columns past one tile
        five = (0.25, 0.5, 1.0, 2.0, 4.0)
        cases += [Case("mmd2", (("x", (4099, 65)), ("y", (2053, 65))), (("kernel", "rbf"), ("bandwidth", five)),
                       ("x", "y"), "float32", "ieee", 2100, dev),
                  Case("mmd2", (("x", (4099, 65)), ("y", (2053, 65))), (("kernel", "laplacian"), ("bandwidth", 1.0),
                       ("estimator", "unbiased")), ("x", "y"), "float32", "tf32", 2101, dev),
                  Case("kernel_sum", (("x", (2049, 17)), ("y", (1027, 17)), ("x_weights", (2049, 65)),
                                      ("y_weights", (1027, 65))), (("kernel", "imq"), ("bandwidth", 1.0)),
                       ("x", "y", "x_weights", "y_weights"), "bfloat16", "ieee", 1100, dev)]
    perms = min(2 * bp + 3, 40) if tiny else 2 * bp + 3  # weight columns across several tiles
    for j, (dtype, precision) in enumerate((("float32", "ieee"), ("float32", "tf32"), ("bfloat16", "ieee"),
                                            ("float16", "ieee"))):
        n, m, d = (17, 15, 5) if tiny else (big + 1, big - 1, feat + 1)
        cases.append(Case("mmd_test", (("x", (n, d)), ("y", (m, d))),
                          (("bandwidth", 1.0), ("permutations", perms), ("seed", 7)), (), dtype, precision,
                          4000 + j, dev, offset=0.5))  # a clear shift: no null statistic ties the observed one
    n, m, d, size = (17, 15, 5, 8) if tiny else (big + 1, big - 1, 2 * of + 3, big // 2)
    for j, schedule in enumerate(("columns", "subsets")):
        cases.append(Case("kid", (("real_features", (n, d)), ("fake_features", (m, d))),
                          (("subsets", 5), ("subset_size", size), ("seed", 3), ("schedule", schedule)), (), "float32",
                          "ieee", 4100 + j, dev))
    return cases


def loss_cases(device: torch.device, tiny: bool) -> list[Case]:
    """The fused ratio losses (every kind of the discriminator loss in float32 and float64, the
    others over a spread of kinds) and the Gaussian latent terms (every reduction), at sizes on
    either side of the kernels' block and of the finalize block (the dry run stops below that)."""
    block, final = loss_blocks()
    sizes = [1, block - 1, block + 1, 3 * block, 2] + ([] if tiny else [block * final + 7])
    dev = device.type
    calls = []
    for j, kind in enumerate(RATIO_KINDS):
        calls.append(("discriminator_loss", {"kind": kind, "reduction": ("mean", "sum", "none")[j % 3]}, "float32"))
        calls.append(("discriminator_loss", {"kind": kind, "reduction": ("sum", "none", "mean")[j % 3]}, "float64"))
    for j, kind in enumerate(("gan", "hinge", "kl", "js")):
        calls.append(("generator_loss", {"kind": kind, "saturating": bool(j % 2), "reduction": "mean"}, "float32"))
    for kind, dtype in (("gan", "float32"), ("wgan", "float32"), ("lsgan", "float32"), ("js", "float64")):
        calls.append(("adversarial_losses", {"kind": kind, "saturating": False}, dtype))
    calls += [("fdiv_estimate", {"divergence": dv}, "float32") for dv in FDIVERGENCES]
    calls += [("ratio_matching_loss", {}, "float32"), ("ratio_matching_loss", {}, "float64")]
    cases = []
    for i, (function, kw, dtype) in enumerate(calls):
        n, m = _cycle(sizes, i), _cycle(sizes, i + 2)
        names = {"generator_loss": ("fake",), "ratio_matching_loss": ("r_p", "r_q")}.get(function, ("real", "fake"))
        shapes = tuple((name, (n if k == 0 else m,)) for k, name in enumerate(names))
        cases.append(Case(function, shapes, tuple(kw.items()), names, dtype, None, 5000 + i, dev, extreme=bool(i % 2)))
    # rows x d: the 128-wide feature block crossed; with mean/sum, more row blocks than the finalize block adds
    shapes = [(1, 1), (5, 127), (3, 129), (2, 17, 5), (4097, 1), (33, 4) if tiny else (70000, 64)]
    for i, (function, names) in enumerate((f, n) for f, n in GAUSSIAN.items() for _ in range(3)):
        kw = () if function == "reparameterize" else (("reduction", ("mean", "sum", "none")[i % 3]),)
        shape = _cycle(shapes, 5 * i)  # the largest shape falls on a "sum" reduction, twice
        cases.append(Case(function, tuple((n, shape) for n in names), kw, tuple(n for n in names if n != "eps"),
                          ("float32", "float64")[i % 2], None, 6000 + i, dev, extreme=bool(i % 2)))
    return cases


def uncovered(device: torch.device, tiny: bool) -> list[str]:
    """The Triton-backed public functions that no correctness case calls."""
    called = {c.function for build in (pairwise_cases, loss_cases) for c in build(device, tiny)}
    return sorted(set(triton_functions()) - called)


def thin(cases: list[Case], per_function: int) -> list[Case]:
    """At most `per_function` cases of each function, evenly spread over its list (the dry run)."""
    out = []
    for function in dict.fromkeys(c.function for c in cases):
        mine = [c for c in cases if c.function == function]
        step = max(1, math.ceil(len(mine) / per_function))
        out += mine[::step]
    return out


# ---- the sections ------------------------------------------------------------------------------

def _cases(ctx, build) -> list[Case]:
    cases = build(ctx.device, ctx.dry_run)
    return thin(cases, 1) if ctx.dry_run else cases


def _variants(cases) -> int:
    """A rough count of the kernel variants the cases compile: one per function, mode and kernel."""
    return len({(c.function, c.mode(), dict(c.kwargs).get("kernel"), dict(c.kwargs).get("kind")) for c in cases})


def estimate(ctx, build, per_variant_kernels: int) -> float:
    cases = _cases(ctx, build)
    if ctx.dry_run:
        return 1.0 * len(cases) + 5.0
    workers = max(1, ctx.config.workers)
    return 15.0 + (_variants(cases) * per_variant_kernels * COMPILE_S + 0.2 * len(cases)) / workers


def run(ctx, build) -> SectionResult:
    cases = _cases(ctx, build)
    results = ctx.pool().run(cases)
    rows = [{"case": c.label(), "mode": c.mode(), **r} for c, r in zip(cases, results)]
    counts = {s: sum(r["status"] == s for r in rows) for s in ("pass", "fail", "error", "crashed", "skipped")}
    summary = [{"what": f"{len(rows)} cases", "result": ", ".join(f"{v} {k}" for k, v in counts.items() if v)}]
    for mode in dict.fromkeys(r["mode"] for r in rows):
        mine = [r for r in rows if r["mode"] == mode and r["status"] in ("pass", "fail")]
        if mine:
            worst = max(mine, key=lambda r: r["err/bound"])
            summary.append({"what": f"worst {mode}", "result": f"err/bound {worst['err/bound']:.3g}, rel out "
                            f"{max(r['rel out'] for r in mine):.2g}, rel grad "
                            f"{max((r['rel grad'] or 0.0) for r in mine):.2g}", "note": worst["case"][:80]})
    bad = [r for r in rows if r["status"] not in ("pass", "skipped")]
    for r in bad[:MAX_SUMMARY_FAILURES]:
        summary.append({"what": f"{r['status']}: {r['mode']}", "result": r["case"][:90],
                        "note": (r.get("error") or "")[:160]})
    if len(bad) > MAX_SUMMARY_FAILURES:
        summary.append({"what": f"... {len(bad) - MAX_SUMMARY_FAILURES} more", "result": "in the report"})
    missing = uncovered(ctx.device, ctx.dry_run) if build is loss_cases else []  # said once, by the last section
    if missing:
        summary.append({"what": "not covered", "result": ", ".join(missing),
                        "note": "Triton-backed functions that no correctness case calls"})
    notes = [f"tolerances: implicitdiv.testing TOLERANCES; tf32 held to the bfloat16 one; err/bound <= 1 passes",
             "rel = |fast - ref| / |ref| over the finite entries (outputs; gradients of <out, u>)"]
    return SectionResult(rows=rows, summary=summary, notes=notes)


register(Section("correctness.pairwise", 10, lambda ctx: estimate(ctx, pairwise_cases, 4),
                 lambda ctx: run(ctx, pairwise_cases),
                 "kernel_sum, mmd2, mmd_test, gaussian_mixture_logpdf on device tensors vs the float64 reference"))
register(Section("correctness.losses", 20, lambda ctx: estimate(ctx, loss_cases, 2), lambda ctx: run(ctx, loss_cases),
                 "the fused ratio losses and Gaussian latent terms on device tensors vs the float64 reference"))
