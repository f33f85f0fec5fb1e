"""The codes of kernels, ratio maps and Gaussian kinds are the indices of their names in
implicitdiv._codes, which the Python side reads; csrc/ writes the names once more (C++ cannot import
them), so every instruction-set module that runs here must name the same codes in the same order."""
from __future__ import annotations

import importlib

import pytest

import implicitdiv as idv
from implicitdiv._codes import DOT_KERNELS, GAUSSIAN_KINDS, KERNELS, RATIO_MAPS


def _isa_modules():
    if "cpp" not in idv.backends():
        return []
    from implicitdiv import _C

    return [importlib.import_module(f"implicitdiv._C_{isa}") for isa in _C.runnable()]


def test_dot_kernels_are_kernels():
    assert set(DOT_KERNELS) <= set(KERNELS)


@pytest.mark.skipif("cpp" not in idv.backends(), reason="implicitdiv._C is not built")
@pytest.mark.parametrize("module", _isa_modules(), ids=lambda m: m.__name__)
def test_cpp_names_the_codes_in_order(module):
    assert tuple(module.pairwise_kernel_names()) == KERNELS
    assert tuple(module.ratio_map_names()) == RATIO_MAPS
    assert tuple(module.gaussian_kind_names()) == GAUSSIAN_KINDS
    assert tuple(module.pairwise_dot_kernel_names()) == DOT_KERNELS

