"""implicitdiv._C: the C++ CPU kernels of csrc/, for one instruction set chosen at import.

CMakeLists.txt builds the kernels once per instruction set, as the extension modules
implicitdiv._C_<isa> (baseline x86-64, avx2 = AVX2 + FMA, avx512 = AVX-512 F/DQ/BW/VL; only
"baseline" off x86-64; only "native" when built with -march=native on request). This module loads
the most capable one this CPU runs, or the one ``IMPLICITDIV_ISA`` names, and takes its routines
as its own attributes: callers use ``implicitdiv._C.<routine>`` whatever was chosen. ``ISA`` says
which one is in use; ``use_isa(name)`` switches in a running process (for comparing them).
"""
from __future__ import annotations

import importlib
import os
from types import ModuleType
from typing import Any

from ._cpuinfo import variants as _variants

ENV = "IMPLICITDIV_ISA"

# isa -> {feature: whether this CPU (and OS) has it}, least demanding first
BUILT: dict[str, dict[str, bool]] = {isa: dict(features) for isa, features in _variants()}


class IsaError(ImportError):
    """The instruction set asked for was not built, or this CPU lacks what it needs."""


def runnable(built: dict[str, dict[str, bool]] = BUILT) -> tuple[str, ...]:
    """The built instruction sets this CPU runs, least demanding first."""
    return tuple(isa for isa, has in built.items() if all(has.values()))


def choose(requested: str | None, built: dict[str, dict[str, bool]] = BUILT, source: str = ENV) -> str:
    """The instruction set to load: ``requested`` (the value of IMPLICITDIV_ISA, or of what
    ``source`` names) when set, else the most capable one this CPU runs."""
    ok = runnable(built)
    choices = ", ".join(ok) or "none"
    if not requested:
        if not ok:
            raise IsaError(f"implicitdiv._C: this CPU runs none of the built instruction sets ({', '.join(built)})")
        return ok[-1]
    if requested not in built:
        raise IsaError(f"{source}={requested!r} is not an instruction set this build has; choices here: {choices}")
    lacking = [f for f, has in built[requested].items() if not has]
    if lacking:
        raise IsaError(f"{source}={requested!r}: this CPU lacks {', '.join(lacking)}; choices here: {choices}")
    return requested


ISA = ""
_module: ModuleType
_team = False
_OWN = frozenset({"use_openmp_team"})  # defined below, over the variant's


def use_isa(name: str) -> str:
    """Route every routine to implicitdiv._C_<name>; returns the instruction set used before."""
    global ISA, _module
    choose(name)
    module = importlib.import_module(f"{__package__}._C_{name}")
    globals().update({k: v for k, v in vars(module).items() if not k.startswith("_") and k not in _OWN})
    module.use_openmp_team(_team)  # each variant keeps its own thread mode (csrc/threads.h): carry it over
    previous, ISA, _module = ISA, name, module
    return previous


def __getattr__(name: str) -> Any:
    """A routine of the variant in use that use_isa did not copy (or, to a type checker, any routine)."""
    return getattr(_module, name)


def use_openmp_team(on: bool) -> bool:
    """Take worker teams from the OpenMP runtime (only when it is torch's; see
    implicitdiv.fused.cpp.threads); returns whether they now are."""
    global _team
    _team = bool(_module.use_openmp_team(on))
    return _team


use_isa(choose(os.environ.get(ENV) or None))
