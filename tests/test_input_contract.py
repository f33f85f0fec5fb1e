"""Every bad input of the contract gets a clear exception naming the argument, before any kernel;
NaN and Inf in the data come out as NaN; non-contiguous inputs work."""
import math

import pytest
import torch

import implicitdiv as idv

X = torch.randn(6, 3)
Y = torch.randn(5, 3)


@pytest.mark.parametrize(
    "call,exc,match",
    [
        (lambda: idv.mmd2(X, torch.randn(5, 4)), ValueError, "trailing dims"),
        (lambda: idv.mmd2(X, Y.double()), TypeError, "dtype"),
        (lambda: idv.mmd2(X, Y.to("meta")), ValueError, "device"),
        (lambda: idv.mmd2(X.long(), Y), TypeError, "x must be a floating-point"),
        (lambda: idv.mmd2(torch.empty(0, 3), Y), ValueError, "x is an empty sample set"),
        (lambda: idv.mmd2(X, torch.empty(0, 3)), ValueError, "y is an empty sample set"),
        (lambda: idv.mmd2(X[:1], Y, estimator="unbiased"), ValueError, "at least 2 samples in x"),
        (lambda: idv.mmd2(X, Y[:1], estimator="linear"), ValueError, "at least 2 samples in y"),
        (lambda: idv.mmd2(X, Y, bandwidth=0.0), ValueError, "bandwidth must be finite and > 0"),
        (lambda: idv.mmd2(X, Y, bandwidth=[1.0, -2.0]), ValueError, "bandwidth"),
        (lambda: idv.mmd2(X, Y, bandwidth=float("nan")), ValueError, "bandwidth"),
        (lambda: idv.mmd2(X, Y, bandwidth=[]), ValueError, "bandwidth"),
        (lambda: idv.mmd2(X, Y, kernel="gauss"), ValueError, "kernel must be one of"),
        (lambda: idv.mmd2(X, Y, kernel="polynomial", degree=0), ValueError, "degree must be an integer >= 1"),
        (lambda: idv.mmd2(X, Y, kernel="polynomial", degree=2.5), ValueError, "degree must be an integer"),
        (lambda: idv.mmd2(X, Y, kernel="polynomial", gamma=0.0), ValueError, "gamma must be finite and > 0"),
        (lambda: idv.kernel_sum(X, Y, kernel="polynomial", gamma=float("inf")), ValueError, "gamma must be finite"),
        (lambda: idv.kernel_sum(X, Y, kernel="polynomial", gamma="auto"), TypeError, "gamma must be a number"),
        (lambda: idv.mmd_test(X, Y, kernel="polynomial", coef0=float("nan")), ValueError, "coef0 must be finite"),
        (lambda: idv.mmd2(X, Y, estimator="quadratic"), ValueError, "estimator must be one of"),
        (lambda: idv.mmd2(X, Y, backend="cuda"), ValueError, "backend must be one of"),
        (lambda: idv.mmd2(X.numpy(), Y), TypeError, "x must be a torch.Tensor"),
        (lambda: idv.mmd2(X[0], Y), ValueError, r"x must have shape \(N, d\)"),
        (lambda: idv.mmd2(X.unsqueeze(0), Y), ValueError, "batch dim"),
        (lambda: idv.kernel_sum(X, Y, x_weights=torch.ones(5)), ValueError, "x_weights must have shape"),
        (lambda: idv.kernel_sum(X, Y, x_weights=torch.ones(6, 2), y_weights=torch.ones(5, 3)), ValueError, "P = 2"),
        (lambda: idv.kernel_sum(X, Y, y_weights=torch.ones(5, dtype=torch.int64)), TypeError, "y_weights must be a floating"),
        (lambda: idv.mmd_test(X, Y, permutations=0), ValueError, "permutations"),
        (lambda: idv.mmd_test(X, Y, bandwidth="mean"), ValueError, "bandwidth must be one of"),
        (lambda: idv.mmd_test(torch.zeros(4, 2), torch.zeros(3, 2)), ValueError, "coincide"),
        (lambda: idv.discriminator_loss(X[:, 0], Y[:, 0], kind="wasserstein"), ValueError, "kind must be one of"),
        (lambda: idv.discriminator_loss(X[:, 0], Y[:, 0], reduction="avg"), ValueError, "reduction must be one of"),
        (lambda: idv.discriminator_loss(X[:, 0], torch.empty(0)), ValueError, "fake is empty"),
        (lambda: idv.generator_loss(torch.ones(3, dtype=torch.int32)), TypeError, "fake must be a floating"),
        (lambda: idv.fdiv_estimate(X[:, 0], Y[:, 0], divergence="hinge"), ValueError, "divergence must be one of"),
        (lambda: idv.log_density_ratio(X[:, 0], 10, None), ValueError, "both n_numer and n_denom"),
        (lambda: idv.log_density_ratio(X[:, 0], 0, 5), ValueError, "n_numer must be a positive"),
        (lambda: idv.gaussian_nll(X, X, torch.zeros(6, 2)), ValueError, "trailing dims"),
        (lambda: idv.gaussian_nll(X, torch.zeros(4, 3), X), ValueError, "broadcast"),
        (lambda: idv.kl_std_normal(X, X.double()), TypeError, "dtype"),
        (lambda: idv.kl_gaussians(X, X, X, X, reduction="mean_"), ValueError, "reduction"),
        (lambda: idv.reparameterize(X, X, eps=torch.zeros(6, 2)), ValueError, "trailing dims"),
        (lambda: idv.gaussian_mixture_logpdf(X, Y, torch.zeros(4, 3)), ValueError, "one shape"),
        (lambda: idv.gaussian_mixture_logpdf(X, torch.zeros(5, 2), torch.zeros(5, 2)), ValueError, "trailing dims"),
        (lambda: idv.gaussian_mixture_logpdf(X, torch.empty(0, 3), torch.empty(0, 3)), ValueError, "means is empty"),
        (lambda: idv.use_backend("gpu"), ValueError, "backend must be one of"),
    ],
)
def test_bad_input_raises_a_clear_error(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def _with(t, value, index=(0, 0)):
    t = t.clone()
    t[index] = value
    return t


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
@pytest.mark.parametrize("backend", ["reference", "auto"])
def test_nan_and_inf_in_the_data_give_nan(bad, backend):
    results = [
        idv.mmd2(_with(X, bad), Y, backend=backend),
        idv.mmd2(X, _with(Y, bad), estimator="unbiased", backend=backend),
        idv.kernel_sum(_with(X, bad), Y, kernel="laplacian", backend=backend),
        idv.kernel_sum(X, Y, y_weights=_with(torch.ones(5), bad, (0,)), backend=backend),
        idv.mmd_test(_with(X, bad), Y, bandwidth=1.0, permutations=20, seed=0, backend=backend)[1],
        idv.discriminator_loss(_with(X[:, 0], bad, (0,)), Y[:, 0], kind="hinge", backend=backend),
        idv.generator_loss(_with(X[:, 0], bad, (0,)), kind="tv", backend=backend),
        idv.adversarial_losses(X[:, 0], _with(Y[:, 0], bad, (0,)), kind="js", backend=backend)[1],
        idv.fdiv_estimate(_with(X[:, 0], bad, (0,)), Y[:, 0], divergence="reverse_kl", backend=backend),
        idv.ratio_matching_loss(_with(X[:, 0], bad, (0,)), Y[:, 0], backend=backend),
        idv.gaussian_nll(_with(X, bad), X, X, backend=backend),
        idv.kl_std_normal(X, _with(X, bad), backend=backend),
        idv.kl_gaussians(X, X, _with(X, bad), X, backend=backend),
        idv.gaussian_mixture_logpdf(X, _with(Y, bad), Y, backend=backend)[0],
    ]
    for i, r in enumerate(results):
        assert torch.isnan(r).all(), f"result {i} is {r}"
    rows = idv.gaussian_nll(_with(X, bad, (2, 1)), X, X, reduction="none", backend=backend)
    assert torch.isnan(rows[2]) and torch.isfinite(rows[[0, 1, 3, 4, 5]]).all()
    terms = idv.discriminator_loss(_with(X[:, 0], bad, (1,)), Y[:, 0], reduction="none", backend=backend)[0]
    assert torch.isnan(terms[1]) and torch.isfinite(terms[[0, 2]]).all()
    mix = idv.gaussian_mixture_logpdf(_with(X, bad, (3, 0)), Y, torch.zeros_like(Y), backend=backend)
    assert torch.isnan(mix[3]) and torch.isfinite(mix[[0, 1, 2, 4, 5]]).all()
    batched = idv.mmd2(torch.stack([X, _with(X, bad)]), torch.stack([Y, Y]), backend=backend)
    assert torch.isfinite(batched[0]) and torch.isnan(batched[1])


GAUSSIAN_TERMS = {"gaussian_nll": 3, "kl_std_normal": 2, "kl_gaussians": 4}


@pytest.mark.parametrize("function", sorted(GAUSSIAN_TERMS))
@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_gaussian_terms_nan_for_any_bad_input_anywhere(function, reduction, dtype):
    """The public layer skips its pass over the inputs when the reduced Gaussian term is finite,
    on the claim that a NaN or +-Inf anywhere makes it +Inf or NaN: every input, every bad value,
    with the other inputs equal (z = mean, lv_q = lv_p) or not, on every CPU backend."""
    g = torch.Generator().manual_seed(3)
    base = torch.randn(5, 4, generator=g, dtype=dtype)
    other = torch.randn(5, 4, generator=g, dtype=dtype)
    for backend in _cpu_backends(function):
        for same in (True, False):
            args = [base.clone() if (same or k % 2 == 0) else other.clone() for k in range(GAUSSIAN_TERMS[function])]
            for k in range(len(args)):
                for bad in (float("nan"), float("inf"), -float("inf")):
                    call = list(args)
                    call[k] = _with(args[k], bad, (2, 1))
                    out = getattr(idv, function)(*call, reduction=reduction, backend=backend)
                    assert torch.isnan(out), (backend, same, k, bad, out)
    z, lv = torch.ones(1, 1, dtype=dtype), torch.full((1, 1), -1000.0, dtype=dtype)  # finite, NLL overflows
    for backend in _cpu_backends("gaussian_nll"):
        assert idv.gaussian_nll(z, z * 0, lv, reduction=reduction, backend=backend) == float("inf")


def test_extreme_finite_inputs_stay_finite():
    logits = torch.tensor([1e4, -1e4, 3.0])
    # (kl, reverse_kl, hellinger and pearson grow like exp(|v|) or v^2: at 1e4 their true value overflows)
    for kind in ("gan", "hinge", "wgan", "lsgan", "js", "tv"):
        assert torch.isfinite(idv.discriminator_loss(logits, logits, kind=kind)), kind
    lv = torch.tensor([[80.0, -80.0]])
    assert torch.isfinite(idv.kl_std_normal(lv * 0, lv))
    assert torch.isfinite(idv.gaussian_nll(lv * 0, lv * 0, lv))
    assert math.isfinite(float(idv.gaussian_mixture_logpdf(torch.zeros(1, 2), torch.zeros(1, 2), lv)))


def _cpu_backends(function):
    """The backends that run ``function`` on CPU tensors here (triton is covered by its own tests)."""
    return [b for b in idv.backends(function) if b != "triton"]


def test_non_contiguous_inputs_give_the_same_result():
    wide = torch.randn(6, 6, dtype=torch.float64)
    x = wide[:, ::2]
    assert not x.is_contiguous()
    y = torch.randn(5, 3, dtype=torch.float64).t().contiguous().t()
    for backend in _cpu_backends("mmd2"):
        got = idv.mmd2(x, y, estimator="unbiased", backend=backend)
        assert torch.allclose(got, idv.mmd2(x.contiguous(), y.contiguous(), estimator="unbiased", backend="reference"))


def test_results_are_deterministic():
    x, y = torch.randn(40, 4), torch.randn(30, 4)
    for backend in _cpu_backends("mmd2"):
        first = idv.mmd2(x, y, bandwidth=[0.5, 1.0], backend=backend)
        assert torch.equal(first, idv.mmd2(x, y, bandwidth=[0.5, 1.0], backend=backend))
