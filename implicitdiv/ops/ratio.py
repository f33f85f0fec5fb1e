"""Autograd Function and torch.library op for the fused discriminator log-ratio losses.

Every ratio loss is a sum of terms scale * (f(v) + offset) over logit vectors, f one of the
elementwise maps below (the kind tables say which), scale = sign/n for a mean over n logits, sign
for a sum or "none". One forward op (implicitdiv::ratio_losses) reads each logit vector once and writes the
losses and, when an input needs a gradient, the scaled derivatives scale * f'(v) in the same pass;
the backward scales (and where terms share a derivative buffer, shifts) those by the incoming
gradients and never touches the logits again. Terms on one input whose derivatives are affine in one
quantity (softplus(v) and softplus(-v): sigmoid(v) and sigmoid(v) - 1) share one buffer, see
derivative_shares: one buffer less to allocate and write in the forward, and one in-place pass less
in the backward. With create_graph=True (grad mode on inside backward) the gradients carry the
graph of the differentiable reference's (ops/reference_grads.py), so double backward is exact and
the first gradients are those of a plain backward. The saved derivatives are handed to the first
backward, which scales them in place into the gradients (no new buffers); a repeated backward
(retain_graph=True) recomputes through the reference.

The kernel module implicitdiv.fused.<backend>.ratio implements ratio_forward (its docstring
gives the protocol). Maps, by name:

  softplus_neg softplus(-v)     softplus   softplus(v)     relu_one_minus relu(1 - v)
  relu_one_plus relu(1 + v)     linear     v               half_sq_shift  (v - 1)^2 / 2
  half_sq      v^2 / 2          exp_neg    exp(-v)         expm1_neg      exp(-v) - 1
  tanh         tanh(v)          exp_shift  exp(v - 1)      expm1          exp(v) - 1
  pearson      v^2 / 4 + v
"""
from __future__ import annotations

import contextlib
import functools
from dataclasses import dataclass
from typing import NamedTuple

import torch

from ..fused import load
from ..reference import ratio as ref
from .derivative_sharing import derivative_shares
from .in_place import affine_in_place, cpu_eager
from .library import fused_op
from .ratio_terms import CONJUGATE, DISCRIMINATOR, NEG_ACTIVATION, Term, generator_term, term
from .overflow import overflowed, small_upstream
from .reference_grads import reference_grads, with_values

# ---- the op ------------------------------------------------------------------------------------

def _fake_ratio(xs, inputs, maps, signs, offsets, outs, n_out, reduce, mean, want, backend):
    values = [xs[0].new_empty(()) for _ in range(n_out)] if reduce else [xs[i].new_empty(xs[i].shape) for i in inputs]
    return values + [xs[i].new_empty(xs[i].shape) for i, w in zip(inputs, want) if w]


@fused_op("ratio_losses", _fake_ratio)
def _ratio_op(xs: list[torch.Tensor], inputs: list[int], maps: str, signs: list[float], offsets: list[float],
              outs: list[int], n_out: int, reduce: bool, mean: bool, want: list[bool], backend: str) -> list[torch.Tensor]:
    """The n_out losses (reduce) or one value tensor per term, then the wanted derivatives."""
    terms = tuple(Term(*t) for t in zip(inputs, maps.split(","), signs, offsets, outs))
    values, derivs = load(backend, "ratio").ratio_forward(xs, terms, n_out, reduce, mean, want)
    return list(values) + [d for d in derivs if d is not None]


class OpArgs(NamedTuple):
    """The registered op's arguments after the logits (each term's fields as a column, maps joined
    with ","), in _ratio_op's order."""
    inputs: list
    maps: str
    signs: list
    offsets: list
    outs: list
    n_out: int
    reduce: bool
    mean: bool
    want: list


@dataclass(frozen=True)
class OpCall:
    """What one loss call hands the op and its backward, fixed by the terms, the inputs' sizes and
    dtype and which inputs need a gradient: each term's Share of a derivative buffer
    (derivative_shares), which terms write a buffer (want), and the registered op's arguments."""
    shares: tuple
    want: list
    op_args: OpArgs


