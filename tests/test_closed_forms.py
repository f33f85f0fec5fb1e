"""The reference estimators against closed forms and torch.distributions."""
import math

import numpy as np
import pytest
import torch
from torch import distributions as D

import implicitdiv as idv
from implicitdiv.reference import ratio as ref_ratio

F64 = torch.float64


def _gaussian(rows, d, seed):
    g = torch.Generator().manual_seed(seed)
    mean = torch.randn(rows, d, generator=g, dtype=F64)
    logvar = torch.rand(rows, d, generator=g, dtype=F64) * 4 - 2
    return mean, logvar, g


def test_kl_gaussians_matches_torch_distributions():
    mq, lq, g = _gaussian(6, 5, 0)
    mp, lp, _ = _gaussian(6, 5, 1)
    expected = D.kl_divergence(D.Normal(mq, (0.5 * lq).exp()), D.Normal(mp, (0.5 * lp).exp())).sum(-1)
    got = idv.kl_gaussians(mq, lq, mp, lp, reduction="none", backend="reference")
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(idv.kl_gaussians(mq, lq, mp, lp, backend="reference"), expected.mean())
    torch.testing.assert_close(idv.kl_gaussians(mq, lq, mp, lp, reduction="sum", backend="reference"), expected.sum())


def test_kl_std_normal_matches_analytic_value():
    m, lv, _ = _gaussian(4, 3, 2)
    var = lv.exp()
    expected = 0.5 * (var + m**2 - 1 - torch.log(var)).sum(-1)
    torch.testing.assert_close(idv.kl_std_normal(m, lv, reduction="none", backend="reference"), expected)
    via_dist = D.kl_divergence(D.Normal(m, var.sqrt()), D.Normal(torch.zeros_like(m), torch.ones_like(m))).sum(-1)
    torch.testing.assert_close(expected, via_dist)


def test_gaussian_nll_matches_torch_distributions():
    m, lv, g = _gaussian(7, 4, 3)
    z = torch.randn(7, 4, generator=g, dtype=F64)
    expected = -D.Normal(m, (0.5 * lv).exp()).log_prob(z).sum(-1)
    torch.testing.assert_close(idv.gaussian_nll(z, m, lv, reduction="none", backend="reference"), expected)


def test_reparameterize_log_q_is_the_log_density_of_z():
    m, lv, g = _gaussian(5, 3, 4)
    eps = torch.randn(5, 3, generator=g, dtype=F64)
    z, log_q = idv.reparameterize(m, lv, eps, backend="reference")
    torch.testing.assert_close(z, m + (0.5 * lv).exp() * eps)
    torch.testing.assert_close(log_q, D.Normal(m, (0.5 * lv).exp()).log_prob(z).sum(-1))


def test_gaussian_mixture_logpdf_matches_mixture_same_family():
    means, logvars, g = _gaussian(9, 3, 5)
    z = torch.randn(11, 3, generator=g, dtype=F64) * 2
    mix = D.MixtureSameFamily(
        D.Categorical(probs=torch.full((9,), 1 / 9, dtype=F64)),
        D.Independent(D.Normal(means, (0.5 * logvars).exp()), 1),
    )
    torch.testing.assert_close(idv.gaussian_mixture_logpdf(z, means, logvars, backend="reference"), mix.log_prob(z))


def _rbf_expectation(mu_diff, var_sum, sigma, d):
    """E exp(-||u||^2 / (2 sigma^2)) for u ~ N(mu, var_sum I_d)."""
    s2 = sigma**2
    return (s2 / (s2 + var_sum)) ** (d / 2) * math.exp(-(mu_diff**2) / (2 * (s2 + var_sum)))


def test_mmd2_between_gaussians_matches_closed_form():
    """MMD^2 of N(m1, s1^2 I) and N(m2, s2^2 I) under an RBF kernel, against replicates of the unbiased
    estimator; the tolerance is four standard errors of their mean, measured from the replicates."""
    d, sigma, s1, s2, shift = 2, 1.0, 1.0, 1.3, 0.6
    m1, m2 = np.zeros(d), np.full(d, shift / math.sqrt(d))
    dist = float(np.linalg.norm(m1 - m2))
    expected = (
        _rbf_expectation(0.0, 2 * s1**2, sigma, d)
        + _rbf_expectation(0.0, 2 * s2**2, sigma, d)
        - 2 * _rbf_expectation(dist, s1**2 + s2**2, sigma, d)
    )
    g = torch.Generator().manual_seed(7)
    reps = []
    for _ in range(24):
        x = torch.randn(400, d, generator=g, dtype=F64) * s1 + torch.as_tensor(m1)
        y = torch.randn(400, d, generator=g, dtype=F64) * s2 + torch.as_tensor(m2)
        reps.append(float(idv.mmd2(x, y, bandwidth=sigma, estimator="unbiased", backend="reference")))
    reps = np.asarray(reps)
    se = reps.std(ddof=1) / math.sqrt(len(reps))
    assert abs(reps.mean() - expected) < 4 * se, (reps.mean(), expected, se)
    assert expected > 10 * se  # the test can tell the closed form from zero


