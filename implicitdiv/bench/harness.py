"""The benchmark loop: for every (function, dtype, d, N, pass), every variant (a backend, a C++
instruction set, or a peer) is timed in this process with the variants' repeats interleaved, and
the median is kept; ``speedup`` is the baseline variant's median over this variant's.

Variants: "reference", "cpp", "triton" (the public function with that backend); "cpp[avx2]" and
the like (the cpp backend on one instruction set, implicitdiv._C.use_isa); "naive" (the plain
PyTorch a trainer writes) and "compile" (torch.compile of it). A variant whose estimated memory
exceeds max_gib is skipped with a note.
"""
from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from .. import backend as backends_mod
from ..ops import registry
from . import timing
from .cases import CASES, Case

PEERS = ("naive", "compile")
PASSES = ("fwd", "fwd+bwd")


@dataclass(frozen=True)
class Variant:
    name: str
    backend: str | None = None  # a public backend, or None for a peer
    isa: str | None = None  # the C++ instruction set, for "cpp[isa]"

    def fn(self, case: Case) -> Callable[..., torch.Tensor]:
        if self.backend is not None:
            name = self.backend
            return lambda *xs: case.call(*xs, backend=name)
        if self.name == "compile":
            torch._dynamo.reset()  # each configuration compiles afresh (dynamo's recompile limit)
            return torch.compile(case.naive)
        return case.naive

    def gib(self, case: Case, n: int, d: int, dtype: torch.dtype, backward: bool) -> float:
        if self.backend is None:
            return case.naive_gib(n, d, dtype, backward)
        if self.backend == "reference" and case.pairwise:  # (N, N, d) differences, kept for backward
            return n * n * (d + 3) * (torch.finfo(dtype).bits // 8) * (3 if backward else 1) / 2**30
        return 0.0


def variants(function: str, device: str, backends: Sequence[str], peers: Sequence[str],
             isas: Sequence[str] = ()) -> list[Variant]:
    """The variants of `function` to time on `device`: the requested backends that run it there
    (cpp split per instruction set when `isas` is given), then the requested peers."""
    out = []
    for name in backends:
        if name != "reference" and not registry.has(name, function):
            continue
        if name == "cpp" and (device != "cpu" or not backends_mod.cpp_built()):
            continue
        if name == "triton" and name not in backends_mod.backends():
            continue
        if name == "cpp" and isas:
            out += [Variant(f"cpp[{isa}]", "cpp", isa) for isa in isas]
        else:
            out.append(Variant(name, name))
    out += [Variant(p) for p in peers]
    return out


def _step(fn: Callable[..., torch.Tensor], inputs: list[torch.Tensor], backward: bool) -> Callable[[], None]:
    if backward:
        def step() -> None:
            torch.autograd.grad(fn(*inputs), inputs)
    else:
        def step() -> None:
            with torch.no_grad():
                fn(*inputs)
    return step


def _use_isa(isa: str | None) -> None:
    if isa is not None:
        from .. import _C

        _C.use_isa(isa)


def run(functions: Sequence[str], sizes: Sequence[int], dims: Sequence[int], dtypes: Sequence[torch.dtype],
        device: str, backends: Sequence[str], peers: Sequence[str] = PEERS, isas: Sequence[str] = (),
        passes: Sequence[str] = PASSES, repeats: int = 3, min_time: float = 0.05, max_gib: float = 4.0,
        baseline: str | None = None, progress: Callable[[dict], None] | None = None) -> list[dict]:
    """One row per (function, dtype, d, N, pass, variant); see the module docstring."""
    isa_before = None
    if isas:
        from .. import _C

        isa_before = _C.ISA
        for isa in isas:
            _C.choose(isa)  # IsaError naming the choices
    rows: list[dict] = []
    try:
        for function in functions:
            case = CASES[function]
            uses_d = case.shapes(1, 1) != case.shapes(1, 2)
            found = variants(function, device, backends, peers, isas)
            names = [v.name for v in found]
            base = baseline or next((b for b in ("naive", "reference") if b in names), names[0])
            for dtype in dtypes:
                for d in (dims if uses_d else (0,)):
                    for n in sizes:
                        for pass_name in passes:
                            new = _config(case, n, d, dtype, device, pass_name, found, repeats, min_time, max_gib, base)
                            rows += new
                            for r in new:
                                if progress:
                                    progress(r)
    finally:
        _use_isa(isa_before)
    return rows


def _config(case: Case, n: int, d: int, dtype: torch.dtype, device: str, pass_name: str, found: list[Variant],
            repeats: int, min_time: float, max_gib: float, base: str) -> list[dict]:
    backward = pass_name == "fwd+bwd"
    key = {"function": case.function, "n": n, "d": d, "dtype": str(dtype).removeprefix("torch."), "device": device,
           "pass": pass_name}
    inputs = [t.requires_grad_(backward) for t in case.inputs(n, max(d, 1), dtype, device)]
    steps: dict[Variant, Callable[[], None]] = {}
    notes: dict[str, str] = {}
    for v in found:
        gib = v.gib(case, n, max(d, 1), dtype, backward)
        if gib > max_gib:
            notes[v.name] = f"skipped: needs ~{gib:.1f} GiB > --max-gib {max_gib:g}"
            continue
        _use_isa(v.isa)
        try:
            step = _step(v.fn(case), inputs, backward)
            step()  # warm-up (and compilation)
        except Exception as e:  # one variant failing to run is reported, the others still timed
            notes[v.name] = f"failed: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
            continue
        steps[v] = step
    times: dict[str, list[float]] = {v.name: [] for v in steps}
    for _ in range(repeats):
        for v, step in steps.items():
            _use_isa(v.isa)
            times[v.name].append(timing.seconds(step, device, min_time))
    medians = {name: statistics.median(ts) for name, ts in times.items()}
    rows = []
    for v in found:
        sec = medians.get(v.name)
        ratio = medians[base] / sec if sec and base in medians else None
        rows.append({**key, "variant": v.name, "seconds": sec, "speedup": ratio, "baseline": base,
                     "note": notes.get(v.name, "")})
    return rows
