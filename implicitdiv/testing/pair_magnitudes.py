"""Magnitudes (implicitdiv.testing.rounding) of pairwise sums: out = sum_ij W_ij k(x_i, y_j), and
of their gradients, computed in float64 from the explicit N x M pairs.

A pair's kernel value k(s) is rounded through its squared distance s = ||x - y||^2. The fast kernels
compute s as ||x - c||^2 + ||y - c||^2 - 2 (x - c).(y - c) around a shared center c, which errs by
about sqrt(d) u S with S = ||x - c||^2 + ||y - c||^2, and recompute from explicit differences the
pairs with s < S / NEAR_RATIO (their documented contract: implicitdiv/fused/triton/pairwise.py,
csrc/pairwise_engine.h), so

    ds = sqrt(d + 2) min(S, NEAR_RATIO s)          (the rounding of s, in units of u)
    R  = |k| + |dk/ds| ds                          (the rounding of the pair's term, per unit weight)

and a gradient term dk/ds 2 (x_k - y_k), formed as 2 dk/ds ((x_k - c_k) - (y_k - c_k)) for far pairs
and from the difference for near ones, has the magnitude

    2 |dk/ds| P_k + 2 |d2k/ds2| ds |x_k - y_k|,    P_k = |x_k - y_k| (near) or |x_k - c_k| + |y_k - c_k|.

The linear kernel x.y has R = |k| + sqrt(d + 2) sum_k |x_k y_k| and gradient terms y_k. The
polynomial kernel k = b^p, b = gamma x.y + coef0, rounds b by db = |b| + gamma sqrt(d + 2) sum_k |x_k y_k|
and the power by p |k|: R = p |k| + |dk/db| db, and its gradient terms dk/db gamma y_k have the
magnitude (|dk/db| + |d2k/db2| db) gamma |y_k|. An exponential kernel value below the compute
dtype's smallest normal number (tiny) may come out 0 (the C++ engine's exp, a GPU's flush to zero):
an absolute loss of up to tiny that the term's factors (1/(2 sigma^2), 2 |x_k - y_k|, the weights)
then scale, so the value is floored at tiny / u, whose rounding u is that loss.
"""
from __future__ import annotations

import math

import torch

from .rounding import compute_dtype, tiny, unit_roundoff

# Pairs closer than 1/NEAR_RATIO of their S get s from explicit differences: 1/NEAR_RATIO must stay
# the smallest (loosest) of the kernels' thresholds, Triton's NEAR_FRACTION["ieee"] (2^-6) and the
# C++ kNear (1/16); see implicitdiv/fused/triton/pairwise.py. tests/test_pairwise_cpp.py checks it.
NEAR_RATIO = 64.0


def _kernel_and_slopes(s: torch.Tensor, kernel: str, sigma: float, floor: float):
    """k, |dk/ds| and |d2k/ds2| of one bandwidth at s (slopes 0 at s = 0 for the kernels of sqrt(s),
    the references' subgradient; exponentials floored at `floor`)."""
    if kernel == "rbf":
        k = torch.exp(-s / (2.0 * sigma * sigma)).clamp(min=floor)
        return k, k / (2.0 * sigma * sigma), k / (4.0 * sigma**4)
    if kernel == "imq":
        k = sigma / (sigma + s)
        return k, sigma / (sigma + s) ** 2, 2.0 * sigma / (sigma + s) ** 3
    root = s.sqrt()
    safe = torch.where(s > 0, root, torch.ones_like(root))
    zero = s == 0
    if kernel == "laplacian":
        k = torch.exp(-root / sigma).clamp(min=floor)
        ks = k / (2.0 * sigma * safe)
        kss = k / (4.0 * sigma * sigma * safe**2) + k / (4.0 * sigma * safe**3)
    else:  # energy: -sqrt(s)
        k = -root
        ks = 0.5 / safe
        kss = 0.25 / safe**3
    return k, ks.masked_fill(zero, 0.0), kss.masked_fill(zero, 0.0)


