"""The terms of every ratio loss: a loss is a sum of terms scale * (f(v) + offset) over logit vectors,
f one of the elementwise maps of implicitdiv.ops.ratio (by name), scale = sign / n for a mean over n
logits, sign for a sum or "none". These tables say which maps, signs and offsets each kind uses."""
from __future__ import annotations

import math
from typing import NamedTuple


class TermMap(NamedTuple):
    """sign * (f_map(v) + offset) over one logit vector."""
    map: str
    sign: float
    offset: float


class Term(NamedTuple):
    """A TermMap on input `input` of a loss call, added into its output `out`."""
    input: int
    map: str
    sign: float
    offset: float
    out: int


def term(input: int, tm: TermMap, out: int, sign: float = 1.0) -> Term:
    """tm on input `input`, into output `out`, its sign multiplied by `sign`."""
    return Term(input, tm.map, sign * tm.sign, tm.offset, out)


LOG2 = math.log(2.0)

# -g_f(v), the f-GAN discriminator's term on real logits, as (map, sign, offset)
NEG_ACTIVATION = {
    "kl": TermMap("linear", -1.0, 0.0),
    "pearson": TermMap("linear", -1.0, 0.0),
    "reverse_kl": TermMap("exp_neg", 1.0, 0.0),
    "hellinger": TermMap("expm1_neg", 1.0, 0.0),
    "js": TermMap("softplus_neg", 1.0, -LOG2),
    "gan": TermMap("softplus_neg", 1.0, 0.0),
    "tv": TermMap("tanh", -0.5, 0.0),
}
# f*(g_f(v)), its term on fake logits
CONJUGATE = {
    "kl": TermMap("exp_shift", 1.0, 0.0),
    "reverse_kl": TermMap("linear", 1.0, -1.0),
    "pearson": TermMap("pearson", 1.0, 0.0),
    "hellinger": TermMap("expm1", 1.0, 0.0),
    "js": TermMap("softplus", 1.0, -LOG2),
    "gan": TermMap("softplus", 1.0, 0.0),
    "tv": TermMap("tanh", 0.5, 0.0),
}
# (term on real, term on fake) of the discriminator loss
DISCRIMINATOR = {
    "gan": (TermMap("softplus_neg", 1.0, 0.0), TermMap("softplus", 1.0, 0.0)),
    "hinge": (TermMap("relu_one_minus", 1.0, 0.0), TermMap("relu_one_plus", 1.0, 0.0)),
    "wgan": (TermMap("linear", -1.0, 0.0), TermMap("linear", 1.0, 0.0)),
    "lsgan": (TermMap("half_sq_shift", 1.0, 0.0), TermMap("half_sq", 1.0, 0.0)),
    **{k: (NEG_ACTIVATION[k], CONJUGATE[k]) for k in NEG_ACTIVATION if k != "gan"},
}


def _negated(tm: TermMap) -> TermMap:
    return tm._replace(sign=-tm.sign)


def generator_term(kind: str, saturating: bool) -> TermMap:
    if kind in ("hinge", "wgan"):
        return TermMap("linear", -1.0, 0.0)
    if kind == "lsgan":
        return TermMap("half_sq_shift", 1.0, 0.0)
    return _negated(CONJUGATE[kind]) if saturating else NEG_ACTIVATION[kind]


