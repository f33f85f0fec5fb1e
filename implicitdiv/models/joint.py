"""Objectives of the joint-distribution models: ALI/BiGAN, ALICE, VIDM, DALI (DALI-f, DALI-l2)
and AS-VAE.

All of them compare the encoder joint q(x, z) = p_data(x) q(z | x) with the generator joint
p(x, z) = p(z) p(x | z) through a critic on pairs: "q_logits" are its logits on pairs
(x, z ~ q(z | x)), "p_logits" on pairs (G(z), z). Trained as a classifier with q-pairs labelled 1,
its logit estimates log q(x, z) / p(x, z) (implicitdiv.log_density_ratio).

VIDM, DALI and AS-VAE are read from their papers as follows; where a paper leaves a choice open
the docstring says which one is made here, and why.
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


def symmetric_joint_kl(q_logits, p_logits) -> torch.Tensor:
    """KL(q || p) + KL(p || q) from the pair classifier's log-ratio r = log q/p:
    E_q[r] - E_p[r]."""
    return idv.log_density_ratio(q_logits).mean() - idv.log_density_ratio(p_logits).mean()


def vidm(q_logits, p_logits, data_logits, sample_logits, z, z_rec_mean, z_rec_logvar, *, backend=None) -> Terms:
    """VIDM: variational inference by density-ratio matching, with every ratio estimated by a
    classifier. Implemented as the sum of three matching terms:

        joint        KL(q(x,z) || p(x,z)) + KL(p(x,z) || q(x,z)) = E_q[r_xz] - E_p[r_xz]
        marginal     KL(p_G(x) || p_data(x))                     = -E_{x ~ p_G}[r_x]
        conditional  E_p(x,z)[-log q(z | x)]                     (= KL(p(z|x) || q(z|x)) + H_p(z|x))

    generator = joint + marginal + conditional; discriminator = the GAN losses of the pair
    classifier (r_xz, q-pairs labelled 1) and of the data classifier (r_x = log p_data/p_G, data
    labelled 1). The conditional term uses the encoder's explicit Gaussian, so it is the exact
    diagonal-Gaussian NLL of the latent that generated G(z) (z_rec_* = E(G(z))) rather than a third
    classifier: the encoder's density is known, and estimating a known log-density by a
    classifier only adds variance. The joint KL is symmetric so that both the encoder (through
    q-pairs) and the generator (through p-pairs) receive its gradient."""
    joint = symmetric_joint_kl(q_logits, p_logits)
    marginal = -idv.log_density_ratio(sample_logits).mean()
    conditional = idv.gaussian_nll(z, z_rec_mean, z_rec_logvar, backend=backend)
    d = (idv.discriminator_loss(q_logits, p_logits, kind="gan", backend=backend)
         + idv.discriminator_loss(data_logits, sample_logits, kind="gan", backend=backend))
    return {"generator": joint + marginal + conditional, "discriminator": d, "joint": joint.detach(),
            "marginal": marginal.detach(), "conditional": conditional.detach()}


def _joint_game(q_logits, p_logits, divergence, backend):
    """(discriminator, generator) of the pair critic: ALI's for "gan", else the f-GAN bound on
    D_f(q(x,z) || p(x,z)), which the critic maximizes and generator + encoder minimize."""
    if divergence == "gan":
        terms = ali(q_logits, p_logits, backend=backend)
        return terms["discriminator"], terms["generator"]
    d = idv.discriminator_loss(q_logits, p_logits, kind=divergence, backend=backend)
    return d, idv.fdiv_estimate(q_logits, p_logits, divergence=divergence, backend=backend)


def dali(q_logits, p_logits, z, z_rec_mean, z_rec_logvar, x, x_rec_mean, x_rec_logvar, *, divergence="gan",
         weight=1.0, backend=None) -> Terms:
    """DALI: the ALI game plus diagonal-Gaussian likelihoods of both cycles (the Gaussian NLL the
    architecture names "DALI eq. 9"):

        generator = ALI generator
                    + weight ( E_p(z)[-log N(z; E(G(z)))]                          latent cycle
                             + E_data[-log N(x; G(z_q), diag exp(x_logvar))] )     data cycle
        discriminator = ALI discriminator

    z_rec_mean, z_rec_logvar: the encoder's Gaussian on G(z); x_rec_mean: G at z_q ~ q(z | x).
    The DALI paper was not at hand while writing this; the form kept is the one the contract
    pins (a diagonal-Gaussian NLL) applied to both directions of the joint, so that the encoder
    is a likelihood-trained inverse of the generator (which gives DALI its reconstructions) and
    the latent cycle penalizes generators that map many z to one mode (VEEGAN's argument).
    divergence: "gan" (DALI) or an f-divergence of implicitdiv's list (DALI-f)."""
    d, g = _joint_game(q_logits, p_logits, divergence, backend)
    latent = idv.gaussian_nll(z, z_rec_mean, z_rec_logvar, backend=backend)
    data = idv.gaussian_nll(x, x_rec_mean, x_rec_logvar, backend=backend)
    return {"discriminator": d, "generator": g + weight * (latent + data), "latent_nll": latent.detach(),
            "data_nll": data.detach()}


def dali_f(q_logits, p_logits, z, z_rec_mean, z_rec_logvar, x, x_rec_mean, x_rec_logvar, *, divergence="kl",
           weight=1.0, backend=None) -> Terms:
    """DALI-f: dali() whose pair game is the f-GAN bound of `divergence` (default KL) instead of
    ALI's Jensen-Shannon game: the critic maximizes F = E_q[g_f(v)] - E_p[f*(g_f(v))] and generator
    and encoder minimize it."""
    return dali(q_logits, p_logits, z, z_rec_mean, z_rec_logvar, x, x_rec_mean, x_rec_logvar,
                divergence=divergence, weight=weight, backend=backend)


def dali_l2(q_logits, p_logits, z, z_rec, x, x_rec, *, weight=1.0, backend=None) -> Terms:
    """DALI-l2: dali() with both cycle likelihoods replaced by squared errors (a Gaussian of fixed
    unit variance, up to a constant and a factor 2):

        generator = ALI generator + weight (E||z - E(G(z))||^2 + E||x - G(E(x))||^2)"""
    d, g = _joint_game(q_logits, p_logits, "gan", backend)
    latent, data = squared_error(z, z_rec), squared_error(x, x_rec)
    return {"discriminator": d, "generator": g + weight * (latent + data), "latent_l2": latent.detach(),
            "data_l2": data.detach()}


def asvae(q_logits, p_logits, x, x_rec_mean, x_rec_logvar, z, z_rec_mean, z_rec_logvar, *, backend=None) -> Terms:
    """AS-VAE (Pu et al., 2017, eq. 8-10): the symmetric KL between the two joints plus the two
    expected log-likelihoods that make a VAE bound in each direction,

        generator = KL(q(x,z) || p(x,z)) + KL(p(x,z) || q(x,z))
                    + E_q[-log p(x | z)] + E_p[-log q(z | x)]

    Both KLs are read from one pair classifier (E_q[r] - E_p[r], r = log q/p); the paper uses two
    critics with the same optimum, one per direction, which this keeps to one so that the same
    ratio is never estimated twice. p(x | z) is Gaussian with a learned log-variance.
    discriminator = the pair classifier's GAN loss."""
    kl = symmetric_joint_kl(q_logits, p_logits)
    rec_x = idv.gaussian_nll(x, x_rec_mean, x_rec_logvar, backend=backend)
    rec_z = idv.gaussian_nll(z, z_rec_mean, z_rec_logvar, backend=backend)
    d = idv.discriminator_loss(q_logits, p_logits, kind="gan", backend=backend)
    return {"generator": kl + rec_x + rec_z, "discriminator": d, "symmetric_kl": kl.detach(),
            "data_nll": rec_x.detach(), "latent_nll": rec_z.detach()}
