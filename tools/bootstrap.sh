#!/usr/bin/env bash
# Create (or reuse) the local virtual environment .venv and install the project in it.
#
# - PyTorch: if the interpreter that creates the environment already has torch (for
#   example a CUDA build), the environment sees it through --system-site-packages and
#   keeps it. Otherwise torch==2.13.0 is installed first, before the package, so that
#   the resolver never picks an unpinned torch (and its CUDA stack).
# - A second run reuses the environment: the install step is skipped while the stamp
#   file is newer than pyproject.toml.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
VENV="${VENV:-.venv}"
EXTRAS="${1:-test,notebooks,dev}"
STAMP="$VENV/.personax-installed-$(echo "$EXTRAS" | tr ',' '-')"

if [ -f "$STAMP" ] && [ "$STAMP" -nt pyproject.toml ] && "$VENV/bin/python" -c "import pyro_personax" 2>/dev/null; then
    exit 0
fi

if [ ! -x "$VENV/bin/python" ]; then
    if "$PYTHON" -c "import torch" 2>/dev/null; then
        echo "bootstrap: keeping the torch of $PYTHON ($("$PYTHON" -c 'import torch; print(torch.__version__)'))"
        "$PYTHON" -m venv --system-site-packages "$VENV"
    else
        "$PYTHON" -m venv "$VENV"
    fi
fi

PIP=("$VENV/bin/python" -m pip install --disable-pip-version-check --quiet)
if ! "$VENV/bin/python" -c "import torch" 2>/dev/null; then
    echo "bootstrap: installing torch==2.13.0"
    "${PIP[@]}" "torch==2.13.0"
fi
echo "bootstrap: installing pyro-personax[$EXTRAS] (editable)"
"${PIP[@]}" -e ".[$EXTRAS]"
touch "$STAMP"
