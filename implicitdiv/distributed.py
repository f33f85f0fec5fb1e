"""Distributed estimators: kernel sums, MMD^2 and the permutation test over samples sharded across
the ranks of a torch.distributed process group.

Running on several processes (torchrun)
---------------------------------------
When one process's samples or memory are not enough, shard the samples across processes. Each rank
passes its own shard of x and of y (shards may differ in size, and a rank may hold none); every
rank gets the same number, equal to the single-process estimator on the concatenation of the
shards in rank order, and backward gives each rank the gradient for its own shard::

    # train.py -- run with: torchrun --nproc_per_node=4 train.py
    import torch, torch.distributed as dist
    import implicitdiv.distributed as idd

    dist.init_process_group("gloo")          # "nccl" for CUDA tensors, one GPU per rank
    x = my_generator(batch_per_rank)          # this rank's shard, (n_r, d)
    y = next(my_data)                         # this rank's shard, (m_r, d)
    loss = idd.mmd2(x, y, kernel="rbf", bandwidth=(0.5, 1.0, 2.0), estimator="unbiased")
    loss.backward()                           # every rank must call backward: it exchanges gradients
    stat, p = idd.mmd_test(x.detach(), y.detach(), permutations=1000, seed=0)
    dist.destroy_process_group()

Several machines: ``torchrun --nnodes=2 --nproc_per_node=8 --rdzv-backend=c10d
--rdzv-endpoint=HOST:29400 train.py`` on each. Functions: ``kernel_sum``, ``mmd2`` (biased and
unbiased) and ``mmd_test``, with the arguments of the single-process ones plus ``group`` (default:
the world), ``exchange`` and ``timeout``.

- Every rank must call the same function with the same kernel, bandwidth, estimator, dtype, feature
  dimension and gradient needs; a small all-gather of this metadata runs first, bounded by
  ``timeout`` seconds, so a mismatch (or a rank rejecting its input) raises a clear error on every
  rank instead of hanging. If a rank never calls, the others raise ``TimeoutError``; the group then
  holds a pending collective and should be destroyed.
- ``exchange="ring"`` (default) passes the shards around a ring of point-to-point sends and holds
  at most two remote shards at a time; ``exchange="allgather"`` gathers every shard at once. Each
  rank receives the other ranks' shards once in the forward pass; the backward pass sends the
  column-side gradients back to their owners (ring: the shards a second time plus the gradients;
  allgather: one all-to-all of the gradients); ``TRAFFIC`` counts the bytes this process sent.
  benchmarks/bench_distributed.py measures both, see benchmarks/RESULTS.md.
- The upstream gradient is averaged over the ranks, so backward computes the gradient of the
  mean over ranks of each rank's loss; when every rank uses the value as is, that is the
  single-process gradient, sliced. Under DistributedDataParallel, which averages parameter
  gradients over the W ranks, multiply this loss term by W to keep its single-process scale.
- Double backward (``create_graph=True``) through the distributed functions is not supported: it
  raises.
- The permutation test draws its permutations globally from ``seed`` (rank 0's random seed when
  None), so it returns the single-process p-value. Every rank holds the (N + M) x (1 + permutations)
  weights, as the single-process test does, and with ``bandwidth="median"`` gathers the pooled
  sample once to take the single-process median.
"""
from __future__ import annotations

import datetime
import math
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.distributed as dist

from . import _validate as check
from .backend import resolve
from .kernel_sums import canonical_weights
from .mmd import ESTIMATORS, median_as_bandwidths, median_bandwidth
from .ops import pairwise as ops
from .reference import pairwise as ref
from .reference.kernels import KERNELS

EXCHANGES = ("ring", "allgather")
DEFAULT_TIMEOUT_S = 60.0

_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
_DEVICE_TYPES = ("cpu", "cuda")
_FIELDS = 32  # metadata integers per rank, the same for every function so mismatched calls still pair up
_MESSAGE_BYTES = 512  # a local error's text, shipped to the other ranks


# ---- traffic ----------------------------------------------------------------------------------

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


# ---- the process group ------------------------------------------------------------------------