def _make_op_call(terms, n_out, reduce, mean, numels, dtype, needs) -> OpCall:
    shares = tuple(derivative_shares(terms, numels, dtype, mean, needs))
    want = [s is not None and s.carrier == k for k, s in enumerate(shares)]
    inputs, maps, signs, offsets, outs = (list(c) for c in zip(*terms))
    return OpCall(shares, want, OpArgs(inputs, ",".join(maps), signs, offsets, outs, n_out, reduce, mean, want))


_cached_op_call = functools.lru_cache(maxsize=512)(_make_op_call)


def op_call(terms, n_out, reduce, mean, numels, dtype, needs) -> OpCall:
    """The OpCall, made once per configuration in eager mode (torch.compile traces _make_op_call)."""
    if torch.compiler.is_compiling():
        return _make_op_call(terms, n_out, reduce, mean, numels, dtype, needs)
    return _cached_op_call(terms, n_out, reduce, mean, numels, dtype, needs)


def _forward(xs, terms, n_out, reduce, mean, call: OpCall, backend):
    """(values, derivatives per term or None): the registered op while torch.compile traces, the
    kernel module itself in eager mode (the same call, without packing the outputs into one list)."""
    if torch.compiler.is_compiling():
        results = _ratio_op(list(xs), *call.op_args, backend)
        count = n_out if reduce else len(terms)
        rest = iter(results[count:])
        return results[:count], [next(rest) if w else None for w in call.want]
    return load(backend, "ratio").ratio_forward(xs, terms, n_out, reduce, mean, call.want)


class RatioLossFunction(torch.autograd.Function):
    """forward((function, args, terms, n_out, reduce, mean, backend), *xs) -> the n_out losses
    (reduce) or one tensor per term; terms are ratio_terms.Term tuples, divided by their
    input's size when mean; derivatives are written for the inputs that need a gradient, one buffer
    per carrier term (derivative_shares). function(*xs, *args) in implicitdiv.reference.ratio is the
    differentiable ground truth used for double backward. Applied only in grad mode."""

    @staticmethod
    def forward(ctx, config, *xs):
        function, args, terms, n_out, reduce, mean, backend = config
        needs = tuple(ctx.needs_input_grad[1:])
        call = op_call(terms, n_out, reduce, mean, tuple(x.numel() for x in xs), xs[0].dtype, needs)
        values, derivs = _forward(xs, terms, n_out, reduce, mean, call, backend)
        ctx.save_for_backward(*xs)
        ctx.derivs = derivs  # handed over to the first backward
        ctx.config = (function, args, terms, reduce, call.shares, backend)
        return tuple(values)

    @staticmethod
    def backward(ctx, *grads):
        function, args, terms, reduce, shares, backend = ctx.config
        needs = ctx.needs_input_grad[1:]

        def through_reference():
            xs = ctx.saved_tensors
            return reference_grads(getattr(ref, function), (*xs, *args), xs, needs, grads)

        if ctx.derivs is None:  # a repeat with retain_graph
            return (None,) + through_reference()
        derivs, ctx.derivs = ctx.derivs, None
        create_graph = torch.is_grad_enabled()
        with torch.no_grad() if create_graph else contextlib.nullcontext():
            out = _scaled_derivatives(derivs, grads, terms, shares, needs, reduce, backend)
        if out is None:
            return (None,) + through_reference()
        if create_graph:
            out = with_values(out, through_reference())
        return (None,) + tuple(out)


