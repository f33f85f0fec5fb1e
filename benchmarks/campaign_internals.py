"""Everything the GPU campaign takes from outside the public API, named in this one place, so that a
change to the kernels, the tests or the other benchmarks breaks here and nowhere else.

The campaign itself calls the public functions (implicitdiv.mmd2 etc. with backend="triton").
"""
from __future__ import annotations

import contextlib
import dataclasses

import torch

# naive forms and work counts of the CPU benchmarks: the same baselines on the GPU
from benchmarks.bench_losses import _gaussian_variants, _ratio_variants, _step  # noqa: F401
from benchmarks.bench_pairwise import _keops_mmd2, _naive_mmd2, _one_pass, engine_work, estimated_gib  # noqa: F401
from benchmarks.bench_pairwise import floor_seconds  # noqa: F401
from implicitdiv.reference import ratio as ref_ratio
# the harness's comparison and its one table of tolerances
from implicitdiv.testing import TOLERANCES, assert_close  # noqa: F401



def ratio_loss_scales(function, tensors, kwargs) -> dict:
    """Error scale of each reduced output of a ratio loss: the reduction of |terms| (a mean of +-1e4
    logits cancels to a small value), finite terms only."""
    t = {k: torch.as_tensor(v, dtype=torch.float64) for k, v in tensors.items()}

    def size(x, mean=True):
        x = x.abs()[torch.isfinite(x)]
        return float(x.mean() if mean else x.sum()) if x.numel() else 0.0

    mean = kwargs.get("reduction", "mean") == "mean"
    if kwargs.get("reduction") == "none":
        return {}
    if function == "ratio_matching_loss":
        return {"out0": size(t["r_p"]) + size(0.5 * t["r_q"] ** 2)}
    if function == "fdiv_estimate":
        d = kwargs["divergence"]
        return {"out0": size(ref_ratio.activation(t["real"], d)) + size(ref_ratio.conjugate_of_activation(t["fake"], d))}
    kind = kwargs["kind"]
    scales = {}
    if function in ("discriminator_loss", "adversarial_losses"):
        tr, tf = ref_ratio.discriminator_terms(t["real"], t["fake"], kind)
        scales["out0"] = size(tr, mean) + size(tf, mean)
    if function in ("generator_loss", "adversarial_losses"):
        g = size(ref_ratio.generator_terms(t["fake"], kind, kwargs["saturating"]), mean)
        scales["out1" if function == "adversarial_losses" else "out0"] = g
    return scales


TRITON_PAIRWISE = "implicitdiv.fused.triton.pairwise"  # has blocks(launch, device, d, p, dtype) -> Blocks
TRITON_RATIO = "implicitdiv.fused.triton.ratio"  # has BLOCK and FINAL_BLOCK, the loss kernels' block sizes
LAUNCHES = ("rows", "grad", "mixture", "mixture_grad")  # the launch names blocks() takes
TILE_FIELDS = ("rows", "cols", "warps")  # the fields of Blocks the sweep varies


def _module(name):
    import importlib

    return importlib.import_module(name)


def blocks(launch: str, device: torch.device, d: int, p: int, dtype: torch.dtype):
    """The tiles the launcher picks for one launch (the lead's tile-choosing function)."""
    return _module(TRITON_PAIRWISE).blocks(launch, device, d, p, dtype)


def tile_sizes(device: torch.device) -> dict:
    """The tile edges a launch can fall on for this device: row/column tiles, the feature chunk, the
    output-feature block, the weight-column tile (P > 2)."""
    found = {"rowcol": set(), "feat": set(), "out_feat": set(), "weights": set()}
    for dtype in (torch.float32, torch.float64):
        for d in (16, 256):
            for launch in LAUNCHES:
                b = blocks(launch, device, d, 64, dtype)
                found["rowcol"] |= {b.rows, b.cols}
                found["feat"].add(b.feat)
                found["out_feat"].add(b.out_feat)
                if launch == "rows":
                    found["weights"].add(b.weights)
    return {k: sorted(v) for k, v in found.items()}


def triton_functions() -> frozenset[str]:
    """The public functions the Triton backend implements (the backend resolver's registry)."""
    return _module("implicitdiv.ops.registry").IMPLEMENTED["triton"]


def loss_blocks() -> tuple[int, int]:
    """(BLOCK, FINAL_BLOCK) of the fused loss kernels: the sizes the loss cases cross."""
    mod = _module(TRITON_RATIO)
    return mod.BLOCK, mod.FINAL_BLOCK


@contextlib.contextmanager
def tiles_overridden(launch: str, **fields):
    """Within the block, blocks() answers `launch` with its own choice with `fields` replaced.
    Yields a list that records one entry per call it answered, so the caller can check that the
    launcher still consults blocks() (an empty list means the sweep measured the defaults)."""
    mod = _module(TRITON_PAIRWISE)
    original = mod.blocks
    used = []

    def patched(which, *args, **kwargs):
        chosen = original(which, *args, **kwargs)
        if which != launch:
            return chosen
        used.append(which)
        return dataclasses.replace(chosen, **fields)

    mod.blocks = patched
    try:
        yield used
    finally:
        mod.blocks = original
