"""Fused ratio-loss terms on CUDA tensors (CPU tensors under TRITON_INTERPRET=1), Triton.

Kernel-module protocol: as implicitdiv.fused.cpp.ratio.ratio_forward. One launch per logit
vector evaluates all of its terms (the fake logits of adversarial_losses feed the discriminator and
the generator term in the same pass), writing per-element values or per-block float64 partial sums,
and the scaled derivatives where wanted; loss_outputs.finalize then adds the partials of each loss
in a fixed order. A NaN or +-inf logit gives a NaN term (the public functions' NaN rule, applied
here in the pass that reads the logits).

Float kernel arguments are float32 in Triton, so nothing that must be exact in float64 is passed as
one: signs and offsets are compile-time constants, 1/n is formed in the kernel from the integer n.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from ..._codes import RATIO_MAPS
from .loss_math import expm1_exp, mean_scale, softplus, tanh
from .loss_outputs import FINAL_BLOCK, Segment, finalize, scale_shift_  # noqa: F401 (protocol; block sizes)

(SOFTPLUS_NEG, SOFTPLUS, RELU_ONE_MINUS, RELU_ONE_PLUS, LINEAR, HALF_SQ_SHIFT, HALF_SQ, EXP_NEG, EXPM1_NEG, TANH,
 EXP_SHIFT, EXPM1, PEARSON) = (
    tl.constexpr(RATIO_MAPS.index(name)) for name in ("softplus_neg", "softplus", "relu_one_minus", "relu_one_plus",
                                                      "linear", "half_sq_shift", "half_sq", "exp_neg", "expm1_neg",
                                                      "tanh", "exp_shift", "expm1", "pearson"))
BLOCK = 1024
SUPPORTED = (torch.float32, torch.float64)


# ---- maps ------------------------------------------------------------------------------------------

@triton.jit
def _wide(v):
    """v in float64: e^a overflows float32 from a = 88.7 on where a term scaled by 1/n (a mean) may
    not, so the exponential maps are evaluated in float64 (their partial sums are float64 anyway)."""
    return v.to(tl.float64)


@triton.jit
def _map(v, MAP: tl.constexpr, IS64: tl.constexpr):
    """(f(v), f'(v)) for the map with code MAP in RATIO_MAPS."""
    if MAP == SOFTPLUS_NEG:
        f, d = softplus(-v, IS64)
        d = -d
    elif MAP == SOFTPLUS:
        f, d = softplus(v, IS64)
    elif MAP == RELU_ONE_MINUS:  # derivative 0 where 1 - v <= 0, as torch's relu
        a = 1.0 - v
        f = tl.where(a > 0.0, a, tl.where(v != v, v, 0.0))
        d = tl.where(a <= 0.0, 0.0, -1.0)
    elif MAP == RELU_ONE_PLUS:
        a = 1.0 + v
        f = tl.where(a > 0.0, a, tl.where(v != v, v, 0.0))
        d = tl.where(a <= 0.0, 0.0, 1.0)
    elif MAP == LINEAR:
        f = v
        d = tl.full(v.shape, 1.0, v.dtype)
    elif MAP == HALF_SQ_SHIFT:  # (v - 1)^2 / 2
        d = v - 1.0
        f = 0.5 * d * d
    elif MAP == HALF_SQ:  # v^2 / 2
        d = v
        f = 0.5 * v * v
    elif MAP == EXP_NEG:  # the exponentials in float64 (see _wide)
        f = tl.exp(-_wide(v))
        d = -f
    elif MAP == EXPM1_NEG:  # exp(-v) - 1
        f, e = expm1_exp(-_wide(v), True)
        d = -e
    elif MAP == TANH:
        f, d = tanh(v, IS64)
    elif MAP == EXP_SHIFT:  # exp(v - 1)
        f = tl.exp(_wide(v) - 1.0)
        d = f
    elif MAP == EXPM1:  # exp(v) - 1
        f, d = expm1_exp(_wide(v), True)
    else:  # PEARSON: v^2 / 4 + v
        f = 0.25 * v * v + v
        d = 0.5 * v + 1.0
    return f, d


# ---- kernels ---------------------------------------------------------------------------------------

@triton.jit
def _term(v, mask, n, pid, val_ptr, der_ptr, part_ptr, offs,
          MAP: tl.constexpr, SIGN: tl.constexpr, OFFSET: tl.constexpr, MEAN: tl.constexpr, REDUCE: tl.constexpr,
          DER: tl.constexpr, IS64: tl.constexpr, DTYPE: tl.constexpr):
    f, d = _map(v, MAP, IS64)
    f = f + tl.full((), OFFSET, DTYPE)
    f = tl.where(v - v == 0.0, f, float("nan"))  # the NaN rule: a NaN or +-inf logit gives NaN
    scale = mean_scale(n, SIGN, MEAN, DTYPE)
    if REDUCE:
        tl.store(part_ptr + pid, tl.sum(tl.where(mask, f.to(tl.float64), 0.0), axis=0))
    else:
        tl.store(val_ptr + offs, (scale * f).to(val_ptr.dtype.element_ty), mask=mask)
    if DER:
        tl.store(der_ptr + offs, (scale * d).to(der_ptr.dtype.element_ty), mask=mask)


@triton.jit
def ratio_terms_kernel(x_ptr, n, val0_ptr, der0_ptr, part0_ptr, val1_ptr, der1_ptr, part1_ptr,
                       MAP0: tl.constexpr, SIGN0: tl.constexpr, OFFSET0: tl.constexpr, DER0: tl.constexpr,
                       MAP1: tl.constexpr, SIGN1: tl.constexpr, OFFSET1: tl.constexpr, DER1: tl.constexpr,
                       TERMS: tl.constexpr, MEAN: tl.constexpr, REDUCE: tl.constexpr, IS64: tl.constexpr,
                       BLOCK: tl.constexpr):
    """One block of logits, one or two terms scale * (f(v) + offset) of it."""
    DTYPE: tl.constexpr = tl.float64 if IS64 else tl.float32
    pid = tl.program_id(0)
    offs = pid.to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    v = tl.load(x_ptr + offs, mask=mask, other=0.0).to(DTYPE)
    _term(v, mask, n, pid, val0_ptr, der0_ptr, part0_ptr, offs, MAP0, SIGN0, OFFSET0, MEAN, REDUCE, DER0, IS64, DTYPE)
    if TERMS == 2:
        _term(v, mask, n, pid, val1_ptr, der1_ptr, part1_ptr, offs, MAP1, SIGN1, OFFSET1, MEAN, REDUCE, DER1, IS64,
              DTYPE)


# ---- launcher --------------------------------------------------------------------------------------

def _check(xs):
    for x in xs:
        if x.dtype not in SUPPORTED:
            raise TypeError(f"the triton backend takes float32 or float64 logits, got {x.dtype}")
        if not x.is_contiguous():
            raise RuntimeError("ratio_forward takes contiguous tensors")


def ratio_forward(xs, terms, n_out, reduce, mean, want):
    _check(xs)
    dtype, device = xs[0].dtype, xs[0].device
    values = [None if reduce else torch.empty_like(xs[t.input]) for t in terms]
    derivs = [torch.empty_like(xs[t.input]) if w else None for t, w in zip(terms, want)]
    blocks = {i: triton.cdiv(x.numel(), BLOCK) for i, x in enumerate(xs)}
    partials = [torch.empty(blocks[t.input], dtype=torch.float64, device=device) if reduce else None for t in terms]
    dummy = xs[0]
    for i, x in enumerate(xs):
        mine = [k for k, t in enumerate(terms) if t.input == i]
        if not mine:
            continue
        slots = []
        for k in mine + mine[:1] * (2 - len(mine)):
            t = terms[k]
            slots.append((values[k] if values[k] is not None else dummy,
                          derivs[k] if derivs[k] is not None else dummy,
                          partials[k] if partials[k] is not None else dummy,
                          RATIO_MAPS.index(t.map), float(t.sign), float(t.offset), derivs[k] is not None))
        (v0, d0, p0, m0, s0, o0, w0), (v1, d1, p1, m1, s1, o1, w1) = slots
        ratio_terms_kernel[(blocks[i],)](
            x, x.numel(), v0, d0, p0, v1, d1, p1,
            MAP0=m0, SIGN0=s0, OFFSET0=o0, DER0=w0, MAP1=m1, SIGN1=s1, OFFSET1=o1, DER1=w1 and len(mine) == 2,
            TERMS=len(mine), MEAN=bool(mean), REDUCE=bool(reduce), IS64=dtype == torch.float64, BLOCK=BLOCK,
        )
    if not reduce:
        return values, derivs
    outs = [torch.empty((), dtype=dtype, device=device) for _ in range(n_out)]
    finalize(outs, [Segment(p, xs[t.input].numel(), t.sign, t.out) for p, t in zip(partials, terms)], mean)
    return outs, derivs
