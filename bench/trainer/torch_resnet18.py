"""PyTorch baseline for bench/trainer: torchvision ResNet18 (10 classes), full fine-tune (SGD momentum 0.9) and
inference throughput on random data, fp32, on CUDA when available else CPU. Prints one JSON line.

    python3 bench/trainer/torch_resnet18.py --sizes 32,224 --batch 32 --steps 10 [--threads 2]
"""
import argparse
import json
import time

import torch
import torchvision

p = argparse.ArgumentParser()
p.add_argument("--sizes", default="32,224")
p.add_argument("--batch", type=int, default=32)
p.add_argument("--steps", type=int, default=10)
p.add_argument("--threads", type=int, default=0)
a = p.parse_args()
if a.threads:
    torch.set_num_threads(a.threads)
dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
torch.backends.cudnn.benchmark = True
torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False


def sync():
    if dev.type == "cuda":
        torch.cuda.synchronize()


runs = []
for size in [int(s) for s in a.sizes.split(",")]:
    model = torchvision.models.resnet18(num_classes=10).to(dev)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(a.batch, 3, size, size, device=dev)
    y = torch.arange(a.batch, device=dev) % 10
    loss_fn = torch.nn.CrossEntropyLoss()

    def step():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()

    model.train()
    for _ in range(3):
        step()
    sync()
    t0 = time.perf_counter()
    for _ in range(a.steps):
        step()
    sync()
    train = a.steps * a.batch / (time.perf_counter() - t0)
    model.eval()
    with torch.no_grad():
        for _ in range(3):
            model(x)
        sync()
        t0 = time.perf_counter()
        for _ in range(a.steps):
            model(x)
        sync()
        infer = a.steps * a.batch / (time.perf_counter() - t0)
    runs.append({"size": size, "batch": a.batch, "steps": a.steps, "trainImgS": round(train, 2), "inferImgS": round(infer, 2)})
    print(f"torch {dev.type} {size} px batch {a.batch}: train {train:.1f} img/s, inference {infer:.1f} img/s", flush=True)

print(json.dumps({"bench": "torch-resnet18", "device": torch.cuda.get_device_name(0) if dev.type == "cuda" else "cpu",
                  "torch": torch.__version__, "threads": torch.get_num_threads(), "runs": runs}))
