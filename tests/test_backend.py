"""Backend selection: backends(), use_backend as setter and context manager, per-call backend=,
and "auto" falling back to the reference with one warning."""
import warnings

import pytest
import torch

import implicitdiv as idv
from implicitdiv import backend as backend_mod
from implicitdiv.reference.kernels import kernel_matrix


def test_backends_lists_reference_first_and_cpp_when_built():
    found = idv.backends()
    assert found[0] == "reference"
    assert "cpp" in found  # make test builds the extension


def test_backends_of_a_function_lists_only_those_with_a_fused_op():
    assert idv.backends("median_bandwidth") == ("reference",)
    assert "cpp" in idv.backends("mmd2")
    assert set(idv.backends("mmd2")) <= set(idv.backends())


def test_use_backend_is_a_setter_and_a_context_manager():
    before = backend_mod.current_backend()
    with idv.use_backend("reference"):
        assert backend_mod.current_backend() == "reference"
        with idv.use_backend("auto"):
            assert backend_mod.current_backend() == "auto"
        assert backend_mod.current_backend() == "reference"
    assert backend_mod.current_backend() == before
    idv.use_backend("reference")
    try:
        assert backend_mod.current_backend() == "reference"
    finally:
        idv.use_backend(before)


def test_explicit_backend_that_cannot_run_raises():
    x = torch.randn(4, 2)
    with pytest.raises(RuntimeError, match="backend='cpp' needs CPU tensors"):
        backend_mod.resolve("cpp", "mmd2", torch.device("cuda"))
    with pytest.raises(NotImplementedError, match="no fused"):
        backend_mod.resolve("cpp", "median_bandwidth", x.device)


def test_auto_falls_back_to_the_reference_with_one_warning(monkeypatch):
    monkeypatch.setattr(backend_mod, "_warned", set())
    device = torch.device("cpu")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert backend_mod.resolve("auto", "no_such_function", device) == "reference"
        assert backend_mod.resolve("auto", "no_such_function", device) == "reference"
    assert len([w for w in caught if "no fused no_such_function" in str(w.message)]) == 1


def test_per_call_backend_overrides_the_default():
    x, y = torch.randn(8, 2, dtype=torch.float64), torch.randn(7, 2, dtype=torch.float64)
    with idv.use_backend("auto"):
        a = idv.mmd2(x, y, backend="reference")
    with idv.use_backend("reference"):
        b = idv.mmd2(x, y)
    assert torch.equal(a, b)


def test_the_extension_computes_a_kernel_sum():
    """_C's pairwise_sum_forward, through the cpp adapter, on contiguous and strided points."""
    from implicitdiv.fused.cpp.pairwise import kernel_sum_forward

    for dtype in (torch.float32, torch.float64):
        x, y = torch.randn(1, 9, 5, dtype=dtype), torch.randn(1, 4, 5, dtype=dtype)
        a, b = torch.randn(1, 9, 2, dtype=dtype), torch.randn(1, 4, 2, dtype=dtype)
        wide = torch.randn(1, 9, 10, dtype=dtype)
        for points in (x, wide[:, :, ::2]):
            want = torch.einsum("bip,bij,bjp->bp", a, kernel_matrix(points, y, "rbf", (1.5,)), b)
            torch.testing.assert_close(kernel_sum_forward(points, y, a, b, "rbf", (1.5,)), want)