@dataclass(frozen=True)
class _Group:
    handle: object  # a ProcessGroup, or None for the world
    rank: int
    world: int
    timeout_s: float

    @staticmethod
    def of(group, timeout) -> "_Group":
        if not (dist.is_available() and dist.is_initialized()):
            raise RuntimeError("torch.distributed is not initialized: call torch.distributed.init_process_group "
                               "first (torchrun sets up the environment it reads)")
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
        handle = None if group is None or group is dist.group.WORLD else group
        rank = dist.get_rank(handle)
        if rank < 0:
            raise ValueError(f"group: this process (global rank {dist.get_rank()}) is not a member of it")
        return _Group(handle, rank, dist.get_world_size(handle), float(timeout))

    def peer(self, rank: int) -> int:
        """The global rank that point-to-point ops address for this group's ``rank``."""
        return rank if self.handle is None else dist.get_global_rank(self.handle, rank)

    def metadata_device(self, like) -> torch.device:
        if isinstance(like, torch.Tensor):
            return like.device
        if "nccl" in str(dist.get_backend(self.handle)) and torch.cuda.is_available():
            return torch.device("cuda", torch.cuda.current_device())
        return torch.device("cpu")


def _gather_in_rank_order(grp: _Group, t: torch.Tensor) -> list[torch.Tensor]:
    out = [torch.empty_like(t) for _ in range(grp.world)]
    dist.all_gather(out, t.contiguous(), group=grp.handle)
    return out


def _sum_over_ranks(grp: _Group, t: torch.Tensor) -> torch.Tensor:
    """sum_r t_r in rank order: the same bits on every rank, run after run."""
    parts = _gather_in_rank_order(grp, t)
    total = parts[0]
    for p in parts[1:]:
        total = total + p
    return total


def _mean_over_ranks(grp: _Group, t: torch.Tensor) -> torch.Tensor:
    return _sum_over_ranks(grp, t) / grp.world


# ---- metadata agreement -----------------------------------------------------------------------

@dataclass(frozen=True)
class _Field:
    label: str  # what the error names, e.g. "x: feature dimension d"
    agree: bool = True
    show: Callable[[int], str] = str


def _dtype_name(code: int) -> str:
    return str(_DTYPES[code]) if 0 <= code < len(_DTYPES) else f"code {code}"


def _device_name(code: int) -> str:
    return _DEVICE_TYPES[code] if 0 <= code < len(_DEVICE_TYPES) else f"code {code}"


def _dtype_code(t: torch.Tensor) -> int:
    return _DTYPES.index(t.dtype) if t.dtype in _DTYPES else len(_DTYPES)


def _device_code(t: torch.Tensor) -> int:
    return _DEVICE_TYPES.index(t.device.type) if t.device.type in _DEVICE_TYPES else len(_DEVICE_TYPES)


def _config_field(**config) -> dict[_Field, int]:
    """The non-tensor arguments, which must agree, as one checksum."""
    label = f"the arguments {tuple(config)}"
    return {_Field(label, show=lambda v: f"checksum {v}"): zlib.crc32(repr(sorted(config.items())).encode())}


_FUNCTION = _Field("the function called (a rank called another implicitdiv.distributed function)")


