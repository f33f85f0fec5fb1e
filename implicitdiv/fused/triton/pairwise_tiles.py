"""Tile-level building blocks of the Triton pairwise engine: loading row blocks, the squared
distances of a (rows x cols) tile through one tensor-core dot product, and the kernel map and its
derivative over a list of bandwidths.

Squared distances use s_ij = |x_i - c|^2 + |y_j - c|^2 - 2 (x_i - c).(y_j - c) with c a center
shared by both sets (translation does not change s; it shrinks the norms the dot product rounds
against). The absolute error of that form is about eps * (|x_i - c|^2 + |y_j - c|^2), large
relative to s for near points, so every pair with s < TAU * (|x_i - c|^2 + |y_j - c|^2) is
recomputed from explicit differences of the raw inputs, and i == j in a symmetric sum is exactly 0.

Compute dtype CT is the element type of the `coef` pointer (float64 for float64 inputs, float32
otherwise); dot operands are cast to the input element type DT (tensor cores for bf16/fp16).
BF16_AS_F32 (set by the launcher only under the interpreter, whose tl.dot multiplies the uint16 bit
patterns it stores bf16 in) rounds the operands to bf16 and multiplies them in float32: the same
exact products and float32 accumulation as the tensor cores.
"""
import triton
import triton.language as tl

from ..._codes import KERNELS

KIND_CODES = {name: code for code, name in enumerate(KERNELS)}
RBF, LAPLACIAN, IMQ, ENERGY, LINEAR, POLYNOMIAL = (
    tl.constexpr(KIND_CODES[name]) for name in ("rbf", "laplacian", "imq", "energy", "linear", "polynomial"))


@triton.jit
def load_rows(base, center, rows, rmask, k0, d, CENTER: tl.constexpr, BD: tl.constexpr):
    """(x_rows - c)[:, k0:k0+BD] as a [rows, BD] block in the compute dtype, 0 outside the data."""
    ks = k0 + tl.arange(0, BD)
    mask = rmask[:, None] & (ks[None, :] < d)
    v = tl.load(base + rows[:, None] * d + ks[None, :], mask=mask, other=0.0).to(center.dtype.element_ty)
    if CENTER:
        c = tl.load(center + ks, mask=ks < d, other=0.0)
        v = tl.where(mask, v - c[None, :], 0.0)
    return v


@triton.jit
def load_cols(base, center, cols, cmask, k0, d, CENTER: tl.constexpr, BD: tl.constexpr):
    """(y_cols - c)[:, k0:k0+BD] transposed: a [BD, cols] block in the compute dtype."""
    ks = k0 + tl.arange(0, BD)
    mask = cmask[None, :] & (ks[:, None] < d)
    v = tl.load(base + cols[None, :] * d + ks[:, None], mask=mask, other=0.0).to(center.dtype.element_ty)
    if CENTER:
        c = tl.load(center + ks, mask=ks < d, other=0.0)
        v = tl.where(mask, v - c[:, None], 0.0)
    return v


@triton.jit
def row_norms(x, center, rows, rmask, d, CENTER: tl.constexpr, BM: tl.constexpr, BD: tl.constexpr):
    """|x_i - c|^2 for a block of rows."""
    acc = tl.zeros([BM], dtype=center.dtype.element_ty)
    for k0 in range(0, d, BD):
        v = load_rows(x, center, rows, rmask, k0, d, CENTER, BD)
        acc += tl.sum(v * v, 1)
    return acc


@triton.jit
def mma(a, b, DT: tl.constexpr, PREC: tl.constexpr, BF16_AS_F32: tl.constexpr):
    """a @ b with both operands rounded to DT; float32 (float64 for DT float64) accumulation."""
    if BF16_AS_F32:
        out = tl.dot(a.to(DT).to(tl.float32), b.to(DT).to(tl.float32), input_precision="ieee")
    else:
        out = tl.dot(a.to(DT), b.to(DT), input_precision=PREC)
    return out


@triton.jit
def any_true(mask):
    return tl.max(tl.max(mask.to(tl.int32), 1), 0) > 0


@triton.jit
def sq_dist_tile(x, y, center, rows, cols, rmask, cmask, nx, d, SYM: tl.constexpr, CENTER: tl.constexpr,
                 PREC: tl.constexpr, BF16_AS_F32: tl.constexpr, TAU: tl.constexpr,
                 BM: tl.constexpr, BN: tl.constexpr, BD: tl.constexpr):
    """(s, near): the squared distances of the tile and the mask of pairs recomputed exactly."""
    DT = x.dtype.element_ty
    CT = center.dtype.element_ty
    dot = tl.zeros([BM, BN], dtype=CT)
    ny = tl.zeros([BN], dtype=CT)
    for k0 in range(0, d, BD):
        xc = load_rows(x, center, rows, rmask, k0, d, CENTER, BD)
        yc = load_cols(y, center, cols, cmask, k0, d, CENTER, BD)
        ny += tl.sum(yc * yc, 0)
        dot += mma(xc, yc, DT, PREC, BF16_AS_F32)
    scale = nx[:, None] + ny[None, :]
    s = scale - 2.0 * dot
    s = tl.where(s < 0.0, 0.0, s)  # not tl.maximum: NaN must survive
    near = (s < TAU * scale) & rmask[:, None] & cmask[None, :]
    if SYM:
        diag = rows[:, None] == cols[None, :]
        s = tl.where(diag, 0.0, s)
        near = near & (rows[:, None] != cols[None, :])
    if any_true(near):
        exact = tl.zeros([BM, BN], dtype=CT)
        for k in range(0, d):
            xk = tl.load(x + rows * d + k, mask=rmask, other=0.0).to(CT)
            yk = tl.load(y + cols * d + k, mask=cmask, other=0.0).to(CT)
            diff = xk[:, None] - yk[None, :]
            exact += diff * diff
        s = tl.where(near, exact, s)
    return s, near


