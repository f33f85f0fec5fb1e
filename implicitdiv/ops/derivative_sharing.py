"""Derivative buffers shared by the terms of one input (derivative_shares): terms whose derivatives are
affine in one quantity (softplus(v) and softplus(-v): sigmoid(v) and sigmoid(v) - 1) let the forward
write one buffer for all of them, and the backward form each input's gradient with one pass."""
from __future__ import annotations

from typing import NamedTuple

import torch


class Share(NamedTuple):
    """A term's gradient through the buffer D of its carrier term: g * (k * D + e)."""
    carrier: int
    k: float
    e: float


class Affine(NamedTuple):
    """f'(v) = a * q(v) + b for the quantity q named by family (None: a constant derivative)."""
    family: object
    a: float
    b: float


# A constant derivative (family None) fits any family. The families' q are finite for finite v; a
# map not listed keeps a buffer of its own even beside itself, since folding several terms' upstream gradients into one factor of an infinite
# derivative (exp(v - 1) at v = 1e4 in float32) would turn the reference's inf - inf = NaN into inf.
DERIVATIVE_FAMILY = {
    "softplus": Affine("sigmoid", 1.0, 0.0),
    "softplus_neg": Affine("sigmoid", 1.0, -1.0),
    "half_sq": Affine("v", 1.0, 0.0),
    "half_sq_shift": Affine("v", 1.0, -1.0),
    "pearson": Affine("v", 0.5, 1.0),
    "tanh": Affine("tanh", 1.0, 0.0),
    "linear": Affine(None, 0.0, 1.0),
}
# How far the affine form can stray from two different maps' own derivatives, at the scale of those
# derivatives (1). Like torch's, the softplus map is the identity above 20 (derivative exactly 1),
# so through one shared sigmoid either softplus(v) below -20 or softplus(-v) above 20 is off by at
# most sigmoid(-20) = 2.1e-9: below float32's rounding at that scale (half an ulp of 1, 6e-8), not
# below float64's, so those two share a buffer in float32 only.
FAMILY_DEVIATION = {"sigmoid": 2.1e-9}


def derivative_shares(terms, numels, dtype, mean, needs) -> list[Share | None]:
    """Per term, None (its input needs no gradient) or a Share (carrier, k, e): the gradient of the term's
    input through it is g * (k * D + e), g its upstream gradient, D the derivative buffer
    scale_c * f_c'(x) of the carrier term c, which only carriers write. Terms of one input and one
    DERIVATIVE_FAMILY share a carrier: with f' = a q + b, f_t' = (a_t/a_c) f_c' + b_t - a_t b_c / a_c,
    and scale_t / scale_c = sign_t / sign_c."""
    shares: list[Share | None] = [None] * len(terms)
    for i, numel in enumerate(numels):
        if not needs[i]:
            continue
        n = numel if mean else 1
        mine = [k for k, t in enumerate(terms) if t.input == i]
        form = {k: DERIVATIVE_FAMILY.get(terms[k].map, Affine(("alone", k), 1.0, 0.0)) for k in mine}
        carriers: list[int] = []
        for k in sorted(mine, key=lambda k: form[k].family is None):  # constant derivatives join last
            (family, a, b), sign = form[k], terms[k].sign
            for c in carriers:
                (fc, ac, bc), sign_c = form[c], terms[c].sign
                if family is None:
                    shares[k] = Share(c, 0.0, sign * b / n)
                elif family == fc and (terms[c].map == terms[k].map
                                       or FAMILY_DEVIATION.get(fc, 0.0) <= torch.finfo(dtype).eps / 2):
                    shares[k] = Share(c, sign / sign_c * a / ac, sign * (b - a * bc / ac) / n)
                else:
                    continue
                break
            else:
                carriers.append(k)
                shares[k] = Share(k, 1.0, 0.0)
    return shares


