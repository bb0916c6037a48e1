#!/usr/bin/env bash
# Create (or reuse) the project's virtual environment in .venv and install
# keras_rec into it in editable mode.
#
#   bash scripts/setup.sh            # runtime dependencies
#   bash scripts/setup.sh dev        # + test dependencies (pytest, s3fs, moto)
#   bash scripts/setup.sh dev,s3     # any extras of pyproject.toml, comma-separated
#   bash scripts/setup.sh benchmarks # + the CPU peers of benchmarks/encoder.py
#   bash scripts/setup.sh beam       # + Apache Beam, for `keras-rec embed --runner`
#   bash scripts/setup.sh notebooks  # + JupyterLab: .venv/bin/jupyter lab notebooks/
#
# PyTorch is installed first and pinned, because sentence-transformers asks for
# an unpinned `torch`, which pulls the newest CUDA build (several GB). Override
# with KERAS_REC_TORCH, e.g. on a GPU machine:
#   KERAS_REC_TORCH="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu126" bash scripts/setup.sh
set -euo pipefail
cd "$(dirname "$0")/.."

extras="${1:-}"
venv="${KERAS_REC_VENV:-.venv}"
python="${PYTHON:-python3}"
torch_spec="${KERAS_REC_TORCH:-torch==2.13.0}"

if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --upgrade pip
fi
pip=("$venv/bin/python" -m pip)

# Skip the install when nothing it depends on changed since the last run.
stamp="$venv/.keras_rec_setup"
want="$( (cat pyproject.toml; echo "extras=$extras torch=$torch_spec") | sha256sum | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi

if ! "$venv/bin/python" -c "import torch" 2>/dev/null; then
  # shellcheck disable=SC2086
  "${pip[@]}" install --quiet $torch_spec
fi
target="."
[ -n "$extras" ] && target=".[$extras]"
# Keep the installed torch through the package's resolution: an unpinned
# torchvision (required by optimum-intel) would otherwise pull the newest torch.
constraints="$(mktemp)"
trap 'rm -f "$constraints"' EXIT
"$venv/bin/python" -c "import torch; print('torch==' + torch.__version__)" > "$constraints"
"${pip[@]}" install --quiet -c "$constraints" -e "$target"
# optimum-intel (the openvino extra) requires torchvision. A torchvision built for
# another torch than the pinned one breaks `import transformers` ("operator
# torchvision::nms does not exist"); nothing here needs it, so it is removed then.
if "$venv/bin/python" -c "import importlib.util as u, sys; sys.exit(u.find_spec('torchvision') is None)" \
  && ! "$venv/bin/python" -c "import torchvision" 2>/dev/null; then
  "${pip[@]}" uninstall --quiet --yes torchvision
fi
echo "$want" > "$stamp"