@triton.jit
def dot_tile(x, y, center, rows, cols, rmask, cmask, d, PREC: tl.constexpr, BF16_AS_F32: tl.constexpr,
             BM: tl.constexpr, BN: tl.constexpr, BD: tl.constexpr):
    """x_i . y_j for the tile (uncentered), compute dtype."""
    s = tl.zeros([BM, BN], dtype=center.dtype.element_ty)
    for k0 in range(0, d, BD):
        xr = load_rows(x, center, rows, rmask, k0, d, False, BD)
        yr = load_cols(y, center, cols, cmask, k0, d, False, BD)
        s += mma(xr, yr, x.dtype.element_ty, PREC, BF16_AS_F32)
    return s


@triton.jit
def power(b, e):
    """b^e for a whole e >= 0 (a runtime scalar), by repeated products."""
    p = tl.full(b.shape, 1.0, b.dtype)
    for _ in range(0, e):
        p = p * b
    return p


@triton.jit
def polynomial_parts(s, coef):
    """(gamma s + c0)^(p - 1), gamma s + c0 and the slope factor p gamma, coef = (gamma, c0, p)."""
    gamma = tl.load(coef)
    base = gamma * s + tl.load(coef + 1)
    degree = tl.load(coef + 2)
    return power(base, degree.to(tl.int32) - 1), base, degree * gamma


@triton.jit
def kernel_value(s, coef, nbw, KIND: tl.constexpr):
    """sum over bandwidths of k(s): rbf exp(-c s) with c = 1/(2 sigma^2), laplacian exp(-c sqrt s)
    with c = 1/sigma, imq c/(c + s) with c = sigma; energy -sqrt(s) once; polynomial
    (gamma s + c0)^p with coef = (gamma, c0, p) and s the dot product."""
    if KIND == ENERGY:
        k = -tl.sqrt(s)
    elif KIND == POLYNOMIAL:
        below, base, _ = polynomial_parts(s, coef)
        k = below * base
    else:
        k = tl.zeros_like(s)
        if KIND == LAPLACIAN:
            r = tl.sqrt(s)
        for t in range(0, nbw):
            c = tl.load(coef + t)
            if KIND == RBF:
                k += tl.exp(-c * s)
            elif KIND == LAPLACIAN:
                k += tl.exp(-c * r)
            else:
                k += c / (c + s)
    return k


@triton.jit
def kernel_slope(s, coef, nbw, KIND: tl.constexpr):
    """dk/ds summed over bandwidths; 0 at s = 0 for the sqrt kernels (the symmetric subgradient);
    polynomial p gamma (gamma s + c0)^(p - 1)."""
    if KIND == POLYNOMIAL:
        below, _, slope = polynomial_parts(s, coef)
        k = below * slope
    elif KIND == ENERGY or KIND == LAPLACIAN:
        at_zero = s == 0.0
        r = tl.sqrt(tl.where(at_zero, 1.0, s))
        if KIND == ENERGY:
            k = -0.5 / r
        else:
            k = tl.zeros_like(s)
            for t in range(0, nbw):
                c = tl.load(coef + t)
                k -= c * tl.exp(-c * r)
            k = k * 0.5 / r
        k = tl.where(at_zero, 0.0, k)
    else:
        k = tl.zeros_like(s)
        for t in range(0, nbw):
            c = tl.load(coef + t)
            if KIND == RBF:
                k -= c * tl.exp(-c * s)
            else:
                q = c + s
                k -= c / (q * q)
    return k


@triton.jit
def kernel_tile(x, y, center, coef, nbw, rows, cols, rmask, cmask, nx, d, KIND: tl.constexpr, SYM: tl.constexpr,
                EXCLUDE: tl.constexpr, CENTER: tl.constexpr, PREC: tl.constexpr, BF16_AS_F32: tl.constexpr,
                TAU: tl.constexpr, BM: tl.constexpr, BN: tl.constexpr, BD: tl.constexpr):
    """K_ij for the tile, 0 outside the data and on i == j when EXCLUDE."""
    if KIND == LINEAR:
        k = dot_tile(x, y, center, rows, cols, rmask, cmask, d, PREC, BF16_AS_F32, BM, BN, BD)
    elif KIND == POLYNOMIAL:
        k = kernel_value(dot_tile(x, y, center, rows, cols, rmask, cmask, d, PREC, BF16_AS_F32, BM, BN, BD), coef, nbw,
                         KIND)
    else:
        s, near = sq_dist_tile(x, y, center, rows, cols, rmask, cmask, nx, d, SYM, CENTER, PREC, BF16_AS_F32, TAU,
                               BM, BN, BD)
        k = kernel_value(s, coef, nbw, KIND)
    keep = rmask[:, None] & cmask[None, :]
    if EXCLUDE:
        keep = keep & (rows[:, None] != cols[None, :])
    return tl.where(keep, k, 0.0)
