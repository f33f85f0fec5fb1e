"""The Triton pairwise engine (run on CPU tensors under TRITON_INTERPRET=1, set by conftest) against
the float64 reference: values, gradients, sizes off the tile grid, near-duplicate points, half
precision, determinism, NaN propagation, and the absence of any N x M buffer."""
from __future__ import annotations

import dataclasses
import os
import subprocess
import sys

import pytest
import torch
import triton
from hypothesis import given
from torch.utils._python_dispatch import TorchDispatchMode

import implicitdiv as idv
from implicitdiv._codes import DOT_KERNELS, KERNELS
from implicitdiv.fused.triton import pairwise as tp
from implicitdiv.ops import pairwise as ops
from implicitdiv.reference import pairwise as ref
from implicitdiv.reference.kernels import kernel_matrix

from implicitdiv.testing.rounding import TF32_UNIT_ROUNDOFF

from .cases import fixed_kernel, kernel_sum_calls, mixture_calls, mmd2_calls
from .equivalence import assert_close, check_equivalence

BACKEND = "triton"


# ---- the shared equivalence harness ------------------------------------------------------------
# Every dtype the kernels take (float16/bfloat16 on tensor cores, float32, float64), sizes across
# the interpreter's 16-wide tiles, d up to 300 (the mixture too).

@given(kernel_sum_calls(backend=BACKEND))
def test_kernel_sum_matches_reference(call):
    call.run(check_equivalence, idv.kernel_sum, BACKEND)


@given(kernel_sum_calls(backend=BACKEND, sym=True))
def test_kernel_sum_sym_matches_reference(call):
    """kernel_sum(x, x, x_weights=w, y_weights=w): the symmetric path, each unordered tile pair once."""
    call.run(check_equivalence, _sym, BACKEND)


def _sym(x, x_weights=None, **kw):
    return idv.kernel_sum(x, x, x_weights=x_weights, y_weights=x_weights, **kw)


@given(mmd2_calls(backend=BACKEND, estimators=("biased", "unbiased")))
def test_mmd2_matches_reference(call):
    call.run(check_equivalence, idv.mmd2, BACKEND)


@given(mixture_calls(backend=BACKEND))
def test_mixture_logpdf_matches_reference(call):
    call.run(check_equivalence, idv.gaussian_mixture_logpdf, BACKEND)


def test_mmd_test_same_statistic_and_p_value_as_reference():
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(23, 4, generator=gen)
    y = torch.randn(19, 4, generator=gen) + 0.4
    fast = idv.mmd_test(x, y, permutations=40, seed=7, backend=BACKEND)  # 41 weight columns: 3 column blocks
    slow = idv.mmd_test(x.double(), y.double(), permutations=40, seed=7, backend="reference")
    assert_close(fast[0], slow[0], torch.float32, "statistic", scale=1.0)
    assert round(float(fast[1]) * 41) == round(float(slow[1]) * 41)  # the same count of null >= observed


# ---- tiling edges: sizes around the 16-wide interpreter tiles, many weight columns, d > one chunk --

def _grads_vs_reference(fn_fast, fn_ref, inputs, dtype, names, scale=None):
    """Values (error scale `scale` when given, else their largest) and gradients of <out, u> for
    fast (dtype) against reference (float64)."""
    fast_in = [t.to(dtype).requires_grad_() for t in inputs]
    ref_in = [t.to(dtype).double().requires_grad_() for t in inputs]
    out_f, out_r = fn_fast(*fast_in), fn_ref(*ref_in)
    assert out_f.dtype == dtype
    assert_close(out_f, out_r, dtype, "out", scale)
    u = torch.randn(out_r.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64) + 0.5
    g_f = torch.autograd.grad(out_f, fast_in, u.to(dtype))
    g_r = torch.autograd.grad(out_r, ref_in, u)
    for n, f, r in zip(names, g_f, g_r):
        assert_close(f, r, dtype, f"grad:{n}")


