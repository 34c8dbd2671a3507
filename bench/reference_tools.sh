#!/usr/bin/env bash
# Build llama.cpp's own reference tools (llama-bench, llama-server, ggml-rpc-server) from the sources vendored in
# the llama-cpp-python sdist that Hearth pins, so benchmarks compare Hearth with the same llama.cpp.
# Usage: bench/reference_tools.sh   -> prints the folder holding the binaries (built once, then reused).
set -euo pipefail
VERSION=0.3.36
ASSETS="${HEARTH_TEST_ASSETS:-$HOME/.cache/hearth-test-assets}"
SDIST_DIR="$ASSETS/sdist"
SRC="$ASSETS/llama_cpp_python-$VERSION"
BUILD="$ASSETS/llama.cpp-tools"
PY="${PYTHON:-python3}"
if [ -x "$BUILD/bin/llama-bench" ] && [ -x "$BUILD/bin/llama-server" ] && [ -x "$BUILD/bin/ggml-rpc-server" ]; then
    echo "$BUILD/bin"; exit 0
fi
mkdir -p "$SDIST_DIR"
if [ ! -f "$SDIST_DIR/llama_cpp_python-$VERSION.tar.gz" ]; then
    "$PY" -m pip download --quiet --no-binary :all: --no-deps "llama-cpp-python==$VERSION" -d "$SDIST_DIR" >&2
fi
if [ ! -d "$SRC" ]; then
    tar -xzf "$SDIST_DIR/llama_cpp_python-$VERSION.tar.gz" -C "$ASSETS"
fi
# The same options as Hearth's own build (Makefile CMAKE_ARGS): RPC on, ggml's AMX matmul left out.
cmake -S "$SRC/vendor/llama.cpp" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DLLAMA_CURL=OFF -DGGML_RPC=ON \
    -DCMAKE_C_FLAGS=-U__AMX_INT8__ -DCMAKE_CXX_FLAGS=-U__AMX_INT8__ \
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_SERVER=ON >&2
cmake --build "$BUILD" --config Release -j "$(nproc)" --target llama-bench llama-server ggml-rpc-server >&2
echo "$BUILD/bin"
