#!/usr/bin/env bash
# Builds llama.cpp (llama-bench, llama-quantize and llama-server) for the speed comparisons in
# scripts/bench and scripts/bench-serve, from the llama.cpp source that PyPI's llama-cpp-python
# sdist vendors (pinned version and sha256 below; no other source of llama.cpp is reachable from
# here). CPU only, built for this machine with explicit ISA flags read from /proc/cpuinfo
# (AVX2/FMA/F16C, AVX-512 F/BW/VL/VBMI/VNNI/BF16 and AVX-VNNI when listed) and AMX always off: not
# GGML_NATIVE, because -march=native turns on ggml's AMX path wherever CPUID lists AMX, and VMs
# that list it without granting the tile state kill llama-bench with SIGILL in `tilezero`. The
# flags used are printed and kept in .llama.cpp/build/isa.txt (scripts/bench prints them). Output
# in .llama.cpp/ (git-ignored); then:
#
#   LLAMA_CPP_BIN=.llama.cpp/build/bin/llama-bench scripts/bench
#   scripts/bench-serve              # finds .llama.cpp/build/bin/llama-server itself
#
# (scripts/bench makes the pure-Q4_0 GGUF with the llama-quantize next to it on first use.)
# llama-server (scripts/bench-serve) is built offline: no web UI (LLAMA_BUILD_UI=OFF, no npm build;
# LLAMA_USE_PREBUILT_UI=OFF, no download of the prebuilt UI from Hugging Face at build time, so it
# serves the API only), no HTTPS (LLAMA_OPENSSL=OFF) and no libcurl (LLAMA_CURL=OFF).
# cmake comes from the system when it has one, else from PyPI (pinned) into the project venv.
# Takes ~10 minutes on 2 cores (a few more for llama-server when llama-bench is already built).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
version="0.3.36"
sha256="832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e"
url="https://files.pythonhosted.org/packages/ec/e9/e7de2b0463ea3ffbf0ede6cb21b58c1258a8f6521aae45ca773a59fe7cf3/llama_cpp_python-$version.tar.gz"
cmake_version="4.4.5"

out="$root/.llama.cpp"
mkdir -p "$root/downloads" "$out"
archive="$root/downloads/llama_cpp_python-$version.tar.gz"
if [ ! -f "$archive" ] || [ "$(sha256sum "$archive" | cut -d' ' -f1)" != "$sha256" ]; then
  echo "build_llama_cpp: downloading llama-cpp-python $version (sdist, ~75 MB)" >&2
  curl -fsSL -o "$archive.part" "$url"
  got="$(sha256sum "$archive.part" | cut -d' ' -f1)"
  if [ "$got" != "$sha256" ]; then
    echo "build_llama_cpp: sha256 of the download is $got, expected $sha256" >&2
    rm -f "$archive.part"
    exit 1
  fi
  mv "$archive.part" "$archive"
fi

src="$out/src-$version"
if [ ! -f "$src/CMakeLists.txt" ]; then
  rm -rf "$src" "$out/extract"
  mkdir -p "$out/extract"
  tar -xzf "$archive" -C "$out/extract" "llama_cpp_python-$version/vendor/llama.cpp"
  mv "$out/extract/llama_cpp_python-$version/vendor/llama.cpp" "$src"
  rm -rf "$out/extract"
fi

cmake_bin="$(command -v cmake || true)"
if [ -z "$cmake_bin" ]; then
  "$root/scripts/setup_venv.sh"
  venv="${QWEN_VENV:-$root/.venv}"
  "$venv/bin/pip" install --quiet "cmake==$cmake_version"
  cmake_bin="$venv/bin/cmake"
fi

# ISA flags from what this CPU lists (x86-64; elsewhere ggml's defaults for the target).
flags=(-DGGML_NATIVE=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF)
isa=()
if [ "$(uname -m)" = x86_64 ]; then
  cpu_flags=" $(grep -m1 '^flags' /proc/cpuinfo | cut -d: -f2) "
  has() { [[ "$cpu_flags" == *" $1 "* ]]; }
  for pair in avx:GGML_AVX avx2:GGML_AVX2 fma:GGML_FMA f16c:GGML_F16C bmi2:GGML_BMI2 \
              avx512f:GGML_AVX512 avx512vbmi:GGML_AVX512_VBMI avx512_vnni:GGML_AVX512_VNNI \
              avx512_bf16:GGML_AVX512_BF16 avx_vnni:GGML_AVX_VNNI; do
    if has "${pair%%:*}"; then flags+=("-D${pair#*:}=ON"); isa+=("${pair%%:*}"); else flags+=("-D${pair#*:}=OFF"); fi
  done
fi
echo "build_llama_cpp: ${flags[*]}" >&2
"$cmake_bin" -S "$src" -B "$out/build" -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF "${flags[@]}" \
  -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
  -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_OPENSSL=OFF >/dev/null
mkdir -p "$out/build"
echo "${isa[*]:-default} (AMX off)" > "$out/build/isa.txt"
"$cmake_bin" --build "$out/build" --config Release -j "$(nproc)" --target llama-bench llama-quantize llama-server
echo "LLAMA_CPP_BIN=$out/build/bin/llama-bench"
echo "LLAMA_SERVER_BIN=$out/build/bin/llama-server"
