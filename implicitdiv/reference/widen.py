"""The references' float64 intermediates for narrower inputs."""
from __future__ import annotations

import torch


def wide(t: torch.Tensor) -> torch.Tensor:
    """t in float64 when it is float32 or narrower. Where a term's factors overflow float32 while the
    term, or its share of a mean, does not (e^a from a = 88.7 on in the ratio losses; (z - m)^2 e^-lv
    and its gradient's products in the Gaussian terms), the references form it in float64 and their
    callers round the result to the inputs' dtype."""
    return t.double() if t.dtype != torch.float64 else t
