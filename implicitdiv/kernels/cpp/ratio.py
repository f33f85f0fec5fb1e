"""Fused ratio-loss terms on CPU tensors through implicitdiv._C.ratio_terms.

Kernel-module protocol (shared with implicitdiv.kernels.triton.ratio):

  ratio_forward(xs, terms, n_out, reduce, mean, want) -> (outs, derivs)

xs are 1-D contiguous tensors of one dtype; each term is (input, map, sign, offset, out) and stands
for scale * (f_map(x) + offset) over the elements of xs[input], scale = sign / xs[input].numel()
when mean, else sign. With reduce, outs are n_out 0-dim
tensors, out_o = sum over the terms t -> o of scale_t * sum_i (f_t(x_i) + offset_t), summed in
float64; without, outs holds one tensor per term, scale_t * (f_t(x) + offset_t). derivs holds per term
scale_t * f_t'(x) where want[t], else None.
"""
from __future__ import annotations

import torch

from ... import _C
from .buffers import prepare

MAP_IDS = {name: i for i, name in enumerate(_C.ratio_map_names())}


def ratio_forward(xs, terms, n_out, reduce, mean, want):
    xs = [prepare(x) for x in xs]
    scales = [t[2] / xs[t[0]].numel() if mean else t[2] for t in terms]
    values = [None if reduce else torch.empty_like(xs[t[0]]) for t in terms]
    derivs = [torch.empty_like(xs[t[0]]) if w else None for t, w in zip(terms, want)]
    totals = [0.0] * n_out
    threads = torch.get_num_threads()
    for i, x in enumerate(xs):
        mine = [k for k, t in enumerate(terms) if t[0] == i]
        if not mine:
            continue
        sums = _C.ratio_terms(
            x.data_ptr(), x.numel(),
            [MAP_IDS[terms[k][1]] for k in mine],
            [float(terms[k][3]) for k in mine],
            [scales[k] for k in mine],
            [scales[k] for k in mine],
            [0 if values[k] is None else values[k].data_ptr() for k in mine],
            [0 if derivs[k] is None else derivs[k].data_ptr() for k in mine],
            threads, x.dtype == torch.float64,
        )
        if reduce:
            for k, s in zip(mine, sums):
                totals[terms[k][4]] += scales[k] * s
    if reduce:
        dtype = xs[0].dtype
        return [torch.tensor(v, dtype=torch.float64).to(dtype) for v in totals], derivs
    return values, derivs