def _triton_kernel_sum(kernel, bandwidth):
    kwargs = fixed_kernel(kernel, bandwidth)[0]
    return lambda x, y, a, b: idv.kernel_sum(x, y, x_weights=a, y_weights=b, backend=BACKEND, **kwargs)


def _reference_kernel_sum(kernel, bandwidth):
    params = fixed_kernel(kernel, bandwidth)[1]
    return lambda x, y, a, b: ref.kernel_sum(x, y, a, b, kernel, params)


@pytest.mark.parametrize("n,m,d,p", [(15, 17, 20, 1), (16, 33, 3, 20), (1, 31, 1, 2), (33, 1, 17, 17)])
@pytest.mark.parametrize("kernel", KERNELS)
def test_kernel_sum_off_tile_sizes(kernel, n, m, d, p):
    gen = torch.Generator().manual_seed(n * 1000 + m)
    shapes = ((2, n, d), (2, m, d), (2, n, p), (2, m, p))
    x, y, a, b = (torch.randn(shape, generator=gen, dtype=torch.float64) for shape in shapes)
    bw = (0.6, 2.0)
    _grads_vs_reference(_triton_kernel_sum(kernel, bw), _reference_kernel_sum(kernel, bw), (x, y, a, b), torch.float32,
                        ("x", "y", "a", "b"))


@pytest.mark.parametrize("exclude", [False, True])
@pytest.mark.parametrize("kernel", KERNELS)
def test_symmetric_sum_drops_exactly_the_diagonal(kernel, exclude):
    gen = torch.Generator().manual_seed(5)
    x, a = (torch.randn(shape, generator=gen, dtype=torch.float64) for shape in ((1, 35, 4), (1, 35, 18)))
    params = fixed_kernel(kernel, (0.8,))[1]
    _grads_vs_reference(lambda x_, a_: ops.kernel_sum_sym(x_, a_, kernel, params, exclude, BACKEND),
                        lambda x_, a_: ref.kernel_sum_sym(x_, a_, kernel, params, exclude),
                        (x, a), torch.float64, ("x", "a"))


# ---- near-duplicate points: the dot-product form of s is not accurate there ---------------------

def _near_duplicates(offset: float):
    """float32 points with exact duplicates and neighbours 1e-4 away, far from the origin by `offset`."""
    gen = torch.Generator().manual_seed(11)
    base = torch.randn(20, 5, generator=gen) * 0.5 + offset
    x = torch.cat([base, base[:6] + 1e-4 * torch.randn(6, 5, generator=gen)])
    y = torch.cat([base[3:15], base[:4] - 1e-4 * torch.randn(4, 5, generator=gen)])
    return x.float().unsqueeze(0), y.float().unsqueeze(0)


@pytest.mark.parametrize("offset", [0.0, 30.0])
@pytest.mark.parametrize("kernel", KERNELS)
def test_near_duplicate_points_float32(kernel, offset):
    x, y = _near_duplicates(offset)
    a = torch.randn(1, x.shape[1], 2, generator=torch.Generator().manual_seed(2))
    b = torch.randn(1, y.shape[1], 2, generator=torch.Generator().manual_seed(3))
    bw = (0.01, 1.0)
    kwargs, params = fixed_kernel(kernel, bw)
    k_abs = kernel_matrix(x.double(), y.double(), kernel, params).abs()
    terms = torch.einsum("bnp,bnm,bmp->bp", a.double().abs(), k_abs, b.double().abs())  # sum_ij |a_i k_ij b_j|
    _grads_vs_reference(_triton_kernel_sum(kernel, bw), _reference_kernel_sum(kernel, bw), (x, y, a, b), torch.float32,
                        ("x", "y", "a", "b"), scale=float(terms.max()))
    # dot kernels: MMD^2 is a difference of means of k(x.y), x.y ~ offset^2, rounded at the size of k
    cancel = 4 * float(k_abs.max()) if kernel in DOT_KERNELS else None
    _grads_vs_reference(lambda x_: idv.mmd2(x_, y, estimator="unbiased", backend=BACKEND, **kwargs),
                        lambda x_: ref.mmd2(x_, y.double(), kernel, params, "unbiased"), (x,), torch.float32, ("x",), cancel)


