"""Public kernel sums: sum_ij a_i k(x_i, y_j) b_j over all pairs of two sample sets."""
from __future__ import annotations

from typing import NamedTuple

import torch

from . import _validate as check
from .backend import resolve
from .ops import pairwise as ops
from .reference.kernels import KERNELS


def canonical_weights(w, name: str, samples: torch.Tensor, batched: bool):
    """(N,)/(N, P) -- or (B, N)/(B, N, P) for batched samples -- to (B, N, P); None means ones."""
    b, n = (samples.shape[0] if batched else 1), samples.shape[-2]
    if w is None:
        return samples.new_ones((b, n, 1)), False
    check.tensor(w, name)
    check.same_kind(**{name: w, "samples": samples})
    lead = (b,) if batched else ()
    if tuple(w.shape) == lead + (n,):
        return w.reshape(b, n, 1), False
    if w.dim() == len(lead) + 2 and tuple(w.shape[:-1]) == lead + (n,) and w.shape[-1] >= 1:
        return w.reshape(b, n, w.shape[-1]), True
    want = f"({'B, ' if batched else ''}N) or ({'B, ' if batched else ''}N, P) with N = {n}" + (f", B = {b}" if batched else "")
    raise ValueError(f"{name} must have shape {want}, got {tuple(w.shape)}")


class Canonical(NamedTuple):
    """Validated kernel-sum inputs in the engine's shapes, and the public shape of the result."""
    x: torch.Tensor  # (B, N, d)
    y: torch.Tensor  # (B, M, d)
    a: torch.Tensor  # (B, N, P)
    b: torch.Tensor  # (B, M, P)
    x_columns: int  # P of x_weights as given, 0 for a vector (or None)
    y_columns: int
    shape: tuple  # the result's: (B,) for batched samples, then (P,) when either weight has columns

    def shape_result(self, out: torch.Tensor) -> torch.Tensor:
        """(B, P) -> the public shape."""
        return out.reshape(self.shape)


def canonical(x, y, x_weights, y_weights, allow_empty: bool = False) -> Canonical:
    """x, y and their weights (None: ones) checked and brought to the engine's shapes; allow_empty
    admits N = 0 or M = 0 (a shard of a distributed sample)."""
    check.matching_samples(x, y, allow_empty=allow_empty)
    batched = x.dim() == 3
    a, a_cols = canonical_weights(x_weights, "x_weights", x, batched)
    b, b_cols = canonical_weights(y_weights, "y_weights", y, batched)
    if a_cols and b_cols and a.shape[-1] != b.shape[-1]:
        raise ValueError(f"x_weights has P = {a.shape[-1]} columns but y_weights has P = {b.shape[-1]}")
    p = max(a.shape[-1], b.shape[-1])
    a = a if a.shape[-1] == p else a.expand(-1, -1, p)
    b = b if b.shape[-1] == p else b.expand(-1, -1, p)
    xb, yb = (x, y) if batched else (x.unsqueeze(0), y.unsqueeze(0))
    shape = ((xb.shape[0],) if batched else ()) + ((p,) if (a_cols or b_cols) else ())
    return Canonical(xb, yb, a, b, a.shape[-1] if a_cols else 0, b.shape[-1] if b_cols else 0, shape)


def kernel_sum(x, y, *, kernel="rbf", bandwidth=1.0, x_weights=None, y_weights=None, backend=None, precision="ieee"):
    """Weighted sum of a kernel over all pairs: sum_ij a_i k(x_i, y_j) b_j.

    Args:
        x: (N, d) or (B, N, d) samples; y: (M, d) or (B, M, d) samples.
        kernel: "rbf" exp(-||x-y||^2 / (2 sigma^2)), "laplacian" exp(-||x-y|| / sigma),
            "imq" C / (C + ||x-y||^2) with C = sigma, "energy" -||x-y||, "linear" x.y.
        bandwidth: sigma > 0, or a sequence of them: the sum of the kernels over the sequence
            (ignored by "energy" and "linear", which have no scale).
        x_weights, y_weights: a (N,) and b (M,) (default ones), or (N, P) / (M, P) for P weight
            vectors in one pass; batched samples take (B, N) or (B, N, P).
        backend: "reference", "cpp", "triton" or "auto"; None uses the current default.
        precision: "ieee" (default) exact float32 products; "tf32" lets the Triton kernels use
            TF32 tensor cores for the distance dot products (about 2^-7 relative error on a
            squared distance). The other backends compute in full precision whatever it says.

    Returns:
        A scalar, (P,) with weight columns, and a leading (B,) with batched samples; NaN when
        any input holds a NaN or an Inf.
    """
    check.choice(kernel, "kernel", KERNELS)
    check.choice(precision, "precision", ops.PRECISIONS)
    bandwidths = check.bandwidths(bandwidth)
    c = canonical(x, y, x_weights, y_weights)
    name = resolve(backend, "kernel_sum", x.device)
    if y is x and y_weights is x_weights:  # one triangle of the pairs is enough
        out = ops.kernel_sum_sym(c.x, c.a, kernel, bandwidths, False, name, precision)
    else:
        out = ops.kernel_sum(c.x, c.y, c.a, c.b, kernel, bandwidths, name, precision)
    if name == "reference":  # the fused ops apply the NaN rule in their own pass over the points
        out = check.nan_unless_finite(out, c.x, c.y, c.a, c.b, batched=True)
    return c.shape_result(out)
