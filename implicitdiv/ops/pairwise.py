"""Autograd Functions and torch.library ops for the tiled pairwise engine.

Three ops, each with a forward and a backward custom op so torch.compile sees them as opaque nodes:

  kernel_sum      out_bp = sum_ij a_bip k(x_bi, y_bj) b_bjp
  kernel_sum_sym  out_bp = sum_ij a_bip k(x_bi, x_bj) a_bjp   (i != j when exclude_diag)
  mixture_logpdf  out_i  = log (1/M) sum_j N(z_i; m_j, diag exp(lv_j))

The backend string picks the kernel module (implicitdiv.kernels.<backend>.pairwise), which provides:

  kernel_sum_forward(x, y, a, b, kernel, bandwidths) -> (B, P)
  kernel_sum_backward(g, x, y, a, b, kernel, bandwidths, needs) -> (gx, gy, ga, gb), None where not needed
  kernel_sum_sym_forward(x, a, kernel, bandwidths, exclude_diag) -> (B, P)
  kernel_sum_sym_backward(g, x, a, kernel, bandwidths, exclude_diag, needs) -> (gx, ga)
  mixture_logpdf_forward(z, means, logvars) -> (N,)
  mixture_logpdf_backward(g, z, means, logvars, out, needs) -> (gz, gm, glv)

and may provide the training pass of the sums with one weight column, which returns the sum with
its gradients for an upstream gradient of 1 from one walk over the pairs:

  kernel_sum_fused(x, y, a, b, kernel, bandwidths, needs) -> (out, gx, gy, ga, gb)
  kernel_sum_sym_fused(x, a, kernel, bandwidths, exclude_diag, needs) -> (out, gx, ga)

When it does, a forward in grad mode with an input that needs a gradient runs that pass and the
backward only scales the saved gradients by the upstream one (a forward whose result is never
differentiated then costs the training pass instead of the plain sum).

The Triton kernels also take precision="ieee" (exact float32 products) or "tf32" (tensor cores).

Inputs reach the kernels contiguous, of one dtype and device. A backward run with create_graph=True
(grad mode on inside backward) recomputes through the differentiable reference instead, so double
backward is exact rather than silently wrong.
"""
from __future__ import annotations

import torch

from ..kernels import load
from ..reference import pairwise as ref

def _kernels(backend: str):
    return load(backend, "pairwise")


PRECISIONS = ("ieee", "tf32")


def _mode(backend: str, precision: str) -> dict:
    """The precision keyword for the kernels that have tensor-core modes (Triton); the C++ engine
    always computes in the input dtype."""
    return {"precision": precision} if backend == "triton" else {}


def _or_empty(t, like):
    return like.new_empty(0) if t is None else t


def _or_none(t):
    return None if t.numel() == 0 and t.dim() == 1 else t


# ---- kernel_sum --------------------------------------------------------------------------------

@torch.library.custom_op("implicitdiv::kernel_sum", mutates_args=())
def _kernel_sum_op(x: torch.Tensor, y: torch.Tensor, a: torch.Tensor, b: torch.Tensor, kernel: str,
                   bandwidths: list[float], backend: str, precision: str) -> torch.Tensor:
    return _kernels(backend).kernel_sum_forward(x, y, a, b, kernel, tuple(bandwidths), **_mode(backend, precision))


@_kernel_sum_op.register_fake
def _(x, y, a, b, kernel, bandwidths, backend, precision):
    return a.new_empty((a.shape[0], a.shape[2]))


