"""A backward with create_graph=True gives the same first gradients as a plain one (the fused
backward's values; only their graph comes from the reference), and the reference's second
derivatives (both in float32 here; the harness holds them to the float64 reference)."""
from __future__ import annotations

import pytest
import torch

from .fused_calls import FUSED, fused_calls


def _upstreams(out, seed):
    """Random upstream gradients (not all ones, so the scaling by them is exercised)."""
    items = out if isinstance(out, tuple) else (out,)
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(o.shape, generator=gen, dtype=o.dtype) + 0.5 for o in items]


def _grads(fn, xs, create_graph):
    out = fn(*xs)
    items = out if isinstance(out, tuple) else (out,)
    return torch.autograd.grad(items, xs, _upstreams(out, 1), create_graph=create_graph, allow_unused=True)


def _leaves(xs, dtype):
    return [x.detach().to(dtype).requires_grad_() for x in xs]


@pytest.mark.parametrize("backend", FUSED)
def test_first_gradients_do_not_depend_on_create_graph(backend):
    for name, fn, xs in fused_calls(backend):
        leaves = _leaves(xs, torch.float32)
        plain = _grads(fn, leaves, False)
        graphed = _grads(fn, leaves, True)
        for k, (p, g) in enumerate(zip(plain, graphed)):
            assert (p is None) == (g is None), f"{name}: input {k}"
            if p is not None:
                assert torch.equal(p, g.detach()), f"{name}: input {k}: {(p - g).abs().max().item():.3g} apart"


@pytest.mark.parametrize("backend", FUSED)
def test_second_derivatives_are_the_references(backend):
    for (name, fn, xs), (_, ref_fn, _) in zip(fused_calls(backend), fused_calls("reference")):
        leaves, ref_leaves = _leaves(xs, torch.float32), _leaves(xs, torch.float32)
        first, ref_first = _grads(fn, leaves, True), _grads(ref_fn, ref_leaves, True)
        gen = torch.Generator().manual_seed(2)
        probes = [torch.randn(x.shape, generator=gen) for x in xs]
        kept = [k for k, (f, r) in enumerate(zip(first, ref_first)) if r is not None and r.requires_grad]
        if not kept:
            continue
        assert all(first[k] is not None and first[k].requires_grad for k in kept), name
        second = torch.autograd.grad(sum((first[k] * probes[k]).sum() for k in kept), leaves, allow_unused=True)
        ref_second = torch.autograd.grad(sum((ref_first[k] * probes[k]).sum() for k in kept), ref_leaves,
                                         allow_unused=True)
        for k, (s, r) in enumerate(zip(second, ref_second)):
            s = torch.zeros_like(leaves[k]) if s is None else s
            r = torch.zeros_like(ref_leaves[k]) if r is None else r
            torch.testing.assert_close(s, r, atol=1e-5 * max(1.0, r.abs().max().item()), rtol=1.3e-6,
                                       msg=lambda m: f"{name}: input {k}: {m}")