def _agree(grp: _Group, function: str, like, fields: dict[_Field, int] | None,
           error: Exception | None) -> list[dict[str, int]]:
    """All-gather every rank's metadata, bounded by the timeout, and raise on every rank when a rank
    rejected its input or the ranks disagree. Returns, per rank, the values keyed by field label."""
    items = list(fields.items()) if fields else []
    if len(items) + 2 > _FIELDS:
        raise AssertionError("too many metadata fields")
    header = [1 if error is not None else 0, zlib.crc32(function.encode())] + [v for _, v in items]
    message = (b"" if error is None else f"{type(error).__name__}: {error}".encode())[:_MESSAGE_BYTES]
    buf = torch.zeros(_FIELDS + 1 + _MESSAGE_BYTES // 8, dtype=torch.int64)
    buf[: len(header)] = torch.tensor(header, dtype=torch.int64)
    buf[_FIELDS] = len(message)
    buf[_FIELDS + 1:] = torch.frombuffer(bytearray(message.ljust(_MESSAGE_BYTES, b"\0")), dtype=torch.int64)
    buf = buf.to(grp.metadata_device(like))
    out = [torch.empty_like(buf) for _ in range(grp.world)]
    work = dist.all_gather(out, buf, group=grp.handle, async_op=True)
    try:
        work.wait(timeout=datetime.timedelta(seconds=grp.timeout_s))
    except RuntimeError as exc:
        raise TimeoutError(
            f"implicitdiv.distributed.{function}: rank {grp.rank} waited {grp.timeout_s:g} s for the other ranks' "
            f"metadata; a rank did not make the same call (it crashed, skipped it or ran another collective)"
        ) from exc
    rows = [o.cpu() for o in out]
    if error is not None:
        raise error
    for r, row in enumerate(rows):
        if int(row[0]):
            raise _remote_error(r, bytes(row[_FIELDS + 1:].numpy().tobytes()[: int(row[_FIELDS])]).decode(errors="replace"))
    if len({int(row[1]) for row in rows}) > 1:
        raise RuntimeError(f"implicitdiv.distributed.{function}: {_FUNCTION.label}")
    values = [[int(v) for v in row[2: 2 + len(items)]] for row in rows]
    for i, (field, _) in enumerate(items):
        seen = [v[i] for v in values]
        if field.agree and len(set(seen)) > 1:
            per_rank = ", ".join(f"rank {r}: {field.show(v)}" for r, v in enumerate(seen))
            raise (TypeError if "dtype" in field.label else ValueError)(f"{field.label} differs across ranks ({per_rank})")
    return [{field.label: v[i] for i, (field, _) in enumerate(items)} for v in values]


def _remote_error(rank: int, message: str) -> Exception:
    kind, _, text = message.partition(": ")
    cls = {"ValueError": ValueError, "TypeError": TypeError}.get(kind, RuntimeError)
    return cls(f"rank {rank} rejected its input: {text}")


def _tensor_fields(t: torch.Tensor, name: str) -> dict[_Field, int]:
    return {
        _Field(f"{name}: dims"): t.dim(),
        _Field(f"{name}: batch size B"): t.shape[0] if t.dim() == 3 else 0,
        _Field(f"{name}: feature dimension d"): t.shape[-1],
        _Field(f"{name}: dtype", show=_dtype_name): _dtype_code(t),
        _Field(f"{name}: device type", show=_device_name): _device_code(t),
        _Field(f"{name}: rows", agree=False): t.shape[-2],
    }


def _grad_field(name: str, *tensors) -> dict[_Field, int]:
    needs = torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)
    return {_Field(f"{name}: needs a gradient (requires_grad under grad mode)"): int(needs)}


def _total_rows(values, name: str, minimum: int) -> int:
    total = sum(v[f"{name}: rows"] for v in values)
    if total < minimum:
        raise ValueError(f"{name} has {total} samples over all ranks; at least {minimum} needed")
    return total


def _validated(grp: _Group, function: str, like, local: Callable[[], tuple[dict, object]]):
    """Run the local checks, then agree on the metadata with every rank (errors raise everywhere)."""
    fields, error, result = None, None, None
    try:
        fields, result = local()
    except Exception as exc:  # noqa: BLE001 -- any local failure must reach the other ranks, not strand them
        error = exc
    return _agree(grp, function, like, fields, error), result


# ---- column shards: shapes on every rank, packing into one flat buffer ------------------------

class _Columns:
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


def _owners(grp: _Group) -> list[int]:
    """The order blocks are visited in on this rank: its own shard, then rank - 1, rank - 2, ..."""
    return [(grp.rank - t) % grp.world for t in range(grp.world)]


# ---- exchanges --------------------------------------------------------------------------------

