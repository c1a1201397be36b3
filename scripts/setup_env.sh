#!/usr/bin/env bash
# Creates (or refreshes) the project's virtual environment without ever replacing an installed torch.
# Usage: scripts/setup_env.sh        (VENV=path to override .venv; TORCH_VERSION=x.y.z to choose torch)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
PY="$VENV/bin/python"
stamp="$VENV/.rtdmd-setup-$(cat pyproject.toml scripts/setup_env.sh rtdmd_bench/tv_shim.py | sha256sum | cut -c1-16)"
if [ -f "$stamp" ]; then exit 0; fi
"$PY" -m pip install -q --upgrade pip >/dev/null 2>&1 || true
# 1. torch: keep the installed one; else the requested/local CPU build.
installed=$("$PY" -c 'import torch; print(torch.__version__.split("+")[0])' 2>/dev/null || true)
TORCH_VERSION=${TORCH_VERSION:-${installed:-2.13.0}}
# 2. Every later pip call is constrained to that torch: an unpinned torchvision (pulled by open_clip/timm)
#    would otherwise replace CPU torch with a CUDA build and several GB of nvidia wheels.
printf 'torch==%s\n' "$TORCH_VERSION" > "$VENV/constraints.txt"
export PIP_CONSTRAINT="$PWD/$VENV/constraints.txt"
[ -n "$installed" ] || "$PY" -m pip install -q "torch==$TORCH_VERSION"
"$PY" -m pip install -q -e '.[dev]'
# 3. torchvision shim, process-wide (see rtdmd_bench/tv_shim.py for why).
SP=$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
cp rtdmd_bench/tv_shim.py "$SP/_rtdmd_tv_shim.py"
echo "import _rtdmd_tv_shim; _rtdmd_tv_shim.install_lazy()" > "$SP/_rtdmd_tv_shim.pth"
"$PY" -c 'import torch, torchvision, open_clip, diffusers, transformers; print("env ok: torch", torch.__version__)'
rm -f "$VENV"/.rtdmd-setup-*
touch "$stamp"
