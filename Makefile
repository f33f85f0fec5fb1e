# The two commands: `make demo` (build, quick benchmark, two-sample demo) and `make test`.
# Both create .venv when it is missing. torch is installed (pinned) only where it is missing, and an
# installed torch is never replaced: the venv sees the system's packages.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DEPS := $(VENV)/.deps-installed
BUILT := $(VENV)/.built
DEMO_DIR := out/demo

.PHONY: all build test demo bench clean gpu-campaign

all: build

$(PY):
	$(PYTHON) -m venv --system-site-packages $(VENV)

$(DEPS): Makefile | $(PY)
	@$(PY) -c "import torch" 2>/dev/null && echo "torch already installed: $$($(PY) -c 'import torch; print(torch.__version__)')" \
	  || $(PY) -m pip install torch==2.13.0
	$(PY) -m pip install triton numpy scikit-build-core pybind11 cmake pytest hypothesis mypy build tqdm matplotlib scikit-learn
	# peers the tests compare with (tests/test_kid.py, tests/test_peers.py): torchmetrics and geomloss,
	# --no-deps so that their torch requirement can never bring another torch (their other needs,
	# numpy, packaging, typing_extensions, are installed above)
	$(PY) -m pip install --no-deps torchmetrics lightning-utilities geomloss
	touch $@

# An editable install (pyproject.toml: scikit-build-core) whose CMake build stays in build/ between
# runs, so a changed source recompiles alone. What the old setup.py build left goes: its _C.*.so
# would shadow implicitdiv/_C.py.
$(BUILT): $(DEPS) pyproject.toml CMakeLists.txt $(wildcard csrc/*.cpp csrc/*.h csrc/isa/*)
	rm -rf implicitdiv/_C.*.so *.egg-info
	$(PY) -m pip install --no-build-isolation --no-deps -C build-dir=build/{wheel_tag} -e .
	touch $@

build: $(BUILT)

test: build
	TRITON_INTERPRET=1 $(PY) -m pytest -q tests

demo: build
	$(PY) -m implicitdiv bench --quick
	$(PY) benchmarks/demo_data.py $(DEMO_DIR)
	@echo "== two samples from one distribution =="
	$(PY) -m implicitdiv two-sample $(DEMO_DIR)/p1.npy $(DEMO_DIR)/p2.npy --seed 0
	@echo "== samples from two distributions =="
	$(PY) -m implicitdiv two-sample $(DEMO_DIR)/p1.npy $(DEMO_DIR)/q.npy --seed 0

# The GPU campaign (benchmarks/gpu_campaign.py): builds and installs nothing (Triton needs no _C), so it
# runs from a bare checkout on a CUDA machine; CAMPAIGN_ARGS=--dry-run runs it on the CPU.
CAMPAIGN_OUT ?= out/gpu_campaign
CAMPAIGN_PY := $(if $(wildcard $(PY)),$(PY),$(PYTHON))
gpu-campaign:
	PYTHONPATH=. PYTHONUNBUFFERED=1 $(CAMPAIGN_PY) -m benchmarks.gpu_campaign --out $(CAMPAIGN_OUT) $(CAMPAIGN_ARGS)

clean:
	rm -rf build *.egg-info implicitdiv/_C*.so implicitdiv/_cpuinfo*.so $(BUILT)
