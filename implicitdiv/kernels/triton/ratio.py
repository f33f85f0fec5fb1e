"""Fused ratio-loss terms on CUDA tensors (CPU tensors under TRITON_INTERPRET=1), Triton.

Kernel-module protocol: as implicitdiv.kernels.cpp.ratio.ratio_forward. One launch per logit
vector evaluates all of its terms (the fake logits of adversarial_losses feed the discriminator and
the generator term in the same pass), writing per-element values or per-block float64 partial sums,
and the scaled derivatives where wanted; one single-program launch then adds the partials of each
loss in a fixed order. No atomics: the same inputs give the same bits. A NaN or +-inf logit gives a
NaN term (the public functions' NaN rule, applied here in the pass that reads the logits).

Float kernel arguments are float32 in Triton, so nothing that must be exact in float64 is passed as
one: signs and offsets are compile-time constants, 1/n is formed in the kernel from the integer n.
The math helpers here (exp, expm1, softplus, tanh) are shared with the Gaussian kernels.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

MAPS = ("softplus_neg", "softplus", "relu_one_minus", "relu_one_plus", "linear", "half_sq_shift", "half_sq",
        "exp_neg", "expm1_neg", "tanh", "exp_shift", "expm1", "pearson")
BLOCK = 1024
FINAL_BLOCK = 1024
SUPPORTED = (torch.float32, torch.float64)


# ---- math ------------------------------------------------------------------------------------------

@triton.jit
def _expm1_exp(x, IS64: tl.constexpr):
    """(e^x - 1, e^x): Taylor series in Horner form for |x| < 1/2 (no cancellation), e^x - 1 beyond."""
    e = tl.exp(x)
    p = tl.full(x.shape, 1.0, x.dtype)
    if IS64:
        for k in tl.static_range(17, 1, -1):
            p = 1.0 + p * x / k
    else:
        for k in tl.static_range(9, 1, -1):
            p = 1.0 + p * x / k
    small = tl.abs(x) < 0.5
    return tl.where(small, x * p, e - 1.0), e


@triton.jit
def _log1p_unit(u, IS64: tl.constexpr):
    """log(1 + u) for u in [0, 1]: 2 atanh(s), s = u / (2 + u) <= 1/3, as a series in s^2."""
    s = u / (2.0 + u)
    s2 = s * s
    one = tl.full(s2.shape, 1.0, s2.dtype)
    if IS64:
        p = one / 35
        for k in tl.static_range(16, -1, -1):
            p = p * s2 + one / (2 * k + 1)
    else:
        p = one / 17
        for k in tl.static_range(7, -1, -1):
            p = p * s2 + one / (2 * k + 1)
    return 2.0 * s * p


@triton.jit
def _softplus(v, IS64: tl.constexpr):
    """(softplus(v), sigmoid(v)) from u = e^-|v|; as torch's softplus, v > 20 gives (v, 1)."""
    u = tl.exp(-tl.abs(v))
    sp = tl.maximum(v, 0.0) + _log1p_unit(u, IS64)
    inv = 1.0 / (1.0 + u)
    sig = tl.where(v >= 0.0, inv, u * inv)
    linear = v > 20.0
    nan = v != v
    return tl.where(linear, v, tl.where(nan, v, sp)), tl.where(linear, 1.0, tl.where(nan, v, sig))


@triton.jit
def _tanh(v, IS64: tl.constexpr):
    """(tanh(v), 1 - tanh(v)^2) with the derivative as 4 u / (1 + u)^2, u = e^-2|v| (no cancellation)."""
    t, u = _expm1_exp(-2.0 * tl.abs(v), IS64)
    mag = -t / (2.0 + t)
    w = 1.0 / (1.0 + u)
    return tl.where(v < 0.0, -mag, mag), 4.0 * u * w * w


@triton.jit
def _map(v, MAP: tl.constexpr, IS64: tl.constexpr):
    """(f(v), f'(v)) for the map with index MAP in MAPS."""
    if MAP == 0:  # softplus(-v)
        f, d = _softplus(-v, IS64)
        d = -d
    elif MAP == 1:  # softplus(v)
        f, d = _softplus(v, IS64)
    elif MAP == 2:  # relu(1 - v), derivative 0 where 1 - v <= 0 as torch's relu
        a = 1.0 - v
        f = tl.where(a > 0.0, a, tl.where(v != v, v, 0.0))
        d = tl.where(a <= 0.0, 0.0, -1.0)
    elif MAP == 3:  # relu(1 + v)
        a = 1.0 + v
        f = tl.where(a > 0.0, a, tl.where(v != v, v, 0.0))
        d = tl.where(a <= 0.0, 0.0, 1.0)
    elif MAP == 4:  # v
        f = v
        d = tl.full(v.shape, 1.0, v.dtype)
    elif MAP == 5:  # (v - 1)^2 / 2
        d = v - 1.0
        f = 0.5 * d * d
    elif MAP == 6:  # v^2 / 2
        d = v
        f = 0.5 * v * v
    elif MAP == 7:  # exp(-v)
        f = tl.exp(-v)
        d = -f
    elif MAP == 8:  # exp(-v) - 1
        f, e = _expm1_exp(-v, IS64)
        d = -e
    elif MAP == 9:  # tanh(v)
        f, d = _tanh(v, IS64)
    elif MAP == 10:  # exp(v - 1)
        f = tl.exp(v - 1.0)
        d = f
    elif MAP == 11:  # exp(v) - 1
        f, d = _expm1_exp(v, IS64)
    else:  # v^2 / 4 + v
        f = 0.25 * v * v + v
        d = 0.5 * v + 1.0
    return f, d


