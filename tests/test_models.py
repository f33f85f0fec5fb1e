"""Every objective of the model set against a value computed by hand (numpy formulas written out
here, independently of implicitdiv), plus the data sets, the mode metrics and the registry."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from implicitdiv.models import adversarial, autoencoders, data, joint, metrics, moment_matching
from implicitdiv.models.registry import MODELS, get

RNG = np.random.default_rng(7)
LOG2PI = math.log(2 * math.pi)


def t(a):
    return torch.tensor(np.asarray(a, dtype=np.float64))


def sp(v):
    """softplus, log(1 + e^v), written out."""
    return np.log1p(np.exp(v))


def close(actual, expected, tol=1e-10):
    assert float(actual.detach() if torch.is_tensor(actual) else actual) == pytest.approx(float(expected), rel=tol, abs=tol)


VR = np.array([0.5, -1.0, 2.0])
VF = np.array([0.2, 1.5, -0.3, -2.0])


def nll(z, m, lv):
    """Row-mean of -log N(z; m, diag e^lv)."""
    return np.mean(0.5 * ((z - m) ** 2 * np.exp(-lv) + lv + LOG2PI).sum(-1))


def rbf_mmd2(x, y, bandwidths, kernel="rbf", unbiased=False):
    def k(a, b):
        s = ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)
        if kernel == "rbf":
            return sum(np.exp(-s / (2 * h * h)) for h in bandwidths)
        return sum(c / (c + s) for c in bandwidths)  # imq

    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    n, m = len(x), len(y)
    if unbiased:
        return ((kxx.sum() - np.trace(kxx)) / (n * (n - 1)) + (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
                - 2 * kxy.mean())
    return kxx.mean() + kyy.mean() - 2 * kxy.mean()


# ---- adversarial ---------------------------------------------------------------------------------

def test_gan_minimax_and_non_saturating():
    ns = adversarial.gan(t(VR), t(VF))
    close(ns["discriminator"], sp(-VR).mean() + sp(VF).mean())
    close(ns["generator"], sp(-VF).mean())  # -log D(G(z))
    mm = adversarial.gan(t(VR), t(VF), saturating=True)
    d_fake = 1 / (1 + np.exp(-VF))
    close(mm["generator"], np.mean(np.log(1 - d_fake)))  # log(1 - D(G(z)))


# (activation g_f(v), conjugate f*(t)) of Nowozin et al.'s table 2, as printed there
FGAN_TABLE = {
    "kl": (lambda v: v, lambda s: np.exp(s - 1)),
    "reverse_kl": (lambda v: -np.exp(-v), lambda s: -1 - np.log(-s)),
    "pearson": (lambda v: v, lambda s: s * s / 4 + s),
    "hellinger": (lambda v: 1 - np.exp(-v), lambda s: s / (1 - s)),
    "js": (lambda v: np.log(2) - np.log1p(np.exp(-v)), lambda s: -np.log(2 - np.exp(s))),
    "gan": (lambda v: -np.log1p(np.exp(-v)), lambda s: -np.log(1 - np.exp(s))),
    "tv": (lambda v: 0.5 * np.tanh(v), lambda s: s),
}


@pytest.mark.parametrize("divergence", sorted(FGAN_TABLE))
def test_fgan_against_the_conjugate_table(divergence):
    g, fstar = FGAN_TABLE[divergence]
    bound = g(VR).mean() - fstar(g(VF)).mean()
    terms = adversarial.fgan(t(VR), t(VF), divergence=divergence)
    close(terms["discriminator"], -bound, 1e-9)
    close(terms["divergence"], bound, 1e-9)
    close(terms["generator"], -g(VF).mean(), 1e-9)
    close(adversarial.fgan(t(VR), t(VF), divergence=divergence, saturating=True)["generator"], -fstar(g(VF)).mean(), 1e-9)


def test_gradient_penalty_of_a_linear_critic_and_its_double_backward():
    w = torch.tensor([0.3, -2.0, 0.5], dtype=torch.float64, requires_grad=True)
    real, fake = t(RNG.standard_normal((5, 3))), t(RNG.standard_normal((5, 3)))
    penalty = adversarial.gradient_penalty(lambda x: x @ w + 1.0, real, fake, weight=10.0)
    norm = np.linalg.norm([0.3, -2.0, 0.5])
    close(penalty, 10 * (norm - 1) ** 2, 1e-9)
    (grad,) = torch.autograd.grad(penalty, w)  # through the input gradient: needs create_graph
    np.testing.assert_allclose(grad.numpy(), 20 * (norm - 1) * np.array([0.3, -2.0, 0.5]) / norm, rtol=1e-9)


def test_gradient_penalty_interpolates_with_the_given_mix():
    real, fake = t([[1.0, 0.0], [0.0, 2.0]]), t([[3.0, 0.0], [0.0, 0.0]])
    mix = t([0.25, 0.5])
    # D(x) = ||x||^2 has gradient 2 xhat; xhat = e real + (1 - e) fake = [2.5, 0], [0, 1]
    penalty = adversarial.gradient_penalty(lambda x: (x * x).sum(1), real, fake, weight=2.0, mix=mix)
    close(penalty, 2.0 * np.mean([(5.0 - 1) ** 2, (2.0 - 1) ** 2]), 1e-9)


def test_wgan_gp_hinge_lsgan():
    pen = torch.tensor(0.7, dtype=torch.float64)
    w = adversarial.wgan_gp(t(VR), t(VF), pen)
    close(w["discriminator"], VF.mean() - VR.mean() + 0.7)
    close(w["generator"], -VF.mean())
    close(w["wasserstein"], VR.mean() - VF.mean())
    h = adversarial.hinge(t(VR), t(VF))
    close(h["discriminator"], np.maximum(0, 1 - VR).mean() + np.maximum(0, 1 + VF).mean())
    close(h["generator"], -VF.mean())
    ls = adversarial.lsgan(t(VR), t(VF))
    close(ls["discriminator"], 0.5 * ((VR - 1) ** 2).mean() + 0.5 * (VF ** 2).mean())
    close(ls["generator"], 0.5 * ((VF - 1) ** 2).mean())


def test_wgan_critic_estimates_w1():
    """WGAN (003_f42e894b0384bb07.txt, "Wasserstein GAN Problem"): the critic maximizes
    E[D(x)] - E[D(G(z))], the generator minimizes -E[D(G(z))]."""
    w = adversarial.wgan(t(VR), t(VF))
    close(w["discriminator"], VF.mean() - VR.mean())
    close(w["generator"], -VF.mean())
    close(w["wasserstein"], VR.mean() - VF.mean())


def test_ebgan_margin():
    er, ef = np.array([0.1, 0.4]), np.array([0.5, 3.0, 1.2])
    terms = adversarial.ebgan(t(er), t(ef), margin=1.5)
    close(terms["discriminator"], er.mean() + np.maximum(0, 1.5 - ef).mean())
    close(terms["generator"], ef.mean())


def test_began_losses_and_k_update():
    x, xr = RNG.standard_normal((4, 3)), RNG.standard_normal((4, 3))
    f, fr = RNG.standard_normal((4, 3)), RNG.standard_normal((4, 3))
    lr_, lf = np.abs(x - xr).sum(1).mean(), np.abs(f - fr).sum(1).mean()
    began = adversarial.BEGAN(gamma=0.7, lambda_k=0.01, k=0.3)
    terms = began.losses(t(x), t(xr), t(f), t(fr))
    close(terms["discriminator"], lr_ - 0.3 * lf)
    close(terms["generator"], lf)
    close(terms["convergence"], lr_ + abs(0.7 * lr_ - lf))
    assert float(began.update()) == pytest.approx(min(max(0.3 + 0.01 * (0.7 * lr_ - lf), 0), 1))
    began.k, began.lambda_k = torch.tensor(0.999, dtype=torch.float64), 100.0
    began.losses(t(x), t(xr), t(f), t(f + 5.0))  # L(G(z)) far above gamma L(x): k drops below 0
    assert float(began.update()) == 0.0  # clipped to [0, 1]
    began.losses(t(x), t(xr + 5.0), t(f), t(fr))
    assert float(began.update()) == 1.0


def test_began_keeps_one_k_per_seed():
    """With a leading seed axis every seed has its own L(x), L(G(z)) and k_t."""
    x, xr = RNG.standard_normal((2, 4, 3)), RNG.standard_normal((2, 4, 3))
    f, fr = RNG.standard_normal((2, 4, 3)), RNG.standard_normal((2, 4, 3))
    began = adversarial.BEGAN(gamma=0.7, lambda_k=0.01, k=0.3)
    terms = began.losses(t(x), t(xr), t(f), t(fr))
    lr_, lf = np.abs(x - xr).sum(-1).mean(-1), np.abs(f - fr).sum(-1).mean(-1)
    close(terms["discriminator"], np.mean(lr_ - 0.3 * lf))
    np.testing.assert_allclose(began.update().numpy(), np.clip(0.3 + 0.01 * (0.7 * lr_ - lf), 0, 1), rtol=1e-12)


def test_infogan_mutual_information_bound():
    c, m, lv = RNG.standard_normal((3, 2)), RNG.standard_normal((3, 2)), RNG.standard_normal((3, 2))
    terms = adversarial.infogan(t(VR), t(VF), t(c), t(m), t(lv), weight=0.5)
    entropy = np.mean(0.5 * (c * c + LOG2PI).sum(1))  # E[-log N(c; 0, I)]
    mi = entropy - nll(c, m, lv)
    close(terms["mutual_information"], mi)
    close(terms["generator"], sp(-VF).mean() - 0.5 * mi)
    close(terms["discriminator"], sp(-VR).mean() + sp(VF).mean())


# ---- moment matching ----------------------------------------------------------------------------

def test_gmmn_is_the_root_of_the_biased_multi_bandwidth_mmd2():
    x, y = RNG.standard_normal((5, 2)), RNG.standard_normal((4, 2)) + 0.5
    bws = (0.5, 1.0, 3.0)
    expected = rbf_mmd2(x, y, bws)
    terms = moment_matching.gmmn(t(x), t(y), bandwidths=bws)
    close(terms["mmd2"], expected)
    close(terms["generator"], np.sqrt(expected))


def test_mmd_gan_on_features():
    fx, fy = RNG.standard_normal((6, 3)), RNG.standard_normal((5, 3))
    expected = rbf_mmd2(fx, fy, moment_matching.MMD_GAN_BANDWIDTHS)
    terms = moment_matching.mmd_gan(t(fx), t(fy))
    close(terms["generator"], expected)
    close(terms["discriminator"], -expected)


# ---- autoencoders -------------------------------------------------------------------------------

X = RNG.standard_normal((4, 3))
XR = RNG.standard_normal((4, 3))
XLV = np.array([0.2, -0.5, 0.1])
ZM, ZLV = RNG.standard_normal((4, 2)), 0.3 * RNG.standard_normal((4, 2))


@pytest.mark.parametrize("beta", [1.0, 4.0])
def test_vae_negative_elbo(beta):
    rec = nll(X, XR, XLV)
    kl = np.mean(0.5 * (np.exp(ZLV) + ZM ** 2 - 1 - ZLV).sum(1))
    fn = autoencoders.vae if beta == 1.0 else autoencoders.beta_vae
    terms = fn(t(X), t(XR), t(XLV), t(ZM), t(ZLV))
    close(terms["generator"], rec + beta * kl)
    close(terms["kl"], kl)


def test_aae_and_wae_gan():
    prior, code = np.array([0.3, -0.2, 1.0]), np.array([-1.0, 0.4, 0.0, 2.0])
    rec = ((X - XR) ** 2).sum(1).mean()
    a = autoencoders.aae(t(X), t(XR), t(prior), t(code))
    close(a["generator"], rec + sp(-code).mean())
    close(a["discriminator"], sp(-prior).mean() + sp(code).mean())
    w = autoencoders.wae_gan(t(X), t(XR), t(prior), t(code), weight=3.0)
    close(w["generator"], rec + 3.0 * sp(-code).mean())
    close(w["discriminator"], 3.0 * (sp(-prior).mean() + sp(code).mean()))


def test_wae_mmd_unbiased_imq_over_scales():
    codes, prior = RNG.standard_normal((5, 2)), RNG.standard_normal((6, 2))
    cs = [s * 2 * 2 * 1.0 for s in autoencoders.WAE_SCALES]  # C = s * 2 d_z sigma_z^2
    m2 = rbf_mmd2(codes, prior, cs, kernel="imq", unbiased=True)
    terms = autoencoders.wae_mmd(t(X), t(XR), t(codes), t(prior), weight=10.0)
    close(terms["mmd2"], m2)
    close(terms["generator"], ((X - XR) ** 2).sum(1).mean() + 10.0 * m2)


def test_alpha_gan():
    real, rec_l, smp = np.array([1.0, -0.5]), np.array([0.2, 0.3]), np.array([-1.0, 0.7, 0.1])
    prior, code = np.array([0.5, 0.5]), np.array([-0.4, 1.1])
    terms = autoencoders.alpha_gan(t(X), t(XR), t(real), t(rec_l), t(smp), t(prior), t(code), weight=2.0)
    l1 = np.abs(X - XR).sum(1).mean()
    close(terms["generator"], 2.0 * l1 - rec_l.mean() - smp.mean() - code.mean())
    d_data = sp(-real).mean() + sp(np.concatenate([rec_l, smp])).mean()
    close(terms["discriminator"], d_data + sp(-prior).mean() + sp(code).mean())


def test_vaegan_learned_similarity_eq_9():
    """VAE/GAN (Larsen et al., 2016, eq. 6-9, algorithm 1): Dis_l features compared under a unit
    Gaussian; the encoder takes L_prior + L_llike, the decoder gamma L_llike + its GAN loss."""
    real, rec, smp = np.array([0.4, -1.0, 0.2, 0.9]), np.array([0.1, 0.5, -0.3, 1.2]), np.array([-0.7, 0.3, 2.0, 0.0])
    hr, hx = RNG.standard_normal((4, 5)), RNG.standard_normal((4, 5))
    terms = autoencoders.vaegan(t(real), t(rec), t(smp), t(hr), t(hx), t(ZM), t(ZLV), gamma=0.5)
    llike = np.mean(0.5 * ((hr - hx) ** 2).sum(1) + 5 * 0.5 * LOG2PI)
    kl = np.mean(0.5 * (np.exp(ZLV) + ZM ** 2 - 1 - ZLV).sum(1))
    close(terms["discriminator"], sp(-real).mean() + sp(rec).mean() + sp(smp).mean())
    close(terms["encoder"], kl + llike)
    close(terms["generator"], 0.5 * llike + sp(-rec).mean() + sp(-smp).mean())


# ---- joint models -------------------------------------------------------------------------------

Q, P = np.array([0.4, -0.3, 1.2]), np.array([-0.8, 0.1, 0.5])
ALI_D = sp(-Q).mean() + sp(P).mean()
ALI_G = sp(-P).mean() + sp(Q).mean()
Z, ZR, ZRLV = RNG.standard_normal((3, 2)), RNG.standard_normal((3, 2)), 0.2 * RNG.standard_normal((3, 2))


def test_ali_swaps_labels_for_the_generator():
    terms = joint.ali(t(Q), t(P))
    close(terms["discriminator"], ALI_D)
    close(terms["generator"], ALI_G)


def test_alice_both_forms():
    l2 = joint.alice_l2(t(Q), t(P), t(X), t(XR), weight=0.5)
    close(l2["generator"], ALI_G + 0.5 * ((X - XR) ** 2).sum(1).mean())
    close(l2["discriminator"], ALI_D)
    cr, cf = np.array([1.0, 0.2]), np.array([-0.3, 0.6])
    adv = joint.alice_adversarial(t(Q), t(P), t(cr), t(cf), weight=2.0)
    close(adv["discriminator"], ALI_D + sp(-cr).mean() + sp(cf).mean())
    close(adv["generator"], ALI_G + 2.0 * sp(-cf).mean())


def test_veegan_eq_8():
    """VEEGAN (Srivastava et al., 2017, eq. 8 and algorithm 1): the critic is a classifier of
    p-pairs (label 1) against q-pairs; G minimizes E[D(G(z), z)] + E||z - F(G(z))||^2."""
    p_logits, q_logits = np.array([0.3, -1.1, 0.8]), np.array([1.5, -0.2])
    terms = joint.veegan(t(p_logits), t(q_logits), t(Z), t(ZR))
    close(terms["discriminator"], sp(-p_logits).mean() + sp(q_logits).mean())
    close(terms["generator"], p_logits.mean() + ((Z - ZR) ** 2).sum(1).mean())


# the five VIDM critics of MODELS.md: (numerator logits, denominator logits)
VIDM_PAIRS = {name: (RNG.standard_normal(3), RNG.standard_normal(3))
              for name in ("joint_pairs", "codes", "samples", "generated_pairs", "cycle_pairs")}


def test_vidm_match_as_five_classifiers():
    """VIDM (000_3aaa2260245c9cb7.txt, section 2 Match(theta, phi), section 3): every critic
    minimizes E_num[sp(-c)] + E_den[sp(c)]; G and E minimize dc_J + E[c_Z] + E[c_X] + dc_A + dc_B."""
    terms = joint.vidm(**{k: (t(a), t(b)) for k, (a, b) in VIDM_PAIRS.items()})
    d = sum(sp(-a).mean() + sp(b).mean() for a, b in VIDM_PAIRS.values())
    dc = {k: a.mean() - b.mean() for k, (a, b) in VIDM_PAIRS.items()}
    g = dc["joint_pairs"] + VIDM_PAIRS["codes"][0].mean() + VIDM_PAIRS["samples"][0].mean() + dc["generated_pairs"] \
        + dc["cycle_pairs"]
    close(terms["discriminator"], d)
    close(terms["generator"], g)
    close(terms["kl_codes"], VIDM_PAIRS["codes"][0].mean())


# DALI: the discriminator's logits on data x and on G(z); the encoder's Gaussian at G(z)
TX, TG = np.array([1.2, -0.4, 0.3]), np.array([-0.6, 0.9, 0.1])


def latent_nll_mean_over_dims(z, m, lv):
    """DALI eq. 9 with lambda = 1/d (section 4): (1/d) 1/2 sum_j [(z_j - mu_j)^2 / s_j^2 + log s_j^2 + log 2 pi]."""
    return nll(z, m, lv) / z.shape[1]


def test_dali_eq_10_with_lambda_one_over_d():
    """DALI (001_829e26b63a0bb621.txt, Algorithm 1, eq. 9-10): L_d, L_e = lambda L, L_g + L_e."""
    terms = joint.dali(t(TX), t(TG), t(Z), t(ZR), t(ZRLV))
    l_e = latent_nll_mean_over_dims(Z, ZR, ZRLV)
    close(terms["discriminator"], -np.mean(np.log(1 / (1 + np.exp(-TX)))) - np.mean(np.log(1 - 1 / (1 + np.exp(-TG)))))
    close(terms["encoder"], l_e)
    close(terms["generator"], -np.mean(np.log(1 / (1 + np.exp(-TG)))) + l_e)
    close(joint.dali(t(TX), t(TG), t(Z), t(ZR), t(ZRLV), weight=0.3)["encoder"], 0.3 * nll(Z, ZR, ZRLV))


def test_dali_f_eq_8_as_printed():
    """DALI-f (001_829e26b63a0bb621.txt, eq. 8): D maximizes E_x[T(x)] - E_z[exp(T(G(z)) - 1)];
    G minimizes -E_z[T(G(z))] (plus the latent term)."""
    terms = joint.dali_f(t(TX), t(TG), t(Z), t(ZR), t(ZRLV))
    close(terms["discriminator"], -(TX.mean() - np.exp(TG - 1).mean()))
    close(terms["generator"], -TG.mean() + latent_nll_mean_over_dims(Z, ZR, ZRLV))


def test_dali_l2_fixed_unit_variance():
    """DALI-l2 (section 4.1): q(z | x) = N(mu(x), I): L = 1/2 ||z - mu||^2 + d/2 log 2 pi."""
    terms = joint.dali_l2(t(TX), t(TG), t(Z), t(ZR))
    l_e = np.mean(0.5 * ((Z - ZR) ** 2).sum(1) + LOG2PI) / 2  # d = 2: d/2 log 2 pi, then lambda = 1/2
    close(terms["encoder"], l_e)
    close(terms["generator"], sp(-TG).mean() + l_e)


F_POS, F_NEG, H_POS, H_NEG = (RNG.standard_normal(3) for _ in range(4))


@pytest.mark.parametrize("part", ["both", "r", "g"])
def test_asvae_two_critics_and_both_likelihoods(part):
    """AS-VAE (004_87f77bca12a1818b.txt, section 3 eq. 10-12 as MODELS.md restates them): critics f
    and h are classifiers; the model minimizes E[-log p(x|z_e) + f] + E[-log q(z|x_g) + h];
    AS-VAE-r keeps the first bracket and f, AS-VAE-g the second and h."""
    terms = joint.asvae(f_logits=(t(F_POS), t(F_NEG)), h_logits=(t(H_POS), t(H_NEG)), x=t(X), x_mean=t(XR),
                        x_logvar=t(XLV), z=t(Z), z_mean=t(ZR), z_logvar=t(ZRLV), part=part)
    f_d, h_d = sp(-F_POS).mean() + sp(F_NEG).mean(), sp(-H_POS).mean() + sp(H_NEG).mean()
    first, second = nll(X, XR, XLV) + F_POS.mean(), nll(Z, ZR, ZRLV) + H_POS.mean()
    expect = {"both": (f_d + h_d, first + second), "r": (f_d, first), "g": (h_d, second)}[part]
    close(terms["discriminator"], expect[0])
    close(terms["generator"], expect[1])
    with pytest.raises(ValueError, match="part"):
        joint.asvae(f_logits=(t(F_POS), t(F_NEG)), h_logits=(t(H_POS), t(H_NEG)), x=t(X), x_mean=t(XR),
                    x_logvar=t(XLV), z=t(Z), z_mean=t(ZR), z_logvar=t(ZRLV), part="x")


# ---- contract: bad input and NaN ---------------------------------------------------------------

def test_objectives_reject_integer_logits_naming_the_argument():
    with pytest.raises(TypeError, match="real"):
        adversarial.gan(torch.tensor([1, 2]), t(VF))


def test_nan_propagates_through_an_objective():
    vr = VR.copy()
    vr[1] = np.nan
    terms = adversarial.gan(t(vr), t(VF))
    assert torch.isnan(terms["discriminator"])
    assert torch.isfinite(terms["generator"])  # the generator never reads the real logits


def test_objectives_give_gradients_to_every_input():
    q, p = t(Q).requires_grad_(), t(P).requires_grad_()
    terms = joint.ali(q, p)
    gq, gp = torch.autograd.grad(terms["generator"], (q, p))
    np.testing.assert_allclose(gq.numpy(), (1 / (1 + np.exp(-Q))) / 3, rtol=1e-10)  # d softplus(v)/dv / N
    np.testing.assert_allclose(gp.numpy(), -(1 / (1 + np.exp(P))) / 3, rtol=1e-10)


# ---- data and metrics ---------------------------------------------------------------------------

def test_perfect_sampler_scores_all_modes_and_98_9_percent():
    gen = torch.Generator().manual_seed(3)
    modes = data.grid_modes()
    samples = data.mixture_sample(modes, 0.05, 2500, gen)
    m = metrics.mode_metrics(samples, modes, 0.05)
    assert m["modes"] == 25
    expected = 100 * (1 - math.exp(-4.5))  # P(chi^2_2 <= 9) = 98.89 %
    assert expected == pytest.approx(98.889, abs=1e-3)
    # binomial standard error over 2,500 draws: 0.21 %; allow four of them
    assert abs(m["high_quality_percent"] - expected) < 0.85


def test_mode_metrics_on_collapsed_and_off_mode_samples():
    modes = data.grid_modes()
    one = torch.tensor([[2.0, -4.0]]).repeat(100, 1)
    assert metrics.mode_metrics(one, modes, 0.05) == {"modes": 1, "high_quality_percent": 100.0}
    off = torch.tensor([[1.0, 1.0], [2.0 + 3.01 * 0.05, 0.0], [2.0 + 2.99 * 0.05, 0.0]])
    m = metrics.mode_metrics(off, modes, 0.05)
    assert m["modes"] == 1 and m["high_quality_percent"] == pytest.approx(100 / 3)


def test_reconstruction_mse_and_sample_mmd():
    assert metrics.reconstruction_mse(torch.zeros(2, 2), torch.tensor([[1.0, 0.0], [0.0, 3.0]])) == 2.5
    d = data.load("grid25")
    assert metrics.sample_mmd2(d.test, d.test) == pytest.approx(0.0, abs=1e-12)
    assert metrics.sample_mmd2(torch.zeros(500, 2), d.test) > 0.1


def test_builtin_data_sets():
    g = data.load("grid25")
    assert g.train.shape == (100_000, 2) and g.modes.shape == (25, 2) and g.std == 0.05
    assert sorted(set(g.modes[:, 0].tolist())) == [-4.0, -2.0, 0.0, 2.0, 4.0]
    assert metrics.mode_metrics(g.train[:2500], g.modes, g.std)["modes"] == 25
    r = data.load("ring8")
    np.testing.assert_allclose(r.modes.norm(dim=1).numpy(), 1.0, rtol=1e-6)
    assert r.std == 0.01 and r.train.shape == (100_000, 2)
    dg = data.load("digits")
    assert dg.dim == 64 and dg.train.shape[0] + dg.test.shape[0] == 1797
    assert float(dg.train.min()) >= 0.0 and float(dg.train.max()) <= 1.0 and float(dg.train.max()) == 1.0


def test_npy_data_and_its_errors(tmp_path):
    good = tmp_path / "rows.npy"
    np.save(good, RNG.standard_normal((50, 3)))
    d = data.load(str(good))
    assert d.dim == 3 and d.train.shape[0] + d.test.shape[0] == 50
    with pytest.raises(FileNotFoundError, match="missing.npy"):
        data.load(str(tmp_path / "missing.npy"))
    ragged = tmp_path / "ragged.npy"
    np.save(ragged, np.array([[1.0, 2.0], [3.0]], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="numeric"):
        data.load(str(ragged))
    text = tmp_path / "text.npy"
    np.save(text, np.array([["a", "b"], ["c", "d"]]))
    with pytest.raises(ValueError, match="expected numbers"):
        data.load(str(text))
    cube = tmp_path / "cube.npy"
    np.save(cube, np.zeros((2, 2, 2)))
    with pytest.raises(ValueError, match=r"\(N, d\)"):
        data.load(str(cube))
    nan = tmp_path / "nan.npy"
    np.save(nan, np.array([[1.0], [np.nan]]))
    with pytest.raises(ValueError, match="NaN"):
        data.load(str(nan))
    with pytest.raises(ValueError, match="data must be one of"):
        data.load("mnist")


# ---- registry -----------------------------------------------------------------------------------

REQUIRED = ("gan", "gan_minimax", "fgan_kl", "fgan_reverse_kl", "fgan_pearson", "fgan_hellinger", "fgan_js", "fgan_gan",
            "fgan_tv", "wgan", "wgan_gp", "sngan", "unrolled_gan", "lsgan", "ebgan", "began", "infogan", "gmmn", "mmdgan",
            "vae", "beta_vae", "aae", "wae_mmd", "wae_gan", "vaegan", "ali", "alice_l2", "alice_adversarial", "alpha_gan",
            "veegan", "vidm", "dali", "dali_f", "dali_l2", "asvae", "asvae_r", "asvae_g")


def test_registry_holds_the_whole_model_set():
    assert set(REQUIRED) <= set(MODELS)
    assert get("bigan") is MODELS["ali"] and get("alice") is MODELS["alice_l2"]
    with pytest.raises(ValueError, match="model must be one of"):
        get("no_such_model")


def test_wgan_clips_and_takes_five_critic_steps():
    """WGAN (Arjovsky et al., 2017, algorithm 1: c = 0.01, n_critic = 5, RMSProp)."""
    spec = MODELS["wgan"]
    assert (spec.clip, spec.critic_steps, spec.optimizer) == (0.01, 5, "rmsprop")
