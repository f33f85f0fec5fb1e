"""Magnitudes (implicitdiv.testing.rounding) of the elementwise-plus-reduction losses: the
discriminator log-ratio losses and the Gaussian latent terms, and of their gradients, in float64.

A term f(v) of an exact input v is rounded where f's pieces are formed, so its magnitude is
|f(v)| + |v f'(v)| (the rounding of v's own intermediate values: v - 1, 2 v, ...) plus the size of
any constant it is shifted by; a derivative f'(v), the same one order up, plus the size of the
constant of its affine family (implicitdiv.ops.derivative_sharing.DERIVATIVE_FAMILY: softplus(-v) has the
derivative sigmoid(v) - 1, formed from sigmoid(v) when the terms share a buffer).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..ops import ratio_terms as term_tables
from ..ops.derivative_sharing import DERIVATIVE_FAMILY
from ..reference.ratio import expm1, tanh

LOG_2PI = math.log(2.0 * math.pi)

# The maps of implicitdiv.ops.ratio_terms by name, in float64 (differentiable twice).
MAPS = {
    "softplus_neg": lambda v: F.softplus(-v),
    "softplus": F.softplus,
    "relu_one_minus": lambda v: F.relu(1.0 - v),
    "relu_one_plus": lambda v: F.relu(1.0 + v),
    "linear": lambda v: v,
    "half_sq_shift": lambda v: 0.5 * (v - 1.0) ** 2,
    "half_sq": lambda v: 0.5 * v * v,
    "exp_neg": lambda v: torch.exp(-v),
    "expm1_neg": lambda v: expm1(-v),
    "tanh": tanh,
    "exp_shift": lambda v: torch.exp(v - 1.0),
    "expm1": expm1,
    "pearson": lambda v: 0.25 * v * v + v,
}


def _map_pieces(name: str, v: torch.Tensor):
    """(f, |f| + |v f'|, |f'| + |v f''| + |family constant|, |f'|) elementwise, float64, at finite v."""
    v = v.detach().double().requires_grad_()
    with torch.enable_grad():
        f = MAPS[name](v)
        d1, = torch.autograd.grad(f.sum(), v, create_graph=True)
        d2, = torch.autograd.grad(d1.sum(), v, allow_unused=True) if d1.requires_grad else (None,)
    d2 = torch.zeros_like(v) if d2 is None else d2
    v, f, d1, d2 = v.detach(), f.detach(), d1.detach(), d2.detach()
    shift = abs(DERIVATIVE_FAMILY[name].b) if name in DERIVATIVE_FAMILY else 0.0
    value = f.abs() + (v * d1).abs()
    slope = d1.abs() + (v * d2).abs() + shift
    return (f, torch.nan_to_num(value, nan=0.0, posinf=math.inf), torch.nan_to_num(slope, nan=0.0, posinf=math.inf),
            torch.nan_to_num(d1.abs(), nan=0.0, posinf=math.inf))


def ratio_terms(function: str, kwargs: dict):
    """The terms of a ratio loss as implicitdiv.ops.ratio builds them: (input name, map, sign,
    offset, output), and whether they are reduced and averaged."""
    reduction = kwargs.get("reduction", "mean")
    if function == "discriminator_loss":
        (rm, rs, ro), (fm, fs, fo) = term_tables.DISCRIMINATOR[kwargs["kind"]]
        second = 1 if reduction == "none" else 0
        return [("real", rm, rs, ro, 0), ("fake", fm, fs, fo, second)], reduction != "none", reduction == "mean"
    if function == "generator_loss":
        m, s, o = term_tables.generator_term(kwargs["kind"], kwargs["saturating"])
        return [("fake", m, s, o, 0)], reduction != "none", reduction == "mean"
    if function == "adversarial_losses":
        (rm, rs, ro), (fm, fs, fo) = term_tables.DISCRIMINATOR[kwargs["kind"]]
        gm, gs, go = term_tables.generator_term(kwargs["kind"], kwargs["saturating"])
        return [("real", rm, rs, ro, 0), ("fake", fm, fs, fo, 0), ("fake", gm, gs, go, 1)], True, True
    if function == "fdiv_estimate":
        (rm, rs, ro), (fm, fs, fo) = term_tables.NEG_ACTIVATION[kwargs["divergence"]], term_tables.CONJUGATE[kwargs["divergence"]]
        return [("real", rm, -rs, ro, 0), ("fake", fm, -fs, fo, 0)], True, True
    if function == "ratio_matching_loss":
        return [("r_p", "linear", -1.0, 0.0, 0), ("r_q", "half_sq", 1.0, 0.0, 0)], True, True
    raise ValueError(f"not a ratio loss: {function!r}")


def ratio_loss(function: str, inputs: dict, kwargs: dict, upstreams: list):
    """Magnitudes of the outputs ("out0", ...) of a ratio loss and of the gradients of
    sum_o <out_o, upstream_o> (keyed by input name); each value is (magnitude, terms), and for the
    gradients of unreduced terms (per-element upstreams) (magnitude, terms, formed): formed the size
    of the derivative the op saves in the dtype before the upstream scales it (implicitdiv.ops.overflow)."""
    terms, reduce, mean = ratio_terms(function, kwargs)
    found: dict = {}
    grads: dict = {}
    formed: dict = {}
    for name, mp, sign, offset, out in terms:
        v = torch.as_tensor(inputs[name]).double()
        finite = torch.isfinite(v)
        _, value, slope, d1 = _map_pieces(mp, torch.where(finite, v, torch.zeros_like(v)))
        scale = abs(sign) / (v.numel() if mean else 1)
        value = scale * (value + abs(offset))
        g = upstreams[out].double().abs() if out < len(upstreams) else torch.zeros(())
        if reduce:
            m, length = value.sum(), v.numel()
        else:
            m, length = value, 1
        key = f"out{out}"
        prev = found.get(key)
        found[key] = (m, length) if prev is None else (prev[0] + m, prev[1] + length)
        gm = scale * slope * g
        grads[name] = gm if name not in grads else grads[name] + gm
        formed[name] = scale * d1 if name not in formed else formed[name] + scale * d1
    found.update({n: (g, 2) if reduce else (g, 2, formed[n]) for n, g in grads.items()})
    return found


def _rows_total(per_element: torch.Tensor, reduction: str):
    """Per-row sums over the last dim, reduced over rows like the loss: (magnitude, terms)."""
    rows = per_element.sum(-1)
    if reduction == "none":
        return rows, per_element.shape[-1]
    total = rows.sum() / (rows.numel() if reduction == "mean" else 1)
    return total, per_element.numel()


def gaussian_terms(function: str, inputs: dict, kwargs: dict, upstreams: list):
    """Magnitudes of the Gaussian latent terms (gaussian_nll, kl_std_normal, kl_gaussians,
    reparameterize) and of the gradients of sum_o <out_o, upstream_o>, per input name (summed
    back over the dims an input was broadcast along)."""
    names = list(inputs)
    xs = torch.broadcast_tensors(*[torch.as_tensor(inputs[n]).double() for n in names])
    xs = [torch.where(torch.isfinite(x), x, torch.zeros_like(x)) for x in xs]
    shape = xs[0].shape
    rows = shape.numel() // shape[-1] if shape.numel() else 0
    reduction = kwargs.get("reduction", "none")
    half = 0.5
    if function == "reparameterize":
        m, lv, eps = xs
        sd = torch.exp(0.5 * lv)
        g_z, g_q = upstreams[0].double().abs(), upstreams[1].double().abs().unsqueeze(-1)
        out0 = (m.abs() + (sd * eps).abs(), 1)
        out1 = _rows_total(half * (eps * eps + lv.abs() + LOG_2PI), "none")
        per_input = [g_z, half * (g_z * sd * eps).abs() + half * g_q, (g_z * sd).abs() + (g_q * eps).abs()]
        saved = [None, half * (sd * eps).abs(), sd]  # dz/dlv, dz/deps
        found = {"out0": out0, "out1": out1}
    else:
        g = upstreams[0].double().abs()
        g = g.unsqueeze(-1) if reduction == "none" else g / (rows if reduction == "mean" else 1)
        if function == "gaussian_nll":
            z, m, lv = xs
            e = torch.exp(-lv)
            sq = (z - m) ** 2 * e
            value = half * (sq + lv.abs() + LOG_2PI)
            unit = [(z - m).abs() * e, (z - m).abs() * e, half * (1.0 + sq)]
        elif function == "kl_std_normal":
            m, lv = xs
            em1 = expm1(lv)
            value = half * (em1.abs() + lv.abs() + m * m + (lv * torch.exp(lv)).abs())
            unit = [m.abs(), half * (em1.abs() + (lv * torch.exp(lv)).abs())]
        elif function == "kl_gaussians":
            mq, lq, mp, lp = xs
            t = lq - lp
            em1 = expm1(t)
            sq = (mq - mp) ** 2 * torch.exp(-lp)
            value = half * (em1.abs() + t.abs() + (t * torch.exp(t)).abs() + sq)
            dm = (mq - mp).abs() * torch.exp(-lp)
            unit = [dm, half * (em1.abs() + (t * torch.exp(t)).abs()), dm, half * (em1.abs() + (t * torch.exp(t)).abs() + sq)]
        else:
            raise ValueError(f"not a Gaussian term: {function!r}")
        per_input = [g * u for u in unit]
        saved = unit if reduction == "none" else [None] * len(unit)
        found = {"out0": _rows_total(value, reduction)}
    for name, gm, kept in zip(names, per_input, saved):
        own = torch.as_tensor(inputs[name]).shape
        broadcast = tuple(own) != tuple(shape)
        summed = gm.expand(shape).sum_to_size(own) if broadcast else gm
        found[name] = (summed, 1 + shape.numel() // max(1, own.numel()))
        if kept is not None:  # per-element upstreams scale a derivative saved in the dtype (implicitdiv.ops.overflow)
            found[name] += (_max_to_size(kept.expand(shape), own) if broadcast else kept,)
    return found


def _max_to_size(t: torch.Tensor, own) -> torch.Tensor:
    """The largest of t over the dims that broadcasting `own` to t's shape expanded."""
    t = t.amax(tuple(range(t.dim() - len(own)))) if t.dim() > len(own) else t
    dims = tuple(k for k, (a, b) in enumerate(zip(own, t.shape)) if a == 1 and b != 1)
    return t.amax(dims, keepdim=True) if dims else t
