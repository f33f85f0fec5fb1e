"""Which threads the C++ kernels run on (csrc/threads.h).

torch runs its CPU ops on an OpenMP runtime whose workers keep spinning for a while after each op.
Threads the kernels start for themselves then share the cores with those spinning workers. When
implicitdiv._C (linked to libgomp.so.1) is bound to the very runtime torch uses, which is the case
when torch's wheel ships libgomp.so.1 and is loaded first, the kernels take their teams from it: the
workers that were spinning do the work. Otherwise (torch on another runtime, a renamed copy, no
OpenMP) they keep starting std::threads, so no second runtime's threads ever compete with torch's.

The test is by address: omp_get_max_threads as _C resolves it against the same symbol looked up
through libtorch_cpu's own dependencies. IMPLICITDIV_THREADS=std forces std::threads.
"""
from __future__ import annotations

import ctypes
import os

import torch

from ... import _C


def torch_openmp_symbol() -> int | None:
    """Address of omp_get_max_threads in the OpenMP runtime libtorch_cpu uses, or None."""
    path = os.path.join(os.path.dirname(torch.__file__), "lib", "libtorch_cpu.so")
    try:
        return ctypes.cast(ctypes.CDLL(path).omp_get_max_threads, ctypes.c_void_p).value
    except (OSError, AttributeError):
        return None


def share_torch_openmp() -> bool:
    """Turn on OpenMP teams when _C's runtime is torch's; returns whether the kernels now use them."""
    ours = _C.openmp_symbol()
    same = ours != 0 and ours == torch_openmp_symbol()
    return _C.use_openmp_team(same and os.environ.get("IMPLICITDIV_THREADS", "") != "std")
