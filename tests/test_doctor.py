"""implicitdiv doctor: reports the installation, passes on what works, fails on a wrong backend."""
import io
import subprocess
import sys

import torch

import implicitdiv as idv
from implicitdiv import doctor


def test_doctor_passes_here_and_names_each_backend(capsys):
    out = io.StringIO()
    assert doctor.main(out) == 0
    text = out.getvalue()
    assert f"implicitdiv {idv.__version__}" in text and f"torch {torch.__version__}" in text
    for name in ("reference", "cpp", "triton"):
        assert f"\n{name:<10} " in text
    for name in idv.backends():
        if name != "reference":
            assert f"self-check {name} on " in text and ": passed" in text
    if "cpp" in idv.backends():
        from implicitdiv import _C

        assert f"instruction set {_C.ISA} " in text and "threads " in text


def test_a_backend_that_is_off_by_a_little_fails_the_check(monkeypatch):
    """A planted error of 1e-3 in one function on one backend: the doctor names it and exits 1."""
    def skewed(x, y, backend):
        out = idv.mmd2(x, y, bandwidth=(0.5, 1.0), backend=backend)
        return out * 1.001 + 1e-3 if backend != "reference" else out

    monkeypatch.setattr(doctor, "_cases", lambda: [doctor.Case("mmd2", skewed, ((20, 3), (15, 3)))])
    fast = [b for b in idv.backends() if b != "reference"]
    if not fast:
        return
    failures = doctor.check_backend(fast[0], "cpu" if fast[0] == "cpp" or not torch.cuda.is_available() else "cuda")
    assert failures and all(f.startswith("mmd2 ") for f in failures)
    assert "mmd2 float64 value 0: error" in failures[0] and any(f.startswith("mmd2 float32 value 0") for f in failures)
    out = io.StringIO()
    assert doctor.main(out) == 1 and "FAILED" in out.getvalue()


def test_module_and_console_entry_points():
    done = subprocess.run([sys.executable, "-m", "implicitdiv", "doctor"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "self-check" in done.stdout
