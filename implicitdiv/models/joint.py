"""Objectives of the joint-distribution models: ALI/BiGAN, ALICE, VEEGAN, VIDM, DALI (DALI-f,
DALI-l2) and AS-VAE (AS-VAE-r, AS-VAE-g).

They relate the encoder joint q(x, z) = q(x) q(z | x) and the generator joint
p(x, z) = p(z) p(x | z). A critic trained as a classifier with E_num[softplus(-c)] +
E_den[softplus(c)] has the optimum c* = log p_num / p_den (implicitdiv.log_density_ratio), so a
generator that minimizes the mean of c over numerator samples minimizes an estimate of
KL(p_num || p_den).

VIDM, DALI and AS-VAE follow their papers in ../shared/seeds/ as ../shared/MODELS.md restates
them; each docstring names the file and equation, and the choices made where the paper is silent.
"""
from __future__ import annotations

import torch

import implicitdiv as idv

from .common import Terms, squared_error


def ali(q_logits, p_logits, *, backend=None) -> Terms:
    """ALI / BiGAN (Dumoulin et al., 2017, eq. 1; Donahue et al., 2017):

        min_{G,E} max_D  E_q(x,z)[log D(x, z)] + E_p(x,z)[log(1 - D(x, z))]

    discriminator = E_q[softplus(-v)] + E_p[softplus(v)]; generator and encoder take the same loss
    with the labels swapped (the non-saturating form of the ALI code):
    generator = E_p[softplus(-v)] + E_q[softplus(v)]."""
    d = idv.discriminator_loss(q_logits, p_logits, kind="gan", backend=backend)
    g = idv.discriminator_loss(p_logits, q_logits, kind="gan", backend=backend)
    return {"discriminator": d, "generator": g}


def alice_l2(q_logits, p_logits, x, x_rec, *, weight=1.0, backend=None) -> Terms:
    """ALICE, explicit form (Li et al., 2017, eq. 8 with the l2 cycle): ALI plus a bound on the
    conditional entropy H(x | z) by the cycle reconstruction x -> E(x) -> G(E(x)),

        generator = ALI generator + weight E||x - G(E(x))||^2"""
    terms = ali(q_logits, p_logits, backend=backend)
    rec = squared_error(x, x_rec)
    return {"discriminator": terms["discriminator"], "generator": terms["generator"] + weight * rec,
            "reconstruction": rec.detach()}


def alice_adversarial(q_logits, p_logits, cycle_real_logits, cycle_fake_logits, *, weight=1.0, backend=None) -> Terms:
    """ALICE, adversarial form (Li et al., 2017, eq. 9): a second critic D_xx tells pairs (x, x)
    ("real") from cycle pairs (x, G(E(x))) ("fake"); generator and encoder fool it too:

        discriminator = ALI discriminator + E[softplus(-v_xx)] + E[softplus(v_x,rec)]
        generator     = ALI generator + weight E[softplus(-v_x,rec)]   (non-saturating)"""
    terms = ali(q_logits, p_logits, backend=backend)
    d_cycle, g_cycle = idv.adversarial_losses(cycle_real_logits, cycle_fake_logits, kind="gan", backend=backend)
    return {"discriminator": terms["discriminator"] + d_cycle, "generator": terms["generator"] + weight * g_cycle}


def veegan(p_logits, q_logits, z, z_rec, *, backend=None) -> Terms:
    """VEEGAN (Srivastava et al., 2017, eq. 8 and algorithm 1): a reconstructor F: x -> z and a
    critic D on pairs, trained as a classifier of p-pairs (G(z), z) (label 1) against q-pairs
    (x, F(x)), so that D ~ log p(x, z) / q(x, z):

        discriminator = E_p[softplus(-D)] + E_q[softplus(D)]
        generator     = E_z[D(G(z), z)] + E_z||z - F(G(z))||^2

    G receives both terms; F only the l2 cost (D's term does not read F). F here is deterministic
    (the mean of the encoder network); the paper allows a stochastic F."""
    d = idv.discriminator_loss(p_logits, q_logits, kind="gan", backend=backend)
    rec = squared_error(z, z_rec)
    return {"discriminator": d, "generator": p_logits.mean() + rec, "latent_l2": rec.detach()}


