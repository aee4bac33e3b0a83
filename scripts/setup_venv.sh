#!/usr/bin/env bash
# Creates (or reuses) the pinned Python tool chain in .venv (git-ignored). Idempotent.
# QWEN_VENV and QWEN_REQUIREMENTS choose another venv and pin list (scripts/setup_venv_genai.sh).
# Usage: scripts/setup_venv.sh   then   .venv/bin/python scripts/...
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="${QWEN_VENV:-$root/.venv}"
req="${QWEN_REQUIREMENTS:-$root/scripts/requirements.txt}"
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
