"""Triton kernels of the Gaussian-mixture log-density, tiled like FlashAttention with an online
logsumexp over the components.

With e_j = exp(-lv_j), q_j = -2 m_j e_j and cst_j = sum_k (m_jk^2 e_jk + lv_jk) + d log 2 pi
(per component, O(M d), prepared by the launcher),

    score_ij = -1/2 sum_k [(z_ik - m_jk)^2 e_jk + lv_jk + log 2 pi] = -1/2 ([z_i^2, z_i] . [e_j, q_j] + cst_j)

so a tile of scores is two dot products. z and m arrive centered by one shared vector, which
leaves z - m unchanged and keeps the expanded square well conditioned. R_ij = exp(score_ij - lse_i).
"""
import triton
import triton.language as tl


@triton.jit
def _load(base, rows, rmask, ks, d):
    """base[rows, ks] of a row-major (rows, d) array: a [rows, ks] block, 0 outside."""
    return tl.load(base + rows[:, None] * d + ks[None, :], mask=rmask[:, None] & (ks[None, :] < d), other=0.0)


@triton.jit
def _load_t(base, rows, rmask, ks, d):
    """base[rows, ks] transposed: a [ks, rows] block, 0 outside."""
    return tl.load(base + rows[None, :] * d + ks[:, None], mask=rmask[None, :] & (ks[:, None] < d), other=0.0)


@triton.jit
def mixture_scores(z, e, q, cst, rows, cols, rmask, cmask, d, PREC: tl.constexpr,
                   BM: tl.constexpr, BN: tl.constexpr, BD: tl.constexpr):
    """score_ij for a block of rows of z and a block of components: [BM, BN]."""
    acc = tl.zeros([BM, BN], dtype=z.dtype.element_ty)
    for k0 in range(0, d, BD):
        ks = k0 + tl.arange(0, BD)
        zt = _load(z, rows, rmask, ks, d)
        acc += tl.dot(zt * zt, _load_t(e, cols, cmask, ks, d), input_precision=PREC)
        acc += tl.dot(zt, _load_t(q, cols, cmask, ks, d), input_precision=PREC)
    c = tl.load(cst + cols, mask=cmask, other=0.0)
    return -0.5 * (acc + c[None, :])


@triton.jit
def mixture_scores_t(z, e, q, cst, rows, cols, rmask, cmask, d, PREC: tl.constexpr,
                     BM: tl.constexpr, BN: tl.constexpr, BD: tl.constexpr):
    """The same scores with components first: [BN, BM]."""
    acc = tl.zeros([BN, BM], dtype=z.dtype.element_ty)
    for k0 in range(0, d, BD):
        ks = k0 + tl.arange(0, BD)
        zt = _load_t(z, rows, rmask, ks, d)
        acc += tl.dot(_load(e, cols, cmask, ks, d), zt * zt, input_precision=PREC)
        acc += tl.dot(_load(q, cols, cmask, ks, d), zt, input_precision=PREC)
    c = tl.load(cst + cols, mask=cmask, other=0.0)
    return -0.5 * (acc + c[:, None])


@triton.jit
def mixture_lse_kernel(z, e, q, cst, lse, N, M, d, PREC: tl.constexpr,
                       BM: tl.constexpr, BN: tl.constexpr, BD: tl.constexpr):
    """lse_i = log sum_j exp(score_ij); NaN where any score of the row is NaN."""
    rows = tl.program_id(0) * BM + tl.arange(0, BM)
    rmask = rows < N
    CT = z.dtype.element_ty
    run_max = tl.zeros([BM], dtype=CT) - float("inf")
    run_sum = tl.zeros([BM], dtype=CT)
    bad = tl.zeros([BM], dtype=tl.int32)
    for j0 in range(0, M, BN):
        cols = j0 + tl.arange(0, BN)
        cmask = cols < M
        sc = mixture_scores(z, e, q, cst, rows, cols, rmask, cmask, d, PREC, BM, BN, BD)
        is_nan = (sc != sc) & cmask[None, :]
        bad = bad | tl.max(is_nan.to(tl.int32), 1)
        sc = tl.where(cmask[None, :] & (sc == sc), sc, float("-inf"))
        new_max = tl.maximum(run_max, tl.max(sc, 1))
        shift = tl.where(new_max == float("-inf"), 0.0, new_max)
        run_sum = run_sum * tl.exp(run_max - shift) + tl.sum(tl.exp(sc - shift[:, None]), 1)
        run_max = new_max
    out = tl.where(bad > 0, float("nan"), run_max + tl.log(run_sum))
    tl.store(lse + rows, out, mask=rmask)