def _dc(pair):
    """E_num[c] - E_den[c]: KL(num || den) + KL(den || num) for c ~ log p_num / p_den."""
    num, den = pair
    return idv.log_density_ratio(num).mean() - idv.log_density_ratio(den).mean()


def vidm(*, joint_pairs, codes, samples, generated_pairs, cycle_pairs, backend=None) -> Terms:
    """VIDM (000_3aaa2260245c9cb7.txt, section 2, Match(theta, phi); section 3, every KL by a
    classifier), with the five critics of MODELS.md, each given as (logits on its numerator,
    logits on its denominator):

        c_J  joint_pairs      (x, E(x))           vs (G(z), z)
        c_Z  codes            E(x)                vs z ~ p(z)
        c_X  samples          G(z)                vs x ~ q(x)
        c_A  generated_pairs  (G(z'), E(G(z')))   vs (G(z), z)
        c_B  cycle_pairs      (G(E(x)), E(x))     vs (x, E(x))

    discriminator = sum over the five of E_num[softplus(-c)] + E_den[softplus(c)]
    generator     = dc_J + E_x[c_Z(E(x))] + E_z[c_X(G(z))] + dc_A + dc_B,  dc = E_num[c] - E_den[c]

    (the symmetric pairs give KL both ways; c_Z, c_X give KL(p(z|phi) || q(z)), KL(p(x|theta) || q(x))).
    The paper leaves open, and this takes: every term weight 1; five critics that share no weight;
    critics updated before G and E, at the same learning rate; E(x) a reparameterized Gaussian
    sample (an implicit sampler whose density is never used). Its spectral-norm discriminator is
    the spec's spectral_norm=True on every critic."""
    pairs = {"joint": joint_pairs, "codes": codes, "samples": samples, "generated": generated_pairs,
             "cycle": cycle_pairs}
    d = sum(idv.discriminator_loss(num, den, kind="gan", backend=backend) for num, den in pairs.values())
    (encoded, _), (sampled, _) = codes, samples  # the numerators: E(x) and G(z)
    kl = {"joint": _dc(joint_pairs), "codes": idv.log_density_ratio(encoded).mean(),
          "samples": idv.log_density_ratio(sampled).mean(), "generated": _dc(generated_pairs),
          "cycle": _dc(cycle_pairs)}
    return {"discriminator": d, "generator": sum(kl.values()), **{f"kl_{k}": v.detach() for k, v in kl.items()}}


def _dali_terms(real_logits, fake_logits, z, latent, *, kind, weight, backend) -> Terms:
    d, g = idv.adversarial_losses(real_logits, fake_logits, kind=kind, backend=backend)
    lam = 1.0 / z.shape[-1] if weight is None else weight
    encoder = lam * latent
    return {"discriminator": d, "encoder": encoder, "generator": g + encoder, "latent_nll": latent.detach()}


def dali(real_logits, fake_logits, z, z_mean, z_logvar, *, weight=None, backend=None) -> Terms:
    """DALI (001_829e26b63a0bb621.txt: objective eq. 5; game eq. 10 with the GAN value function of
    section 3.4; L of eq. 9; Algorithm 1). The discriminator T sees data x only (logits
    real = T(x), fake = T(G(z))); the encoder's Gaussian q(z | x) = N(z_mean, diag exp(z_logvar))
    is read at x = G(z):

        discriminator = E_x[softplus(-T(x))] + E_z[softplus(T(G(z)))]
        encoder       = lambda E_z[L(z, E(G(z)))],   L = -log N(z; mu, diag sigma^2)   (eq. 9)
        generator     = E_z[softplus(-T(G(z)))] + encoder                                (L_g + L_e)

    lambda = 1/d (section 4: "we simply set lambda to be 1/d", the mean over latent dimensions)
    unless `weight` is given. No data-space reconstruction; G is deterministic.
    The trainer updates D, then E (on "encoder"), then G (on "generator"), each with the others'
    latest parameters (MODELS.md; the authors' toy); the encoder reads D's features, which its loss
    does not update (section 4: spec encoder="features")."""
    latent = idv.gaussian_nll(z, z_mean, z_logvar, backend=backend)
    return _dali_terms(real_logits, fake_logits, z, latent, kind="gan", weight=weight, backend=backend)


