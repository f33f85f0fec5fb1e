"""MODELS: every model of the set, name -> ModelSpec, the wiring from networks to its objective.

A spec says which networks the model needs (an encoder, which critics, a learned decoder
variance, InfoGAN's code head), in which order its players are updated, and how one step turns a
data batch and prior noise into the objective's terms. The objectives themselves live in
adversarial.py, moment_matching.py, autoencoders.py and joint.py, written only with implicitdiv's public
functions.

Every tensor a step sees carries a leading seed axis: x (S, B, d), z (S, B, latent), logits (S, B).
The objectives average over all of it; the trainer multiplies by S, so each seed's parameters get
the gradient of that seed's own mean.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import Any, Callable

import torch

import implicitdiv as idv

from . import adversarial, autoencoders, joint, moment_matching
from .common import Terms, row_squared_error
from .unrolled import unrolled_logits

UNROLL_STEPS = 5  # Metz et al. (2016) as VEEGAN ran it on the grid


@dataclass
class StepContext:
    """What a step needs beyond networks and batch: the backend, each seed's total data variance
    (the EBGAN margin, (S, 1)), the seeds' random draws, the optimizers (Unrolled GAN replays the
    critic's), the player being updated, and per-run state (BEGAN's k_t)."""
    backend: str | None = None
    total_variance: Any = 1.0
    draws: Any = None
    optimizers: dict = field(default_factory=dict)
    phase: str = "generator"
    state: dict = field(default_factory=dict)


def _encode_data(nets, x):
    return nets("E", x).chunk(2, dim=-1)[0]


def _encode_features(nets, x):
    return nets("E", nets("D", x, method="trunk")).chunk(2, dim=-1)[0]


@dataclass(frozen=True)
class ModelSpec:
    name: str
    step: Callable  # (nets: StepNets, x, z, ctx) -> Terms
    uses: tuple[str, ...]  # the implicitdiv functions with a backend= that the objective calls
    critics: dict = field(default_factory=dict)  # net name -> critic kind
    encoder: str | None = None  # "data": E(x) -> (mean, logvar); "features": E reads critic D's trunk
    x_logvar: bool = False  # a learned log-variance of the Gaussian decoder
    code_dim: int = 0  # InfoGAN's continuous code, input of G next to z, read back by net "Q"
    critic_steps: int = 1  # critic updates per generator update
    spectral_norm: bool = False  # on every critic layer
    clip: float | None = None  # clamp critic weights to [-clip, clip] after each update
    metric: str = "mmd2"  # what training should improve: sample MMD^2, or held-out reconstruction MSE
                          # for the models whose objective reconstructs x
    order: tuple[str, ...] = ()  # players in update order; default: critics (if any), then generator
    optimizer: str = "adam"  # or "rmsprop" (WGAN)

    def __post_init__(self):
        if not self.order:
            object.__setattr__(self, "order", ("discriminator", "generator") if self.critics else ("generator",))

    def player_of(self, net: str) -> str:
        """critics -> "discriminator"; E -> "encoder" when the model updates it on its own; else "generator"."""
        if net in self.critics:
            return "discriminator"
        if net == "E" and "encoder" in self.order:
            return "encoder"
        return "generator"

    def encode(self, nets, x):
        """The code of x: the mean of q(z | x)."""
        return (_encode_features if self.encoder == "features" else _encode_data)(nets, x)


def _logit(nets, name, *inputs, method="forward") -> torch.Tensor:
    return nets(name, *inputs, method=method).squeeze(-1)


def _gaussian(nets, name, x):
    mean, logvar = nets(name, x).chunk(2, dim=-1)
    return mean, logvar


def _sample_code(nets, x, ctx, name="eps_q"):
    """z ~ q(z | x) by the reparameterization trick, with this iteration's noise `name`."""
    mean, logvar = _gaussian(nets, "E", x)
    z, _ = idv.reparameterize(mean, logvar, ctx.draws.normal(name, *mean.shape[1:]), backend=ctx.backend)
    return z, mean, logvar


# ---- data-space adversarial models -------------------------------------------------------------

def _data_logits(nets, ctx, x, name="D", method="forward") -> torch.Tensor:
    """The critic's logits on data. Outside the critics' own update no gradient reads them (a
    generator's loss depends on its samples only), so there they are the values from before the
    critics' update, reused instead of recomputed: the reported discriminator term is pre-update."""
    if ctx.phase == "discriminator":
        return _logit(nets, name, x, method=method)
    return nets.before_update(name, x, method=method).squeeze(-1)


