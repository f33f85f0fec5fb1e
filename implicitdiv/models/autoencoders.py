"""Objectives of the autoencoding models: VAE, beta-VAE, AAE, WAE-MMD, WAE-GAN, alpha-GAN and
VAEGAN.

Encoders are diagonal Gaussians q(z | x) = N(z_mean, diag exp(z_logvar)); decoders give the mean
of x (and, for the likelihood-based models, a log-variance).
"""
from __future__ import annotations

import torch

import implicitdiv as idv

from .common import Terms, absolute_error, squared_error

WAE_SCALES = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)  # Tolstikhin et al. (2018), section 4


def vae(x, x_mean, x_logvar, z_mean, z_logvar, *, beta=1.0, backend=None) -> Terms:
    """VAE (Kingma and Welling, 2014, eq. 10) and beta-VAE (Higgins et al., 2017, eq. 4): the
    negative ELBO with a Gaussian decoder, for one z = z_mean + exp(z_logvar / 2) eps per row,

        generator = E[-log N(x; x_mean(z), diag exp(x_logvar))] + beta KL(q(z | x) || N(0, I))

    "reconstruction" and "kl" are its two terms."""
    rec = idv.gaussian_nll(x, x_mean, x_logvar, backend=backend)
    kl = idv.kl_std_normal(z_mean, z_logvar, backend=backend)
    return {"generator": rec + beta * kl, "reconstruction": rec.detach(), "kl": kl.detach()}


def beta_vae(x, x_mean, x_logvar, z_mean, z_logvar, *, beta=4.0, backend=None) -> Terms:
    """beta-VAE (Higgins et al., 2017): vae() with beta > 1 weighting the KL term."""
    return vae(x, x_mean, x_logvar, z_mean, z_logvar, beta=beta, backend=backend)


def aae(x, x_rec, prior_logits, code_logits, *, weight=1.0, backend=None) -> Terms:
    """AAE (Makhzani et al., 2016, section 2): reconstruction plus a GAN in the latent space, whose
    discriminator tells prior samples z ~ p(z) ("real") from codes z ~ q(z | x) ("fake"):

        generator     = E||x - x_rec||^2 + weight E[softplus(-c(z_q))]      (encoder as generator)
        discriminator = weight (E[softplus(-c(z_p))] + E[softplus(c(z_q))])

    The two phases of the paper are summed into one simultaneous step."""
    d, g = idv.adversarial_losses(prior_logits, code_logits, kind="gan", backend=backend)
    rec = squared_error(x, x_rec)
    return {"generator": rec + weight * g, "discriminator": weight * d, "reconstruction": rec.detach()}


def wae_gan(x, x_rec, prior_logits, code_logits, *, weight=1.0, backend=None) -> Terms:
    """WAE-GAN (Tolstikhin et al., 2018, algorithm 1): aae() with a deterministic encoder
    z = Q(x) and the penalty weight lambda:

        generator = E||x - G(Q(x))||^2 - lambda E[log D(Q(x))],
        discriminator = -lambda (E[log D(z_p)] + E[log(1 - D(Q(x)))])"""
    return aae(x, x_rec, prior_logits, code_logits, weight=weight, backend=backend)


def wae_mmd(x, x_rec, codes, prior_samples, *, weight=10.0, scales=WAE_SCALES, prior_var=1.0, backend=None) -> Terms:
    """WAE-MMD (Tolstikhin et al., 2018, algorithm 2):

        generator = E||x - G(Q(x))||^2 + lambda MMD_u^2(Q(x), z_p)

    with the unbiased U-statistic and the inverse multiquadratics kernel summed over scales,
    k(z, z') = sum_s C_s / (C_s + ||z - z'||^2),  C_s = s * 2 d_z prior_var."""
    base = 2.0 * codes.shape[-1] * prior_var
    m2 = idv.mmd2(codes, prior_samples, kernel="imq", bandwidth=[s * base for s in scales], estimator="unbiased",
                  backend=backend).mean()  # a (S,) batch of MMDs with a leading seed axis
    rec = squared_error(x, x_rec)
    return {"generator": rec + weight * m2, "reconstruction": rec.detach(), "mmd2": m2.detach()}


