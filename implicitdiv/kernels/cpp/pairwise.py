"""The pairwise kernel-module protocol (see implicitdiv.ops.pairwise) on the C++ tiled engine.

The engine scores a pair as alpha <f_i, f_j> + t_i + t_j, maps it and reduces over j without
storing the N x M matrix (csrc/pairwise_engine.h). For the kernel sums, _C builds the features
(centered points and their squared norms, csrc/pairwise_points.h) and applies the chain rule itself,
so no torch op runs (and wakes torch's OpenMP threads) between the call and the engine. For the
mixture, this module builds the features in float64:

  f_i = [z_i^2, z_i],  f_j = [-w_j / 2, m_j w_j] with w = exp(-lv),  t_j = -1/2 sum(m_j^2 w_j + lv_j + log 2 pi)

(z and m shifted by the mean component, which leaves the density unchanged), and turns the engine's
per-row sums into gradients. The backward protocol runs one row pass per side (the columns' pass is
the row pass with the sides swapped), each writing only its own rows, so the bits do not depend on
the thread count. Sums with one weight column also have the training pass (kernel_sum_fused,
kernel_sum_sym_fused, mmd2_fused; csrc/pairwise_fused.h), which scores each pair once for the value
and every gradient; mmd2 runs its three sums in one call into _C. The sums' NaN rule is applied in
C++ by the pass that centers the points (csrc/pairwise_passes.h). mmd2_backward is not provided:
every mmd2 that needs a gradient runs the training pass.
"""
from __future__ import annotations

import math

import torch

from ... import _C
from .buffers import prepare

KERNEL_CODES = {"rbf": 0, "laplacian": 1, "imq": 2, "energy": 3, "linear": 4}
LOG_2PI = math.log(2.0 * math.pi)


def _threads() -> int:
    return max(1, torch.get_num_threads())


def _address(t):
    return 0 if t is None else t.data_ptr()


def _finite_mean(rows: torch.Tensor) -> torch.Tensor:
    """Mean over dim -2 of the rows with only finite entries (0 if none), in float64: (..., 1, d)."""
    rows = rows.double()
    finite = torch.isfinite(rows).all(-1, keepdim=True)
    total = torch.where(finite, rows, torch.zeros_like(rows)).sum(-2, keepdim=True)
    return total / finite.sum(-2, keepdim=True).clamp(min=1)


def _forward(x, a, y, b, kernel, bandwidths, sym: bool, exclude_diag: bool):
    batch, n, d = x.shape
    p = a.shape[-1]
    out = torch.empty((batch, p), dtype=torch.float64)
    m = n if sym else y.shape[1]
    _C.pairwise_sum_forward(x.dtype == torch.float64, KERNEL_CODES[kernel], list(bandwidths), sym, exclude_diag, batch,
                            n, m, d, p, x.data_ptr(), a.data_ptr(), _address(y), _address(b), out.data_ptr(), _threads())
    return out.to(x.dtype)


def _row_grads(x, a, y, b, g, kernel, bandwidths, sym: bool, exclude_diag: bool, needs, factor: float):
    """(grad x, grad a) of <out, g> for the side whose points are x, or None where not needed."""
    if not (needs[0] or needs[1]):
        return None, None
    batch, n, d = x.shape
    p = a.shape[-1]
    m = n if sym else y.shape[1]
    gx = torch.empty_like(x) if needs[0] else None
    ga = torch.empty_like(a) if needs[1] else None
    _C.pairwise_sum_rows_backward(x.dtype == torch.float64, KERNEL_CODES[kernel], list(bandwidths), sym, exclude_diag,
                                  batch, n, m, d, p, x.data_ptr(), a.data_ptr(), _address(y), _address(b), g.data_ptr(),
                                  factor, _address(gx), _address(ga), _threads())
    return gx, ga


# ---- the protocol ---------------------------------------------------------------------------------

def kernel_sum_forward(x, y, a, b, kernel, bandwidths):
    """out_bp = sum_ij a_bip k(x_bi, y_bj) b_bjp: (B, P)."""
    x, y, a, b = (prepare(t) for t in (x, y, a, b))
    return _forward(x, a, y, b, kernel, bandwidths, False, False)


