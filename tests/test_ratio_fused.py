"""The fused discriminator log-ratio losses (backend="cpp" and "triton" under the interpreter) against
the float64 reference: values, first gradients through the fused backward, double backward through
the reference fallback, every kind/reduction/dtype at extreme logits and size 1, NaN, torch.compile,
and a backward that never runs a second kernel pass."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import implicitdiv as idv
from implicitdiv._codes import RATIO_MAPS
from implicitdiv.ops import ratio as ops
from implicitdiv.ops import derivative_sharing, ratio_terms
from implicitdiv.reference import ratio as ref_ratio
from implicitdiv.reference.ratio import FDIVERGENCES, KINDS

from .cases import ratio_calls
from .equivalence import check_equivalence

BACKENDS = [pytest.param(b, marks=pytest.mark.skipif(b not in idv.backends(), reason=f"no {b} backend here"))
            for b in ("cpp", "triton")]
# Backends whose kernels run on several threads (the interpreter runs Triton programs in turn).
THREADED = [pytest.param(b, marks=pytest.mark.skipif(b not in idv.backends(), reason=f"no {b} backend here"))
            for b in ("cpp",)]
FUNCTIONS = ("discriminator_loss", "generator_loss", "adversarial_losses", "fdiv_estimate", "ratio_matching_loss")
# +-1e4, +-80, both sides of softplus's switch to v at 20, the kinks of relu, tiny and ordinary logits
REAL = np.array([-1e4, 1e4, -80.0, 80.0, -20.5, 20.5, 17.0, 0.0, 1.0, -1.0, 3e-9, 0.7, -2.3])
FAKE = np.array([1e4, -80.0, 20.5, -1e4, 80.0, -17.0, 1.3, -0.4, 2.2, -20.5, 5e-9, 0.0, -1.7])


def _both(call_or_check, fn, backend, tensors=None, **kw):
    """First gradients from the fused backward (double_backward=False), then double backward."""
    for double in (False, True):
        if tensors is None:
            call_or_check.run(check_equivalence, fn, backend, double_backward=double)
        else:
            check_equivalence(fn, tensors, backend=backend, double_backward=double, **kw)


def _kind_cases():
    for function in FUNCTIONS:
        if function == "ratio_matching_loss":
            yield function, None
        else:
            for kind in (FDIVERGENCES if function == "fdiv_estimate" else KINDS):
                yield function, kind


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("function", FUNCTIONS)
@given(data=st.data())
def test_matches_reference(backend, function, data):
    """Every kind, reduction and dtype (float16/bfloat16 computed in float32), sizes across the
    backend's reduction blocks; first gradients from the fused backward, then double backward."""
    call = data.draw(ratio_calls(function, backend=backend))
    _both(call, getattr(idv, function), backend)


def _grid():
    """Every function x kind x reduction x saturating x dtype once."""
    for function, kind in _kind_cases():
        reductions = ("mean", "sum", "none") if function in ("discriminator_loss", "generator_loss") else (None,)
        saturating = (False, True) if function in ("generator_loss", "adversarial_losses") else (None,)
        for reduction, sat, dtype in itertools.product(reductions, saturating, (torch.float32, torch.float64)):
            kwargs = {}
            if kind is not None:
                kwargs["divergence" if function == "fdiv_estimate" else "kind"] = kind
            if reduction is not None:
                kwargs["reduction"] = reduction
            if sat is not None:
                kwargs["saturating"] = sat
            yield pytest.param(function, kwargs, dtype, id=f"{function}-{'-'.join(map(str, kwargs.values()))}-{str(dtype)[6:]}")


def _tensors(function, real, fake):
    if function == "generator_loss":
        return {"fake": fake}
    if function == "ratio_matching_loss":
        return {"r_p": np.abs(real), "r_q": np.abs(fake)}
    return {"real": real, "fake": fake}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("function,kwargs,dtype", list(_grid()))
def test_extreme_logits_and_size_one(backend, function, kwargs, dtype):
    fn = getattr(idv, function)
    big = _tensors(function, REAL, FAKE)
    _both(None, fn, backend, big, dtype=dtype, kwargs=kwargs, grad_names=tuple(big))
    for v in (-1e4, 80.0):  # size 1: the fused backward (double backward is the reference's, checked above)
        one = _tensors(function, np.array([v]), np.array([-v / 2]))
        check_equivalence(fn, one, backend=backend, dtype=dtype, kwargs=kwargs, grad_names=tuple(one),
                          double_backward=False)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("function,kwargs,dtype", [p for p in _grid() if p.values[2] == torch.float64])
