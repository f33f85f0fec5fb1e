"""Autograd Functions and torch.library ops for the tiled pairwise engine.

Four forward ops, each with its backward op, so torch.compile sees them as opaque nodes:

  kernel_sum      out_bp = sum_ij a_bip k(x_bi, y_bj) b_bjp
  kernel_sum_sym  out_bp = sum_ij a_bip k(x_bi, x_bj) a_bjp   (i != j when exclude_diag)
  mmd2            out_b  = MMD^2(x_b, y_b), biased or unbiased: its three sums in one op
  mixture_logpdf  out_i  = log (1/M) sum_j N(z_i; m_j, diag exp(lv_j))

The backend string picks the kernel module (implicitdiv.fused.<backend>.pairwise), which provides:

  kernel_sum_forward(x, y, a, b, kernel, bandwidths) -> (B, P)
  kernel_sum_backward(g, x, y, a, b, kernel, bandwidths, needs) -> (gx, gy, ga, gb), None where not needed
  kernel_sum_sym_forward(x, a, kernel, bandwidths, exclude_diag) -> (B, P)
  kernel_sum_sym_backward(g, x, a, kernel, bandwidths, exclude_diag, needs) -> (gx, ga)
  mmd2_forward(x, y, kernel, bandwidths, unbiased) -> (B,)
  mmd2_backward(g, x, y, kernel, bandwidths, unbiased, needs) -> (gx, gy)
  mixture_logpdf_forward(z, means, logvars) -> (N,)
  mixture_logpdf_backward(g, z, means, logvars, out, needs) -> (gz, gm, glv)

and may provide the training pass of the sums with one weight column (every mmd2), which returns
the value with its gradients for an upstream gradient of 1 from one walk over the pairs:

  kernel_sum_fused(x, y, a, b, kernel, bandwidths, needs) -> (out, gx, gy, ga, gb)
  kernel_sum_sym_fused(x, a, kernel, bandwidths, exclude_diag, needs) -> (out, gx, ga)
  mmd2_fused(x, y, kernel, bandwidths, unbiased, needs) -> (out, gx, gy)

When it does, a forward in grad mode with an input that needs a gradient runs that pass and the
backward only scales the saved gradients by the upstream one (a forward whose result is never
differentiated then costs the training pass instead of the plain sum).

The forwards apply the NaN rule of the public functions themselves, in the pass that already reads
the points: a batch element whose points or weights hold a NaN or an Inf gives NaN (the mixture:
a row whose z does, and every row when the components do).

The Triton kernels also take precision="ieee" (exact float32 products) or "tf32" (tensor cores).

Inputs reach the kernels contiguous, of one dtype and device. A backward run with create_graph=True
(grad mode on inside backward) returns the kernels' gradients with the graph of the differentiable
reference's (ops/reference_grads.py), so double backward is exact rather than silently wrong and
the first gradients are those of a plain backward. In eager mode the ops are called without torch's
dispatcher, and a call that needs no gradient skips the autograd Function as well (ops/library.py).
"""
from __future__ import annotations

import torch

from ..fused import load
from ..reference import pairwise as ref
from .library import fused_op
from .reference_grads import reference_grads, with_values


def _kernels(backend: str):
    return load(backend, "pairwise")


PRECISIONS = ("ieee", "tf32")
# The kernel modules that provide the training pass (named here, not looked up, so that
# torch.compile traces the choice without importing anything).
FUSED_BACKENDS = frozenset({"cpp"})


def _mode(backend: str, precision: str) -> dict:
    """The precision keyword for the kernels that have tensor-core modes (Triton); the C++ engine
    always computes in the input dtype."""
    return {"precision": precision} if backend == "triton" else {}


def _or_empty(t, like):
    return like.new_empty(0) if t is None else t


def _or_none(t):
    return None if t.numel() == 0 and t.dim() == 1 else t


def _fake_grads(tensors, needs):
    return tuple(t.new_empty(t.shape) if need else t.new_empty(0) for t, need in zip(tensors, needs))


def _use_fused(backend, needs, a=None) -> bool:
    """Whether the forward runs the training pass (the Functions are applied only in grad mode)."""
    return any(needs) and (a is None or a.shape[-1] == 1) and backend in FUSED_BACKENDS


def _scaled(grads, g):
    """The saved unit-upstream gradients times the upstream g (B,), None where absent."""
    g = g.reshape(g.shape[0], 1, 1)
    return tuple(None if t is None else t * g for t in grads)


def _saved(grads, needs):
    return tuple(_or_none(t) if n else None for t, n in zip(grads, needs))


def _needs_graph(*tensors) -> bool:
    return torch.is_grad_enabled() and any(t.requires_grad for t in tensors)


