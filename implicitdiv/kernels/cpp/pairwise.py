"""The pairwise kernel-module protocol (see implicitdiv.ops.pairwise) on the C++ tiled engine.

The engine scores a pair as alpha <f_i, f_j> + t_i + t_j, maps it and reduces over j without
storing the N x M matrix; this module builds the features and terms and turns the engine's per-row
sums into gradients (in float64, then the input dtype):

  distance kernels  f = x - c (c: mean of the finite rows, which leaves distances unchanged and
                    keeps ||f||^2 small), t = ||f||^2, alpha = -2, so the score is ||x_i - y_j||^2;
                    with G_ij = dL/ds_ij,  grad x_i = 2 (f_i sum_j G_ij - sum_j G_ij f_j) + 2 sum_near G_ij (x_i - y_j)
  linear kernel     f = x, alpha = 1;       grad x_i = sum_j G_ij y_j
  mixture           f_i = [z_i^2, z_i], f_j = [-w_j / 2, m_j w_j] with w = exp(-lv), t_j = -1/2 sum(m_j^2 w_j + lv_j + log 2 pi)
                    (z and m shifted by the mean component, which leaves the density unchanged)

Backward runs one row pass per side (the columns' pass is the row pass with the sides swapped),
each writing only its own rows, so the bits do not depend on the thread count.
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


class _Points:
    """One point set as the engine reads it: features, terms and original coordinates."""

    def __init__(self, x: torch.Tensor, center, kernel: str):
        self.orig = x
        if kernel == "linear":
            self.feat, self.term, self.centered = x, None, None
        else:
            centered = x.double() - center
            self.feat = centered.to(x.dtype).contiguous()
            self.centered = self.feat.double()
            self.term = (self.centered * self.centered).sum(-1).to(x.dtype).contiguous()

    def buffers(self, weight):
        orig = None if self.term is None else self.orig
        return _address(self.feat), _address(self.term), _address(orig), _address(weight)


def _points(kernel: str, *sets: torch.Tensor) -> list[_Points]:
    center = None
    if kernel != "linear":
        sizes = [s.shape[-2] for s in sets]
        center = sum(_finite_mean(s) * n for s, n in zip(sets, sizes)) / sum(sizes)
    return [_Points(prepare(s), center, kernel) for s in sets]


def _forward(rows: _Points, cols: _Points | None, a, b, kernel, bandwidths, exclude_diag):
    x = rows.orig
    batch, n, d = x.shape
    p = a.shape[-1]
    out = torch.empty((batch, p), dtype=torch.float64)
    y_bufs = (0, 0, 0, 0) if cols is None else cols.buffers(b)
    m = n if cols is None else cols.orig.shape[1]
    _C.pairwise_sum_forward(x.dtype == torch.float64, KERNEL_CODES[kernel], list(bandwidths), cols is None,
                            bool(exclude_diag), batch, n, m, d, p, *rows.buffers(a), *y_bufs, _address(out), _threads())
    return out.to(x.dtype)


def _row_pass(rows: _Points, cols: _Points | None, row_weight, col_weight, kernel, bandwidths, exclude_diag,
              want_points: bool, want_weights: bool):
    """The engine's per-row sums for the rows of `rows` against `cols` (None: against themselves)."""
    x = rows.orig
    batch, n, d = x.shape
    p = row_weight.shape[-1]
    m = n if cols is None else cols.orig.shape[1]
    new = lambda *shape: torch.zeros(shape, dtype=torch.float64)  # noqa: E731
    gf = new(batch, n, d) if want_points else None
    rowsum = new(batch, n) if want_points else None
    direct = new(batch, n, d) if want_points and kernel != "linear" else None
    kw = new(batch, n, p) if want_weights else None
    col_bufs = (0, 0, 0, _address(col_weight)) if cols is None else cols.buffers(col_weight)
    _C.pairwise_sum_rows_backward(x.dtype == torch.float64, KERNEL_CODES[kernel], list(bandwidths), cols is None,
                                  bool(exclude_diag), batch, n, m, d, p, *rows.buffers(row_weight), *col_bufs,
                                  _address(gf), _address(rowsum), _address(direct), _address(kw), _threads())
    return gf, rowsum, direct, kw


def _point_grad(rows: _Points, kernel, gf, rowsum, direct, factor: float):
    """grad of the rows' coordinates from the row pass (see the module docstring), times factor."""
    if kernel == "linear":
        return (factor * gf).to(rows.orig.dtype)
    return (2.0 * factor * (rows.centered * rowsum.unsqueeze(-1) - gf + direct)).to(rows.orig.dtype)


def _side_grads(rows, cols, row_w, col_w, g, kernel, bandwidths, exclude_diag, need_points, need_weights, factor):
    if not (need_points or need_weights):
        return None, None
    gw = (row_w * g.unsqueeze(1)).contiguous()
    gf, rowsum, direct, kw = _row_pass(rows, cols, gw, col_w, kernel, bandwidths, exclude_diag, need_points, need_weights)
    grad_points = _point_grad(rows, kernel, gf, rowsum, direct, factor) if need_points else None
    grad_weights = (factor * kw * g.double().unsqueeze(1)).to(row_w.dtype) if need_weights else None
    return grad_points, grad_weights


# ---- the protocol ---------------------------------------------------------------------------------

def kernel_sum_forward(x, y, a, b, kernel, bandwidths):
    """out_bp = sum_ij a_bip k(x_bi, y_bj) b_bjp: (B, P)."""
    rows, cols = _points(kernel, x, y)
    return _forward(rows, cols, prepare(a), prepare(b), kernel, bandwidths, False)


def kernel_sum_backward(g, x, y, a, b, kernel, bandwidths, needs):
    """Gradients of <out, g> for x, y, a, b (None where not needed):
    G_ij = dk/ds(s_ij) sum_p g_p a_ip b_jp, grad a_ip = g_p (K b)_ip, grad b_jp = g_p (K^T a)_jp."""
    rows, cols = _points(kernel, x, y)
    a, b, g = prepare(a), prepare(b), prepare(g)
    gx, ga = _side_grads(rows, cols, a, b, g, kernel, bandwidths, False, needs[0], needs[2], 1.0)
    gy, gb = _side_grads(cols, rows, b, a, g, kernel, bandwidths, False, needs[1], needs[3], 1.0)
    return gx, gy, ga, gb


def kernel_sum_sym_forward(x, a, kernel, bandwidths, exclude_diag):
    """out_bp = sum_ij a_bip k(x_bi, x_bj) a_bjp (i != j when exclude_diag), each unordered tile pair once."""
    (rows,) = _points(kernel, x)
    return _forward(rows, None, prepare(a), None, kernel, bandwidths, exclude_diag)


def kernel_sum_sym_backward(g, x, a, kernel, bandwidths, exclude_diag, needs):
    """Gradients of <out, g> for x and a: x and a enter both sides of every pair, hence the factor 2."""
    (rows,) = _points(kernel, x)
    a, g = prepare(a), prepare(g)
    return _side_grads(rows, None, a, a, g, kernel, bandwidths, exclude_diag, needs[0], needs[1], 2.0)


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
    z_feat, comp_feat, comp_term = (t.to(dtype).contiguous() for t in (z_feat, comp_feat, comp_term))
    out = torch.empty(z.shape[0], dtype=torch.float64)
    _C.pairwise_mixture_forward(dtype == torch.float64, z.shape[0], means.shape[0], z_feat.shape[1],
                                z_feat.data_ptr(), comp_feat.data_ptr(), comp_term.data_ptr(), out.data_ptr(), _threads())
    return out.to(dtype)


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
