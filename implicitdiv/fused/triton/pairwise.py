"""Triton pairwise engine: the kernel-module protocol of implicitdiv.ops.pairwise on the tiled kernels
of pairwise_sums and pairwise_mixture. Nothing N x M is ever allocated: the launchers allocate the
outputs, per-row-block partials (B, ceil(N / BM), P), centered copies O((N + M) d) and O(M d)
per-component terms, and nothing else.

Precision modes (`precision=`):
  "ieee" (default)  float32/float64 dot products in full precision. Squared distances through the
                    dot product err by ~eps (|x-c|^2 + |y-c|^2); pairs closer than TAU = 2^-6 of that
                    scale are recomputed from explicit differences, so every s_ij has relative error
                    <= ~64 d eps (float32: ~4e-6 at d = 1, bounded by 2.5e-4 at d = 64 in the worst case
                    of aligned rounding, sqrt(d) times smaller typically).
  "tf32"            float32 inputs multiplied as tf32 on tensor cores (10-bit mantissa), float32
                    accumulation: s_ij errs by up to ~2^-10 (|x-c|^2 + |y-c|^2); pairs under
                    TAU = 2^-3 of that are exact, so the relative error of s is <= ~2^-7, and the
                    kernel-weight products of the second dot product carry ~2^-11 relative error each.
  bf16/fp16 inputs  tensor cores with exact products and float32 accumulation for the distances: the
                    "ieee" bound at float32 eps, but without centering (rounding centered values back
                    to half would change the data), so the scale is |x|^2 + |y|^2. The gradient tile G,
                    and the kernel values when P > 2, are rounded to the input type for the second
                    dot product (~2^-9 relative each for bf16, 2^-11 for fp16).
  mixture           scores err by ~eps sum_k ((z_k - c_k)^2 + (m_k - c_k)^2) e_k with c the mean of the
                    means (no square root, so no near-point problem); "tf32" makes that ~2^-11.
                    bf16/fp16 inputs are upcast to float32.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch
import triton

from .pairwise_mixture import mixture_grad_components_kernel, mixture_grad_z_kernel, mixture_lse_kernel
from .pairwise_sums import pair_grad_kernel, pair_rows_kernel
from .pairwise_tiles import KIND_CODES
from ..._codes import DOT_KERNELS
from ..._validate import all_finite
from ...statistics import mmd2_weights

PRECISIONS = ("ieee", "tf32")
# Pairs with s < NEAR_FRACTION * (|x - c|^2 + |y - c|^2) get s from explicit differences
# (pairwise_tiles.sq_dist_tile, for every distance kernel's forward and gradient). The C++ engine's
# threshold, kNear = 1/16 in csrc/pairwise_engine.h, is larger because its recomputation is cheap:
# one SIMD vector of pairs at a time. Here a tile is recomputed whole, BM x BN pairs over d scalar
# loads, when any of its pairs is near, so "ieee" recomputes only below 2^-6, which still bounds the
# relative error of s (module docstring); tf32's coarser products need 2^-3. The equivalence
# harness's error model assumes the smallest of these thresholds
# (implicitdiv.testing.pair_magnitudes.NEAR_RATIO; tests/test_pairwise_cpp.py checks it).
NEAR_FRACTION = {"ieee": 2.0**-6, "tf32": 2.0**-3}
HALF_TYPES = (torch.float16, torch.bfloat16)
SUPPORTED = (torch.float32, torch.float64) + HALF_TYPES
LOG_2PI = math.log(2.0 * math.pi)
SMALL_P_BELOW = 3  # [BM, BN, BP] broadcast products stay within the registers of a 64 x 64 tile


@dataclass(frozen=True)
class Blocks:
    rows: int  # BM: rows of x (or z) per program
    cols: int  # BN: rows of y (or components) per streamed tile
    feat: int  # BD: feature chunk of the score dot products
    out_feat: int  # BDO: feature block of a gradient output (a grid axis beyond it)
    weights: int  # BP: weight columns per program (rows kernel) or per chunk of W = u v^T (grad kernel)
    few_weights: bool  # SMALL_P: broadcast products with the weights instead of a padded tl.dot
    warps: int

    def sums(self) -> dict:
        """The tile arguments of pair_rows_kernel (pair_grad_kernel adds BDO)."""
        return dict(SMALL_P=self.few_weights, BM=self.rows, BN=self.cols, BD=self.feat, BP=self.weights,
                    num_warps=self.warps)


def blocks(launch: str, device: torch.device, d: int, p: int, dtype: torch.dtype) -> Blocks:
    """Tiles of one launch: "rows", "grad", "mixture" or "mixture_grad".

    Under the interpreter (CPU tensors) every tile is 16 wide, the least tl.dot takes, so the tests
    cross tile edges. On CUDA the sizes are those whose sm_90 build (triton 3.9 + ptxas, no GPU
    needed) spills at most 16 bytes of registers per thread by `cuobjdump --dump-resource-usage`;
    they are not timed yet. Fewer than SMALL_P_BELOW weight columns take BP = next_pow2(P) exactly.
    """
    few = p < SMALL_P_BELOW
    exact_p = triton.next_power_of_2(p)
    if device.type != "cuda":
        return Blocks(16, 16, 16, 16, exact_p if few else 16, few, 1)
    out_feat = min(64, max(16, triton.next_power_of_2(d)))
    wide = 32 if dtype == torch.float64 else 64
    rows, cols, weights = {
        "rows": (wide, wide, exact_p if few else min(64, max(16, exact_p))),
        "grad": (wide, 32, exact_p if few else 16),
        "mixture": (64, 64, 1),
        "mixture_grad": (32, 32, 1),
    }[launch]
    return Blocks(rows, cols, 16, out_feat, weights, few, 8)


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype == torch.float64 else torch.float32


def _check(precision: str, *tensors: torch.Tensor) -> None:
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    for t in tensors:
        if t.dtype not in SUPPORTED:
            raise TypeError(f"the triton backend takes float16/bfloat16/float32/float64 tensors, got {t.dtype}")
        if t.dim() >= 2 and t.shape[-2] * t.shape[-1] >= 2**31:  # the kernels index one batch entry in int32
            raise ValueError(f"the triton backend takes at most 2^31 - 1 elements per batch entry, got a tensor "
                             f"of shape {tuple(t.shape)}; split the rows or the weight columns")


@dataclass(frozen=True)
class PairSetup:
    """Everything the sum kernels need besides the data: kernel code, per-bandwidth coefficients,
    the shared center, flags and tiles."""
    kind: int
    coef: torch.Tensor
    nbw: int
    center: torch.Tensor
    finite: torch.Tensor  # (B,) bool: every point of the batch element is finite
    centered: bool
    sym: bool
    exclude: bool
    precision: str
    tau: float
    bf16_as_f32: bool

    def flags(self):
        return dict(KIND=self.kind, SYM=self.sym, EXCLUDE=self.exclude, CENTER=self.centered,
                    PREC=self.precision, BF16_AS_F32=self.bf16_as_f32, TAU=self.tau)


@functools.lru_cache(maxsize=256)
def _coefficients(kernel: str, bandwidths, dtype, device) -> torch.Tensor:
    """Per bandwidth, positive as in the C++ (csrc/pairwise_maps.h KernelMap::c): rbf 1/(2 sigma^2)
    and laplacian 1/sigma (the kernels take exp(-c s), exp(-c sqrt s)), imq sigma (C); polynomial
    its (gamma, coef0, degree); energy and linear have no scale. Kept per configuration: a new
    tensor per call would be a host-to-device copy per launch."""
    if kernel == "rbf":
        c = [1.0 / (2.0 * s * s) for s in bandwidths]
    elif kernel == "laplacian":
        c = [1.0 / s for s in bandwidths]
    elif kernel == "imq":
        c = [float(s) for s in bandwidths]
    elif kernel == "polynomial":
        c = [float(v) for v in bandwidths]
    elif kernel in ("energy", "linear"):
        c = [0.0]
    else:
        raise ValueError(f"kernel must be one of {tuple(KIND_CODES)}, got {kernel!r}")
    return torch.tensor(c, dtype=dtype, device=device)


def setup(x, y, kernel: str, bandwidths, precision: str, sym: bool, exclude: bool) -> PairSetup:
    """Centering (float32/float64 distance kernels only): c = mean of the rows of x (and y), shared by
    both sides, so s is unchanged and the norms the dot product rounds against are small. bf16/fp16
    inputs are not centered: rounding the centered values back to half would change the data.

    The center, taken in float64, is finite exactly when every point is (NaN and +-Inf propagate
    through the mean; float64 cannot overflow on float32 data): the NaN rule's test comes from the
    pass that centers. Uncentered inputs are scanned for it."""
    ct = _compute_dtype(x.dtype)
    coef = _coefficients(kernel, tuple(bandwidths), ct, x.device)
    centered = kernel not in DOT_KERNELS and x.dtype not in HALF_TYPES
    if centered:
        mean = x.mean(1, dtype=torch.float64) if sym else 0.5 * (x.mean(1, dtype=torch.float64) + y.mean(1, dtype=torch.float64))
        finite = torch.isfinite(mean).all(-1)
        center = mean.to(ct)
    else:
        center = torch.zeros((x.shape[0], x.shape[2]), dtype=ct, device=x.device)
        finite = _finite_per_batch(x) if sym else _finite_per_batch(x) & _finite_per_batch(y)
    tau = NEAR_FRACTION[precision]
    # the interpreter (CPU tensors) matmuls bf16 as raw uint16 bits: see pairwise_tiles.mma
    bf16_as_f32 = x.dtype == torch.bfloat16 and x.device.type != "cuda"
    return PairSetup(KIND_CODES[kernel], coef, coef.numel(), center.contiguous(), finite, centered, sym, exclude, precision,
                    tau, bf16_as_f32)


def _finite_per_batch(t: torch.Tensor) -> torch.Tensor:
    return all_finite(t.flatten(1), 1)


def _nan_unless(ok: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """out (B, ...) with NaN for the batch elements where ok (B,) is False."""
    return torch.where(ok.reshape(ok.shape + (1,) * (out.dim() - 1)), out, float("nan"))


def row_sums(x, y, w, pl: PairSetup, a=None, tri: bool = False) -> torch.Tensor:
    """T_bip = sum_j K(x_bi, y_bj) w_bjp as (B, N, P); with `a`, the per-row-block partials
    sum_i a_bip T_bip as (B, ceil(N / BM), P) instead; tri (symmetric, a = w): partials that add
    up to the same total from each unordered tile pair once. Compute dtype."""
    bsz, n, d = x.shape
    m, p = y.shape[1], w.shape[2]
    bl = blocks("rows", x.device, d, p, x.dtype)
    row_blocks = triton.cdiv(n, bl.rows)
    shape = (bsz, row_blocks, p) if a is not None else (bsz, n, p)
    out = torch.empty(shape, dtype=pl.coef.dtype, device=x.device)
    grid = (row_blocks, bsz, triton.cdiv(p, bl.weights))
    tri = tri and pl.sym and a is not None and bl.rows == bl.cols
    pair_rows_kernel[grid](x, y, pl.center, pl.coef, pl.nbw, w, w if a is None else a, out, n, m, d, p,
                           REDUCE=a is not None, TRI=tri, **pl.flags(), **bl.sums())
    return out


def row_grads(x, y, u, v, pl: PairSetup) -> torch.Tensor:
    """sum_j G_ij 2 (x_i - y_j) (linear kernel: sum_j G_ij y_j) with G_ij = dk/ds(s_ij) sum_p u_ip v_jp:
    (B, N, d), compute dtype."""
    bsz, n, d = x.shape
    m, p = y.shape[1], u.shape[2]
    bl = blocks("grad", x.device, d, p, x.dtype)
    out = torch.empty((bsz, n, d), dtype=pl.coef.dtype, device=x.device)
    grid = (triton.cdiv(n, bl.rows), bsz, triton.cdiv(d, bl.out_feat))
    pair_grad_kernel[grid](x, y, pl.center, pl.coef, pl.nbw, u, v, out, n, m, d, p, **pl.flags(), **bl.sums(),
                           BDO=bl.out_feat)
    return out


# ---- the kernel-module protocol ----------------------------------------------------------------

def kernel_sum_forward(x, y, a, b, kernel, bandwidths, precision="ieee"):
    """out_bp = sum_ij a_bip k(x_bi, y_bj) b_bjp: (B, P)."""
    _check(precision, x, y, a, b)
    pl = setup(x, y, kernel, bandwidths, precision, sym=False, exclude=False)
    ok = pl.finite & _finite_per_batch(a) & _finite_per_batch(b)
    return _nan_unless(ok, row_sums(x, y, b, pl, a=a).sum(1)).to(x.dtype)


def kernel_sum_backward(g, x, y, a, b, kernel, bandwidths, needs, precision="ieee"):
    """gx_i = sum_j G_ij 2 (x_i - y_j), gy_j = sum_i G_ij 2 (y_j - x_i) with G_ij = dk/ds sum_p g_p a_ip b_jp
    (linear: gx = G y, gy = G^T x); ga = g * (K b), gb = g * (K^T a)."""
    _check(precision, g, x, y, a, b)
    pl = setup(x, y, kernel, bandwidths, precision, sym=False, exclude=False)
    gw = g.unsqueeze(1)
    gx = row_grads(x, y, (a * gw).contiguous(), b, pl).to(x.dtype) if needs[0] else None
    gy = row_grads(y, x, (b * gw).contiguous(), a, pl).to(y.dtype) if needs[1] else None
    ga = (row_sums(x, y, b, pl) * gw).to(a.dtype) if needs[2] else None
    gb = (row_sums(y, x, a, pl) * gw).to(b.dtype) if needs[3] else None
    return gx, gy, ga, gb


def kernel_sum_sym_forward(x, a, kernel, bandwidths, exclude_diag, precision="ieee"):
    """out_bp = sum_ij a_bip k(x_bi, x_bj) a_bjp over i != j when exclude_diag: (B, P)."""
    _check(precision, x, a)
    pl = setup(x, x, kernel, bandwidths, precision, sym=True, exclude=bool(exclude_diag))
    ok = pl.finite & _finite_per_batch(a)
    return _nan_unless(ok, row_sums(x, x, a, pl, a=a, tri=True).sum(1)).to(x.dtype)


def kernel_sum_sym_backward(g, x, a, kernel, bandwidths, exclude_diag, needs, precision="ieee"):
    """x_i appears as both arguments, so gx = 2 * (the one-sided gradient) and ga = 2 g * (K a)."""
    _check(precision, g, x, a)
    pl = setup(x, x, kernel, bandwidths, precision, sym=True, exclude=bool(exclude_diag))
    gw = g.unsqueeze(1)
    gx = (2.0 * row_grads(x, x, (a * gw).contiguous(), a, pl)).to(x.dtype) if needs[0] else None
    ga = (2.0 * row_sums(x, x, a, pl) * gw).to(a.dtype) if needs[1] else None
    return gx, ga


@functools.lru_cache(maxsize=64)
def _pooled_weights(n: int, m: int, unbiased: bool, dtype, device) -> torch.Tensor:
    """A (N + M, P) with sum_p A_ip A_jp the weight of the pair (i, j) of the pooled sample [x; y],
    from implicitdiv.statistics.mmd2_weights: xx^2 on x-x, yy^2 on y-y, cross_x cross_y / 2 on each
    ordered x-y pair. Those three form a 2 x 2 matrix per pair of groups whose Cholesky rows
    (l11, 0) for x and (l21, l22) for y are the weights (biased: l22 = 0, so P = 1); the unbiased
    sum leaves the diagonal out."""
    w = mmd2_weights(n, m, unbiased)
    l11 = w.xx
    l21 = 0.5 * w.cross_x * w.cross_y / l11
    if unbiased:
        rows = [[l11, 0.0]] * n + [[l21, math.sqrt(w.yy * w.yy - l21 * l21)]] * m
    else:
        rows = [[l11]] * n + [[l21]] * m
    return torch.tensor(rows, dtype=dtype, device=device)


def _pooled(x, y, unbiased):
    """z = [x; y] per batch element and the pooled weights, batch-expanded."""
    z = torch.cat([x, y], 1)
    w = _pooled_weights(x.shape[1], y.shape[1], bool(unbiased), _compute_dtype(x.dtype), x.device)
    return z, w.expand(x.shape[0], -1, -1).contiguous()


def mmd2_forward(x, y, kernel, bandwidths, unbiased, precision="ieee"):
    """MMD^2 of x (B, N, d) and y (B, M, d): (B,). One launch: the symmetric sum over the pooled
    sample with the weights of _pooled_weights, each unordered tile pair once."""
    _check(precision, x, y)
    z, w = _pooled(x, y, unbiased)
    pl = setup(z, z, kernel, bandwidths, precision, sym=True, exclude=bool(unbiased))
    return _nan_unless(pl.finite, row_sums(z, z, w, pl, a=w, tri=True).sum((1, 2))).to(x.dtype)


def mmd2_backward(g, x, y, kernel, bandwidths, unbiased, needs, precision="ieee"):
    """(gx, gy) of g * MMD^2: the pooled symmetric sum's gradient, 2 sum_j G_ij (z_i - z_j) with
    G_ij = dk/ds g sum_p A_ip A_jp, in one launch, split back into x and y."""
    _check(precision, g, x, y)
    z, w = _pooled(x, y, unbiased)
    pl = setup(z, z, kernel, bandwidths, precision, sym=True, exclude=bool(unbiased))
    gz = 2.0 * row_grads(z, z, (w * g.reshape(-1, 1, 1).to(w.dtype)).contiguous(), w, pl)
    n = x.shape[1]  # copies, not views of gz: an op's outputs may not alias each other
    gx = gz[:, :n].to(x.dtype, copy=True) if needs[0] else None
    gy = gz[:, n:].to(y.dtype, copy=True) if needs[1] else None
    return gx, gy


@dataclass(frozen=True)
class MixtureSetup:
    z: torch.Tensor  # centered rows, compute dtype
    means: torch.Tensor  # centered means
    e: torch.Tensor  # exp(-lv)
    q: torch.Tensor  # -2 m e
    cst: torch.Tensor  # sum_k (m^2 e + lv) + d log 2 pi
    precision: str


def mixture_setup(z, means, logvars, precision) -> MixtureSetup:
    ct = _compute_dtype(z.dtype)
    z, means, logvars = z.to(ct), means.to(ct), logvars.to(ct)
    center = means.mean(0, keepdim=True)
    zc, mc = (z - center).contiguous(), (means - center).contiguous()
    e = torch.exp(-logvars)
    cst = (mc * mc * e + logvars).sum(1) + z.shape[1] * LOG_2PI
    return MixtureSetup(zc, mc, e.contiguous(), (-2.0 * mc * e).contiguous(), cst.contiguous(), precision)


def mixture_lse(mp: MixtureSetup) -> torch.Tensor:
    """lse_i = log sum_j exp(score_ij): (N,), compute dtype."""
    n, d = mp.z.shape
    m = mp.means.shape[0]
    bl = blocks("mixture", mp.z.device, d, 1, mp.z.dtype)
    lse = torch.empty(n, dtype=mp.z.dtype, device=mp.z.device)
    mixture_lse_kernel[(triton.cdiv(n, bl.rows),)](mp.z, mp.e, mp.q, mp.cst, lse, n, m, d, PREC=mp.precision,
                                                   BM=bl.rows, BN=bl.cols, BD=bl.feat, num_warps=bl.warps)
    return lse


def mixture_logpdf_forward(z, means, logvars, precision="ieee"):
    """out_i = log (1/M) sum_j N(z_i; m_j, diag exp(lv_j)) = lse_i - log M: (N,); NaN in a row whose z
    holds a NaN or an Inf, everywhere when a component does."""
    _check(precision, z, means, logvars)
    mp = mixture_setup(z, means, logvars, precision)
    out = mixture_lse(mp) - math.log(means.shape[0])
    ok = all_finite(z, 1) & all_finite(means) & all_finite(logvars)  # the NaN rule: per row of z, everywhere
    return torch.where(ok, out, float("nan")).to(z.dtype)


def mixture_logpdf_backward(g, z, means, logvars, out, needs, precision="ieee"):
    """With R_ij = exp(score_ij - lse_i): gz_i = g_i sum_j R_ij (m_j - z_i) e_j,
    gm_j = sum_i g_i R_ij (z_i - m_j) e_j, glv_j = sum_i g_i R_ij ((z_i - m_j)^2 e_j - 1) / 2."""
    _check(precision, g, z, means, logvars, out)
    mp = mixture_setup(z, means, logvars, precision)
    n, d = mp.z.shape
    m = mp.means.shape[0]
    if out.dtype == mp.z.dtype:
        lse = (out.to(mp.z.dtype) + math.log(m)).contiguous()
    else:  # a half-precision `out` is too coarse to normalize the responsibilities: recompute it
        lse = mixture_lse(mp)
    gc = g.to(mp.z.dtype).contiguous()
    bl = blocks("mixture_grad", z.device, d, 1, mp.z.dtype)
    tiles = dict(PREC=precision, BM=bl.rows, BN=bl.cols, BD=bl.feat, BDO=bl.out_feat, num_warps=bl.warps)
    gz = gm = glv = None
    if needs[0]:
        gz = torch.empty_like(mp.z)
        mixture_grad_z_kernel[(triton.cdiv(n, bl.rows), triton.cdiv(d, bl.out_feat))](
            mp.z, mp.e, mp.q, mp.cst, lse, gc, gz, n, m, d, **tiles)
        gz = gz.to(z.dtype)
    if needs[1] or needs[2]:
        gm_buf = torch.empty_like(mp.means) if needs[1] else mp.means
        glv_buf = torch.empty_like(mp.means) if needs[2] else mp.means
        mixture_grad_components_kernel[(triton.cdiv(m, bl.cols), triton.cdiv(d, bl.out_feat))](
            mp.z, mp.e, mp.q, mp.cst, mp.means, lse, gc, gm_buf, glv_buf, n, m, d,
            NEED_M=bool(needs[1]), NEED_LV=bool(needs[2]), **tiles)
        gm = gm_buf.to(means.dtype) if needs[1] else None
        glv = glv_buf.to(logvars.dtype) if needs[2] else None
    return gz, gm, glv
