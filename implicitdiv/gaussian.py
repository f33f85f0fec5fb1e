"""Public Gaussian latent terms (log-variance parameterization) and the mixture log-density."""
from __future__ import annotations

import torch

from . import _validate as check
from .backend import resolve
from .ops import gaussian as ops
from .ops import pairwise as pairwise_ops
from .reference import gaussian as ref


def _operands(names_and_tensors: dict) -> list[torch.Tensor]:
    """Validate, check shapes agree (broadcasting allowed, trailing dim equal), broadcast."""
    for n, t in names_and_tensors.items():
        check.tensor(t, n)
        if t.dim() == 0:
            raise ValueError(f"{n} must have at least one dim (the latent dim), got a scalar")
    check.same_kind(**names_and_tensors)
    items = list(names_and_tensors.items())
    d = items[0][1].shape[-1]
    for n, t in items[1:]:
        if t.shape[-1] != d:
            raise ValueError(f"trailing dims differ: {items[0][0]} has {d}, {n} has {t.shape[-1]}")
    if all(t.shape == items[0][1].shape for _, t in items[1:]):
        return [t for _, t in items]
    try:
        return list(torch.broadcast_tensors(*names_and_tensors.values()))
    except RuntimeError:
        shapes = ", ".join(f"{n} {tuple(t.shape)}" for n, t in items)
        raise ValueError(f"shapes do not broadcast: {shapes}") from None


def _reduce(per_row: torch.Tensor, reduction: str) -> torch.Tensor:
    return per_row.mean() if reduction == "mean" else per_row.sum() if reduction == "sum" else per_row


def _finite_rule(out: torch.Tensor, reduction: str, *inputs: torch.Tensor) -> torch.Tensor:
    """NaN or Inf in a row's inputs gives NaN (not a +Inf or a finite limit such as exp(-inf) = 0).
    The reference needs it applied; the fused ops apply it in their own pass over the inputs."""
    if reduction == "none":
        return check.nan_where_nonfinite_rows(out, *inputs)
    return check.nan_unless_finite(out, *inputs)


def gaussian_nll(z, mean, logvar, *, reduction="mean", backend=None):
    """Negative log-likelihood of z under N(mean, diag exp(logvar)), summed over the last dim:

        nll = 1/2 sum_k [(z_k - m_k)^2 exp(-lv_k) + lv_k + log 2 pi]

    then reduced over the remaining dims ("mean", "sum" or "none"). Shapes broadcast; the last
    dims must agree."""
    check.reduction(reduction)
    z, mean, logvar = _operands({"z": z, "mean": mean, "logvar": logvar})
    name = resolve(backend, "gaussian_nll", z.device)
    if name != "reference":
        return ops.gaussian_nll(z, mean, logvar, reduction, backend=name)
    return _finite_rule(_reduce(ref.gaussian_nll(z, mean, logvar), reduction), reduction, z, mean, logvar)


def kl_std_normal(mean, logvar, *, reduction="mean", backend=None):
    """KL(N(mean, diag exp(logvar)) || N(0, I)) = 1/2 sum_k [exp(lv_k) + m_k^2 - 1 - lv_k], summed
    over the last dim, then reduced."""
    check.reduction(reduction)
    mean, logvar = _operands({"mean": mean, "logvar": logvar})
    name = resolve(backend, "kl_std_normal", mean.device)
    if name != "reference":
        return ops.kl_std_normal(mean, logvar, reduction, backend=name)
    return _finite_rule(_reduce(ref.kl_std_normal(mean, logvar), reduction), reduction, mean, logvar)


def kl_gaussians(mean_q, logvar_q, mean_p, logvar_p, *, reduction="mean", backend=None):
    """KL(q || p) between diagonal Gaussians, summed over the last dim, then reduced:

        1/2 sum_k [lv_p - lv_q + exp(lv_q - lv_p) + (m_q - m_p)^2 exp(-lv_p) - 1]"""
    check.reduction(reduction)
    mq, lq, mp, lp = _operands({"mean_q": mean_q, "logvar_q": logvar_q, "mean_p": mean_p, "logvar_p": logvar_p})
    name = resolve(backend, "kl_gaussians", mq.device)
    if name != "reference":
        return ops.kl_gaussians(mq, lq, mp, lp, reduction, backend=name)
    return _finite_rule(_reduce(ref.kl_gaussians(mq, lq, mp, lp), reduction), reduction, mq, lq, mp, lp)


def reparameterize(mean, logvar, eps=None, *, backend=None):
    """Reparameterized sample and its log-density:

        z = mean + exp(logvar / 2) * eps,   log q(z) = -1/2 sum_k [eps_k^2 + lv_k + log 2 pi]

    eps defaults to standard normal noise (torch's global generator). Returns (z, log_q) with
    log_q summed over the last dim."""
    tensors = {"mean": mean, "logvar": logvar}
    if eps is not None:
        tensors["eps"] = eps
    ops_in = _operands(tensors)
    mean, logvar = ops_in[0], ops_in[1]
    eps = ops_in[2] if eps is not None else torch.randn_like(mean)
    name = resolve(backend, "reparameterize", mean.device)
    if name != "reference":
        return ops.reparameterize(mean, logvar, eps, backend=name)
    return ref.reparameterize(mean, logvar, eps)


def gaussian_mixture_logpdf(z, means, logvars, *, backend=None):
    """Log-density of each z_i under the equal-weight mixture of diagonal Gaussians:

        out_i = log (1/M) sum_j N(z_i; m_j, diag exp(lv_j))

    (the aggregate posterior of a VAE when the components are the encoder's outputs), a logsumexp
    over j. z: (N, d); means, logvars: (M, d). Returns (N,); NaN in a row whose z holds a NaN or
    an Inf, and everywhere when the components do. The fused backends tile the N x M scores and
    never store them."""
    for n, t in (("z", z), ("means", means), ("logvars", logvars)):
        check.tensor(t, n)
        if t.dim() != 2:
            raise ValueError(f"{n} must have shape ({'N' if n == 'z' else 'M'}, d), got {tuple(t.shape)}")
        if t.shape[0] == 0:
            raise ValueError(f"{n} is empty")
    check.same_kind(z=z, means=means, logvars=logvars)
    if means.shape != logvars.shape:
        raise ValueError(f"means {tuple(means.shape)} and logvars {tuple(logvars.shape)} must have one shape")
    if z.shape[1] != means.shape[1]:
        raise ValueError(f"trailing dims differ: z has d = {z.shape[1]}, means has d = {means.shape[1]}")
    name = resolve(backend, "gaussian_mixture_logpdf", z.device)
    out = pairwise_ops.mixture_logpdf(z, means, logvars, name)
    if name != "reference":  # the fused ops apply the NaN rule in their own pass over the inputs
        return out
    out = check.nan_where_nonfinite_rows(out, z)
    return check.nan_unless_finite(out, means, logvars)
