"""Inputs users pass beyond float32/float64 points and number bandwidths: half-precision CPU tensors
on every backend, and learned bandwidths (a tensor that requires grad), whose gradient every backend
returns; the functions that cannot differentiate with respect to a bandwidth refuse one."""
from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import implicitdiv as idv
from implicitdiv.reference import pairwise as ref
from implicitdiv.testing import compare
from implicitdiv.testing import strategies as ids

BACKENDS = idv.backends()
SCALED = ("rbf", "laplacian", "imq")


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_cpu_tensors_under_auto(dtype):
    """Computed in float32, returned in the input dtype (the C++ buffer layer used to raise a TypeError)."""
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(30, 3, generator=g).to(dtype), torch.randn(20, 3, generator=g).to(dtype)
    calls = [lambda t, u: idv.mmd2(t, u, estimator="unbiased"), lambda t, u: idv.kernel_sum(t, u, kernel="laplacian"),
             lambda t, u: idv.kernel_sum(t, t), lambda t, u: idv.adversarial_losses(t[:, 0], u[:, 0]),
             lambda t, u: idv.gaussian_nll(t, t.flip(0), t * 0), lambda t, u: idv.gaussian_mixture_logpdf(t, u, u * 0),
             lambda t, u: idv.reparameterize(t, t * 0, t)]
    for call in calls:
        got = call(x.requires_grad_(), y)
        want = call(x.detach().float(), y.float())
        for a, b in zip(got if isinstance(got, tuple) else (got,), want if isinstance(want, tuple) else (want,)):
            assert a.dtype == dtype
            torch.testing.assert_close(a.float(), b.to(dtype).float(), rtol=0, atol=0)
        out = sum(o.float().sum() for o in (got if isinstance(got, tuple) else (got,)))
        (grad,) = torch.autograd.grad(out, x)
        assert grad.dtype == dtype and torch.isfinite(grad).all()
        x = x.detach()


def _reference_sum(kernel, estimator):
    """The sum or MMD^2 through the reference kernels with the bandwidths as a tensor: plain autograd."""
    def fn(x, y, bandwidth, backend=None):
        if estimator is None:
            one_x, one_y = x.new_ones(1, x.shape[0], 1), y.new_ones(1, y.shape[0], 1)
            return ref.kernel_sum(x[None], y[None], one_x, one_y, kernel, bandwidth)[0, 0]
        return ref.mmd2(x[None], y[None], kernel, bandwidth, estimator)[0]
    return fn


@pytest.mark.parametrize("backend", BACKENDS)
@given(kernel=st.sampled_from(SCALED), estimator=st.sampled_from([None, "biased", "unbiased", "linear"]),
       count=st.integers(1, 3), data=st.data())
def test_learned_bandwidths_get_their_gradient(backend, kernel, estimator, count, data):
    x, y = data.draw(ids.samples(data.draw(st.integers(2, 40)), data.draw(st.integers(2, 40)), 3))
    scale = ids.typical_distance(x, y)
    sigma = torch.tensor([scale * data.draw(ids.magnitudes(-1, 1)) for _ in range(count)], dtype=torch.float64)
    if estimator == "linear" and backend != "reference":
        estimator = "unbiased"

    def fast(x, y, bandwidth):
        if estimator is None:
            return idv.kernel_sum(x, y, kernel=kernel, bandwidth=bandwidth, backend=backend)
        return idv.mmd2(x, y, kernel=kernel, bandwidth=bandwidth, estimator=estimator, backend=backend)

    compare.check_equivalence(fast, _reference_sum(kernel, estimator), {"x": x, "y": y, "bandwidth": sigma},
                              dtype=torch.float64, grad_names=("x", "y", "bandwidth"))


@pytest.mark.parametrize("backend", BACKENDS)
def test_learned_bandwidth_of_the_symmetric_sum_and_a_list_of_tensors(backend):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(25, 4, generator=g, dtype=torch.float64, requires_grad=True)
    s1, s2 = torch.tensor(0.8, dtype=torch.float64, requires_grad=True), torch.tensor(2.5, dtype=torch.float64)
    got = idv.kernel_sum(x, x, kernel="rbf", bandwidth=[s1, s2], backend=backend)
    one = x.new_ones(1, 25, 1)
    want = ref.kernel_sum(x[None], x[None], one, one, "rbf", torch.stack([s1, s2]))[0, 0]
    torch.testing.assert_close(got, want)
    for a, b in zip(torch.autograd.grad(got, (x, s1)), torch.autograd.grad(want, (x, s1))):
        torch.testing.assert_close(a, b)


def test_functions_without_a_bandwidth_gradient_refuse_one():
    x, y = torch.randn(10, 2), torch.randn(8, 2)
    sigma = torch.tensor(1.0, requires_grad=True)
    with pytest.raises(ValueError, match="bandwidth requires grad"):
        idv.mmd_test(x, y, bandwidth=sigma, permutations=10)
    with pytest.raises(ValueError, match="bandwidth requires grad"):
        idv.mmd_test(x, y, bandwidth=[sigma, 2.0], permutations=10)
    with torch.no_grad():  # no gradient asked for: the value is used
        idv.mmd_test(x, y, bandwidth=sigma, permutations=10)
    assert idv.mmd2(x, y, kernel="energy", bandwidth=sigma).grad_fn is None  # no scale, no dependence
