"""Planted bugs: implicitdiv's fast ops wrapped so that they make one mistake a kernel could make,
for tests/test_harness.py to prove that the harness catches each of them.

Each bug is a function (call) -> fast_fn(**inputs, **kwargs) that runs the real fast op
(backend FAST) with the mistake planted in a differentiable way, so that the bug shows in the
values and in the gradients, as it would in a kernel that has it.
"""
from __future__ import annotations

import math

import torch

import implicitdiv as idv
from implicitdiv.reference.kernels import kernel_diagonal
from implicitdiv.testing import blocks
from implicitdiv.testing.loss_magnitudes import MAPS, ratio_terms
from implicitdiv.testing.pair_magnitudes import _pooled_weights

FAST = "cpp" if "cpp" in idv.backends() else "reference"
TILE = blocks.TRITON["pair_tile"]  # the smallest tile of any kernel


class _ScaleRowGradient(torch.autograd.Function):
    """Identity whose gradient has its row `row` (along dim `dim`) scaled by `factor`."""

    @staticmethod
    def forward(ctx, x, row, dim, factor):
        ctx.row, ctx.dim, ctx.factor = row, dim, factor
        return x.view_as(x)

    @staticmethod
    def backward(ctx, g):
        scale = torch.ones(g.shape[ctx.dim], dtype=g.dtype, device=g.device)
        scale[ctx.row] = ctx.factor
        shape = [1] * g.dim()
        shape[ctx.dim] = -1
        return g * scale.reshape(shape), None, None, None


def scaled_row_gradient(x, dim=-2, factor=1.0 + 1e-3):
    """x whose gradient's last row (along dim) comes out (1 + 1e-3) times too large."""
    return _ScaleRowGradient.apply(x, -1, dim if x.dim() >= -dim else -1, factor)


def _mask(n, drop, like):
    keep = torch.ones(n, dtype=like.dtype)
    keep[drop] = 0.0
    return keep


def _masked_weights(w, samples, drop):
    """The weights (default ones) with the rows `drop` of the sample set set to 0."""
    n = samples.shape[-2]
    keep = _mask(n, drop, samples)
    if w is None:
        lead = samples.shape[:-2]
        return keep.expand(*lead, n) if lead else keep
    return w * (keep.unsqueeze(-1) if w.dim() == samples.dim() else keep)


