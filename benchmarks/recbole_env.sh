#!/usr/bin/env bash
# Creates (idempotently) the separate Python 3.11 venv that runs RecBole 1.2.1 for
# benchmarks/recbole_peers.py, and prints its python's path on the last line.
#
#     bash benchmarks/recbole_env.sh          # venv at $RECBOLE_VENV, by default
#                                             # ~/.cache/keras_rec/recbole-venv
#
# RecBole is installed with --no-deps: its metadata requires ray<=2.6.3, which only
# recbole.quick_start imports (the peers script does not), so its other requirements
# are listed here instead. pip (not uv) installs, so that pip's own configuration
# (extra indexes, local wheels) applies; plain PyPI's torch==2.13.0 is fine too.
set -euo pipefail

VENV="${RECBOLE_VENV:-$HOME/.cache/keras_rec/recbole-venv}"
PY="$VENV/bin/python"

if [[ ! -x "$PY" ]]; then
    mkdir -p "$(dirname "$VENV")"
    if command -v python3.11 >/dev/null 2>&1; then
        python3.11 -m venv "$VENV"
    else
        uv venv --seed --python 3.11 "$VENV"
    fi
fi

"$PY" -m pip install --quiet --no-deps recbole==1.2.1
"$PY" -m pip install --quiet \
    numpy==1.26.4 pandas==2.1.4 torch==2.13.0 \
    'scipy>=1.6' 'scikit-learn>=0.23.2' 'tqdm>=4.48.2' colorlog==4.7.2 colorama==0.4.4 \
    'pyyaml>=5.1' 'tensorboard>=2.5' 'thop>=0.1.1.post2207130030' 'tabulate>=0.8.10' \
    'plotly>=4.0' 'texttable>=0.9' 'psutil>=5.9'

# Fails here, not in a benchmark, if the stack does not import.
"$PY" -c 'import recbole.model.sequential_recommender, recbole.data, recbole.config' >&2
echo "$PY"