class _AllGather:
    """Gather every rank's shard at once (one all-gather of W padded buffers, kept for backward);
    backward returns the column gradients with one all-to-all. Per rank and pass: (W - 1) padded
    shards received and sent."""

    keeps_shards = True

    def forward(self, grp: _Group, cols: _Columns, local, visit):
        bufs = _gather_in_rank_order(grp, cols.pack(local, grp.rank, cols.width))
        TRAFFIC.add((grp.world - 1) * cols.width * cols.itemsize, grp.world - 1)
        for owner in _owners(grp):
            visit(owner, local if owner == grp.rank else cols.unpack(bufs[owner], owner))
        return bufs

    def backward(self, grp: _Group, cols: _Columns, local, bufs, visit):
        send = torch.zeros(grp.world, cols.width, dtype=cols.dtype, device=cols.device)
        for owner in _owners(grp):
            grads = visit(owner, local if owner == grp.rank else cols.unpack(bufs[owner], owner))
            send[owner] = cols.pack(grads, owner, cols.width)
        recv = torch.empty_like(send)
        dist.all_to_all_single(recv.view(-1), send.view(-1), group=grp.handle)
        TRAFFIC.add((grp.world - 1) * cols.width * cols.itemsize, grp.world - 1)
        total = recv[0]
        for r in range(1, grp.world):
            total = total + recv[r]
        return cols.unpack(total[: cols.numel[grp.rank]], grp.rank)


class _Ring:
    """Pass the shards around the ring rank -> rank + 1, W - 1 steps, the next shard's transfer
    overlapping the current block; at most two remote shards in memory. Backward passes the shards
    around again, each with the gradient accumulated for it so far, which a last step hands back
    to its owner. Per rank: (W - 1) shards forward, (W - 1) shards and W gradients backward."""

    keeps_shards = False

    def _shift(self, grp: _Group, send: torch.Tensor, recv: torch.Tensor, tag: int):
        TRAFFIC.add(send.numel() * send.element_size())
        nxt, prev = grp.peer((grp.rank + 1) % grp.world), grp.peer((grp.rank - 1) % grp.world)
        return dist.batch_isend_irecv([
            dist.P2POp(dist.isend, send, nxt, group=grp.handle, tag=tag),
            dist.P2POp(dist.irecv, recv, prev, group=grp.handle, tag=tag),
        ])

    def _stream(self, grp: _Group, cols: _Columns, local, visit, carry):
        """Visit every shard in ring order; ``carry(owner, visited)`` returns what travels with it."""
        cur = cols.pack(local, grp.rank)
        acc = None
        for t, owner in enumerate(_owners(grp)):
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

    def forward(self, grp: _Group, cols: _Columns, local, visit):
        self._stream(grp, cols, local, visit, lambda owner, result, acc: None)
        return None

    def backward(self, grp: _Group, cols: _Columns, local, state, visit):
        def carry(owner, grads, acc):
            packed = cols.pack(grads, owner)
            return packed if acc is None else acc + packed

        return cols.unpack(self._stream(grp, cols, local, visit, carry), grp.rank)


_EXCHANGE_OF = {"ring": _Ring(), "allgather": _AllGather()}


# ---- the autograd Function --------------------------------------------------------------------

@dataclass(frozen=True)
class _Plan:
    """One sharded pair sum: sum over ranks r and owners s of block(rows_r, cols_s, s), (B, P)."""
    grp: _Group
    exchange: object
    cols: _Columns
    n_rows: int  # the first n_rows Function inputs are the row side, the rest the local columns
    block: Callable  # (rows, cols, owner) -> (B, P)


def _leaves(tensors, needs) -> list[torch.Tensor]:
    return [t.detach().requires_grad_(n) for t, n in zip(tensors, needs)]