def _forward(ctx, tensors, fused: bool, run_fused, run_forward):
    """The Functions' forward: the training pass (run_fused(needs) -> (out, *unit-upstream grads),
    saved for backward) when fused, else the forward op."""
    ctx.fused = fused
    if fused:
        out, *grads = run_fused(list(ctx.needs_input_grad[:len(tensors)]))
        ctx.save_for_backward(*tensors, *grads)
        return out
    ctx.save_for_backward(*tensors)
    return run_forward()


def _backward(ctx, g, count: int, reference, run_backward):
    """The Functions' backward over their `count` tensor inputs, then None for each setting: the saved
    training-pass gradients times g when fused, else the backward op (run_backward(needs, *tensors));
    when it must be differentiable itself, those values with the graph of the reference's gradients
    (reference(*tensors))."""
    tensors = ctx.saved_tensors[:count]
    needs = list(ctx.needs_input_grad[:count])
    def fused():
        if ctx.fused:
            return _scaled(_saved(ctx.saved_tensors[count:], needs), g)
        return tuple(_or_none(t) for t in run_backward(needs, *tensors))

    if torch.is_grad_enabled():  # create_graph
        with torch.no_grad():
            grads = fused()
        grads = with_values(grads, reference_grads(reference, tensors, tensors, needs, (g,)))
    else:
        grads = fused()
    return (*grads, *(None,) * (len(ctx.needs_input_grad) - count))


# ---- kernel_sum --------------------------------------------------------------------------------

@fused_op("kernel_sum", lambda x, y, a, b, kernel, bandwidths, backend, precision: a.new_empty((a.shape[0], a.shape[2])))
def _kernel_sum_op(x: torch.Tensor, y: torch.Tensor, a: torch.Tensor, b: torch.Tensor, kernel: str,
                   bandwidths: list[float], backend: str, precision: str) -> torch.Tensor:
    return _kernels(backend).kernel_sum_forward(x, y, a, b, kernel, tuple(bandwidths), **_mode(backend, precision))


@fused_op("kernel_sum_backward", lambda g, x, y, a, b, kernel, bandwidths, backend, precision, needs:
          _fake_grads((x, y, a, b), needs))
