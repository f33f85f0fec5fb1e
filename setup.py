"""Builds implicitdiv and its CPU extension implicitdiv._C (csrc/, CMake + pybind11, no libtorch)."""
import os
import subprocess
import sys
from pathlib import Path

from setuptools import Extension, find_packages, setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent


class CMakeExtension(Extension):
    def __init__(self, name):
        super().__init__(name, sources=[])


class CMakeBuild(build_ext):
    def build_extension(self, ext):
        out_dir = Path(self.get_ext_fullpath(ext.name)).resolve().parent
        build_dir = Path(self.build_temp).resolve() / "cmake"
        build_dir.mkdir(parents=True, exist_ok=True)
        native = os.environ.get("IMPLICITDIV_NATIVE", "ON")
        subprocess.check_call(
            [
                "cmake",
                str(ROOT),
                f"-DCMAKE_LIBRARY_OUTPUT_DIRECTORY={out_dir}",
                f"-DPython_EXECUTABLE={sys.executable}",
                f"-DIMPLICITDIV_NATIVE={native}",
                "-DCMAKE_BUILD_TYPE=Release",
            ],
            cwd=build_dir,
        )
        subprocess.check_call(["cmake", "--build", str(build_dir), "-j", str(os.cpu_count() or 2)], cwd=build_dir)


setup(
    name="implicitdiv",
    version="0.1.0",
    description="Fused kernel-MMD, log-ratio and Gaussian latent losses for implicit generative models",
    packages=find_packages(include=["implicitdiv", "implicitdiv.*"]),
    ext_modules=[CMakeExtension("implicitdiv._C")],
    cmdclass={"build_ext": CMakeBuild},
    python_requires=">=3.10",
    install_requires=["torch", "numpy"],
    extras_require={"triton": ["triton"], "cli": ["tqdm", "matplotlib", "scikit-learn"]},
    entry_points={"console_scripts": ["implicitdiv=implicitdiv.cli:main"]},
)