def _scaled_derivatives(derivs, grads, terms, shares, needs, reduce, backend):
    """The gradients from the saved derivatives, scaled (and shifted) in place by the upstream grads;
    None when a saved derivative overflowed under a small upstream (implicitdiv.ops.overflow)."""
    check = small_upstream(grads)
    if reduce and cpu_eager(grads):  # 0-dim CPU upstreams: the arithmetic below in Python floats
        grads = [float(g) for g in grads]
    scales: dict = {}  # carrier -> sum of g * k over its terms
    shifts: list = [None] * len(needs)  # input -> sum of g * e over its terms
    for t, (tm, share) in enumerate(zip(terms, shares)):
        if share is None:
            continue
        c, k, e = share.carrier, share.k, share.e
        g = grads[tm.out] if reduce else grads[t]
        if k:
            scales[c] = (g if k == 1 else k * g) if c not in scales else scales[c] + k * g
        if e:
            shifts[tm.input] = e * g if shifts[tm.input] is None else shifts[tm.input] + e * g
    out: list = [None] * len(needs)
    for c, a in scales.items():
        i = terms[c].input
        if out[i] is None:
            out[i] = affine_in_place(derivs[c], a, shifts[i], load(backend, "ratio"))
        else:
            out[i] = out[i].add_(derivs[c], alpha=a) if isinstance(a, float) else out[i].addcmul_(derivs[c], a)
    return None if check and overflowed(out) else out


def _run(function, args, xs, terms, n_out, reduce, mean, backend):
    """The terms over the inputs: the forward alone when no input needs a gradient (in
    eager mode straight from the kernel module), else the autograd Function. The kernels apply the
    NaN rule (a NaN or +-inf logit gives a NaN term)."""
    xs = [x.contiguous() for x in xs]
    if torch.is_grad_enabled() and any(x.requires_grad for x in xs):
        return RatioLossFunction.apply((function, args, terms, n_out, reduce, mean, backend), *xs)
    if torch.compiler.is_compiling():
        call = op_call(terms, n_out, reduce, mean, tuple(x.numel() for x in xs), xs[0].dtype, (False,) * len(xs))
        return tuple(_forward(xs, terms, n_out, reduce, mean, call, backend)[0])
    return tuple(load(backend, "ratio").ratio_forward(xs, terms, n_out, reduce, mean, (False,) * len(terms))[0])


# ---- entry points used by the public layer -----------------------------------------------------

def discriminator_loss(real, fake, kind, reduction, *, backend):
    """mean/sum of the DISCRIMINATOR[kind] terms on real plus that on fake, or both per element."""
    on_real, on_fake = DISCRIMINATOR[kind]
    if reduction == "none":
        terms = (term(0, on_real, 0), term(1, on_fake, 1))
        return _run("discriminator_loss", (kind, reduction), (real, fake), terms, 2, False, False, backend)
    terms = (term(0, on_real, 0), term(1, on_fake, 0))
    return _run("discriminator_loss", (kind, reduction), (real, fake), terms, 1, True, reduction == "mean", backend)[0]


def generator_loss(fake, kind, saturating, reduction, *, backend):
    """mean/sum (or per element) of generator_term(kind, saturating) on the fake logits."""
    terms = (term(0, generator_term(kind, saturating), 0),)
    return _run("generator_loss", (kind, saturating, reduction), (fake,), terms, 1, reduction != "none",
                reduction == "mean", backend)[0]


def adversarial_losses(real, fake, kind, saturating, *, backend):
    """(discriminator loss, generator loss), both means; the fake logits are read once for both."""
    on_real, on_fake = DISCRIMINATOR[kind]
    terms = (term(0, on_real, 0), term(1, on_fake, 0), term(1, generator_term(kind, saturating), 1))
    return _run("adversarial_losses", (kind, saturating), (real, fake), terms, 2, True, True, backend)


def fdiv_estimate(real, fake, divergence, *, backend):
    """E_P[g_f(v)] - E_Q[f*(g_f(v))] = -(mean(-g_f(v_real)) + mean(f*(g_f(v_fake))))."""
    terms = (term(0, NEG_ACTIVATION[divergence], 0, sign=-1.0), term(1, CONJUGATE[divergence], 0, sign=-1.0))
    return _run("fdiv_estimate", (divergence,), (real, fake), terms, 1, True, True, backend)[0]


def ratio_matching_loss(r_p, r_q, *, backend):
    """1/2 mean(r_q^2) - mean(r_p): a half_sq term on r_q and a negated linear one on r_p."""
    terms = (Term(0, "linear", -1.0, 0.0, 0), Term(1, "half_sq", 1.0, 0.0, 0))
    return _run("ratio_matching_loss", (), (r_p, r_q), terms, 1, True, True, backend)[0]