def test_unbiased_mmd2_has_mean_zero_and_biased_does_not():
    g = torch.Generator().manual_seed(11)
    unbiased, biased = [], []
    for _ in range(200):
        x = torch.randn(20, 3, generator=g, dtype=F64)
        y = torch.randn(20, 3, generator=g, dtype=F64)
        unbiased.append(float(idv.mmd2(x, y, estimator="unbiased", backend="reference")))
        biased.append(float(idv.mmd2(x, y, estimator="biased", backend="reference")))
    for vals, zero_mean in ((unbiased, True), (biased, False)):
        vals = np.asarray(vals)
        se = vals.std(ddof=1) / math.sqrt(len(vals))
        if zero_mean:
            assert abs(vals.mean()) < 4 * se
        else:
            assert vals.mean() > 4 * se


# f-divergences between P = N(0, 1) and Q = N(0.5, 1.2^2): q has the heavier tails, so p/q is bounded
# and every divergence of the set is finite.
P_MEAN, P_STD, Q_MEAN, Q_STD = 0.0, 1.0, 0.5, 1.2

F_OF_U = {
    "kl": lambda u: u * np.log(u),
    "reverse_kl": lambda u: -np.log(u),
    "pearson": lambda u: (u - 1) ** 2,
    "hellinger": lambda u: (np.sqrt(u) - 1) ** 2,
    "js": lambda u: -(u + 1) * np.log((1 + u) / 2) + u * np.log(u),
    "gan": lambda u: u * np.log(u) - (u + 1) * np.log(u + 1),
    "tv": lambda u: 0.5 * np.abs(u - 1),
}
# the logit v whose activation g_f(v) is the optimal critic f'(p/q), as a function of log r = log p/q
OPTIMAL_LOGIT = {
    "kl": lambda lr: 1 + lr,
    "reverse_kl": lambda lr: lr,
    "pearson": lambda lr: 2 * (torch.exp(lr) - 1),
    "hellinger": lambda lr: 0.5 * lr,
    "js": lambda lr: lr,
    "gan": lambda lr: lr,
    "tv": lambda lr: 40.0 * torch.sign(lr),
}


def _log_ratio(x):
    def normal(mean, std):
        return D.Normal(torch.tensor(mean, dtype=F64), torch.tensor(std, dtype=F64))

    return normal(P_MEAN, P_STD).log_prob(x) - normal(Q_MEAN, Q_STD).log_prob(x)


def _quantile_points(mean, std, n):
    u = (torch.arange(n, dtype=F64) + 0.5) / n
    return mean + std * torch.special.ndtri(u)


@pytest.mark.parametrize("divergence", ref_ratio.FDIVERGENCES)
def test_fdiv_estimate_at_the_optimal_critic_is_the_divergence(divergence):
    grid = np.linspace(-14, 14, 400001)
    p = np.exp(-0.5 * ((grid - P_MEAN) / P_STD) ** 2) / (P_STD * math.sqrt(2 * math.pi))
    q = np.exp(-0.5 * ((grid - Q_MEAN) / Q_STD) ** 2) / (Q_STD * math.sqrt(2 * math.pi))
    exact = float(np.trapezoid(q * F_OF_U[divergence](p / q), grid))
    xs_p, xs_q = _quantile_points(P_MEAN, P_STD, 400000), _quantile_points(Q_MEAN, Q_STD, 400000)
    v_p, v_q = OPTIMAL_LOGIT[divergence](_log_ratio(xs_p)), OPTIMAL_LOGIT[divergence](_log_ratio(xs_q))
    estimate = float(idv.fdiv_estimate(v_p, v_q, divergence=divergence, backend="reference"))
    assert abs(exact) > 1e-3  # (the "gan" divergence, 2 JS - log 4, is negative)
    assert estimate == pytest.approx(exact, rel=2e-3)
    # a critic built from a wrong log ratio gives less: the bound is a lower bound
    w_p = OPTIMAL_LOGIT[divergence](0.7 * _log_ratio(xs_p) + 0.3)
    w_q = OPTIMAL_LOGIT[divergence](0.7 * _log_ratio(xs_q) + 0.3)
    worse = float(idv.fdiv_estimate(w_p, w_q, divergence=divergence, backend="reference"))
    assert worse < estimate


