"""Which public functions each fast backend implements. A backend's entry grows as its fused ops
land; the resolver in implicitdiv.backend reads it (a function not listed runs on the reference
under backend="auto", and raises under an explicit backend)."""
from __future__ import annotations

IMPLEMENTED: dict[str, frozenset[str]] = {
    "cpp": frozenset(),
    "triton": frozenset(),
}


def has(backend: str, function: str) -> bool:
    return function in IMPLEMENTED.get(backend, ())
