"""The equivalence harness itself: the reference passes against itself in every dtype, and every
planted bug of tests/planted.py is caught in at least 99% of the draws of the harness's own
strategies where it changes the answer.

A bug "changes the answer" in a draw when, evaluated in float64 on the draw's inputs (rounded to its
dtype), it moves some value or gradient of the same fast op by more than the least change that
dtype tells apart: one ulp of the result plus one rounding of its magnitude
(implicitdiv.testing.rounding.bound with summation=False). Draws where it does not are not counted (a dropped row whose kernel values all
underflow, a 1e-3 gradient change in bfloat16).
"""
import pytest
import torch
from hypothesis import given, settings

import implicitdiv as idv
from implicitdiv.testing import compare, error_scales, loss_magnitudes

from . import cases, planted
from .equivalence import check_equivalence

PAIRWISE = [
    (idv.kernel_sum, cases.kernel_sum_calls("reference")),
    (idv.mmd2, cases.mmd2_calls("reference")),
    (idv.gaussian_mixture_logpdf, cases.mixture_calls("reference")),
]
RATIO = ["discriminator_loss", "generator_loss", "adversarial_losses", "fdiv_estimate", "ratio_matching_loss"]
GAUSSIAN = ["gaussian_nll", "kl_std_normal", "kl_gaussians", "reparameterize"]


def _all_calls():
    out = [(fn.__name__, fn, strat) for fn, strat in PAIRWISE]
    out += [(n, getattr(idv, n), cases.ratio_calls(n, backend="reference")) for n in RATIO]
    out += [(n, getattr(idv, n), cases.gaussian_calls(n, backend="reference")) for n in GAUSSIAN]
    return out


@pytest.mark.parametrize("name,fn,strategy", _all_calls(), ids=[c[0] for c in _all_calls()])
def test_reference_passes_against_itself_in_every_dtype(name, fn, strategy):
    """The reference in each dtype against itself in float64: the error model's bounds are reachable
    by a plain PyTorch implementation (half precision computed in float32)."""

    @given(strategy)
    def run(call):
        call.run(check_equivalence, fn, "reference", double_backward=False)

    run()


# ---- planted bugs ----------------------------------------------------------------------------------

RATE = 0.99


def rate_draws() -> int:
    """Draws per planted bug: the profile's example count, at least 20 (`ci` 20, `thorough` 1500)."""
    return max(20, settings().max_examples)


BUGS = [  # (family, bug, strategy of the harness, wrapper)
    *[("kernel_sum", b, cases.kernel_sum_calls("cpp"), planted.kernel_sum_bug(b))
      for b in ("drop_row", "drop_column", "drop_tile", "zeros", "flip_bandwidth", "scale_gradient_row")],
    *[("mmd2", b, cases.mmd2_calls("cpp"), planted.mmd2_bug(b))
      for b in ("drop_row", "include_diagonal", "zeros", "flip_bandwidth", "scale_gradient_row")],
    *[("gaussian_mixture_logpdf", b, cases.mixture_calls("cpp"), planted.mixture_bug(b))
      for b in ("drop_column", "drop_tile", "zeros", "scale_gradient_row")],
    *[(f, b, cases.ratio_calls(f, backend="cpp"), planted.ratio_bug(f, b))
      for f in ("discriminator_loss", "adversarial_losses") for b in ("lose_last_block", "zeros", "scale_gradient_row")],
    *[(f, b, cases.gaussian_calls(f, backend="cpp"), planted.gaussian_bug(f, b))
      for f in ("gaussian_nll", "kl_gaussians") for b in ("lose_last_block", "zeros", "scale_gradient_row")],
]


def _reference(function, backend="reference"):
    fn = getattr(idv, function)
    return lambda **kw: fn(**kw, backend=backend)


