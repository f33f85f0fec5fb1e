"""The C++ kernels built once per instruction set (CMakeLists.txt, implicitdiv/_C.py): the most
capable set the CPU runs is chosen, IMPLICITDIV_ISA forces one or fails naming the choices, and
every set this machine runs passes the C++ equivalence suite (the default one in this process,
the others in a subprocess each)."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import implicitdiv as idv
from implicitdiv import backend

pytestmark = pytest.mark.skipif("cpp" not in idv.backends(), reason="implicitdiv._C is not built")
if "cpp" in idv.backends():
    from implicitdiv import _C

ROOT = Path(__file__).resolve().parents[1]
TABLE = {"baseline": {}, "avx2": {"avx2": True, "fma": True},
         "avx512": {"avx2": True, "fma": True, "avx512f": False, "avx512bw": False}}
# the C++ equivalence suite: the cpp cases of these files, less those that do not depend on the
# instruction set and cost the most (torch.compile tracing, gradcheck, the reference's double
# backward, the OpenMP runtime binding): about 40 s of CPU a set
EQUIVALENCE_FILES = ("tests/test_pairwise_cpp.py", "tests/test_ratio_fused.py", "tests/test_gaussian_fused.py")
EQUIVALENCE_SELECTION = "not triton and not compile and not gradcheck and not double_backward and not openmp"


def test_the_most_capable_runnable_set_is_chosen():
    assert _C.runnable(TABLE) == ("baseline", "avx2")
    assert _C.choose(None, TABLE) == "avx2"
    assert _C.choose("", TABLE) == "avx2"
    assert _C.choose("baseline", TABLE) == "baseline"
    assert _C.ISA == _C.choose(os.environ.get(_C.ENV))  # this process: the default, or what the variable forces


def test_forcing_what_the_cpu_lacks_names_the_lacking_features_and_the_choices():
    with pytest.raises(_C.IsaError, match=r"'avx512': this CPU lacks avx512f, avx512bw; choices here: baseline, avx2$"):
        _C.choose("avx512", TABLE)


def test_forcing_an_unknown_set_names_the_choices():
    with pytest.raises(_C.IsaError, match=r"'sse9' is not an instruction set this build has; choices here: baseline, avx2$"):
        _C.choose("sse9", TABLE)
    with pytest.raises(_C.IsaError, match="runs none"):
        _C.choose(None, {"avx2": {"avx2": False}})


def _python(code: str, isa: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, IMPLICITDIV_ISA=isa)
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)


def test_the_variable_forces_each_runnable_set():
    code = "import implicitdiv._C as C; print(C.ISA, C._module.__name__)"
    for isa in _C.runnable():
        done = _python(code, isa)
        assert done.returncode == 0, done.stderr
        assert done.stdout.split() == [isa, f"implicitdiv._C_{isa}"]


def test_an_impossible_choice_leaves_cpp_unavailable_and_says_why():
    code = ("import torch, implicitdiv as idv\n"
            "from implicitdiv import backend\n"
            "print('cpp' in idv.backends())\n"
            "try:\n    idv.mmd2(torch.ones(2, 1), torch.ones(2, 1), backend='cpp')\n"
            "except RuntimeError as e:\n    print(e)\n")
    done = _python(code, "sse9")
    assert done.returncode == 0, done.stderr
    first, second = done.stdout.strip().splitlines()
    assert first == "False"
    assert "backend='cpp' needs" in second and "IMPLICITDIV_ISA='sse9'" in second
    assert "choices here: " + ", ".join(_C.runnable()) in second


def test_every_runnable_set_matches_the_reference_in_process():
    """use_isa routes the routines to each variant in turn; each gives the reference's MMD and gradient."""
    g = torch.Generator().manual_seed(3)
    x = torch.randn(70, 5, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.randn(40, 5, generator=g, dtype=torch.float64) + 0.3
    ref = idv.mmd2(x, y, bandwidth=(0.5, 2.0), backend="reference")
    (ref_grad,) = torch.autograd.grad(ref, x)
    before = _C.ISA
    try:
        for isa in _C.runnable():
            _C.use_isa(isa)
            assert _C.pairwise_sum_forward is getattr(_C._module, "pairwise_sum_forward") and _C.ISA == isa
            out = idv.mmd2(x, y, bandwidth=(0.5, 2.0), backend="cpp")
            (grad,) = torch.autograd.grad(out, x)
            assert torch.allclose(out, ref, rtol=1e-10, atol=1e-12), isa
            assert torch.allclose(grad, ref_grad, rtol=1e-9, atol=1e-12), isa
    finally:
        _C.use_isa(before)


@pytest.mark.parametrize("isa", [i for i in ("baseline", "avx2", "avx512", "native")
                                 if "cpp" in idv.backends() and i in _C.runnable() and i != _C.ISA])
def test_equivalence_suite_passes_on(isa):
    """The cpp cases of the equivalence files, in a process forced to `isa` (this process runs
    them on the default set)."""
    env = dict(os.environ, IMPLICITDIV_ISA=isa, TRITON_INTERPRET="1")
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *EQUIVALENCE_FILES,
                           "-k", EQUIVALENCE_SELECTION], cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert " passed" in done.stdout.splitlines()[-1]


def test_cpp_missing_reason_is_none_when_built():
    assert backend.cpp_missing_reason() is None


@pytest.mark.parametrize("isa,forbidden", [("baseline", ("ymm", "zmm")), ("avx2", ("zmm",))])
def test_a_variant_holds_no_instruction_of_a_wider_set(isa, forbidden):
    """Disassembled, _C_baseline touches no AVX register and _C_avx2 no AVX-512 one: nothing wider
    (a -march=native, an inline function built for AVX-512) leaks into a variant a smaller CPU loads."""
    import importlib.util
    import shutil

    if shutil.which("objdump") is None or isa not in _C.BUILT:
        pytest.skip("needs objdump and the variant")
    path = importlib.util.find_spec(f"implicitdiv._C_{isa}").origin
    text = subprocess.run(["objdump", "-d", "--no-show-raw-insn", path], capture_output=True, text=True, check=True).stdout
    assert text.count("\n") > 1000  # it did disassemble the module
    used = [reg for reg in forbidden if f"%{reg}" in text]
    assert not used, f"_C_{isa} uses {used} registers"
