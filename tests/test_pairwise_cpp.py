"""The C++ tiled pairwise engine (backend="cpp") against the float64 reference: values, first
gradients through the fused backward, double backward through the reference fallback, gradcheck,
bits across thread counts, torch.compile, near-duplicate points and tile edges."""
from __future__ import annotations

import contextlib
import importlib.util
import os

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import implicitdiv as idv
from implicitdiv.backend import resolve
from implicitdiv.reference.kernels import KERNELS

from .cases import fixed_kernel, kernel_sum_calls, mixture_calls, mmd2_calls
from .equivalence import assert_close, check_equivalence

pytestmark = pytest.mark.skipif("cpp" not in idv.backends(), reason="implicitdiv._C is not built")
cpp_pairwise = pytest.importorskip("implicitdiv.fused.cpp.pairwise", reason="implicitdiv._C is not built")

BW_MIX = (0.5, 1.0, 2.0)


@contextlib.contextmanager
def threads(n: int):
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


# ---- the equivalence harness ---------------------------------------------------------------------
# double_backward=False: first gradients only (with create_graph they are the same C++ values, with
# the reference's graph; the double backward tests below cover that path).

@given(kernel_sum_calls())
def test_kernel_sum_matches_reference(call):
    call.run(check_equivalence, idv.kernel_sum, "cpp", double_backward=False)


@given(kernel_sum_calls(sym=True))
def test_kernel_sum_sym_matches_reference(call):
    call.run(check_equivalence, _sym, "cpp", double_backward=False)


def _sym(x, x_weights=None, **kw):
    return idv.kernel_sum(x, x, x_weights=x_weights, y_weights=x_weights, **kw)


@given(mmd2_calls())
def test_mmd2_matches_reference(call):
    call.run(check_equivalence, idv.mmd2, "cpp", double_backward=False)


@given(mixture_calls())
def test_mixture_logpdf_matches_reference(call):
    call.run(check_equivalence, idv.gaussian_mixture_logpdf, "cpp", double_backward=False)


@given(kernel_sum_calls())
def test_double_backward_falls_back_to_reference(call):
    call.run(check_equivalence, idv.kernel_sum, "cpp", double_backward=True)


@given(mixture_calls())
def test_mixture_double_backward_falls_back_to_reference(call):
    call.run(check_equivalence, idv.gaussian_mixture_logpdf, "cpp", double_backward=True)


# ---- sizes past the hypothesis range: many tiles, wide features, many weight columns -------------

@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_exp_keeps_the_normal_range(dtype):
    # rbf values from 2^4 down to just above the smallest normal number come out to their rounding;
    # below it the engine's exp may give 0 (the contract of csrc/pairwise_simd.h's vexp)
    tiny = torch.finfo(dtype).tiny
    logs = torch.tensor([-20.0, -80.0, -87.3, -708.0, -708.39], dtype=torch.float64) if dtype == torch.float64 else \
        torch.tensor([-20.0, -80.0, -87.0, -87.3, -87.336], dtype=torch.float64)
    logs = logs[logs > torch.log(torch.tensor(tiny, dtype=torch.float64))]
    y = (-2.0 * logs).sqrt().unsqueeze(1)  # rbf at bandwidth 1: k = exp(-y^2 / 2) = exp(log)
    x = torch.zeros(1, 1, dtype=torch.float64)
    y = y.to(dtype).double()  # the inputs as the op sees them
    k = torch.stack([idv.kernel_sum(x.to(dtype), r.view(1, 1).to(dtype), kernel="rbf", backend="cpp") for r in y])
    expected = torch.exp(-0.5 * y.view(-1) ** 2)
    u = torch.finfo(dtype).eps / 2  # s = y^2 rounds by u, exp's argument by |log| u, the result by a few u
    assert ((k.double().view(-1) / expected - 1).abs() <= (2 * logs.abs() + 8) * u).all(), (k.view(-1), expected)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("kernel", KERNELS)