def kernel_sum_backward(g, x, y, a, b, kernel, bandwidths, needs):
    """Gradients of <out, g> for x, y, a, b (None where not needed): with
    G_ij = dk/ds(s_ij) sum_p g_p a_ip b_jp, grad x_i = sum_j G_ij ds_ij/dx_i, grad a_ip = g_p (K b)_ip,
    and the same for y and b with the sides swapped."""
    x, y, a, b, g = (prepare(t) for t in (x, y, a, b, g))
    gx, ga = _row_grads(x, a, y, b, g, kernel, bandwidths, False, False, (needs[0], needs[2]), 1.0)
    gy, gb = _row_grads(y, b, x, a, g, kernel, bandwidths, False, False, (needs[1], needs[3]), 1.0)
    return gx, gy, ga, gb


def kernel_sum_sym_forward(x, a, kernel, bandwidths, exclude_diag):
    """out_bp = sum_ij a_bip k(x_bi, x_bj) a_bjp (i != j when exclude_diag), each unordered tile pair once."""
    x, a = prepare(x), prepare(a)
    return _forward(x, a, None, None, kernel, bandwidths, True, bool(exclude_diag))


def kernel_sum_sym_backward(g, x, a, kernel, bandwidths, exclude_diag, needs):
    """Gradients of <out, g> for x and a: both sit on both sides of every pair, hence the factor 2."""
    x, a, g = prepare(x), prepare(a), prepare(g)
    return _row_grads(x, a, None, None, g, kernel, bandwidths, True, bool(exclude_diag), needs, 2.0)


def _fused(x, a, y, b, kernel, bandwidths, sym: bool, exclude_diag: bool, needs):
    batch, n, d = x.shape
    m = n if sym else y.shape[1]
    out = torch.empty(batch, dtype=torch.float64)
    grads = [torch.empty_like(t) if need else None for t, need in zip((x, a, y, b), needs)]
    _C.pairwise_sum_fused(x.dtype == torch.float64, KERNEL_CODES[kernel], list(bandwidths), sym, exclude_diag, batch,
                          n, m, d, x.data_ptr(), a.data_ptr(), _address(y), _address(b), out.data_ptr(),
                          *(_address(t) for t in grads), _threads())
    return (out.to(x.dtype).unsqueeze(1), *grads)


def kernel_sum_fused(x, y, a, b, kernel, bandwidths, needs):
    """Training pass, one weight column: (out, gx, gy, ga, gb) with out_b = sum_ij a_bi k(x_bi, y_bj) b_bj,
    (B, 1), and its gradients for an upstream gradient of 1 (None where not needed), all from one
    pass that scores each pair once and contracts it both ways (csrc/pairwise_fused.h)."""
    x, y, a, b = (prepare(t) for t in (x, y, a, b))
    out, gx, ga, gy, gb = _fused(x, a, y, b, kernel, bandwidths, False, False, (needs[0], needs[2], needs[1], needs[3]))
    return out, gx, gy, ga, gb


def kernel_sum_sym_fused(x, a, kernel, bandwidths, exclude_diag, needs):
    """Training pass of the symmetric sum, one weight column: (out, gx, ga), each unordered tile pair
    scored once."""
    x, a = prepare(x), prepare(a)
    out, gx, ga, _, _ = _fused(x, a, None, None, kernel, bandwidths, True, bool(exclude_diag), (*needs, False, False))
    return out, gx, ga


def _mmd2(x, y, kernel, bandwidths, unbiased: bool, needs):
    batch, n, d = x.shape
    out = torch.empty(batch, dtype=torch.float64)
    gx = torch.empty_like(x) if needs[0] else None
    gy = torch.empty_like(y) if needs[1] else None
    _C.pairwise_mmd2(x.dtype == torch.float64, KERNEL_CODES[kernel], list(bandwidths), unbiased, batch, n, y.shape[1], d,
                     x.data_ptr(), y.data_ptr(), out.data_ptr(), _address(gx), _address(gy), _threads())
    return out.to(x.dtype), gx, gy


def mmd2_forward(x, y, kernel, bandwidths, unbiased):
    """MMD^2 of x (B, N, d) and y (B, M, d), biased or unbiased: (B,), its three sums in one call."""
    return _mmd2(prepare(x), prepare(y), kernel, bandwidths, bool(unbiased), (False, False))[0]


