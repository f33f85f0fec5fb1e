"""MODELS: every model of the set, name -> ModelSpec, the wiring from networks to its objective.

A spec says which networks the model needs (an encoder, which critics, a learned decoder
variance, InfoGAN's code head) and how one training step turns a data batch and prior noise into
the objective's terms. The objectives themselves live in adversarial.py, mmd.py, autoencoders.py
and joint.py, written only with implicitdiv's public functions.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import Callable

import torch

import implicitdiv as idv
from implicitdiv.reference.ratio import FDIVERGENCES

from . import adversarial, autoencoders, joint, mmd
from .common import Terms, row_squared_error

# critic kinds: "data" x -> logit, "features" x -> [x, phi(x)], "autoencoder" x -> x,
# "pair" (x, z) -> logit, "latent" z -> logit, "cycle" (x, x') -> logit
CRITIC_KINDS = ("data", "features", "autoencoder", "pair", "latent", "cycle")


@dataclass
class StepContext:
    """What a step needs beyond networks and batch: the backend, the data's total variance (the
    EBGAN margin) and per-run state (BEGAN's k_t)."""
    backend: str | None = None
    total_variance: float = 1.0
    state: dict = field(default_factory=dict)


@dataclass(frozen=True)
class ModelSpec:
    name: str
    step: Callable  # (nets, x, z, ctx) -> Terms
    uses: tuple[str, ...]  # the implicitdiv functions with a backend= that the objective calls
    critics: dict = field(default_factory=dict)  # net name -> critic kind
    encoder: bool = False
    x_logvar: bool = False  # a learned log-variance of the Gaussian decoder
    code_dim: int = 0  # InfoGAN's continuous code, input of G next to z, read back by net "Q"
    critic_steps: int = 1  # critic updates per generator update
    spectral_norm: bool = False  # on every critic layer
    clip: float | None = None  # clamp critic weights to [-clip, clip] after each update
    metric: str = "mmd2"  # what training should improve: sample MMD^2, or held-out reconstruction MSE
                          # for the models whose objective reconstructs x


def _logit(net, *inputs) -> torch.Tensor:
    return net(*inputs).squeeze(-1)


def _gaussian(net, x):
    mean, logvar = net(x).chunk(2, dim=-1)
    return mean, logvar


def _sample_code(nets, x, ctx):
    """z ~ q(z | x) by the reparameterization trick."""
    mean, logvar = _gaussian(nets["E"], x)
    z, _ = idv.reparameterize(mean, logvar, backend=ctx.backend)
    return z, mean, logvar


# ---- data-space adversarial models -------------------------------------------------------------

def _logit_game(objective, nets, x, z, ctx) -> Terms:
    fake = nets["G"](z)
    return objective(_logit(nets["D"], x), _logit(nets["D"], fake), backend=ctx.backend)


def _wgan_gp(nets, x, z, ctx) -> Terms:
    fake = nets["G"](z)
    critic = nets["D"]
    penalty = adversarial.gradient_penalty(lambda v: _logit(critic, v), x, fake)
    return adversarial.wgan_gp(_logit(critic, x), _logit(critic, fake), penalty, backend=ctx.backend)


def _ebgan(nets, x, z, ctx) -> Terms:
    fake = nets["G"](z)
    ae = nets["D"]
    return adversarial.ebgan(row_squared_error(x, ae(x)), row_squared_error(fake, ae(fake)),
                             margin=ctx.total_variance)


def _began(nets, x, z, ctx) -> Terms:
    began = ctx.state.setdefault("began", adversarial.BEGAN())
    fake = nets["G"](z)
    terms = began.losses(x, nets["D"](x), fake, nets["D"](fake))
    began.update(terms)
    return terms


def _infogan(nets, x, z, ctx) -> Terms:
    code = torch.randn(z.shape[0], nets["Q"].code_dim, dtype=z.dtype, device=z.device)
    fake = nets["G"](torch.cat([z, code], dim=-1))
    code_mean, code_logvar = _gaussian(nets["Q"], fake)
    return adversarial.infogan(_logit(nets["D"], x), _logit(nets["D"], fake), code, code_mean, code_logvar,
                               backend=ctx.backend)


def _gmmn(nets, x, z, ctx) -> Terms:
    return mmd.gmmn(x, nets["G"](z), backend=ctx.backend)


def _mmd_gan(nets, x, z, ctx) -> Terms:
    return mmd.mmd_gan(nets["D"](x), nets["D"](nets["G"](z)), backend=ctx.backend)


# ---- autoencoders -------------------------------------------------------------------------------

def _vae(objective, nets, x, z, ctx) -> Terms:
    zq, mean, logvar = _sample_code(nets, x, ctx)
    return objective(x, nets["G"](zq), nets["x_logvar"].value, mean, logvar, backend=ctx.backend)


def _aae(nets, x, z, ctx) -> Terms:
    zq, _, _ = _sample_code(nets, x, ctx)
    return autoencoders.aae(x, nets["G"](zq), _logit(nets["Dz"], z), _logit(nets["Dz"], zq), backend=ctx.backend)


def _wae_gan(nets, x, z, ctx) -> Terms:
    code, _ = _gaussian(nets["E"], x)
    return autoencoders.wae_gan(x, nets["G"](code), _logit(nets["Dz"], z), _logit(nets["Dz"], code),
                                backend=ctx.backend)


def _wae_mmd(nets, x, z, ctx) -> Terms:
    code, _ = _gaussian(nets["E"], x)
    return autoencoders.wae_mmd(x, nets["G"](code), code, z, backend=ctx.backend)


def _alpha_gan(nets, x, z, ctx) -> Terms:
    code, _ = _gaussian(nets["E"], x)
    x_rec, fake = nets["G"](code), nets["G"](z)
    d, c = nets["D"], nets["Dz"]
    return autoencoders.alpha_gan(x, x_rec, _logit(d, x), _logit(d, x_rec), _logit(d, fake), _logit(c, z),
                                  _logit(c, code), backend=ctx.backend)


# ---- joint-distribution models ------------------------------------------------------------------

def _pairs(nets, x, z, ctx):
    """q-pairs (x, z_q), p-pairs (G(z), z) through the pair critic; also z_q and G(z)."""
    zq, _, _ = _sample_code(nets, x, ctx)
    fake = nets["G"](z)
    return _logit(nets["Dxz"], x, zq), _logit(nets["Dxz"], fake, z), zq, fake


def _ali(nets, x, z, ctx) -> Terms:
    q, p, _, _ = _pairs(nets, x, z, ctx)
    return joint.ali(q, p, backend=ctx.backend)


def _alice_l2(nets, x, z, ctx) -> Terms:
    q, p, zq, _ = _pairs(nets, x, z, ctx)
    return joint.alice_l2(q, p, x, nets["G"](zq), backend=ctx.backend)


def _alice_adversarial(nets, x, z, ctx) -> Terms:
    q, p, zq, _ = _pairs(nets, x, z, ctx)
    x_rec = nets["G"](zq)
    return joint.alice_adversarial(q, p, _logit(nets["Dxx"], x, x), _logit(nets["Dxx"], x, x_rec), backend=ctx.backend)


def _vidm(nets, x, z, ctx) -> Terms:
    q, p, _, fake = _pairs(nets, x, z, ctx)
    z_mean, z_logvar = _gaussian(nets["E"], fake)
    return joint.vidm(q, p, _logit(nets["D"], x), _logit(nets["D"], fake), z, z_mean, z_logvar, backend=ctx.backend)


def _dali(objective, nets, x, z, ctx) -> Terms:
    q, p, zq, fake = _pairs(nets, x, z, ctx)
    z_mean, z_logvar = _gaussian(nets["E"], fake)
    return objective(q, p, z, z_mean, z_logvar, x, nets["G"](zq), nets["x_logvar"].value, backend=ctx.backend)


def _dali_l2(nets, x, z, ctx) -> Terms:
    q, p, zq, fake = _pairs(nets, x, z, ctx)
    z_mean, _ = _gaussian(nets["E"], fake)
    return joint.dali_l2(q, p, z, z_mean, x, nets["G"](zq), backend=ctx.backend)


def _asvae(nets, x, z, ctx) -> Terms:
    q, p, zq, fake = _pairs(nets, x, z, ctx)
    z_mean, z_logvar = _gaussian(nets["E"], fake)
    return joint.asvae(q, p, x, nets["G"](zq), nets["x_logvar"].value, z, z_mean, z_logvar, backend=ctx.backend)


# ---- the registry -------------------------------------------------------------------------------

_GAME = ("adversarial_losses",)
_REC = "reconstruction_mse"
_PAIR = {"Dxz": "pair"}


def _specs() -> dict[str, ModelSpec]:
    s = [
        ModelSpec("gan", partial(_logit_game, adversarial.gan), _GAME, {"D": "data"}),
        ModelSpec("gan_minimax", partial(_logit_game, partial(adversarial.gan, saturating=True)), _GAME, {"D": "data"}),
        *[ModelSpec(f"fgan_{div}", partial(_logit_game, partial(adversarial.fgan, divergence=div)), _GAME,
                    {"D": "data"}) for div in FDIVERGENCES],
        ModelSpec("wgan_gp", _wgan_gp, _GAME, {"D": "data"}, critic_steps=5),
        ModelSpec("sngan", partial(_logit_game, adversarial.hinge), _GAME, {"D": "data"}, spectral_norm=True),
        ModelSpec("lsgan", partial(_logit_game, adversarial.lsgan), _GAME, {"D": "data"}),
        ModelSpec("ebgan", _ebgan, (), {"D": "autoencoder"}),
        ModelSpec("began", _began, (), {"D": "autoencoder"}),
        ModelSpec("infogan", _infogan, _GAME + ("gaussian_nll",), {"D": "data"}, code_dim=2),
        ModelSpec("gmmn", _gmmn, ("mmd2",)),
        ModelSpec("mmdgan", _mmd_gan, ("mmd2",), {"D": "features"}, clip=0.05),
        ModelSpec("vae", partial(_vae, autoencoders.vae), ("reparameterize", "gaussian_nll", "kl_std_normal"),
                  encoder=True, x_logvar=True, metric=_REC),
        ModelSpec("beta_vae", partial(_vae, autoencoders.beta_vae), ("reparameterize", "gaussian_nll", "kl_std_normal"),
                  encoder=True, x_logvar=True, metric=_REC),
        ModelSpec("aae", _aae, ("reparameterize",) + _GAME, {"Dz": "latent"}, encoder=True, metric=_REC),
        ModelSpec("wae_gan", _wae_gan, _GAME, {"Dz": "latent"}, encoder=True, metric=_REC),
        ModelSpec("wae_mmd", _wae_mmd, ("mmd2",), encoder=True, metric=_REC),
        ModelSpec("alpha_gan", _alpha_gan, ("discriminator_loss",), {"D": "data", "Dz": "latent"},
                  encoder=True, metric=_REC),
        ModelSpec("ali", _ali, ("reparameterize", "discriminator_loss"), _PAIR, encoder=True),
        ModelSpec("alice_l2", _alice_l2, ("reparameterize", "discriminator_loss"), _PAIR, encoder=True, metric=_REC),
        ModelSpec("alice_adversarial", _alice_adversarial, ("reparameterize", "discriminator_loss") + _GAME,
                  {**_PAIR, "Dxx": "cycle"}, encoder=True, metric=_REC),
        ModelSpec("vidm", _vidm, ("reparameterize", "discriminator_loss", "gaussian_nll"),
                  {**_PAIR, "D": "data"}, encoder=True),
        ModelSpec("dali", partial(_dali, joint.dali), ("reparameterize", "discriminator_loss", "gaussian_nll"), _PAIR,
                  encoder=True, x_logvar=True, metric=_REC),
        ModelSpec("dali_f", partial(_dali, joint.dali_f),
                  ("reparameterize", "discriminator_loss", "fdiv_estimate", "gaussian_nll"), _PAIR, encoder=True,
                  x_logvar=True, metric=_REC),
        ModelSpec("dali_l2", _dali_l2, ("reparameterize", "discriminator_loss"), _PAIR, encoder=True, metric=_REC),
        ModelSpec("asvae", _asvae, ("reparameterize", "discriminator_loss", "gaussian_nll"),
                  _PAIR, encoder=True, x_logvar=True, metric=_REC),
    ]
    return {spec.name: spec for spec in s}


MODELS: dict[str, ModelSpec] = _specs()
ALIASES = {"bigan": "ali", "alice": "alice_l2", "hinge": "sngan", "fgan": "fgan_kl"}


def get(name: str) -> ModelSpec:
    """The spec of a model name (or alias: bigan, alice, hinge, fgan)."""
    key = ALIASES.get(name, name)
    if key not in MODELS:
        raise ValueError(f"model must be one of {sorted(MODELS)} (or {sorted(ALIASES)}), got {name!r}")
    return MODELS[key]
