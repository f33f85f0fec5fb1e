"""PNG figures of the toy trainers (matplotlib, Agg backend): samples and reconstructions."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from .data import Dataset  # noqa: E402


def _image_grid(rows: np.ndarray, shape: tuple[int, int], columns: int) -> np.ndarray:
    h, w = shape
    count = rows.shape[0]
    lines = -(-count // columns)
    canvas = np.ones((lines * (h + 1), columns * (w + 1)))
    for i, r in enumerate(rows):
        y, x = divmod(i, columns)
        canvas[y * (h + 1): y * (h + 1) + h, x * (w + 1): x * (w + 1) + w] = r.reshape(h, w)
    return canvas


def samples(path: Path, rows: torch.Tensor, data: Dataset, title: str = "") -> None:
    """Generated rows: an 8 x 8 grid of images for image data, else a scatter of the first two
    coordinates over the held-out data."""
    fig, ax = plt.subplots(figsize=(5, 5))
    rows = rows.detach().numpy()
    if data.image_shape is not None:
        ax.imshow(_image_grid(rows[:64], data.image_shape, 8), cmap="gray_r", vmin=0, vmax=1)
        ax.axis("off")
    else:
        test = data.test.numpy()
        y_of = (lambda a: a[:, 1]) if data.dim > 1 else (lambda a: np.zeros(a.shape[0]))
        ax.scatter(test[:, 0], y_of(test), s=2, c="0.75", label="data")
        ax.scatter(rows[:, 0], y_of(rows), s=2, c="tab:blue", label="samples")
        ax.legend(loc="upper right", markerscale=4)
        ax.set_aspect("equal", adjustable="datalim")
    ax.set_title(title)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)


def reconstructions(path: Path, rows: torch.Tensor, recs: torch.Tensor, data: Dataset) -> None:
    """Held-out rows next to G(E(x)): image pairs, or arrows from x to its reconstruction."""
    fig, ax = plt.subplots(figsize=(5, 5))
    x, r = rows.detach().numpy(), recs.detach().numpy()
    if data.image_shape is not None:
        pairs = np.stack([x[:32], r[:32]], axis=1).reshape(-1, x.shape[1])
        ax.imshow(_image_grid(pairs, data.image_shape, 8), cmap="gray_r", vmin=0, vmax=1)
        ax.set_title("held-out x | G(E(x)), side by side")
        ax.axis("off")
    else:
        y_of = (lambda a: a[:, 1]) if data.dim > 1 else (lambda a: np.zeros(a.shape[0]))
        for a, b, ya, yb in zip(x[:, 0], r[:, 0], y_of(x), y_of(r)):
            ax.plot([a, b], [ya, yb], c="0.6", lw=0.5)
        ax.scatter(x[:, 0], y_of(x), s=6, c="k", label="x")
        ax.scatter(r[:, 0], y_of(r), s=6, c="tab:red", label="G(E(x))")
        ax.legend(loc="upper right")
        ax.set_aspect("equal", adjustable="datalim")
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