class _ShardedPairSum(torch.autograd.Function):
    """Forward: this rank's block rows against every owner's column shard, summed over the ranks.
    Backward: each block's gradient of <g, block>; row parts stay here, column parts go back to
    the column shard's owner through the exchange. The block of the rank's own shard keeps its
    graph, and so does every block when the exchange keeps the shards anyway (allgather), so
    backward does not recompute their forward; the ring recomputes each remote block as its shard
    comes round again."""

    @staticmethod
    def forward(ctx, plan: _Plan, *tensors):
        rows, local = tensors[: plan.n_rows], tensors[plan.n_rows:]
        needs = ctx.needs_input_grad[1:]
        graphs, partial = {}, []

        def visit(owner, cols):
            if not (any(needs) and (plan.exchange.keeps_shards or owner == plan.grp.rank)):
                partial.append(plan.block(rows, cols, owner))
                return
            with torch.enable_grad():
                r_in, c_in = _leaves(rows, needs[: plan.n_rows]), _leaves(cols, needs[plan.n_rows:])
                out = plan.block(r_in, c_in, owner)
            graphs[owner] = (r_in, c_in, out)
            partial.append(out.detach())

        ctx.state = plan.exchange.forward(plan.grp, plan.cols, local, visit)
        part = partial[0]
        for p in partial[1:]:
            part = part + p
        part = check.nan_unless_finite(part, *tensors, batched=True)  # each rank rules on the inputs it owns
        ctx.plan, ctx.graphs = plan, graphs
        ctx.save_for_backward(*tensors)
        return _sum_over_ranks(plan.grp, part)

    @staticmethod
    def backward(ctx, g):
        if torch.is_grad_enabled():
            raise RuntimeError("implicitdiv.distributed: double backward (create_graph=True) is not supported; "
                               "differentiate the distributed estimators once")
        plan, tensors = ctx.plan, ctx.saved_tensors
        rows, local = tensors[: plan.n_rows], tensors[plan.n_rows:]
        needs = ctx.needs_input_grad[1:]
        row_needs, col_needs = needs[: plan.n_rows], needs[plan.n_rows:]
        g = _mean_over_ranks(plan.grp, g.contiguous())
        row_grads = [None] * plan.n_rows
        graphs, ctx.graphs = ctx.graphs, {}  # used once: a second backward recomputes

        def visit(owner, cols):
            if owner in graphs:
                r_in, c_in, out = graphs.pop(owner)
            else:
                with torch.enable_grad():
                    r_in, c_in = _leaves(rows, row_needs), _leaves(cols, col_needs)
                    out = plan.block(r_in, c_in, owner)
            wanted = [t for t in r_in + c_in if t.requires_grad]
            if not out.requires_grad or not wanted:
                return (None,) * len(c_in)
            found = iter(torch.autograd.grad(out, wanted, g, allow_unused=True))
            grads = [next(found) if t.requires_grad else None for t in r_in + c_in]
            for i, gr in enumerate(grads[: plan.n_rows]):
                if gr is not None:
                    row_grads[i] = gr if row_grads[i] is None else row_grads[i] + gr
            return tuple(grads[plan.n_rows:])

        col_grads = plan.exchange.backward(plan.grp, plan.cols, local, ctx.state, visit)
        out = [gr if n else None for gr, n in zip(row_grads, row_needs)]
        out += [gr.clone() if n else None for gr, n in zip(col_grads, col_needs)]
        out = [torch.zeros_like(t) if n and gr is None else gr for t, n, gr in zip(tensors, needs, out)]
        return (None, *out)


def _run(plan: _Plan, rows, local) -> torch.Tensor:
    return _ShardedPairSum.apply(plan, *rows, *local)


# ---- blocks -----------------------------------------------------------------------------------

def _pair(x, y, a, b, kernel, bandwidths, backend):
    """sum_ij a_ip k(x_i, y_j) b_jp for one block, (B, P); zeros when a side has no rows."""
    if x.shape[-2] == 0 or y.shape[-2] == 0:
        return a.new_zeros((a.shape[0], a.shape[-1]))
    return ops.kernel_sum(x, y, a, b, kernel, bandwidths, backend)


def _sym(x, a, kernel, bandwidths, exclude_diag, backend):
    """sum_ij a_ip k(x_i, x_j) a_jp over the diagonal block (i != j when exclude_diag), (B, P)."""
    if x.shape[-2] == 0:
        return a.new_zeros((a.shape[0], a.shape[-1]))
    return ops.kernel_sum_sym(x, a, kernel, bandwidths, exclude_diag, backend)


def _weights(t: torch.Tensor, value: float) -> torch.Tensor:
    return t.new_full((t.shape[0], t.shape[-2], 1), value)


