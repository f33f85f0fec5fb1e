"""check_equivalence: a fast function against a float64 reference, values, gradients and double
backward.

Given float64 input values, the harness
  1. rounds them to ``dtype`` (both sides see the same inputs: what is compared is the function's
     error, not the inputs' rounding) and runs fast_fn on them in ``dtype`` (optionally as strided
     views),
  2. runs reference_fn on the same values in float64,
  3. compares the values, then the gradients of sum_o <out_o, u_o> for random upstreams u (never
     all ones) from the fast function's own backward (create_graph=False), then, with
     double_backward, the create_graph=True gradients and the gradients of <those, v>.

Values and first gradients are compared against the error model of implicitdiv.testing.rounding
when ``magnitudes`` is given (implicitdiv.testing.error_scales has them for every function of
implicitdiv); otherwise, and for the second derivatives, against TOLERANCES: |f - r| <= atol * s +
rtol * |r|, s the largest |r| of the tensor.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from .rounding import bound, tiny, unit_roundoff


@dataclass(frozen=True)
class Tolerance:
    rtol: float
    atol: float  # relative to the tensor's largest |reference|


TOLERANCES: dict[torch.dtype, Tolerance] = {
    torch.float64: Tolerance(rtol=1e-10, atol=1e-11),
    torch.float32: Tolerance(rtol=2e-4, atol=2e-4),
    torch.bfloat16: Tolerance(rtol=2e-2, atol=2e-2),
    torch.float16: Tolerance(rtol=5e-3, atol=5e-3),
}


class Mismatch(AssertionError):
    """A fast result outside the error model; ``ratio`` is its error over the allowed error."""

    def __init__(self, message: str, ratio: float):
        super().__init__(message)
        self.ratio = ratio


def _as_input(value, dtype: torch.dtype, noncontiguous: bool, requires_grad: bool) -> torch.Tensor:
    t = torch.as_tensor(value, dtype=torch.float64)
    if noncontiguous and t.dim() >= 1:
        # same values, doubled last dim read with a stride of 2: a strided view, not a copy
        wide = torch.stack([t, torch.full_like(t, float("nan"))], dim=-1).reshape(*t.shape[:-1], 2 * t.shape[-1])
        t = wide.to(dtype)[..., ::2]
    else:
        t = t.to(dtype)
    return t.requires_grad_(requires_grad)


def _flatten(out) -> list[torch.Tensor]:
    return list(out) if isinstance(out, (tuple, list)) else [out]


def _allowed(expected: torch.Tensor, dtype, magnitude, scale, roundoff, factor, summation=True,
             scale_of: torch.Tensor | None = None) -> torch.Tensor:
    """dtype: the dtype of the result (its final rounding); scale_of: the values whose largest sets the
    scale of TOLERANCES' atol where there is no error model (default: expected)."""
    if magnitude is not None:
        m, length = magnitude
        m = torch.as_tensor(m, dtype=torch.float64).expand(expected.shape)
        return bound(expected, m, length, dtype, roundoff, summation) * factor
    tol = TOLERANCES[dtype]
    scale_of = expected if scale_of is None else scale_of
    s = float(scale_of.abs().max()) if scale_of.numel() else 0.0
    s = max(s, float(scale or 0.0), 1e-30)
    # plus half the spacing of the dtype's subnormals: no result in dtype can be closer than its rounding
    return (tol.atol * s + tol.rtol * expected.abs() + unit_roundoff(dtype) * tiny(dtype)) * factor