@pytest.mark.parametrize("kernel", ["rbf", "laplacian", "energy"])
def test_centering_alone_keeps_offset_data_accurate(kernel, monkeypatch):
    """With the exact recomputation switched off, far pairs 300 away from the origin still get
    their distances right, because both sets are shifted by a shared center first."""
    monkeypatch.setitem(tp.NEAR_FRACTION, "ieee", 0.0)
    gen = torch.Generator().manual_seed(12)
    x = torch.randn(1, 24, 5, generator=gen) + 300.0
    y = torch.randn(1, 19, 5, generator=gen) + 300.5
    a, b = torch.randn(1, 24, 1, generator=gen), torch.randn(1, 19, 1, generator=gen)
    scale = float(24 * 19 * a.abs().max() * b.abs().max() * 4)
    _grads_vs_reference(_triton_kernel_sum(kernel, (1.5,)), _reference_kernel_sum(kernel, (1.5,)), (x, y, a, b),
                        torch.float32, ("x", "y", "a", "b"), scale=scale)


def test_far_apart_mixture_components_float32():
    gen = torch.Generator().manual_seed(4)
    z = torch.randn(30, 6, generator=gen) + 50.0
    means = torch.cat([z[:10] + 1e-3, torch.randn(9, 6, generator=gen) + 50.0])
    logvars = torch.rand(19, 6, generator=gen) * 3 - 2
    _grads_vs_reference(lambda *t: idv.gaussian_mixture_logpdf(*t, backend=BACKEND), ref.gaussian_mixture_logpdf,
                        (z, means, logvars), torch.float32, ("z", "means", "logvars"))


# ---- contract: determinism, NaN, precision argument, memory --------------------------------------

@pytest.mark.skipif(not torch.cuda.is_available(), reason="the interpreter runs the programs one after another")
def test_same_inputs_give_the_same_bits():
    """On a GPU the programs run concurrently; the results must not depend on their order."""
    gen = torch.Generator(device="cuda").manual_seed(9)

    def draw(*shape):
        return torch.randn(shape, generator=gen, device="cuda")

    x, y, a, b = draw(2, 450, 7), draw(2, 380, 7), draw(2, 450, 3), draw(2, 380, 3)
    z, m, lv = draw(450, 7), draw(380, 7), draw(380, 7)

    def run():
        ins = [t.clone().requires_grad_() for t in (x, y, a, b, z, m, lv)]
        outs = [_triton_kernel_sum("laplacian", (0.5, 2.0))(*ins[:4]),
                idv.mmd2(ins[0], ins[1], kernel="energy", estimator="unbiased", backend=BACKEND),
                idv.gaussian_mixture_logpdf(ins[4], ins[5], ins[6], backend=BACKEND)]
        grads = torch.autograd.grad(sum(o.sum() for o in outs), ins)
        return outs + list(grads)

    for first, second in zip(run(), run()):
        assert torch.equal(first, second)


@pytest.mark.parametrize("kernel", KERNELS)
def test_nan_propagates(kernel):
    x, y = torch.randn(20, 3), torch.randn(18, 3)
    x[4, 1] = float("nan")
    assert torch.isnan(idv.kernel_sum(x, y, kernel=kernel, backend=BACKEND))
    assert torch.isnan(idv.mmd2(x, y, kernel=kernel, backend=BACKEND))
    w = torch.ones(18)
    w[7] = float("nan")
    assert torch.isnan(idv.kernel_sum(y, y.clone(), kernel=kernel, x_weights=w, backend=BACKEND))


def test_mixture_nan_stays_in_its_row():
    z, m, lv = torch.randn(20, 3), torch.randn(18, 3), torch.randn(18, 3)
    z[4, 1] = float("nan")
    out = idv.gaussian_mixture_logpdf(z, m, lv, backend=BACKEND)
    assert torch.isnan(out[4]) and torch.isfinite(out[torch.arange(20) != 4]).all()
    m[2, 0] = float("nan")
    assert torch.isnan(idv.gaussian_mixture_logpdf(z, m, lv, backend=BACKEND)).all()


