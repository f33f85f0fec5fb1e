"""The tile sweep of the pairwise Triton kernels: for each launch of blocks() ("rows", "grad",
"mixture", "mixture_grad"), its choice and the neighbours it would choose between (rows and
columns halved or doubled, 4 or 8 warps), timed through the public functions at 2-3 shapes, so the
defaults can be set from data. A candidate is timed only if its result matches the default's (a
tile that breaks the masks is reported, not timed); one that does not compile, or fails when the
pool runs it ahead at a small size, is reported too and never runs in the timed process.

"rows" candidates are timed on mmd2 forward (only that launch runs), "grad" on mmd2 forward +
backward with the default "rows", the mixture launches on gaussian_mixture_logpdf likewise.
"""
from __future__ import annotations

from dataclasses import replace

import torch

from .campaign_core import Section, SectionResult, register, time_interleaved
from .campaign_internals import TILE_FIELDS, blocks, tiles_overridden
from .campaign_timing import PREWARM_S, TARGET_S, MixtureCall, MmdCall, pool_failure, prewarm, row_cost
from .campaign_timing import model_s as mmd_model_s

COMPILE_S = 2.0  # assumed seconds to compile one kernel variant (calibrated at run time)


def candidates(launch: str, device: torch.device, d: int, p: int, dtype: torch.dtype) -> list[dict]:
    """The default tiles of `launch` first, then its neighbours: rows and columns halved or doubled
    (16 to 128 on the GPU, 16 or 32 under the interpreter), and the default with the other warp
    count (4 or 8)."""
    base = blocks(launch, device, d, p, dtype)
    lo, hi = (16, 128) if device.type == "cuda" else (16, 32)
    found = [{f: getattr(base, f) for f in TILE_FIELDS}]
    for rows in (base.rows // 2, base.rows, base.rows * 2):
        for cols in (base.cols // 2, base.cols, base.cols * 2):
            if lo <= rows <= hi and lo <= cols <= hi:
                found.append({"rows": rows, "cols": cols, "warps": base.warps})
    if device.type == "cuda":
        found.append({"rows": base.rows, "cols": base.cols, "warps": 4 if base.warps == 8 else 8})
    unique = []
    for c in found:
        if c not in unique:
            unique.append(c)
    return unique


def shapes(ctx) -> list[tuple]:
    """(launch, public function, N, d, bandwidths, backward) to sweep."""
    if ctx.dry_run:
        return [("rows", "mmd2", 16, 3, (1.0,), False), ("grad", "mmd2", 16, 3, (1.0,), True),
                ("mixture", "mixture", 16, 3, (), False), ("mixture_grad", "mixture", 16, 3, (), True)]
    five = (0.25, 0.5, 1.0, 2.0, 4.0)
    mmd = [(16384, 2, (1.0,)), (16384, 64, (1.0,)), (16384, 16, five)]
    return ([("rows", "mmd2", n, d, bw, False) for n, d, bw in mmd] + [("grad", "mmd2", n, d, bw, True) for n, d, bw in mmd]
            + [("mixture", "mixture", 16384, 16, (), False), ("mixture_grad", "mixture", 16384, 16, (), True)])


def _call(ctx, function, n, d, bw, backward, tiles):
    if function == "mmd2":
        return MmdCall("triton", n, d, bw, "float32", "ieee", backward, ctx.device.type, tiles=tiles)
    return MixtureCall("triton", n, d, backward, ctx.device.type, tiles=tiles)


def _tiles(launch, cand) -> tuple:
    return (launch, tuple(sorted(cand.items())))


def _label(cand) -> str:
    return f"{cand['rows']}x{cand['cols']} w{cand['warps']}"


def _result(call) -> list[torch.Tensor]:
    """The call's value (and gradients) under its tiles, to compare with the default's."""
    import implicitdiv as idv

    launch, fields = call.tiles
    with tiles_overridden(launch, **dict(fields)):
        if isinstance(call, MmdCall):
            x, y = call.inputs()
            out = idv.mmd2(x, y, bandwidth=call.bandwidths, backend="triton")
            grads = torch.autograd.grad(out, (x, y)) if call.backward else ()
        else:
            gen = torch.Generator(device=call.device).manual_seed(1)
            ins = [torch.randn(call.n, call.d, device=call.device, generator=gen).requires_grad_(call.backward)
                   for _ in range(3)]
            out = idv.gaussian_mixture_logpdf(*ins, backend="triton")
            grads = torch.autograd.grad(out.sum(), ins) if call.backward else ()
    return [out.detach().double()] + [g.double() for g in grads]


def _differs(got: list, ref: list, value_scale: float) -> float:
    """The largest difference of any output over that output's size (the value's at least
    `value_scale`: an mmd2 is a small difference of sums of size ~4 per bandwidth)."""
    worst = 0.0
    for i, (g, r) in enumerate(zip(got, ref)):
        size = max(float(r.abs().max()), value_scale if i == 0 else 0.0, 1e-300)
        worst = max(worst, float((g - r).abs().max()) / size)
    return worst


def _plan(ctx):
    for launch, function, n, d, bw, backward in shapes(ctx):
        cands = candidates(launch, ctx.device, d, 1, torch.float32)[: 2 if ctx.dry_run else None]
        yield launch, function, n, d, bw, backward, [(c, _call(ctx, function, n, d, bw, backward, _tiles(launch, c)))
                                                       for c in cands]


def _estimate(ctx) -> float:
    total, kernels = PREWARM_S, 0
    for launch, function, n, d, bw, backward, cands in _plan(ctx):
        call = cands[0][1]
        one = mmd_model_s(ctx, replace(call, tiles=())) if isinstance(call, MmdCall) else 0.02
        total += row_cost([one] * len(cands)) + 2 * one * len(cands)  # + the result checks
        kernels += 2 * len(cands)
    return total + kernels * COMPILE_S / max(1, ctx.config.workers)


def _run(ctx) -> SectionResult:
    plan = list(_plan(ctx))
    warmed = prewarm(ctx, [call for *_, cands in plan for _, call in cands])
    rows, summary = [], []
    for launch, function, n, d, bw, backward, cands in plan:
        shape = f"{function} N={n} d={d} bw={len(bw) or '-'} {'fwd+bwd' if backward else 'fwd'}"
        if ctx.left() <= 0:
            rows.append({"launch": launch, "shape": shape, "status": "skipped: the budget is spent"})
            continue
        default = cands[0][0]
        reference, timed, statuses = None, {}, {}
        for cand, call in cands:
            if pool_failure(warmed, call):
                statuses[_label(cand)] = pool_failure(warmed, call)
                continue
            try:
                got = _result(call)
                if reference is None:
                    reference = got
                err = _differs(got, reference, 4.0 * len(bw))
                statuses[_label(cand)] = "ok" if err < 1e-4 else f"wrong: differs by {err:.2g} from the default"
                if err < 1e-4:
                    timed[_label(cand)] = call.build()
            except Exception as exc:  # a tile that does not compile or launch: reported, the sweep goes on
                statuses[_label(cand)] = f"failed: {type(exc).__name__}: {str(exc)[:120]}"
        timings = time_interleaved(timed, ctx, target_s=TARGET_S) if timed else {}
        base = timings.get(_label(default))
        for cand, _ in cands:
            t = timings.get(_label(cand))
            rows.append({"launch": launch, "shape": shape, "tiles": _label(cand), "default": cand == default,
                         "ms": None if t is None else 1e3 * t.median_s,
                         "x default": None if t is None or base is None else t.median_s / base.median_s,
                         "reps": None if t is None else t.reps, "status": statuses.get(_label(cand), "not run")})
        if timings:
            best = min(timings, key=lambda k: timings[k].median_s)
            gain = base.median_s / timings[best].median_s if base else float("nan")
            summary.append({"what": f"{launch}: {shape}", "result": f"best {best} {1e3 * timings[best].median_s:.3g} ms"
                            f" ({gain:.2f}x the default {_label(default)})",
                            "note": f"{len(timings)} of {len(cands)} candidates timed"})
    return SectionResult(rows=rows, summary=summary, notes=[
        "candidates: blocks()'s choice and its neighbours (campaign_sweep.candidates); float32 ieee; "
        "x default < 1 is faster than the default"])


register(Section("sweep.tiles", 50, _estimate, _run,
                 "tile candidates of the pairwise kernels (blocks()) at 3 mmd2 shapes and one mixture shape"))