def _logit_game(objective, nets, x, z, ctx) -> Terms:
    fake = nets("G", z)
    return objective(_data_logits(nets, ctx, x), _logit(nets, "D", fake), backend=ctx.backend)


def _wgan_gp(nets, x, z, ctx) -> Terms:
    fake = nets("G", z)
    critic = nets.module("D")
    mix = ctx.draws.uniform("mix", x.shape[1])
    penalty = adversarial.gradient_penalty(lambda v: critic(v).squeeze(-1), x, fake, mix=mix)
    return adversarial.wgan_gp(_logit(nets, "D", x), _logit(nets, "D", fake), penalty, backend=ctx.backend)


def _unrolled_gan(nets, x, z, ctx) -> Terms:
    fake = nets("G", z)
    real = _data_logits(nets, ctx, x)
    if ctx.phase == "discriminator":
        return adversarial.gan(real, _logit(nets, "D", fake), backend=ctx.backend)
    unrolled = unrolled_logits(nets.module("D"), ctx.optimizers["discriminator"], x, fake, UNROLL_STEPS,
                               backend=ctx.backend)
    return adversarial.gan(real, unrolled, backend=ctx.backend)


def _ebgan(nets, x, z, ctx) -> Terms:
    fake = nets("G", z)
    return adversarial.ebgan(row_squared_error(x, nets("D", x)), row_squared_error(fake, nets("D", fake)),
                             margin=ctx.total_variance)


def _began(nets, x, z, ctx) -> Terms:
    began = ctx.state.setdefault("began", adversarial.BEGAN())
    fake = nets("G", z)
    terms = began.losses(x, nets("D", x), fake, nets("D", fake))
    if ctx.phase == "generator":  # k_t moves once per iteration, after both players' updates
        began.update()
    return terms


def _infogan(nets, x, z, ctx) -> Terms:
    code = ctx.draws.normal("code", z.shape[1], nets.module("Q").code_dim)
    fake = nets("G", torch.cat([z, code], dim=-1))
    code_mean, code_logvar = _gaussian(nets, "Q", fake)
    return adversarial.infogan(_logit(nets, "D", x), _logit(nets, "D", fake), code, code_mean, code_logvar,
                               backend=ctx.backend)


def _gmmn(nets, x, z, ctx) -> Terms:
    return moment_matching.gmmn(x, nets("G", z), backend=ctx.backend)


def _mmd_gan(nets, x, z, ctx) -> Terms:
    return moment_matching.mmd_gan(nets("D", x), nets("D", nets("G", z)), backend=ctx.backend)


# ---- autoencoders -------------------------------------------------------------------------------

def _vae(objective, nets, x, z, ctx) -> Terms:
    zq, mean, logvar = _sample_code(nets, x, ctx)
    return objective(x, nets("G", zq), nets("x_logvar"), mean, logvar, backend=ctx.backend)


def _aae(nets, x, z, ctx) -> Terms:
    zq, _, _ = _sample_code(nets, x, ctx)
    return autoencoders.aae(x, nets("G", zq), _logit(nets, "Dz", z), _logit(nets, "Dz", zq), backend=ctx.backend)


def _wae_gan(nets, x, z, ctx) -> Terms:
    code = _encode_data(nets, x)
    return autoencoders.wae_gan(x, nets("G", code), _logit(nets, "Dz", z), _logit(nets, "Dz", code),
                                backend=ctx.backend)


def _wae_mmd(nets, x, z, ctx) -> Terms:
    code = _encode_data(nets, x)
    return autoencoders.wae_mmd(x, nets("G", code), code, z, backend=ctx.backend)


def _alpha_gan(nets, x, z, ctx) -> Terms:
    code = _encode_data(nets, x)
    x_rec, fake = nets("G", code), nets("G", z)
    return autoencoders.alpha_gan(x, x_rec, _logit(nets, "D", x), _logit(nets, "D", x_rec), _logit(nets, "D", fake),
                                  _logit(nets, "Dz", z), _logit(nets, "Dz", code), backend=ctx.backend)


def _vaegan(nets, x, z, ctx) -> Terms:
    zq, mean, logvar = _sample_code(nets, x, ctx)
    x_rec, fake = nets("G", zq), nets("G", z)
    h_real, h_rec, h_fake = (nets("D", v, method="trunk") for v in (x, x_rec, fake))
    head = partial(_logit, nets, "D", method="head")
    return autoencoders.vaegan(head(h_real), head(h_rec), head(h_fake), h_real, h_rec, mean, logvar,
                               backend=ctx.backend)


# ---- joint-distribution models ------------------------------------------------------------------

