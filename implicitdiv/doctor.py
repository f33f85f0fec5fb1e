"""``implicitdiv doctor``: what this installation can run, and a short self-check of it.

Prints the versions (implicitdiv, torch, triton, numpy, Python), each backend with why a missing
one is missing and the fix, the instruction set of the C++ kernels, their thread mode, the CUDA
and Triton-interpreter state, then checks every available fast backend against the float64
reference: one small call per fused function (mmd_test aside: it is kernel_sum with weight
columns), values and gradients, in float64 and float32, within

    |fast - ref| <= tol * max(1, |ref|)      tol = 1e-9 (float64), 1e-4 (float32).

Exit code 0 only if every available backend passes.
"""
from __future__ import annotations

import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from . import __version__, backend
from .ops import registry

TOLERANCE = {torch.float64: 1e-9, torch.float32: 1e-4}


@dataclass
class Case:
    function: str
    call: Callable[..., object]  # call(inputs..., backend=) -> tensor or tuple of tensors
    shapes: tuple[tuple[int, ...], ...]
    positive: tuple[int, ...] = ()  # inputs drawn in [0.5, 1.5] (weights, ratios)


def _cases() -> list[Case]:
    import implicitdiv as idv

    return [
        Case("kernel_sum", lambda x, y, a, b, **k: idv.kernel_sum(x, y, kernel="imq", bandwidth=(0.5, 2.0), x_weights=a,
                                                                  y_weights=b, **k), ((33, 5), (17, 5), (33, 3), (17, 3)),
             positive=(2, 3)),
        Case("mmd2", lambda x, y, **k: idv.mmd2(x, y, bandwidth=(0.5, 1.0, 2.0), estimator="unbiased", **k),
             ((40, 3), (31, 3))),
        Case("gaussian_mixture_logpdf", lambda z, m, lv, **k: idv.gaussian_mixture_logpdf(z, m, 0.3 * lv, **k),
             ((21, 4), (13, 4), (13, 4))),
        Case("discriminator_loss", lambda r, f, **k: idv.discriminator_loss(r, f, kind="hinge", **k), ((50,), (37,))),
        Case("generator_loss", lambda f, **k: idv.generator_loss(f, kind="js", **k), ((37,),)),
        Case("adversarial_losses", lambda r, f, **k: idv.adversarial_losses(r, f, kind="gan", **k), ((50,), (37,))),
        Case("fdiv_estimate", lambda r, f, **k: idv.fdiv_estimate(r, f, divergence="kl", **k), ((50,), (37,))),
        Case("ratio_matching_loss", lambda p, q, **k: idv.ratio_matching_loss(p, q, **k), ((50,), (37,)),
             positive=(0, 1)),
        Case("gaussian_nll", lambda z, m, lv, **k: idv.gaussian_nll(z, m, lv, **k), ((9, 6),) * 3),
        Case("kl_std_normal", lambda m, lv, **k: idv.kl_std_normal(m, lv, reduction="sum", **k), ((9, 6),) * 2),
        Case("kl_gaussians", lambda a, b, c, d, **k: idv.kl_gaussians(a, b, c, d, **k), ((9, 6),) * 4),
        Case("reparameterize", lambda m, lv, e, **k: idv.reparameterize(m, lv, e, **k), ((9, 6),) * 3),
    ]


def _flat(out) -> list[torch.Tensor]:
    return list(out) if isinstance(out, tuple) else [out]


