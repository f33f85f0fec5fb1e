#!/usr/bin/env bash
# The install matrix of the README: for each Python given (default: 3.10 3.11 3.12 3.13 under
# pyenv), from fresh virtual environments,
#   install   pip install .              (build isolation on)
#   editable  pip install -e .           (build isolation on)
#   wheel     pip wheel . ; pip install that wheel into another fresh environment
#   sdist     python -m build --sdist ; pip install that sdist into another fresh environment
# each followed by scripts/check_install.py run from outside the source tree. torch is installed
# first, pinned (torch==2.13.0), where this machine has it on disk (Python 3.11); elsewhere the
# package is installed with --no-deps and checked without torch (the build needs none).
# One line per finished step is appended to $LOG (default out/install_matrix.log). Each build
# compiles every csrc/*.cpp once per instruction set: a few minutes on 2 cores.
#
#   bash scripts/install_matrix.sh [3.11.7 ...]
set -uo pipefail
SRC="$(cd "$(dirname "$0")/.." && pwd)"
LOG="${LOG:-$SRC/out/install_matrix.log}"
WORK="${WORK:-$(mktemp -d /tmp/idv-matrix.XXXX)}"
mkdir -p "$(dirname "$LOG")"
VERSIONS=("$@")
[ ${#VERSIONS[@]} -eq 0 ] && VERSIONS=(3.10.13 3.11.7 3.12.1 3.13.0)
export PIP_DISABLE_PIP_VERSION_CHECK=1
unset TRITON_INTERPRET IMPLICITDIV_ISA IMPLICITDIV_ISAS IMPLICITDIV_NATIVE

step() {  # step NAME LOGFILE COMMAND...: run, time, append the outcome to $LOG
  local name="$1" out="$2"; shift 2
  local start=$SECONDS
  if "$@" >"$out" 2>&1; then status=ok; else status=FAILED; fi
  printf '%s\t%s\t%s\t%ss\t%s\n' "$PYV" "$name" "$status" "$((SECONDS - start))" "$out" | tee -a "$LOG"
  [ "$status" = ok ]
}

fresh() {  # fresh DIR: a new venv with torch==2.13.0 where it lies on disk
  "$PYTHON" -m venv "$1" || return 1  # with the pip this Python ships
  if [ "$WITH_TORCH" = 1 ]; then "$1/bin/python" -m pip install -q torch==2.13.0 || return 1; fi
  "$1/bin/python" -m pip install -q numpy
}

for PYV in "${VERSIONS[@]}"; do
  PYTHON="$HOME/.pyenv/versions/$PYV/bin/python"
  D="$WORK/py$PYV"; mkdir -p "$D"
  WITH_TORCH=0; NODEPS=--no-deps
  if ls /opt/wheels/torch-2.13.0*-cp$(echo "$PYV" | cut -d. -f1,2 | tr -d .)-* >/dev/null 2>&1; then WITH_TORCH=1; NODEPS=; fi
  cd "$D" || exit 1

  fresh "$D/install" && step install "$D/install.log" "$D/install/bin/python" -m pip install $NODEPS "$SRC" \
    && step install-check "$D/install-check.log" "$D/install/bin/python" "$SRC/scripts/check_install.py"

  fresh "$D/editable" && step editable "$D/editable.log" "$D/editable/bin/python" -m pip install $NODEPS -e "$SRC" \
    && step editable-check "$D/editable-check.log" "$D/editable/bin/python" "$SRC/scripts/check_install.py" "$SRC"

  fresh "$D/wheelenv" && step wheel "$D/wheel.log" "$D/wheelenv/bin/python" -m pip wheel --no-deps -w "$D/dist" "$SRC" \
    && fresh "$D/fromwheel" && step wheel-install "$D/wheel-install.log" "$D/fromwheel/bin/python" -m pip install $NODEPS "$D"/dist/implicitdiv-*.whl \
    && step wheel-check "$D/wheel-check.log" "$D/fromwheel/bin/python" "$SRC/scripts/check_install.py"

  "$D/wheelenv/bin/python" -m pip install -q build \
    && step sdist "$D/sdist.log" "$D/wheelenv/bin/python" -m build --sdist --outdir "$D/sdist" "$SRC" \
    && fresh "$D/fromsdist" && step sdist-install "$D/sdist-install.log" "$D/fromsdist/bin/python" -m pip install $NODEPS "$D"/sdist/implicitdiv-*.tar.gz \
    && step sdist-check "$D/sdist-check.log" "$D/fromsdist/bin/python" "$SRC/scripts/check_install.py"
done
echo "logs under $WORK"
