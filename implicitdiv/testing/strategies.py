"""Hypothesis strategies for the inputs of divergence estimators, searching values as well as shapes.

Hypothesis draws the structure of every input: its sizes, its scale (coordinates and weights from
1e-3 to 1e3), an offset from the origin, which points are exact or near duplicates (1e-7 to 1e-2 of
the scale apart, within a sample and across the two samples), which logits sit at the extremes, the
bandwidths (1e-3 to 1e3 times the data's own scale). The bulk of the values then comes from a
seeded torch.Generator (its seed is drawn too), so that shrinking acts on the structure. Every
strategy returns float64 tensors; check_equivalence rounds them to the dtype under test.

Only hypothesis and torch are needed.
"""
from __future__ import annotations

import math

import torch
from hypothesis import strategies as st

# Logits where the ratio losses change form: the extremes, softplus's switch at 20, relu's kinks.
SPECIAL_LOGITS = (-1e4, 1e4, -80.0, 80.0, -20.5, 20.5, -20.0, 20.0, 17.0, 1.0, -1.0, 0.0, 3e-9)


def _generator(draw) -> torch.Generator:
    return torch.Generator().manual_seed(draw(st.integers(0, 2**63 - 1)))


def magnitudes(low: float = -3.0, high: float = 3.0) -> st.SearchStrategy[float]:
    """10^e for e drawn from [low, high]: a scale between 1e-3 and 1e3 by default."""
    return st.floats(low, high).map(lambda e: 10.0**e)


def sizes(edges=(), low: int = 1, high: int = 129) -> st.SearchStrategy[int]:
    """Either a size next to a block boundary (`edges`, see implicitdiv.testing.blocks) or any size
    in [low, high]."""
    edges = sorted({e for e in edges if low <= e})
    plain = st.integers(low, high)
    return st.one_of(st.sampled_from(edges), plain) if edges else plain


@st.composite
def samples(draw, n: int, m: int | None = None, d: int = 3, batch: int | None = None):
    """One sample (B, N, d) / (N, d), or with m two samples (x, y) of one scale and place: coordinates
    of size `scale` (1e-3..1e3) around an offset of 0, 1 or 30 scales (at most 1e3), y shifted from x
    by a drawn fraction of the scale, with drawn exact and near duplicates within and across the
    samples."""
    gen = _generator(draw)
    scale = draw(magnitudes())
    offset = min(draw(st.sampled_from([0.0, 1.0, 30.0])) * scale, 1e3)
    shift = draw(st.sampled_from([0.0, 0.1, 0.5, 2.0])) * scale
    lead = () if batch is None else (batch,)
    x = torch.randn(lead + (n, d), generator=gen, dtype=torch.float64) * scale + offset
    if m is None:
        _duplicate(draw, gen, x, x, scale)
        return x
    y = torch.randn(lead + (m, d), generator=gen, dtype=torch.float64) * scale + offset + shift
    _duplicate(draw, gen, x, x, scale)
    _duplicate(draw, gen, y, x, scale)
    return x, y


def _duplicate(draw, gen, target: torch.Tensor, source: torch.Tensor, scale: float) -> None:
    """Overwrite a drawn run of target's rows with rows of source, exactly or 1e-7..1e-2 scales away."""
    n, ns = target.shape[-2], source.shape[-2]
    how = draw(st.sampled_from(["none", "exact", "near"]))
    if how == "none" or n < 2 or ns < 1:
        return
    count = draw(st.integers(1, max(1, min(n, ns) // 2)))
    start = draw(st.integers(0, n - count))
    rows = torch.randint(0, ns, (count,), generator=gen)
    copy = source[..., rows, :].clone()
    if how == "near":
        copy += torch.randn(copy.shape, generator=gen, dtype=torch.float64) * scale * draw(magnitudes(-7.0, -2.0))
    target[..., start:start + count, :] = copy


@st.composite
def weights(draw, shape):
    """Weights of a given shape: positive, signed or the +-1/n of an MMD, of size 1e-3..1e3, some
    exactly zero."""
    gen = _generator(draw)
    kind = draw(st.sampled_from(["signed", "positive", "mmd", "ones"]))
    scale = draw(magnitudes())
    if kind == "ones":
        w = torch.ones(shape, dtype=torch.float64)
    elif kind == "positive":
        w = torch.rand(shape, generator=gen, dtype=torch.float64) + 0.1
    elif kind == "mmd":
        w = torch.sign(torch.randn(shape, generator=gen, dtype=torch.float64)) / max(1, shape[0] if len(shape) else 1)
    else:
        w = torch.randn(shape, generator=gen, dtype=torch.float64)
    if draw(st.booleans()) and w.numel() > 1:
        w.view(-1)[torch.randint(0, w.numel(), (max(1, w.numel() // 8),), generator=gen)] = 0.0
    return w * scale


def typical_distance(x: torch.Tensor, y: torch.Tensor | None = None) -> float:
    """The data's own scale for a bandwidth: the root mean square distance of a few pairs (1 for
    coincident points)."""
    y = x if y is None else y
    a, b = x.reshape(-1, x.shape[-1])[:64], y.reshape(-1, y.shape[-1])[:64]
    s = float(((a.unsqueeze(1) - b.unsqueeze(0)) ** 2).sum(-1).mean().sqrt())
    return s if s > 0 and math.isfinite(s) else 1.0


@st.composite
def bandwidths(draw, data_scale: float = 1.0, max_count: int = 4):
    """One bandwidth or a tuple of up to max_count, each data_scale * 10^e, e in [-3, 3]."""
    one = magnitudes().map(lambda f: data_scale * f)
    return draw(st.one_of(one, st.lists(one, min_size=1, max_size=max_count).map(tuple)))


@st.composite
def logits(draw, shape):
    """Logits of size 1e-3..1e3 with, when drawn, a run of SPECIAL_LOGITS (the +-1e4 extremes, the
    softplus switch, the relu kinks) and duplicated values."""
    gen = _generator(draw)
    scale = draw(magnitudes())
    v = torch.randn(shape, generator=gen, dtype=torch.float64) * scale
    flat = v.view(-1)
    if draw(st.booleans()) and flat.numel() > 0:
        specials = draw(st.lists(st.sampled_from(SPECIAL_LOGITS), min_size=1, max_size=8))
        at = torch.randint(0, flat.numel(), (len(specials),), generator=gen)
        flat[at] = torch.tensor(specials, dtype=torch.float64)
    if draw(st.booleans()) and flat.numel() > 3:
        flat[: flat.numel() // 4] = flat[-1]
    return v


@st.composite
def gaussian_params(draw, shape, extreme: bool = True):
    """(values, log-variances) of one shape: values of size 1e-3..1e3 around a drawn offset,
    log-variances in [-6, 6] around a drawn level, with a run at +-80 when extreme."""
    gen = _generator(draw)
    scale = draw(magnitudes())
    values = torch.randn(shape, generator=gen, dtype=torch.float64) * scale + draw(st.sampled_from([0.0, 1.0])) * scale
    level = draw(st.floats(-4.0, 4.0))
    logvars = level + 2.0 * (torch.rand(shape, generator=gen, dtype=torch.float64) - 0.5)
    if extreme and draw(st.booleans()) and logvars.numel() > 0:
        flat = logvars.view(-1)
        flat[:: max(1, flat.numel() // 3)] = draw(st.sampled_from([-80.0, 80.0]))
    return values, logvars