def _pairs(nets, x, z, ctx):
    """q-pairs (x, z_q), p-pairs (G(z), z) through the pair critic; also z_q and G(z)."""
    zq, _, _ = _sample_code(nets, x, ctx)
    fake = nets("G", z)
    return _logit(nets, "Dxz", x, zq), _logit(nets, "Dxz", fake, z), zq, fake


def _ali(nets, x, z, ctx) -> Terms:
    q, p, _, _ = _pairs(nets, x, z, ctx)
    return joint.ali(q, p, backend=ctx.backend)


def _alice_l2(nets, x, z, ctx) -> Terms:
    q, p, zq, _ = _pairs(nets, x, z, ctx)
    return joint.alice_l2(q, p, x, nets("G", zq), backend=ctx.backend)


def _alice_adversarial(nets, x, z, ctx) -> Terms:
    q, p, zq, _ = _pairs(nets, x, z, ctx)
    x_rec = nets("G", zq)
    return joint.alice_adversarial(q, p, _logit(nets, "Dxx", x, x), _logit(nets, "Dxx", x, x_rec), backend=ctx.backend)


def _veegan(nets, x, z, ctx) -> Terms:
    fake = nets("G", z)
    code = _encode_data(nets, x)
    return joint.veegan(_logit(nets, "Dxz", fake, z), _logit(nets, "Dxz", x, code), z, _encode_data(nets, fake),
                        backend=ctx.backend)


def _vidm(nets, x, z, ctx) -> Terms:
    zq, _, _ = _sample_code(nets, x, ctx)
    fake = nets("G", z)
    fake2 = nets("G", ctx.draws.normal("z2", *z.shape[1:]))
    zq2, _, _ = _sample_code(nets, fake2, ctx, "eps_q2")
    rec = nets("G", zq)
    return joint.vidm(
        joint_pairs=(_logit(nets, "Dj", x, zq), _logit(nets, "Dj", fake, z)),
        codes=(_logit(nets, "Dz", zq), _logit(nets, "Dz", z)),
        samples=(_logit(nets, "Dx", fake), _logit(nets, "Dx", x)),
        generated_pairs=(_logit(nets, "Da", fake2, zq2), _logit(nets, "Da", fake, z)),
        cycle_pairs=(_logit(nets, "Db", rec, zq), _logit(nets, "Db", x, zq)),
        backend=ctx.backend)


def _dali(objective, nets, x, z, ctx, encoder_on_features=True) -> Terms:
    fake = nets("G", z)
    h_fake = nets("D", fake, method="trunk")
    z_mean, z_logvar = _gaussian(nets, "E", h_fake if encoder_on_features else fake)
    return objective(_data_logits(nets, ctx, x), _logit(nets, "D", h_fake, method="head"), z, z_mean, z_logvar,
                     backend=ctx.backend)


def _asvae(objective, nets, x, z, ctx) -> Terms:
    zq, _, _ = _sample_code(nets, x, ctx)
    x_logvar = nets("x_logvar")
    x_gen, _ = idv.reparameterize(nets("G", z), x_logvar.expand(-1, z.shape[1], -1),
                                  ctx.draws.normal("eps_x", *x.shape[1:]), backend=ctx.backend)
    z_other = ctx.draws.normal("z_other", *z.shape[1:])  # p(z) drawn apart from x_gen's z
    shift = ctx.draws.shifts("pair_other", x.shape[1])  # x with the code of another row: q(x) q(z)
    zq_other = torch.gather(zq, 1, shift.unsqueeze(-1).expand_as(zq))
    z_mean, z_logvar = _gaussian(nets, "E", x_gen)
    return objective(
        f_logits=(_logit(nets, "f", x, zq), _logit(nets, "f", x_gen, z_other)),
        h_logits=(_logit(nets, "h", x_gen, z), _logit(nets, "h", x, zq_other)),
        x=x, x_mean=nets("G", zq), x_logvar=x_logvar, z=z, z_mean=z_mean, z_logvar=z_logvar, backend=ctx.backend)


# ---- the registry -------------------------------------------------------------------------------

_GAME = ("adversarial_losses",)
_REC = "reconstruction_mse"
_PAIR = {"Dxz": "pair"}
_DALI_ORDER = ("discriminator", "encoder", "generator")