def compare(actual: torch.Tensor, expected: torch.Tensor, dtype: torch.dtype, what: str, *, magnitude=None,
            scale: float | None = None, roundoff: float | None = None, factor: float = 1.0,
            summation: bool = True, result_dtype: torch.dtype | None = None,
            extra: torch.Tensor | None = None) -> tuple[float, str]:
    """(the largest |actual - expected| / allowed over the elements, a description of that element);
    raises Mismatch for a different shape, NaN pattern or infinities. magnitude: (M, terms) of the
    error model, optionally (M, terms, formed) with formed the size of an intermediate the op forms
    in dtype before an upstream scales it; without it TOLERANCES[dtype] with the tensor's scale (at least `scale`). extra: an
    allowance added element by element (the error of the reference itself run in dtype, for a
    double backward that falls back to it)."""
    actual = actual.detach().to(torch.float64)
    expected = expected.detach().to(torch.float64)
    if actual.shape != expected.shape:
        raise Mismatch(f"{what}: shape {tuple(actual.shape)} != reference {tuple(expected.shape)}", float("inf"))
    # Where the dtype cannot hold the computation, the fast op may overflow as the dtype's own
    # arithmetic does: to +inf (-inf) where the allowed interval around the true value reaches past
    # the dtype's max (below -max), or to NaN (inf - inf) there; where the terms summed into it
    # overflow on their own (the error model's magnitude beyond the max), or where the op forms an
    # intermediate beyond the max before scaling it (magnitude's optional third entry: a derivative
    # saved in dtype, which a per-element upstream below 1 would have brought back into range; the
    # edge implicitdiv.ops.overflow documents), to any infinity or NaN.
    # A finite result there is compared as any other; so is every other element. An infinite true
    # value may come out NaN, else it must be the same infinity.
    top = torch.finfo(dtype).max
    finite_e = torch.isfinite(expected)
    in_range = torch.where(finite_e & (expected.abs() <= top), expected, 0.0)  # the no-model scale ignores the rest
    formed = None
    if magnitude is not None:
        if len(magnitude) > 2:
            formed = torch.as_tensor(magnitude[2], dtype=torch.float64).detach().expand(expected.shape)
        magnitude = (torch.as_tensor(magnitude[0], dtype=torch.float64).detach().expand(expected.shape), magnitude[1])
    allowed_all = _allowed(torch.where(finite_e, expected, 0.0), result_dtype or dtype, magnitude, scale, roundoff,
                           factor, summation, scale_of=in_range)
    if extra is not None:
        allowed_all = allowed_all + torch.nan_to_num(extra.detach().to(torch.float64).abs(), nan=math.inf)
    nan_a, nan_e = torch.isnan(actual), torch.isnan(expected)
    above = finite_e & (expected + allowed_all > top)  # the allowed interval reaches past +max
    below = finite_e & (expected - allowed_all < -top)
    terms_past = finite_e & (magnitude[0] > top) if magnitude is not None else torch.zeros_like(finite_e)
    if formed is not None:  # a derivative saved in dtype before a per-element upstream scales it
        terms_past |= finite_e & (formed > top)
    infinite = ~nan_e & ~finite_e
    overflowed = ((above & torch.isposinf(actual)) | (below & torch.isneginf(actual)) | ((above | below) & nan_a)
                  | (terms_past & ~torch.isfinite(actual)) | (infinite & nan_a))
    if not torch.equal(nan_a & ~overflowed, nan_e):
        raise Mismatch(f"{what}: NaN pattern differs from the reference", float("inf"))
    keep = finite_e & ~overflowed
    if result_dtype is not None and result_dtype != dtype:  # held to a narrower dtype: what it can hold
        narrow_top = torch.finfo(result_dtype).max
        keep &= (expected.abs() + allowed_all <= narrow_top) & (
            magnitude[0] <= narrow_top if magnitude is not None else torch.ones_like(keep))
    infinite &= ~overflowed
    if not torch.equal(actual[infinite], expected[infinite]):
        raise Mismatch(f"{what}: infinities differ from the reference", float("inf"))
    a, e, allowed = actual[keep], expected[keep], allowed_all[keep]
    if e.numel() == 0:
        return 0.0, ""
    err = (a - e).abs()
    ratio = torch.where(err == 0, torch.zeros_like(err), err / allowed)
    i = int(torch.argmax(torch.nan_to_num(ratio, nan=float("inf"))))
    flat = int(torch.nonzero(keep.reshape(-1))[i])
    detail = (f"{what} ({dtype}): |fast - ref| = {float(err[i]):.3e} > allowed {float(allowed[i]):.3e} at flat index "
              f"{flat} (fast {float(a[i]):.9g}, ref {float(e[i]):.9g})")
    r = float(ratio[i])
    return (r if r == r else float("inf")), detail


