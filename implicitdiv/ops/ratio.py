"""Autograd Function and torch.library op for the fused discriminator log-ratio losses.

Every ratio loss is a sum of terms scale * (f(v) + offset) over logit vectors, f one of the
elementwise maps below (the kind tables say which), scale = sign/n for a mean over n logits, sign
for a sum or "none". One forward op (implicitdiv::ratio_losses) reads each logit vector once and writes the
losses and, when an input needs a gradient, the scaled derivatives scale * f'(v) in the same pass;
the backward multiplies those by the incoming gradient and never touches the logits again. With
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

import math

import torch

from ..kernels import load
from ..reference import ratio as ref

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


# ---- the op ------------------------------------------------------------------------------------

@torch.library.custom_op("implicitdiv::ratio_losses", mutates_args=())
def _ratio_op(xs: list[torch.Tensor], inputs: list[int], maps: str, signs: list[float], offsets: list[float],
              outs: list[int], n_out: int, reduce: bool, mean: bool, want: list[bool], backend: str) -> list[torch.Tensor]:
    terms = tuple(zip(inputs, maps.split(","), signs, offsets, outs))
    values, derivs = load(backend, "ratio").ratio_forward(xs, terms, n_out, reduce, mean, want)
    return list(values) + [xs[i].new_empty(0) if d is None else d for i, d in zip(inputs, derivs)]


@_ratio_op.register_fake
def _(xs, inputs, maps, signs, offsets, outs, n_out, reduce, mean, want, backend):
    values = [xs[0].new_empty(()) for _ in range(n_out)] if reduce else [xs[i].new_empty(xs[i].shape) for i in inputs]
    return values + [xs[i].new_empty(xs[i].shape if w else (0,)) for i, w in zip(inputs, want)]


class RatioLossFunction(torch.autograd.Function):
    """forward(function, args, terms, n_out, reduce, mean, grad_mode, backend, *xs) -> the n_out losses
    (reduce) or one tensor per term; terms are (input, map, sign, offset, out), divided by their
    input's size when mean; derivatives are
    written only in grad mode, for inputs that need a gradient. function(*xs, *args) in
    implicitdiv.reference.ratio is the differentiable ground truth used for double backward."""

    @staticmethod
    def forward(ctx, function, args, terms, n_out, reduce, mean, grad_mode, backend, *xs):
        want = [grad_mode and bool(ctx.needs_input_grad[8 + t[0]]) for t in terms]
        inputs, maps, signs, offsets, outs = (list(c) for c in zip(*terms))
        results = _ratio_op(list(xs), inputs, ",".join(maps), signs, offsets, outs, n_out, reduce, mean, want, backend)
        count = n_out if reduce else len(terms)
        values, derivs = results[:count], results[count:]
        ctx.save_for_backward(*xs)
        ctx.derivs = [d for d, w in zip(derivs, want) if w]  # handed over to the first backward
        ctx.config = (function, args, terms, reduce, want)
        return tuple(values)

    @staticmethod
    def backward(ctx, *grads):
        function, args, terms, reduce, want = ctx.config
        xs, needs = ctx.saved_tensors, ctx.needs_input_grad[8:]
        if torch.is_grad_enabled() or ctx.derivs is None:  # create_graph, or a repeat with retain_graph
            return (None,) * 8 + reference_grads(getattr(ref, function), (*xs, *args), xs, needs, grads)
        derivs, ctx.derivs = iter(ctx.derivs), None
        out: list = [None] * len(xs)
        for k, (term, w) in enumerate(zip(terms, want)):
            if not w:
                continue
            i, g = term[0], (grads[term[4]] if reduce else grads[k])
            out[i] = scale_in_place(next(derivs), g) if out[i] is None else out[i].addcmul_(next(derivs), g)
        return (None,) * 8 + tuple(out)


def scale_in_place(d: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """d * g written over d, which the backward owns: the saved derivatives become the gradient
    without a new buffer. A CPU upstream of exactly 1 (loss.backward() of the loss itself) leaves d
    as it is."""
    if g.dim() == 0 and g.device.type == "cpu" and not torch.compiler.is_compiling() and bool(g == 1):
        return d
    return d.mul_(g)


def reference_grads(fn, args, xs, needs, grads):
    """Gradients of <fn(*args), grads> with respect to the xs that need them, through the
    differentiable reference; differentiable themselves when grad mode is on (create_graph)."""
    create_graph = torch.is_grad_enabled()
    with torch.enable_grad():
        found = fn(*args)
        found = list(found) if isinstance(found, tuple) else [found]
        wanted = [x for x, n in zip(xs, needs) if n]
        got = torch.autograd.grad(found, wanted, list(grads), create_graph=create_graph, allow_unused=True) if wanted else ()
    got = iter(got)
    return tuple(next(got) if n else None for n in needs)


def _run(function, args, xs, terms, n_out, reduce, mean, backend):
    flat = [x.reshape(-1).contiguous() for x in xs]
    values = RatioLossFunction.apply(function, tuple(args), tuple(terms), n_out, reduce, mean, torch.is_grad_enabled(),
                                     backend, *flat)
    if reduce:
        return values
    return tuple(v.view(xs[t[0]].shape) for v, t in zip(values, terms))


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
