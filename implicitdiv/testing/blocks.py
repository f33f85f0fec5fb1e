"""Where every fused kernel of implicitdiv cuts its work into blocks, and sizes on both sides of each
boundary (one block, two, more than two), for strategies that cross them.

The Triton sizes are read from the kernel modules when triton is installed; the C++ ones are the
constants of csrc/ (tests/test_harness.py checks them against the sources).
"""
from __future__ import annotations

import importlib.util

# csrc/pairwise_tiles.h: a tile is NV = 4 vectors of Lanes<T>::W (16 float32 / 8 float64) columns;
# csrc/pairwise_engine.h: lane accumulators flushed every kFlushEvery = 16 column tiles;
# csrc/pairwise_fused.h: column buffers per kRowTilesPerChunk = 16 row tiles, at least kMinChunks = 4.
CPP_PAIR_TILE = {"float32": 64, "float64": 32}
CPP_FLUSH_TILES = 16
CPP_ROW_TILES_PER_CHUNK = 16
CPP_REGISTER_ROWS = 4  # csrc/pairwise_tiles.h RB: rows per register block
CPP_NARROW_FEATURES = 8  # csrc/pairwise_engine.h: features shorter than this are contracted lane-wise
# csrc/losses_ratio.cpp: kBlock = 1024 elements per cache block, kChunk = 16 kBlock per partial sum.
CPP_RATIO_BLOCK = 1024
CPP_RATIO_CHUNK = 16 * 1024
# csrc/losses_gaussian.cpp: kBlock = 512 columns per block, kChunkElems = 16384 elements per partial.
CPP_GAUSSIAN_COLUMNS = 512
CPP_GAUSSIAN_CHUNK = 16384


def _triton_constants() -> dict:
    if importlib.util.find_spec("triton") is None:
        return {"pair_tile": 16, "ratio_block": 1024, "final_block": 1024, "gaussian_program": 16384,
                "gaussian_columns": 128}
    from ..fused.triton import ratio as tr

    return {"pair_tile": 16, "ratio_block": tr.BLOCK, "final_block": tr.FINAL_BLOCK, "gaussian_program": 16384,
            "gaussian_columns": 128}


TRITON = _triton_constants()  # the interpreter's tiles (implicitdiv.fused.triton.pairwise.blocks)


def around(block: int, blocks: int = 3) -> list[int]:
    """Sizes next to each multiple of `block` up to blocks + 1 of them: k B - 1, k B, k B + 1."""
    out = []
    for k in range(1, blocks + 1):
        out += [k * block - 1, k * block, k * block + 1]
    return sorted({s for s in out if s >= 1})


def pairwise_rows() -> list[int]:
    """Point counts crossing the pairwise tiles: Triton's 16, the C++ tiles of 32 and 64 rows and
    its register blocks of 4, more than two of each."""
    sizes = {1, 2, 3, 5, 7}
    for tile in (TRITON["pair_tile"], *CPP_PAIR_TILE.values()):
        sizes.update(around(tile, 3))
    return sorted(sizes)


def pairwise_long() -> list[int]:
    """Column counts past the C++ engine's lane-accumulator flushes (every 16 column tiles: 1024
    float32 / 512 float64 columns), more than two of them."""
    return sorted({*around(CPP_FLUSH_TILES * CPP_PAIR_TILE["float64"], 3), CPP_FLUSH_TILES * 64 * 2 + 1,
                   CPP_FLUSH_TILES * 64 * 2 + 65})


def elementwise_sizes() -> list[int]:
    """Element counts crossing the ratio kernels' blocks (Triton 1024, C++ 1024 and chunks of 16384)."""
    sizes = {1, 2, 3, 7}
    sizes.update(around(TRITON["ratio_block"], 3))
    sizes.update(around(CPP_RATIO_CHUNK, 3))
    return sorted(sizes)


def huge_elementwise() -> int:
    """More than two of the Triton finalizer's blocks of partial sums (FINAL_BLOCK partials of BLOCK
    elements each)."""
    return 2 * TRITON["final_block"] * TRITON["ratio_block"] + TRITON["ratio_block"] + 1


def gaussian_dims() -> list[int]:
    """Latent dims crossing the column blocks: Triton's 128-wide, the C++ engine's 512."""
    return sorted({1, 2, 3, 17, *around(TRITON["gaussian_columns"], 2), *around(CPP_GAUSSIAN_COLUMNS, 2)})


def gaussian_rows(d: int) -> list[int]:
    """Row counts crossing the programs (Triton: 16384 elements / the column block per program) and
    the C++ partial sums (16384 // d rows each), more than two of each."""
    block_d = min(TRITON["gaussian_columns"], 1 << max(0, (d - 1).bit_length()))
    triton_rows = max(1, TRITON["gaussian_program"] // block_d)
    cpp_rows = max(1, CPP_GAUSSIAN_CHUNK // d)
    return sorted({1, 2, 3, *around(triton_rows, 3), *around(cpp_rows, 3)})
