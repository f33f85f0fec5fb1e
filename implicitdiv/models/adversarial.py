"""Objectives of the data-space adversarial models: GAN, f-GAN, WGAN, WGAN-GP, hinge (SN-GAN),
LSGAN, EBGAN, BEGAN and InfoGAN (Unrolled GAN is gan() under the look-ahead critic of unrolled.py). Each takes the critic's outputs on real and generated samples and
returns its named terms (see common.Terms); the networks are the trainer's business.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

import implicitdiv as idv

from .common import Terms, row_absolute_error


def gan(real_logits, fake_logits, *, saturating=False, backend=None) -> Terms:
    """GAN (Goodfellow et al., 2014) on discriminator logits v = logit D(x):

        min_G max_D  E_data[log D(x)] + E_z[log(1 - D(G(z)))]

    discriminator = E[softplus(-v_real)] + E[softplus(v_fake)]   (minus the value)
    generator     = minimax (saturating=True):   E[log(1 - D(G(z)))] = -E[softplus(v_fake)]
                    non-saturating (default):    -E[log D(G(z))]     =  E[softplus(-v_fake)]"""
    d, g = idv.adversarial_losses(real_logits, fake_logits, kind="gan", saturating=saturating, backend=backend)
    return {"discriminator": d, "generator": g}


def fgan(real_logits, fake_logits, *, divergence="kl", saturating=False, backend=None) -> Terms:
    """f-GAN (Nowozin et al., 2016, eq. 6): with critic T = g_f(v),

        min_G max_T  F(T, G) = E_data[g_f(v)] - E_z[f*(g_f(v_fake))]  <=  D_f(P_data || P_G)

    discriminator = -F; generator = -E[f*(g_f(v_fake))] (saturating, the saddle point of F) or
    -E[g_f(v_fake)] (non-saturating, the paper's choice in its experiments, default). "divergence"
    is -discriminator: the current variational estimate of D_f. divergence in
    kl, reverse_kl, pearson, hellinger, js, gan, tv."""
    d, g = idv.adversarial_losses(real_logits, fake_logits, kind=divergence, saturating=saturating, backend=backend)
    return {"discriminator": d, "generator": g, "divergence": -d.detach()}


def gradient_penalty(critic, real, fake, *, weight=10.0, mix=None) -> torch.Tensor:
    """WGAN-GP's penalty (Gulrajani et al., 2017, eq. 3):

        lambda E_xhat[(||grad_xhat D(xhat)||_2 - 1)^2],   xhat = e x + (1 - e) x_fake,  e ~ U[0, 1]

    built with create_graph=True, so the critic's update differentiates through the gradient
    (double backward). Rows are the last dim of real and fake, (..., N, d); mix: the e of every
    row, (..., N) (drawn when None)."""
    e = torch.rand(real.shape[:-1], device=real.device, dtype=real.dtype) if mix is None else mix
    e = e.unsqueeze(-1)
    xhat = (e * real.detach() + (1.0 - e) * fake.detach()).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(xhat).sum(), xhat, create_graph=True)
    norm = torch.sqrt((grad * grad).sum(-1) + 1e-12)  # finite gradient where grad = 0
    return weight * ((norm - 1.0) ** 2).mean()


def wgan(real_scores, fake_scores, *, backend=None) -> Terms:
    """WGAN (Arjovsky et al., 2017, algorithm 1; 003_f42e894b0384bb07.txt, "Wasserstein GAN" and
    "WGAN (clipping)"): by Kantorovich-Rubinstein duality
    W_1 = sup_{||f||_L <= K} E_data[f(x)] - E_z[f(G(z))], with the critic kept K-Lipschitz by
    clipping its weights (the spec's clip=0.01, 5 critic updates per generator update, RMSProp):

        discriminator = E[D(G(z))] - E[D(x)],   generator = -E[D(G(z))]

    "wasserstein" = E[D(x)] - E[D(G(z))], the critic's estimate of K W_1."""
    d, g = idv.adversarial_losses(real_scores, fake_scores, kind="wgan", backend=backend)
    return {"discriminator": d, "generator": g, "wasserstein": -d.detach()}


def wgan_gp(real_scores, fake_scores, penalty, *, backend=None) -> Terms:
    """WGAN-GP (Gulrajani et al., 2017, eq. 3) on critic scores D(x):

        discriminator = E[D(x_fake)] - E[D(x_real)] + penalty      (penalty: gradient_penalty)
        generator     = -E[D(G(z))]

    "wasserstein" = E[D(x_real)] - E[D(x_fake)], the critic's estimate of W_1."""
    d, g = idv.adversarial_losses(real_scores, fake_scores, kind="wgan", backend=backend)
    return {"discriminator": d + penalty, "generator": g, "wasserstein": -d.detach(), "penalty": penalty.detach()}


def hinge(real_logits, fake_logits, *, backend=None) -> Terms:
    """Hinge loss of SN-GAN (Miyato et al., 2018, eq. 16-17; spectral norm is on the critic):

        discriminator = E[relu(1 - D(x))] + E[relu(1 + D(G(z)))],   generator = -E[D(G(z))]"""
    d, g = idv.adversarial_losses(real_logits, fake_logits, kind="hinge", backend=backend)
    return {"discriminator": d, "generator": g}


def lsgan(real_scores, fake_scores, *, backend=None) -> Terms:
    """LSGAN (Mao et al., 2017, eq. 2 with a = 0, b = c = 1):

        discriminator = 1/2 E[(D(x) - 1)^2] + 1/2 E[D(G(z))^2],   generator = 1/2 E[(D(G(z)) - 1)^2]"""
    d, g = idv.adversarial_losses(real_scores, fake_scores, kind="lsgan", backend=backend)
    return {"discriminator": d, "generator": g}


def ebgan(real_energy, fake_energy, *, margin=1.0) -> Terms:
    """EBGAN (Zhao et al., 2017, eq. 1-2) on the autoencoder critic's per-sample energies
    e(x) = ||D(x) - x||^2:

        discriminator = E[e(x)] + E[relu(m - e(G(z)))],   generator = E[e(G(z))]

    (without the pulling-away term). No implicitdiv function applies: the energies are
    reconstruction errors, not log-ratios."""
    return {
        "discriminator": real_energy.mean() + F.relu(margin - fake_energy).mean(),
        "generator": fake_energy.mean(),
    }


class BEGAN:
    """BEGAN (Berthelot et al., 2017, eq. 4) with L(v) = ||v - D(v)||_1 (autoencoder critic D):

        discriminator = L(x) - k_t L(G(z)),   generator = L(G(z))
        k_{t+1} = clip(k_t + lambda_k (gamma L(x) - L(G(z))), 0, 1)
        convergence M = L(x) + |gamma L(x) - L(G(z))|

    L is the mean over the rows of a batch; with a leading seed axis, (S, N, d), every seed has
    its own L and k_t, and the terms are means over seeds. losses() gives the terms at k_t;
    update() moves k_t to k_{t+1} from the balance of the last losses() call."""

    def __init__(self, gamma=0.5, lambda_k=1e-3, k=0.0):
        self.gamma, self.lambda_k = float(gamma), float(lambda_k)
        self.k = torch.as_tensor(float(k), dtype=torch.float64)
        self._balance = None

    def losses(self, real, real_rec, fake, fake_rec) -> Terms:
        lr = row_absolute_error(real, real_rec).mean(-1)  # a scalar, or (S,) per seed
        lf = row_absolute_error(fake, fake_rec).mean(-1)
        k = self.k.to(lr.dtype)
        self._balance = (self.gamma * lr - lf).detach()
        return {
            "discriminator": (lr - k * lf).mean(),
            "generator": lf.mean(),
            "balance": self._balance.mean(),
            "convergence": (lr.detach() + self._balance.abs()).mean(),
            "k": k.mean(),
        }

    def update(self) -> torch.Tensor:
        self.k = (self.k + self.lambda_k * self._balance.double()).clamp(0.0, 1.0)
        return self.k


def infogan(real_logits, fake_logits, code, code_mean, code_logvar, *, weight=1.0, backend=None) -> Terms:
    """InfoGAN (Chen et al., 2016, eq. 5-6) with a continuous code c ~ N(0, I) and a Gaussian
    Q(c | x) = N(code_mean, diag exp(code_logvar)) read from the generated sample:

        min_{G,Q} max_D  V_GAN(D, G) - lambda L_I,
        L_I = E[log Q(c | G(z, c))] + H(c)  <=  I(c; G(z, c))

    with H(c) estimated on the batch as E[-log N(c; 0, I)]. The GAN part is non-saturating;
    "mutual_information" is L_I."""
    d, g = idv.adversarial_losses(real_logits, fake_logits, kind="gan", backend=backend)
    zero = torch.zeros_like(code)
    entropy = idv.gaussian_nll(code, zero, zero, backend=backend)
    mi = entropy - idv.gaussian_nll(code, code_mean, code_logvar, backend=backend)
    return {"discriminator": d, "generator": g - weight * mi, "mutual_information": mi.detach()}
