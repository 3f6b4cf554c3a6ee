#!/usr/bin/env bash
# Builds the trainer's native CPU kernels (kernels.c) into build/gpulab_kernels.node with gcc against OpenBLAS.
#   bash apps/trainer/native/build.sh          # needs gcc, Node's headers (node_api.h) and libopenblas-dev
# Without them the trainer runs on wasm alone (slower); `--if-possible` exits 0 with a note instead of failing.
set -euo pipefail
cd "$(dirname "$0")"
soft=0
[ "${1:-}" = "--if-possible" ] && soft=1
give_up() {
  echo "native kernels not built: $1" >&2
  if [ $soft = 1 ]; then exit 0; else exit 1; fi
}
inc=""
for d in "$(npm config get nodedir 2>/dev/null)/include/node" "$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")/include/node" \
  "$HOME/.cache/node-gyp/$(node -p process.versions.node)/include/node"; do
  if [ -f "$d/node_api.h" ]; then inc=$d; break; fi
done
[ -n "$inc" ] || give_up "Node's headers (node_api.h) not found"
command -v gcc >/dev/null || give_up "gcc not found"
cblas=""
for d in /usr/include/x86_64-linux-gnu /usr/include/aarch64-linux-gnu /usr/include/openblas /usr/include; do
  if [ -f "$d/cblas.h" ]; then cblas=$d; break; fi
done
[ -n "$cblas" ] || give_up "cblas.h not found (apt-get install libopenblas-dev)"
# oneDNN (libdnnl-dev) when present: the convolution forward runs on it (dnnl-conv.c), else on im2col + OpenBLAS.
dnnl=()
if [ -f /usr/include/oneapi/dnnl/dnnl.h ]; then dnnl=(-DGPULAB_DNNL dnnl-conv.c -ldnnl); fi
mkdir -p build
# -O3 for the generic x86-64/arm64 target (the image may run on older CPUs); OpenBLAS picks its own SIMD at run time.
gcc -O3 -std=c11 -Wall -Wextra -Wno-unused-parameter -fPIC -shared -DNODE_GYP_MODULE_NAME=gpulab_kernels \
  -I"$inc" -I"$cblas" kernels.c "${dnnl[@]}" -o build/gpulab_kernels.node.tmp -lopenblas -lm \
  || give_up "gcc failed (is libopenblas-dev installed?)"
mv build/gpulab_kernels.node.tmp build/gpulab_kernels.node
echo "built $(pwd)/build/gpulab_kernels.node${dnnl:+ (with oneDNN)}"
