#!/usr/bin/env bash
# Create (or reuse) the project's virtual environment in .venv and install
# keras_rec into it in editable mode, at the exact versions of requirements/
# (the lock files: CPython 3.11 on Linux x86-64; `.venv/bin/python scripts/lock.py`
# refreshes them).
#
#   bash scripts/setup.sh            # runtime dependencies
#   bash scripts/setup.sh dev        # + test dependencies (pytest, coverage, s3fs, moto, ...)
#   bash scripts/setup.sh dev,s3     # any extras of pyproject.toml, comma-separated
#   bash scripts/setup.sh benchmarks # + the CPU peers of benchmarks/encoder.py
#   bash scripts/setup.sh beam       # + Apache Beam, for `keras-rec embed --runner`
#   bash scripts/setup.sh notebooks  # + JupyterLab: .venv/bin/jupyter lab notebooks/
#
# Nothing is resolved here: each extra's lock file lists every package it needs
# (`pip install --no-deps`). PyTorch is the CPU wheel the lock names
# (torch==2.13.0+cpu), from pip's configured sources or PyTorch's CPU index. On a
# GPU machine, replace it with a CUDA build of the same version:
#   KERAS_REC_TORCH="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu126" bash scripts/setup.sh
set -euo pipefail
cd "$(dirname "$0")/.."

extras="${1:-}"
venv="${KERAS_REC_VENV:-.venv}"
python="${PYTHON:-python3}"
torch_override="${KERAS_REC_TORCH:-}"
torch_index="${KERAS_REC_TORCH_INDEX:-https://download.pytorch.org/whl/cpu}"

if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv"
fi
version="$("$venv/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
if [ "$version" != "3.11" ]; then
  echo "setup.sh: requirements/ is locked for Python 3.11; $venv has Python $version." >&2
  echo "Run it with PYTHON=python3.11 (and a new KERAS_REC_VENV), or install by hand" >&2
  echo "with the lock as constraints (README, Installing)." >&2
  exit 1
fi

locks=()
IFS=',' read -r -a names <<< "$extras"
for name in "${names[@]}"; do
  [ -z "$name" ] && continue
  if [ ! -f "requirements/$name.txt" ]; then
    echo "setup.sh: no extra '$name' (requirements/$name.txt); pyproject.toml has:" \
      "$(cd requirements && ls -- *.txt | sed 's/\.txt$//' | grep -v -x -e all -e runtime | tr '\n' ' ')" >&2
    exit 2
  fi
  locks+=("requirements/$name.txt")
done
[ ${#locks[@]} -eq 0 ] && locks=("requirements/runtime.txt")

# Skip the install when nothing it depends on changed since the last run.
stamp="$venv/.keras_rec_setup"
want="$( (cat pyproject.toml "${locks[@]}"; echo "extras=$extras torch=$torch_override") \
  | sha256sum | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi

pip=("$venv/bin/python" -m pip install --quiet --no-deps)
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
requirements=()
for lock in "${locks[@]}"; do
  if [ -n "$torch_override" ]; then
    grep -v -E '^torch==' "$lock" > "$scratch/$(basename "$lock")"
    requirements+=(-r "$scratch/$(basename "$lock")")
  else
    requirements+=(-r "$lock")
  fi
done
index=()
if [ -z "$torch_override" ] && "$venv/bin/python" - "$torch_index" <<'EOF' 2>/dev/null; then
import sys, urllib.request
urllib.request.urlopen(sys.argv[1].rstrip("/") + "/torch/", timeout=5)
EOF
  index=(--extra-index-url "$torch_index")
fi

# uv installs the lock: parallel downloads, installs and byte-compiling (pip took
# 196 s here, compiling one file at a time). uv reads neither pip's config files nor
# its PIP_* variables, so pip's package sources are passed on (file:// ones that
# exist). pip installs uv (the lock's version) into a scratch folder, and installs
# the lock itself if uv fails.
sources=()
declare -A seen_sources=()
while IFS= read -r line; do
  key="${line%%=*}"
  key="${key##*.}"
  value="${line#*=}"
  value="${value//\'/}"
  case "$key" in index-url | extra-index-url | find-links) ;; *) continue ;; esac
  for url in $value; do
    if [[ "$url" == file://* && ! -e "${url#file://}" ]] || [[ "$url" != *://* && ! -e "$url" ]]; then
      continue
    fi
    [ -n "${seen_sources[$key $url]:-}" ] && continue
    seen_sources["$key $url"]=1
    sources+=("--$key" "$url")
  done
done < <("$venv/bin/python" -m pip config list 2>/dev/null)
uv_version="$(sed -n -E 's/^uv==([^ ]+).*/\1/p' requirements/all.txt)"
echo "setup.sh: installing ${locks[*]} into $venv (uv $uv_version)" >&2
if "${pip[@]}" --target "$scratch/uv" "uv==$uv_version" &&
  "$scratch/uv/bin/uv" pip install --python "$venv/bin/python" --no-deps --compile-bytecode \
    --index-strategy unsafe-best-match "${sources[@]}" "${index[@]}" "${requirements[@]}"; then
  :
else
  echo "setup.sh: uv could not install the lock; pip installs it" >&2
  "${pip[@]}" "${index[@]}" "${requirements[@]}"
fi
if [ -n "$torch_override" ]; then
  # shellcheck disable=SC2086
  "${pip[@]}" $torch_override
fi
"${pip[@]}" -e .
echo "$want" > "$stamp"
