#!/usr/bin/env bash
# Creates (or reuses) the pinned onnxruntime-genai model-builder tool chain in .venv-genai (git-ignored).
# Idempotent. A venv of its own because onnxruntime-genai 0.18.0's builder needs transformers >= 5 while
# .venv (scripts/setup_venv.sh) pins transformers 4.57.6.
# Usage: scripts/setup_venv_genai.sh   then   .venv-genai/bin/python scripts/make_genai_fixtures.py
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
QWEN_VENV="${QWEN_GENAI_VENV:-$root/.venv-genai}" QWEN_REQUIREMENTS="$root/scripts/requirements-genai.txt" \
  exec "$root/scripts/setup_venv.sh"
