#!/usr/bin/env bash
# hdnet against PyTorch and TensorFlow on this machine: builds hdnet (release), sets up a Python
# virtualenv with the peers (bench/.venv; a peer that cannot be installed is reported as n/a),
# then runs bench/compare.py with the given arguments (e.g. --width 64 --rounds 2).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here/.."
cargo build --release --quiet
venv="$here/.venv"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/python" -c "import torch" 2>/dev/null || "$venv/bin/pip" install --quiet torch || echo "PyTorch could not be installed: its column will be n/a" >&2
"$venv/bin/python" -c "import tensorflow" 2>/dev/null || "$venv/bin/pip" install --quiet tensorflow-cpu || echo "TensorFlow could not be installed: its column will be n/a" >&2
exec "$venv/bin/python" "$here/compare.py" --python "$venv/bin/python" "$@"
