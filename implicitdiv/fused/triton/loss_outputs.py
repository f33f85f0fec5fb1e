"""What the Triton loss kernels' outputs go through after their launch, shared by the ratio and
Gaussian kernel modules: the fixed-order sum of their float64 block partials into the losses (no
atomics, so the same inputs give the same bits), and the backward's in-place scaling of the saved
derivatives (the protocol's scale_shift_)."""
from __future__ import annotations

from typing import NamedTuple

import torch
import triton
import triton.language as tl

from .loss_math import mean_scale

FINAL_BLOCK = 1024
MAX_SEGMENTS = 3  # the terms one loss call sums: adversarial_losses' three


class Segment(NamedTuple):
    """The block partials of one term, added as sign / n (sign when not a mean) times their sum into
    output `out`."""
    partials: torch.Tensor  # float64, one per block
    n: int  # the elements the term is taken over
    sign: float
    out: int


@triton.jit
def _segment(part_ptr, count, n, SIGN: tl.constexpr, MEAN: tl.constexpr, BLOCK: tl.constexpr):
    acc = tl.zeros((BLOCK,), tl.float64)
    for start in range(0, count, BLOCK):
        idx = start + tl.arange(0, BLOCK)
        acc += tl.load(part_ptr + idx, mask=idx < count, other=0.0)
    return mean_scale(n, SIGN, MEAN, tl.float64) * tl.sum(acc, axis=0)


@triton.jit
def finalize_kernel(out0_ptr, out1_ptr, part0_ptr, count0, n0, part1_ptr, count1, n1, part2_ptr, count2, n2,
                    SIGN0: tl.constexpr, OUT0: tl.constexpr, SIGN1: tl.constexpr, OUT1: tl.constexpr,
                    SIGN2: tl.constexpr, OUT2: tl.constexpr, TERMS: tl.constexpr, OUTS: tl.constexpr,
                    MEAN: tl.constexpr, BLOCK: tl.constexpr):
    """out_o = sum over the terms t -> o of scale_t * (their block partials, in block order)."""
    tot0 = tl.sum(tl.zeros((BLOCK,), tl.float64), axis=0)
    tot1 = tot0
    s = _segment(part0_ptr, count0, n0, SIGN0, MEAN, BLOCK)
    if OUT0 == 0:
        tot0 += s
    else:
        tot1 += s
    if TERMS >= 2:
        s = _segment(part1_ptr, count1, n1, SIGN1, MEAN, BLOCK)
        if OUT1 == 0:
            tot0 += s
        else:
            tot1 += s
    if TERMS >= 3:
        s = _segment(part2_ptr, count2, n2, SIGN2, MEAN, BLOCK)
        if OUT2 == 0:
            tot0 += s
        else:
            tot1 += s
    tl.store(out0_ptr, tot0.to(out0_ptr.dtype.element_ty))
    if OUTS == 2:
        tl.store(out1_ptr, tot1.to(out1_ptr.dtype.element_ty))


def finalize(outs: list[torch.Tensor], segments: list[Segment], mean: bool) -> None:
    """outs[o] <- the sum of the segments into o (one or two 0-dim outputs), by one program."""
    padded = list(segments) + [segments[0]] * (MAX_SEGMENTS - len(segments))  # read only up to TERMS
    (p0, n0, s0, o0), (p1, n1, s1, o1), (p2, n2, s2, o2) = padded
    finalize_kernel[(1,)](outs[0], outs[-1], p0, p0.numel(), n0, p1, p1.numel(), n1, p2, p2.numel(), n2,
                          SIGN0=float(s0), OUT0=int(o0), SIGN1=float(s1), OUT1=int(o1), SIGN2=float(s2), OUT2=int(o2),
                          TERMS=len(segments), OUTS=len(outs), MEAN=bool(mean), BLOCK=FINAL_BLOCK)


def scale_shift_(d: torch.Tensor, a: float, b: float) -> torch.Tensor:
    """d <- a * d + b in place (a, b numbers), one pass."""
    return torch.add(d.new_full((), b), d, alpha=a, out=d)
