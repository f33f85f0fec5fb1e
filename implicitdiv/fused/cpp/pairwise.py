"""The pairwise kernel-module protocol (see implicitdiv.ops.pairwise) on the C++ tiled engine.

The engine scores a pair as alpha <f_i, f_j> + t_i + t_j, maps it and reduces over j without
storing the N x M matrix (csrc/pairwise_engine.h). _C builds the features itself (for the sums the
centered points and their squared norms, csrc/pairwise_points.h; for the mixture those of
csrc/pairwise_mixture.h) and applies the chain rule itself, so no torch op runs (and wakes torch's
OpenMP threads) between the call and the engine. The backward protocol runs one row pass per side (the columns' pass is
the row pass with the sides swapped), each writing only its own rows, so the bits do not depend on
the thread count. Sums with one weight column also have the training pass (kernel_sum_fused,
kernel_sum_sym_fused, mmd2_fused; csrc/pairwise_fused.h), which scores each pair once for the value
and every gradient; mmd2 runs its three sums in one call into _C. The sums' NaN rule is applied in
C++ by the pass that centers the points (csrc/pairwise_passes.h). mmd2_backward is not provided:
every mmd2 that needs a gradient runs the training pass.
"""
from __future__ import annotations

import torch

from ... import _C
from ..._codes import KERNELS
from .buffers import prepare

KERNEL_CODES = {name: code for code, name in enumerate(KERNELS)}


def _threads() -> int:
    return max(1, torch.get_num_threads())


def _address(t):
    return 0 if t is None else t.data_ptr()


def _forward(x, y, a, b, kernel, bandwidths, sym: bool, exclude_diag: bool):
    batch, n, d = x.shape
    p = a.shape[-1]
    out = torch.empty((batch, p), dtype=x.dtype)
    m = n if sym else y.shape[1]
    _C.pairwise_sum_forward(x.dtype == torch.float64, KERNEL_CODES[kernel], list(bandwidths), sym, exclude_diag, batch,
                            n, m, d, p, x.data_ptr(), _address(y), a.data_ptr(), _address(b), out.data_ptr(), _threads())
    return out


def _row_grads(x, y, a, b, g, kernel, bandwidths, sym: bool, exclude_diag: bool, needs, factor: float):
    """(grad x, grad a) of <out, g> for the side whose points are x, or None where not needed."""
    if not (needs[0] or needs[1]):
        return None, None
    batch, n, d = x.shape
    p = a.shape[-1]
    m = n if sym else y.shape[1]
    gx = torch.empty_like(x) if needs[0] else None
    ga = torch.empty_like(a) if needs[1] else None
    _C.pairwise_sum_rows_backward(x.dtype == torch.float64, KERNEL_CODES[kernel], list(bandwidths), sym, exclude_diag,
                                  batch, n, m, d, p, x.data_ptr(), _address(y), a.data_ptr(), _address(b), g.data_ptr(),
                                  factor, _address(gx), _address(ga), _threads())
    return gx, ga


# ---- the protocol ---------------------------------------------------------------------------------

def kernel_sum_forward(x, y, a, b, kernel, bandwidths):
    """out_bp = sum_ij a_bip k(x_bi, y_bj) b_bjp: (B, P)."""
    x, y, a, b = (prepare(t) for t in (x, y, a, b))
    return _forward(x, y, a, b, kernel, bandwidths, False, False)


def kernel_sum_backward(g, x, y, a, b, kernel, bandwidths, needs):
    """Gradients of <out, g> for x, y, a, b (None where not needed): with
    G_ij = dk/ds(s_ij) sum_p g_p a_ip b_jp, grad x_i = sum_j G_ij ds_ij/dx_i, grad a_ip = g_p (K b)_ip,
    and the same for y and b with the sides swapped."""
    x, y, a, b, g = (prepare(t) for t in (x, y, a, b, g))
    gx, ga = _row_grads(x, y, a, b, g, kernel, bandwidths, False, False, (needs[0], needs[2]), 1.0)
    gy, gb = _row_grads(y, x, b, a, g, kernel, bandwidths, False, False, (needs[1], needs[3]), 1.0)
    return gx, gy, ga, gb


def kernel_sum_sym_forward(x, a, kernel, bandwidths, exclude_diag):
    """out_bp = sum_ij a_bip k(x_bi, x_bj) a_bjp (i != j when exclude_diag), each unordered tile pair once."""
    x, a = prepare(x), prepare(a)
    return _forward(x, None, a, None, kernel, bandwidths, True, bool(exclude_diag))


