"""Equivalence testing of fast kernels against a float64 reference, as implicitdiv tests its own.

    check_equivalence(fast_fn, reference_fn, inputs, dtype=..., grad_names=..., magnitudes=...)
        values, gradients (the fast function's own backward) and double backward against the
        reference in float64 (implicitdiv.testing.compare)
    error_scales.for_function(name, kwargs, dtype)
        the magnitudes of implicitdiv's error model for any public function (rounding.py says how
        they bound the error)
    strategies
        hypothesis strategies that search values: samples with duplicates and near duplicates at
        scales 1e-3..1e3, weights, bandwidths, logits with extremes, Gaussian parameters
    blocks
        the block sizes of implicitdiv's kernels, and sizes across them

Needs hypothesis (for the strategies); not pytest.
"""
from . import blocks, error_scales, rounding, strategies
from .compare import TOLERANCES, Mismatch, assert_close, check_equivalence
from .rounding import bound, unit_roundoff

__all__ = ["TOLERANCES", "Mismatch", "assert_close", "blocks", "bound", "check_equivalence", "error_scales",
           "rounding", "strategies", "unit_roundoff"]