def test_nan_and_inf_propagate_like_the_reference(backend, function, kwargs, dtype):
    fn = getattr(idv, function)
    real = np.array([0.5, np.nan, -1.0, 2.0, np.inf])
    fake = np.array([-np.inf, 0.1, np.nan, 3.0])
    tensors = _tensors(function, real, fake)
    check_equivalence(fn, tensors, backend=backend, dtype=dtype, kwargs=kwargs)
    inputs = [torch.tensor(v, requires_grad=True) for v in tensors.values()]
    out = fn(*inputs, **kwargs, backend=backend)
    outs = out if isinstance(out, tuple) else (out,)
    for o in outs:
        assert torch.isnan(o).any(), "a NaN or Inf input must give NaN"
    torch.autograd.backward(outs, [torch.ones_like(o) for o in outs])  # runs; NaN gradients are allowed


@pytest.mark.parametrize("backend", BACKENDS)
def test_noncontiguous_and_multidim_logits(backend):
    real = torch.randn(6, 8, dtype=torch.float64)[:, ::2].requires_grad_()
    fake = torch.randn(3, 5, dtype=torch.float64).t().requires_grad_()
    for reduction in ("mean", "none"):
        got = idv.discriminator_loss(real, fake, kind="js", reduction=reduction, backend=backend)
        want = idv.discriminator_loss(real, fake, kind="js", reduction=reduction, backend="reference")
        got, want = (got, want) if isinstance(got, tuple) else ((got,), (want,))
        for g, w in zip(got, want):
            assert g.shape == w.shape
            torch.testing.assert_close(g, w, rtol=1e-12, atol=1e-12)
        ups = [torch.randn_like(w) for w in want]
        gg = torch.autograd.grad(got, (real, fake), ups)
        gw = torch.autograd.grad(want, (real, fake), ups)
        for a, b in zip(gg, gw):
            torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("backend", THREADED)
