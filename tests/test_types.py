"""Type hints of the public API: every public function and module front is annotated, mypy passes
on the public surface (pyproject.toml [tool.mypy]), and misuse of the API is caught by it."""
import inspect
import subprocess
import sys
from pathlib import Path

import pytest

import implicitdiv as idv
from implicitdiv import nn as idn

ROOT = Path(__file__).resolve().parents[1]
pytest.importorskip("mypy")


@pytest.fixture(scope="module")
def mypy(tmp_path_factory):
    cache = tmp_path_factory.mktemp("mypy_cache")

    def run(*args):
        return subprocess.run([sys.executable, "-m", "mypy", "--cache-dir", str(cache), *args], cwd=ROOT,
                              capture_output=True, text=True, timeout=600)
    return run


def _public_functions():
    for name in idv.__all__:
        obj = getattr(idv, name)
        if inspect.isfunction(obj):
            yield name, obj
    for name in idn.__all__:
        cls = getattr(idn, name)
        yield f"nn.{name}.__init__", cls.__init__
        yield f"nn.{name}.forward", cls.forward


@pytest.mark.parametrize("name,fn", list(_public_functions()), ids=lambda v: v if isinstance(v, str) else "")
def test_public_function_is_fully_annotated(name, fn):
    params = [p for p in inspect.signature(fn).parameters.values() if p.name != "self"]
    missing = [p.name for p in params if p.name not in fn.__annotations__]
    assert not missing and "return" in fn.__annotations__, f"{name}: no annotation for {missing or 'return'}"


def test_mypy_passes_on_the_public_surface(mypy):
    done = mypy()
    assert done.returncode == 0, done.stdout + done.stderr


def test_mypy_catches_misuse(mypy, tmp_path):
    misuse = tmp_path / "misuse.py"
    misuse.write_text(
        "import torch\nimport implicitdiv as idv\nx = torch.randn(3, 2)\n"
        "idv.mmd2(x, x, bandwidth='wide')\n"
        "loss: torch.Tensor = idv.discriminator_loss(x[:, 0], x[:, 1], reduction='none')\n"
        "z, log_q, extra = idv.reparameterize(x, x)\n"
        "ok: torch.Tensor = idv.discriminator_loss(x[:, 0], x[:, 1])\n")
    done = mypy(str(misuse))
    errors = sorted({int(line.split(":")[1]) for line in done.stdout.splitlines() if ": error:" in line})
    assert done.returncode == 1 and errors == [4, 5, 6], done.stdout


def test_version_is_written_once():
    """pyproject.toml reads the version from implicitdiv/__init__.py (scikit-build-core's regex provider)."""
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert 'dynamic = ["version"]' in pyproject and 'metadata.version.input = "implicitdiv/__init__.py"' in pyproject
    assert idv.__version__ in (ROOT / "implicitdiv" / "__init__.py").read_text()
    from importlib.metadata import version

    assert version("implicitdiv") == idv.__version__  # what the installed metadata says
