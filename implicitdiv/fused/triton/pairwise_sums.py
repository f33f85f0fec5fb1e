"""Triton kernels of the weighted kernel sums, tiled like FlashAttention: a program owns a block of
rows of x and streams blocks of rows of y; the kernel tile lives in registers only.

pair_rows_kernel  T_ip = sum_j K_ij w_jp           (REDUCE: per-row-block partials sum_i a_ip T_ip;
                                                   TRI: of a symmetric sum, from the column blocks
                                                   j >= the row block only, the others counted twice)
pair_grad_kernel  g_i  = 2 sum_j G_ij (x_i - y_j),  G_ij = dk/ds(s_ij) sum_p u_ip v_jp
                  (kernels of s = x.y: g_i = sum_j G_ij y_j)

Grids: (row blocks, batch, weight-column blocks) and (row blocks, batch, feature blocks of the
output). With one or two weight columns (SMALL_P, e.g. the P = 1 of mmd2) the products with the
weights are broadcast sums over BP = P columns instead of a tl.dot padded to 16 columns.
Each output element is written by exactly one program: no atomics, fixed summation order.
"""
import triton
import triton.language as tl

from .pairwise_tiles import (LINEAR, POLYNOMIAL, any_true, dot_tile, kernel_slope, kernel_tile, load_rows, mma,
                             row_norms, sq_dist_tile)


@triton.jit
def pair_rows_kernel(x, y, center, coef, nbw, w, a, out, N, M, d, P,
                     KIND: tl.constexpr, SYM: tl.constexpr, EXCLUDE: tl.constexpr, CENTER: tl.constexpr,
                     REDUCE: tl.constexpr, TRI: tl.constexpr, PREC: tl.constexpr, BF16_AS_F32: tl.constexpr,
                     TAU: tl.constexpr, SMALL_P: tl.constexpr, BM: tl.constexpr, BN: tl.constexpr, BD: tl.constexpr,
                     BP: tl.constexpr):
    """T_ip = sum_j K(x_i, y_j) w_jp for a block of rows and weight columns; stored as T (B, N, P),
    or with REDUCE as the row block's partial sum_i a_ip T_ip into (B, row blocks, P). TRI (a
    symmetric REDUCE with w = a and BM == BN): the row block's tile pairs with column blocks at or
    after its own, an off-diagonal one standing for its mirror too, so the partials add up to the
    same total from half the pairs."""
    pid_m = tl.program_id(0)
    pid_b = tl.program_id(1).to(tl.int64)
    pid_p = tl.program_id(2)
    DT = x.dtype.element_ty
    CT = center.dtype.element_ty
    x += pid_b * N * d
    y += pid_b * M * d
    center += pid_b * d
    w += pid_b * M * P
    rows = pid_m * BM + tl.arange(0, BM)
    rmask = rows < N
    ps = pid_p * BP + tl.arange(0, BP)
    pmask = ps < P
    nx = row_norms(x, center, rows, rmask, d, CENTER, BM, BD)
    acc = tl.zeros([BM, BP], dtype=CT)
    first = 0
    if TRI:
        first = pid_m * BM
    for j0 in range(first, M, BN):
        cols = j0 + tl.arange(0, BN)
        cmask = cols < M
        k = kernel_tile(x, y, center, coef, nbw, rows, cols, rmask, cmask, nx, d, KIND, SYM, EXCLUDE, CENTER, PREC,
                        BF16_AS_F32, TAU, BM, BN, BD)
        if TRI:
            k = k * tl.where(j0 == first, 1.0, 2.0)
        wt = tl.load(w + cols[:, None] * P + ps[None, :], mask=cmask[:, None] & pmask[None, :], other=0.0)
        if SMALL_P:
            acc += tl.sum(k[:, :, None] * wt.to(CT)[None, :, :], 1)
        else:
            acc += mma(k, wt, DT, PREC, BF16_AS_F32)
    if REDUCE:
        a += pid_b * N * P
        at = tl.load(a + rows[:, None] * P + ps[None, :], mask=rmask[:, None] & pmask[None, :], other=0.0)
        part = tl.sum(at.to(CT) * acc, 0)
        nblocks = tl.num_programs(0)
        tl.store(out + (pid_b * nblocks + pid_m) * P + ps, part, mask=pmask)
    else:
        out += pid_b * N * P
        tl.store(out + rows[:, None] * P + ps[None, :], acc, mask=rmask[:, None] & pmask[None, :])


