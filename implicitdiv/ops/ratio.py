"""Autograd Function and torch.library op for the fused discriminator log-ratio losses.

Every ratio loss is a sum of terms scale * (f(v) + offset) over logit vectors, f one of the
elementwise maps below (the kind tables say which), scale = sign/n for a mean over n logits, sign
for a sum or "none". One forward op (implicitdiv::ratio_losses) reads each logit vector once and writes the
losses and, when an input needs a gradient, the scaled derivatives scale * f'(v) in the same pass;
the backward scales (and where terms share a derivative buffer, shifts) those by the incoming
gradients and never touches the logits again. Terms on one input whose derivatives are affine in one
quantity (softplus(v) and softplus(-v): sigmoid(v) and sigmoid(v) - 1) share one buffer, see
derivative_plan: one buffer less to allocate and write in the forward, and one in-place pass less in
the backward. With
create_graph=True (grad mode on inside backward) the backward recomputes through the differentiable
reference instead, so double backward is exact. The saved derivatives are handed to the first
backward, which scales them in place into the gradients (no new buffers); a repeated backward
(retain_graph=True) recomputes through the reference.

The kernel module implicitdiv.kernels.<backend>.ratio implements ratio_forward (its docstring
gives the protocol). Maps, by name:

  softplus_neg softplus(-v)     softplus   softplus(v)     relu_one_minus relu(1 - v)
  relu_one_plus relu(1 + v)     linear     v               half_sq_shift  (v - 1)^2 / 2
  half_sq      v^2 / 2          exp_neg    exp(-v)         expm1_neg      exp(-v) - 1
  tanh         tanh(v)          exp_shift  exp(v - 1)      expm1          exp(v) - 1
  pearson      v^2 / 4 + v
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch

from ..kernels import load
from ..reference import ratio as ref
from .in_place import affine_in_place, cpu_eager
from .library import fused_op
from .reference_grads import reference_grads

LOG2 = math.log(2.0)

# -g_f(v), the f-GAN discriminator's term on real logits, as (map, sign, offset)
NEG_ACTIVATION = {
    "kl": ("linear", -1.0, 0.0),
    "pearson": ("linear", -1.0, 0.0),
    "reverse_kl": ("exp_neg", 1.0, 0.0),
    "hellinger": ("expm1_neg", 1.0, 0.0),
    "js": ("softplus_neg", 1.0, -LOG2),
    "gan": ("softplus_neg", 1.0, 0.0),
    "tv": ("tanh", -0.5, 0.0),
}
# f*(g_f(v)), its term on fake logits
CONJUGATE = {
    "kl": ("exp_shift", 1.0, 0.0),
    "reverse_kl": ("linear", 1.0, -1.0),
    "pearson": ("pearson", 1.0, 0.0),
    "hellinger": ("expm1", 1.0, 0.0),
    "js": ("softplus", 1.0, -LOG2),
    "gan": ("softplus", 1.0, 0.0),
    "tv": ("tanh", 0.5, 0.0),
}
# (term on real, term on fake) of the discriminator loss
DISCRIMINATOR = {
    "gan": (("softplus_neg", 1.0, 0.0), ("softplus", 1.0, 0.0)),
    "hinge": (("relu_one_minus", 1.0, 0.0), ("relu_one_plus", 1.0, 0.0)),
    "wgan": (("linear", -1.0, 0.0), ("linear", 1.0, 0.0)),
    "lsgan": (("half_sq_shift", 1.0, 0.0), ("half_sq", 1.0, 0.0)),
    **{k: (NEG_ACTIVATION[k], CONJUGATE[k]) for k in NEG_ACTIVATION if k != "gan"},
}


def _negated(term):
    name, sign, offset = term
    return name, -sign, offset


def generator_term(kind: str, saturating: bool):
    if kind in ("hinge", "wgan"):
        return ("linear", -1.0, 0.0)
    if kind == "lsgan":
        return ("half_sq_shift", 1.0, 0.0)
    return _negated(CONJUGATE[kind]) if saturating else NEG_ACTIVATION[kind]


# ---- shared derivatives --------------------------------------------------------------------------

# f'(v) = a * q(v) + b for the quantity q of a family; a constant derivative (family None) fits any
# family. The families' q are finite for finite v; a map not listed keeps a buffer of its own even
# beside itself, since folding several terms' upstream gradients into one factor of an infinite
# derivative (exp(v - 1) at v = 1e4 in float32) would turn the reference's inf - inf = NaN into inf.
DERIVATIVE_FAMILY = {
    "softplus": ("sigmoid", 1.0, 0.0),
    "softplus_neg": ("sigmoid", 1.0, -1.0),
    "half_sq": ("v", 1.0, 0.0),
    "half_sq_shift": ("v", 1.0, -1.0),
    "pearson": ("v", 0.5, 1.0),
    "tanh": ("tanh", 1.0, 0.0),
    "linear": (None, 0.0, 1.0),
}
# How far the affine form can stray from two different maps' own derivatives, at the scale of those
# derivatives (1). Like torch's, the softplus map is the identity above 20 (derivative exactly 1),
# so through one shared sigmoid either softplus(v) below -20 or softplus(-v) above 20 is off by at
# most sigmoid(-20) = 2.1e-9: below float32's rounding at that scale (half an ulp of 1, 6e-8), not
# below float64's, so those two share a buffer in float32 only.
FAMILY_DEVIATION = {"sigmoid": 2.1e-9}


def derivative_plan(terms, numels, dtype, mean, needs):
    """Per term, None (its input needs no gradient) or (carrier, k, e): the gradient of the term's
    input through it is g * (k * D + e), g its upstream gradient, D the derivative buffer
    scale_c * f_c'(x) of the carrier term c, which only carriers write. Terms of one input and one
    DERIVATIVE_FAMILY share a carrier: with f' = a q + b, f_t' = (a_t/a_c) f_c' + b_t - a_t b_c / a_c,
    and scale_t / scale_c = sign_t / sign_c."""
    plan = [None] * len(terms)
    for i, numel in enumerate(numels):
        if not needs[i]:
            continue
        n = numel if mean else 1
        mine = [k for k, t in enumerate(terms) if t[0] == i]
        form = {k: DERIVATIVE_FAMILY.get(terms[k][1], (("alone", k), 1.0, 0.0)) for k in mine}
        carriers: list[int] = []
        for k in sorted(mine, key=lambda k: form[k][0] is None):  # constant derivatives join last
            (family, a, b), sign = form[k], terms[k][2]
            for c in carriers:
                (fc, ac, bc), sign_c = form[c], terms[c][2]
                if family is None:
                    plan[k] = (c, 0.0, sign * b / n)
                elif family == fc and (terms[c][1] == terms[k][1]
                                       or FAMILY_DEVIATION.get(fc, 0.0) <= torch.finfo(dtype).eps / 2):
                    plan[k] = (c, sign / sign_c * a / ac, sign * (b - a * bc / ac) / n)
                else:
                    continue
                break
            else:
                carriers.append(k)
                plan[k] = (k, 1.0, 0.0)
    return plan


# ---- the op ------------------------------------------------------------------------------------

def _fake_ratio(xs, inputs, maps, signs, offsets, outs, n_out, reduce, mean, want, backend):
    values = [xs[0].new_empty(()) for _ in range(n_out)] if reduce else [xs[i].new_empty(xs[i].shape) for i in inputs]
    return values + [xs[i].new_empty(xs[i].shape) for i, w in zip(inputs, want) if w]


@fused_op("ratio_losses", _fake_ratio)
def _ratio_op(xs: list[torch.Tensor], inputs: list[int], maps: str, signs: list[float], offsets: list[float],
              outs: list[int], n_out: int, reduce: bool, mean: bool, want: list[bool], backend: str) -> list[torch.Tensor]:
    """The n_out losses (reduce) or one value tensor per term, then the wanted derivatives."""
    terms = tuple(zip(inputs, maps.split(","), signs, offsets, outs))
    values, derivs = load(backend, "ratio").ratio_forward(xs, terms, n_out, reduce, mean, want)
    return list(values) + [d for d in derivs if d is not None]


@dataclass(frozen=True)
class CallPlan:
    """What one loss call hands the op and its backward, fixed by the terms, the inputs' sizes and
    dtype and which inputs need a gradient: derivative_plan's carriers, the derivative buffers
    wanted, and the op's term columns."""
    carriers: tuple
    want: list
    op_args: tuple  # inputs, maps, signs, offsets, outs, n_out, reduce, mean, want


