"""Fused Gaussian latent terms on CPU tensors through implicitdiv._C.gaussian_terms.

Kernel-module protocol (shared with implicitdiv.fused.triton.gaussian):

  gaussian_forward(kind, xs, want, mean, per_row) -> (value, outs)

kind is one of GAUSSIAN_KINDS (implicitdiv._codes); xs share one shape (..., d) and are each contiguous, or all (rows, d) views with
unit column stride and any row stride (0 for an input broadcast over rows): implicitdiv.fused.layout.
Every row's term values are summed over d. per_row: value is the tensor of row sums, of shape
xs[0].shape[:-1]; else value is the 0-dim sum over rows (summed in float64), divided by rows when
mean. outs holds the kind's elementwise outputs, of xs[0]'s shape, where want[q], else None;
derivative outputs are divided by rows when mean. Outputs per kind:

  nll             d/dz, d/dmean, d/dlogvar        kl_std_normal   d/dmean, d/dlogvar
  kl_gaussians    d/dmean_q, d/dlogvar_q, d/dlogvar_p
  reparameterize  z, dz/dlogvar, dz/deps

For nll, kl_std_normal and kl_gaussians an element whose inputs hold a NaN or +-inf has a NaN
term (so its row sum and the total are NaN), the public functions' NaN rule.
"""
from __future__ import annotations

import torch

from ... import _C
from ..._codes import GAUSSIAN_KINDS
from ..layout import addressable, row_stride
from .buffers import SUPPORTED, scale_shift_  # noqa: F401 (protocol)


def gaussian_forward(kind, xs, want, mean, per_row):
    for x in xs:
        if not (x.is_cpu and x.dtype in SUPPORTED and addressable(x)):
            raise RuntimeError("gaussian_forward takes float32/float64 CPU tensors, contiguous or (rows, d) with unit "
                               "column stride")
    shape, dtype = xs[0].shape, xs[0].dtype
    d = shape[-1]
    rows = xs[0].numel() // d
    scale = 1.0 / rows if mean else 1.0
    outs = [torch.empty(shape, dtype=dtype) if w else None for w in want]
    value = torch.empty(shape[:-1], dtype=dtype) if per_row else None
    total = _C.gaussian_terms(
        GAUSSIAN_KINDS.index(kind), rows, d,
        [x.data_ptr() for x in xs], [row_stride(x) for x in xs],
        [0 if o is None else o.data_ptr() for o in outs],
        scale, 0 if value is None else value.data_ptr(),
        torch.get_num_threads(), dtype == torch.float64,
    )
    if not per_row:
        value = torch.tensor(total * scale, dtype=dtype)
    return value, outs