@triton.jit
def pair_grad_kernel(x, y, center, coef, nbw, u, v, out, N, M, d, P,
                     KIND: tl.constexpr, SYM: tl.constexpr, EXCLUDE: tl.constexpr, CENTER: tl.constexpr,
                     PREC: tl.constexpr, BF16_AS_F32: tl.constexpr, TAU: tl.constexpr, SMALL_P: tl.constexpr,
                     BM: tl.constexpr, BN: tl.constexpr, BD: tl.constexpr, BP: tl.constexpr, BDO: tl.constexpr):
    """out_i = 2 (x_i rowsum(G)_i - (G y)_i) = 2 sum_j G_ij (x_i - y_j) for features [k0, k0 + BDO),
    G_ij = dk/ds(s_ij) sum_p u_ip v_jp; near pairs add G_ij (x_i - y_j) from explicit differences.
    Kernels of s = x.y: out_i = (G y)_i (linear: G = u v^T)."""
    pid_m = tl.program_id(0)
    pid_b = tl.program_id(1).to(tl.int64)
    pid_k = tl.program_id(2)
    DT = x.dtype.element_ty
    CT = center.dtype.element_ty
    x += pid_b * N * d
    y += pid_b * M * d
    center += pid_b * d
    u += pid_b * N * P
    v += pid_b * M * P
    rows = pid_m * BM + tl.arange(0, BM)
    rmask = rows < N
    k0 = pid_k * BDO
    ko = k0 + tl.arange(0, BDO)
    k_end = tl.minimum(k0 + BDO, d)
    nx = row_norms(x, center, rows, rmask, d, CENTER, BM, BD)
    rowsum = tl.zeros([BM], dtype=CT)
    acc = tl.zeros([BM, BDO], dtype=CT)
    for j0 in range(0, M, BN):
        cols = j0 + tl.arange(0, BN)
        cmask = cols < M
        wt = tl.zeros([BM, BN], dtype=CT)
        for p0 in range(0, P, BP):
            ps = p0 + tl.arange(0, BP)
            pmask = ps < P
            ut = tl.load(u + rows[:, None] * P + ps[None, :], mask=rmask[:, None] & pmask[None, :], other=0.0)
            if SMALL_P:
                vt = tl.load(v + cols[:, None] * P + ps[None, :], mask=cmask[:, None] & pmask[None, :], other=0.0)
                wt += tl.sum(ut.to(CT)[:, None, :] * vt.to(CT)[None, :, :], 2)
            else:
                vt = tl.load(v + cols[None, :] * P + ps[:, None], mask=cmask[None, :] & pmask[:, None], other=0.0)
                wt += mma(ut, vt, DT, PREC, BF16_AS_F32)
        keep = rmask[:, None] & cmask[None, :]
        if KIND == LINEAR or KIND == POLYNOMIAL:
            if EXCLUDE:
                keep = keep & (rows[:, None] != cols[None, :])
            if KIND == POLYNOMIAL:
                s = dot_tile(x, y, center, rows, cols, rmask, cmask, d, PREC, BF16_AS_F32, BM, BN, BD)
                wt = wt * kernel_slope(s, coef, nbw, KIND)
            g = tl.where(keep, wt, 0.0)
        else:
            s, near = sq_dist_tile(x, y, center, rows, cols, rmask, cmask, nx, d, SYM, CENTER, PREC, BF16_AS_F32, TAU,
                                   BM, BN, BD)
            if SYM:  # x_i - x_i = 0: the diagonal contributes nothing, whatever dk/ds is there
                keep = keep & (rows[:, None] != cols[None, :])
            g = tl.where(keep, wt * kernel_slope(s, coef, nbw, KIND), 0.0)
            if any_true(near):  # near pairs: sum_j G_ij (x_i - y_j) from explicit differences
                g_near = tl.where(near, g, 0.0)
                g = tl.where(near, 0.0, g)
                for k in range(k0, k_end):
                    xk = tl.load(x + rows * d + k, mask=rmask, other=0.0).to(CT)
                    yk = tl.load(y + cols * d + k, mask=cmask, other=0.0).to(CT)
                    part = tl.sum(g_near * (xk[:, None] - yk[None, :]), 1)
                    acc -= tl.where(ko[None, :] == k, part[:, None], 0.0)  # res below negates acc
        g_dot = g.to(DT)
        rowsum += tl.sum(g_dot.to(CT), 1)
        yt = load_rows(y, center, cols, cmask, k0, d, CENTER, BDO)
        acc += mma(g_dot, yt, DT, PREC, BF16_AS_F32)
    if KIND == LINEAR or KIND == POLYNOMIAL:
        res = acc
    else:
        xt = load_rows(x, center, rows, rmask, k0, d, CENTER, BDO)
        res = 2.0 * (xt * rowsum[:, None] - acc)
    out += pid_b * N * d
    tl.store(out + rows[:, None] * d + ko[None, :], res, mask=rmask[:, None] & (ko[None, :] < d))