@triton.jit
def mixture_grad_z_kernel(z, e, q, cst, lse, g, gz, N, M, d, PREC: tl.constexpr,
                          BM: tl.constexpr, BN: tl.constexpr, BD: tl.constexpr, BDO: tl.constexpr):
    """gz_i = -g_i (z_i * (R e)_i + (R q)_i / 2) = g_i sum_j R_ij (m_j - z_i) e_j."""
    rows = tl.program_id(0) * BM + tl.arange(0, BM)
    rmask = rows < N
    ko = tl.program_id(1) * BDO + tl.arange(0, BDO)
    CT = z.dtype.element_ty
    lse_r = tl.load(lse + rows, mask=rmask, other=0.0)
    re = tl.zeros([BM, BDO], dtype=CT)
    rq = tl.zeros([BM, BDO], dtype=CT)
    for j0 in range(0, M, BN):
        cols = j0 + tl.arange(0, BN)
        cmask = cols < M
        sc = mixture_scores(z, e, q, cst, rows, cols, rmask, cmask, d, PREC, BM, BN, BD)
        r = tl.where(rmask[:, None] & cmask[None, :], tl.exp(sc - lse_r[:, None]), 0.0)
        re += tl.dot(r, _load(e, cols, cmask, ko, d), input_precision=PREC)
        rq += tl.dot(r, _load(q, cols, cmask, ko, d), input_precision=PREC)
    g_r = tl.load(g + rows, mask=rmask, other=0.0)
    res = -g_r[:, None] * (_load(z, rows, rmask, ko, d) * re + 0.5 * rq)
    tl.store(gz + rows[:, None] * d + ko[None, :], res, mask=rmask[:, None] & (ko[None, :] < d))


@triton.jit
def mixture_grad_components_kernel(z, e, q, cst, m, lse, g, gm, glv, N, M, d, PREC: tl.constexpr,
                                   NEED_M: tl.constexpr, NEED_LV: tl.constexpr,
                                   BM: tl.constexpr, BN: tl.constexpr, BD: tl.constexpr, BDO: tl.constexpr):
    """With G_ij = g_i R_ij, c_j = sum_i G_ij, A1 = G^T z, A2 = G^T z^2 (a program owns components):
    gm_j = e_j (A1_j - m_j c_j),  glv_j = e_j (A2_j - 2 m_j A1_j + m_j^2 c_j) / 2 - c_j / 2."""
    cols = tl.program_id(0) * BN + tl.arange(0, BN)
    cmask = cols < M
    ko = tl.program_id(1) * BDO + tl.arange(0, BDO)
    CT = z.dtype.element_ty
    colsum = tl.zeros([BN], dtype=CT)
    a1 = tl.zeros([BN, BDO], dtype=CT)
    a2 = tl.zeros([BN, BDO], dtype=CT)
    for i0 in range(0, N, BM):
        rows = i0 + tl.arange(0, BM)
        rmask = rows < N
        sc = mixture_scores_t(z, e, q, cst, rows, cols, rmask, cmask, d, PREC, BM, BN, BD)
        lse_r = tl.load(lse + rows, mask=rmask, other=0.0)
        g_r = tl.load(g + rows, mask=rmask, other=0.0)
        gt = tl.where(cmask[:, None] & rmask[None, :], tl.exp(sc - lse_r[None, :]) * g_r[None, :], 0.0)
        colsum += tl.sum(gt, 1)
        zt = _load(z, rows, rmask, ko, d)
        a1 += tl.dot(gt, zt, input_precision=PREC)
        if NEED_LV:
            a2 += tl.dot(gt, zt * zt, input_precision=PREC)
    et = _load(e, cols, cmask, ko, d)
    mt = _load(m, cols, cmask, ko, d)
    c = colsum[:, None]
    omask = cmask[:, None] & (ko[None, :] < d)
    offs = cols[:, None] * d + ko[None, :]
    if NEED_M:
        tl.store(gm + offs, et * (a1 - mt * c), mask=omask)
    if NEED_LV:
        tl.store(glv + offs, 0.5 * et * (a2 - 2.0 * mt * a1 + mt * mt * c) - 0.5 * c, mask=omask)
