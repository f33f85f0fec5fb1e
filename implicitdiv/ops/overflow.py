"""A fused backward scales derivatives that the forward saved in the input dtype by the upstream
gradient. Where that upstream is below 1 in magnitude (the number of a reduced loss, or an element of
a per-row or per-element one), a saved derivative may have overflowed (inf) although its product with
the upstream is finite: the term e^(v - 1) / n of a mean at v a little above 88.7 in float32,
(z - m)^2 e^-lv / 2 at lv = -80 and z - m = 150 with reduction="none". Such a backward is redone
through the reference (which forms those products in float64). A reduced loss's backward with an
upstream of 1 (loss.backward()) or more never needs the check."""
from __future__ import annotations

import torch


def small_upstream(grads) -> bool:
    """Whether some upstream gradient is a CPU tensor with an element below 1 in magnitude, outside
    torch.compile (on a GPU reading it would synchronize every backward, and a traced graph cannot
    branch on it: there the edge stays)."""
    return not torch.compiler.is_compiling() and any(
        isinstance(g, torch.Tensor) and g.device.type == "cpu" and bool((g.abs() < 1).any()) for g in grads)


def overflowed(found) -> bool:
    return any(t is not None and bool(torch.isinf(t).any()) for t in found)