def _plan(grp, exchange, shapes, like, n_rows, block) -> _Plan:
    return _Plan(grp, _EXCHANGE_OF[exchange], _Columns(shapes, like.dtype, like.device), n_rows, block)


# ---- public functions -------------------------------------------------------------------------

X_ROWS, Y_ROWS = "x: rows", "y: rows"


def kernel_sum(x, y, *, kernel="rbf", bandwidth=1.0, x_weights=None, y_weights=None, backend=None,
               group=None, exchange="ring", timeout=DEFAULT_TIMEOUT_S, degree=3, gamma=None, coef0=1.0):
    """sum_ij a_i k(x_i, y_j) b_j over all pairs of the samples sharded across the ranks of ``group``.

    x = [x_0; ...; x_{W-1}] and y = [y_0; ...] are the concatenations of the ranks' shards, a and b
    of their weights; rank r computes its block rows sum_{i in x_r} a_i sum_j k(x_i, y_j) b_j with the
    local backend while the y shards stream past, and the sum over ranks goes to every rank.

    Args as implicitdiv.kernel_sum, for this rank's shard (n_r = 0 rows allowed), plus:
        group: the process group (None: the world).
        exchange: "ring" (point-to-point, one remote shard at a time) or "allgather".
        timeout: seconds to wait for the other ranks' metadata before raising TimeoutError.
    Returns the global sum, identical on every rank; backward gives this rank's shards' gradients.
    """
    grp = _Group.of(group, timeout)
    symmetric = y is x and y_weights is x_weights

    def local():
        check.choice(kernel, "kernel", KERNELS)
        check.choice(exchange, "exchange", EXCHANGES)
        check.matching_samples(x, y, allow_empty=True)
        bandwidths = check.kernel_parameters(kernel, bandwidth, x.shape[-1], degree, gamma, coef0)
        batched = x.dim() == 3
        a, a_cols = canonical_weights(x_weights, "x_weights", x, batched)
        b, b_cols = canonical_weights(y_weights, "y_weights", y, batched)
        if a_cols and b_cols and a.shape[-1] != b.shape[-1]:
            raise ValueError(f"x_weights has P = {a.shape[-1]} columns but y_weights has P = {b.shape[-1]}")
        name = resolve(backend, "kernel_sum", x.device)
        fields = {**_config_field(kernel=kernel, bandwidth=bandwidths, exchange=exchange),
                  **_tensor_fields(x, "x"), **_tensor_fields(y, "y"),
                  _Field("y is x and y_weights is x_weights (a symmetric call)"): int(symmetric),
                  _Field("x_weights: given (None on some ranks)"): int(x_weights is not None),
                  _Field("y_weights: given (None on some ranks)"): int(y_weights is not None),
                  _Field("x_weights: weight columns P"): a.shape[-1] if a_cols else 0,
                  _Field("y_weights: weight columns P"): b.shape[-1] if b_cols else 0,
                  **_grad_field("x", x), **_grad_field("y", y),
                  **_grad_field("x_weights", x_weights), **_grad_field("y_weights", y_weights)}
        return fields, (bandwidths, name, batched, a, b, a_cols or b_cols)

    values, (bandwidths, name, batched, a, b, has_cols) = _validated(grp, "kernel_sum", x, local)
    _total_rows(values, "x", 1)
    _total_rows(values, "y", 1)
    p = max(a.shape[-1], b.shape[-1])
    xb, yb = (x, y) if batched else (x.unsqueeze(0), y.unsqueeze(0))
    a, b = a.expand(-1, -1, p), b.expand(-1, -1, p)
    bsz, d = xb.shape[0], xb.shape[-1]

    def block(rows, cols, owner):
        (xr, ar), (yc, bc) = rows, cols
        if symmetric and owner == grp.rank:
            return _sym(xr, ar, kernel, bandwidths, False, name)
        return _pair(xr, yc, ar, bc, kernel, bandwidths, name)

    shapes = [[(bsz, v[Y_ROWS], d), (bsz, v[Y_ROWS], p)] for v in values]
    out = _run(_plan(grp, exchange, shapes, xb, 2, block), (xb, a), (xb, a) if symmetric else (yb, b))
    out = out if has_cols else out[..., 0]
    return out if batched else out[0]


