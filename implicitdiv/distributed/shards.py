"""The column-side shards of every rank: their shapes, packed into and out of one flat buffer, and
the order a rank visits them in."""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from .group import Group


class Columns:
    """The column-side tensors of every rank: shapes[s][t] is tensor t's shape on rank s."""

    def __init__(self, shapes: list[list[tuple[int, ...]]], dtype: torch.dtype, device: torch.device):
        self.shapes, self.dtype, self.device = shapes, dtype, device
        self.sizes = [[math.prod(s) for s in per_rank] for per_rank in shapes]
        self.numel = [sum(s) for s in self.sizes]
        self.width = max(self.numel)
        self.itemsize = torch.empty(0, dtype=dtype).element_size()

    def pack(self, tensors: Sequence[torch.Tensor | None], owner: int, width: int | None = None) -> torch.Tensor:
        """One flat buffer of ``width`` entries (default: the owner's own size); None packs as zeros."""
        flat = torch.zeros(width or self.numel[owner], dtype=self.dtype, device=self.device)
        start = 0
        for t, size in zip(tensors, self.sizes[owner]):
            if t is not None:
                flat[start: start + size] = t.reshape(-1)
            start += size
        return flat

    def unpack(self, flat: torch.Tensor, owner: int) -> tuple[torch.Tensor, ...]:
        out, start = [], 0
        for shape, size in zip(self.shapes[owner], self.sizes[owner]):
            out.append(flat[start: start + size].view(shape))
            start += size
        return tuple(out)


def owners(grp: Group) -> list[int]:
    """The order blocks are visited in on this rank: its own shard, then rank - 1, rank - 2, ..."""
    return [(grp.rank - t) % grp.world for t in range(grp.world)]


