"""implicitdiv.kid against its definition (float64, subset by subset from kernel matrices) and against
torchmetrics' KernelInceptionDistance on the same features and subsets; both schedules, every backend."""
from __future__ import annotations

import warnings

import pytest
import torch

import implicitdiv as idv
from implicitdiv.kid import by_columns_is_cheaper, kid_subsets
from implicitdiv.reference.kernels import kernel_matrix

F64 = torch.float64


def assert_rounding_close(got, want, kmax, what):
    """|got - want| within 16 eps of got's dtype times the largest kernel value: each score is a
    difference of means of kernel values up to kmax, so its rounding error follows that size
    (a KID of 1e-2 from terms of 10 loses three digits to cancellation in any implementation)."""
    err = abs(float(got) - float(want))
    bound = 16 * torch.finfo(got.dtype).eps * kmax
    assert err <= bound, f"{what}: |{float(got):.9g} - {float(want):.9g}| = {err:.2e} > {bound:.2e}"


def _features(n_real, n_fake, d, seed):
    """Nonnegative, Inception-pool-like features: the polynomial kernel's terms are all of one sign,
    so a KID of 1e-2 is a difference of sums a hundred times its size."""
    g = torch.Generator().manual_seed(seed)
    real = torch.rand(n_real, d, generator=g, dtype=F64) * 2.0
    fake = torch.rand(n_fake, d, generator=g, dtype=F64) * 2.0 + 0.05
    return real, fake


def _definition(real, fake, real_idx, fake_idx, params):
    """Each subset's unbiased MMD^2 from its three kernel matrices (float64), and the largest |k|."""
    scores, kmax = [], 0.0
    for ri, fi in zip(real_idx, fake_idx):
        x, y = real[ri], fake[fi]
        m = x.shape[0]
        kxx, kyy, kxy = (kernel_matrix(u, v, "polynomial", params) for u, v in ((x, x), (y, y), (x, y)))
        off = (kxx.sum() - kxx.diagonal().sum() + kyy.sum() - kyy.diagonal().sum()) / (m * (m - 1))
        scores.append(off - 2.0 * kxy.sum() / (m * m))
        kmax = max(kmax, float(torch.cat([kxx.flatten(), kyy.flatten(), kxy.flatten()]).abs().max()))
    return torch.stack(scores), kmax


BACKENDS = [b for b in ("reference", "cpp", "triton") if b in idv.backends()]


@pytest.mark.parametrize("schedule", ["columns", "subsets"])
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [torch.float32, F64])
def test_kid_is_the_mean_and_std_of_the_subsets_mmd2(backend, schedule, dtype):
    if backend == "reference" and schedule == "columns":
        pytest.skip("the reference runs the subset schedule (columns would build N x N matrices)")
    n_real, n_fake, d, subsets, m = (70, 55, 9, 6, 20) if backend == "triton" else (300, 260, 24, 9, 60)
    real, fake = _features(n_real, n_fake, d, seed=1)
    real, fake = real.to(dtype).double(), fake.to(dtype).double()  # both sides see the same values
    degree, gamma, coef0 = (3, None, 1.0) if dtype == F64 else (2, 0.05, 0.5)
    params = (1.0 / d if gamma is None else gamma, coef0, float(degree))
    real_idx, fake_idx = kid_subsets(n_real, n_fake, subsets, m, seed=4)
    want, kmax = _definition(real, fake, real_idx, fake_idx, params)
    mean, std = idv.kid(real.to(dtype), fake.to(dtype), subsets=subsets, subset_size=m, seed=4, degree=degree,
                        gamma=gamma, coef0=coef0, schedule=schedule, backend=backend)
    assert mean.dtype == std.dtype == dtype
    assert_rounding_close(mean, want.mean(), kmax, "mean")
    assert_rounding_close(std, want.std(correction=0), kmax, "std")


def test_kid_is_differentiable():
    real, fake = _features(40, 30, 5, seed=2)
    fake.requires_grad_()
    got = torch.autograd.grad(idv.kid(real, fake, subsets=3, subset_size=12, seed=0, backend="cpp")[0], fake)[0]
    want = torch.autograd.grad(idv.kid(real, fake, subsets=3, subset_size=12, seed=0, backend="reference")[0], fake)[0]
    torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-12)