def _run(case: Case, inputs: list[torch.Tensor], name: str) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Outputs and the gradients of sum_k <out_k, u_k> for a fixed upstream u."""
    xs = [t.detach().clone().requires_grad_(True) for t in inputs]
    outs = _flat(case.call(*xs, backend=name))
    g = torch.Generator().manual_seed(1)
    us = [torch.randn(o.shape, generator=g, dtype=torch.float64).to(o) for o in outs]
    grads = torch.autograd.grad(torch.stack([(o * u).sum() for o, u in zip(outs, us)]).sum(), xs, allow_unused=True)
    return [o.detach() for o in outs], [torch.zeros_like(x) if gr is None else gr for x, gr in zip(xs, grads)]


def _inputs(case: Case, dtype: torch.dtype, device: str) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    out = []
    for i, shape in enumerate(case.shapes):
        t = torch.rand(shape, generator=g, dtype=torch.float64) + 0.5 if i in case.positive else \
            torch.randn(shape, generator=g, dtype=torch.float64)
        out.append(t.to(device=device, dtype=dtype))
    return out


def check_backend(name: str, device: str, dtypes=(torch.float64, torch.float32)) -> list[str]:
    """The failures of backend `name` on `device` against the float64 reference (empty: passed)."""
    failures = []
    for case in _cases():
        if not registry.has(name, case.function):
            continue
        ref_out, ref_grad = _run(case, _inputs(case, torch.float64, "cpu"), "reference")
        for dtype in dtypes:
            try:
                out, grad = _run(case, _inputs(case, dtype, device), name)
            except Exception as e:  # a crash of the backend is a failure to report, not to propagate
                failures.append(f"{case.function} {dtype}: {type(e).__name__}: {e}")
                continue
            for what, got, want in (("value", out, ref_out), ("gradient", grad, ref_grad)):
                for k, (a, b) in enumerate(zip(got, want)):
                    a = a.double().cpu()
                    err = (a - b).abs().max().item() if b.numel() else 0.0
                    bound = TOLERANCE[dtype] * max(1.0, b.abs().max().item() if b.numel() else 0.0)
                    if not err <= bound:  # NaN fails too
                        failures.append(f"{case.function} {str(dtype)[6:]} {what} {k}: error {err:.3g} > {bound:.3g}")
    return failures


# ---- the report ---------------------------------------------------------------------------------

def _version(module: str) -> str:
    try:
        return __import__(module).__version__
    except ImportError:
        return "not installed"


def _cpp_state() -> tuple[bool, list[str]]:
    reason = backend.cpp_missing_reason()
    if reason is not None:
        if "IMPLICITDIV_ISA" in reason:
            fix = "unset IMPLICITDIV_ISA, or set it to one of the choices it names"
        else:
            fix = "reinstall from source so the extension builds: pip install . (a C++17 compiler and CMake)"
        return False, [f"cpp        no: {reason}", f"           fix: {fix}"]
    from . import _C
    from .fused import cpp

    forced = os.environ.get(_C.ENV)
    lines = [f"cpp        yes: C++ kernels on CPU tensors, instruction set {_C.ISA} "
             f"({'forced by ' + _C.ENV if forced else 'the most capable this CPU runs'}; "
             f"built: {', '.join(_C.BUILT)}; this CPU runs: {', '.join(_C.runnable())})"]
    if cpp.OPENMP_TEAMS:
        mode = "teams of torch's own OpenMP workers"
    elif os.environ.get("IMPLICITDIV_THREADS", "") == "std":
        mode = "own std::threads (IMPLICITDIV_THREADS=std)"
    elif not _C.openmp_built():
        mode = "own std::threads (built without OpenMP)"
    else:
        mode = "own std::threads (its OpenMP runtime is not torch's; OMP_WAIT_POLICY=PASSIVE avoids the contention)"
    lines.append(f"threads    {mode}; torch.get_num_threads() = {torch.get_num_threads()}")
    return True, lines


def _triton_state() -> tuple[str | None, list[str]]:
    """The device the triton backend runs on here (None: unavailable), and the report lines."""
    if not backend.triton_installed():
        return None, ["triton     no: triton is not installed", "           fix: pip install 'implicitdiv[triton]' (needs a CUDA GPU)"]
    if torch.cuda.is_available():
        return "cuda", [f"triton     yes: fused Triton kernels on CUDA tensors ({torch.cuda.get_device_name()})"]
    if backend.triton_interpreting():
        return "cpu", ["triton     yes: on CPU tensors through the interpreter (TRITON_INTERPRET=1; slow, for testing)"]
    return None, ["triton     no: no CUDA device (torch.cuda.is_available() is False)",
                  "           fix: run on a CUDA GPU; TRITON_INTERPRET=1 (set before triton is imported) runs the kernels on CPU tensors for testing"]


def main(out=sys.stdout) -> int:
    def say(line: str = "") -> None:
        print(line, file=out, flush=True)

    say(f"implicitdiv {__version__}   torch {torch.__version__}   triton {_version('triton')}   "
        f"numpy {_version('numpy')}   Python {platform.python_version()} ({sys.executable})")
    say(f"machine    {platform.machine()}, {os.cpu_count()} CPUs; {platform.platform()}")
    cuda = f"CUDA {torch.version.cuda}, {torch.cuda.device_count()} device(s)" if torch.cuda.is_available() else \
        f"no CUDA device (torch built with CUDA {torch.version.cuda})" if torch.version.cuda else "torch built without CUDA"
    say(f"cuda       {cuda}; TRITON_INTERPRET={os.environ.get('TRITON_INTERPRET', '(unset)')}")
    say("reference  yes: naive PyTorch, the ground truth")
    cpp_ok, lines = _cpp_state()
    for line in lines:
        say(line)
    triton_device, lines = _triton_state()
    for line in lines:
        say(line)
    checks = ([("cpp", "cpu")] if cpp_ok else []) + ([("triton", triton_device)] if triton_device else [])
    if not checks:
        say("self-check nothing to check: no fast backend is available")
    failed = 0
    for name, device in checks:
        start = time.perf_counter()
        failures = check_backend(name, device)
        took = time.perf_counter() - start
        verdict = "FAILED" if failures else "passed"
        say(f"self-check {name} on {device}: {verdict} ({took:.2f} s; every fused function, float64 and float32, "
            f"values and gradients against the float64 reference)")
        for f in failures:
            say(f"           {f}")
        failed += bool(failures)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