def assert_close(actual, expected, dtype, what, scale=None, *, magnitude=None, roundoff=None):
    """Raises Mismatch unless every element of actual is within the allowed error of expected."""
    ratio, detail = compare(actual, expected, dtype, what, magnitude=magnitude, scale=scale, roundoff=roundoff)
    if ratio > 1.0:
        raise Mismatch(detail, ratio)


def _largest(tensors) -> float:
    finite = [t.detach().abs()[torch.isfinite(t.detach())] for t in tensors if t is not None]
    return max([float(t.max()) for t in finite if t.numel()] + [0.0])


Magnitudes = Callable[[dict, list], dict]


def check_equivalence(fast_fn: Callable, reference_fn: Callable, inputs: dict, *, dtype: torch.dtype = torch.float32,
                      kwargs: dict | None = None, grad_names: tuple[str, ...] = (), noncontiguous: bool = False,
                      double_backward: bool = True, seed: int = 0, magnitudes: Magnitudes | None = None,
                      roundoff: float | None = None, factor: float = 1.0, summation: bool = True,
                      result_dtype: torch.dtype | None = None, raise_on_mismatch: bool = True) -> float:
    """Check fast_fn(**inputs, **kwargs) in ``dtype`` against reference_fn(**inputs, **kwargs) in
    float64; raises AssertionError (Mismatch) naming the output or gradient that differs.

    inputs: name -> float64 values (tensors or arrays); grad_names: those whose gradients are
    compared. magnitudes(inputs, upstreams) -> {"out0": (M, terms), ..., name: (M, terms)}: the
    error model's magnitudes of each output and of each gradient for the upstreams given (a third
    entry, where present: compare's `formed`)
    (implicitdiv.testing.error_scales); roundoff: the unit roundoff the fast function computes with
    (default: dtype's). factor scales every allowed error (1: the harness's own); summation=False
    drops the summation factor of the magnitudes (rounding.bound); result_dtype: the dtype whose final
    rounding the results may carry (default dtype; a float64 run can be held to a lower precision's
    bounds with it). Returns the largest error over the allowed error seen (<= 1 when it passes;
    with raise_on_mismatch=False it returns it instead of raising, inf for a differing NaN pattern,
    infinity or shape).
    """
    kwargs = kwargs or {}
    rounded = {n: torch.as_tensor(v, dtype=torch.float64).to(dtype).to(torch.float64) for n, v in inputs.items()}
    names = list(grad_names)
    gen = torch.Generator().manual_seed(seed)
    worst = [0.0]

    def check(actual, expected, what, magnitude=None, scale=None, extra=None):
        try:
            ratio, detail = compare(actual, expected, dtype, what, magnitude=magnitude, scale=scale, roundoff=roundoff,
                                    factor=factor, summation=summation, result_dtype=result_dtype, extra=extra)
        except Mismatch as e:
            if raise_on_mismatch:
                raise
            ratio, detail = e.ratio, str(e)
        worst[0] = max(worst[0], ratio)
        if ratio > 1.0 and raise_on_mismatch:
            raise Mismatch(detail, ratio)

    def run():
        fast_in = {n: _as_input(v, dtype, noncontiguous, n in grad_names) for n, v in rounded.items()}
        return fast_in, _flatten(fast_fn(**fast_in, **kwargs))

    fast_in, fast_out = run()
    ref_in = {n: _as_input(v, torch.float64, False, n in grad_names) for n, v in rounded.items()}
    ref_out = _flatten(reference_fn(**ref_in, **kwargs))
    if len(fast_out) != len(ref_out):
        raise Mismatch("the fast function returns a different number of outputs", float("inf"))
    differentiable = [i for i, r in enumerate(ref_out) if r.requires_grad] if grad_names else []
    # upstream gradients rounded to dtype, so both sides see the same ones (like the inputs)
    upstream = [(torch.randn(ref_out[i].shape, generator=gen, dtype=torch.float64) + 0.5).to(dtype).double()
                for i in differentiable]
    found = {}
    if magnitudes is not None:
        ups = [torch.zeros(r.shape, dtype=torch.float64) for r in ref_out]
        for i, u in zip(differentiable, upstream):
            ups[i] = u
        found = magnitudes(rounded, ups)
    for i, (f, r) in enumerate(zip(fast_out, ref_out)):
        if f.dtype != dtype:
            raise Mismatch(f"out{i}: dtype {f.dtype}, expected {dtype}", float("inf"))
        check(f, r, f"out{i}", found.get(f"out{i}"))
    if not grad_names:
        return worst[0]

    def grads(outs, ins, create_graph):
        outs_d = [outs[i] for i in differentiable]
        ups = [u.to(outs_d[k].dtype) for k, u in enumerate(upstream)]
        return torch.autograd.grad(outs_d, [ins[n] for n in names], ups, create_graph=create_graph, allow_unused=True)

    def compare_grads(fast_g, ref_g, ins, label, floor=0.0, use_model=True, own_g=None):
        # A gradient that is exactly 0 in theory (a second derivative of |x - y| in 1-D, say) is
        # rounding noise in the fast op; without a model its scale is that of the call's other gradients.
        scale = max(_largest(ref_g), floor)
        for k, (n, f, r) in enumerate(zip(names, fast_g, ref_g)):
            f = torch.zeros_like(ins[n]) if f is None else f
            r = torch.zeros_like(ref_in[n]) if r is None else r
            magnitude = found.get(n) if use_model else None
            own = None if own_g is None or own_g[k] is None else 2.0 * (own_g[k].double() - r)
            check(f, r, f"{label}:{n}", magnitude, scale, own)
        return scale

    ref_g = grads(ref_out, ref_in, double_backward)
    grad_scale = compare_grads(grads(fast_out, fast_in, False), ref_g, fast_in, "grad")  # the op's own backward
    if not double_backward:
        return worst[0]
    fast_in, fast_out = run()
    fast_g = grads(fast_out, fast_in, True)
    compare_grads(fast_g, ref_g, fast_in, "grad")
    probes = [torch.randn(ref_in[n].shape, generator=gen, dtype=torch.float64) for n in names]
    pairs = [(f, r, p) for f, r, p in zip(fast_g, ref_g, probes) if r is not None and r.requires_grad]
    if not pairs:
        return worst[0]
    fast_s = sum((f * p.to(dtype)).sum() for f, _, p in pairs)
    ref_s = sum((r * p).sum() for _, r, p in pairs)
    fast_gg = torch.autograd.grad(fast_s, [fast_in[n] for n in names], allow_unused=True)
    ref_gg = torch.autograd.grad(ref_s, [ref_in[n] for n in names], allow_unused=True)
    # There is no error model for second derivatives; a fast op's double backward is held to the
    # tolerance plus twice the error of the reference itself run in dtype (its fallback), so the
    # float32 reference's own cancellations (0.7 % in a mixture's second derivative) are not charged
    # to it, while a second derivative the reference does not give still fails.
    own_gg = None
    if dtype != torch.float64:
        own_in = {n: _as_input(v, dtype, False, n in grad_names) for n, v in rounded.items()}
        own_out = _flatten(reference_fn(**own_in, **kwargs))
        own_g = grads(own_out, own_in, True)
        own_terms = [(o * p.to(dtype)).sum() for o, r, p in zip(own_g, ref_g, probes)
                     if o is not None and r is not None and r.requires_grad and o.requires_grad]
        if own_terms:
            own_gg = torch.autograd.grad(sum(own_terms), [own_in[n] for n in names], allow_unused=True)
    compare_grads(fast_gg, ref_gg, fast_in, "grad2", floor=grad_scale, use_model=False, own_g=own_gg)
    return worst[0]
