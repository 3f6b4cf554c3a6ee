#!/usr/bin/env bash
# Prepares .gpulab/gpu/ for bench/trainer/gpu.sh on a lent GPU machine (no Node there, no network): a Node binary,
# backend-check bundled with esbuild (TF.js core + the webgpu backend + our model code), Dawn's `webgpu` addon for
# linux-x64 (both dev dependencies of the trainer), and the torchvision fixture.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=.gpulab/gpu
# CommonJS names the bundled code uses (require for optional packages, __dirname in the test helpers).
banner="import { createRequire as __cr } from 'node:module'; import { fileURLToPath as __fu } from 'node:url'; \
import { dirname as __dn } from 'node:path'; const require = __cr(import.meta.url); \
const __filename = __fu(import.meta.url); const __dirname = __dn(__filename);"
rm -rf "$out" && mkdir -p "$out/node_modules/webgpu/dist/linux-x64" "$out/fixture"
npx esbuild bench/trainer/gpu-entry.ts --bundle --platform=node --format=esm --target=node20 \
  --banner:js="$banner" \
  --outfile="$out/check.mjs" --external:webgpu --external:@tensorflow/tfjs-node --external:@tensorflow/tfjs-node-gpu \
  --log-level=warning
# The throughput bench (img/s next to PyTorch on the same card, one JSON line with ratios), bundled the same way.
npx esbuild bench/trainer/throughput.ts --bundle --platform=node --format=esm --target=node20 \
  --banner:js="$banner" \
  --outfile="$out/throughput.mjs" --external:webgpu --external:@tensorflow/tfjs-node --external:@tensorflow/tfjs-node-gpu \
  --external:@tensorflow/tfjs-backend-wasm --log-level=warning
# The per-program GPU time of one step (timestamp queries), bundled the same way.
npx esbuild bench/trainer/kernel-profile.ts --bundle --platform=node --format=esm --target=node20 \
  --banner:js="$banner" \
  --outfile="$out/kernel-profile.mjs" --external:webgpu --external:@tensorflow/tfjs-node --external:@tensorflow/tfjs-node-gpu \
  --external:@tensorflow/tfjs-backend-wasm --log-level=warning
wg=$(dirname "$(node -p "require.resolve('webgpu/package.json', { paths: ['apps/trainer'] })")")
cp "$wg/index.js" "$wg/package.json" "$out/node_modules/webgpu/"
cp bench/trainer/adapter-features.mjs "$out/"
gzip -c "$wg/dist/linux-x64/dawn.node" > "$out/dawn.node.gz"
gzip -c "$(readlink -f "$(command -v node)")" > "$out/node.gz"
cp apps/trainer/test/fixtures/resnet18/reference-seed1.json "$out/fixture/"
cp bench/trainer/torch_resnet18.py "$out/"
du -sh "$out"
