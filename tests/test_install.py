"""The package installs as a user installs it: `pip install .` with build isolation, into a fresh
virtual environment, builds the extension from pyproject.toml alone; the installed copy (not this
checkout) imports with implicitdiv._C, passes `implicitdiv doctor` and runs `implicitdiv bench`
from a folder outside the source tree.

To keep CI short, the build is of the baseline instruction set only (IMPLICITDIV_ISAS=baseline)
and torch is not installed again (pip install --no-deps; a .pth file lends the fresh environment
this one's torch and numpy). The full matrix (every Python, pip install -e, wheels, sdist, deps
resolved) is scripts/install_matrix.sh, run by hand: see the README's install section."""
import os
import subprocess
import sys
from pathlib import Path

import numpy
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    where = tmp_path_factory.mktemp("install")
    env_dir = where / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(env_dir)], check=True, timeout=300)
    python = env_dir / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k not in ("TRITON_INTERPRET", "IMPLICITDIV_ISA")}
    env.update(IMPLICITDIV_ISAS="baseline", PIP_DISABLE_PIP_VERSION_CHECK="1")
    done = subprocess.run([str(python), "-m", "pip", "install", "--no-deps", str(ROOT)], env=env, cwd=where,
                          capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    lent = {str(Path(m.__file__).resolve().parents[1]) for m in (torch, numpy)}
    (Path(site) / "_lent_by_the_test.pth").write_text("\n".join(sorted(lent)) + "\n")
    return env_dir, env, where


def _run(venv, *args):
    env_dir, env, where = venv
    return subprocess.run([str(a) for a in args], env=env, cwd=where, capture_output=True, text=True, timeout=600)


def test_installed_copy_imports_with_the_extension(venv):
    env_dir = venv[0]
    done = _run(venv, env_dir / "bin" / "python", "-c",
                "import implicitdiv, implicitdiv._C as C; print(implicitdiv.__file__); print(C.ISA, *C.BUILT)")
    assert done.returncode == 0, done.stderr
    where, isas = done.stdout.strip().splitlines()
    assert Path(where).resolve().is_relative_to(env_dir.resolve()) and not Path(where).resolve().is_relative_to(ROOT)
    assert isas == "baseline baseline"


def test_installed_doctor_passes(venv):
    done = _run(venv, venv[0] / "bin" / "implicitdiv", "doctor")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "instruction set baseline" in done.stdout and "self-check cpp on cpu: passed" in done.stdout


def test_installed_bench_runs_outside_the_checkout(venv):
    done = _run(venv, venv[0] / "bin" / "implicitdiv", "bench", "--functions", "mmd2,gaussian_nll", "--sizes", "64",
                "--dims", "2", "--repeats", "1", "--min-time", "0.001", "--peers", "naive", "--format", "csv")
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.strip().splitlines()
    assert lines[0].startswith("function,n,d") and any(",cpp," in line for line in lines)