def _make_plan(terms, n_out, reduce, mean, numels, dtype, needs) -> CallPlan:
    carriers = tuple(derivative_plan(terms, numels, dtype, mean, needs))
    want = [p is not None and p[0] == k for k, p in enumerate(carriers)]
    inputs, maps, signs, offsets, outs = (list(c) for c in zip(*terms))
    return CallPlan(carriers, want, (inputs, ",".join(maps), signs, offsets, outs, n_out, reduce, mean, want))


_cached_plan = functools.lru_cache(maxsize=512)(_make_plan)


def call_plan(terms, n_out, reduce, mean, numels, dtype, needs) -> CallPlan:
    """The CallPlan, made once per configuration in eager mode (torch.compile traces _make_plan)."""
    if torch.compiler.is_compiling():
        return _make_plan(terms, n_out, reduce, mean, numels, dtype, needs)
    return _cached_plan(terms, n_out, reduce, mean, numels, dtype, needs)


def _forward(xs, terms, n_out, reduce, mean, plan: CallPlan, backend):
    """(values, derivatives per term or None): the registered op while torch.compile traces, the
    kernel module itself in eager mode (the same call, without packing the outputs into one list)."""
    if torch.compiler.is_compiling():
        results = _ratio_op(list(xs), *plan.op_args, backend)
        count = n_out if reduce else len(terms)
        rest = iter(results[count:])
        return results[:count], [next(rest) if w else None for w in plan.want]
    return load(backend, "ratio").ratio_forward(xs, terms, n_out, reduce, mean, plan.want)


