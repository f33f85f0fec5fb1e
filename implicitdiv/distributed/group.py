"""The process group the estimators run over, the sums and means over its ranks, and the count of
bytes the data exchanges send."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class Traffic:
    """Bytes and messages this process has sent through the data exchanges (padding included,
    metadata and the (B, P) partial sums left out)."""
    bytes_sent: int = 0
    messages: int = 0

    def add(self, nbytes: int, messages: int = 1) -> None:
        self.bytes_sent += int(nbytes)
        self.messages += messages

    def reset(self) -> None:
        self.bytes_sent, self.messages = 0, 0


TRAFFIC = Traffic()


@dataclass(frozen=True)
class Group:
    handle: object  # a ProcessGroup, or None for the world
    rank: int
    world: int
    timeout_s: float

    @staticmethod
    def of(group, timeout) -> "Group":
        if not (dist.is_available() and dist.is_initialized()):
            raise RuntimeError("torch.distributed is not initialized: call torch.distributed.init_process_group "
                               "first (torchrun sets up the environment it reads)")
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
        handle = None if group is None or group is dist.group.WORLD else group
        rank = dist.get_rank(handle)
        if rank < 0:
            raise ValueError(f"group: this process (global rank {dist.get_rank()}) is not a member of it")
        return Group(handle, rank, dist.get_world_size(handle), float(timeout))

    def peer(self, rank: int) -> int:
        """The global rank that point-to-point ops address for this group's ``rank``."""
        return rank if self.handle is None else dist.get_global_rank(self.handle, rank)

    def metadata_device(self, like) -> torch.device:
        if isinstance(like, torch.Tensor):
            return like.device
        if "nccl" in str(dist.get_backend(self.handle)) and torch.cuda.is_available():
            return torch.device("cuda", torch.cuda.current_device())
        return torch.device("cpu")


def gather_in_rank_order(grp: Group, t: torch.Tensor) -> list[torch.Tensor]:
    out = [torch.empty_like(t) for _ in range(grp.world)]
    dist.all_gather(out, t.contiguous(), group=grp.handle)
    return out


def sum_over_ranks(grp: Group, t: torch.Tensor) -> torch.Tensor:
    """sum_r t_r in rank order: the same bits on every rank, run after run."""
    parts = gather_in_rank_order(grp, t)
    total = parts[0]
    for p in parts[1:]:
        total = total + p
    return total


def mean_over_ranks(grp: Group, t: torch.Tensor) -> torch.Tensor:
    return sum_over_ranks(grp, t) / grp.world