@torch.library.custom_op("implicitdiv::kernel_sum_backward", mutates_args=())
def _kernel_sum_backward_op(g: torch.Tensor, x: torch.Tensor, y: torch.Tensor, a: torch.Tensor, b: torch.Tensor,
                            kernel: str, bandwidths: list[float], backend: str, precision: str, needs: list[bool]
                            ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    grads = _kernels(backend).kernel_sum_backward(g, x, y, a, b, kernel, tuple(bandwidths), tuple(needs),
                                                  **_mode(backend, precision))
    return tuple(_or_empty(t, x) for t in grads)


@_kernel_sum_backward_op.register_fake
def _(g, x, y, a, b, kernel, bandwidths, backend, precision, needs):
    return tuple(t.new_empty(t.shape) if need else t.new_empty(0) for t, need in zip((x, y, a, b), needs))


@torch.library.custom_op("implicitdiv::kernel_sum_fused", mutates_args=())
def _kernel_sum_fused_op(x: torch.Tensor, y: torch.Tensor, a: torch.Tensor, b: torch.Tensor, kernel: str,
                         bandwidths: list[float], backend: str, needs: list[bool]
                         ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    out, *grads = _kernels(backend).kernel_sum_fused(x, y, a, b, kernel, tuple(bandwidths), tuple(needs))
    return (out, *(_or_empty(t, x) for t in grads))


@_kernel_sum_fused_op.register_fake
def _(x, y, a, b, kernel, bandwidths, backend, needs):
    grads = (t.new_empty(t.shape) if need else t.new_empty(0) for t, need in zip((x, y, a, b), needs))
    return (a.new_empty((a.shape[0], 1)), *grads)


# The kernel modules that provide the training pass (named here, not looked up, so that
# torch.compile traces the choice without importing anything).
FUSED_BACKENDS = frozenset({"cpp"})


def _use_fused(backend, grad_mode, needs, a) -> bool:
    return grad_mode and any(needs) and a.shape[-1] == 1 and backend in FUSED_BACKENDS


def _scaled(grads, g):
    """The saved unit-upstream gradients times the upstream g (B, 1), None where absent."""
    g = g.reshape(g.shape[0], 1, 1)
    return tuple(None if t is None else t * g for t in grads)


class KernelSumFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, y, a, b, kernel, bandwidths, backend, precision, grad_mode):
        ctx.config = (kernel, bandwidths, backend, precision)
        needs = list(ctx.needs_input_grad[:4])
        ctx.fused = _use_fused(backend, grad_mode, needs, a)
        if ctx.fused:
            out, *grads = _kernel_sum_fused_op(x, y, a, b, kernel, list(bandwidths), backend, needs)
            ctx.save_for_backward(x, y, a, b, *grads)
            return out
        ctx.save_for_backward(x, y, a, b)
        return _kernel_sum_op(x, y, a, b, kernel, list(bandwidths), backend, precision)

    @staticmethod
    def backward(ctx, g):
        x, y, a, b = ctx.saved_tensors[:4]
        kernel, bandwidths, backend, precision = ctx.config
        needs = list(ctx.needs_input_grad[:4])
        if torch.is_grad_enabled():
            out = ref.kernel_sum(x, y, a, b, kernel, bandwidths)
            grads = _grads_through(out, (x, y, a, b), needs, g)
        elif ctx.fused:
            grads = _scaled((_or_none(t) if n else None for t, n in zip(ctx.saved_tensors[4:], needs)), g)
        else:
            grads = tuple(_or_none(t) for t in _kernel_sum_backward_op(g.contiguous(), x, y, a, b, kernel, list(bandwidths),
                                                                       backend, precision, needs))
        return (*grads, None, None, None, None, None)


# ---- kernel_sum_sym ----------------------------------------------------------------------------

@torch.library.custom_op("implicitdiv::kernel_sum_sym", mutates_args=())
def _kernel_sum_sym_op(x: torch.Tensor, a: torch.Tensor, kernel: str, bandwidths: list[float], exclude_diag: bool,
                       backend: str, precision: str) -> torch.Tensor:
    return _kernels(backend).kernel_sum_sym_forward(x, a, kernel, tuple(bandwidths), exclude_diag, **_mode(backend, precision))


@_kernel_sum_sym_op.register_fake
def _(x, a, kernel, bandwidths, exclude_diag, backend, precision):
    return a.new_empty((a.shape[0], a.shape[2]))


@torch.library.custom_op("implicitdiv::kernel_sum_sym_backward", mutates_args=())
def _kernel_sum_sym_backward_op(g: torch.Tensor, x: torch.Tensor, a: torch.Tensor, kernel: str, bandwidths: list[float],
                                exclude_diag: bool, backend: str, precision: str, needs: list[bool]
                                ) -> tuple[torch.Tensor, torch.Tensor]:
    grads = _kernels(backend).kernel_sum_sym_backward(g, x, a, kernel, tuple(bandwidths), exclude_diag, tuple(needs),
                                                      **_mode(backend, precision))
    return tuple(_or_empty(t, x) for t in grads)


@_kernel_sum_sym_backward_op.register_fake
def _(g, x, a, kernel, bandwidths, exclude_diag, backend, precision, needs):
    return tuple(t.new_empty(t.shape) if need else t.new_empty(0) for t, need in zip((x, a), needs))


@torch.library.custom_op("implicitdiv::kernel_sum_sym_fused", mutates_args=())
def _kernel_sum_sym_fused_op(x: torch.Tensor, a: torch.Tensor, kernel: str, bandwidths: list[float], exclude_diag: bool,
                             backend: str, needs: list[bool]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    out, gx, ga = _kernels(backend).kernel_sum_sym_fused(x, a, kernel, tuple(bandwidths), exclude_diag, tuple(needs))
    return out, _or_empty(gx, x), _or_empty(ga, x)


@_kernel_sum_sym_fused_op.register_fake
def _(x, a, kernel, bandwidths, exclude_diag, backend, needs):
    grads = (t.new_empty(t.shape) if need else t.new_empty(0) for t, need in zip((x, a), needs))
    return (a.new_empty((a.shape[0], 1)), *grads)


class KernelSumSymFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, a, kernel, bandwidths, exclude_diag, backend, precision, grad_mode):
        ctx.config = (kernel, bandwidths, exclude_diag, backend, precision)
        needs = list(ctx.needs_input_grad[:2])
        ctx.fused = _use_fused(backend, grad_mode, needs, a)
        if ctx.fused:
            out, gx, ga = _kernel_sum_sym_fused_op(x, a, kernel, list(bandwidths), exclude_diag, backend, needs)
            ctx.save_for_backward(x, a, gx, ga)
            return out
        ctx.save_for_backward(x, a)
        return _kernel_sum_sym_op(x, a, kernel, list(bandwidths), exclude_diag, backend, precision)

    @staticmethod
    def backward(ctx, g):
        x, a = ctx.saved_tensors[:2]
        kernel, bandwidths, exclude_diag, backend, precision = ctx.config
        needs = list(ctx.needs_input_grad[:2])
        if torch.is_grad_enabled():
            out = ref.kernel_sum_sym(x, a, kernel, bandwidths, exclude_diag)
            grads = _grads_through(out, (x, a), needs, g)
        elif ctx.fused:
            grads = _scaled((_or_none(t) if n else None for t, n in zip(ctx.saved_tensors[2:], needs)), g)
        else:
            grads = tuple(_or_none(t) for t in _kernel_sum_sym_backward_op(g.contiguous(), x, a, kernel, list(bandwidths),
                                                                           exclude_diag, backend, precision, needs))
        return (*grads, None, None, None, None, None, None)


# ---- mixture_logpdf ----------------------------------------------------------------------------

@torch.library.custom_op("implicitdiv::mixture_logpdf", mutates_args=())
def _mixture_logpdf_op(z: torch.Tensor, means: torch.Tensor, logvars: torch.Tensor, backend: str) -> torch.Tensor:
    return _kernels(backend).mixture_logpdf_forward(z, means, logvars)


@_mixture_logpdf_op.register_fake
def _(z, means, logvars, backend):
    return z.new_empty((z.shape[0],))


@torch.library.custom_op("implicitdiv::mixture_logpdf_backward", mutates_args=())
def _mixture_logpdf_backward_op(g: torch.Tensor, z: torch.Tensor, means: torch.Tensor, logvars: torch.Tensor,
                                out: torch.Tensor, backend: str, needs: list[bool]
                                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    grads = _kernels(backend).mixture_logpdf_backward(g, z, means, logvars, out, tuple(needs))
    return tuple(_or_empty(t, z) for t in grads)


@_mixture_logpdf_backward_op.register_fake
def _(g, z, means, logvars, out, backend, needs):
    return tuple(t.new_empty(t.shape) if need else t.new_empty(0) for t, need in zip((z, means, logvars), needs))


class MixtureLogpdfFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, z, means, logvars, backend):
        out = _mixture_logpdf_op(z, means, logvars, backend)
        ctx.save_for_backward(z, means, logvars, out)
        ctx.backend = backend
        return out

    @staticmethod
    def backward(ctx, g):
        z, means, logvars, out = ctx.saved_tensors
        needs = list(ctx.needs_input_grad[:3])
        if torch.is_grad_enabled():
            grads = _grads_through(ref.gaussian_mixture_logpdf(z, means, logvars), (z, means, logvars), needs, g)
        else:
            grads = tuple(_or_none(t) for t in _mixture_logpdf_backward_op(g.contiguous(), z, means, logvars, out, ctx.backend, needs))
        return (*grads, None)


def _grads_through(out, inputs, needs, g):
    """Gradients of <out, g> through the reference graph, differentiable themselves."""
    wanted = [t for t, n in zip(inputs, needs) if n]
    found = iter(torch.autograd.grad(out, wanted, g, create_graph=True, allow_unused=True)) if wanted else iter(())
    return tuple(next(found) if n else None for n in needs)


# ---- entry points used by the public layer -----------------------------------------------------

# backend="reference" runs the naive reference itself, so callers need not branch.

def kernel_sum(x, y, a, b, kernel, bandwidths, backend, precision="ieee"):
    if backend == "reference":
        return ref.kernel_sum(x, y, a, b, kernel, tuple(bandwidths))
    return KernelSumFunction.apply(x.contiguous(), y.contiguous(), a.contiguous(), b.contiguous(), kernel, tuple(bandwidths),
                                   backend, precision, torch.is_grad_enabled())


def kernel_sum_sym(x, a, kernel, bandwidths, exclude_diag, backend, precision="ieee"):
    if backend == "reference":
        return ref.kernel_sum_sym(x, a, kernel, tuple(bandwidths), bool(exclude_diag))
    return KernelSumSymFunction.apply(x.contiguous(), a.contiguous(), kernel, tuple(bandwidths), bool(exclude_diag), backend,
                                      precision, torch.is_grad_enabled())


def mixture_logpdf(z, means, logvars, backend):
    if backend == "reference":
        return ref.gaussian_mixture_logpdf(z, means, logvars)
    return MixtureLogpdfFunction.apply(z.contiguous(), means.contiguous(), logvars.contiguous(), backend)