def kernel_sum_sym_backward(g, x, a, kernel, bandwidths, exclude_diag, needs):
    """Gradients of <out, g> for x and a: both sit on both sides of every pair, hence the factor 2."""
    x, a, g = prepare(x), prepare(a), prepare(g)
    return _row_grads(x, None, a, None, g, kernel, bandwidths, True, bool(exclude_diag), needs, 2.0)


def _fused(x, y, a, b, kernel, bandwidths, sym: bool, exclude_diag: bool, needs):
    """(out, gx, gy, ga, gb); needs is in that order too."""
    batch, n, d = x.shape
    m = n if sym else y.shape[1]
    out = torch.empty((batch, 1), dtype=x.dtype)
    grads = [torch.empty_like(t) if need else None for t, need in zip((x, y, a, b), needs)]
    _C.pairwise_sum_fused(x.dtype == torch.float64, KERNEL_CODES[kernel], list(bandwidths), sym, exclude_diag, batch,
                          n, m, d, x.data_ptr(), _address(y), a.data_ptr(), _address(b), out.data_ptr(),
                          *(_address(t) for t in grads), _threads())
    return (out, *grads)


def kernel_sum_fused(x, y, a, b, kernel, bandwidths, needs):
    """Training pass, one weight column: (out, gx, gy, ga, gb) with out_b = sum_ij a_bi k(x_bi, y_bj) b_bj,
    (B, 1), and its gradients for an upstream gradient of 1 (None where not needed), all from one
    pass that scores each pair once and contracts it both ways (csrc/pairwise_fused.h)."""
    x, y, a, b = (prepare(t) for t in (x, y, a, b))
    return _fused(x, y, a, b, kernel, bandwidths, False, False, needs)


def kernel_sum_sym_fused(x, a, kernel, bandwidths, exclude_diag, needs):
    """Training pass of the symmetric sum, one weight column: (out, gx, ga), each unordered tile pair
    scored once."""
    x, a = prepare(x), prepare(a)
    out, gx, _, ga, _ = _fused(x, None, a, None, kernel, bandwidths, True, bool(exclude_diag),
                               (needs[0], False, needs[1], False))
    return out, gx, ga


def _mmd2(x, y, kernel, bandwidths, unbiased: bool, needs):
    batch, n, d = x.shape
    out = torch.empty(batch, dtype=x.dtype)
    gx = torch.empty_like(x) if needs[0] else None
    gy = torch.empty_like(y) if needs[1] else None
    _C.pairwise_mmd2(x.dtype == torch.float64, KERNEL_CODES[kernel], list(bandwidths), unbiased, batch, n, y.shape[1], d,
                     x.data_ptr(), y.data_ptr(), out.data_ptr(), _address(gx), _address(gy), _threads())
    return out, gx, gy


def mmd2_forward(x, y, kernel, bandwidths, unbiased):
    """MMD^2 of x (B, N, d) and y (B, M, d), biased or unbiased: (B,), its three sums in one call."""
    return _mmd2(prepare(x), prepare(y), kernel, bandwidths, bool(unbiased), (False, False))[0]


def mmd2_fused(x, y, kernel, bandwidths, unbiased, needs):
    """Training pass of mmd2: (out, gx, gy), the gradients for an upstream gradient of 1 (None where
    not needed), each of the three sums walked once."""
    return _mmd2(prepare(x), prepare(y), kernel, bandwidths, bool(unbiased), needs)


def mixture_logpdf_forward(z, means, logvars):
    """out_i = log (1/M) sum_j N(z_i; m_j, diag exp(lv_j)): (N,); NaN in a row whose z holds a NaN or
    an Inf, and everywhere when a component does. Features built in _C (csrc/pairwise_mixture.h)."""
    z, means, logvars = prepare(z), prepare(means), prepare(logvars)
    out = torch.empty(z.shape[0], dtype=z.dtype)
    _C.pairwise_mixture_forward(z.dtype == torch.float64, z.shape[0], means.shape[0], z.shape[1], z.data_ptr(),
                                means.data_ptr(), logvars.data_ptr(), out.data_ptr(), _threads())
    return out


def mixture_logpdf_backward(g, z, means, logvars, out, needs):
    """Gradients of <out, g>: one row pass per side (csrc/pairwise_mixture.h gives the chain rule)."""
    z, means, logvars, g, out = (prepare(t) for t in (z, means, logvars, g, out))
    gz = torch.empty_like(z) if needs[0] else None
    gm = torch.empty_like(means) if needs[1] else None
    glv = torch.empty_like(logvars) if needs[2] else None
    _C.pairwise_mixture_backward(z.dtype == torch.float64, z.shape[0], means.shape[0], z.shape[1], z.data_ptr(),
                                 means.data_ptr(), logvars.data_ptr(), out.data_ptr(), g.data_ptr(), _address(gz),
                                 _address(gm), _address(glv), _threads())
    return gz, gm, glv