def mmd2(x, y, *, kernel="rbf", bandwidth=1.0, estimator="biased", backend=None, group=None, exchange="ring",
         timeout=DEFAULT_TIMEOUT_S, degree=3, gamma=None, coef0=1.0):
    """Squared MMD between the samples sharded across the ranks of ``group``:

    biased:   1/N^2 sum_ij k(x_i,x_j) + 1/M^2 sum_ij k(y_i,y_j) - 2/(NM) sum_ij k(x_i,y_j)
    unbiased: the same with the i = j terms of the first two sums left out, over N(N-1) and M(M-1)

    with N = sum_r n_r and M = sum_r m_r the global sample counts; rank r computes the rows of x_r and
    y_r against every shard. The linear-time estimate pairs neighbouring rows and is O(N) already:
    compute it on each rank's shard instead. Arguments as implicitdiv.mmd2 plus group, exchange and
    timeout as in kernel_sum. Returns the global value, identical on every rank (a scalar, or (B,)).
    """
    grp = _Group.of(group, timeout)

    def local():
        check.choice(kernel, "kernel", KERNELS)
        check.choice(exchange, "exchange", EXCHANGES)
        check.choice(estimator, "estimator", ESTIMATORS)
        if estimator == "linear":
            raise ValueError("estimator='linear' is not distributed: it is O(N) per shard, call implicitdiv.mmd2 "
                             "on each rank's shard; use 'biased' or 'unbiased' here")
        check.matching_samples(x, y, allow_empty=True)
        bandwidths = check.kernel_parameters(kernel, bandwidth, x.shape[-1], degree, gamma, coef0)
        name = resolve(backend, "mmd2", x.device)
        fields = {**_config_field(kernel=kernel, bandwidth=bandwidths, estimator=estimator, exchange=exchange),
                  **_tensor_fields(x, "x"), **_tensor_fields(y, "y"), **_grad_field("x", x), **_grad_field("y", y)}
        return fields, (bandwidths, name)

    values, (bandwidths, name) = _validated(grp, "mmd2", x, local)
    unbiased = estimator == "unbiased"
    n = _total_rows(values, "x", 2 if unbiased else 1)
    m = _total_rows(values, "y", 2 if unbiased else 1)
    batched = x.dim() == 3
    xb, yb = (x, y) if batched else (x.unsqueeze(0), y.unsqueeze(0))
    wx = 1.0 / math.sqrt(n * (n - 1)) if unbiased else 1.0 / n
    wy = 1.0 / math.sqrt(m * (m - 1)) if unbiased else 1.0 / m
    args = (kernel, bandwidths)

    def block(rows, cols, owner):
        (xr, yr), (xc, yc) = rows, cols
        if owner == grp.rank:
            kxx = _sym(xr, _weights(xr, wx), *args, unbiased, name)
            kyy = _sym(yr, _weights(yr, wy), *args, unbiased, name)
        else:
            kxx = _pair(xr, xc, _weights(xr, wx), _weights(xc, wx), *args, name)
            kyy = _pair(yr, yc, _weights(yr, wy), _weights(yc, wy), *args, name)
        kxy = _pair(xr, yc, _weights(xr, 1.0 / n), _weights(yc, -2.0 / m), *args, name)
        return kxx + kyy + kxy

    bsz, d = xb.shape[0], xb.shape[-1]
    shapes = [[(bsz, v[X_ROWS], d), (bsz, v[Y_ROWS], d)] for v in values]
    out = _run(_plan(grp, exchange, shapes, xb, 2, block), (xb, yb), (xb, yb))[..., 0]
    return out if batched else out[0]


