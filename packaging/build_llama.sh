#!/usr/bin/env bash
# Build llama-cpp-python for one llama.cpp backend: cpu, cuda, metal or vulkan.
# The installers bundle whatever this built; `hearth --version` and the About box name it.
set -euo pipefail
backend="${1:-cpu}"
version="$(python -c "import re,pathlib; print(re.search(r'llama-cpp-python==([0-9.]+)', pathlib.Path('pyproject.toml').read_text()).group(1))")"
case "$backend" in
  cpu)    args="-DGGML_NATIVE=off" ;;                       # portable: no -march=native in a shipped build
  cuda)   args="-DGGML_CUDA=on -DGGML_NATIVE=off -DCMAKE_CUDA_ARCHITECTURES=70;75;80;86;89;90" ;;
  metal)  args="-DGGML_METAL=on -DGGML_METAL_EMBED_LIBRARY=on" ;;
  vulkan) args="-DGGML_VULKAN=on -DGGML_NATIVE=off" ;;
  *) echo "unknown backend: $backend (cpu, cuda, metal, vulkan)" >&2; exit 2 ;;
esac
# RPC: `hearth rpc-server` and `--rpc HOST:PORT` split one model across machines (same as the Makefile).
args="$args -DGGML_RPC=on"
echo "building llama-cpp-python $version for $backend: $args"
CMAKE_ARGS="$args" python -m pip install --no-cache-dir --force-reinstall --no-binary llama-cpp-python \
  "llama-cpp-python==$version"
python -c "import llama_cpp; print('GPU offload:', bool(llama_cpp.llama_supports_gpu_offload()), '· RPC:', bool(llama_cpp.llama_supports_rpc()))"