def test_same_bits_for_any_thread_count(backend):
    n = 200_003
    x = torch.randn(n, dtype=torch.float32)
    y = torch.randn(n // 2, dtype=torch.float32)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = idv.adversarial_losses(x, y, kind="gan", backend=backend)
        torch.set_num_threads(2)
        two = idv.adversarial_losses(x, y, kind="gan", backend=backend)
    finally:
        torch.set_num_threads(before)
    assert all(torch.equal(a, b) for a, b in zip(one, two))


# ---- the backward is a scale of saved derivatives, never a second pass over the logits -------------

class _Counting:
    def __init__(self, module):
        self.module, self.calls = module, 0

    def __getattr__(self, name):
        attr = getattr(self.module, name)
        if name == "ratio_forward":
            def counted(*a, **k):
                self.calls += 1
                return attr(*a, **k)
            return counted
        return attr


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_backward_runs_no_kernel(backend, reduction, monkeypatch):
    counting = _Counting(ops.load(backend, "ratio"))
    monkeypatch.setattr(ops, "load", lambda b, family: counting)
    real = torch.randn(50, dtype=torch.float64, requires_grad=True)
    fake = torch.randn(40, dtype=torch.float64, requires_grad=True)
    out = idv.discriminator_loss(real, fake, kind="hellinger", reduction=reduction, backend=backend)
    assert counting.calls == 1
    outs = out if isinstance(out, tuple) else (out,)
    torch.autograd.backward(outs, [torch.ones_like(o) for o in outs])
    assert counting.calls == 1, "the backward must reuse the forward's derivatives"
    assert real.grad is not None and fake.grad is not None


def _record_wants(backend, monkeypatch) -> list:
    """The `want` list of every ratio_forward call of ``backend`` from now on (which derivative
    buffers the kernel is asked to write)."""
    seen = []
    module = ops.load(backend, "ratio")
    original = module.ratio_forward

    def spy(xs, terms, n_out, reduce, mean, want):
        seen.append(list(want))
        return original(xs, terms, n_out, reduce, mean, want)

    monkeypatch.setattr(module, "ratio_forward", spy)
    return seen


@pytest.mark.parametrize("backend", BACKENDS)
def test_no_derivatives_written_without_grad(backend, monkeypatch):
    seen = _record_wants(backend, monkeypatch)
    real, fake = torch.randn(30), torch.randn(20, requires_grad=True)
    idv.adversarial_losses(real, fake, kind="lsgan", backend=backend)
    with torch.no_grad():
        idv.adversarial_losses(real, fake, kind="lsgan", backend=backend)
    # lsgan's two terms on the fake logits, v^2/2 and (v - 1)^2/2, share one derivative buffer
    assert seen == [[False, True, False], [False, False, False]]


@pytest.mark.parametrize("backend", BACKENDS)
def test_shared_derivative_buffers(backend, monkeypatch):
    """softplus(v) and softplus(-v) on the fake logits share one derivative buffer in float32 only (see
    derivative_sharing.FAMILY_DEVIATION); the gradient through either output alone matches the reference either way."""
    seen = _record_wants(backend, monkeypatch)
    values = torch.tensor([-30.0, -20.5, -20.0, -3.0, 0.0, 0.5, 19.9, 20.5, 30.0, 1e4, -1e4])
    for dtype, want in ((torch.float32, [True, True, False]), (torch.float64, [True, True, True])):
        for pick in (0, 1):
            real, fake = (values.to(dtype).flip(0).requires_grad_(), values.to(dtype).requires_grad_())
            out = idv.adversarial_losses(real, fake, kind="gan", backend=backend)[pick]
            got = torch.autograd.grad(out, (real, fake), allow_unused=True, materialize_grads=True)
            assert seen.pop() == want
            r, f = (t.detach().double().requires_grad_() for t in (real, fake))
            out = idv.adversarial_losses(r, f, kind="gan", backend="reference")[pick]
            ref = torch.autograd.grad(out, (r, f), allow_unused=True, materialize_grads=True)
            for a, b in zip(got, ref):
                torch.testing.assert_close(a.double(), b, rtol=0, atol=1e-8 if dtype == torch.float32 else 1e-16)


# ---- torch.compile ---------------------------------------------------------------------------------

@pytest.mark.parametrize("backend", BACKENDS)
def test_compiles_without_graph_break(backend):
    torch._dynamo.reset()

    def step(real, fake):
        d, g = idv.adversarial_losses(real, fake, kind="gan", backend=backend)
        return d + 0.5 * g

    compiled = torch.compile(step, fullgraph=True, backend="aot_eager")
    real = torch.randn(64, requires_grad=True)
    fake = torch.randn(48, requires_grad=True)
    got = compiled(real, fake)
    gr, gf = torch.autograd.grad(got, (real, fake))
    want = step(real, fake)
    wr, wf = torch.autograd.grad(want, (real, fake))
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(gr, wr)
    torch.testing.assert_close(gf, wf)


@pytest.mark.parametrize("backend", BACKENDS)
def test_repeated_backward_with_retain_graph(backend):
    """The first backward consumes the saved derivatives in place; a second one recomputes."""
    real = torch.randn(40, dtype=torch.float64, requires_grad=True)
    fake = torch.randn(30, dtype=torch.float64, requires_grad=True)
    d, g = idv.adversarial_losses(real, fake, kind="js", backend=backend)
    first = torch.autograd.grad(2.0 * d + g, (real, fake), retain_graph=True)
    second = torch.autograd.grad(2.0 * d + g, (real, fake))
    dr, gr = idv.adversarial_losses(real, fake, kind="js", backend="reference")
    want = torch.autograd.grad(2.0 * dr + gr, (real, fake))
    for a, b, w in zip(first, second, want):
        torch.testing.assert_close(a, w, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(b, w, rtol=1e-12, atol=1e-12)


def test_the_kind_tables_use_only_coded_maps():
    """The kernel modules take maps by their code in RATIO_MAPS (tests/test_kernel_codes.py checks
    that the C++ agrees): every map the kind tables name must have one."""
    used = {t.map for table in (ratio_terms.NEG_ACTIVATION, ratio_terms.CONJUGATE) for t in table.values()}
    used |= {t.map for pair in ratio_terms.DISCRIMINATOR.values() for t in pair}
    used |= {ratio_terms.generator_term(k, s).map for k in KINDS for s in (False, True)} | {"half_sq", "linear"}
    assert used <= set(RATIO_MAPS)