class Pairs:
    """The float64 pair quantities of x (B, N, d) against y (B, M, d) under one kernel."""

    def __init__(self, x, y, kernel: str, bandwidths, dtype: torch.dtype):
        x, y = x.double(), y.double()
        self.x, self.y, self.kernel = x, y, kernel
        d = x.shape[-1]
        self.diff = x.unsqueeze(2) - y.unsqueeze(1)  # (B, N, M, d)
        if kernel == "linear":
            k = x @ y.transpose(1, 2)
            self.value = k
            self.rounding = k.abs() + math.sqrt(d + 2) * (x.abs() @ y.abs().transpose(1, 2))
            return
        if kernel == "polynomial":
            gamma, coef0, degree = bandwidths
            base = gamma * (x @ y.transpose(1, 2)) + coef0
            db = base.abs() + gamma * math.sqrt(d + 2) * (x.abs() @ y.abs().transpose(1, 2))
            kb = degree * base.abs() ** (degree - 1)
            kbb = degree * (degree - 1) * base.abs() ** max(degree - 2, 0.0) if degree > 1 else torch.zeros_like(base)
            self.value = base**degree
            self.rounding = degree * self.value.abs() + kb * db
            self.dot_slope = gamma * (kb + kbb * db)  # per unit |y_k| (rows) or |x_k| (columns)
            return
        c = torch.cat([x, y], 1).mean(1, keepdim=True)
        self.xc, self.yc = x - c, y - c
        s = (self.diff * self.diff).sum(-1)
        big_s = (self.xc**2).sum(-1).unsqueeze(2) + (self.yc**2).sum(-1).unsqueeze(1)
        self.near = s * NEAR_RATIO < big_s
        self.ds = math.sqrt(d + 2) * torch.minimum(big_s, NEAR_RATIO * s)
        floor = tiny(compute_dtype(dtype)) / unit_roundoff(compute_dtype(dtype))
        sigmas = (1.0,) if kernel == "energy" else tuple(bandwidths)
        self.value = torch.zeros_like(s)
        self.rounding = torch.zeros_like(s)
        self.slope = torch.zeros_like(s)  # sum over bandwidths of 2 |dk/ds|
        self.curvature = torch.zeros_like(s)  # sum over bandwidths of 2 |d2k/ds2| ds
        for sigma in sigmas:
            k, ks, kss = _kernel_and_slopes(s, kernel, float(sigma), floor)
            self.value += k
            self.rounding += k.abs() + ks * self.ds
            self.slope += 2.0 * ks
            self.curvature += 2.0 * kss * self.ds

    def row_gradient(self, w: torch.Tensor) -> torch.Tensor:
        """Magnitude of sum_j w_ij dk(x_i, y_j)/dx_i for pair weights w >= 0 (B, N, M): (B, N, d)."""
        if self.kernel == "linear":
            return w @ self.y.abs()
        if self.kernel == "polynomial":
            return (w * self.dot_slope) @ self.y.abs()
        adiff = self.diff.abs()
        direct = torch.where(self.near, self.slope, torch.zeros_like(self.slope)) + self.curvature
        centered = torch.where(self.near, torch.zeros_like(self.slope), self.slope) * w
        return (torch.einsum("bnm,bnmk->bnk", w * direct, adiff) + centered.sum(2, keepdim=True) * self.xc.abs()
                + centered @ self.yc.abs())

    def col_gradient(self, w: torch.Tensor) -> torch.Tensor:
        """Magnitude of sum_i w_ij dk(x_i, y_j)/dy_j: (B, M, d)."""
        if self.kernel == "linear":
            return w.transpose(1, 2) @ self.x.abs()
        if self.kernel == "polynomial":
            return (w * self.dot_slope).transpose(1, 2) @ self.x.abs()
        adiff = self.diff.abs()
        direct = torch.where(self.near, self.slope, torch.zeros_like(self.slope)) + self.curvature
        centered = (torch.where(self.near, torch.zeros_like(self.slope), self.slope) * w).transpose(1, 2)
        return (torch.einsum("bnm,bnmk->bmk", w * direct, adiff) + centered.sum(2, keepdim=True) * self.yc.abs()
                + centered @ self.xc.abs())


def kernel_sum(x, y, a, b, g, kernel, bandwidths, dtype, sym=False):
    """Magnitudes of out_bp = sum_ij a_ip k(x_i, y_j) b_jp (canonical shapes: x (B, N, d), a (B, N, P))
    and of the gradients of <out, g> (g (B, P)): {"out", "x", "y", "a", "b"} -> (magnitude, terms).
    sym: y is x and b is a, so x and a collect both sides ("y" and "b" are then absent)."""
    pairs = Pairs(x, y, kernel, bandwidths, dtype)
    aa, ba, ga = a.double().abs(), b.double().abs(), g.double().abs()
    n, m = x.shape[1], y.shape[1]
    nbw = 1 if kernel in ("energy", "linear", "polynomial") else len(bandwidths)
    out = torch.einsum("bnp,bnm,bmp->bp", aa, pairs.rounding, ba)
    w = torch.einsum("bnp,bp,bmp->bnm", aa, ga, ba)
    gx, gy = pairs.row_gradient(w), pairs.col_gradient(w)
    g_a = torch.einsum("bnm,bmp->bnp", pairs.rounding, ba) * ga.unsqueeze(1)
    g_b = torch.einsum("bnm,bnp->bmp", pairs.rounding, aa) * ga.unsqueeze(1)
    if sym:
        return {"out": (out, n * n * nbw), "x": (gx + gy, 2 * n * nbw), "a": (g_a + g_b, 2 * n * nbw)}
    return {"out": (out, n * m * nbw), "x": (gx, m * nbw), "y": (gy, n * nbw), "a": (g_a, m * nbw), "b": (g_b, n * nbw)}


