# Shared by the model-building wrappers (scripts/build_format_models.sh, build_synthetic_model.sh):
# the two venvs' Pythons, FORCE, and a timed stage runner. Source it from the repository root:
#
#   source scripts/model_stages.sh NAME scripts/SCRIPT.py
#   stage STAGE "$py" [ARGS...]   # runs: $py scripts/SCRIPT.py STAGE [--force] [ARGS...], logged and timed
py="${QWEN_VENV:-$PWD/.venv}/bin/python"
gpy="${QWEN_GENAI_VENV:-$PWD/.venv-genai}/bin/python"
export HF_HUB_OFFLINE=1
force=()
[ "${FORCE:-0}" = "1" ] && force=(--force)
stages_name="$1"
stages_script="$2"

log() { echo "[$stages_name $(date +%H:%M:%S)] $*" >&2; }
t0=$(date +%s)
stage() {  # stage NAME PYTHON [ARGS...]
  local s; s=$(date +%s)
  log "$1"
  "$2" "$stages_script" "$1" ${force[@]+"${force[@]}"} "${@:3}"
  log "$1: $(( $(date +%s) - s ))s"
}