def test_many_tiles_wide_features_and_weights(dtype, kernel):
    rng = np.random.default_rng(3)
    n, m, d, p = 150, 1100, 40, 9  # > 16 column tiles: the lane accumulators are flushed mid-row
    tensors = {
        "x": rng.standard_normal((n, d)) / np.sqrt(d),
        "y": rng.standard_normal((m, d)) / np.sqrt(d) + 0.1,
        "x_weights": rng.standard_normal((n, p)),
        "y_weights": rng.standard_normal((m, p)),
    }
    check_equivalence(idv.kernel_sum, tensors, backend="cpp", dtype=dtype, kwargs=fixed_kernel(kernel, BW_MIX)[0],
                      grad_names=tuple(tensors), double_backward=False)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_mixture_many_components(dtype):
    rng = np.random.default_rng(4)
    tensors = {"z": rng.standard_normal((100, 12)), "means": rng.standard_normal((1100, 12)),
               "logvars": rng.uniform(-2.0, 1.0, (1100, 12))}
    check_equivalence(idv.gaussian_mixture_logpdf, tensors, backend="cpp", dtype=dtype,
                      grad_names=tuple(tensors), double_backward=False)


# ---- the training pass: value and every gradient from one walk over the pairs -------------------
# With one weight column and an input that needs a gradient, the forward runs the training pass
# (csrc/pairwise_fused.h) and the backward only scales its gradients. It must equal the forward then
# backward schedule; float64 to 1e-10 and float32 to 1e-4 of the largest entry (both schedules
# round the same pair terms in float32 but add them in different orders).

def _close(got, want, dtype):
    tol = 1e-10 if dtype == torch.float64 else 1e-4
    err = (got - want).abs().max() / want.abs().max().clamp(min=1e-30)
    assert err <= tol, f"relative error {err:.2e} above {tol:.0e}"


@given(st.integers(1, 3), st.integers(1, 300), st.integers(1, 300), st.integers(1, 24), st.sampled_from(KERNELS),
       st.sampled_from([torch.float32, torch.float64]), st.booleans(), st.integers(0, 2**31 - 1))
