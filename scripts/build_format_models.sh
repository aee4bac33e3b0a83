#!/usr/bin/env bash
# The real Qwen2.5-Coder-0.5B-Instruct in the other formats people have (all git-ignored), with reference
# greedy ids from the reference runtimes (scripts/build_format_models.py has the details):
#
#   Models/qwen2.5-coder-0.5b-instruct/onnx/model_quantized.onnx    transformers.js q8 (MatMulInteger)
#   Models/qwen2.5-coder-0.5b-instruct/onnx/model_fp16.onnx         transformers.js fp16
#   Models/qwen2.5-coder-0.5b-instruct/reference/formats.json       ORT 1.31.1 greedy ids of both files
#   Models/qwen2.5-coder-0.5b-instruct-genai-int4/                  onnxruntime-genai builder, int4 CPU
#   Models/qwen2.5-coder-0.5b-instruct-genai-int4/reference/greedy.json  genai Generator + ORT greedy ids
#
#   scripts/build_default_model.sh        the default model and its intermediates (downloads/real-build)
#   scripts/setup_venv_genai.sh           the builder's venv (.venv-genai, transformers 5)
#   build_format_models.py tjs            (.venv)        q8 + fp16 from the fp32 optimum export
#   build_format_models.py genai          (.venv-genai)  builder -p int4 -e cpu on the HF checkpoint
#   build_format_models.py ort-refs       (.venv)        formats.json
#   build_format_models.py genai-refs     (.venv-genai)  greedy.json
#
# Env: QWEN_MODEL_OUT and QWEN_GENAI_OUT move the two model directories (.ci/run builds into a cache
# outside the clone; defaults as above), QWEN_FORMAT_TIMINGS=0 leaves out the reference stages' timing
# runs (CI: the tests read only the ids), QWEN_CLEAN_INTERMEDIATES=1 deletes downloads/real-build and
# downloads/genai-build at the end. When the default model exists but its intermediates do not (a model
# from a cache), scripts/build_real_model.py --intermediates-only remakes them (GGUF → HF → export).
#
# Idempotent: each stage is skipped when its outputs exist (FORCE=1 redoes the four stages here; the
# default model is left as it is). On 2 busy cores: ~20 minutes on top of the default model's 7-15
# (q8 + fp16 5, builder 1, ORT references 10-12 of which ~6 for q8's exact run and checks, genai 2).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
source scripts/model_stages.sh build_format_models scripts/build_format_models.py
model="${QWEN_MODEL_OUT:-$root/Models/qwen2.5-coder-0.5b-instruct}"
genai="${QWEN_GENAI_OUT:-$root/Models/qwen2.5-coder-0.5b-instruct-genai-int4}"
work="$root/downloads/real-build"
dirs=(--model-dir "$model" --genai-dir "$genai")
refs=()
[ "${QWEN_FORMAT_TIMINGS:-1}" = "0" ] && refs=(--no-timings)

log "default model (scripts/build_default_model.sh)"
FORCE=0 QWEN_MODEL_OUT="$model" QWEN_CLEAN_INTERMEDIATES=0 scripts/build_default_model.sh
if [ ! -f "$work/hf/.done" ] || [ ! -f "$work/onnx18/.done" ]; then
  log "the default model's intermediates (scripts/build_real_model.py --intermediates-only)"
  "$py" scripts/build_real_model.py --work "$work" --intermediates-only
fi
log "onnxruntime-genai tool chain (scripts/setup_venv_genai.sh)"
scripts/setup_venv_genai.sh

stage tjs "$py" "${dirs[@]}"
stage genai "$gpy" "${dirs[@]}"
stage ort-refs "$py" "${dirs[@]}" ${refs[@]+"${refs[@]}"}
stage genai-refs "$gpy" "${dirs[@]}" ${refs[@]+"${refs[@]}"}

if [ "${QWEN_CLEAN_INTERMEDIATES:-0}" = "1" ]; then
  log "QWEN_CLEAN_INTERMEDIATES=1: removing downloads/real-build and downloads/genai-build"
  rm -rf "$work" "$root/downloads/genai-build"
fi
log "done in $(( $(date +%s) - t0 ))s: $model, $genai"
