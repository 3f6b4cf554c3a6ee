#!/usr/bin/env bash
# Runs on a lent GPU machine (device tool), after bench/trainer/gpu-bundle.sh here, carrying .gpulab/gpu and .gl:
#   bash bench/trainer/gpu.sh
# Checks the webgpu backend's parity with torchvision and measures its throughput next to PyTorch on the same card.
set -uo pipefail
cd "$(dirname "$0")/../.."
for f in .gl/*.deb; do dpkg -x "$f" /; done
ldconfig
g=.gpulab/gpu
gunzip -c $g/node.gz > /tmp/node && chmod +x /tmp/node
gunzip -c $g/dawn.node.gz > $g/node_modules/webgpu/dist/linux-x64/dawn.node
card=$(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | head -1)
echo "card: $card"
mkdir -p "${OUT:-/tmp/out}"
if [ -z "${VK_DRIVER_FILES:-}" ] && [ -f /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ]; then
  export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
fi
timeout 300 /tmp/node $g/check.mjs --backend webgpu --fixture $g/fixture --sizes 32,224 --batch 32 --steps 10 \
  --card "$card" 2>&1 | tee "${OUT:-/tmp/out}/webgpu.txt"
# Full fine-tuning and inference at 224 px, batch 32, next to PyTorch fp32 on the same card (ratios in the JSON line).
timeout 240 /tmp/node $g/throughput.mjs --backend webgpu --sizes 224 --batch 32 --steps-224 10 --modes full \
  --torch-script $g/torch_resnet18.py 2>&1 | tee "${OUT:-/tmp/out}/throughput.txt"
if python3 -c 'import torch, torchvision' 2>/dev/null; then
  timeout 200 python3 $g/torch_resnet18.py --sizes 32,224 --batch 32 --steps 20 2>&1 | tee "${OUT:-/tmp/out}/torch.txt"
else
  echo "no torch/torchvision on this machine: PyTorch baseline not measured" | tee "${OUT:-/tmp/out}/torch.txt"
fi
