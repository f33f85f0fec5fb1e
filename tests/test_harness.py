"""The equivalence harness run reference-against-reference, and proof that it catches planted errors
in values, gradients, double backward and strided reads."""
import pytest
import torch
from hypothesis import given, settings

import implicitdiv as idv

from . import cases
from .equivalence import check_equivalence

PAIRWISE = [
    (idv.kernel_sum, cases.kernel_sum_calls()),
    (idv.mmd2, cases.mmd2_calls()),
    (idv.gaussian_mixture_logpdf, cases.mixture_calls()),
]
RATIO = ["discriminator_loss", "generator_loss", "adversarial_losses", "fdiv_estimate", "ratio_matching_loss"]
GAUSSIAN = ["gaussian_nll", "kl_std_normal", "kl_gaussians", "reparameterize"]


def _all_calls():
    out = [(fn.__name__, fn, strat) for fn, strat in PAIRWISE]
    out += [(n, getattr(idv, n), cases.ratio_calls(n)) for n in RATIO]
    out += [(n, getattr(idv, n), cases.gaussian_calls(n)) for n in GAUSSIAN]
    return out


@pytest.mark.parametrize("name,fn,strategy", _all_calls(), ids=[c[0] for c in _all_calls()])
def test_reference_passes_against_itself_in_every_dtype(name, fn, strategy):
    """The float32 reference against the float64 one: the float32 tolerances are reachable."""

    @settings(max_examples=12)
    @given(strategy)
    def run(call):
        call.run(check_equivalence, fn, "reference")

    run()


def _perturbed(fn, how):
    """fn with a planted error under any backend other than the reference."""

    def wrapped(*, backend, **kw):
        out = fn(**kw, backend="reference")
        if backend == "reference":
            return out
        x = next(v for v in kw.values() if isinstance(v, torch.Tensor) and v.requires_grad)
        if how == "value":
            return out + 1e-6 * (1 + out.detach().abs())
        if how == "gradient":  # same value, gradient off by 1e-6
            return out + 1e-6 * (x - x.detach()).sum()
        if how == "double_backward":  # same value and gradient, second derivative off
            return out + 1e-3 * ((x - x.detach()) ** 2).sum()
        raise AssertionError(how)

    return wrapped


@pytest.mark.parametrize("how,where", [("value", "out0"), ("gradient", "grad:"), ("double_backward", "grad2:")])
@settings(max_examples=8)
@given(call=cases.kernel_sum_calls(kernels=("rbf", "imq", "laplacian"), max_size=20))
def test_harness_catches_a_planted_error(how, where, call):
    with pytest.raises(AssertionError, match=where):
        check_equivalence(_perturbed(idv.kernel_sum, how), call.tensors, backend="planted", dtype=torch.float64,
                          kwargs=call.kwargs, grad_names=call.grad_names, seed=call.seed, scales=call.scales)


class _WrongFusedBackward(torch.autograd.Function):
    """x -> sum(x^2) whose own backward is off by 1e-6 but whose create_graph=True path (the
    reference fallback every fast op has) is right: only the first-order check can see it."""

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


def test_harness_catches_an_op_that_ignores_strides():
    def contiguous_reader(*, x, y, backend, **kw):
        if backend != "reference" and not x.is_contiguous():
            x = torch.as_strided(x, x.shape, torch.empty(x.shape).stride())  # reads the raw buffer as if packed
        return idv.kernel_sum(x, y, **kw, backend="reference")

    g = torch.Generator().manual_seed(0)
    tensors = {"x": torch.randn(6, 3, generator=g, dtype=torch.float64), "y": torch.randn(5, 3, generator=g, dtype=torch.float64)}
    with pytest.raises(AssertionError):
        check_equivalence(contiguous_reader, tensors, backend="planted", dtype=torch.float64, kwargs={"kernel": "rbf"},
                          grad_names=("x", "y"), noncontiguous=True)
    check_equivalence(contiguous_reader, tensors, backend="planted", dtype=torch.float64, kwargs={"kernel": "rbf"},
                      grad_names=("x", "y"), noncontiguous=False)


@settings(max_examples=5)
@given(call=cases.mmd2_calls())
def test_harness_passes_a_faithful_op_and_checks_dtype(call):
    check_equivalence(idv.mmd2, call.tensors, backend="reference", dtype=torch.float64, kwargs=call.kwargs,
                      grad_names=call.grad_names, seed=call.seed, scales=call.scales)

    def wrong_dtype(*, backend, **kw):
        return idv.mmd2(**kw, backend="reference").double()

    with pytest.raises(AssertionError, match="dtype"):
        check_equivalence(wrong_dtype, call.tensors, backend="x", dtype=torch.float32, kwargs=call.kwargs)