def _run(call, fast, function, dtype, reference=None, **kw):
    """The harness on fast (backend planted.FAST) against the reference; the largest error over the
    allowed error."""
    roundoff = error_scales.compute_roundoff(call.function, planted.FAST, call.dtype, call.kwargs)
    reference = reference or _reference(function)
    return compare.check_equivalence(fast, reference, call.tensors, dtype=dtype, kwargs=call.kwargs,
                                     grad_names=call.grad_names, double_backward=False, seed=call.seed,
                                     magnitudes=error_scales.for_function(call.function, call.kwargs, call.dtype),
                                     roundoff=roundoff, **kw)


def catch_rate(strategy, fast, function):
    """Counts over rate_draws() draws of strategy: "draws"; "changed", those where the bug moves a value
    or gradient beyond the error model's bound (what no honest implementation may do); "caught" of
    those; "moved", those where it moves one by more than the least change the dtype tells apart
    (rounding.bound with summation=False), and "moved_caught" of those; and the missed calls."""
    counts = dict.fromkeys(("draws", "changed", "caught", "moved", "moved_caught"), 0)
    missed = []

    @settings(max_examples=rate_draws(), derandomize=True, database=None)
    @given(strategy)
    def one(call):
        counts["draws"] += 1
        call.tensors = {n: torch.as_tensor(v).to(call.dtype).double() for n, v in call.tensors.items()}
        exact = dict(reference=_reference(function, planted.FAST), result_dtype=call.dtype, raise_on_mismatch=False)
        beyond_bound = _run(call, fast, function, torch.float64, **exact) > 1.0
        moved = _run(call, fast, function, torch.float64, summation=False, **exact) > 1.0
        if not moved:
            return
        try:
            ratio = _run(call, fast, function, call.dtype)
        except AssertionError:
            ratio = None
        counts["moved"] += 1
        counts["moved_caught"] += ratio is None
        counts["changed"] += beyond_bound
        counts["caught"] += beyond_bound and ratio is None
        if ratio is not None:
            shapes = {n: tuple(t.shape) for n, t in call.tensors.items()}
            missed.append(f"{call.dtype} {shapes} {call.kwargs} seed {call.seed}: error {ratio:.3g}x the allowed"
                          + (" (beyond the bound in float64)" if beyond_bound else ""))

    one()
    return counts, missed


@pytest.mark.parametrize("family,bug,strategy,fast", BUGS, ids=[f"{f}-{b}" for f, b, _, _ in BUGS])
def test_planted_bug_is_caught(family, bug, strategy, fast):
    """Every planted bug is caught in >= 99% of the draws where it changes the answer beyond the error
    model's bound, over the active profile's draws; `pytest -s` prints the counts (and those over
    the wider set of draws where the bug moves the answer at all). The rates over the thorough
    profile's draws: benchmarks/RESULTS.md, "The thorough profile, run"."""
    counts, missed = catch_rate(strategy, fast, family)
    print(f"planted {family}-{bug}: caught {counts['caught']} of {counts['changed']} draws that change the answer "
          f"beyond the bound; {counts['moved_caught']} of {counts['moved']} that move it at all ({counts['draws']} draws)")
    for m in missed:
        print("  missed:", m[:2000])
    assert counts["changed"] > 0, "the strategy never drew a case where the bug matters"
    assert counts["caught"] >= RATE * counts["changed"], counts


# ---- the harness's own mechanics -------------------------------------------------------------------