def _specs() -> dict[str, ModelSpec]:
    s = [
        ModelSpec("gan", partial(_logit_game, adversarial.gan), _GAME, {"D": "data"}),
        ModelSpec("gan_minimax", partial(_logit_game, partial(adversarial.gan, saturating=True)), _GAME, {"D": "data"}),
        *[ModelSpec(f"fgan_{div}", partial(_logit_game, partial(adversarial.fgan, divergence=div)), _GAME,
                    {"D": "data"}) for div in idv.FDIVERGENCES],
        ModelSpec("wgan", partial(_logit_game, adversarial.wgan), _GAME, {"D": "data"}, critic_steps=5, clip=0.01,
                  optimizer="rmsprop"),
        ModelSpec("wgan_gp", _wgan_gp, _GAME, {"D": "data"}, critic_steps=5),
        ModelSpec("sngan", partial(_logit_game, adversarial.hinge), _GAME, {"D": "data"}, spectral_norm=True),
        ModelSpec("unrolled_gan", _unrolled_gan, _GAME + ("discriminator_loss",), {"D": "data"}),
        ModelSpec("lsgan", partial(_logit_game, adversarial.lsgan), _GAME, {"D": "data"}),
        ModelSpec("ebgan", _ebgan, (), {"D": "autoencoder"}),
        ModelSpec("began", _began, (), {"D": "autoencoder"}),
        ModelSpec("infogan", _infogan, _GAME + ("gaussian_nll",), {"D": "data"}, code_dim=2),
        ModelSpec("gmmn", _gmmn, ("mmd2",)),
        ModelSpec("mmdgan", _mmd_gan, ("mmd2",), {"D": "features"}, clip=0.05),
        ModelSpec("vae", partial(_vae, autoencoders.vae), ("reparameterize", "gaussian_nll", "kl_std_normal"),
                  encoder="data", x_logvar=True, metric=_REC),
        ModelSpec("beta_vae", partial(_vae, autoencoders.beta_vae), ("reparameterize", "gaussian_nll", "kl_std_normal"),
                  encoder="data", x_logvar=True, metric=_REC),
        ModelSpec("aae", _aae, ("reparameterize",) + _GAME, {"Dz": "latent"}, encoder="data", metric=_REC),
        ModelSpec("wae_gan", _wae_gan, _GAME, {"Dz": "latent"}, encoder="data", metric=_REC),
        ModelSpec("wae_mmd", _wae_mmd, ("mmd2",), encoder="data", metric=_REC),
        ModelSpec("alpha_gan", _alpha_gan, ("discriminator_loss",), {"D": "data", "Dz": "latent"},
                  encoder="data", metric=_REC),
        ModelSpec("vaegan", _vaegan, ("reparameterize", "discriminator_loss", "generator_loss", "gaussian_nll",
                                      "kl_std_normal"), {"D": "data"}, encoder="data", metric=_REC,
                  order=_DALI_ORDER),
        ModelSpec("ali", _ali, ("reparameterize", "discriminator_loss"), _PAIR, encoder="data"),
        ModelSpec("alice_l2", _alice_l2, ("reparameterize", "discriminator_loss"), _PAIR, encoder="data", metric=_REC),
        ModelSpec("alice_adversarial", _alice_adversarial, ("reparameterize", "discriminator_loss") + _GAME,
                  {**_PAIR, "Dxx": "cycle"}, encoder="data", metric=_REC),
        ModelSpec("veegan", _veegan, ("discriminator_loss",), _PAIR, encoder="data"),
        ModelSpec("vidm", _vidm, ("reparameterize", "discriminator_loss"),
                  {"Dj": "pair", "Dz": "latent", "Dx": "data", "Da": "pair", "Db": "pair"}, encoder="data",
                  spectral_norm=True),
        ModelSpec("dali", partial(_dali, joint.dali), _GAME + ("gaussian_nll",), {"D": "data"}, encoder="features",
                  order=_DALI_ORDER),
        ModelSpec("dali_f", partial(_dali, joint.dali_f), _GAME + ("gaussian_nll",), {"D": "data"},
                  encoder="features", order=_DALI_ORDER),
        ModelSpec("dali_l2", partial(_dali, joint.dali_l2), _GAME + ("gaussian_nll",), {"D": "data"},
                  encoder="features", order=_DALI_ORDER),
        # DALI as the authors' toy script (gaussian_example.py) wires it: the encoder reads x itself
        ModelSpec("dali_xenc", partial(_dali, joint.dali, encoder_on_features=False), _GAME + ("gaussian_nll",),
                  {"D": "data"}, encoder="data", order=_DALI_ORDER),
        *[ModelSpec(name, partial(_asvae, partial(joint.asvae, part=part)),
                    ("reparameterize", "discriminator_loss", "gaussian_nll"), {"f": "pair", "h": "pair"},
                    encoder="data", x_logvar=True, metric=_REC)
          for name, part in (("asvae", "both"), ("asvae_r", "r"), ("asvae_g", "g"))],
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
