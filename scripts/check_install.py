"""Checks an installed implicitdiv, run by the environment's own python from outside the source
tree (scripts/install_matrix.sh):

  1. the C++ variants implicitdiv._C_<isa> that the CPU runs and implicitdiv._cpuinfo load from the
     installed files and compute a weighted rbf kernel sum equal to numpy's (this needs no torch);
  2. with torch installed: `import implicitdiv` is the installed copy (or, for an editable
     install, the source tree given as the argument), implicitdiv._C picks the most
     capable set, and `implicitdiv doctor` passes with IMPLICITDIV_ISA=baseline.

Prints one line per check; exit code 0 only if all pass."""
import glob
import importlib.util
import os
import subprocess
import sys
import sysconfig

import numpy as np


def load(path: str, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> int:
    site = sysconfig.get_paths()["platlib"]
    found = {os.path.basename(p).split(".")[0]: p for p in glob.glob(os.path.join(site, "implicitdiv", "_*.so"))}
    cpuinfo = load(found["_cpuinfo"], "implicitdiv._cpuinfo")
    runnable = [isa for isa, features in cpuinfo.variants() if all(has for _, has in features)]
    print(f"installed in {site}: {sorted(found)}; this CPU runs {runnable}")
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((5, 3)), rng.standard_normal((4, 3))
    a, b = rng.standard_normal(5), rng.standard_normal(4)
    want = a @ np.exp(-0.5 * ((x[:, None, :] - y[None, :, :]) ** 2).sum(-1)) @ b  # rbf, sigma = 1
    for isa in runnable:
        module = load(found[f"_C_{isa}"], f"implicitdiv._C_{isa}")
        out = np.empty(1)
        module.pairwise_sum_forward(True, list(module.pairwise_kernel_names()).index("rbf"), [1.0], False, False, 1, 5,
                                    4, 3, 1, x.ctypes.data, y.ctypes.data, a.ctypes.data, b.ctypes.data,
                                    out.ctypes.data, 1)
        assert np.allclose(out[0], want, rtol=1e-12, atol=1e-12), isa
        print(f"_C_{isa}: pairwise_sum_forward equals numpy's rbf kernel sum")
    if importlib.util.find_spec("torch") is None:
        print("torch is not installed here: import implicitdiv and doctor not checked")
        return 0
    import implicitdiv
    import implicitdiv._C as C

    home = sys.argv[1] if len(sys.argv) > 1 else sys.prefix  # an editable install runs the source tree given
    assert os.path.realpath(implicitdiv.__file__).startswith(os.path.realpath(home)), implicitdiv.__file__
    print(f"import implicitdiv {implicitdiv.__version__} from {implicitdiv.__file__}; _C uses {C.ISA} of {list(C.BUILT)}")
    env = dict(os.environ, IMPLICITDIV_ISA="baseline")
    env.pop("TRITON_INTERPRET", None)
    done = subprocess.run([os.path.join(sys.prefix, "bin", "implicitdiv"), "doctor"], env=env, capture_output=True, text=True)
    print("IMPLICITDIV_ISA=baseline implicitdiv doctor: exit code", done.returncode)
    print("".join("    " + line + "\n" for line in done.stdout.splitlines()), end="")
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
