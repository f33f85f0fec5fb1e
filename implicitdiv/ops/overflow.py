"""A fused backward scales derivatives that the forward saved in the input dtype by the upstream
gradient. When that upstream is a number below 1 in magnitude, a saved derivative may have
overflowed (inf) although its product with the upstream is finite: the term e^(v - 1) / n of a mean
at v a little above 88.7 in float32, (z - m)^2 e^-lv / (2 rows) at lv = -80. Such a backward is redone
through the reference (which forms those products in float64). A reduced loss's backward with an
upstream of 1 (loss.backward()) or more never needs the check. Per-row and per-element upstreams
(reduction="none") are not checked: scanning them and the derivatives costs 2.6-8.4x a CPU
backward (gaussian_nll, 512 x 32 to 65536 x 64), so there a saved derivative beyond the dtype's max
stays inf even where its product with a small upstream would not be (the equivalence harness knows
this edge: implicitdiv.testing.loss_magnitudes names those saved derivatives, and compare accepts a
non-finite gradient only where one of them is past the max)."""
from __future__ import annotations

import torch


def small_upstream(grads) -> bool:
    """Whether some upstream gradient is a 0-dim CPU tensor below 1 in magnitude outside torch.compile
    (on a GPU reading it would synchronize every backward, and a traced graph cannot branch on it:
    there the edge stays)."""
    return not torch.compiler.is_compiling() and any(
        isinstance(g, torch.Tensor) and g.dim() == 0 and g.device.type == "cpu" and bool(g.abs() < 1) for g in grads)


def overflowed(found) -> bool:
    return any(t is not None and bool(torch.isinf(t).any()) for t in found)
