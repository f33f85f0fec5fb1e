"""Fused Gaussian latent terms on CPU tensors through implicitdiv._C.gaussian_terms.

Kernel-module protocol (shared with implicitdiv.kernels.triton.gaussian):

  gaussian_forward(kind, xs, want, mean, per_row) -> (value, outs)

kind is one of KINDS; xs are (rows, d) tensors with unit column stride and any row stride (0 for an
input broadcast over rows). Every row's term values are summed over d. per_row: value is the (rows,)
tensor of row sums; else value is the 0-dim sum over rows (summed in float64), divided by rows when
mean. outs holds the kind's elementwise outputs as (rows, d) tensors where want[q], else None;
derivative outputs are divided by rows when mean. Outputs per kind:

  nll             d/dz, d/dmean, d/dlogvar        kl_std_normal   d/dmean, d/dlogvar
  kl_gaussians    d/dmean_q, d/dlogvar_q, d/dlogvar_p
  reparameterize  z, dz/dlogvar, dz/deps
"""
from __future__ import annotations

import torch

from ... import _C
from .buffers import SUPPORTED

KINDS = tuple(_C.gaussian_kind_names())


def gaussian_forward(kind, xs, want, mean, per_row):
    for x in xs:
        if x.device.type != "cpu" or x.dtype not in SUPPORTED or (x.shape[1] > 1 and x.stride(1) != 1):
            raise RuntimeError("gaussian_forward takes float32/float64 CPU (rows, d) tensors with unit column stride")
    rows, d = xs[0].shape
    scale = 1.0 / rows if mean else 1.0
    outs = [torch.empty((rows, d), dtype=xs[0].dtype) if w else None for w in want]
    value = torch.empty((rows,), dtype=xs[0].dtype) if per_row else None
    total = _C.gaussian_terms(
        KINDS.index(kind), rows, d,
        [x.data_ptr() for x in xs], [x.stride(0) for x in xs],
        [0 if o is None else o.data_ptr() for o in outs],
        scale, 0 if value is None else value.data_ptr(),
        torch.get_num_threads(), xs[0].dtype == torch.float64,
    )
    if not per_row:
        value = torch.tensor(total * scale, dtype=torch.float64).to(xs[0].dtype)
    return value, outs