def test_seed_none_draws_from_torchs_global_generator():
    real, fake = _features(50, 50, 4, seed=3)
    torch.manual_seed(11)
    first = idv.kid(real, fake, subsets=4, subset_size=10)
    torch.manual_seed(11)
    assert all(torch.equal(a, b) for a, b in zip(first, idv.kid(real, fake, subsets=4, subset_size=10)))
    assert all(torch.equal(a, b) for a, b in zip(first, idv.kid(real, fake, subsets=4, subset_size=10, seed=11)))


def test_subsets_are_drawn_without_replacement():
    real_idx, fake_idx = kid_subsets(30, 20, 5, 20, seed=0)
    assert real_idx.shape == fake_idx.shape == (5, 20)
    assert all(len(set(r.tolist())) == 20 for r in real_idx) and all(sorted(f.tolist()) == list(range(20)) for f in fake_idx)


def test_the_schedule_model_prefers_columns_when_subsets_cover_the_data_often():
    assert by_columns_is_cheaper(2000, 2000, 2048, 100, 1000)  # each row in ~50 subsets
    assert not by_columns_is_cheaper(50000, 50000, 2048, 10, 1000)  # most rows in none


def test_nan_in_the_features_gives_nan():
    real, fake = _features(40, 40, 3, seed=5)
    real[3, 1] = float("nan")
    for backend in BACKENDS:
        for schedule in ("columns", "subsets"):
            if backend == "reference" and schedule == "columns":
                continue
            mean, std = idv.kid(real, fake, subsets=2, subset_size=40, seed=0, schedule=schedule, backend=backend)
            assert torch.isnan(mean) and torch.isnan(std), (backend, schedule)


@pytest.mark.parametrize("kwargs,exc,match", [
    ({"subset_size": 41}, ValueError, "real_features has 40 rows, fewer than subset_size = 41"),
    ({"subset_size": 1}, ValueError, "subset_size must be an integer >= 2"),
    ({"subsets": 0}, ValueError, "subsets must be an integer >= 1"),
    ({"seed": -1}, ValueError, "seed"),
    ({"schedule": "pooled"}, ValueError, "schedule must be one of"),
    ({"degree": 0}, ValueError, "degree"),
    ({"gamma": -1.0}, ValueError, "gamma"),
])
def test_bad_arguments_raise(kwargs, exc, match):
    real, fake = _features(40, 45, 3, seed=6)
    with pytest.raises(exc, match=match):
        idv.kid(real, fake, **{"subsets": 2, "subset_size": 10, **kwargs})


def test_features_must_match():
    real, fake = _features(40, 45, 3, seed=6)
    with pytest.raises(ValueError, match="trailing dims"):
        idv.kid(real, fake[:, :2], subsets=2, subset_size=10)
    with pytest.raises(ValueError, match=r"\(N, d\) features"):
        idv.kid(real.unsqueeze(0), fake.unsqueeze(0), subsets=2, subset_size=10)


# ---- torchmetrics: the same features and subsets give its value ---------------------------------

@pytest.mark.parametrize("schedule", ["columns", "subsets"])
@pytest.mark.parametrize("backend", [b for b in BACKENDS if b != "triton"])
def test_matches_torchmetrics_kernel_inception_distance(backend, schedule):
    kid_module = pytest.importorskip("torchmetrics.image.kid", reason="torchmetrics is not installed (make test installs it)")
    if backend == "reference" and schedule == "columns":
        pytest.skip("the reference runs the subset schedule")
    real, fake = (t.float() for t in _features(400, 350, 64, seed=7))
    subsets, m = 8, 150
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "will save all extracted features in buffer"
        metric = kid_module.KernelInceptionDistance(feature=torch.nn.Identity(), subsets=subsets, subset_size=m)
    metric.update(real, real=True)
    metric.update(fake, real=False)
    torch.manual_seed(123)
    theirs = metric.compute()
    ours = idv.kid(real, fake, subsets=subsets, subset_size=m, seed=123, schedule=schedule, backend=backend)
    real_idx, fake_idx = kid_subsets(400, 350, subsets, m, seed=123)
    _, kmax = _definition(real.double(), fake.double(), real_idx, fake_idx, (1.0 / 64, 1.0, 3.0))
    for a, b, what in zip(ours, theirs, ("mean", "std")):
        assert_rounding_close(a, b, kmax, what)
