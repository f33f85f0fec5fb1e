"""The floors of the campaign, measured on the device in the same run: matrix-product rate per
precision (torch.matmul of random n x n operands), the exp rate of the special-function units (a
Triton kernel of independent exp chains held in registers, so memory does not bound it), and the
bandwidth of a large device-to-device copy (bytes read plus bytes written).

Before they are measured (and for the GPU-time plan, `--plan`), estimates use VENDOR_PEAKS.
"""
from __future__ import annotations

import contextlib
import warnings

import torch
import triton
import triton.language as tl

from .campaign_core import Section, SectionResult, register, time_interleaved

# NVIDIA H200 SXM datasheet, dense (the same SMs and clocks as the H100 SXM); exp: 132 SMs x 16
# special-function lanes x 1.98 GHz. These are leads for the estimates, not measurements.
VENDOR_PEAKS = {"gemm_fp32": 67e12, "gemm_tf32": 495e12, "gemm_bf16": 989e12, "gemm_fp16": 989e12,
                "gemm_fp64": 67e12, "exp_per_s": 4.2e12, "copy_bytes_per_s": 4.8e12}
# what the dry run assumes for its (tiny, interpreted) estimates
DRY_RUN_RATES = {"gemm_fp32": 2e10, "gemm_tf32": 2e10, "gemm_bf16": 1e10, "gemm_fp16": 1e10, "gemm_fp64": 1e10,
                 "exp_per_s": 1e7, "copy_bytes_per_s": 5e9}
PRECISIONS = {"fp32": torch.float32, "tf32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16,
              "fp64": torch.float64}


def rates(ctx) -> dict:
    """The measured floors, or the peaks assumed before they are measured."""
    return ctx.floors or (DRY_RUN_RATES if ctx.dry_run else VENDOR_PEAKS)


def gemm_rate(ctx, dtype: torch.dtype, precision: str = "ieee") -> float:
    """The matrix-product rate of the precision a pairwise kernel computes its dot products in."""
    key = {torch.float64: "fp64", torch.bfloat16: "bf16", torch.float16: "fp16"}.get(
        dtype, "tf32" if precision == "tf32" else "fp32")
    return rates(ctx)["gemm_" + key]


@contextlib.contextmanager
def tf32_matmul(on: bool):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        before = torch.backends.cuda.matmul.allow_tf32
        torch.backends.cuda.matmul.allow_tf32 = on
        try:
            yield
        finally:
            torch.backends.cuda.matmul.allow_tf32 = before


@triton.jit
def exp_chains_kernel(x_ptr, out_ptr, n, ITERS: tl.constexpr, BLOCK: tl.constexpr):
    """Four independent chains v <- exp(-v) per element, ITERS steps each: 4 * ITERS exps."""
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    a = tl.load(x_ptr + offs, mask=mask, other=0.0)
    b = a + 0.5
    c = a + 0.25
    d = a + 0.125
    for _ in range(ITERS):
        a = tl.exp(-a)
        b = tl.exp(-b)
        c = tl.exp(-c)
        d = tl.exp(-d)
    tl.store(out_ptr + offs, a + b + c + d, mask=mask)


def _sizes(ctx) -> dict:
    if ctx.dry_run:
        return {"matmul": 64, "exp_n": 1024, "exp_iters": 4, "copy_bytes": 2**20}
    return {"matmul": 8192, "exp_n": 2**22, "exp_iters": 256, "copy_bytes": 2**30}


def measure(ctx) -> tuple[dict, list[dict]]:
    dev, sz = ctx.device, _sizes(ctx)
    gen = torch.Generator(device=dev).manual_seed(0)
    n = sz["matmul"]
    calls, flops = {}, 2.0 * n**3
    for name, dtype in PRECISIONS.items():
        a = torch.randn(n, n, device=dev, generator=gen).to(dtype)  # random data, never zeros
        b = torch.randn(n, n, device=dev, generator=gen).to(dtype)

        def mm(a=a, b=b, tf32=name == "tf32"):
            with tf32_matmul(tf32):
                torch.matmul(a, b)
        calls["gemm_" + name] = mm
    x = torch.rand(sz["exp_n"], device=dev, generator=gen)
    y = torch.empty_like(x)
    block = 1024 if dev.type == "cuda" else 256
    calls["exp_per_s"] = lambda: exp_chains_kernel[(triton.cdiv(x.numel(), block),)](
        x, y, x.numel(), ITERS=sz["exp_iters"], BLOCK=block)
    src = torch.rand(sz["copy_bytes"] // 4, device=dev, generator=gen)
    dst = torch.empty_like(src)
    calls["copy_bytes_per_s"] = lambda: dst.copy_(src)
    timings = time_interleaved(calls, ctx, min_reps=5, max_reps=20, target_s=0.3)
    work = {**{k: flops for k in calls if k.startswith("gemm_")}, "exp_per_s": 4.0 * sz["exp_iters"] * x.numel(),
            "copy_bytes_per_s": 2.0 * sz["copy_bytes"]}
    floors = {k: work[k] / t.median_s for k, t in timings.items()}
    rows = [{"floor": k, "measured": floors[k], "vendor peak": VENDOR_PEAKS[k],
             "measured / peak": floors[k] / VENDOR_PEAKS[k], "median ms": 1e3 * timings[k].median_s,
             "reps": timings[k].reps} for k in floors]
    return floors, rows


def _run(ctx) -> SectionResult:
    floors, rows = measure(ctx)
    ctx.floors = floors
    line = ", ".join(f"{k[5:]} {floors[k] * 1e-12:.3g}" for k in floors if k.startswith("gemm_")) + (
        f" TFLOP/s; exp {floors['exp_per_s'] * 1e-12:.3g} T/s; copy {floors['copy_bytes_per_s'] * 1e-12:.3g} TB/s")
    return SectionResult(rows=rows, summary=[{"what": "matmul, exp, copy rates", "result": line}],
                         notes=["matmul: torch.matmul of random n x n operands (n = %d), tf32 via allow_tf32; "
                                "exp: 4 independent exp chains per element in registers (Triton); copy: "
                                "read + write bytes of a device-to-device copy" % _sizes(ctx)["matmul"]])


register(Section("floors", 30, lambda ctx: 2.0 if ctx.dry_run else 12.0, _run,
                 "matmul TFLOP/s per precision, exp rate and copy bandwidth, measured here"))
