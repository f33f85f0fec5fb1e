"""The error model of the equivalence harness, written once: how far a fast result may be from the
float64 reference before the harness calls it wrong.

An element r of a reference result (a value or a gradient) is a sum of terms. The error scale of an
honest float computation of it is its *magnitude* M: the sum over its terms of the size of what is
rounded to form each term (|a_i| |k_ij| |b_j| for a kernel sum, plus the part of the kernel value
that the rounding of its squared distance moves, ...; see implicitdiv.testing.magnitudes). A fast
result f passes when

    |f - r| <= u_out max(|r|, tiny_out) + SUMMATION_FACTOR * log2(2 + L) * (u M + tiny)

with u the unit roundoff of the dtype the op computes in, u_out that of the dtype it returns (the
final rounding of r), and L the number of terms summed into r. The logarithm is the rounding
growth of a blocked or pairwise summation (what every kernel here does: tiles of lanes flushed into
wider accumulators); a sequential sum of L float32 terms would need sqrt(L) on average.

Terms that underflow lose up to the smallest normal number `tiny` of the dtype computed in (float32
for half-precision inputs): the bound adds it, and the magnitudes floor every exponential at it.
"""
from __future__ import annotations

import math

import torch

UNIT_ROUNDOFF: dict[torch.dtype, float] = {
    torch.float64: 2.0**-53,
    torch.float32: 2.0**-24,
    torch.float16: 2.0**-11,
    torch.bfloat16: 2.0**-8,
}
# TF32 tensor cores round each product's operands to a 10-bit mantissa.
TF32_UNIT_ROUNDOFF = 2.0**-11

# Multiplies log2(2 + L): the largest error seen over the thorough profile's draws of every fast op,
# in units of u M log2(2 + L), was below 1 (benchmarks/RESULTS.md, "Equivalence harness"); 4 leaves
# room for draws not seen yet and is still small enough that every planted bug of tests/test_harness.py
# is caught in >= 99% of the draws where it changes the answer.
SUMMATION_FACTOR = 4.0


def unit_roundoff(dtype: torch.dtype) -> float:
    return UNIT_ROUNDOFF[dtype]


def tiny(dtype: torch.dtype) -> float:
    """The smallest normal number of dtype: what one underflowing term can lose."""
    return torch.finfo(dtype).tiny


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype whose range intermediates have: float32 for float16/bfloat16 (float32 arithmetic or
    accumulation), else dtype itself."""
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


def summation_factor(length: int) -> float:
    return SUMMATION_FACTOR * math.log2(2.0 + max(int(length), 0))


def bound(reference: torch.Tensor, magnitude: torch.Tensor, length: int, out_dtype: torch.dtype,
          roundoff: float | None = None, summation: bool = True) -> torch.Tensor:
    """The largest |fast - reference| the harness accepts, element by element (float64).

    reference: the float64 result; magnitude: its M (same shape, or broadcastable); length: the
    number of terms summed into each element; out_dtype: the dtype the op returns; roundoff: the
    unit roundoff it computes with (default that of out_dtype, or TF32_UNIT_ROUNDOFF for tf32).
    summation=False: the least change the dtype tells apart instead, one ulp of the result
    (2 u_out |r|) plus one rounding of its magnitude (no summation factor)."""
    u = unit_roundoff(out_dtype) if roundoff is None else roundoff
    final = unit_roundoff(out_dtype) * reference.abs().clamp(min=tiny(out_dtype))  # subnormals are spaced by 2 u tiny
    if not summation:
        return 2.0 * final + u * magnitude + tiny(compute_dtype(out_dtype))
    # every term may also lose what is below the normal range of the dtype computed in (subnormal
    # intermediates flushed to zero, as GPUs do)
    return final + (summation_factor(length) if summation else 1.0) * (u * magnitude + tiny(compute_dtype(out_dtype)))
