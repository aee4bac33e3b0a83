#!/usr/bin/env bash
# Builds llama.cpp (llama-bench and llama-quantize) for the speed comparison in
# scripts/bench, from the llama.cpp source that PyPI's llama-cpp-python sdist vendors (pinned
# version and sha256 below; no other source of llama.cpp is reachable from here). CPU only, built
# for this machine (GGML_NATIVE). Output in .llama.cpp/ (git-ignored); then:
#
#   LLAMA_CPP_BIN=.llama.cpp/build/bin/llama-bench scripts/bench
#
# (scripts/bench makes the pure-Q4_0 GGUF with the llama-quantize next to it on first use.)
# cmake comes from the system when it has one, else from PyPI (pinned) into the project venv.
# Takes ~10 minutes on 2 cores.
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

"$cmake_bin" -S "$src" -B "$out/build" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON -DBUILD_SHARED_LIBS=OFF \
  -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF >/dev/null
"$cmake_bin" --build "$out/build" --config Release -j "$(nproc)" --target llama-bench llama-quantize
echo "LLAMA_CPP_BIN=$out/build/bin/llama-bench"