def round_to_tf32(t: torch.Tensor) -> torch.Tensor:
    """float32 values rounded to TF32's 10-bit mantissa (nearest, ties away from zero), as float64."""
    bits = t.float().view(torch.int32)
    return ((bits + 0x1000) & ~0x1FFF).view(torch.float32).double()


def test_precision_argument():
    gen = torch.Generator().manual_seed(6)
    x, a = torch.randn(1, 30, 4, generator=gen), torch.randn(1, 30, 1, generator=gen)
    with pytest.raises(ValueError, match="precision"):
        tp.kernel_sum_sym_forward(x, a, "rbf", (1.0,), False, precision="fp8")


@given(kernel_sum_calls(backend=BACKEND, dtypes_=(torch.float32,)))
def test_tf32_matches_a_tf32_rounded_reference(call):
    """precision="tf32" against the reference on inputs rounded to TF32, at TF32's unit roundoff
    (under the interpreter, which has no tensor cores, tf32 computes as exact float32)."""
    tensors = {n: round_to_tf32(torch.as_tensor(v)) for n, v in call.tensors.items()}
    check_equivalence(idv.kernel_sum, tensors, backend=BACKEND, dtype=torch.float32, kwargs={**call.kwargs, "precision": "tf32"},
                      grad_names=call.grad_names, seed=call.seed, double_backward=False, roundoff=TF32_UNIT_ROUNDOFF)


class _Allocations(TorchDispatchMode):
    """Records the shape of every tensor a torch op returns while active."""

    def __init__(self):
        super().__init__()
        self.shapes = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(t, torch.Tensor):
                self.shapes.append((tuple(t.shape), t.dtype, t.numel() * t.element_size()))
        return out


def test_launchers_allocate_nothing_n_by_m():
    n, m, d, p = 64, 48, 3, 2
    gen = torch.Generator().manual_seed(8)
    x, y = torch.randn(1, n, d, generator=gen), torch.randn(1, m, d, generator=gen)
    a, b, g = torch.randn(1, n, p, generator=gen), torch.randn(1, m, p, generator=gen), torch.randn(1, p, generator=gen)
    z, mu, lv = x[0], y[0], torch.randn(m, d, generator=gen)
    with _Allocations() as rec:
        tp.kernel_sum_forward(x, y, a, b, "rbf", (1.0, 2.0))
        tp.kernel_sum_backward(g, x, y, a, b, "laplacian", (1.0,), (True, True, True, True))
        tp.kernel_sum_sym_forward(x, a, "energy", (1.0,), True)
        tp.kernel_sum_sym_backward(g, x, a, "imq", (1.0,), False, (True, True))
        out = tp.mixture_logpdf_forward(z, mu, lv)
        tp.mixture_logpdf_backward(g[0, :1].expand(n).contiguous(), z, mu, lv, out, (True, True, True))
    assert rec.shapes, "the recorder saw no allocation at all"
    largest = max(rec.shapes, key=lambda r: r[2])
    # O((N + M)(d + P)) float64-sized at most: outputs, centered copies, per-row-block partials,
    # per-component terms (and the interpreter's byte copies of them); N x M float32 is 4 N M bytes
    assert largest[2] <= 8 * max(n, m) * max(d, p) < 4 * n * m, f"an allocation of {largest}: {set(rec.shapes)}"


# ---- the GPU build: compile (no GPU needed) what the launchers pick on CUDA ------------------------

SM90_CASES = [  # (dtype, kernel, weight columns, precision)
    (torch.float32, "rbf", 1, "ieee"), (torch.float32, "laplacian", 5, "tf32"), (torch.bfloat16, "energy", 1, "ieee"),
    (torch.float16, "linear", 40, "ieee"), (torch.float64, "imq", 2, "ieee"), (torch.float32, "polynomial", 200, "ieee"),
    (torch.float64, "polynomial", 1, "ieee"),
]


