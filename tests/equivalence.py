"""The suite's entry to implicitdiv.testing: check_equivalence(fn, tensors, backend=...) runs a public
function of implicitdiv on `backend` against itself on backend="reference", with the error model of
that function (implicitdiv.testing.error_scales) for its values and first gradients."""
from __future__ import annotations

import torch

from implicitdiv.testing import compare, error_scales
from implicitdiv.testing.compare import TOLERANCES, Mismatch, assert_close  # noqa: F401 (re-exported)

# How many harness runs each model (function family) has had in this process (tests/conftest.py logs them).
RUNS: dict[str, int] = {}


def check_equivalence(fn, tensors: dict, *, backend: str, dtype: torch.dtype, kwargs: dict | None = None,
                      grad_names: tuple[str, ...] = (), noncontiguous: bool = False, double_backward: bool = True,
                      seed: int = 0, model: str | None = None, reference_fn=None, roundoff: float | None = None,
                      factor: float = 1.0) -> float:
    """fn(**tensors, **kwargs, backend=backend) in dtype against reference_fn (default: fn itself
    with backend="reference") in float64. model: the public function whose error model applies
    (default fn's own name; None when fn is not one of implicitdiv's: TOLERANCES then)."""
    kwargs = kwargs or {}
    model = model if model is not None else getattr(fn, "__name__", None)
    magnitudes = None
    if model in error_scales.MODELS:
        magnitudes = error_scales.for_function(model, kwargs, dtype)
        if roundoff is None:
            roundoff = error_scales.compute_roundoff(model, backend, dtype, kwargs, grad=bool(grad_names))
        RUNS[model] = RUNS.get(model, 0) + 1
    reference_fn = reference_fn or fn
    return compare.check_equivalence(lambda **a: fn(**a, backend=backend), lambda **a: reference_fn(**a, backend="reference"),
                                     tensors, dtype=dtype, kwargs=kwargs, grad_names=grad_names,
                                     noncontiguous=noncontiguous, double_backward=double_backward, seed=seed,
                                     magnitudes=magnitudes, roundoff=roundoff, factor=factor)
