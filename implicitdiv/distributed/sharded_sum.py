"""One sharded pair sum as an autograd Function: this rank's block rows against every owner's
column shard, summed over the ranks, with the column gradients sent back to their owners."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import torch

from .. import _validate as check
from ..ops import pairwise as ops
from .exchange import EXCHANGE_OF
from .group import Group, mean_over_ranks, sum_over_ranks
from .shards import Columns


@dataclass(frozen=True)
class ShardedSum:
    """One sharded pair sum: sum over ranks r and owners s of block(rows_r, cols_s, s), (B, P)."""
    grp: Group
    exchange: object
    cols: Columns
    n_rows: int  # the first n_rows Function inputs are the row side, the rest the local columns
    block: Callable  # (rows, cols, owner) -> (B, P)


class BlockGraph(NamedTuple):
    """One block's forward kept for backward: its row and column leaves and its (B, P) output."""
    rows: list
    cols: list
    out: torch.Tensor


def leaves(tensors, needs) -> list[torch.Tensor]:
    return [t.detach().requires_grad_(n) for t, n in zip(tensors, needs)]


class ShardedPairSumFunction(torch.autograd.Function):
    """Forward: this rank's block rows against every owner's column shard, summed over the ranks.
    Backward: each block's gradient of <g, block>; row parts stay here, column parts go back to
    the column shard's owner through the exchange. The block of the rank's own shard keeps its
    graph, and so does every block when the exchange keeps the shards anyway (allgather), so
    backward does not recompute their forward; the ring recomputes each remote block as its shard
    comes round again."""

    @staticmethod
    def forward(ctx, sharded: ShardedSum, *tensors):
        rows, local = tensors[: sharded.n_rows], tensors[sharded.n_rows:]
        needs = ctx.needs_input_grad[1:]
        graphs, partial = {}, []

        def visit(owner, cols):
            if not (any(needs) and (sharded.exchange.keeps_shards or owner == sharded.grp.rank)):
                partial.append(sharded.block(rows, cols, owner))
                return
            with torch.enable_grad():
                r_in, c_in = leaves(rows, needs[: sharded.n_rows]), leaves(cols, needs[sharded.n_rows:])
                out = sharded.block(r_in, c_in, owner)
            graphs[owner] = BlockGraph(r_in, c_in, out)
            partial.append(out.detach())

        ctx.state = sharded.exchange.forward(sharded.grp, sharded.cols, local, visit)
        part = partial[0]
        for p in partial[1:]:
            part = part + p
        part = check.nan_unless_finite(part, *tensors, batched=True)  # each rank rules on the inputs it owns
        ctx.sharded, ctx.graphs = sharded, graphs
        ctx.save_for_backward(*tensors)
        return sum_over_ranks(sharded.grp, part)

    @staticmethod
    def backward(ctx, g):
        if torch.is_grad_enabled():
            raise RuntimeError("implicitdiv.distributed: double backward (create_graph=True) is not supported; "
                               "differentiate the distributed estimators once")
        sharded, tensors = ctx.sharded, ctx.saved_tensors
        rows, local = tensors[: sharded.n_rows], tensors[sharded.n_rows:]
        needs = ctx.needs_input_grad[1:]
        row_needs, col_needs = needs[: sharded.n_rows], needs[sharded.n_rows:]
        g = mean_over_ranks(sharded.grp, g.contiguous())
        row_grads = [None] * sharded.n_rows
        graphs, ctx.graphs = ctx.graphs, {}  # used once: a second backward recomputes

        def visit(owner, cols):
            if owner in graphs:
                r_in, c_in, out = graphs.pop(owner)
            else:
                with torch.enable_grad():
                    r_in, c_in = leaves(rows, row_needs), leaves(cols, col_needs)
                    out = sharded.block(r_in, c_in, owner)
            wanted = [t for t in r_in + c_in if t.requires_grad]
            if not out.requires_grad or not wanted:
                return (None,) * len(c_in)
            found = iter(torch.autograd.grad(out, wanted, g, allow_unused=True))
            grads = [next(found) if t.requires_grad else None for t in r_in + c_in]
            for i, gr in enumerate(grads[: sharded.n_rows]):
                if gr is not None:
                    row_grads[i] = gr if row_grads[i] is None else row_grads[i] + gr
            return tuple(grads[sharded.n_rows:])

        col_grads = sharded.exchange.backward(sharded.grp, sharded.cols, local, ctx.state, visit)
        out = [gr if n else None for gr, n in zip(row_grads, row_needs)]
        out += [gr.clone() if n else None for gr, n in zip(col_grads, col_needs)]
        out = [torch.zeros_like(t) if n and gr is None else gr for t, n, gr in zip(tensors, needs, out)]
        return (None, *out)


def run(sharded: ShardedSum, rows, local) -> torch.Tensor:
    return ShardedPairSumFunction.apply(sharded, *rows, *local)


def pair(x, y, a, b, kernel, bandwidths, backend):
    """sum_ij a_ip k(x_i, y_j) b_jp for one block, (B, P); zeros when a side has no rows."""
    if x.shape[-2] == 0 or y.shape[-2] == 0:
        return a.new_zeros((a.shape[0], a.shape[-1]))
    return ops.kernel_sum(x, y, a, b, kernel, bandwidths, backend)


def sym(x, a, kernel, bandwidths, exclude_diag, backend):
    """sum_ij a_ip k(x_i, x_j) a_jp over the diagonal block (i != j when exclude_diag), (B, P)."""
    if x.shape[-2] == 0:
        return a.new_zeros((a.shape[0], a.shape[-1]))
    return ops.kernel_sum_sym(x, a, kernel, bandwidths, exclude_diag, backend)


def constant_weights(t: torch.Tensor, value: float) -> torch.Tensor:
    return t.new_full((t.shape[0], t.shape[-2], 1), value)


def sharded_sum(grp, exchange, shapes, like, n_rows, block) -> ShardedSum:
    return ShardedSum(grp, EXCHANGE_OF[exchange], Columns(shapes, like.dtype, like.device), n_rows, block)