def _kernel_sum_backward_op(g: torch.Tensor, x: torch.Tensor, y: torch.Tensor, a: torch.Tensor, b: torch.Tensor,
                            kernel: str, bandwidths: list[float], backend: str, precision: str, needs: list[bool]
                            ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    grads = _kernels(backend).kernel_sum_backward(g, x, y, a, b, kernel, tuple(bandwidths), tuple(needs),
                                                  **_mode(backend, precision))
    return tuple(_or_empty(t, x) for t in grads)


@fused_op("kernel_sum_fused", lambda x, y, a, b, kernel, bandwidths, backend, needs:
          (a.new_empty((a.shape[0], 1)), *_fake_grads((x, y, a, b), needs)))
def _kernel_sum_fused_op(x: torch.Tensor, y: torch.Tensor, a: torch.Tensor, b: torch.Tensor, kernel: str,
                         bandwidths: list[float], backend: str, needs: list[bool]
                         ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    out, *grads = _kernels(backend).kernel_sum_fused(x, y, a, b, kernel, tuple(bandwidths), tuple(needs))
    return (out, *(_or_empty(t, x) for t in grads))


class KernelSumFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, y, a, b, kernel, bandwidths, backend, precision):
        ctx.config = (kernel, bandwidths, backend, precision)
        bw = list(bandwidths)
        return _forward(ctx, (x, y, a, b), _use_fused(backend, ctx.needs_input_grad[:4], a),
                        lambda needs: _kernel_sum_fused_op(x, y, a, b, kernel, bw, backend, needs),
                        lambda: _kernel_sum_op(x, y, a, b, kernel, bw, backend, precision))

    @staticmethod
    def backward(ctx, g):
        kernel, bandwidths, backend, precision = ctx.config
        return _backward(ctx, g, 4, lambda x, y, a, b: ref.kernel_sum(x, y, a, b, kernel, bandwidths),
                         lambda needs, x, y, a, b: _kernel_sum_backward_op(g.contiguous(), x, y, a, b, kernel,
                                                                           list(bandwidths), backend, precision, needs))


# ---- kernel_sum_sym ----------------------------------------------------------------------------

@fused_op("kernel_sum_sym", lambda x, a, kernel, bandwidths, exclude_diag, backend, precision:
          a.new_empty((a.shape[0], a.shape[2])))
def _kernel_sum_sym_op(x: torch.Tensor, a: torch.Tensor, kernel: str, bandwidths: list[float], exclude_diag: bool,
                       backend: str, precision: str) -> torch.Tensor:
    return _kernels(backend).kernel_sum_sym_forward(x, a, kernel, tuple(bandwidths), exclude_diag, **_mode(backend, precision))


@fused_op("kernel_sum_sym_backward", lambda g, x, a, kernel, bandwidths, exclude_diag, backend, precision, needs:
          _fake_grads((x, a), needs))
def _kernel_sum_sym_backward_op(g: torch.Tensor, x: torch.Tensor, a: torch.Tensor, kernel: str, bandwidths: list[float],
                                exclude_diag: bool, backend: str, precision: str, needs: list[bool]
                                ) -> tuple[torch.Tensor, torch.Tensor]:
    grads = _kernels(backend).kernel_sum_sym_backward(g, x, a, kernel, tuple(bandwidths), exclude_diag, tuple(needs),
                                                      **_mode(backend, precision))
    return tuple(_or_empty(t, x) for t in grads)


@fused_op("kernel_sum_sym_fused", lambda x, a, kernel, bandwidths, exclude_diag, backend, needs:
          (a.new_empty((a.shape[0], 1)), *_fake_grads((x, a), needs)))
def _kernel_sum_sym_fused_op(x: torch.Tensor, a: torch.Tensor, kernel: str, bandwidths: list[float], exclude_diag: bool,
                             backend: str, needs: list[bool]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    out, gx, ga = _kernels(backend).kernel_sum_sym_fused(x, a, kernel, tuple(bandwidths), exclude_diag, tuple(needs))
    return out, _or_empty(gx, x), _or_empty(ga, x)


class KernelSumSymFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, a, kernel, bandwidths, exclude_diag, backend, precision):
        ctx.config = (kernel, bandwidths, exclude_diag, backend, precision)
        bw = list(bandwidths)
        return _forward(ctx, (x, a), _use_fused(backend, ctx.needs_input_grad[:2], a),
                        lambda needs: _kernel_sum_sym_fused_op(x, a, kernel, bw, exclude_diag, backend, needs),
                        lambda: _kernel_sum_sym_op(x, a, kernel, bw, exclude_diag, backend, precision))

    @staticmethod
    def backward(ctx, g):
        kernel, bandwidths, exclude_diag, backend, precision = ctx.config
        return _backward(ctx, g, 2, lambda x, a: ref.kernel_sum_sym(x, a, kernel, bandwidths, exclude_diag),
                         lambda needs, x, a: _kernel_sum_sym_backward_op(g.contiguous(), x, a, kernel, list(bandwidths),
                                                                         exclude_diag, backend, precision, needs))


# ---- mmd2 --------------------------------------------------------------------------------------

@fused_op("mmd2", lambda x, y, kernel, bandwidths, unbiased, backend, precision: x.new_empty((x.shape[0],)))
def _mmd2_op(x: torch.Tensor, y: torch.Tensor, kernel: str, bandwidths: list[float], unbiased: bool, backend: str,
             precision: str) -> torch.Tensor:
    return _kernels(backend).mmd2_forward(x, y, kernel, tuple(bandwidths), unbiased, **_mode(backend, precision))


@fused_op("mmd2_backward", lambda g, x, y, kernel, bandwidths, unbiased, backend, precision, needs:
          _fake_grads((x, y), needs))
def _mmd2_backward_op(g: torch.Tensor, x: torch.Tensor, y: torch.Tensor, kernel: str, bandwidths: list[float],
                      unbiased: bool, backend: str, precision: str, needs: list[bool]
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    gx, gy = _kernels(backend).mmd2_backward(g, x, y, kernel, tuple(bandwidths), unbiased, tuple(needs),
                                             **_mode(backend, precision))
    return _or_empty(gx, x), _or_empty(gy, x)


@fused_op("mmd2_fused", lambda x, y, kernel, bandwidths, unbiased, backend, needs:
          (x.new_empty((x.shape[0],)), *_fake_grads((x, y), needs)))
def _mmd2_fused_op(x: torch.Tensor, y: torch.Tensor, kernel: str, bandwidths: list[float], unbiased: bool,
                   backend: str, needs: list[bool]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    out, gx, gy = _kernels(backend).mmd2_fused(x, y, kernel, tuple(bandwidths), unbiased, tuple(needs))
    return out, _or_empty(gx, x), _or_empty(gy, x)


class MMD2Function(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, y, kernel, bandwidths, unbiased, backend, precision):
        ctx.config = (kernel, bandwidths, unbiased, backend, precision)
        bw = list(bandwidths)
        return _forward(ctx, (x, y), _use_fused(backend, ctx.needs_input_grad[:2]),
                        lambda needs: _mmd2_fused_op(x, y, kernel, bw, unbiased, backend, needs),
                        lambda: _mmd2_op(x, y, kernel, bw, unbiased, backend, precision))

    @staticmethod
    def backward(ctx, g):
        kernel, bandwidths, unbiased, backend, precision = ctx.config
        estimator = "unbiased" if unbiased else "biased"
        return _backward(ctx, g, 2, lambda x, y: ref.mmd2(x, y, kernel, bandwidths, estimator),
                         lambda needs, x, y: _mmd2_backward_op(g.contiguous(), x, y, kernel, list(bandwidths), unbiased,
                                                               backend, precision, needs))


# ---- mixture_logpdf ----------------------------------------------------------------------------

@fused_op("mixture_logpdf", lambda z, means, logvars, backend: z.new_empty((z.shape[0],)))
def _mixture_logpdf_op(z: torch.Tensor, means: torch.Tensor, logvars: torch.Tensor, backend: str) -> torch.Tensor:
    return _kernels(backend).mixture_logpdf_forward(z, means, logvars)


@fused_op("mixture_logpdf_backward", lambda g, z, means, logvars, out, backend, needs:
          _fake_grads((z, means, logvars), needs))
def _mixture_logpdf_backward_op(g: torch.Tensor, z: torch.Tensor, means: torch.Tensor, logvars: torch.Tensor,
                                out: torch.Tensor, backend: str, needs: list[bool]
                                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    grads = _kernels(backend).mixture_logpdf_backward(g, z, means, logvars, out, tuple(needs))
    return tuple(_or_empty(t, z) for t in grads)


class MixtureLogpdfFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, z, means, logvars, backend):
        out = _mixture_logpdf_op(z, means, logvars, backend)
        ctx.save_for_backward(z, means, logvars, out)
        ctx.backend = backend
        ctx.fused = False
        return out

    @staticmethod
    def backward(ctx, g):
        out = ctx.saved_tensors[3]
        return _backward(ctx, g, 3, ref.gaussian_mixture_logpdf,
                         lambda needs, z, m, lv: _mixture_logpdf_backward_op(g.contiguous(), z, m, lv, out, ctx.backend,
                                                                             needs))


# ---- entry points used by the public layer -----------------------------------------------------

# backend="reference" runs the naive reference itself, so callers need not branch. A call whose
# inputs need no gradient (or made under no_grad) runs the forward op without the autograd Function.

def kernel_sum(x, y, a, b, kernel, bandwidths, backend, precision="ieee"):
    if backend == "reference":
        return ref.kernel_sum(x, y, a, b, kernel, tuple(bandwidths))
    x, y, a, b = x.contiguous(), y.contiguous(), a.contiguous(), b.contiguous()
    if not _needs_graph(x, y, a, b):
        return _kernel_sum_op(x, y, a, b, kernel, list(bandwidths), backend, precision)
    return KernelSumFunction.apply(x, y, a, b, kernel, tuple(bandwidths), backend, precision)


def kernel_sum_sym(x, a, kernel, bandwidths, exclude_diag, backend, precision="ieee"):
    if backend == "reference":
        return ref.kernel_sum_sym(x, a, kernel, tuple(bandwidths), bool(exclude_diag))
    x, a = x.contiguous(), a.contiguous()
    if not _needs_graph(x, a):
        return _kernel_sum_sym_op(x, a, kernel, list(bandwidths), bool(exclude_diag), backend, precision)
    return KernelSumSymFunction.apply(x, a, kernel, tuple(bandwidths), bool(exclude_diag), backend, precision)


def mmd2(x, y, kernel, bandwidths, unbiased, backend, precision="ieee"):
    """MMD^2 of x (B, N, d) and y (B, M, d), (B,), on a fused backend (the linear-time estimator and
    the reference backend are the public layer's)."""
    x, y = x.contiguous(), y.contiguous()
    if not _needs_graph(x, y):
        return _mmd2_op(x, y, kernel, list(bandwidths), bool(unbiased), backend, precision)
    return MMD2Function.apply(x, y, kernel, tuple(bandwidths), bool(unbiased), backend, precision)


def mixture_logpdf(z, means, logvars, backend):
    if backend == "reference":
        return ref.gaussian_mixture_logpdf(z, means, logvars)
    z, means, logvars = z.contiguous(), means.contiguous(), logvars.contiguous()
    if not _needs_graph(z, means, logvars):
        return _mixture_logpdf_op(z, means, logvars, backend)
    return MixtureLogpdfFunction.apply(z, means, logvars, backend)
