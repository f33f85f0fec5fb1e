"""Hypothesis strategies that draw whole calls of implicitdiv's public functions for the equivalence
harness, from the value-searching strategies of implicitdiv.testing and the block sizes of each
backend's kernels (implicitdiv.testing.blocks).

A `Call` holds the float64 input values, the non-tensor keyword arguments, which inputs get
gradients, the dtype and whether to pass strided views; `call.run(check, fn, backend)` runs the
harness on it with the error model of the function (implicitdiv.testing.error_scales).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from hypothesis import strategies as st

from implicitdiv.reference.kernels import KERNELS
from implicitdiv.reference.ratio import FDIVERGENCES, KINDS
from implicitdiv.testing import blocks
from implicitdiv.testing import strategies as ids

# B * N * M * d of a pairwise call: the float64 reference and the error model hold a few such tensors.
PAIR_BUDGET = 600_000
# N * M of a pairwise call (the Triton interpreter walks every tile pair in Python).
PAIRS = {"cpp": 120_000, "triton": 6_000, "reference": 60_000}
MAX_D = 300
# Feature dims next to the engines' feature chunks: the C++ narrow/wide contraction at 8, Triton's
# 16-wide dot-product chunks and output-feature blocks.
FEATURE_EDGES = (1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 48, 49, 64, 65, 129, 300)
ELEMENT_BUDGET = {"cpp": 3_000_000, "triton": 200_000, "reference": 200_000}
HALF = (torch.float16, torch.bfloat16)
ALL_DTYPES = (torch.float32, torch.float64, torch.float16, torch.bfloat16)


@dataclass
class Call:
    function: str  # the name of the public function (its error model)
    tensors: dict
    kwargs: dict
    grad_names: tuple
    dtype: torch.dtype
    noncontiguous: bool
    seed: int

    def run(self, check, fn, backend, **extra):
        check(fn, self.tensors, backend=backend, dtype=self.dtype, kwargs=self.kwargs, grad_names=self.grad_names,
              noncontiguous=self.noncontiguous, seed=self.seed, model=self.function, **extra)


def pair_edges(backend: str) -> list[int]:
    if backend == "triton":
        return [s for s in blocks.pairwise_rows() if s <= 3 * blocks.TRITON["pair_tile"] + 1]
    return blocks.pairwise_rows() + blocks.pairwise_long()


def _row_counts(draw, backend: str, batch: int, low: int = 1):
    """(n, m) next to the backend's tile boundaries, within PAIRS and PAIR_BUDGET."""
    edges = pair_edges(backend)
    limit = PAIRS.get(backend, PAIRS["reference"]) // batch
    n = draw(ids.sizes(edges, low, 70))
    m = draw(ids.sizes([e for e in edges if e * n <= limit], low, max(low, min(70, limit // n))))
    return n, m


def _feature_dim(draw, rows: int) -> int:
    top = max(1, min(MAX_D, PAIR_BUDGET // max(1, rows)))
    return draw(ids.sizes([e for e in FEATURE_EDGES if e <= top], 1, min(top, 40)))


def dtypes(allowed=ALL_DTYPES):
    return st.sampled_from(allowed)


# A fixed polynomial kernel for the tests that call the engine with a parameter tuple directly.
POLYNOMIAL = {"degree": 3, "gamma": 0.3, "coef0": 0.5}
POLYNOMIAL_PARAMS = (0.3, 0.5, 3.0)  # (gamma, coef0, degree), implicitdiv.reference.kernels


def fixed_kernel(kernel, bandwidths):
    """(public keyword arguments, the engine's parameter tuple) of a kernel with these bandwidths
    (the fixed POLYNOMIAL for the polynomial kernel)."""
    if kernel == "polynomial":
        return {"kernel": kernel, **POLYNOMIAL}, POLYNOMIAL_PARAMS
    return {"kernel": kernel, "bandwidth": bandwidths}, tuple(bandwidths)


@st.composite
def kernel_kwargs(draw, kernel: str, x, y):
    """kernel and a bandwidth at the data's scale; for "polynomial", degree 1-4, coef0 in [-1, 1] and
    gamma None (1/d) or a drawn fraction of 1 / (the rows' mean squared norm), so that gamma x.y is
    of order 1 at any scale or offset of the points."""
    kwargs = {"kernel": kernel, "bandwidth": draw(ids.bandwidths(ids.typical_distance(x, y)))}
    if kernel == "polynomial":
        rows = torch.cat([x.reshape(-1, x.shape[-1]), y.reshape(-1, y.shape[-1])])
        size = float((rows * rows).sum(-1).mean().clamp(min=1e-300))
        gamma = draw(st.one_of(st.none(), st.floats(0.2, 1.0).map(lambda f: f / size)))
        kwargs.update(degree=draw(st.integers(1, 4)), gamma=gamma, coef0=draw(st.floats(-1.0, 1.0)))
    return kwargs


@st.composite
def kernel_sum_calls(draw, backend: str = "cpp", kernels=KERNELS, dtypes_=ALL_DTYPES, sym: bool = False):
    """Calls of kernel_sum(x, y, ...), or with sym of kernel_sum(x, x, x_weights=w, y_weights=w)
    (model "kernel_sum_sym", inputs x and x_weights)."""
    batch = draw(st.sampled_from([None, 1, 3]))
    b = batch or 1
    n, m = _row_counts(draw, backend, b)
    if sym:
        m = n
    d = _feature_dim(draw, b * n * m)
    x, y = draw(ids.samples(n, m, d, batch))
    lead = () if batch is None else (batch,)
    p = draw(st.sampled_from([None, 1, 2, 3, 5, 17]))
    cols = () if p is None else (p,)
    tensors = {"x": x} if sym else {"x": x, "y": y}
    if sym:
        if draw(st.booleans()):
            tensors["x_weights"] = draw(ids.weights(lead + (n,) + cols))
    else:
        for name, rows in (("x_weights", n), ("y_weights", m)):
            if draw(st.booleans()):
                tensors[name] = draw(ids.weights(lead + (rows,) + cols))
    kwargs = draw(kernel_kwargs(draw(st.sampled_from(kernels)), x, x if sym else y))
    return Call("kernel_sum_sym" if sym else "kernel_sum", tensors, kwargs, tuple(tensors), draw(dtypes(dtypes_)),
                draw(st.booleans()), draw(st.integers(0, 2**31 - 1)))


@st.composite
def mmd2_calls(draw, backend: str = "cpp", kernels=KERNELS, estimators=("biased", "unbiased", "linear"),
               dtypes_=ALL_DTYPES):
    estimator = draw(st.sampled_from(estimators))
    batch = draw(st.sampled_from([None, 2]))
    n, m = _row_counts(draw, backend, (batch or 1) * 4, low=1 if estimator == "biased" else 2)
    d = _feature_dim(draw, (batch or 1) * (n + m) ** 2)
    x, y = draw(ids.samples(n, m, d, batch))
    kwargs = {**draw(kernel_kwargs(draw(st.sampled_from(kernels)), x, y)), "estimator": estimator}
    return Call("mmd2", {"x": x, "y": y}, kwargs, ("x", "y"), draw(dtypes(dtypes_)), draw(st.booleans()),
                draw(st.integers(0, 2**31 - 1)))


@st.composite
def mixture_calls(draw, backend: str = "cpp", dtypes_=ALL_DTYPES):
    n, m = _row_counts(draw, backend, 1)
    d = _feature_dim(draw, n * m)
    z, means = draw(ids.samples(n, m, d))
    level = draw(st.floats(-4.0, 4.0))
    spread = torch.rand(m, d, generator=torch.Generator().manual_seed(draw(st.integers(0, 2**31 - 1))),
                        dtype=torch.float64)
    scale = ids.typical_distance(z, means) ** 2 / max(d, 1)
    logvars = level + torch.log(torch.tensor(scale)) + 2.0 * (spread - 0.5)
    tensors = {"z": z, "means": means, "logvars": logvars}
    return Call("gaussian_mixture_logpdf", tensors, {}, tuple(tensors), draw(dtypes(dtypes_)), draw(st.booleans()),
                draw(st.integers(0, 2**31 - 1)))


def element_sizes(backend: str):
    budget = ELEMENT_BUDGET.get(backend, ELEMENT_BUDGET["reference"])
    edges = [s for s in blocks.elementwise_sizes() if s <= budget]
    if backend == "cpp":
        edges.append(blocks.huge_elementwise())
    return ids.sizes(edges, 1, 300)


@st.composite
def ratio_calls(draw, function: str, backend: str = "cpp", kinds=KINDS, dtypes_=ALL_DTYPES):
    """Calls of discriminator_loss, generator_loss, adversarial_losses, fdiv_estimate or
    ratio_matching_loss, sizes across the blocks of `backend`'s reduction."""
    n, m = draw(element_sizes(backend)), draw(element_sizes(backend))
    kwargs: dict = {}
    if function == "fdiv_estimate":
        kwargs["divergence"] = draw(st.sampled_from([k for k in kinds if k in FDIVERGENCES]))
    elif function != "ratio_matching_loss":
        kwargs["kind"] = draw(st.sampled_from(kinds))
    if function in ("discriminator_loss", "generator_loss"):
        kwargs["reduction"] = draw(st.sampled_from(["mean", "sum", "none"]))
    if function in ("generator_loss", "adversarial_losses"):
        kwargs["saturating"] = draw(st.booleans())

    def shape(k):
        return (2, (k + 1) // 2) if k > 1 and draw(st.booleans()) else (k,)

    if function == "generator_loss":
        tensors = {"fake": draw(ids.logits(shape(n)))}
    elif function == "ratio_matching_loss":
        tensors = {"r_p": draw(ids.logits(shape(n))).abs(), "r_q": draw(ids.logits(shape(m))).abs()}
    else:
        tensors = {"real": draw(ids.logits(shape(n))), "fake": draw(ids.logits(shape(m)))}
    return Call(function, tensors, kwargs, tuple(tensors), draw(dtypes(dtypes_)), draw(st.booleans()),
                draw(st.integers(0, 2**31 - 1)))


GAUSSIAN_NAMES = {
    "gaussian_nll": ("z", "mean", "logvar"),
    "kl_std_normal": ("mean", "logvar"),
    "kl_gaussians": ("mean_q", "logvar_q", "mean_p", "logvar_p"),
    "reparameterize": ("mean", "logvar", "eps"),
}


@st.composite
def gaussian_calls(draw, function: str, backend: str = "cpp", extreme_ok: bool = True, dtypes_=ALL_DTYPES):
    """Calls of gaussian_nll, kl_std_normal, kl_gaussians or reparameterize, shapes (rows, d),
    (2, rows, d) or (d,), some inputs broadcast over the rows, sizes across the kernels' programs and
    column blocks."""
    budget = ELEMENT_BUDGET.get(backend, ELEMENT_BUDGET["reference"])
    d = draw(ids.sizes([e for e in blocks.gaussian_dims() if e <= budget], 1, 40))
    rows = draw(ids.sizes([r for r in blocks.gaussian_rows(d) if r * d <= budget], 1, max(1, min(70, budget // d))))
    lead = draw(st.sampled_from([(), (rows,), (2, (rows + 1) // 2)]))
    shape = lead + (d,)
    names = GAUSSIAN_NAMES[function]
    tensors = {}
    for name in names:
        own = shape if not lead or draw(st.integers(0, 3)) else (d,)  # now and then a prior shared by the rows
        values, logvars = draw(ids.gaussian_params(own, extreme=extreme_ok))
        tensors[name] = logvars if name.startswith("logvar") else values
    if all(tuple(t.shape) != shape for t in tensors.values()):
        tensors[names[0]] = draw(ids.gaussian_params(shape, extreme=extreme_ok))[0]
    kwargs = {} if function == "reparameterize" else {"reduction": draw(st.sampled_from(["mean", "sum", "none"]))}
    grad_names = tuple(n for n in names if n != "eps")
    return Call(function, tensors, kwargs, grad_names, draw(dtypes(dtypes_)), draw(st.booleans()),
                draw(st.integers(0, 2**31 - 1)))
