#!/usr/bin/env bash
# Runs on a lent GPU machine (device tool), after bench/trainer/gpu-bundle.sh here, carrying .gpulab/gpu and .gl:
#   bash bench/trainer/gpu.sh [all|throughput|profile]
# 1. the webgpu backend (this repository's kernels) against torchvision's fixture, 2. full fine-tuning and inference
# img/s at 32 and 224 px, batch 32, next to PyTorch fp32 on the same card in the same run (ratios in the JSON line),
# 3. the same at 224 px with TF.js's own webgpu kernels and submit batch (the before), 4. the GPU time of one 224 px
# step and inference batch by program (kernel-profile.ts); first, in every mode, the adapter's features and limits.
# `throughput`: 2 only; `profile`: 4 only. Everything lands in $OUT.
set -uo pipefail
cd "$(dirname "$0")/../.."
for f in .gl/*.deb; do dpkg -x "$f" /; done
ldconfig
g=.gpulab/gpu
out="${OUT:-/tmp/out}"
mkdir -p "$out"
gunzip -c $g/node.gz > /tmp/node && chmod +x /tmp/node
gunzip -c $g/dawn.node.gz > $g/node_modules/webgpu/dist/linux-x64/dawn.node
card=$(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | head -1)
echo "card: $card" | tee "$out/card.txt"
if [ -z "${VK_DRIVER_FILES:-}" ] && [ -f /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ]; then
  export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
fi
python=$(command -v python3)
# the adapter's features (shader-f16? timestamp-query?) and limits, with and without Dawn's unsafe APIs
for flags in "" enable-dawn-features=allow_unsafe_apis; do
  timeout 30 /tmp/node $g/adapter-features.mjs $flags 2>&1 | grep -v 'artificially reduced' | tee -a "$out/adapter.txt"
done
profile() {
  timeout 120 /tmp/node $g/kernel-profile.mjs --size 224 --batch 32 --card "$card" \
    --dawn-flags enable-dawn-features=allow_unsafe_apis,disable-dawn-features=timestamp_quantization 2>&1 |
    tee "$out/kernel-profile.txt"
}
throughput() {
  timeout 200 /tmp/node $g/throughput.mjs --backend webgpu --sizes 32,224 --batch 32 --steps 20 --steps-224 10 \
    --modes full --torch-script $g/torch_resnet18.py --python "$python" --card "$card" 2>&1 | tee "$out/throughput.txt"
}
case "${1:-all}" in
  profile) profile; exit ;;
  throughput) throughput; exit ;;
esac
timeout 120 /tmp/node $g/check.mjs --backend webgpu --fixture $g/fixture --sizes 224 --batch 32 --steps 10 \
  --card "$card" 2>&1 | tee "$out/check.txt"
throughput
timeout 100 /tmp/node $g/throughput.mjs --backend webgpu --sizes 224 --batch 32 --steps-224 5 --modes full \
  --webgpu-kernels off --submit-batch 15 --python none --card "$card" 2>&1 | tee "$out/throughput-tfjs-kernels.txt"
profile