def test_log_density_ratio_recovers_the_ratio_from_an_unbalanced_classifier():
    x = torch.linspace(-3, 3, 13, dtype=F64)
    log_r = _log_ratio(x)
    n_numer, n_denom = 300, 100
    # the Bayes classifier between n_numer draws of p (label 1) and n_denom of q (label 0)
    logits = log_r + math.log(n_numer / n_denom)
    torch.testing.assert_close(idv.log_density_ratio(logits, n_numer, n_denom), log_r)
    torch.testing.assert_close(idv.log_density_ratio(logits), logits)


def test_ratio_matching_loss_is_minimized_by_the_true_ratio():
    xs_p, xs_q = _quantile_points(P_MEAN, P_STD, 200000), _quantile_points(Q_MEAN, Q_STD, 200000)
    r = lambda x, scale: scale * torch.exp(_log_ratio(x))  # noqa: E731
    losses = {s: float(idv.ratio_matching_loss(r(xs_p, s), r(xs_q, s), backend="reference")) for s in (0.8, 1.0, 1.25)}
    assert losses[1.0] < losses[0.8] and losses[1.0] < losses[1.25]
    # at the minimizer the loss is -1/2 E_Q[r^2] = -1/2 (1 + chi^2(P || Q))
    grid = np.linspace(-14, 14, 400001)
    p = np.exp(-0.5 * ((grid - P_MEAN) / P_STD) ** 2) / (P_STD * math.sqrt(2 * math.pi))
    q = np.exp(-0.5 * ((grid - Q_MEAN) / Q_STD) ** 2) / (Q_STD * math.sqrt(2 * math.pi))
    chi2 = float(np.trapezoid((p - q) ** 2 / q, grid))
    assert losses[1.0] == pytest.approx(-0.5 * (1 + chi2), rel=2e-3)


def test_gan_losses_are_the_textbook_forms():
    real = torch.tensor([2.0, -1.0, 0.5], dtype=F64)
    fake = torch.tensor([-0.3, 1.5], dtype=F64)
    d_sig_r, d_sig_f = torch.sigmoid(real), torch.sigmoid(fake)
    d = idv.discriminator_loss(real, fake, backend="reference")
    torch.testing.assert_close(d, -torch.log(d_sig_r).mean() - torch.log(1 - d_sig_f).mean())
    ns = idv.generator_loss(fake, backend="reference")
    torch.testing.assert_close(ns, -torch.log(d_sig_f).mean())
    sat = idv.generator_loss(fake, saturating=True, backend="reference")
    torch.testing.assert_close(sat, torch.log(1 - d_sig_f).mean())
    hinge = idv.discriminator_loss(real, fake, kind="hinge", backend="reference")
    torch.testing.assert_close(hinge, torch.relu(1 - real).mean() + torch.relu(1 + fake).mean())
    ls = idv.discriminator_loss(real, fake, kind="lsgan", backend="reference")
    torch.testing.assert_close(ls, 0.5 * ((real - 1) ** 2).mean() + 0.5 * (fake**2).mean())
    w = idv.adversarial_losses(real, fake, kind="wgan", backend="reference")
    torch.testing.assert_close(w[0], fake.mean() - real.mean())
    torch.testing.assert_close(w[1], -fake.mean())


def test_extreme_logits_and_logvars_give_the_exact_finite_values():
    big = torch.tensor([1e4, -1e4], dtype=torch.float32)
    d = idv.discriminator_loss(big, big, reduction="none", backend="reference")
    torch.testing.assert_close(d[0], torch.tensor([0.0, 1e4]))
    torch.testing.assert_close(d[1], torch.tensor([1e4, 0.0]))
    lv = torch.tensor([[80.0, -80.0]])
    m = torch.zeros(1, 2)
    kl = idv.kl_std_normal(m, lv, reduction="none", backend="reference")
    expected = 0.5 * (math.exp(80) - 1 - 80) + 0.5 * (math.exp(-80) - 1 + 80)
    assert torch.isfinite(kl).all()
    assert float(kl) == pytest.approx(expected, rel=1e-6)
    nll = idv.gaussian_nll(m, m, lv, reduction="none", backend="reference")
    assert float(nll) == pytest.approx(0.5 * (80 - 80 + 2 * math.log(2 * math.pi)), rel=1e-6)


