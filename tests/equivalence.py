"""The numerical-equivalence harness: a fast op against the float64 reference.

Given a public function, a backend, a dtype and float64 input values, `check_equivalence`
  1. runs the function on that backend in that dtype (optionally on non-contiguous views),
  2. runs it with backend="reference" in float64,
  3. compares the values, then the gradients of <outputs, u> for a random upstream u (never all
     ones), then -- with create_graph=True -- the gradients of <grads, v> (double backward),
with the per-dtype tolerances of TOLERANCES, the one place they are written.

An error is measured against a scale: |fast - ref| <= atol * scale + rtol * |ref|, where the scale
is the largest |ref| of that tensor unless the case gives a larger one (a sum with cancellation,
whose rounding error follows the size of its terms rather than of the result).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from hypothesis import strategies as st


@dataclass(frozen=True)
class Tolerance:
    rtol: float
    atol: float  # relative to the tensor's scale


TOLERANCES: dict[torch.dtype, Tolerance] = {
    torch.float64: Tolerance(rtol=1e-10, atol=1e-11),
    torch.float32: Tolerance(rtol=2e-4, atol=2e-4),
    torch.bfloat16: Tolerance(rtol=2e-2, atol=2e-2),
    torch.float16: Tolerance(rtol=5e-3, atol=5e-3),
}

# Sizes that exercise the edges of any tiling: 1, tile multiples and their neighbours.
EDGE_SIZES = (1, 2, 3, 7, 8, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 129)


def sizes(max_size: int = 129) -> st.SearchStrategy[int]:
    edges = [s for s in EDGE_SIZES if s <= max_size]
    return st.one_of(st.sampled_from(edges), st.integers(1, max_size))


def float_dtypes() -> st.SearchStrategy[torch.dtype]:
    return st.sampled_from([torch.float32, torch.float64])


def bandwidth_specs() -> st.SearchStrategy:
    one = st.floats(0.25, 4.0)
    return st.one_of(one, st.lists(one, min_size=1, max_size=5).map(tuple))


def _as_input(value, dtype: torch.dtype, noncontiguous: bool, requires_grad: bool) -> torch.Tensor:
    t = torch.as_tensor(value, dtype=torch.float64)
    if noncontiguous and t.dim() >= 1:
        # same values, doubled last dim read with a stride of 2: a strided view, not a copy
        wide = torch.stack([t, torch.full_like(t, float("nan"))], dim=-1).reshape(*t.shape[:-1], 2 * t.shape[-1])
        t = wide.to(dtype)[..., ::2]
        assert not t.is_contiguous() or t.numel() <= 1
    else:
        t = t.to(dtype)
    return t.requires_grad_(requires_grad)


def _flatten(out) -> list[torch.Tensor]:
    return list(out) if isinstance(out, (tuple, list)) else [out]


def assert_close(actual: torch.Tensor, expected: torch.Tensor, dtype: torch.dtype, what: str, scale: float | None = None):
    tol = TOLERANCES[dtype]
    actual = actual.detach().to(torch.float64)
    expected = expected.detach().to(torch.float64)
    # a true value beyond the dtype's range is an infinity in that dtype
    big = expected.abs() > torch.finfo(dtype).max
    expected = torch.where(big, expected.sign() * float("inf"), expected)
    assert actual.shape == expected.shape, f"{what}: shape {tuple(actual.shape)} != reference {tuple(expected.shape)}"
    nan_a, nan_e = torch.isnan(actual), torch.isnan(expected)
    assert torch.equal(nan_a, nan_e), f"{what}: NaN pattern differs from the reference"
    a, e = actual[~nan_e], expected[~nan_e]
    if e.numel() == 0:
        return
    finite = torch.isfinite(e)
    assert torch.equal(a[~finite], e[~finite]), f"{what}: infinities differ from the reference"
    a, e = a[finite], e[finite]
    if e.numel() == 0:
        return
    s = float(e.abs().max())
    if scale is not None:
        s = max(s, float(scale))
    s = max(s, 1e-30)
    err = (a - e).abs()
    bound = tol.atol * s + tol.rtol * e.abs()
    worst = int(torch.argmax(err - bound))
    assert bool((err <= bound).all()), (
        f"{what} ({dtype}): |fast - ref| = {float(err[worst]):.3e} > bound {float(bound[worst]):.3e} "
        f"at flat index {worst} (fast {float(a[worst]):.9g}, ref {float(e[worst]):.9g}, scale {s:.3e})"
    )


def check_equivalence(
    fn,
    tensors: dict,
    *,
    backend: str,
    dtype: torch.dtype,
    kwargs: dict | None = None,
    grad_names: tuple[str, ...] = (),
    noncontiguous: bool = False,
    double_backward: bool = True,
    seed: int = 0,
    scales: dict | None = None,
    reference_fn=None,
):
    """Check fn(**tensors, **kwargs, backend=backend) in ``dtype`` against the float64 reference.

    tensors: name -> float64 values (numpy arrays or tensors); both sides see them rounded to
        ``dtype`` first, so what is compared is the op's error, not the inputs' rounding.
    grad_names: the tensors whose gradients are compared: first the op's own backward
        (create_graph=False), then, with double_backward, the create_graph=True gradients and the
        gradients of <those, v>.
    scales: optional error scales, keyed "out0", "out1", ... for outputs and "grad:<name>",
        "grad2:<name>" for gradients.
    reference_fn: the ground truth, default fn itself with backend="reference".
    """
    kwargs = kwargs or {}
    scales = scales or {}
    reference_fn = reference_fn or fn
    rounded = {n: torch.as_tensor(v, dtype=torch.float64).to(dtype).to(torch.float64) for n, v in tensors.items()}
    names = list(grad_names)
    gen = torch.Generator().manual_seed(seed)

    def run():
        fast_in = {n: _as_input(v, dtype, noncontiguous, n in grad_names) for n, v in rounded.items()}
        fast_out = _flatten(fn(**fast_in, **kwargs, backend=backend))
        return fast_in, fast_out

    fast_in, fast_out = run()
    ref_in = {n: _as_input(v, torch.float64, False, n in grad_names) for n, v in rounded.items()}
    ref_out = _flatten(reference_fn(**ref_in, **kwargs, backend="reference"))
    assert len(fast_out) == len(ref_out), "the fast op returns a different number of outputs"
    for i, (f, r) in enumerate(zip(fast_out, ref_out)):
        assert f.dtype == dtype, f"out{i}: dtype {f.dtype}, expected {dtype}"
        assert_close(f, r, dtype, f"out{i}", scales.get(f"out{i}"))
    if not grad_names:
        return

    differentiable = [i for i, r in enumerate(ref_out) if r.requires_grad]
    upstream = [torch.randn(ref_out[i].shape, generator=gen, dtype=torch.float64) + 0.5 for i in differentiable]

    def grads(outs, ins, create_graph):
        outs_d = [outs[i] for i in differentiable]
        ups = [u.to(outs_d[k].dtype) for k, u in enumerate(upstream)]
        return torch.autograd.grad(outs_d, [ins[n] for n in names], ups, create_graph=create_graph, allow_unused=True)

    def compare(fast_g, ref_g, ins, label, floor=0.0):
        # A gradient that is exactly 0 in theory (a second derivative of |x - y| in 1-D, say) is
        # rounding noise in the fast op; its scale is that of the other gradients of the same call.
        scale = max(_largest(ref_g), floor)
        for n, f, r in zip(names, fast_g, ref_g):
            f = torch.zeros_like(ins[n]) if f is None else f
            r = torch.zeros_like(ref_in[n]) if r is None else r
            assert_close(f, r, dtype, f"{label}:{n}", max(scale, scales.get(f"{label}:{n}", 0.0)))
        return scale

    ref_g = grads(ref_out, ref_in, double_backward)
    grad_scale = compare(grads(fast_out, fast_in, False), ref_g, fast_in, "grad")  # the op's own backward
    if not double_backward:
        return

    fast_in, fast_out = run()
    fast_g = grads(fast_out, fast_in, True)
    compare(fast_g, ref_g, fast_in, "grad")
    probes = [torch.randn(ref_in[n].shape, generator=gen, dtype=torch.float64) for n in names]
    pairs = [(f, r, p) for f, r, p in zip(fast_g, ref_g, probes) if r is not None and r.requires_grad]
    if not pairs:
        return
    fast_s = sum((f * p.to(dtype)).sum() for f, _, p in pairs)
    ref_s = sum((r * p).sum() for _, r, p in pairs)
    fast_gg = torch.autograd.grad(fast_s, [fast_in[n] for n in names], allow_unused=True)
    ref_gg = torch.autograd.grad(ref_s, [ref_in[n] for n in names], allow_unused=True)
    compare(fast_gg, ref_gg, fast_in, "grad2", floor=grad_scale)


def _largest(tensors) -> float:
    finite = [t.detach().abs()[torch.isfinite(t.detach())] for t in tensors if t is not None]
    return max([float(t.max()) for t in finite if t.numel()] + [0.0])