@triton.jit
def _scale(n, SIGN: tl.constexpr, MEAN: tl.constexpr, DTYPE: tl.constexpr):
    """sign / n in DTYPE (sign when not MEAN), formed here so float64 keeps every bit. n may arrive
    as a constexpr (Triton specializes integer arguments equal to 1), hence the addition, not .to()."""
    sign = tl.full((), SIGN, DTYPE)
    if MEAN:
        return sign / (tl.full((), 0, DTYPE) + n)
    return sign


# ---- kernels ---------------------------------------------------------------------------------------

@triton.jit
def _term(v, mask, n, pid, val_ptr, der_ptr, part_ptr, offs,
          MAP: tl.constexpr, SIGN: tl.constexpr, OFFSET: tl.constexpr, MEAN: tl.constexpr, REDUCE: tl.constexpr,
          DER: tl.constexpr, IS64: tl.constexpr, DTYPE: tl.constexpr):
    f, d = _map(v, MAP, IS64)
    f = f + tl.full((), OFFSET, DTYPE)
    f = tl.where(v - v == 0.0, f, float("nan"))  # the NaN rule: a NaN or +-inf logit gives NaN
    scale = _scale(n, SIGN, MEAN, DTYPE)
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


@triton.jit
def _segment(part_ptr, count, n, SIGN: tl.constexpr, MEAN: tl.constexpr, BLOCK: tl.constexpr):
    acc = tl.zeros((BLOCK,), tl.float64)
    for start in range(0, count, BLOCK):
        idx = start + tl.arange(0, BLOCK)
        acc += tl.load(part_ptr + idx, mask=idx < count, other=0.0)
    return _scale(n, SIGN, MEAN, tl.float64) * tl.sum(acc, axis=0)


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


def scale_shift_(d: torch.Tensor, a: float, b: float) -> torch.Tensor:
    """d <- a * d + b in place (a, b numbers), one pass."""
    return torch.add(d.new_full((), b), d, alpha=a, out=d)


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
    values = [None if reduce else torch.empty_like(xs[t[0]]) for t in terms]
    derivs = [torch.empty_like(xs[t[0]]) if w else None for t, w in zip(terms, want)]
    blocks = {i: triton.cdiv(x.numel(), BLOCK) for i, x in enumerate(xs)}
    partials = [torch.empty(blocks[t[0]], dtype=torch.float64, device=device) if reduce else None for t in terms]
    dummy = xs[0]
    for i, x in enumerate(xs):
        mine = [k for k, t in enumerate(terms) if t[0] == i]
        if not mine:
            continue
        slots = []
        for k in mine + mine[:1] * (2 - len(mine)):
            _, name, sign, offset, _ = terms[k]
            slots.append((values[k] if values[k] is not None else dummy,
                          derivs[k] if derivs[k] is not None else dummy,
                          partials[k] if partials[k] is not None else dummy,
                          MAPS.index(name), float(sign), float(offset), derivs[k] is not None))
        (v0, d0, p0, m0, s0, o0, w0), (v1, d1, p1, m1, s1, o1, w1) = slots
        ratio_terms_kernel[(blocks[i],)](
            x, x.numel(), v0, d0, p0, v1, d1, p1,
            MAP0=m0, SIGN0=s0, OFFSET0=o0, DER0=w0, MAP1=m1, SIGN1=s1, OFFSET1=o1, DER1=w1 and len(mine) == 2,
            TERMS=len(mine), MEAN=bool(mean), REDUCE=bool(reduce), IS64=dtype == torch.float64, BLOCK=BLOCK,
        )
    if not reduce:
        return values, derivs
    outs = [torch.empty((), dtype=dtype, device=device) for _ in range(n_out)]
    segs = [(partials[k], partials[k].numel(), xs[t[0]].numel(), float(t[2]), int(t[4])) for k, t in enumerate(terms)]
    segs += [segs[0]] * (3 - len(segs))
    (p0, c0, n0, s0, o0), (p1, c1, n1, s1, o1), (p2, c2, n2, s2, o2) = segs
    finalize_kernel[(1,)](outs[0], outs[-1], p0, c0, n0, p1, c1, n1, p2, c2, n2, SIGN0=s0, OUT0=o0, SIGN1=s1,
                          OUT1=o1, SIGN2=s2, OUT2=o2, TERMS=len(terms), OUTS=n_out, MEAN=bool(mean), BLOCK=FINAL_BLOCK)
    return outs, derivs