class _WrongFusedBackward(torch.autograd.Function):
    """x -> sum(x^2) whose own backward is off by 1e-6 but whose create_graph=True path (a backward
    through the reference, as the fast ops' double backward was before it kept the fused values) is
    right: only the first-order check can see it."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return (x * x).sum()

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        if torch.is_grad_enabled():
            with torch.enable_grad():
                return torch.autograd.grad((x * x).sum(), x, g, create_graph=True)
        return g * 2 * x * (1 + 1e-6)


def test_harness_checks_the_fused_backward_not_only_the_fallback():
    def square_sum(*, x, backend):
        return _WrongFusedBackward.apply(x) if backend != "reference" else (x * x).sum()

    tensors = {"x": torch.linspace(-1, 1, 7, dtype=torch.float64)}
    with pytest.raises(AssertionError, match="grad:x"):
        check_equivalence(square_sum, tensors, backend="planted", dtype=torch.float64, grad_names=("x",))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_harness_catches_a_wrong_second_derivative(dtype):
    # in float32 the double backward is also held to the reference run in float32, which is exact here
    def cube(*, x, backend):  # same value and gradient, second derivative off
        out = (x * x).sum()
        return out if backend == "reference" else out + 1e-3 * ((x - x.detach()) ** 2).sum()

    tensors = {"x": torch.linspace(-1, 1, 7, dtype=torch.float64)}
    with pytest.raises(AssertionError, match="grad2:x"):
        check_equivalence(cube, tensors, backend="planted", dtype=dtype, grad_names=("x",))


def test_harness_catches_an_op_that_ignores_strides():
    def contiguous_reader(*, x, y, backend, **kw):
        if backend != "reference" and not x.is_contiguous():
            x = torch.as_strided(x, x.shape, torch.empty(x.shape).stride())  # reads the raw buffer as if packed
        return idv.kernel_sum(x, y, **kw, backend="reference")

    g = torch.Generator().manual_seed(0)
    tensors = {"x": torch.randn(6, 3, generator=g, dtype=torch.float64), "y": torch.randn(5, 3, generator=g, dtype=torch.float64)}
    kw = dict(backend="planted", dtype=torch.float64, kwargs={"kernel": "rbf"}, grad_names=("x", "y"), model="kernel_sum")
    with pytest.raises(AssertionError):
        check_equivalence(contiguous_reader, tensors, noncontiguous=True, **kw)
    check_equivalence(contiguous_reader, tensors, noncontiguous=False, **kw)


@given(call=cases.mmd2_calls("reference"))
def test_harness_checks_the_dtype(call):
    def wrong_dtype(*, backend, **kw):
        return idv.mmd2(**kw, backend="reference").double()

    with pytest.raises(AssertionError, match="dtype"):
        check_equivalence(wrong_dtype, call.tensors, backend="x", dtype=torch.float32, kwargs=call.kwargs, model="mmd2")



def test_a_finite_value_summed_from_overflowing_terms_may_be_nan_or_infinite():
    # d/dfake of both outputs of the saturating KL game at fake = 110: exp(109) in each output's
    # derivative overflows float32, their upstream-weighted sum is finite in float64; float32's own
    # arithmetic (the reference run in float32) gives inf - inf = NaN there, and so may a fast op.
    f32 = {"real": torch.tensor([1.54, -0.29]), "fake": torch.tensor([110.0, 22.8]).requires_grad_()}
    d, g = idv.adversarial_losses(**f32, kind="kl", saturating=True, backend="reference")
    grad = torch.autograd.grad(d + 0.5 * g, f32["fake"])[0]
    assert grad[0].isnan() and grad[1].isfinite()

    expected = torch.tensor([5.0, 3.0, 3.0], dtype=torch.float64)  # finite true values
    actual = torch.tensor([float("nan"), float("-inf"), 3.0])
    overflowing_terms = (torch.tensor([4e46, 4e46, 3.0], dtype=torch.float64), 2)
    compare.assert_close(actual, expected, torch.float32, "g", magnitude=overflowing_terms)
    for where in (0, 1):  # the same non-finite result where the terms do not overflow is a mismatch
        m = overflowing_terms[0].clone()
        m[where] = 3.0
        with pytest.raises(compare.Mismatch):
            compare.assert_close(actual, expected, torch.float32, "g", magnitude=(m, 2))


def test_a_true_value_just_past_the_dtype_max_may_round_to_the_max():
    # float16 rounds 65510 to its max, 65504, not to inf; a value far past the max may not come out finite
    expected = torch.tensor([65510.0, 1.0], dtype=torch.float64)
    compare.assert_close(torch.tensor([65504.0, 1.0], dtype=torch.float16), expected, torch.float16, "v")
    compare.assert_close(torch.tensor([float("inf"), 1.0], dtype=torch.float16), expected, torch.float16, "v")
    with pytest.raises(compare.Mismatch):
        compare.assert_close(torch.tensor([60000.0, 1.0], dtype=torch.float16), expected * 1.2, torch.float16, "v")
    with pytest.raises(compare.Mismatch):
        compare.assert_close(torch.tensor([-float("inf"), 1.0], dtype=torch.float16), expected, torch.float16, "v")
    # a double backward checked without an error model, at a scale of 1e16 (float16 terms far past its
    # max): the allowed interval around 1.5e6 reaches below -65504 as well, so -inf is within it
    loose = torch.tensor([1.5e6], dtype=torch.float64)
    compare.assert_close(torch.tensor([-float("inf")], dtype=torch.float16), loose, torch.float16, "grad2", scale=1e16)
    with pytest.raises(compare.Mismatch):
        compare.assert_close(torch.tensor([-float("inf")], dtype=torch.float16), loose, torch.float16, "grad2", scale=1e4)


def test_a_gradient_from_a_saved_derivative_past_the_max_may_be_non_finite():
    # discriminator_loss(kind="hellinger", reduction="none") saves e^v per fake logit in float32; at
    # v = 89.46 that is 7.4e38, past float32's max, while the gradient under a per-element upstream of
    # 0.0029 is a finite 2.1e36 (a thorough-profile draw of the Triton kernels; ops/overflow.py). The
    # error model names that derivative (the third entry), and only there may the result be non-finite.
    v = torch.tensor([89.46, 3.0], dtype=torch.float64)
    up = torch.tensor([-0.0029, 0.5], dtype=torch.float64)
    found = loss_magnitudes.ratio_loss("discriminator_loss", {"real": torch.zeros(1, dtype=torch.float64), "fake": v},
                                       {"kind": "hellinger", "reduction": "none"}, [torch.zeros(1), up])
    m, length, formed = found["fake"]
    assert formed[0] > torch.finfo(torch.float32).max > formed[1]
    expected = up * torch.exp(v)
    compare.assert_close(torch.tensor([-float("inf"), float(expected[1])]), expected, torch.float32, "g",
                         magnitude=found["fake"])
    with pytest.raises(compare.Mismatch):  # non-finite where the saved derivative is in range
        compare.assert_close(torch.tensor([float(expected[0]), float("nan")]), expected, torch.float32, "g",
                             magnitude=found["fake"])
    with pytest.raises(compare.Mismatch):  # a wrong finite value there is still wrong
        compare.assert_close(torch.tensor([float(expected[0]) * 1.01, float(expected[1])]), expected, torch.float32,
                             "g", magnitude=found["fake"])
    reduced = loss_magnitudes.ratio_loss("discriminator_loss", {"real": torch.zeros(1, dtype=torch.float64), "fake": v},
                                         {"kind": "hellinger", "reduction": "mean"}, [torch.tensor(0.5)])
    assert len(reduced["fake"]) == 2  # a 0-dim upstream: the op redoes an overflowed backward, no allowance


@pytest.mark.parametrize("reduction", ["none", "sum"])
def test_gaussian_saved_derivatives_are_named_for_per_row_upstreams_only(reduction):
    z = torch.tensor([[1000.0, 0.1]], dtype=torch.float64)
    m, lv = torch.zeros(2, dtype=torch.float64), torch.tensor([[-80.0, 0.0]], dtype=torch.float64)
    up = torch.full((1,) if reduction == "none" else (), 0.01, dtype=torch.float64)
    found = loss_magnitudes.gaussian_terms("gaussian_nll", {"z": z, "mean": m, "logvar": lv},
                                           {"reduction": reduction}, [up])
    if reduction != "none":
        assert all(len(v) == 2 for v in found.values())
        return
    top = torch.finfo(torch.float32).max
    assert found["logvar"][2][0, 0] > top > found["logvar"][2][0, 1]  # 1/2 (z - m)^2 e^-lv: 2.8e40
    assert found["mean"][2].shape == (2,) and found["mean"][2][0] == found["z"][2][0, 0]  # broadcast: its largest
