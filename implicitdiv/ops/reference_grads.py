"""Gradients through the differentiable reference: what every fast op's backward falls back to when
it must itself be differentiable (create_graph=True), or when its saved derivatives are spent.

Under create_graph the first gradients keep the fast backward's values (with_values): the reference
only supplies their graph, so a first gradient is the same with and without create_graph, and only
the second derivatives come from the reference."""
from __future__ import annotations

import torch


def reference_grads(fn, args, xs, needs, grads):
    """Gradients of <fn(*args), grads> with respect to the xs that need them (None for the others),
    differentiable themselves when grad mode is on (create_graph)."""
    create_graph = torch.is_grad_enabled()
    with torch.enable_grad():
        found = fn(*args)
        found = list(found) if isinstance(found, tuple) else [found]
        wanted = [x for x, n in zip(xs, needs) if n]
        got = torch.autograd.grad(found, wanted, list(grads), create_graph=create_graph, allow_unused=True) if wanted else ()
    got = iter(got)
    return tuple(next(got) if n else None for n in needs)


class _ValuesOf(torch.autograd.Function):
    """forward(fast, slow) -> fast's values; backward hands the incoming gradient to slow, so the
    result differentiates as slow does."""

    @staticmethod
    def forward(ctx, fast, slow):
        return fast.clone()

    @staticmethod
    def backward(ctx, g):
        return None, g


def with_values(fast, slow):
    """Per gradient: fast's values (the fused backward's) with slow's graph (the reference's
    create_graph gradient); fast alone where slow is None or does not depend on anything."""
    return tuple(f if s is None or not s.requires_grad else _ValuesOf.apply(f, s) for f, s in zip(fast, slow))
