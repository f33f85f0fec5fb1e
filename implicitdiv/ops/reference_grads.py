"""Gradients through the differentiable reference: what every fast op's backward falls back to when
it must itself be differentiable (create_graph=True), or when its saved derivatives are spent."""
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
