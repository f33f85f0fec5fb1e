"""Hypothesis strategies that draw whole calls of the public functions for the equivalence harness.

Each strategy draws a `Call`: the float64 input values, the non-tensor keyword arguments, which
inputs get gradients, the dtype, whether to pass non-contiguous views, and error scales for sums
whose rounding follows the size of their terms.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from hypothesis import strategies as st

from implicitdiv.reference.kernels import KERNELS
from implicitdiv.reference.ratio import FDIVERGENCES, KINDS

from .equivalence import bandwidth_specs, float_dtypes, sizes


@dataclass
class Call:
    tensors: dict
    kwargs: dict
    grad_names: tuple
    dtype: torch.dtype
    noncontiguous: bool
    seed: int
    scales: dict = field(default_factory=dict)

    def run(self, check, fn, backend, **extra):
        check(fn, self.tensors, backend=backend, dtype=self.dtype, kwargs=self.kwargs, grad_names=self.grad_names,
              noncontiguous=self.noncontiguous, seed=self.seed, scales=self.scales, **extra)


def _rng(draw):
    seed = draw(st.integers(0, 2**31 - 1))
    return np.random.default_rng(seed), seed


def _points(rng, shape, spread):
    return rng.standard_normal(shape) * spread


# A fixed polynomial kernel for the tests that call the engine with a parameter tuple directly.
POLYNOMIAL = {"degree": 3, "gamma": 0.3, "coef0": 0.5}
POLYNOMIAL_PARAMS = (0.3, 0.5, 3.0)  # (gamma, coef0, degree), implicitdiv.reference.kernels


def fixed_kernel(kernel, bandwidths):
    """(public keyword arguments, the engine's parameter tuple) of a kernel with these bandwidths
    (the fixed POLYNOMIAL for the polynomial kernel)."""
    if kernel == "polynomial":
        return {"kernel": kernel, **POLYNOMIAL}, POLYNOMIAL_PARAMS
    return {"kernel": kernel, "bandwidth": bandwidths}, tuple(bandwidths)


def _kernel_kwargs(draw, kernel):
    """kernel, a bandwidth spec and, for the polynomial kernel, its degree, gamma and coef0."""
    kwargs = {"kernel": kernel, "bandwidth": draw(bandwidth_specs())}
    if kernel == "polynomial":
        kwargs.update(degree=draw(st.integers(1, 4)), gamma=draw(st.one_of(st.none(), st.floats(0.2, 2.0))),
                      coef0=draw(st.floats(-1.0, 2.0)))
    return kwargs


def _kernel_bound(kwargs, x, y) -> float:
    """A bound on |k(x_i, y_j)| over the drawn points: the size of a sum's terms."""
    kernel, d = kwargs["kernel"], x.shape[-1]
    if kernel == "polynomial":
        gamma = 1.0 / d if kwargs["gamma"] is None else kwargs["gamma"]
        nx, ny = np.linalg.norm(x, axis=-1).max(), np.linalg.norm(y, axis=-1).max()
        return (gamma * nx * ny + abs(kwargs["coef0"])) ** kwargs["degree"]
    nb = len(np.atleast_1d(kwargs["bandwidth"]))
    return {"energy": 3.0 * (1 + 0.3 * np.sqrt(d)), "linear": 3.0 * d}.get(kernel, nb)


@st.composite
def kernel_sum_calls(draw, kernels=KERNELS, max_size=70, max_d=9, batch=True, weights=True):
    rng, seed = _rng(draw)
    kernel = draw(st.sampled_from(kernels))
    n, m, d = draw(sizes(max_size)), draw(sizes(max_size)), draw(st.integers(1, max_d))
    b = draw(st.sampled_from([None, 1, 3])) if batch else None
    lead = () if b is None else (b,)
    spread = 1.0 / np.sqrt(d)
    tensors = {"x": _points(rng, lead + (n, d), spread), "y": _points(rng, lead + (m, d), spread) + 0.3}
    p = draw(st.sampled_from([None, 1, 4, 5])) if weights else None
    for name, rows in (("x_weights", n), ("y_weights", m)):
        if weights and draw(st.booleans()):
            tensors[name] = rng.standard_normal(lead + (rows,) + (() if p is None else (p,)))
    kwargs = _kernel_kwargs(draw, kernel)
    grad_names = tuple(tensors)
    # the sum's rounding follows sum_ij |a_i| |k_ij| |b_j|, up to n*m*max|k| times the weights
    kmax = _kernel_bound(kwargs, tensors["x"], tensors["y"])
    wa = np.abs(tensors.get("x_weights", np.ones(1))).max()
    wb = np.abs(tensors.get("y_weights", np.ones(1))).max()
    scales = {"out0": n * m * kmax * wa * wb}
    return Call(tensors, kwargs, grad_names, draw(float_dtypes()), draw(st.booleans()), seed, scales)


@st.composite
def mmd2_calls(draw, kernels=KERNELS, estimators=("biased", "unbiased", "linear"), max_size=70, max_d=9):
    rng, seed = _rng(draw)
    estimator = draw(st.sampled_from(estimators))
    low = 1 if estimator == "biased" else 2
    n, m = draw(st.integers(low, max_size)), draw(st.integers(low, max_size))
    d = draw(st.integers(1, max_d))
    b = draw(st.sampled_from([None, 2]))
    lead = () if b is None else (b,)
    spread = 1.0 / np.sqrt(d)
    tensors = {"x": _points(rng, lead + (n, d), spread), "y": _points(rng, lead + (m, d), spread) + 0.2}
    kernel = draw(st.sampled_from(kernels))
    kwargs = {**_kernel_kwargs(draw, kernel), "estimator": estimator}
    kmax = _kernel_bound(kwargs, tensors["x"], tensors["y"])
    return Call(tensors, kwargs, ("x", "y"), draw(float_dtypes()), draw(st.booleans()), seed, {"out0": 4 * kmax})


@st.composite
def mixture_calls(draw, max_size=70, max_d=9):
    rng, seed = _rng(draw)
    n, m, d = draw(sizes(max_size)), draw(sizes(max_size)), draw(st.integers(1, max_d))
    tensors = {
        "z": rng.standard_normal((n, d)),
        "means": rng.standard_normal((m, d)),
        "logvars": rng.uniform(-2.0, 1.0, (m, d)),
    }
    return Call(tensors, {}, ("z", "means", "logvars"), draw(float_dtypes()), draw(st.booleans()), seed)


def _logits(rng, n, extreme):
    v = rng.standard_normal(n) * 3.0
    if extreme and n > 1:
        v[: max(1, n // 4)] = rng.choice([-1e4, 1e4, -80.0, 80.0], max(1, n // 4))
    return v


@st.composite
def ratio_calls(draw, function: str, kinds=KINDS, max_size=300, extreme_ok=True):
    """Calls of discriminator_loss, generator_loss, adversarial_losses, fdiv_estimate or
    ratio_matching_loss. Logits include +-1e4 when extreme_ok (for the kinds whose math stays finite)."""
    rng, seed = _rng(draw)
    n, m = draw(sizes(max_size)), draw(sizes(max_size))
    extreme = extreme_ok and draw(st.booleans())
    kwargs: dict = {}
    if function == "fdiv_estimate":
        kwargs["divergence"] = draw(st.sampled_from([k for k in kinds if k in FDIVERGENCES]))
    elif function != "ratio_matching_loss":
        kwargs["kind"] = draw(st.sampled_from(kinds))
    if function in ("discriminator_loss", "generator_loss"):
        kwargs["reduction"] = draw(st.sampled_from(["mean", "sum", "none"]))
    if function in ("generator_loss", "adversarial_losses"):
        kwargs["saturating"] = draw(st.booleans())
    if function == "generator_loss":
        tensors = {"fake": _logits(rng, n, extreme)}
    elif function == "ratio_matching_loss":
        tensors = {"r_p": np.abs(rng.standard_normal(n)), "r_q": np.abs(rng.standard_normal(m))}
    else:
        tensors = {"real": _logits(rng, n, extreme), "fake": _logits(rng, m, extreme)}
    return Call(tensors, kwargs, tuple(tensors), draw(float_dtypes()), draw(st.booleans()), seed)


@st.composite
def gaussian_calls(draw, function: str, max_rows=70, max_d=33, extreme_ok=True):
    """Calls of gaussian_nll, kl_std_normal, kl_gaussians or reparameterize; logvars include +-80
    when extreme_ok."""
    rng, seed = _rng(draw)
    rows, d = draw(sizes(max_rows)), draw(st.integers(1, max_d))
    lead = draw(st.sampled_from([(), (rows,), (2, rows)]))
    shape = lead + (d,)

    def logvar():
        lv = rng.uniform(-3.0, 2.0, shape)
        if extreme_ok and draw(st.booleans()):
            lv.reshape(-1)[:: max(1, lv.size // 3)] = rng.choice([-80.0, 80.0])
        return lv

    names = {
        "gaussian_nll": ("z", "mean", "logvar"),
        "kl_std_normal": ("mean", "logvar"),
        "kl_gaussians": ("mean_q", "logvar_q", "mean_p", "logvar_p"),
        "reparameterize": ("mean", "logvar", "eps"),
    }[function]
    tensors = {n: (logvar() if n.startswith("logvar") else rng.standard_normal(shape)) for n in names}
    kwargs = {} if function == "reparameterize" else {"reduction": draw(st.sampled_from(["mean", "sum", "none"]))}
    grad_names = tuple(n for n in names if n != "eps")
    return Call(tensors, kwargs, grad_names, draw(float_dtypes()), draw(st.booleans()), seed)