def mmd_test(x, y, *, kernel="rbf", bandwidth="median", permutations=1000, seed=None, backend=None, group=None,
             exchange="ring", timeout=DEFAULT_TIMEOUT_S, degree=3, gamma=None, coef0=1.0):
    """Permutation two-sample test of H0: P = Q with the biased MMD^2, over samples sharded across ranks.

    The pooled sample z = [x_0; ...; x_{W-1}; y_0; ...; y_{W-1}] and the weights
    W = implicitdiv.reference.pairwise.permutation_weights(N, M, permutations, seed) are those of the
    single-process test on the concatenations; every statistic diag(W^T K W) is summed over the
    ranks' block rows of z. p = (1 + #{null >= observed}) / (1 + permutations), the single-process
    p-value for the same seed (seed None: rank 0 draws one for all).

    x: (n_r, d), y: (m_r, d) this rank's shards; other arguments as implicitdiv.mmd_test, plus group,
    exchange and timeout as in kernel_sum. Returns (statistic, p_value), identical on every rank.
    """
    grp = _Group.of(group, timeout)

    def local():
        check.choice(kernel, "kernel", KERNELS)
        check.choice(exchange, "exchange", EXCHANGES)
        check.positive_int(permutations, "permutations")
        if seed is not None:
            check.positive_int(seed, "seed", minimum=0)
        check.matching_samples(x, y, allow_empty=True)
        bandwidths = check.kernel_parameters(kernel, bandwidth, x.shape[-1], degree, gamma, coef0, median_ok=True)
        bandwidths = "median" if bandwidths is None else bandwidths
        if x.dim() != 2:
            raise ValueError(f"mmd_test takes (N, d) samples, got x of shape {tuple(x.shape)}")
        name = resolve(backend, "mmd_test", x.device)
        drawn = torch.seed() % (2**63) if seed is None else seed
        fields = {**_config_field(kernel=kernel, bandwidth=bandwidths, permutations=permutations, seed=seed,
                                  exchange=exchange),
                  **_tensor_fields(x, "x"), **_tensor_fields(y, "y"), _Field("seed", agree=False): drawn}
        return fields, (bandwidths, name)

    values, (bandwidths, name) = _validated(grp, "mmd_test", x, local)
    n, m = _total_rows(values, "x", 1), _total_rows(values, "y", 1)
    x, y = x.detach(), y.detach()
    d = x.shape[-1]
    with torch.no_grad():
        if bandwidths == "median":
            bandwidths = _median_bandwidths(grp, x, y, values)
        w = ref.permutation_weights(n, m, permutations, values[0]["seed"], x.dtype, x.device)
        x_start = [sum(v[X_ROWS] for v in values[:r]) for r in range(grp.world)]
        y_start = [n + sum(v[Y_ROWS] for v in values[:r]) for r in range(grp.world)]
        weights = [w[torch.cat([torch.arange(x_start[r], x_start[r] + v[X_ROWS]),
                                torch.arange(y_start[r], y_start[r] + v[Y_ROWS])]).to(w.device)].unsqueeze(0)
                   for r, v in enumerate(values)]

        def block(rows, cols, owner):
            (zr,), (zc,) = rows, cols
            if owner == grp.rank:
                return _sym(zr, weights[owner], kernel, bandwidths, False, name)
            return _pair(zr, zc, weights[grp.rank], weights[owner], kernel, bandwidths, name)

        z = torch.cat([x, y]).unsqueeze(0)
        plan = _plan(grp, exchange, [[(1, v[X_ROWS] + v[Y_ROWS], d)] for v in values], z, 1, block)
        stats = _run(plan, (z,), (z,))[0]
        return stats[0], ref.p_value(stats)


def _median_bandwidths(grp: _Group, x, y, values) -> tuple[float]:
    """implicitdiv.mmd_test's bandwidth="median" on the concatenated shards (gathered once)."""
    d = x.shape[-1]
    pooled = _Columns([[(v[X_ROWS], d), (v[Y_ROWS], d)] for v in values], x.dtype, x.device)
    gathered = _gather_in_rank_order(grp, pooled.pack((x, y), grp.rank, pooled.width))
    TRAFFIC.add((grp.world - 1) * pooled.width * pooled.itemsize, grp.world - 1)
    shards = [pooled.unpack(g, r) for r, g in enumerate(gathered)]
    return median_as_bandwidths(median_bandwidth(torch.cat([s[0] for s in shards]), torch.cat([s[1] for s in shards])))
