"""Autograd Function and torch.library op for the fused Gaussian latent terms.

One forward op (implicitdiv::gaussian_terms) reads the (broadcast) inputs once and writes the
per-row sums over the last dim (or their mean/sum) and, for the inputs that need a gradient, the
derivatives of the term, already multiplied by 1/rows for a mean. The backward multiplies them by
the incoming gradient (per row for reduction="none") and never reads the data again. With
create_graph=True the gradients carry the graph of the differentiable reference's
(ops/reference_grads.py), so double backward is exact and the first gradients are those of a plain
backward. The saved derivatives are handed to the first backward, which scales them in
place into the gradients; a repeated backward (retain_graph=True) recomputes through the reference.

  nll             1/2 sum_k [(z - m)^2 e^-lv + lv + log 2 pi]      saves d/dz, d/dm, d/dlv
  kl_std_normal   1/2 sum_k [e^lv + m^2 - 1 - lv]                  saves d/dm, d/dlv
  kl_gaussians    1/2 sum_k [lp - lq + e^(lq-lp) + (mq-mp)^2 e^-lp - 1]
                                                                   saves d/dmq (d/dmp = -d/dmq), d/dlq, d/dlp
  reparameterize  z = m + e^(lv/2) eps, log q = -1/2 sum_k [eps^2 + lv + log 2 pi]
                                                                   saves dz/dlv, dz/deps

The kernel module implicitdiv.fused.<backend>.gaussian implements gaussian_forward (its
docstring gives the protocol). Inputs reach it as (rows, d) views with unit column stride; a
broadcast input keeps row stride 0 instead of being copied.
"""
from __future__ import annotations

import contextlib

import torch

from .._codes import GAUSSIAN_FUNCTIONS, GAUSSIAN_KINDS
from ..fused import load
from ..reference import gaussian as ref
from .library import fused_op
from .in_place import scale_in_place
from .overflow import overflowed, small_upstream
from .reference_grads import reference_grads, with_values

KIND = dict(zip(GAUSSIAN_FUNCTIONS, GAUSSIAN_KINDS))


def _wanted_outputs(function, needs):
    """Which elementwise outputs of the kind the backward will need, given needs_input_grad."""
    if function in ("gaussian_nll", "kl_std_normal"):
        return list(needs)
    if function == "kl_gaussians":
        mq, lq, mp, lp = needs
        return [mq or mp, lq, lp]
    _, lv, eps = needs  # reparameterize(mean, logvar, eps)
    return [True, lv, eps]  # z itself, dz/dlv, dz/deps


def _fused_grads(function, xs, outs, needs, g, g_log_q, kernels):
    """Input gradients from the saved derivative outputs, which this backward owns and scales in
    place; g is the upstream of the loss (of z for reparameterize), shaped to broadcast over the last
    dim, g_log_q that of log q."""
    if function in ("gaussian_nll", "kl_std_normal"):  # one saved derivative per input
        return [None if o is None else scale_in_place(o, g, kernels) for o in outs]
    if function == "kl_gaussians":  # d/dmean_p = -d/dmean_q
        dmq, dlq, dlp = outs
        need_mq, _, need_mp, _ = needs
        g_mq = None if dmq is None else scale_in_place(dmq, g, kernels)
        g_mp = None if not need_mp else (-g_mq if need_mq else g_mq.neg_())
        return [g_mq if need_mq else None, None if dlq is None else scale_in_place(dlq, g, kernels), g_mp,
                None if dlp is None else scale_in_place(dlp, g, kernels)]
    _, dz_dlv, dz_deps = outs
    _, _, eps = xs  # reparameterize(mean, logvar, eps)
    return [g, None if dz_dlv is None else dz_dlv.mul_(g).add_(g_log_q, alpha=-0.5),
            None if dz_deps is None else dz_deps.mul_(g).addcmul_(g_log_q, eps, value=-1.0)]


def _reference(function, reduction, xs):
    if function == "reparameterize":
        return ref.reparameterize(*xs)
    per_row = getattr(ref, function)(*xs)  # float64 rows for float32 inputs where a product may overflow
    out = per_row.mean() if reduction == "mean" else per_row.sum() if reduction == "sum" else per_row
    return out.to(xs[0].dtype)


def _rows(x: torch.Tensor) -> torch.Tensor:
    """x as a (rows, d) view with unit column stride (a broadcast over rows keeps row stride 0), or a
    contiguous copy where no such view exists."""
    d = x.shape[-1]
    if d == 1 or x.stride(-1) == 1:
        try:
            return x.view(-1, d)
        except RuntimeError:
            pass
    return x.reshape(-1, d).contiguous()


def _fake_gaussian(xs, kind, want, mean, per_row, backend):
    shape = xs[0].shape
    value = xs[0].new_empty(shape[:-1] if per_row else ())
    return [value] + [xs[0].new_empty(shape) for w in want if w]


@fused_op("gaussian_terms", _fake_gaussian)
def _gaussian_op(xs: list[torch.Tensor], kind: str, want: list[bool], mean: bool, per_row: bool,
                 backend: str) -> list[torch.Tensor]:
    """[the value, then the wanted elementwise outputs]."""
    value, outs = load(backend, "gaussian").gaussian_forward(kind, xs, want, mean, per_row)
    return [value] + [o for o in outs if o is not None]


