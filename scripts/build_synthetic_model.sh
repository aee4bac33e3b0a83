#!/usr/bin/env bash
# A synthetic (seeded random weights) Qwen2.5-1.5B-shaped model, for speed measurements only, in the
# three forms scripts/bench compares (all git-ignored; scripts/build_synthetic_model.py has the details):
#
#   Models/synthetic-qwen2.5-1.5b/onnx/model_q4f16.onnx          optimum export, q4 (MatMulNBits, block 32), q4f16
#   Models/synthetic-qwen2.5-1.5b-genai-int4/                     onnxruntime-genai builder, int4 CPU
#   Models/gguf/synthetic-qwen2.5-1.5b-q4_0-pure.gguf             llama.cpp, pure Q4_0
#
#   scripts/build_default_model.sh   the 0.5B (its tokenizer files are reused: same vocabulary)
#   scripts/setup_venv_genai.sh      the builder's venv (.venv-genai, transformers 5)
#   scripts/build_llama_cpp.sh       llama.cpp's source (convert_hf_to_gguf.py) and llama-quantize
#   hf export q4 q4f16 files check   (.venv)        random checkpoint → optimum → q4 → q4f16, checks
#   genai                            (.venv-genai)  builder -p int4 -e cpu on the same checkpoint
#   gguf                             (.venv)        convert_hf_to_gguf f16 → llama-quantize --pure Q4_0
#   clean                                           removes downloads/synthetic-1.5b-build (~17 GB)
#
# Each stage is its own process (the float32 checkpoint is 6 GB; the export peaks well above), and is
# skipped when its outputs exist (FORCE=1 redoes them). About 20 minutes on 2 cores.
# Then: LLAMA_CPP_BIN=.llama.cpp/build/bin/llama-bench \
#         LLAMA_CPP_GGUF=Models/gguf/synthetic-qwen2.5-1.5b-q4_0-pure.gguf \
#         scripts/bench --model Models/synthetic-qwen2.5-1.5b --genai Models/synthetic-qwen2.5-1.5b-genai-int4
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
source scripts/model_stages.sh build_synthetic_model scripts/build_synthetic_model.py

scripts/setup_venv.sh
[ -f Models/qwen2.5-coder-0.5b-instruct/tokenizer.json ] || scripts/build_default_model.sh
scripts/setup_venv_genai.sh
# convert_hf_to_gguf.py imports sentencepiece for every Qwen2 checkpoint (then falls back to the BPE
# tokenizer.json); scripts/requirements.txt does not pin it, so it is added here when missing.
"$py" -c "import sentencepiece" 2>/dev/null || "$(dirname "$py")/pip" install --quiet sentencepiece==0.2.1
[ -x "${LLAMA_CPP_QUANTIZE:-.llama.cpp/build/bin/llama-quantize}" ] || scripts/build_llama_cpp.sh

for s in hf export q4 q4f16 files check; do stage "$s" "$py"; done
stage genai "$gpy"
stage gguf "$py"
stage clean "$py"

log "done in $(( $(date +%s) - t0 ))s"