class RatioLossFunction(torch.autograd.Function):
    """forward((function, args, terms, n_out, reduce, mean, backend), *xs) -> the n_out losses
    (reduce) or one tensor per term; terms are (input, map, sign, offset, out), divided by their
    input's size when mean; derivatives are written for the inputs that need a gradient, one buffer
    per derivative_plan carrier. function(*xs, *args) in implicitdiv.reference.ratio is the
    differentiable ground truth used for double backward. Applied only in grad mode."""

    @staticmethod
    def forward(ctx, config, *xs):
        function, args, terms, n_out, reduce, mean, backend = config
        needs = tuple(ctx.needs_input_grad[1:])
        plan = call_plan(terms, n_out, reduce, mean, tuple(x.numel() for x in xs), xs[0].dtype, needs)
        values, derivs = _forward(xs, terms, n_out, reduce, mean, plan, backend)
        ctx.save_for_backward(*xs)
        ctx.derivs = derivs  # handed over to the first backward
        ctx.config = (function, args, terms, reduce, plan.carriers, backend)
        return tuple(values)

    @staticmethod
    def backward(ctx, *grads):
        function, args, terms, reduce, plan, backend = ctx.config
        needs = ctx.needs_input_grad[1:]
        if torch.is_grad_enabled() or ctx.derivs is None:  # create_graph, or a repeat with retain_graph
            xs = ctx.saved_tensors
            return (None,) + reference_grads(getattr(ref, function), (*xs, *args), xs, needs, grads)
        derivs, ctx.derivs = ctx.derivs, None
        if reduce and cpu_eager(grads):  # 0-dim CPU upstreams: the arithmetic below in Python floats
            grads = [float(g) for g in grads]
        scales: dict = {}  # carrier -> sum of g * k over its terms
        shifts: list = [None] * len(needs)  # input -> sum of g * e over its terms
        for t, (term, p) in enumerate(zip(terms, plan)):
            if p is None:
                continue
            c, k, e = p
            g = grads[term[4]] if reduce else grads[t]
            if k:
                scales[c] = (g if k == 1 else k * g) if c not in scales else scales[c] + k * g
            if e:
                shifts[term[0]] = e * g if shifts[term[0]] is None else shifts[term[0]] + e * g
        out: list = [None] * len(needs)
        for c, a in scales.items():
            i = terms[c][0]
            if out[i] is None:
                out[i] = affine_in_place(derivs[c], a, shifts[i], load(backend, "ratio"))
            else:
                out[i] = out[i].add_(derivs[c], alpha=a) if isinstance(a, float) else out[i].addcmul_(derivs[c], a)
        return (None,) + tuple(out)


