"""The two ways shards travel between ranks: all at once (AllGather) or around a ring of
point-to-point sends (Ring), forward and, with the gradients, backward."""
from __future__ import annotations

import torch
import torch.distributed as dist

from .group import TRAFFIC, Group, gather_in_rank_order
from .shards import Columns, owners

EXCHANGES = ("ring", "allgather")


class AllGather:
    """Gather every rank's shard at once (one all-gather of W padded buffers, kept for backward);
    backward returns the column gradients with one all-to-all. Per rank and pass: (W - 1) padded
    shards received and sent."""

    keeps_shards = True

    def forward(self, grp: Group, cols: Columns, local, visit):
        bufs = gather_in_rank_order(grp, cols.pack(local, grp.rank, cols.width))
        TRAFFIC.add((grp.world - 1) * cols.width * cols.itemsize, grp.world - 1)
        for owner in owners(grp):
            visit(owner, local if owner == grp.rank else cols.unpack(bufs[owner], owner))
        return bufs

    def backward(self, grp: Group, cols: Columns, local, bufs, visit):
        send = torch.zeros(grp.world, cols.width, dtype=cols.dtype, device=cols.device)
        for owner in owners(grp):
            grads = visit(owner, local if owner == grp.rank else cols.unpack(bufs[owner], owner))
            send[owner] = cols.pack(grads, owner, cols.width)
        recv = torch.empty_like(send)
        dist.all_to_all_single(recv.view(-1), send.view(-1), group=grp.handle)
        TRAFFIC.add((grp.world - 1) * cols.width * cols.itemsize, grp.world - 1)
        total = recv[0]
        for r in range(1, grp.world):
            total = total + recv[r]
        return cols.unpack(total[: cols.numel[grp.rank]], grp.rank)


class Ring:
    """Pass the shards around the ring rank -> rank + 1, W - 1 steps, the next shard's transfer
    overlapping the current block; at most two remote shards in memory. Backward passes the shards
    around again, each with the gradient accumulated for it so far, which a last step hands back
    to its owner. Per rank: (W - 1) shards forward, (W - 1) shards and W gradients backward."""

    keeps_shards = False

    def _shift(self, grp: Group, send: torch.Tensor, recv: torch.Tensor, tag: int):
        TRAFFIC.add(send.numel() * send.element_size())
        nxt, prev = grp.peer((grp.rank + 1) % grp.world), grp.peer((grp.rank - 1) % grp.world)
        return dist.batch_isend_irecv([
            dist.P2POp(dist.isend, send, nxt, group=grp.handle, tag=tag),
            dist.P2POp(dist.irecv, recv, prev, group=grp.handle, tag=tag),
        ])

    def _stream(self, grp: Group, cols: Columns, local, visit, carry):
        """Visit every shard in ring order; ``carry(owner, visited)`` returns what travels with it."""
        cur = cols.pack(local, grp.rank)
        acc = None
        for t, owner in enumerate(owners(grp)):
            nxt_owner = (owner - 1) % grp.world
            pending = []
            if t < grp.world - 1:
                nxt = torch.empty(cols.numel[nxt_owner], dtype=cols.dtype, device=cols.device)
                pending += self._shift(grp, cur, nxt, tag=0)
            result = visit(owner, local if owner == grp.rank else cols.unpack(cur, owner))
            acc = carry(owner, result, acc)
            if acc is not None and grp.world > 1:
                received = torch.empty(cols.numel[nxt_owner], dtype=cols.dtype, device=cols.device)
                pending += self._shift(grp, acc, received, tag=1)
                acc_next = received
            else:
                acc_next = acc
            for work in pending:
                work.wait()
            if t < grp.world - 1:
                cur = nxt
            acc = acc_next
        return acc

    def forward(self, grp: Group, cols: Columns, local, visit):
        self._stream(grp, cols, local, visit, lambda owner, result, acc: None)
        return None

    def backward(self, grp: Group, cols: Columns, local, state, visit):
        def carry(owner, grads, acc):
            packed = cols.pack(grads, owner)
            return packed if acc is None else acc + packed

        return cols.unpack(self._stream(grp, cols, local, visit, carry), grp.rank)


EXCHANGE_OF = {"ring": Ring(), "allgather": AllGather()}


