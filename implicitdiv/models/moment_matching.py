"""Objectives of the moment-matching models: GMMN and MMD-GAN."""
from __future__ import annotations

import torch

import implicitdiv as idv

from .common import Terms

GMMN_BANDWIDTHS = (0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)
MMD_GAN_BANDWIDTHS = (1.0, 2.0, 4.0, 8.0, 16.0)  # Li et al. (2017), sigma_list
_TINY = 1e-12  # keeps d sqrt / d MMD^2 finite where the samples coincide


def gmmn(data, samples, *, bandwidths=GMMN_BANDWIDTHS, backend=None) -> Terms:
    """GMMN (Li, Swersky and Zemel, 2015, eq. 4): the generator minimizes the square root of the
    biased MMD^2 with the sum of RBF kernels over several bandwidths,

        generator = sqrt(MMD_b^2),  MMD_b^2 = 1/N^2 sum k(x, x') + 1/M^2 sum k(y, y') - 2/(NM) sum k(x, y),
        k(x, y) = sum_s exp(-||x - y||^2 / (2 s^2)).

    "mmd2" is MMD_b^2. With a leading seed axis, (S, N, d), each seed's root, averaged over seeds."""
    m2 = idv.mmd2(data, samples, kernel="rbf", bandwidth=bandwidths, estimator="biased", backend=backend)
    return {"generator": torch.sqrt(torch.clamp(m2, min=_TINY)).mean(), "mmd2": m2.detach().mean()}


def mmd_gan(real_features, fake_features, *, bandwidths=MMD_GAN_BANDWIDTHS, backend=None) -> Terms:
    """MMD-GAN (Li et al., 2017, eq. 3) without its autoencoder terms: the critic f_phi maps
    samples to features, and

        min_G max_phi  MMD_b^2(f_phi(x), f_phi(G(z)))   with the mixture RBF kernel above

    discriminator = -MMD_b^2, generator = MMD_b^2 (the trainer clips the critic's weights, as
    the paper does, so that the supremum stays bounded). A leading seed axis gives the mean over
    seeds."""
    m2 = idv.mmd2(real_features, fake_features, kernel="rbf", bandwidth=bandwidths, estimator="biased",
                  backend=backend).mean()
    return {"discriminator": -m2, "generator": m2, "mmd2": m2.detach()}
