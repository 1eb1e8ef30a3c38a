#!/usr/bin/env bash
# Creates the TensorFlow venv that tools/inspect_savedmodel.py and its test need (TF is ~600 MB, so it lives
# apart from the converter's small venv). Idempotent: an existing venv that already imports TensorFlow is kept.
# Usage: tools/setup_tf_venv.sh [VENV_DIR]   (default: .venv-tf at the repo root). Prints the venv's python.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${1:-.venv-tf}"
if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "import tensorflow" 2>/dev/null; then
  echo "$venv/bin/python"
  exit 0
fi
start=$(date +%s)
python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q --upgrade pip >&2
"$venv/bin/python" -m pip install -q -r tools/requirements-tf.txt >&2
echo "setup_tf_venv: installed TensorFlow into $venv in $(( $(date +%s) - start )) s" >&2
echo "$venv/bin/python"
