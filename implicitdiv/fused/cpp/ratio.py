"""Fused ratio-loss terms on CPU tensors through implicitdiv._C.RatioLossConfig.

Kernel-module protocol (shared with implicitdiv.fused.triton.ratio):

  ratio_forward(xs, terms, n_out, reduce, mean, want) -> (outs, derivs)

xs are contiguous tensors of one dtype (any shape: a term reads its input's numel elements); each
term is an implicitdiv.ops.ratio_terms.Term (input, map, sign, offset, out) and stands for
scale * (f_map(x) + offset) over the elements of xs[input], scale = sign / xs[input].numel() when
mean, else sign. With reduce, outs are n_out 0-dim tensors,
out_o = sum over the terms t -> o of scale_t * sum_i (f_t(x_i) + offset_t), summed in
float64; without, outs holds one tensor per term, scale_t * (f_t(x) + offset_t). derivs holds per term
scale_t * f_t'(x) where want[t], else None. A NaN or +-inf logit gives a NaN term value (so a NaN
sum), the public functions' NaN rule.
"""
from __future__ import annotations

import functools

import torch

from ... import _C
from ..._codes import RATIO_MAPS
from .buffers import SUPPORTED, prepare, scale_shift_  # noqa: F401 (protocol)

MAP_IDS = {name: i for i, name in enumerate(RATIO_MAPS)}


@functools.lru_cache(maxsize=512)
def _config(terms, numels, n_out, mean, isa) -> _C.RatioLossConfig:
    """The C++ side of a loss configuration, made once per instruction set (implicitdiv._C.use_isa)."""
    scales = [t.sign / numels[t.input] if mean else t.sign for t in terms]
    return _C.RatioLossConfig(list(numels), [t.input for t in terms], [MAP_IDS[t.map] for t in terms],
                            [float(t.offset) for t in terms], scales, [t.out for t in terms], n_out)


def ratio_forward(xs, terms, n_out, reduce, mean, want):
    for x in xs:
        if not (x.is_cpu and x.dtype in SUPPORTED and x.is_contiguous()):
            prepare(x)  # raises the backend's error
    n_out = n_out if reduce else 0
    config = _config(terms, tuple([x.numel() for x in xs]), n_out, mean, _C.ISA)
    values = [None] * len(terms) if reduce else [torch.empty_like(xs[t.input]) for t in terms]
    derivs = [torch.empty_like(xs[t.input]) if w else None for t, w in zip(terms, want)]
    outs = [xs[0].new_empty(()) for _ in range(n_out)]
    config.run([x.data_ptr() for x in xs] + [0 if v is None else v.data_ptr() for v in values]
             + [0 if d is None else d.data_ptr() for d in derivs] + [o.data_ptr() for o in outs],
             torch.get_num_threads(), xs[0].dtype == torch.float64)
    return (outs if reduce else values), derivs
