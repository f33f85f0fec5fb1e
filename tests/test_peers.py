"""The same numbers as the libraries people use today, where the definitions agree (torchmetrics'
KID is in test_kid.py). Each test skips, saying why, where its package is absent; make test installs
geomloss (pure Python, --no-deps); pykeops and alibi-detect are run where installed by hand
(benchmarks/bench_peers.py says how).

geomloss SamplesLoss("gaussian" | "laplacian" | "energy", blur=sigma) is half of our biased MMD^2:
    0.5 a^T K_xx a + 0.5 b^T K_yy b - a^T K_xy b  with a = 1/N, b = 1/M,
and its tensorized backend floors distances at 1e-4 (sqrt(clamp(s, 1e-8))): |x - y| / sigma for
"laplacian", |x - y| for "energy", which changes their diagonal terms k(x_i, x_i) = k(0) to
exp(-1e-4) and -1e-4.
"""
from __future__ import annotations

import math

import pytest
import torch

import implicitdiv as idv

F64 = torch.float64
GEOMLOSS_NAMES = {"rbf": "gaussian", "laplacian": "laplacian", "energy": "energy"}
GEOMLOSS_FLOOR = 1e-4  # the smallest distance of geomloss' tensorized backend


def _samples(n, m, d, dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=dtype), torch.randn(m, d, generator=g, dtype=dtype) + 0.3


GEOMLOSS_DIAGONAL = {"laplacian": math.exp(-GEOMLOSS_FLOOR) - 1.0, "energy": -GEOMLOSS_FLOOR}  # k(floor) - k(0)


@pytest.mark.parametrize("kernel", ["rbf", "laplacian", "energy"])
def test_geomloss_kernel_losses_are_half_our_biased_mmd2(kernel):
    geomloss = pytest.importorskip("geomloss", reason="geomloss is not installed (make test installs it)")
    n, m, sigma = 300, 250, 0.8
    x, y = _samples(n, m, 6, F64)
    theirs = geomloss.SamplesLoss(GEOMLOSS_NAMES[kernel], blur=sigma, backend="tensorized")(x, y)
    floor = (1.0 / n + 1.0 / m) * GEOMLOSS_DIAGONAL.get(kernel, 0.0)
    ours = idv.mmd2(x, y, kernel=kernel, bandwidth=sigma, backend="cpp" if "cpp" in idv.backends() else None)
    torch.testing.assert_close(ours, 2.0 * theirs - floor, rtol=1e-10, atol=1e-13)


def test_geomloss_gaussian_agrees_in_float32():
    geomloss = pytest.importorskip("geomloss", reason="geomloss is not installed (make test installs it)")
    x, y = _samples(700, 500, 16, torch.float32, seed=1)
    theirs = 2.0 * geomloss.SamplesLoss("gaussian", blur=1.5, backend="tensorized")(x, y)
    ours = idv.mmd2(x, y, kernel="rbf", bandwidth=1.5)
    # k <= 1: both round terms of size 1 before the sums cancel to ~1e-2
    assert abs(float(ours) - float(theirs)) <= 16 * torch.finfo(torch.float32).eps


def test_geomloss_weighted_kernel_norm_is_three_kernel_sums():
    geomloss = pytest.importorskip("geomloss", reason="geomloss is not installed (make test installs it)")
    x, y = _samples(120, 90, 3, F64, seed=2)
    g = torch.Generator().manual_seed(3)
    a, b = torch.rand(120, generator=g, dtype=F64), torch.rand(90, generator=g, dtype=F64)
    a, b = a / a.sum(), b / b.sum()
    theirs = geomloss.SamplesLoss("gaussian", blur=0.7, backend="tensorized")(a, x, b, y)
    kw = {"kernel": "rbf", "bandwidth": 0.7}
    ours = 0.5 * (idv.kernel_sum(x, x, x_weights=a, y_weights=a, **kw) + idv.kernel_sum(y, y, x_weights=b, y_weights=b, **kw)) \
        - idv.kernel_sum(x, y, x_weights=a, y_weights=b, **kw)
    torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=1e-13)


def test_pykeops_gaussian_kernel_sums():
    keops = pytest.importorskip("pykeops.torch", reason="pykeops is not installed (see benchmarks/bench_peers.py)")
    x, y = _samples(500, 400, 5, torch.float32, seed=4)
    g = torch.Generator().manual_seed(5)
    b = torch.randn(400, 3, generator=g)
    sigma = 0.9
    xi, yj = keops.LazyTensor(x[:, None, :]), keops.LazyTensor(y[None, :, :])
    theirs = (-((xi - yj) ** 2).sum(-1) / (2 * sigma * sigma)).exp() @ b  # (N, 3): sum_j K_ij b_j
    ours = idv.kernel_sum(x, y, kernel="rbf", bandwidth=sigma, y_weights=b)  # (3,): sum_ij K_ij b_jp
    # terms k <= 1 times |b|: float32 rounding at that size, summed over N M pairs
    scale = float(b.abs().sum()) * 500
    assert torch.allclose(ours, theirs.sum(0), rtol=0, atol=64 * torch.finfo(torch.float32).eps * scale)


def test_alibi_detect_mmd_drift_statistic_and_p_value():
    mmd = pytest.importorskip("alibi_detect.cd.pytorch.mmd", reason="alibi-detect is not installed (see bench_peers)")
    import numpy as np

    x, y = _samples(80, 80, 4, torch.float32, seed=6)
    sigma = 1.2
    detector = mmd.MMDDriftTorch(x.numpy(), sigma=np.array([sigma], dtype=np.float32), n_permutations=50, device="cpu")
    p_theirs, stat_theirs, _ = detector.score(y.numpy())
    # its statistic is our unbiased MMD^2
    ours = idv.mmd2(x, y, kernel="rbf", bandwidth=sigma, estimator="unbiased")
    assert abs(float(ours) - stat_theirs) <= 16 * torch.finfo(torch.float32).eps
    # its p-value is #{null >= observed} / P, ours (1 + #{null >= observed}) / (1 + P): for samples
    # this far apart no relabelling reaches the observed statistic, 0 there and 1 / (1 + P) here
    far = y + 5.0
    p_far, _, _ = detector.score(far.numpy())
    _, p_ours = idv.mmd_test(x, far, bandwidth=sigma, permutations=50, seed=0)
    assert p_far == 0.0 and float(p_ours) == pytest.approx(1 / 51)
    assert 0.0 <= p_theirs <= 1.0
