"""Seconds per call of a no-argument function: torch.utils.benchmark on the CPU (at torch's current
thread count), triton.testing.do_bench on CUDA when triton is installed, else CUDA events. Each
returns the median over its own repeats; the harness interleaves calls of several functions and
takes the median of those."""
from __future__ import annotations

import statistics
from collections.abc import Callable

import torch


def cpu_seconds(fn: Callable[[], object], min_time: float) -> float:
    from torch.utils.benchmark import Timer

    timer = Timer(stmt="fn()", globals={"fn": fn}, num_threads=torch.get_num_threads())
    return timer.blocked_autorange(min_run_time=min_time).median


def cuda_seconds(fn: Callable[[], object], min_time: float) -> float:
    try:
        from triton.testing import do_bench
    except ImportError:
        return _cuda_event_seconds(fn, min_time)
    return do_bench(fn, warmup=10, rep=max(1, int(min_time * 1e3)), return_mode="median") / 1e3


def _cuda_event_seconds(fn: Callable[[], object], min_time: float) -> float:
    fn()
    torch.cuda.synchronize()
    times: list[float] = []
    while sum(times) < min_time or len(times) < 3:
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end) / 1e3)
    return statistics.median(times)


def seconds(fn: Callable[[], object], device: str, min_time: float) -> float:
    return cuda_seconds(fn, min_time) if device == "cuda" else cpu_seconds(fn, min_time)