def _run(function, args, xs, terms, n_out, reduce, mean, backend):
    """The terms over the inputs: the forward alone when no input needs a gradient (in
    eager mode straight from the kernel module), else the autograd Function. The kernels apply the
    NaN rule (a NaN or +-inf logit gives a NaN term)."""
    xs = [x.contiguous() for x in xs]
    if torch.is_grad_enabled() and any(x.requires_grad for x in xs):
        return RatioLossFunction.apply((function, args, terms, n_out, reduce, mean, backend), *xs)
    if torch.compiler.is_compiling():
        plan = call_plan(terms, n_out, reduce, mean, tuple(x.numel() for x in xs), xs[0].dtype, (False,) * len(xs))
        return tuple(_forward(xs, terms, n_out, reduce, mean, plan, backend)[0])
    return tuple(load(backend, "ratio").ratio_forward(xs, terms, n_out, reduce, mean, (False,) * len(terms))[0])


# ---- entry points used by the public layer -----------------------------------------------------

def discriminator_loss(real, fake, kind, reduction, *, backend):
    """mean/sum of the DISCRIMINATOR[kind] terms on real plus that on fake, or both per element."""
    (rm, rs, ro), (fm, fs, fo) = DISCRIMINATOR[kind]
    if reduction == "none":
        terms = ((0, rm, rs, ro, 0), (1, fm, fs, fo, 1))
        return _run("discriminator_loss", (kind, reduction), (real, fake), terms, 2, False, False, backend)
    terms = ((0, rm, rs, ro, 0), (1, fm, fs, fo, 0))
    return _run("discriminator_loss", (kind, reduction), (real, fake), terms, 1, True, reduction == "mean", backend)[0]


def generator_loss(fake, kind, saturating, reduction, *, backend):
    """mean/sum (or per element) of generator_term(kind, saturating) on the fake logits."""
    m, s, o = generator_term(kind, saturating)
    return _run("generator_loss", (kind, saturating, reduction), (fake,), ((0, m, s, o, 0),), 1, reduction != "none",
                reduction == "mean", backend)[0]


def adversarial_losses(real, fake, kind, saturating, *, backend):
    """(discriminator loss, generator loss), both means; the fake logits are read once for both."""
    (rm, rs, ro), (fm, fs, fo) = DISCRIMINATOR[kind]
    gm, gs, go = generator_term(kind, saturating)
    terms = ((0, rm, rs, ro, 0), (1, fm, fs, fo, 0), (1, gm, gs, go, 1))
    return _run("adversarial_losses", (kind, saturating), (real, fake), terms, 2, True, True, backend)


def fdiv_estimate(real, fake, divergence, *, backend):
    """E_P[g_f(v)] - E_Q[f*(g_f(v))] = -(mean(-g_f(v_real)) + mean(f*(g_f(v_fake))))."""
    (rm, rs, ro), (fm, fs, fo) = NEG_ACTIVATION[divergence], CONJUGATE[divergence]
    terms = ((0, rm, -rs, ro, 0), (1, fm, -fs, fo, 0))
    return _run("fdiv_estimate", (divergence,), (real, fake), terms, 1, True, True, backend)[0]


def ratio_matching_loss(r_p, r_q, *, backend):
    """1/2 mean(r_q^2) - mean(r_p): a half_sq term on r_q and a negated linear one on r_p."""
    terms = ((0, "linear", -1.0, 0.0, 0), (1, "half_sq", 1.0, 0.0, 0))
    return _run("ratio_matching_loss", (), (r_p, r_q), terms, 1, True, True, backend)[0]