def _last_tile(n):
    return slice(TILE * ((n - 1) // TILE), n)


# ---- kernel_sum ------------------------------------------------------------------------------------

def kernel_sum_bug(name):
    def fast(x, y, x_weights=None, y_weights=None, **kw):
        fn = idv.kernel_sum
        if name == "drop_row":
            return fn(x, y, x_weights=_masked_weights(x_weights, x, [x.shape[-2] - 1]), y_weights=y_weights, backend=FAST, **kw)
        if name == "drop_column":
            return fn(x, y, x_weights=x_weights, y_weights=_masked_weights(y_weights, y, [y.shape[-2] - 1]), backend=FAST, **kw)
        if name == "drop_tile":
            return fn(x, y, x_weights=_masked_weights(x_weights, x, _last_tile(x.shape[-2])), y_weights=y_weights, backend=FAST,
                      **kw)
        if name == "zeros":
            return fn(x, y, x_weights=x_weights, y_weights=y_weights, backend=FAST, **kw) * 0.0
        if name == "flip_bandwidth":
            bws = list(kw.pop("bandwidth") if isinstance(kw.get("bandwidth"), (tuple, list)) else [kw.pop("bandwidth")])
            full = fn(x, y, x_weights=x_weights, y_weights=y_weights, bandwidth=tuple(bws), backend=FAST, **kw)
            return full - 2.0 * fn(x, y, x_weights=x_weights, y_weights=y_weights, bandwidth=bws[-1], backend=FAST, **kw)
        if name == "scale_gradient_row":
            return fn(scaled_row_gradient(x), y, x_weights=x_weights, y_weights=y_weights, backend=FAST, **kw)
        raise AssertionError(name)

    return fast


# ---- mmd2 --------------------------------------------------------------------------------------------

def _pooled_row_sum(z, row, w, kernel, bandwidth, kw):
    """sum_j w_j k(z_row, z_j) over the pooled rows z (B, N + M, d) or (N + M, d)."""
    zi = z[..., row:row + 1, :]
    return idv.kernel_sum(zi, z, kernel=kernel, bandwidth=bandwidth, y_weights=w.expand(*z.shape[:-1]).to(z.dtype),
                          backend=FAST, **kw)


def _kernel_params(x, kernel, bandwidth, kw) -> tuple:
    """The engine's parameter tuple of the call: (gamma, coef0, degree) for the polynomial kernel (gamma
    None: 1/d), else the bandwidths."""
    if kernel == "polynomial":
        gamma = kw.get("gamma")
        return (1.0 / x.shape[-1] if gamma is None else gamma, kw.get("coef0", 1.0), kw.get("degree", 3))
    return tuple(bandwidth) if isinstance(bandwidth, tuple) else (bandwidth,)


def mmd2_bug(name):
    def fast(x, y, kernel, bandwidth, estimator, **kw):
        n, m = x.shape[-2], y.shape[-2]
        out = idv.mmd2(x, y, kernel=kernel, bandwidth=bandwidth, estimator=estimator, backend=FAST, **kw)
        if name == "drop_row":  # the last row of x left out of every sum (its weights 0)
            if estimator == "linear":
                return out
            w = _pooled_weights(n, m, estimator)
            i = n - 1
            z = torch.cat([x, y], -2)
            k_ii = kernel_diagonal(x[..., i:i + 1, :], kernel, _kernel_params(x, kernel, bandwidth, kw))[..., 0]
            return out - 2.0 * _pooled_row_sum(z, i, w[i], kernel, bandwidth, kw) + w[i, i] * k_ii
        if name == "include_diagonal":
            if estimator != "unbiased":
                return out
            bws = _kernel_params(x, kernel, bandwidth, kw)
            return (out + kernel_diagonal(x, kernel, bws).sum(-1) / (n * (n - 1))
                    + kernel_diagonal(y, kernel, bws).sum(-1) / (m * (m - 1)))
        if name == "zeros":
            return out * 0.0
        if name == "flip_bandwidth":
            last = bandwidth[-1] if isinstance(bandwidth, tuple) else bandwidth
            return out - 2.0 * idv.mmd2(x, y, kernel=kernel, bandwidth=last, estimator=estimator, backend=FAST, **kw)
        if name == "scale_gradient_row":
            return idv.mmd2(scaled_row_gradient(x), y, kernel=kernel, bandwidth=bandwidth, estimator=estimator,
                            backend=FAST, **kw)
        raise AssertionError(name)

    return fast


# ---- gaussian_mixture_logpdf ---------------------------------------------------------------------

def mixture_bug(name):
    def fast(z, means, logvars):
        fn = idv.gaussian_mixture_logpdf
        if name == "drop_column":  # the last component left out of the logsumexp
            m = means.shape[0]
            if m == 1:  # nothing to drop but the whole mixture
                return fn(z, means, logvars, backend=FAST)
            return fn(z, means[:-1], logvars[:-1], backend=FAST) + math.log((m - 1) / m)
        out = fn(z if name != "scale_gradient_row" else scaled_row_gradient(z), means, logvars, backend=FAST)
        if name == "drop_tile":  # the last tile of rows never written (left 0)
            return out * _mask(z.shape[0], _last_tile(z.shape[0]), out)
        if name == "zeros":
            return out * 0.0
        if name == "scale_gradient_row":
            return out
        raise AssertionError(name)

    return fast


# ---- ratio losses and Gaussian terms -------------------------------------------------------------

def _lost_block(n: int, block: int) -> slice:
    """The elements past the last full block (all of them when there is none)."""
    return slice(block * (n // block), n)


def ratio_bug(function, name):
    terms_of = ratio_terms

    def fast(**kw):
        inputs = {k: v for k, v in kw.items() if isinstance(v, torch.Tensor)}
        kwargs = {k: v for k, v in kw.items() if k not in inputs}
        first = next(iter(inputs))
        if name == "scale_gradient_row":
            inputs[first] = scaled_row_gradient(inputs[first].reshape(-1), dim=-1).reshape(inputs[first].shape)
        out = getattr(idv, function)(**inputs, **kwargs, backend=FAST)
        if name == "zeros":
            return tuple(o * 0.0 for o in out) if isinstance(out, tuple) else out * 0.0
        if name == "scale_gradient_row":
            return out
        if name != "lose_last_block":
            raise AssertionError(name)
        terms, reduce, mean = terms_of(function, kwargs)
        if not reduce:
            return out
        outs = list(out) if isinstance(out, tuple) else [out]
        v = inputs[first].reshape(-1)
        tail = v[_lost_block(v.numel(), blocks.CPP_RATIO_BLOCK)]
        for inp, mp, sign, offset, o in terms:
            if inp == first and tail.numel():
                scale = sign / (v.numel() if mean else 1)
                outs[o] = outs[o] - scale * (MAPS[mp](tail) + offset).sum()
        return tuple(outs) if isinstance(out, tuple) else outs[0]

    return fast


def gaussian_bug(function, name):
    def fast(**kw):
        inputs = {k: v for k, v in kw.items() if isinstance(v, torch.Tensor)}
        kwargs = {k: v for k, v in kw.items() if k not in inputs}
        names = list(inputs)
        shape = torch.broadcast_shapes(*(t.shape for t in inputs.values()))
        if name == "scale_gradient_row":
            target = max(names, key=lambda n: inputs[n].dim())
            inputs[target] = scaled_row_gradient(inputs[target].reshape(-1, inputs[target].shape[-1])).reshape(
                inputs[target].shape)
        out = getattr(idv, function)(**inputs, **kwargs, backend=FAST)
        if name == "zeros":
            return tuple(o * 0.0 for o in out) if isinstance(out, tuple) else out * 0.0
        if name == "scale_gradient_row" or kwargs.get("reduction", "none") == "none":
            return out
        if name != "lose_last_block":
            raise AssertionError(name)
        d = shape[-1]
        rows = shape.numel() // d
        per_row = getattr(idv, function)(**inputs, reduction="none", backend=FAST).reshape(-1)
        lost = per_row[_lost_block(rows, max(1, blocks.CPP_GAUSSIAN_CHUNK // d))].sum()
        return out - lost / (rows if kwargs["reduction"] == "mean" else 1)

    return fast
