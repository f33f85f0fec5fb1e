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

$(DEPS): | $(PY)
	@$(PY) -c "import torch" 2>/dev/null && echo "torch already installed: $$($(PY) -c 'import torch; print(torch.__version__)')" \
	  || $(PY) -m pip install torch==2.13.0
	$(PY) -m pip install triton numpy pybind11 cmake pytest hypothesis tqdm matplotlib scikit-learn
	touch $@

$(BUILT): $(DEPS) setup.py CMakeLists.txt $(wildcard csrc/*.cpp csrc/*.h)
	$(PY) -m pip install --no-build-isolation --no-deps -e .
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
	rm -rf build *.egg-info implicitdiv/_C*.so $(BUILT)