def _pooled_weights(n: int, m: int, estimator: str) -> torch.Tensor:
    """W (N + M, N + M) with MMD^2 = sum_ij W_ij k(z_i, z_j) over the pooled rows z = [x; y]."""
    w = torch.zeros(n + m, n + m, dtype=torch.float64)
    if estimator == "linear":
        h = min(n, m) // 2
        i = torch.arange(h)
        w[2 * i, 2 * i + 1] = 1.0 / h
        w[n + 2 * i, n + 2 * i + 1] = 1.0 / h
        w[2 * i, n + 2 * i + 1] = -1.0 / h
        w[2 * i + 1, n + 2 * i] = -1.0 / h
        return w
    unbiased = estimator == "unbiased"
    w[:n, :n] = 1.0 / (n * (n - 1)) if unbiased else 1.0 / (n * n)
    w[n:, n:] = 1.0 / (m * (m - 1)) if unbiased else 1.0 / (m * m)
    w[:n, n:] = -1.0 / (n * m)
    w[n:, :n] = -1.0 / (n * m)
    if unbiased:
        w.fill_diagonal_(0.0)
    return w


def mmd2(x, y, g, kernel, bandwidths, estimator, dtype):
    """Magnitudes of MMD^2 (B,) of x (B, N, d), y (B, M, d) and of the gradients of <out, g>."""
    n, m = x.shape[1], y.shape[1]
    z = torch.cat([x, y], 1).double()
    pairs = Pairs(z, z, kernel, bandwidths, dtype)
    w = _pooled_weights(n, m, estimator).abs().unsqueeze(0)
    out = (w * pairs.rounding).sum((1, 2))
    ws = (w + w.transpose(1, 2)) * g.double().abs().reshape(-1, 1, 1)
    gz = pairs.row_gradient(ws)
    nbw = 1 if kernel in ("energy", "linear", "polynomial") else len(bandwidths)
    terms = (n + m) ** 2 * nbw
    return {"out": (out, terms), "x": (gz[:, :n], 2 * (n + m) * nbw), "y": (gz[:, n:], 2 * (n + m) * nbw)}


def mixture_logpdf(z, means, logvars, g, dtype):
    """Magnitudes of out_i = log (1/M) sum_j N(z_i; m_j, diag exp(lv_j)) and of the gradients of
    <out, g>. The fast kernels form the score as a dot product of [z^2, z] with [-e/2, m e] around
    the mean c of the means (e = exp(-lv)), so a score errs by about u Q_ij,
    Q_ij = sqrt(2 d) 1/2 sum_k [(|z_k - c_k| + |m_k - c_k|)^2 e_k + |lv_k| + log 2 pi], and a
    responsibility r_ij = exp(score_ij - lse_i) by r_ij (Q_ij + sum_l r_il Q_il), plus the compute
    dtype's tiny where it underflows."""
    z, mu, lv = z.double(), means.double(), logvars.double()
    n, d = z.shape
    m = mu.shape[0]
    c = mu.mean(0)
    e = torch.exp(-lv)
    diff = z.unsqueeze(1) - mu.unsqueeze(0)  # (N, M, d)
    score = -0.5 * (diff * diff * e + lv + math.log(2 * math.pi)).sum(-1)
    lse = torch.logsumexp(score, 1, keepdim=True)
    # a responsibility below the compute dtype's smallest normal number may come out 0 (flushed or
    # underflowed exp): an absolute error of tiny, i.e. tiny / u in units of u
    cd = compute_dtype(dtype)
    r = torch.exp(score - lse) + tiny(cd) / unit_roundoff(cd)
    spread = (z - c).abs().unsqueeze(1) + (mu - c).abs().unsqueeze(0)  # (N, M, d)
    q = math.sqrt(2 * d) * 0.5 * (spread**2 * e + lv.abs() + math.log(2 * math.pi)).sum(-1)  # (N, M)
    qbar = (r * q).sum(1, keepdim=True)
    out = qbar[:, 0] + lse[:, 0].abs() + math.log(m)
    ga = g.double().abs().unsqueeze(1)  # (N, 1)
    rq = (r * ga).unsqueeze(-1)  # (N, M, 1)
    shift = (q + qbar).unsqueeze(-1)
    first = rq * e * (spread + diff.abs() * shift)  # magnitudes of g r (m - z) e
    second = rq * (0.5 * (spread**2 * e + 1.0) + 0.5 * (diff * diff * e - 1.0).abs() * shift)
    return {"out": (out, m), "z": (first.sum(1), m), "means": (first.sum(0), n), "logvars": (second.sum(0), n)}
