"""Input checks shared by the public functions: each raises before any kernel runs and names the
argument and what was expected."""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch

REDUCTIONS = ("mean", "sum", "none")


def tensor(t, name: str) -> torch.Tensor:
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if not (t.is_floating_point()):
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {t.dtype}")
    return t


def same_kind(**named: torch.Tensor | None) -> None:
    """All given tensors share one device and one dtype."""
    items = [(n, t) for n, t in named.items() if t is not None]
    first_name, first = items[0]
    for n, t in items[1:]:
        if t.device != first.device:
            raise ValueError(f"{n} is on {t.device} but {first_name} is on {first.device}; move them to one device")
        if t.dtype != first.dtype:
            raise TypeError(f"{n} has dtype {t.dtype} but {first_name} has dtype {first.dtype}; use one dtype")


def samples(t, name: str, allow_empty: bool = False) -> torch.Tensor:
    """A sample set: (N, d) or (B, N, d) with d >= 1 and N >= 1 (N = 0 too with allow_empty, for a
    shard of a distributed sample)."""
    tensor(t, name)
    if t.dim() not in (2, 3):
        raise ValueError(f"{name} must have shape (N, d) or (B, N, d), got {tuple(t.shape)}")
    if t.shape[-2] == 0 and not allow_empty:
        raise ValueError(f"{name} is an empty sample set (N = 0)")
    if t.shape[-1] == 0:
        raise ValueError(f"{name} has feature dimension d = 0")
    return t


def matching_samples(x: torch.Tensor, y: torch.Tensor, xname: str = "x", yname: str = "y",
                     allow_empty: bool = False) -> None:
    samples(x, xname, allow_empty)
    samples(y, yname, allow_empty)
    same_kind(**{xname: x, yname: y})
    if x.dim() != y.dim():
        raise ValueError(f"{xname} has shape {tuple(x.shape)} and {yname} has shape {tuple(y.shape)}: both need a batch dim or neither")
    if x.shape[-1] != y.shape[-1]:
        raise ValueError(f"trailing dims differ: {xname} has d = {x.shape[-1]}, {yname} has d = {y.shape[-1]}")
    if x.dim() == 3 and x.shape[0] != y.shape[0]:
        raise ValueError(f"batch sizes differ: {xname} has {x.shape[0]}, {yname} has {y.shape[0]}")


def choice(value, name: str, choices: Sequence[str]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {tuple(choices)}, got {value!r}")
    return value


def reduction(value) -> str:
    return choice(value, "reduction", REDUCTIONS)


def bandwidths(bandwidth, name: str = "bandwidth") -> tuple[float, ...]:
    """A positive float, a sequence of them (a mixture: the sum of the kernels), or a 0/1-dim tensor."""
    if isinstance(bandwidth, torch.Tensor):
        if bandwidth.dim() > 1:
            raise ValueError(f"{name} must be a scalar or a 1-dim sequence, got shape {tuple(bandwidth.shape)}")
        values = [float(v) for v in bandwidth.detach().reshape(-1).tolist()]
    elif isinstance(bandwidth, (int, float)) and not isinstance(bandwidth, bool):
        values = [float(bandwidth)]
    elif isinstance(bandwidth, Sequence) and not isinstance(bandwidth, str):
        values = []
        for v in bandwidth:
            if isinstance(v, torch.Tensor):
                v = v.item()
            if not isinstance(v, (int, float)) or isinstance(v, bool):
                raise TypeError(f"{name} entries must be numbers, got {type(v).__name__}")
            values.append(float(v))
    else:
        raise TypeError(f"{name} must be a positive number or a sequence of them, got {bandwidth!r}")
    if not values:
        raise ValueError(f"{name} is an empty sequence")
    for v in values:
        if not (v > 0) or math.isinf(v):
            raise ValueError(f"{name} must be finite and > 0, got {v}")
    return tuple(values)


def positive_int(value, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


# Below this many elements all_finite uses isfinite().all(): aminmax's reduction is parallelized
# even for a few elements, and waking torch's second worker costs more than the work there.
SMALL_SCAN = 1 << 15


def all_finite(t: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    """Whether every value of t (along dim) is finite, in one pass: min and max are both finite
    exactly when there is no NaN (both propagate it) and no +-Inf. torch.isfinite(t).all() writes a
    bool copy and costs 10-20x more on large inputs."""
    if t.numel() < SMALL_SCAN:
        return torch.isfinite(t).all() if dim is None else torch.isfinite(t).all(dim)
    lo, hi = torch.aminmax(t) if dim is None else torch.aminmax(t, dim=dim)
    return torch.isfinite(lo) & torch.isfinite(hi)


def nan_unless_finite(out: torch.Tensor, *inputs: torch.Tensor, batched: bool = False) -> torch.Tensor:
    """The contract's rule for a result reduced over its inputs: NaN as soon as any input holds a
    NaN or an Inf (where a formula would otherwise return a finite limit, e.g. exp(-inf) = 0).
    With batched=True, out and inputs share a leading batch dim and the rule applies per batch."""
    def finite(t):
        return all_finite(t.flatten(1), 1) if batched else all_finite(t)

    ok = finite(inputs[0])
    for t in inputs[1:]:
        ok = ok & finite(t)
    if batched:
        ok = ok.reshape(ok.shape + (1,) * (out.dim() - 1))
    return torch.where(ok, out, torch.full_like(out, float("nan")))


def nan_where_nonfinite(terms: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
    """The same rule element by element, for unreduced terms computed from ``source``."""
    return torch.where(torch.isfinite(source), terms, torch.full_like(terms, float("nan")))


def nan_where_nonfinite_rows(rows: torch.Tensor, *inputs: torch.Tensor) -> torch.Tensor:
    """The same rule per row, for per-row terms summed over the last dim of ``inputs``."""
    ok = all_finite(inputs[0], -1)
    for t in inputs[1:]:
        ok = ok & all_finite(t, -1)
    return torch.where(ok, rows, torch.full_like(rows, float("nan")))