def _forward(function, reduction, xs, want, backend):
    """(value, outputs per kind slot or None) in the public shapes: the registered op while
    torch.compile traces, the kernel module itself in eager mode. Inputs reach the kernels as they
    are when all are contiguous, else as (rows, d) views (implicitdiv.fused.layout)."""
    shape = xs[0].shape
    as_rows = not all(x.is_contiguous() for x in xs)
    ins = [_rows(x) for x in xs] if as_rows else list(xs)
    kind, mean, per_row = KIND[function], reduction == "mean", reduction == "none"
    if torch.compiler.is_compiling():
        results = _gaussian_op(ins, kind, want, mean, per_row, backend)
        rest = iter(results[1:])
        value, outs = results[0], [next(rest) if w else None for w in want]
    else:
        value, outs = load(backend, "gaussian").gaussian_forward(kind, ins, want, mean, per_row)
    if as_rows:
        value = value.view(shape[:-1]) if reduction == "none" else value
        outs = [None if o is None else o.view(shape) for o in outs]
    return value, outs


class GaussianTermsFunction(torch.autograd.Function):
    """forward(function, reduction, backend, *xs) with xs broadcast to one shape (..., d): the loss
    (reduction over rows), or for reparameterize the pair (z, log_q). Derivatives are written for the
    inputs that need a gradient. Applied only in grad mode."""

    @staticmethod
    def forward(ctx, function, reduction, backend, *xs):
        needs = [bool(n) for n in ctx.needs_input_grad[3:]]
        want = _wanted_outputs(function, needs)
        if function != "reparameterize" and not any(needs):
            want = [False] * len(want)
        value, outs = _forward(function, reduction, xs, want, backend)
        ctx.config = (function, reduction, backend)
        ctx.save_for_backward(*xs)
        kept = outs[1:] if function == "reparameterize" else outs  # z is an output, not a derivative
        ctx.derivs = kept if any(o is not None for o in kept) else None  # handed over to the first backward
        if function == "reparameterize":
            return outs[0], value
        return value

    @staticmethod
    def backward(ctx, *grads):
        function, reduction, backend = ctx.config
        xs, needs = ctx.saved_tensors, ctx.needs_input_grad[3:]
        if ctx.derivs is None:  # a repeat with retain_graph
            return (None,) * 3 + reference_grads(_reference, (function, reduction, xs), xs, needs, grads)
        outs, ctx.derivs = ctx.derivs, None
        create_graph = torch.is_grad_enabled()
        with torch.no_grad() if create_graph else contextlib.nullcontext():
            if function == "reparameterize":
                g, g_log_q = grads[0], grads[1].unsqueeze(-1)
                outs = [None, *outs]
            else:
                g, g_log_q = (grads[0] if reduction != "none" else grads[0].unsqueeze(-1)), None
            check = small_upstream(grads)
            found = _fused_grads(function, xs, outs, needs, g, g_log_q, load(backend, "gaussian"))
        if check and overflowed(found):  # implicitdiv.ops.overflow
            return (None,) * 3 + reference_grads(_reference, (function, reduction, xs), xs, needs, grads)
        found = tuple(f if n else None for f, n in zip(found, needs))
        if create_graph:
            found = with_values(found, reference_grads(_reference, (function, reduction, xs), xs, needs, grads))
        return (None,) * 3 + found


def _apply(function, reduction, backend, xs):
    if xs[0].numel() == 0:  # no rows or d = 0: the reference's empty-sum semantics
        return _reference(function, reduction, xs)
    if torch.is_grad_enabled() and any(x.requires_grad for x in xs):
        return GaussianTermsFunction.apply(function, reduction, backend, *xs)
    value, outs = _forward(function, reduction, xs, _wanted_outputs(function, [False] * len(xs)), backend)
    return (outs[0], value) if function == "reparameterize" else value


# ---- entry points used by the public layer -----------------------------------------------------

def gaussian_nll(z, mean, logvar, reduction, *, backend):
    """1/2 sum_k [(z - m)^2 e^-lv + lv + log 2 pi] per row, reduced over rows."""
    return _apply("gaussian_nll", reduction, backend, (z, mean, logvar))


def kl_std_normal(mean, logvar, reduction, *, backend):
    """1/2 sum_k [e^lv + m^2 - 1 - lv] per row, reduced over rows."""
    return _apply("kl_std_normal", reduction, backend, (mean, logvar))


def kl_gaussians(mean_q, logvar_q, mean_p, logvar_p, reduction, *, backend):
    """1/2 sum_k [lp - lq + e^(lq - lp) + (mq - mp)^2 e^-lp - 1] per row, reduced over rows."""
    return _apply("kl_gaussians", reduction, backend, (mean_q, logvar_q, mean_p, logvar_p))


def reparameterize(mean, logvar, eps, *, backend):
    """(z, log q(z)): z = m + e^(lv/2) eps, log q = -1/2 sum_k [eps^2 + lv + log 2 pi] per row."""
    return _apply("reparameterize", "none", backend, (mean, logvar, eps))
