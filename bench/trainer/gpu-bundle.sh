#!/usr/bin/env bash
# Prepares .gpulab/gpu/ for bench/trainer/gpu.sh on a lent GPU machine (no Node there, no network): a Node binary,
# backend-check bundled with esbuild (TF.js core + the webgpu backend + our model code), Dawn's `webgpu` addon for
# linux-x64, and the torchvision fixture. Needs `npm install --no-save @tensorflow/tfjs-backend-webgpu@4.22.0` first.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=.gpulab/gpu
rm -rf "$out" && mkdir -p "$out/node_modules/webgpu/dist/linux-x64" "$out/fixture"
npx esbuild bench/trainer/gpu-entry.ts --bundle --platform=node --format=esm --target=node20 \
  --banner:js="import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" \
  --outfile="$out/check.mjs" --external:webgpu --external:@tensorflow/tfjs-node --external:@tensorflow/tfjs-node-gpu \
  --log-level=warning
# The throughput bench (img/s next to PyTorch on the same card, one JSON line with ratios), bundled the same way.
npx esbuild bench/trainer/throughput.ts --bundle --platform=node --format=esm --target=node20 \
  --banner:js="import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" \
  --outfile="$out/throughput.mjs" --external:webgpu --external:@tensorflow/tfjs-node --external:@tensorflow/tfjs-node-gpu \
  --external:@tensorflow/tfjs-backend-wasm --log-level=warning
tmp=$(mktemp -d)
(cd "$tmp" && npm pack --silent webgpu@0.6.2 >/dev/null && tar xzf webgpu-0.6.2.tgz package/index.js package/package.json package/dist/linux-x64/dawn.node)
cp "$tmp/package/index.js" "$tmp/package/package.json" "$out/node_modules/webgpu/"
gzip -c "$tmp/package/dist/linux-x64/dawn.node" > "$out/dawn.node.gz"
rm -rf "$tmp"
gzip -c "$(readlink -f "$(command -v node)")" > "$out/node.gz"
cp apps/trainer/test/fixtures/resnet18/reference-seed1.json "$out/fixture/"
cp bench/trainer/torch_resnet18.py "$out/"
du -sh "$out"
