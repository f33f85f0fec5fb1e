"""precision= reaches the Triton kernels (their tensor-core mode) and nothing else."""
import pytest
import torch

import implicitdiv as idv
from implicitdiv.fused import load


def test_precision_is_validated():
    x = torch.randn(4, 2)
    for call in (lambda: idv.mmd2(x, x, precision="fp8"), lambda: idv.kernel_sum(x, x, precision=""),
                 lambda: idv.mmd_test(x, x + 1, precision="tf64")):
        with pytest.raises(ValueError, match="precision must be one of"):
            call()


@pytest.mark.skipif("triton" not in idv.backends("mmd2"), reason="needs triton (CUDA or TRITON_INTERPRET=1)")
def test_tf32_reaches_the_triton_kernels(monkeypatch):
    kernels = load("triton", "pairwise")
    seen = []
    names = ("kernel_sum_forward", "kernel_sum_sym_forward", "kernel_sum_backward", "kernel_sum_sym_backward",
             "mmd2_forward", "mmd2_backward")
    for name in names:
        original = getattr(kernels, name)

        def spy(*args, _original=original, _name=name, **kw):
            seen.append((_name, kw.get("precision")))
            return _original(*args, **kw)

        monkeypatch.setattr(kernels, name, spy)
    x = torch.randn(9, 3, requires_grad=True)
    y = torch.randn(7, 3, requires_grad=True)
    out = idv.mmd2(x, y, backend="triton", precision="tf32")
    out.backward()
    idv.kernel_sum(x, y, backend="triton", precision="tf32").backward()
    idv.kernel_sum(x, x, backend="triton", precision="tf32").backward()
    assert {p for _, p in seen} == {"tf32"}
    assert {n for n, _ in seen} == set(names)
    # the interpreter has no tensor cores: tf32 computes as exact float32 there
    ieee = idv.mmd2(x.detach(), y.detach(), backend="triton")
    torch.testing.assert_close(out.detach(), ieee, rtol=1e-6, atol=1e-7)


def test_the_cpp_engine_ignores_precision():
    if "cpp" not in idv.backends("mmd2"):
        pytest.skip("the C++ extension is not built")
    x, y = torch.randn(9, 3), torch.randn(7, 3)
    assert torch.equal(idv.mmd2(x, y, backend="cpp", precision="tf32"), idv.mmd2(x, y, backend="cpp"))