def dali_f(real_logits, fake_logits, z, z_mean, z_logvar, *, weight=None, backend=None) -> Terms:
    """DALI-f (001_829e26b63a0bb621.txt, eq. 8 and the paragraph after it): dali() with the
    f-GAN value function of KL and a linear critic output T, as printed:

        discriminator = -E_x[T(x)] + E_z[exp(T(G(z)) - 1)]        (D maximizes eq. 8)
        generator     = -E_z[T(G(z))] + encoder                   (G's non-vanishing form)

    implicitdiv's kind="kl" is exactly this pair (g_f(v) = v, f*(t) = exp(t - 1))."""
    latent = idv.gaussian_nll(z, z_mean, z_logvar, backend=backend)
    return _dali_terms(real_logits, fake_logits, z, latent, kind="kl", weight=weight, backend=backend)


def dali_l2(real_logits, fake_logits, z, z_mean, z_logvar=None, *, weight=None, backend=None) -> Terms:
    """DALI-l2 (001_829e26b63a0bb621.txt, section 4.1): dali() with q(z | x) = N(mu(x), I), so

        encoder = lambda E_z[1/2 ||z - mu(G(z))||^2 + d/2 log 2 pi]

    (eq. 9 with sigma = 1; the constant moves no gradient). z_logvar is not read."""
    latent = idv.gaussian_nll(z, z_mean, torch.zeros_like(z_mean), backend=backend)
    return _dali_terms(real_logits, fake_logits, z, latent, kind="gan", weight=weight, backend=backend)


def asvae(*, f_logits, h_logits, x, x_mean, x_logvar, z, z_mean, z_logvar, part="both", backend=None) -> Terms:
    """AS-VAE (004_87f77bca12a1818b.txt, section 3 eq. 8-12 and Corollary 1.1; that copy lost its
    equations, so this follows MODELS.md's reconstruction from the surviving prose). Two critics
    with separate parameters, each given as (logits on positives, logits on negatives):

        f  f_logits  (x, z_e), z_e ~ q(z | x)        vs (x_g, z'), x_g ~ p(x | z), z' ~ p(z) apart
                     optimum f* = log q(x, z) - log p(x) p(z)
        h  h_logits  (x_g, z) ~ p(x, z)              vs (x, z_e of another row) ~ q(x) q(z)
                     optimum h* = log p(x, z) - log q(x) q(z)

    each critic minimizes E_pos[softplus(-c)] + E_neg[softplus(c)], and the model (encoder,
    stochastic decoder p(x | z) = N(G(z), diag exp(x_logvar))) minimizes, critics frozen,

        generator = E[-log p(x | z_e) + f(x, z_e)]  +  E[-log q(z | x_g) + h(x_g, z)]
                    (x_mean = G(z_e))                   (z_mean, z_logvar = E(x_g))

    part="r" (AS-VAE-r) keeps the first bracket and f only, part="g" (AS-VAE-g) the second and h.
    Not stated in the prose, taken here: a learned per-coordinate decoder variance; z' a fresh
    prior draw; the q(x) q(z) negatives pair each row with the code of another row of its batch."""
    if part not in ("both", "r", "g"):
        raise ValueError(f"part must be 'both', 'r' or 'g', got {part!r}")
    terms: Terms = {}
    d, g = 0.0, 0.0
    if part in ("both", "r"):
        nll_x = idv.gaussian_nll(x, x_mean, x_logvar, backend=backend)
        f_pos, f_neg = f_logits
        d = d + idv.discriminator_loss(f_pos, f_neg, kind="gan", backend=backend)
        g = g + nll_x + f_pos.mean()
        terms["data_nll"] = nll_x.detach()
    if part in ("both", "g"):
        nll_z = idv.gaussian_nll(z, z_mean, z_logvar, backend=backend)
        h_pos, h_neg = h_logits
        d = d + idv.discriminator_loss(h_pos, h_neg, kind="gan", backend=backend)
        g = g + nll_z + h_pos.mean()
        terms["latent_nll"] = nll_z.detach()
    return {"discriminator": d, "generator": g, **terms}
