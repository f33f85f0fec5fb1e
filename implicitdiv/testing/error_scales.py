"""The error model's magnitudes for every public function of implicitdiv, in the form
check_equivalence takes: ``for_function(name, kwargs, dtype)`` is a callable
(inputs, upstreams) -> {"out0": (M, terms), ..., input name: (M, terms)} on the public shapes (a
gradient under per-element upstreams of a loss may carry a third entry: the size of the derivative
the op saves in the dtype, see implicitdiv.testing.compare).

    from implicitdiv.testing import check_equivalence, error_scales
    check_equivalence(my_mmd2, reference_mmd2, {"x": x, "y": y}, dtype=torch.float32, grad_names=("x", "y"),
                      kwargs=kw, magnitudes=error_scales.for_function("mmd2", kw, torch.float32))
"""
from __future__ import annotations

import torch

from .. import _validate
from .._codes import GAUSSIAN_FUNCTIONS
from .._half import HALF, triton_pairwise
from . import loss_magnitudes, pair_magnitudes
from .rounding import unit_roundoff

RATIO_FUNCTIONS = ("discriminator_loss", "generator_loss", "adversarial_losses", "fdiv_estimate", "ratio_matching_loss")
PAIRWISE_FUNCTIONS = ("kernel_sum", "kernel_sum_sym", "mmd2", "gaussian_mixture_logpdf")
MODELS = PAIRWISE_FUNCTIONS + RATIO_FUNCTIONS + GAUSSIAN_FUNCTIONS


def _kernel_parameters(kwargs, d: int) -> tuple:
    """The kernel's parameter tuple (implicitdiv.reference.kernels): bandwidths, or the polynomial's."""
    bw = kwargs.get("bandwidth", 1.0)
    bw = bw.detach() if isinstance(bw, torch.Tensor) else bw
    return _validate.kernel_parameters(kwargs.get("kernel", "rbf"), bw, d, kwargs.get("degree", 3),
                                       kwargs.get("gamma"), kwargs.get("coef0", 1.0))


def _weights(w, n: int, batch: int, batched: bool):
    """Public weights (None, (N,), (N, P), (B, N), (B, N, P)) as (B, N, P) and whether they had P."""
    if w is None:
        return torch.ones(batch, n, 1, dtype=torch.float64), False
    w = torch.as_tensor(w, dtype=torch.float64)
    cols = w.dim() == (3 if batched else 2)
    return w.reshape(batch, n, w.shape[-1] if cols else 1), cols


def _unweights(m, cols: bool, shape):
    return (m if cols else m.sum(-1)).reshape(shape)


def _kernel_sum(inputs, upstreams, kwargs, dtype, sym: bool):
    x = torch.as_tensor(inputs["x"], dtype=torch.float64)
    batched = x.dim() == 3
    xb = x if batched else x.unsqueeze(0)
    batch, n = xb.shape[0], xb.shape[1]
    a, a_cols = _weights(inputs.get("x_weights"), n, batch, batched)
    if sym:
        yb, b, b_cols = xb, a, a_cols
    else:
        y = torch.as_tensor(inputs["y"], dtype=torch.float64)
        yb = y if batched else y.unsqueeze(0)
        b, b_cols = _weights(inputs.get("y_weights"), yb.shape[1], batch, batched)
    p = max(a.shape[-1], b.shape[-1])
    a, b = a.expand(-1, -1, p), b.expand(-1, -1, p)
    g = upstreams[0].double().reshape(batch, -1).expand(batch, p)
    cols = a_cols or b_cols
    params = _kernel_parameters(kwargs, xb.shape[-1])
    found = pair_magnitudes.kernel_sum(xb, yb, a, b, g, kwargs.get("kernel", "rbf"), params, dtype, sym=sym)
    out, terms = found["out"]
    result = {"out0": ((out if cols else out[..., 0]).reshape(upstreams[0].shape), terms)}
    sides = [("x", "x", "a", "x_weights", a_cols)] + ([] if sym else [("y", "y", "b", "y_weights", b_cols)])
    for name, key, wkey, wname, wcols in sides:
        m, t = found[key]
        result[name] = (m.reshape(inputs[name].shape), t)
        if inputs.get(wname) is not None:
            mw, tw = found[wkey]
            result[wname] = (_unweights(mw.sum(-1, keepdim=True) if not wcols else mw, wcols,
                                        torch.as_tensor(inputs[wname]).shape), tw)
    return result


def _mmd2(inputs, upstreams, kwargs, dtype):
    x, y = (torch.as_tensor(inputs[n], dtype=torch.float64) for n in ("x", "y"))
    batched = x.dim() == 3
    xb, yb = (x, y) if batched else (x.unsqueeze(0), y.unsqueeze(0))
    g = upstreams[0].double().reshape(-1)
    found = pair_magnitudes.mmd2(xb, yb, g, kwargs.get("kernel", "rbf"), _kernel_parameters(kwargs, xb.shape[-1]),
                                 kwargs.get("estimator", "biased"), dtype)
    out, terms = found["out"]
    return {"out0": (out.reshape(upstreams[0].shape), terms),
            "x": (found["x"][0].reshape(x.shape), found["x"][1]), "y": (found["y"][0].reshape(y.shape), found["y"][1])}


def _mixture(inputs, upstreams, kwargs, dtype):
    found = pair_magnitudes.mixture_logpdf(*(torch.as_tensor(inputs[n]) for n in ("z", "means", "logvars")),
                                           upstreams[0], dtype)
    return {"out0": found["out"], **{n: found[n] for n in ("z", "means", "logvars")}}


def for_function(name: str, kwargs: dict, dtype: torch.dtype):
    """The magnitudes callable of implicitdiv.<name> called with these keyword arguments in dtype
    ("kernel_sum_sym": kernel_sum(x, x, x_weights=w, y_weights=w) with inputs x and x_weights)."""
    kwargs = dict(kwargs)
    if name in ("kernel_sum", "kernel_sum_sym"):
        return lambda inputs, ups: _kernel_sum(inputs, ups, kwargs, dtype, name == "kernel_sum_sym")
    if name == "mmd2":
        return lambda inputs, ups: _mmd2(inputs, ups, kwargs, dtype)
    if name == "gaussian_mixture_logpdf":
        return lambda inputs, ups: _mixture(inputs, ups, kwargs, dtype)
    if name in RATIO_FUNCTIONS:
        return lambda inputs, ups: loss_magnitudes.ratio_loss(name, inputs, kwargs, ups)
    if name in GAUSSIAN_FUNCTIONS:
        return lambda inputs, ups: loss_magnitudes.gaussian_terms(name, inputs, kwargs, ups)
    raise ValueError(f"no error model for {name!r}")


def compute_roundoff(name: str, backend: str, dtype: torch.dtype, kwargs: dict, grad: bool = True) -> float:
    """The unit roundoff implicitdiv.<name> computes with on backend for inputs of dtype (grad: some
    input requires grad): float32's for float16/bfloat16 inputs (implicitdiv._half), except where the
    Triton pairwise kernels take half-precision operands (implicitdiv._half.triton_pairwise)."""
    if dtype not in HALF:
        return unit_roundoff(dtype)
    native = name in ("kernel_sum", "kernel_sum_sym", "mmd2") and triton_pairwise(backend, kwargs, dtype, grad)
    return unit_roundoff(dtype if native else torch.float32)
