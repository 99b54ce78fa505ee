#!/usr/bin/env bash
# Makes tts-server/.venv: the engine's pinned dependencies (pyproject.toml, with the dev extra) and the s2s_tts
# package installed editable, on the machine's Python 3.11+. Idempotent: a stamp of pyproject.toml's hash and
# the Python's version makes a second run return at once. pip fails fast (no retries) when the index is out of reach.
#   bash tts-server/setup-venv.sh            (S2S_PYTHON=/path/to/python3.12 to choose the interpreter)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="$here/.venv"
stamp="$venv/.s2s-setup-stamp"

find_python() {
  local candidate
  for candidate in ${S2S_PYTHON:-} python3 python3.13 python3.12 python3.11; do
    if command -v "$candidate" >/dev/null 2>&1 \
      && "$candidate" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
      command -v "$candidate"
      return 0
    fi
  done
  return 1
}

python="$(find_python)" || { echo "setup-venv: needs Python 3.11 or newer (python3 --version; or set S2S_PYTHON)" >&2; exit 1; }
want="$(sha256sum "$here/pyproject.toml" | cut -c1-64) $("$python" -c 'import sys; print(sys.version.split()[0])')"
if [[ -x "$venv/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
  exit 0
fi

echo "setup-venv: making $venv with $python ($("$python" --version 2>&1)); torch brings its CUDA wheels (about 3 GB)"
if ! "$python" -c 'import ensurepip, venv' 2>/dev/null; then
  echo "setup-venv: $python has no venv/ensurepip module (Debian: apt-get install python3-venv)" >&2
  exit 1
fi
rm -f "$stamp"
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --retries 0 --timeout 60 -e "$here[dev]"
echo "$want" > "$stamp"
echo "setup-venv: ready ($("$venv/bin/python" -c 'import torch, transformers; print("torch", torch.__version__, "transformers", transformers.__version__)'))"
