"""Fused Gaussian latent terms on CUDA tensors (CPU tensors under TRITON_INTERPRET=1), Triton.

Kernel-module protocol: as implicitdiv.fused.cpp.gaussian.gaussian_forward. One launch reads
blocks of rows (each input at its own row stride, 0 for a broadcast one), writes the elementwise
outputs and either the per-row sums or one float64 partial per block; the partials are added in a
fixed order by loss_outputs.finalize. Scales 1/rows are formed in the kernels from the
integer rows (float kernel arguments are float32).
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from ..._codes import GAUSSIAN_KINDS
from ..layout import addressable, row_stride
from .loss_math import expm1_exp, mean_scale
from .loss_outputs import Segment, finalize, scale_shift_  # noqa: F401 (protocol)

NLL, KL_STD_NORMAL, KL_GAUSSIANS, REPARAMETERIZE = (
    tl.constexpr(GAUSSIAN_KINDS.index(name)) for name in ("nll", "kl_std_normal", "kl_gaussians", "reparameterize"))
SUPPORTED = (torch.float32, torch.float64)


@triton.jit
def _square(diff, lv, IS64: tl.constexpr):
    """(a, b, q) with (z - m)^2 e^-lv = a * b and (z - m) e^-lv = q: a = diff, b = q = diff e^-lv, or
    where e^-lv alone would overflow, a = b = diff e^(-lv/2), q = a e^(-lv/2) (csrc/losses_gaussian.cpp,
    Square, whose threshold 1 - Consts<T>::kHi this is)."""
    split = lv < (-709.0 if IS64 else -88.0)
    h = tl.exp(tl.where(split, -0.5 * lv, -lv))
    a = tl.where(split, diff * h, diff)
    q = tl.where(split, a * h, diff * h)
    return a, tl.where(split, a, q), q


@triton.jit
def _terms(x0, x1, x2, x3, ds, KIND: tl.constexpr, IS64: tl.constexpr, DTYPE: tl.constexpr):
    """(row term, out0, out1, out2) of one block for the kind with code KIND in GAUSSIAN_KINDS."""
    log_2pi = tl.full((), 1.8378770664093454835606594728112, DTYPE)
    if KIND == NLL:  # 1/2 [(z - m)^2 e^-lv + lv + log 2 pi]; d/dz, d/dm, d/dlv
        a, b, q = _square(x0 - x1, x2, IS64)
        value = (0.5 * a).to(tl.float64) * b.to(tl.float64) + 0.5 * (x2 + log_2pi)  # the product in float64
        o0 = ds * q
        o1 = -o0
        o2 = ds * 0.5 - (ds * 0.5 * a) * b  # ds (1/rows for a mean) first: its share may be finite
    elif KIND == KL_STD_NORMAL:  # 1/2 [(e^lv - 1) - lv + m^2]; d/dm, d/dlv
        e, _ = expm1_exp(x1, IS64)
        value = 0.5 * ((e - x1) + x0 * x0)
        o0 = ds * x0
        o1 = ds * 0.5 * e
        o2 = o1
    elif KIND == KL_GAUSSIANS:  # 1/2 [(lp - lq) + (e^(lq-lp) - 1) + (mq - mp)^2 e^-lp]; d/dmq, d/dlq, d/dlp
        a, b, q = _square(x0 - x2, x3, IS64)
        e, _ = expm1_exp(x1 - x3, IS64)
        value = 0.5 * ((x3 - x1) + e) + (0.5 * a).to(tl.float64) * b.to(tl.float64)  # as in nll
        o0 = ds * q
        o1 = ds * 0.5 * e
        o2 = -(o1 + (ds * 0.5 * a) * b)
    else:  # REPARAMETERIZE: z = m + e^(lv/2) eps, row term -1/2 [eps^2 + lv + log 2 pi]; z, dz/dlv, dz/deps
        sd = tl.exp(0.5 * x1)
        value = -0.5 * (x2 * x2 + x1 + log_2pi)
        o0 = x0 + sd * x2
        o1 = ds * 0.5 * sd * x2
        o2 = ds * sd
    return value, o0, o1, o2


@triton.jit
def gaussian_terms_kernel(in0, in1, in2, in3, rs0, rs1, rs2, rs3, out0, out1, out2, row_ptr, part_ptr, rows, d,
                          KIND: tl.constexpr, NIN: tl.constexpr, W0: tl.constexpr, W1: tl.constexpr,
                          W2: tl.constexpr, PER_ROW: tl.constexpr, MEAN: tl.constexpr, IS64: tl.constexpr,
                          BLOCK_R: tl.constexpr, BLOCK_D: tl.constexpr):
    DTYPE: tl.constexpr = tl.float64 if IS64 else tl.float32
    pid = tl.program_id(0)
    r = pid.to(tl.int64) * BLOCK_R + tl.arange(0, BLOCK_R)
    rmask = r < rows
    ds = mean_scale(rows, 1.0, MEAN, DTYPE)
    acc = tl.zeros((BLOCK_R,), tl.float64)
    for j0 in range(0, d, BLOCK_D):
        cols = j0 + tl.arange(0, BLOCK_D)
        m2 = rmask[:, None] & (cols < d)[None, :]
        x0 = tl.load(in0 + r[:, None] * rs0 + cols[None, :], mask=m2, other=0.0).to(DTYPE)
        x1 = tl.load(in1 + r[:, None] * rs1 + cols[None, :], mask=m2, other=0.0).to(DTYPE)
        x2 = x1
        x3 = x1
        if NIN >= 3:
            x2 = tl.load(in2 + r[:, None] * rs2 + cols[None, :], mask=m2, other=0.0).to(DTYPE)
        if NIN >= 4:
            x3 = tl.load(in3 + r[:, None] * rs3 + cols[None, :], mask=m2, other=0.0).to(DTYPE)
        value, o0, o1, o2 = _terms(x0, x1, x2, x3, ds, KIND, IS64, DTYPE)
        if KIND != REPARAMETERIZE:  # the losses' NaN rule: NaN where an input is NaN or +-inf (x2, x3 repeat x1 if absent)
            finite = (x0 - x0 == 0.0) & (x1 - x1 == 0.0) & (x2 - x2 == 0.0) & (x3 - x3 == 0.0)
            value = tl.where(finite, value, float("nan"))
        acc += tl.sum(tl.where(m2, value.to(tl.float64), 0.0), axis=1)
        flat = r[:, None] * d + cols[None, :]
        if W0:
            tl.store(out0 + flat, o0.to(out0.dtype.element_ty), mask=m2)
        if W1:
            tl.store(out1 + flat, o1.to(out1.dtype.element_ty), mask=m2)
        if W2:
            tl.store(out2 + flat, o2.to(out2.dtype.element_ty), mask=m2)
    if PER_ROW:
        tl.store(row_ptr + r, acc.to(row_ptr.dtype.element_ty), mask=rmask)
    else:
        tl.store(part_ptr + pid, tl.sum(tl.where(rmask, acc, 0.0), axis=0))


def _blocks(d: int, device: torch.device) -> tuple[int, int]:
    block_d = min(128, triton.next_power_of_2(d))
    per_program = 4096 if device.type == "cuda" else 16384  # the interpreter pays per program
    return max(1, per_program // block_d), block_d


def gaussian_forward(kind, xs, want, mean, per_row):
    for x in xs:
        if x.dtype not in SUPPORTED:
            raise TypeError(f"the triton backend takes float32 or float64 tensors, got {x.dtype}")
        if not addressable(x):
            raise RuntimeError("gaussian_forward takes tensors contiguous or (rows, d) with unit column stride")
    shape, dtype, device = xs[0].shape, xs[0].dtype, xs[0].device
    d = shape[-1]
    rows = xs[0].numel() // d
    outs = [torch.empty(shape, dtype=dtype, device=device) if w else None for w in want]
    block_r, block_d = _blocks(d, device)
    programs = triton.cdiv(rows, block_r)
    value = torch.empty(shape[:-1], dtype=dtype, device=device) if per_row else None
    partials = None if per_row else torch.empty(programs, dtype=torch.float64, device=device)
    ins = list(xs) + [xs[0]] * (4 - len(xs))
    strides = [row_stride(x) for x in ins]
    slots = [o if o is not None else xs[0] for o in outs] + [xs[0]] * (3 - len(outs))
    flags = [o is not None for o in outs] + [False] * (3 - len(outs))
    gaussian_terms_kernel[(programs,)](
        *ins, *strides, *slots, value if per_row else xs[0], partials if partials is not None else xs[0], rows, d,
        KIND=GAUSSIAN_KINDS.index(kind), NIN=len(xs), W0=flags[0], W1=flags[1], W2=flags[2], PER_ROW=per_row, MEAN=bool(mean),
        IS64=dtype == torch.float64, BLOCK_R=block_r, BLOCK_D=block_d,
    )
    if per_row:
        return value, outs
    total = torch.empty((), dtype=dtype, device=device)
    finalize([total], [Segment(partials, rows, 1.0, 0)], mean)
    return total, outs
