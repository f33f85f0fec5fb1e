"""torch.library.opcheck on every custom op of implicitdiv.ops, for every backend whose kernel module
implements it (C++; Triton under the interpreter): schema, fake (meta) function, autograd
registration and AOT dispatch with dynamic shapes."""
from __future__ import annotations

import pytest
import torch

import implicitdiv as idv
from implicitdiv.fused import load
from implicitdiv.ops import gaussian, pairwise, ratio
from implicitdiv.ops.library import FusedOp

BACKENDS = [b for b in ("cpp", "triton") if b in idv.backends()]


def _registered() -> dict[str, FusedOp]:
    found = {}
    for module in (pairwise, ratio, gaussian):
        for value in vars(module).values():
            if isinstance(value, FusedOp):
                found[value.name.split("::")[1]] = value
    return found


def _t(*shape, seed=0, dtype=torch.float64):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed + sum(shape)), dtype=dtype)


def _cases(backend):
    """op name -> (the kernel module's function it runs, its arguments)."""
    x, y, a, b = _t(2, 9, 3), _t(2, 7, 3, seed=1), _t(2, 9, 2, seed=2), _t(2, 7, 2, seed=3)
    a1, b1, g = _t(2, 9, 1, seed=4), _t(2, 7, 1, seed=5), _t(2, 2, seed=6)
    bw = [0.7, 1.9]
    z, means, logvars = _t(8, 3, seed=7), _t(5, 3, seed=8), 0.3 * _t(5, 3, seed=9)
    out = pairwise._mixture_logpdf_op.impl(z, means, logvars, backend)
    logits = [_t(11, seed=10), _t(6, seed=11)]
    latent = [_t(4, 5, seed=12), _t(4, 5, seed=13), _t(4, 5, seed=14)]
    return {
        "kernel_sum": ("kernel_sum_forward", (x, y, a, b, "rbf", bw, backend, "ieee")),
        "kernel_sum_backward": ("kernel_sum_backward", (g, x, y, a, b, "laplacian", bw, backend, "ieee", [True] * 4)),
        "kernel_sum_fused": ("kernel_sum_fused", (x, y, a1, b1, "imq", bw, backend, [True, False, True, True])),
        "kernel_sum_sym": ("kernel_sum_sym_forward", (x, a, "energy", bw, True, backend, "ieee")),
        "kernel_sum_sym_backward": ("kernel_sum_sym_backward", (g, x, a, "rbf", bw, False, backend, "ieee", [True, True])),
        "kernel_sum_sym_fused": ("kernel_sum_sym_fused", (x, a1, "linear", bw, True, backend, [True, True])),
        "mmd2": ("mmd2_forward", (x, y, "rbf", bw, True, backend, "ieee")),
        "mmd2_backward": ("mmd2_backward", (g[:, 0].contiguous(), x, y, "laplacian", bw, False, backend, "ieee",
                                            [True, True])),
        "mmd2_fused": ("mmd2_fused", (x, y, "imq", bw, True, backend, [True, False])),
        "mixture_logpdf": ("mixture_logpdf_forward", (z, means, logvars, backend)),
        "mixture_logpdf_backward": ("mixture_logpdf_backward", (_t(8, seed=15), z, means, logvars, out, backend,
                                                                [True, True, True])),
        "ratio_losses": ("ratio_forward", (logits, [0, 1, 1], "softplus_neg,softplus,tanh", [1.0, 1.0, -0.5],
                                           [0.0, -0.69, 0.0], [0, 0, 1], 2, True, True, [True, True, False], backend)),
        "gaussian_terms": ("gaussian_forward", (latent, "nll", [True, False, True], True, False, backend)),
    }


OPS = ("kernel_sum", "kernel_sum_backward", "kernel_sum_fused", "kernel_sum_sym", "kernel_sum_sym_backward",
       "kernel_sum_sym_fused", "mmd2", "mmd2_backward", "mmd2_fused", "mixture_logpdf", "mixture_logpdf_backward",
       "ratio_losses", "gaussian_terms")


@pytest.mark.skipif(not BACKENDS, reason="no fused backend here")
def test_every_registered_op_has_a_case():
    assert set(_registered()) == set(OPS) == set(_cases(BACKENDS[0]))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", OPS)
def test_opcheck(backend, name):
    op = _registered()[name]
    function, args = _cases(backend)[name]
    family = {"ratio_losses": "ratio", "gaussian_terms": "gaussian"}.get(name, "pairwise")
    if not hasattr(load(backend, family), function):
        pytest.skip(f"the {backend} kernels have no {function}")
    torch.library.opcheck(op.op, args)
