#!/usr/bin/env bash
# Creates (or reuses) the pinned onnxruntime-genai model-builder tool chain in .venv-genai (git-ignored).
# Idempotent. A venv of its own because onnxruntime-genai 0.18.0's builder needs transformers >= 5 while
# .venv (scripts/setup_venv.sh) pins transformers 4.57.6.
# Usage: scripts/setup_venv_genai.sh   then   .venv-genai/bin/python scripts/make_genai_fixtures.py
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="${QWEN_GENAI_VENV:-$root/.venv-genai}"
req="$root/scripts/requirements-genai.txt"
stamp="$venv/.requirements.sha256"
want="$(sha256sum "$req" | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --upgrade pip==25.3
# Prefer the CPU build of torch: a local wheel directory (PIP_FIND_LINKS) is searched first when
# set; otherwise PyTorch's CPU wheel is not on PyPI and pip falls back to PyPI's build.
"$venv/bin/pip" install --quiet -r "$req"
echo "$want" > "$stamp"
