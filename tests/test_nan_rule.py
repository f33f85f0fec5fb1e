"""The NaN rule applied by the fused kernels themselves: a NaN or an Inf in a batch element's points
or weights gives NaN for that element and leaves the others exact; a NaN or Inf logit or Gaussian
input gives a NaN term. Called through the op entry points and the kernel modules, not the public
functions (which apply the rule themselves only on the reference backend)."""
from __future__ import annotations

import pytest
import torch

import implicitdiv as idv
from implicitdiv.fused import load
from implicitdiv.ops import gaussian as gaussian_ops
from implicitdiv.ops import pairwise as pairwise_ops
from implicitdiv.ops import ratio as ratio_ops
from implicitdiv.ops import ratio_terms
from implicitdiv.reference import pairwise as ref
from implicitdiv.reference.kernels import KERNELS

from .cases import fixed_kernel

BACKENDS = [b for b in ("cpp", "triton") if b in idv.backends()]
BAD = [float("nan"), float("inf"), -float("inf")]


def _points(seed=0):
    g = torch.Generator().manual_seed(seed)
    x, y = torch.randn(3, 20, 4, generator=g, dtype=torch.float64), torch.randn(3, 17, 4, generator=g, dtype=torch.float64)
    a, b = torch.randn(3, 20, 2, generator=g, dtype=torch.float64), torch.randn(3, 17, 2, generator=g, dtype=torch.float64)
    return x, y, a, b


def _expect(out, want, bad_batches):
    for i in range(out.shape[0]):
        if i in bad_batches:
            assert torch.isnan(out[i]).all(), f"batch element {i} holds a non-finite input but is {out[i]}"
        else:
            torch.testing.assert_close(out[i], want[i], rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("bad", BAD)
def test_kernel_sums_nan_per_batch_element(backend, kernel, bad):
    x, y, a, b = _points()
    x[1, 3, 2] = bad  # a point of batch element 1
    b[2, 16, 1] = bad  # a weight of batch element 2
    kernels = load(backend, "pairwise")
    bw = fixed_kernel(kernel, (0.8, 2.0))[1]  # the polynomial's (gamma, coef0, degree)
    want = ref.kernel_sum(x.nan_to_num(0, 0, 0), y, a, b.nan_to_num(0, 0, 0), kernel, bw)
    _expect(kernels.kernel_sum_forward(x, y, a, b, kernel, bw), want, {1, 2})
    _expect(pairwise_ops.kernel_sum(x, y, a, b, kernel, bw, backend), want, {1, 2})
    a_bad = a.clone()
    a_bad[0, 0, 0] = bad
    sym_want = ref.kernel_sum_sym(x.nan_to_num(0, 0, 0), a, kernel, bw, True)
    _expect(kernels.kernel_sum_sym_forward(x, a_bad, kernel, bw, True), sym_want, {0, 1})
    for unbiased in (False, True):
        mmd_want = ref.mmd2(x.nan_to_num(0, 0, 0), y, kernel, bw, "unbiased" if unbiased else "biased")
        _expect(kernels.mmd2_forward(x, y, kernel, bw, unbiased), mmd_want, {1})


@pytest.mark.parametrize("backend", [b for b in BACKENDS if hasattr(load(b, "pairwise"), "kernel_sum_fused")])
@pytest.mark.parametrize("bad", BAD)
def test_training_pass_nan_per_batch_element(backend, bad):
    """The value of the training pass (forward with gradients) follows the same rule."""
    x, y, a, b = _points(1)
    a, b = a[..., :1].contiguous(), b[..., :1].contiguous()
    y[0, 5, 0] = bad
    kernels = load(backend, "pairwise")
    want = ref.kernel_sum(x, y.nan_to_num(0, 0, 0), a, b, "rbf", (1.0,))
    _expect(kernels.kernel_sum_fused(x, y, a, b, "rbf", (1.0,), (True, True, True, True))[0], want, {0})
    mmd_want = ref.mmd2(x, y.nan_to_num(0, 0, 0), "laplacian", (1.0,), "unbiased")
    _expect(kernels.mmd2_fused(x, y, "laplacian", (1.0,), True, (True, True))[0], mmd_want, {0})


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("bad", BAD)
def test_mixture_nan_rows(backend, bad):
    """A non-finite z gives NaN in its row only; a non-finite component, NaN in every row."""
    g = torch.Generator().manual_seed(2)
    z, m, lv = (torch.randn(s, generator=g, dtype=torch.float64) for s in ((12, 3), (7, 3), (7, 3)))
    z[4, 1] = bad
    want = ref.gaussian_mixture_logpdf(z.nan_to_num(0, 0, 0), m, lv)
    for fn in (load(backend, "pairwise").mixture_logpdf_forward, lambda *t: pairwise_ops.mixture_logpdf(*t, backend)):
        out = fn(z, m, lv)
        assert torch.isnan(out[4])
        torch.testing.assert_close(torch.cat([out[:4], out[5:]]), torch.cat([want[:4], want[5:]]), rtol=1e-9, atol=1e-9)
        m_bad, lv_bad = m.clone(), lv.clone()
        m_bad[3, 0] = bad
        lv_bad[6, 2] = bad
        assert torch.isnan(fn(z, m_bad, lv)).all() and torch.isnan(fn(z, m, lv_bad)).all()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("bad", BAD)
def test_ratio_terms_nan(backend, bad):
    real = torch.tensor([0.5, -1.0, 2.0, 0.1], dtype=torch.float64)
    fake = torch.tensor([0.3, 1.5, -2.0], dtype=torch.float64)
    real[2] = bad
    kernels = load(backend, "ratio")
    for kind in ("gan", "hinge", "kl", "tv", "reverse_kl"):
        on_real, on_fake = ratio_terms.DISCRIMINATOR[kind]
        terms = (ratio_terms.term(0, on_real, 0), ratio_terms.term(1, on_fake, 1))
        (loss_real, loss_fake), _ = kernels.ratio_forward([real, fake], terms, 2, True, True, [False, False])
        assert torch.isnan(loss_real) and torch.isfinite(loss_fake), kind
        (t_real, t_fake), _ = kernels.ratio_forward([real, fake], terms, 2, False, False, [False, False])
        assert torch.isnan(t_real[2]) and torch.isfinite(t_real[[0, 1, 3]]).all() and torch.isfinite(t_fake).all()
        assert torch.isnan(ratio_ops.discriminator_loss(real, fake, kind, "mean", backend=backend))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("bad", BAD)
@pytest.mark.parametrize("kind", ["nll", "kl_std_normal", "kl_gaussians"])
def test_gaussian_terms_nan_rows(backend, bad, kind):
    g = torch.Generator().manual_seed(3)
    count = {"nll": 3, "kl_std_normal": 2, "kl_gaussians": 4}[kind]
    xs = [torch.randn(5, 4, generator=g, dtype=torch.float64) for _ in range(count)]
    xs[-1][2, 1] = bad
    rows, _ = load(backend, "gaussian").gaussian_forward(kind, xs, [False] * 3, False, True)
    assert torch.isnan(rows[2]) and torch.isfinite(rows[[0, 1, 3, 4]]).all()
    total, _ = load(backend, "gaussian").gaussian_forward(kind, xs, [False] * 3, True, False)
    assert torch.isnan(total)
    function = {v: k for k, v in gaussian_ops.KIND.items()}[kind]
    assert torch.isnan(getattr(gaussian_ops, function)(*xs, "sum", backend=backend))
