#!/usr/bin/env python3
"""PyTorch reference for bench/trainer/fashion-mnist.ts: the same recipe with torchvision's ResNet18.

    /usr/bin/python3 bench/trainer/pytorch_fashion_mnist.py --data DIR --mode full|head \
        [--epochs 10] [--warmup-epochs 1] [--batch 128] [--lr 0.05] [--momentum 0.9] [--weight-decay 5e-4] \
        [--image-size 32] \
        [--seed 42] [--threads 2] [--random-resized-crop] [--schedule cosine|step] [--step-size 7] [--gamma 0.1]

DIR is an ImageFolder tree with train/ and val/. Transforms are the trainer's (apps/trainer/src/data/geometry.ts):
  train: Resize(round(S*256/224)) -> CenterCrop(S) -> RandomHorizontalFlip   (RandomResizedCrop(S) with the flag)
  val:   Resize(round(S*256/224)) -> CenterCrop(S)
then ToTensor and ImageNet normalisation. torchvision.models.resnet18(num_classes=K) from its default random
initialisation. SGD (momentum, weight decay on every trained parameter), cross-entropy, and the trainer's `cosine`
schedule (apps/trainer/src/train/schedule.ts) or, with --schedule step, StepLR(step_size, gamma), set once per epoch: linear warm-up lr*(e+1)/(W+1) for the first W
epochs, then lr*(1+cos(pi*(e-W)/(E-W)))/2 — with W=0 exactly CosineAnnealingLR(T_max=E) stepped per epoch.

mode full: every parameter trains, model.train() (batch norms use batch statistics).
mode head: only fc trains; the backbone stays in eval mode (running statistics), as the trainer's freeze 'head'.
           The backbone runs every step under torch.no_grad() (no feature cache: the usual PyTorch recipe).

Data loading runs in the main process (num_workers=0); torch uses --threads intra-op threads.
Prints one line per epoch, then one JSON line: wall seconds (training loop, validation included, model creation
and dataset indexing excluded), img/s (epochs * train images / wall), per-epoch accuracy, best val accuracy.
"""
import argparse
import json
import math
import time

import torch
import torchvision
from torch import nn
from torchvision import transforms


def learning_rate(base: float, epoch_index: int, epochs: int, warmup: int) -> float:
    """The trainer's cosine schedule with linear warm-up (schedule.ts, minLr 0), for a 0-based epoch index."""
    w = min(warmup, max(0, epochs - 1))
    if epoch_index < w:
        return base * (epoch_index + 1) / (w + 1)
    span = epochs - w
    t = 0 if span <= 0 else (epoch_index - w) / span
    return base * (1 + math.cos(math.pi * t)) / 2


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--mode", choices=["full", "head"], required=True)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--warmup-epochs", type=int, default=1)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--momentum", type=float, default=0.9)
    ap.add_argument("--weight-decay", type=float, default=5e-4)
    ap.add_argument("--image-size", type=int, default=32)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--random-resized-crop", action="store_true")
    ap.add_argument("--schedule", choices=["cosine", "step"], default="cosine")
    ap.add_argument("--step-size", type=int, default=7)
    ap.add_argument("--gamma", type=float, default=0.1)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    s = args.image_size
    norm = transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
    resize = [transforms.Resize(round(s * 256 / 224)), transforms.CenterCrop(s)]
    geometry = [transforms.RandomResizedCrop(s)] if args.random_resized_crop else resize
    train_tf = transforms.Compose([*geometry, transforms.RandomHorizontalFlip(), transforms.ToTensor(), norm])
    val_tf = transforms.Compose([*resize, transforms.ToTensor(), norm])
    train_set = torchvision.datasets.ImageFolder(f"{args.data}/train", train_tf)
    val_set = torchvision.datasets.ImageFolder(f"{args.data}/val", val_tf)
    train_loader = torch.utils.data.DataLoader(train_set, batch_size=args.batch, shuffle=True, num_workers=0)
    val_loader = torch.utils.data.DataLoader(val_set, batch_size=args.batch, shuffle=False, num_workers=0)

    model = torchvision.models.resnet18(num_classes=len(train_set.classes))
    if args.mode == "head":
        for name, p in model.named_parameters():
            p.requires_grad = name.startswith("fc.")
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=args.lr, momentum=args.momentum, weight_decay=args.weight_decay)
    loss_fn = nn.CrossEntropyLoss()
    backbone = nn.Sequential(*list(model.children())[:-1], nn.Flatten())

    history = []
    started = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        t0 = time.perf_counter()
        if args.schedule == "step":
            lr = args.lr * args.gamma ** ((epoch - 1) // args.step_size)
        else:
            lr = learning_rate(args.lr, epoch - 1, args.epochs, args.warmup_epochs)
        for group in opt.param_groups:
            group["lr"] = lr
        loss_sum, seen = 0.0, 0
        if args.mode == "full":
            model.train()
        else:
            model.eval()
        for x, y in train_loader:
            if args.mode == "full":
                logits = model(x)
            else:
                with torch.no_grad():
                    feats = backbone(x)
                logits = model.fc(feats)
            loss = loss_fn(logits, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_sum += loss.item() * len(y)
            seen += len(y)
        train_s = time.perf_counter() - t0
        model.eval()
        correct, val_loss, n = 0, 0.0, 0
        with torch.no_grad():
            for x, y in val_loader:
                logits = model(x)
                val_loss += nn.functional.cross_entropy(logits, y, reduction="sum").item()
                correct += (logits.argmax(1) == y).sum().item()
                n += len(y)
        m = {
            "epoch": epoch,
            "lr": lr,
            "train_loss": loss_sum / seen,
            "val_loss": val_loss / n,
            "val_acc": correct / n,
            "train_s": train_s,
            "seconds": time.perf_counter() - t0,
        }
        history.append(m)
        print(
            f"[pytorch {args.mode}] epoch {epoch}/{args.epochs} lr {lr:.5f} train loss {m['train_loss']:.4f} "
            f"val loss {m['val_loss']:.4f} val acc {100 * m['val_acc']:.2f}% ({m['seconds']:.1f} s)",
            flush=True,
        )
    wall = time.perf_counter() - started
    best = max(history, key=lambda h: h["val_acc"])
    print(
        json.dumps(
            {
                "framework": "pytorch",
                "torch": torch.__version__,
                "torchvision": torchvision.__version__,
                "mode": args.mode,
                "threads": torch.get_num_threads(),
                "epochs": args.epochs,
                "train_images": len(train_set),
                "val_images": len(val_set),
                "wall_s": round(wall, 2),
                "img_per_s": round(args.epochs * len(train_set) / wall, 2),
                "best_val_acc": best["val_acc"],
                "best_epoch": best["epoch"],
                "val_acc": [h["val_acc"] for h in history],
                "epoch_s": [round(h["seconds"], 2) for h in history],
            }
        ),
        flush=True,
    )
    if not math.isfinite(history[-1]["train_loss"]):
        raise SystemExit("diverged")


if __name__ == "__main__":
    main()
