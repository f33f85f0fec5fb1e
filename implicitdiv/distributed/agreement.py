"""Metadata agreement: before any data moves, every rank all-gathers a few integers describing its
call (function, arguments, shapes, dtypes, gradient needs) and a local error's text, bounded by the
timeout, so that a mismatch or a rejected input raises a clear error on every rank instead of hanging."""
from __future__ import annotations

import datetime
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.distributed as dist

from .group import Group

DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
DEVICE_TYPES = ("cpu", "cuda")
FIELDS = 32  # metadata integers per rank, the same for every function so mismatched calls still pair up
MESSAGE_BYTES = 512  # a local error's text, shipped to the other ranks


@dataclass(frozen=True)
class Field:
    label: str  # what the error names, e.g. "x: feature dimension d"
    agree: bool = True
    show: Callable[[int], str] = str


def dtype_name(code: int) -> str:
    return str(DTYPES[code]) if 0 <= code < len(DTYPES) else f"code {code}"


def device_name(code: int) -> str:
    return DEVICE_TYPES[code] if 0 <= code < len(DEVICE_TYPES) else f"code {code}"


def dtype_code(t: torch.Tensor) -> int:
    return DTYPES.index(t.dtype) if t.dtype in DTYPES else len(DTYPES)


def device_code(t: torch.Tensor) -> int:
    return DEVICE_TYPES.index(t.device.type) if t.device.type in DEVICE_TYPES else len(DEVICE_TYPES)


def config_field(**config) -> dict[Field, int]:
    """The non-tensor arguments, which must agree, as one checksum."""
    label = f"the arguments {tuple(config)}"
    return {Field(label, show=lambda v: f"checksum {v}"): zlib.crc32(repr(sorted(config.items())).encode())}


FUNCTION = Field("the function called (a rank called another implicitdiv.distributed function)")


def agree(grp: Group, function: str, like, fields: dict[Field, int] | None,
           error: Exception | None) -> list[dict[str, int]]:
    """All-gather every rank's metadata, bounded by the timeout, and raise on every rank when a rank
    rejected its input or the ranks disagree. Returns, per rank, the values keyed by field label."""
    items = list(fields.items()) if fields else []
    if len(items) + 2 > FIELDS:
        raise AssertionError("too many metadata fields")
    header = [1 if error is not None else 0, zlib.crc32(function.encode())] + [v for _, v in items]
    message = (b"" if error is None else f"{type(error).__name__}: {error}".encode())[:MESSAGE_BYTES]
    buf = torch.zeros(FIELDS + 1 + MESSAGE_BYTES // 8, dtype=torch.int64)
    buf[: len(header)] = torch.tensor(header, dtype=torch.int64)
    buf[FIELDS] = len(message)
    buf[FIELDS + 1:] = torch.frombuffer(bytearray(message.ljust(MESSAGE_BYTES, b"\0")), dtype=torch.int64)
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
            raise remote_error(r, bytes(row[FIELDS + 1:].numpy().tobytes()[: int(row[FIELDS])]).decode(errors="replace"))
    if len({int(row[1]) for row in rows}) > 1:
        raise RuntimeError(f"implicitdiv.distributed.{function}: {FUNCTION.label}")
    values = [[int(v) for v in row[2: 2 + len(items)]] for row in rows]
    for i, (field, _) in enumerate(items):
        seen = [v[i] for v in values]
        if field.agree and len(set(seen)) > 1:
            per_rank = ", ".join(f"rank {r}: {field.show(v)}" for r, v in enumerate(seen))
            raise (TypeError if "dtype" in field.label else ValueError)(f"{field.label} differs across ranks ({per_rank})")
    return [{field.label: v[i] for i, (field, _) in enumerate(items)} for v in values]


def remote_error(rank: int, message: str) -> Exception:
    kind, _, text = message.partition(": ")
    cls = {"ValueError": ValueError, "TypeError": TypeError}.get(kind, RuntimeError)
    return cls(f"rank {rank} rejected its input: {text}")


def tensor_fields(t: torch.Tensor, name: str) -> dict[Field, int]:
    return {
        Field(f"{name}: dims"): t.dim(),
        Field(f"{name}: batch size B"): t.shape[0] if t.dim() == 3 else 0,
        Field(f"{name}: feature dimension d"): t.shape[-1],
        Field(f"{name}: dtype", show=dtype_name): dtype_code(t),
        Field(f"{name}: device type", show=device_name): device_code(t),
        Field(f"{name}: rows", agree=False): t.shape[-2],
    }


def grad_field(name: str, *tensors) -> dict[Field, int]:
    needs = torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)
    return {Field(f"{name}: needs a gradient (requires_grad under grad mode)"): int(needs)}


def total_rows(values, name: str, minimum: int) -> int:
    total = sum(v[f"{name}: rows"] for v in values)
    if total < minimum:
        raise ValueError(f"{name} has {total} samples over all ranks; at least {minimum} needed")
    return total


def validated(grp: Group, function: str, like, local: Callable[[], tuple[dict, object]]):
    """Run the local checks, then agree on the metadata with every rank (errors raise everywhere)."""
    fields, error, result = None, None, None
    try:
        fields, result = local()
    except Exception as exc:  # noqa: BLE001 -- any local failure must reach the other ranks, not strand them
        error = exc
    return agree(grp, function, like, fields, error), result