def mmd2_fused(x, y, kernel, bandwidths, unbiased, needs):
    """Training pass of mmd2: (out, gx, gy), the gradients for an upstream gradient of 1 (None where
    not needed), each of the three sums walked once."""
    return _mmd2(prepare(x), prepare(y), kernel, bandwidths, bool(unbiased), needs)


def _mixture_features(z, means, logvars):
    """Float64 pieces: shifted z and means, w = exp(-lv), and the engine's features and terms."""
    center = _finite_mean(means)[0]
    zc, mc = z.double() - center, means.double() - center
    lv = logvars.double()
    w = torch.exp(-lv)
    z_feat = torch.cat([zc * zc, zc], dim=1)
    comp_feat = torch.cat([-0.5 * w, mc * w], dim=1)
    comp_term = -0.5 * (mc * mc * w + lv + LOG_2PI).sum(1)
    return zc, mc, w, z_feat, comp_feat, comp_term


def mixture_logpdf_forward(z, means, logvars):
    """out_i = log (1/M) sum_j N(z_i; m_j, diag exp(lv_j)): (N,)."""
    z, means, logvars = prepare(z), prepare(means), prepare(logvars)
    dtype = z.dtype
    _, _, _, z_feat, comp_feat, comp_term = _mixture_features(z, means, logvars)
    # the NaN rule for the components: a NaN or +-inf mean or log-variance makes its term non-finite
    components_finite = bool(torch.isfinite(comp_term).all())
    z_feat, comp_feat, comp_term = (t.to(dtype).contiguous() for t in (z_feat, comp_feat, comp_term))
    out = torch.empty(z.shape[0], dtype=torch.float64)
    _C.pairwise_mixture_forward(dtype == torch.float64, z.shape[0], means.shape[0], z_feat.shape[1],
                                z_feat.data_ptr(), comp_feat.data_ptr(), comp_term.data_ptr(), out.data_ptr(), _threads())
    return (out if components_finite else out.fill_(float("nan"))).to(dtype)


def mixture_logpdf_backward(g, z, means, logvars, out, needs):
    """Gradients of <out, g> with G_ij = g_i exp(score_ij - lse_i) (lse_i = out_i + log M):
    grad z_i = 2 z_i (G F)_i[:d] + (G F)_i[d:], and for the components, from c_j = sum_i G_ij,
    (G^T Z)_j = [a_j, b_j]: grad m_j = w_j (b_j - m_j c_j),
    grad lv_j = w_j a_j / 2 - m_j w_j b_j + c_j (m_j^2 w_j - 1) / 2."""
    z, means, logvars, g = prepare(z), prepare(means), prepare(logvars), prepare(g)
    dtype, n, m, d = z.dtype, z.shape[0], means.shape[0], z.shape[1]
    zc, mc, w, z_feat, comp_feat, comp_term = _mixture_features(z, means, logvars)
    z_feat, comp_feat, comp_term = (t.to(dtype).contiguous() for t in (z_feat, comp_feat, comp_term))
    lse = (out.double() + math.log(m)).to(dtype).contiguous()
    is_double = dtype == torch.float64
    gz = gm = glv = None
    if needs[0]:
        gf = torch.zeros((n, 2 * d), dtype=torch.float64)
        _C.pairwise_mixture_rows_backward(is_double, True, n, m, 2 * d, z_feat.data_ptr(), 0, comp_feat.data_ptr(),
                                          comp_term.data_ptr(), lse.data_ptr(), g.data_ptr(), gf.data_ptr(), 0, _threads())
        gz = (2.0 * zc * gf[:, :d] + gf[:, d:]).to(dtype)
    if needs[1] or needs[2]:
        gf = torch.zeros((m, 2 * d), dtype=torch.float64)
        colsum = torch.zeros(m, dtype=torch.float64)
        _C.pairwise_mixture_rows_backward(is_double, False, m, n, 2 * d, comp_feat.data_ptr(), comp_term.data_ptr(),
                                          z_feat.data_ptr(), 0, lse.data_ptr(), g.data_ptr(), gf.data_ptr(),
                                          colsum.data_ptr(), _threads())
        ga, gb, c = gf[:, :d], gf[:, d:], colsum.unsqueeze(1)
        if needs[1]:
            gm = (w * (gb - mc * c)).to(dtype)
        if needs[2]:
            glv = (0.5 * w * ga - mc * w * gb + c * (0.5 * mc * mc * w - 0.5)).to(dtype)
    return gz, gm, glv