def test_training_pass_equals_forward_then_backward(batch, n, m, d, kernel, dtype, exclude_diag, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, n, d, generator=g, dtype=dtype)
    y = torch.randn(batch, m, d, generator=g, dtype=dtype) + 0.3
    x[:, 0] = y[:, 0]  # a pair recomputed from differences
    a = torch.rand(batch, n, 1, generator=g, dtype=dtype)
    b = torch.randn(batch, m, 1, generator=g, dtype=dtype)
    one = torch.ones(batch, 1, dtype=dtype)
    bw = fixed_kernel(kernel, (0.7, 2.0))[1]
    everything = (True,) * 4
    want = (cpp_pairwise.kernel_sum_forward(x, y, a, b, kernel, bw),
            *cpp_pairwise.kernel_sum_backward(one, x, y, a, b, kernel, bw, everything))
    for got, expected in zip(cpp_pairwise.kernel_sum_fused(x, y, a, b, kernel, bw, everything), want):
        _close(got, expected, dtype)
    want = (cpp_pairwise.kernel_sum_sym_forward(x, a, kernel, bw, exclude_diag),
            *cpp_pairwise.kernel_sum_sym_backward(one, x, a, kernel, bw, exclude_diag, (True, True)))
    for got, expected in zip(cpp_pairwise.kernel_sum_sym_fused(x, a, kernel, bw, exclude_diag, (True, True)), want):
        _close(got, expected, dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("kernel", KERNELS)
def test_training_pass_many_tiles(dtype, kernel):
    rng = np.random.default_rng(8)
    n, m, d = 700, 1100, 40  # several chunks of row tiles, and > 16 column tiles per row
    tensors = {"x": rng.standard_normal((n, d)) / np.sqrt(d), "y": rng.standard_normal((m, d)) / np.sqrt(d) + 0.1,
               "x_weights": rng.standard_normal(n), "y_weights": rng.standard_normal(m)}
    kwargs = fixed_kernel(kernel, BW_MIX)[0]
    check_equivalence(idv.kernel_sum, tensors, backend="cpp", dtype=dtype, kwargs=kwargs, grad_names=tuple(tensors),
                      double_backward=False)
    sym = {"x": tensors["x"], "x_weights": tensors["x_weights"]}
    check_equivalence(_sym, sym, backend="cpp", dtype=dtype, kwargs=kwargs, grad_names=tuple(sym),
                      double_backward=False, model="kernel_sum_sym")


def test_training_pass_gradients_survive_a_second_backward():
    g = torch.Generator().manual_seed(9)
    x = torch.randn(120, 5, generator=g, requires_grad=True)
    y = torch.randn(90, 5, generator=g, requires_grad=True)
    loss = idv.mmd2(x, y, bandwidth=1.5, backend="cpp")
    first = torch.autograd.grad(2.0 * loss, (x, y), retain_graph=True)
    second = torch.autograd.grad(2.0 * loss, (x, y))
    assert all(torch.equal(a, b) for a, b in zip(first, second))
    with torch.no_grad():
        plain = idv.mmd2(x, y, bandwidth=1.5, backend="cpp")
    _close(loss.detach(), plain, torch.float32)


# ---- gradcheck in float64 through the public functions ------------------------------------------

@pytest.mark.parametrize("kernel", KERNELS)
def test_gradcheck_kernel_sum(kernel):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 9, 3, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.randn(2, 7, 3, generator=g, dtype=torch.float64, requires_grad=True)
    a = torch.randn(2, 9, 4, generator=g, dtype=torch.float64, requires_grad=True)
    b = torch.randn(2, 7, 4, generator=g, dtype=torch.float64, requires_grad=True)

    def f(x, y, a, b):
        return idv.kernel_sum(x, y, kernel=kernel, bandwidth=(0.7, 1.9), x_weights=a, y_weights=b, backend="cpp")

    assert torch.autograd.gradcheck(f, (x, y, a, b))


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("estimator", ["biased", "unbiased"])
def test_gradcheck_mmd2(kernel, estimator):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(11, 4, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.randn(8, 4, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda x, y: idv.mmd2(x, y, kernel=kernel, bandwidth=1.3, estimator=estimator, backend="cpp"), (x, y))


def test_gradcheck_mixture_logpdf():
    g = torch.Generator().manual_seed(2)
    z = torch.randn(10, 3, generator=g, dtype=torch.float64, requires_grad=True)
    m = torch.randn(6, 3, generator=g, dtype=torch.float64, requires_grad=True)
    lv = (torch.rand(6, 3, generator=g, dtype=torch.float64) - 0.5).requires_grad_()
    assert torch.autograd.gradcheck(lambda z, m, lv: idv.gaussian_mixture_logpdf(z, m, lv, backend="cpp"), (z, m, lv))


# ---- determinism: the same bits whatever the thread count ----------------------------------------

def _all_outputs(dtype):
    g = torch.Generator().manual_seed(5)
    x = torch.randn(700, 9, generator=g).to(dtype).requires_grad_()
    y = (torch.randn(650, 9, generator=g) + 0.2).to(dtype).requires_grad_()
    w = torch.randn(700, 6, generator=g).to(dtype).requires_grad_()
    z = torch.randn(500, 9, generator=g).to(dtype).requires_grad_()
    lv = (0.1 * torch.randn(700, 9, generator=g)).to(dtype)
    outs = []
    for est in ("biased", "unbiased"):
        v = idv.mmd2(x, y, kernel="laplacian", bandwidth=BW_MIX, estimator=est, backend="cpp")
        outs += [v.detach(), *torch.autograd.grad(v, (x, y))]
    v = idv.kernel_sum(x, x, kernel="rbf", bandwidth=BW_MIX, x_weights=w, y_weights=w, backend="cpp")
    outs += [v.detach(), *torch.autograd.grad(v.sum(), (x, w))]
    v = idv.gaussian_mixture_logpdf(z, x, lv, backend="cpp")
    outs += [v.detach(), *torch.autograd.grad(v.sum(), (z, x))]
    return outs


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_same_bits_for_any_thread_count(dtype):
    with threads(1):
        one = _all_outputs(dtype)
    with threads(3):
        three = _all_outputs(dtype)
    for a, b in zip(one, three):
        assert torch.equal(a, b)


def _losses_outputs(dtype):
    g = torch.Generator().manual_seed(6)
    real = (3 * torch.randn(300_000, generator=g)).to(dtype).requires_grad_()
    fake = (3 * torch.randn(200_000, generator=g)).to(dtype).requires_grad_()
    z, m = torch.randn(2, 4096, 64, generator=g).to(dtype).unbind(0)
    lv = (0.1 * torch.randn(4096, 64, generator=g)).to(dtype).requires_grad_()
    d, gen = idv.adversarial_losses(real, fake, kind="gan", backend="cpp")
    nll = idv.gaussian_nll(z, m, lv, backend="cpp")
    return [d.detach(), gen.detach(), *torch.autograd.grad(d + 2 * gen, (real, fake)), nll.detach(),
            *torch.autograd.grad(nll, (lv,))]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_same_bits_on_openmp_teams_and_std_threads(dtype):
    """csrc/threads.h takes its teams from torch's OpenMP runtime when _C is bound to it
    (implicitdiv/fused/cpp/threads.py), from std::threads otherwise: same bits either way."""
    from implicitdiv import _C
    from implicitdiv.fused import cpp

    if not _C.openmp_built():
        pytest.skip("implicitdiv._C was built without OpenMP")
    try:
        with threads(2):
            _C.use_openmp_team(False)
            by_threads = _all_outputs(dtype) + _losses_outputs(dtype)
            assert _C.use_openmp_team(True)
            by_openmp = _all_outputs(dtype) + _losses_outputs(dtype)
    finally:
        _C.use_openmp_team(cpp.OPENMP_TEAMS)
    for a, b in zip(by_threads, by_openmp):
        assert torch.equal(a, b)


def test_openmp_teams_only_on_torchs_own_runtime():
    from implicitdiv import _C
    from implicitdiv.fused.cpp import OPENMP_TEAMS, threads as cpp_threads

    allowed = os.environ.get("IMPLICITDIV_THREADS", "") != "std"
    same = _C.openmp_symbol() != 0 and _C.openmp_symbol() == cpp_threads.torch_openmp_symbol()
    assert OPENMP_TEAMS == (allowed and same)
    shipped = os.path.join(os.path.dirname(torch.__file__), "lib", "libgomp.so.1")
    if allowed and _C.openmp_built() and os.path.exists(shipped):  # the runtime _C binds to is torch's
        assert OPENMP_TEAMS


# ---- torch.compile -------------------------------------------------------------------------------

def test_torch_compile_fullgraph_matches_eager():
    torch._dynamo.reset()

    def loss(x, y):
        return idv.mmd2(x, y, kernel="rbf", bandwidth=BW_MIX, estimator="unbiased", backend="cpp") * 3.0

    compiled = torch.compile(loss, fullgraph=True)
    g = torch.Generator().manual_seed(6)
    x = torch.randn(90, 5, generator=g, requires_grad=True)
    y = torch.randn(70, 5, generator=g, requires_grad=True)
    eager = loss(x, y)
    got = compiled(x, y)
    assert torch.equal(got, eager)
    assert all(torch.equal(a, b) for a, b in zip(torch.autograd.grad(got, (x, y)), torch.autograd.grad(eager, (x, y))))


# ---- precision: near duplicates, exact duplicates, far from the origin ---------------------------

@pytest.mark.parametrize("kernel", ["rbf", "laplacian", "imq", "energy"])
def test_near_duplicates_far_from_origin(kernel):
    rng = np.random.default_rng(7)
    d = 24
    base = rng.standard_normal((40, d)) + 50.0
    x = np.concatenate([base, base[:10]])  # exact duplicates within x: s = 0 off the diagonal
    y = base + 1e-3 * rng.standard_normal(base.shape)  # every y_j within 1e-3 of an x_i
    kw = {"kernel": kernel, "bandwidth": (0.5, 4.0)}
    # values exact in float32, so both sides see the same points (rounding them would move y_j - x_i by ~1e-3)
    tensors = {"x": x.astype(np.float32).astype(np.float64), "y": y.astype(np.float32).astype(np.float64)}
    check_equivalence(idv.kernel_sum, tensors, backend="cpp", dtype=torch.float32, kwargs=kw, grad_names=("x", "y"),
                      double_backward=False)
    check_equivalence(idv.mmd2, tensors, backend="cpp", dtype=torch.float32, kwargs={**kw, "estimator": "unbiased"},
                      grad_names=("x", "y"), double_backward=False)


def test_diagonal_is_exactly_zero_distance():
    # energy: k(x, x) = 0, so the unbiased and biased XX sums agree to the bit up to the normalization
    rng = np.random.default_rng(8)
    x = torch.tensor(rng.standard_normal((33, 5)) * 1e3, dtype=torch.float32)
    a = torch.ones(1, 33, 1)
    ops = idv.ops.pairwise
    full = ops.kernel_sum_sym(x.unsqueeze(0), a, "energy", (1.0,), False, "cpp")
    off = ops.kernel_sum_sym(x.unsqueeze(0), a, "energy", (1.0,), True, "cpp")
    assert torch.equal(full, off)
    rbf_full = ops.kernel_sum_sym(x.unsqueeze(0), a, "rbf", (1.0,), False, "cpp")
    rbf_off = ops.kernel_sum_sym(x.unsqueeze(0), a, "rbf", (1.0,), True, "cpp")
    assert float(rbf_full - rbf_off) == pytest.approx(33.0, rel=1e-6)  # the far-apart pairs give exp(-huge) = 0


def test_the_error_model_assumes_the_loosest_near_threshold():
    """implicitdiv.testing's error scales count only pairs below 1/NEAR_RATIO of their S as
    recomputed from differences: no kernel may recompute fewer."""
    from implicitdiv import _C
    from implicitdiv.testing.pair_magnitudes import NEAR_RATIO

    assert 1.0 / NEAR_RATIO <= _C.pairwise_near_fraction()
    if importlib.util.find_spec("triton") is not None:
        from implicitdiv.fused.triton.pairwise import NEAR_FRACTION

        assert all(1.0 / NEAR_RATIO <= fraction for fraction in NEAR_FRACTION.values())


# ---- the rest of the contract --------------------------------------------------------------------

def test_mmd_test_matches_reference():
    g = torch.Generator().manual_seed(9)
    x = torch.randn(60, 3, generator=g, dtype=torch.float64)
    y = torch.randn(50, 3, generator=g, dtype=torch.float64) + 0.3
    fast = idv.mmd_test(x, y, permutations=200, seed=1, backend="cpp")
    ref = idv.mmd_test(x, y, permutations=200, seed=1, backend="reference")
    assert_close(fast[0], ref[0], torch.float64, "statistic")
    assert torch.equal(fast[1], ref[1])


def test_nan_propagates():
    x = torch.randn(40, 3)
    x[7, 1] = float("nan")
    y = torch.randn(30, 3)
    assert torch.isnan(idv.kernel_sum(x, y, backend="cpp"))
    assert torch.isnan(idv.mmd2(x, y, estimator="unbiased", backend="cpp"))
    out = idv.gaussian_mixture_logpdf(x, y, torch.zeros_like(y), backend="cpp")
    assert torch.isnan(out[7]) and torch.isfinite(torch.cat([out[:7], out[8:]])).all()


def test_auto_picks_cpp_on_cpu():
    for fn in ("kernel_sum", "mmd2", "mmd_test", "gaussian_mixture_logpdf"):
        assert resolve("auto", fn, torch.device("cpu")) == "cpp"
