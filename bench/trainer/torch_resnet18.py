"""PyTorch baseline for bench/trainer: torchvision ResNet18 (10 classes), fine-tuning (SGD momentum 0.9) and
inference throughput on random data, fp32, on CUDA when available else CPU. Prints one JSON line.

    python3 bench/trainer/torch_resnet18.py --sizes 32,224 --batch 32 --steps 10 [--modes full,partial,head] [--threads 2]

Modes as the trainer's `freeze`: full (every parameter, every batch norm in train mode); partial (layer4 and fc
train, the stem..layer3 frozen in eval mode under no_grad); head (fc only, the backbone in eval mode under no_grad).
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
p.add_argument("--modes", default="full")
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


def frozen_prefix(model, mode):
    """The frozen part of the network (run in eval mode under no_grad) and the trainable rest, as two callables."""
    if mode == "full":
        return (lambda x: x), model
    stem = torch.nn.Sequential(model.conv1, model.bn1, model.relu, model.maxpool, model.layer1, model.layer2,
                               model.layer3)
    if mode == "partial":
        frozen, rest = stem, torch.nn.Sequential(model.layer4, model.avgpool, torch.nn.Flatten(1), model.fc)
    else:
        frozen = torch.nn.Sequential(stem, model.layer4, model.avgpool, torch.nn.Flatten(1))
        rest = model.fc
    for q in frozen.parameters():
        q.requires_grad_(False)
    return frozen, rest


runs = []
for size in [int(s) for s in a.sizes.split(",")]:
    for mode in a.modes.split(","):
        model = torchvision.models.resnet18(num_classes=10).to(dev)
        frozen, rest = frozen_prefix(model, mode)
        opt = torch.optim.SGD([q for q in model.parameters() if q.requires_grad], lr=0.01, momentum=0.9)
        x = torch.randn(a.batch, 3, size, size, device=dev)
        y = torch.arange(a.batch, device=dev) % 10
        loss_fn = torch.nn.CrossEntropyLoss()

        def step():
            opt.zero_grad(set_to_none=True)
            if mode != "full":
                with torch.no_grad():
                    h = frozen(x)
            else:
                h = x
            loss = loss_fn(rest(h), y)
            loss.backward()
            opt.step()

        model.train()
        if mode != "full":
            frozen.eval()
        for _ in range(3):
            step()
        sync()
        t0 = time.perf_counter()
        for _ in range(a.steps):
            step()
        sync()
        train = a.steps * a.batch / (time.perf_counter() - t0)
        run = {"size": size, "mode": mode, "batch": a.batch, "steps": a.steps, "trainImgS": round(train, 2)}
        if mode == "full":
            model.eval()
            with torch.no_grad():
                for _ in range(3):
                    model(x)
                sync()
                t0 = time.perf_counter()
                for _ in range(a.steps):
                    model(x)
                sync()
                run["inferImgS"] = round(a.steps * a.batch / (time.perf_counter() - t0), 2)
        runs.append(run)
        print(f"torch {dev.type} {size} px {mode} batch {a.batch}: train {train:.1f} img/s"
              + (f", inference {run['inferImgS']:.1f} img/s" if "inferImgS" in run else ""), flush=True)

print(json.dumps({"bench": "torch-resnet18", "device": torch.cuda.get_device_name(0) if dev.type == "cuda" else "cpu",
                  "torch": torch.__version__, "threads": torch.get_num_threads(), "runs": runs}))
