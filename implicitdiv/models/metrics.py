"""Sample and reconstruction metrics of the toy trainers.

Mode metrics as in VEEGAN (Srivastava et al., 2017) and PacGAN (Lin et al., 2018): a sample is
high quality when it lies within 3 standard deviations of its nearest mode; a mode is captured
when it is the nearest mode of at least one high-quality sample. For an isotropic 2D Gaussian,
P(||x - mu|| <= 3 sigma) = 1 - exp(-9/2) = 98.89 %, so a perfect sampler scores about that.
"""
from __future__ import annotations

import torch

import implicitdiv as idv

QUALITY_STDS = 3.0
MMD_POINTS = 500  # the reference backend builds an MMD_POINTS^2 x d difference tensor
MMD_SCALES = (1.0 / 16.0, 0.25, 1.0)  # multiples of the median distance of the held-out rows


def mode_metrics(samples: torch.Tensor, modes: torch.Tensor, std: float) -> dict[str, float]:
    """{"modes": modes captured, "high_quality_percent": % of samples within 3 std of their
    nearest mode}."""
    dist = torch.cdist(samples.double(), modes.double())
    nearest_dist, nearest = dist.min(dim=1)
    good = nearest_dist <= QUALITY_STDS * std
    captured = torch.unique(nearest[good]).numel()
    return {"modes": int(captured), "high_quality_percent": 100.0 * float(good.double().mean())}


def sample_mmd2(samples: torch.Tensor, heldout: torch.Tensor, *, backend="reference") -> float:
    """Biased MMD^2 between up to MMD_POINTS generated and held-out rows, RBF kernels summed over
    MMD_SCALES times the median distance of the held-out rows (small scales resolve the modes)."""
    n = min(MMD_POINTS, samples.shape[0], heldout.shape[0])
    x, y = heldout[:n].double(), samples[:n].double()
    half = max(1, n // 2)
    median = float(idv.median_bandwidth(x[:half], x[half:])) if n > 1 else 1.0
    median = median if median > 0 else 1.0
    return float(idv.mmd2(x, y, kernel="rbf", bandwidth=[s * median for s in MMD_SCALES], backend=backend))


def reconstruction_mse(rows: torch.Tensor, reconstructions: torch.Tensor) -> float:
    """Mean over rows and coordinates of (x - G(E(x)))^2."""
    d = rows.double() - reconstructions.double()
    return float((d * d).mean())