def _compile_for_sm90(fn, types: dict, constexprs: dict):
    """triton.compile of `fn` to a cubin for sm_90 with ptxas, as a CUDA launch would, without a GPU."""
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    constexprs = dict(constexprs)
    warps = constexprs.pop("num_warps")
    signature = {name: "constexpr" if name in constexprs else types[name] for name in fn.arg_names}
    compiled = triton.compile(ASTSource(fn, signature, constexprs=constexprs), target=GPUTarget("cuda", 90, 32),
                              options={"num_warps": warps})
    assert "cubin" in compiled.asm, fn.__name__


def compile_launches_for_sm90():
    """Builds every kernel with the tiles and flags the launchers use on CUDA. Run in a process
    without TRITON_INTERPRET (under it the jit functions are interpreter objects)."""
    from implicitdiv.fused.triton.pairwise_mixture import (mixture_grad_components_kernel, mixture_grad_z_kernel,
                                                             mixture_lse_kernel)
    from implicitdiv.fused.triton.pairwise_sums import pair_grad_kernel, pair_rows_kernel

    d = 64
    for dtype, kernel, p, precision in SM90_CASES:
        el = {torch.float32: "fp32", torch.float64: "fp64", torch.bfloat16: "bf16", torch.float16: "fp16"}[dtype]
        ct = "fp64" if dtype == torch.float64 else "fp32"
        types = dict(x="*" + el, y="*" + el, w="*" + el, a="*" + el, u="*" + el, v="*" + el, center="*" + ct,
                     coef="*" + ct, out="*" + ct, nbw="i32", N="i32", M="i32", d="i32", P="i32")
        x = torch.zeros(1, 3, d, dtype=dtype, device="meta")
        flags = dataclasses.replace(tp.setup(x, x, kernel, fixed_kernel(kernel, (1.0,))[1], precision, sym=True, exclude=True),
                                    bf16_as_f32=False).flags()
        rows = tp.blocks("rows", torch.device("cuda"), d, p, dtype)
        _compile_for_sm90(pair_rows_kernel, types, dict(**flags, **rows.sums(), REDUCE=True, TRI=True))
        _compile_for_sm90(pair_rows_kernel, types, dict(**flags, **rows.sums(), REDUCE=False, TRI=False))
        grad = tp.blocks("grad", torch.device("cuda"), d, p, dtype)
        _compile_for_sm90(pair_grad_kernel, types, dict(**flags, **grad.sums(), BDO=grad.out_feat))
    for ct, dtype in (("fp32", torch.float32), ("fp64", torch.float64)):
        types = {n: "*" + ct for n in ("z", "e", "q", "cst", "lse", "g", "gz", "m", "gm", "glv")}
        types.update(N="i32", M="i32", d="i32")
        fwd = tp.blocks("mixture", torch.device("cuda"), d, 1, dtype)
        bwd = tp.blocks("mixture_grad", torch.device("cuda"), d, 1, dtype)
        common = dict(PREC="ieee", BD=fwd.feat)
        _compile_for_sm90(mixture_lse_kernel, types, dict(common, BM=fwd.rows, BN=fwd.cols, num_warps=fwd.warps))
        back = dict(common, BM=bwd.rows, BN=bwd.cols, BDO=bwd.out_feat, num_warps=bwd.warps)
        _compile_for_sm90(mixture_grad_z_kernel, types, back)
        _compile_for_sm90(mixture_grad_components_kernel, types, dict(back, NEED_M=True, NEED_LV=True))


def test_kernels_compile_for_sm90_with_the_launch_tiles():
    """The interpreter runs Python semantics; the compiler is stricter (types across dynamic
    branches, constexpr handling, shared-memory limits). This catches what only a GPU build would."""
    pytest.importorskip("triton.backends.nvidia")
    code = "from tests.test_pairwise_triton import compile_launches_for_sm90 as c; c()"
    env = {**os.environ, "TRITON_INTERPRET": "0"}
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    done = subprocess.run([sys.executable, "-c", code], env=env, cwd=root, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
