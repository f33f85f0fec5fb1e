"""The kernel codes are written in each backend (reference KERNELS, the C++ adapter's KERNEL_CODES
and csrc/pairwise_maps.h, the Triton KIND_CODES): every one must give each kernel the same code,
its index in KERNELS."""
from __future__ import annotations

import pytest

import implicitdiv as idv
from implicitdiv.reference.kernels import DOT_KERNELS, KERNELS


def test_dot_kernels_are_kernels():
    assert set(DOT_KERNELS) <= set(KERNELS)


@pytest.mark.skipif("cpp" not in idv.backends(), reason="implicitdiv._C is not built")
def test_cpp_codes_follow_the_reference():
    from implicitdiv import _C
    from implicitdiv.kernels.cpp.pairwise import KERNEL_CODES

    assert list(_C.pairwise_kernel_names()) == list(KERNELS)
    assert KERNEL_CODES == {name: code for code, name in enumerate(KERNELS)}


def test_triton_codes_follow_the_reference():
    tiles = pytest.importorskip("implicitdiv.kernels.triton.pairwise_tiles", reason="triton is not installed")
    assert tiles.KIND_CODES == {name: code for code, name in enumerate(KERNELS)}
