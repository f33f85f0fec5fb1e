"""Microbenchmarks of the public functions on every backend, C++ instruction set and peer, from an
installed package: ``implicitdiv bench --help``, or ``implicitdiv.bench.run(...)`` for the rows."""
from .cases import CASES, Case
from .harness import run

__all__ = ["CASES", "Case", "run"]
