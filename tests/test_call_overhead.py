"""The fixed cost of a call, as structure rather than time: eager calls reach the kernels without
torch.library's dispatcher, a call that needs no gradient builds no graph, mmd2 is one op, and
torch.compile(fullgraph=True) still sees the registered ops of every fused public function."""
from __future__ import annotations

import pytest
import torch

import implicitdiv as idv
from implicitdiv.ops import library, pairwise

from .fused_calls import FUSED, fused_calls, total


def _recording_backend(targets: list):
    """A torch.compile backend (AOT autograd, run eagerly) that records the ops of the graphs it gets."""
    from functorch.compile import make_boxed_func
    from torch._dynamo.backends.common import aot_autograd

    def record(gm, _):
        targets.extend(str(n.target) for n in gm.graph.nodes if n.op == "call_function")
        return make_boxed_func(gm.forward)

    return aot_autograd(fw_compiler=record, bw_compiler=record)


@pytest.mark.parametrize("backend", FUSED)
def test_eager_calls_skip_the_dispatcher(backend, monkeypatch):
    """Eager calls, with and without a gradient, run the implementations directly: a registered op
    called eagerly raises here."""
    def refuse(*args, **kwargs):
        raise AssertionError("an eager call went through torch.library's dispatcher")

    for op in _registered():
        monkeypatch.setattr(op, "op", refuse)
    for name, fn, xs in fused_calls(backend):
        with torch.no_grad():
            fn(*xs)
        leaves = [t.clone().requires_grad_() for t in xs]
        torch.autograd.grad(total(fn(*leaves)), leaves, allow_unused=True)


def _registered():
    from implicitdiv.ops import gaussian, ratio

    found = []
    for module in (pairwise, ratio, gaussian):
        found += [v for v in vars(module).values() if isinstance(v, library.FusedOp)]
    assert len(found) >= 13
    return found


@pytest.mark.parametrize("backend", FUSED)
def test_calls_without_a_gradient_build_no_graph(backend):
    for name, fn, xs in fused_calls(backend):
        out = fn(*xs)  # grad mode on, but no input requires grad
        items = out if isinstance(out, tuple) else (out,)
        assert all(o.grad_fn is None for o in items), name


@pytest.mark.parametrize("backend", FUSED)
def test_mmd2_is_one_op(backend, monkeypatch):
    """The three sums of an MMD^2 reach the kernel module as one call, forward and backward."""
    from implicitdiv.fused import load

    module = load(backend, "pairwise")
    calls = []
    for name in ("kernel_sum_forward", "kernel_sum_sym_forward", "kernel_sum_backward", "kernel_sum_sym_backward",
                 "kernel_sum_fused", "kernel_sum_sym_fused", "mmd2_forward", "mmd2_backward", "mmd2_fused"):
        if hasattr(module, name):
            original = getattr(module, name)
            monkeypatch.setattr(module, name, lambda *a, _o=original, _n=name, **k: calls.append(_n) or _o(*a, **k))
    x = torch.randn(9, 3, requires_grad=True)
    y = torch.randn(7, 3, requires_grad=True)
    with torch.no_grad():
        idv.mmd2(x, y, backend=backend)
    assert calls == ["mmd2_forward"]
    calls.clear()
    torch.autograd.grad(idv.mmd2(x, y, backend=backend), (x, y))
    assert calls in (["mmd2_fused"], ["mmd2_forward", "mmd2_backward"])


@pytest.mark.parametrize("backend", FUSED)
@pytest.mark.parametrize("grad", [False, True], ids=["no_grad", "grad"])
def test_compiled_calls_match_eager_through_the_registered_ops(backend, grad):
    """torch.compile(fullgraph=True) of every fused public function traces a registered implicitdiv op
    into its graph and gives the eager values and gradients."""
    for name, fn, xs in fused_calls(backend):
        torch._dynamo.reset()
        targets: list = []
        leaves = [t.clone().requires_grad_(grad) for t in xs]
        compiled = torch.compile(fn, fullgraph=True, backend=_recording_backend(targets))
        got, want = compiled(*leaves), fn(*leaves)
        assert any(t.startswith("implicitdiv.") for t in targets), f"{name}: no registered op in {targets}"
        for a, b in zip(got if isinstance(got, tuple) else (got,), want if isinstance(want, tuple) else (want,)):
            torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7, equal_nan=True, msg=name)
        if grad:
            ga = torch.autograd.grad(total(got), leaves, allow_unused=True)
            gb = torch.autograd.grad(total(want), leaves, allow_unused=True)
            for u, v in zip(ga, gb):
                assert (u is None) == (v is None), name
                if u is not None:
                    torch.testing.assert_close(u, v, rtol=1e-6, atol=1e-7, msg=name)