def test_kernel_sum_is_the_weighted_double_sum():
    g = torch.Generator().manual_seed(3)
    x, y = torch.randn(5, 2, generator=g, dtype=F64), torch.randn(4, 2, generator=g, dtype=F64)
    a, b = torch.randn(5, 3, generator=g, dtype=F64), torch.randn(4, generator=g, dtype=F64)
    out = idv.kernel_sum(x, y, kernel="laplacian", bandwidth=[0.5, 2.0], x_weights=a, y_weights=b, backend="reference")
    expected = torch.zeros(3, dtype=F64)
    for i in range(5):
        for j in range(4):
            dist = float(torch.linalg.norm(x[i] - y[j]))
            k = math.exp(-dist / 0.5) + math.exp(-dist / 2.0)
            expected += a[i] * k * b[j]
    torch.testing.assert_close(out, expected)
    batched = idv.kernel_sum(torch.stack([x, x + 1]), torch.stack([y, y]), kernel="imq", backend="reference")
    assert batched.shape == (2,)
    torch.testing.assert_close(batched[0], idv.kernel_sum(x, y, kernel="imq", backend="reference"))


def test_mmd_test_p_value_counts_the_observed_statistic():
    g = torch.Generator().manual_seed(5)
    x, y = torch.randn(30, 2, generator=g, dtype=F64), torch.randn(30, 2, generator=g, dtype=F64) + 3
    stat, p = idv.mmd_test(x, y, permutations=99, seed=1, backend="reference")
    assert float(p) == pytest.approx(1 / 100)  # no relabelling beats the true split; the observed one counts
    torch.testing.assert_close(stat, idv.mmd2(x, y, bandwidth=float(idv.median_bandwidth(x, y)), backend="reference"))
    same = idv.mmd_test(x, y, permutations=99, seed=1, backend="reference")
    assert torch.equal(same[1], p)


@pytest.mark.parametrize("degree,gamma,coef0", [(3, None, 1.0), (1, 0.5, 0.0), (4, 2.0, -0.7)])
def test_polynomial_kernel_is_sklearns(degree, gamma, coef0):
    """The reference polynomial kernel against scikit-learn's polynomial_kernel (gamma None: 1/d there too),
    and its mmd2 with degree 1, coef0 0 against the linear kernel's closed form gamma |mean x - mean y|^2."""
    pairwise = pytest.importorskip("sklearn.metrics.pairwise")
    g = torch.Generator().manual_seed(3)
    x, y = torch.randn(9, 4, generator=g, dtype=F64), torch.randn(7, 4, generator=g, dtype=F64)
    a, b = torch.randn(9, generator=g, dtype=F64), torch.randn(7, generator=g, dtype=F64)
    k = pairwise.polynomial_kernel(x.numpy(), y.numpy(), degree=degree, gamma=gamma, coef0=coef0)
    got = idv.kernel_sum(x, y, kernel="polynomial", degree=degree, gamma=gamma, coef0=coef0, x_weights=a, y_weights=b,
                         backend="reference")
    torch.testing.assert_close(got, a @ torch.from_numpy(k) @ b, rtol=1e-12, atol=1e-12)
    if degree == 1 and coef0 == 0.0:
        want = gamma * ((x.mean(0) - y.mean(0)) ** 2).sum()
        got = idv.mmd2(x, y, kernel="polynomial", degree=1, gamma=gamma, coef0=0.0, backend="reference")
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


def test_unbiased_mmd2_keeps_off_diagonal_values_far_below_the_diagonal():
    # two x rows sqrt(128) bandwidths apart (k = e^-64 = 1.6e-28) and a y pair as far apart, far away:
    # MMD^2_u = 2 k(x0, x1) / (2 * 1) + 2 k(y0, y1) / 2 - (cross terms ~ 0). Subtracting the diagonal
    # (k = 1) after summing the whole matrix loses it even in float64.
    x = torch.tensor([[0.0], [math.sqrt(128.0)]], dtype=torch.float64)
    y = torch.tensor([[1e3], [1e3 + math.sqrt(128.0)]], dtype=torch.float64)
    want = 2.0 * math.exp(-64.0)
    got = idv.mmd2(x, y, kernel="rbf", bandwidth=1.0, estimator="unbiased", backend="reference")
    assert abs(float(got) - want) <= 1e-12 * want