def alpha_gan(x, x_rec, real_logits, rec_logits, sample_logits, prior_logits, code_logits, *, weight=1.0,
              backend=None) -> Terms:
    """alpha-GAN (Rosca et al., 2017, algorithm 1). A data discriminator D tells data (label 1)
    from reconstructions G(E(x)) and samples G(z) (label 0); a code discriminator C tells prior
    samples (label 1) from codes E(x) (label 0). A classifier's logit is a log density ratio, so
    the encoder and generator minimize ratio estimates of KL divergences:

        generator (encoder + generator) = weight E||x - G(E(x))||_1
                                          - E[log D/(1-D)](G(E(x))) - E[log D/(1-D)](G(z))
                                          - E[log C/(1-C)](E(x))
        discriminator = GAN loss of D (real x vs. both fakes) + GAN loss of C (prior vs. codes)"""
    rec_ratio, sample_ratio = idv.log_density_ratio(rec_logits), idv.log_density_ratio(sample_logits)
    codes = idv.log_density_ratio(code_logits)
    rec = absolute_error(x, x_rec)
    d_data = idv.discriminator_loss(real_logits, torch.cat([rec_logits, sample_logits], -1), kind="gan",
                                    backend=backend)
    d_code = idv.discriminator_loss(prior_logits, code_logits, kind="gan", backend=backend)
    generator = weight * rec - rec_ratio.mean() - sample_ratio.mean() - codes.mean()
    return {"generator": generator, "discriminator": d_data + d_code, "reconstruction": rec.detach()}


def vaegan(real_logits, rec_logits, sample_logits, real_features, rec_features, z_mean, z_logvar, *, gamma=1.0,
           backend=None) -> Terms:
    """VAE/GAN (Larsen et al., 2016, eq. 6-9 and algorithm 1): a VAE whose reconstruction error is
    measured in the discriminator's features Dis_l (here the trunk of the critic, its last hidden
    layer), and a GAN whose discriminator sees data x, reconstructions x~ = G(z_q), z_q ~ q(z | x),
    and samples x_p = G(z_p):

        L_prior = KL(q(z | x) || N(0, I))
        L_llike = -E log N(Dis_l(x); Dis_l(x~), I)  = E[1/2 ||Dis_l(x) - Dis_l(x~)||^2] + const
        discriminator = E[softplus(-D(x))] + E[softplus(D(x~))] + E[softplus(D(x_p))]    (-L_GAN)
        encoder       = L_prior + L_llike
        generator     = gamma L_llike + E[softplus(-D(x~))] + E[softplus(-D(x_p))]

    The decoder's GAN term is the non-saturating form (as the GAN of this set) rather than the
    paper's -L_GAN; gamma = 1 (the paper tunes it per data set; it gives none for 2D data). The
    trainer updates the discriminator, then the encoder, then the decoder."""
    t_real, t_rec = idv.discriminator_loss(real_logits, rec_logits, kind="gan", reduction="none", backend=backend)
    _, t_sample = idv.discriminator_loss(real_logits, sample_logits, kind="gan", reduction="none", backend=backend)
    llike = idv.gaussian_nll(real_features, rec_features, torch.zeros_like(rec_features), backend=backend)
    prior = idv.kl_std_normal(z_mean, z_logvar, backend=backend)
    g_gan = (idv.generator_loss(rec_logits, kind="gan", backend=backend)
             + idv.generator_loss(sample_logits, kind="gan", backend=backend))
    return {"discriminator": t_real.mean() + t_rec.mean() + t_sample.mean(), "encoder": prior + llike,
            "generator": gamma * llike + g_gan, "feature_nll": llike.detach(), "kl": prior.detach()}
