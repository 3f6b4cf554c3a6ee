#!/usr/bin/python3
"""Generates data-torchvision-fixtures.json: reference outputs of torchvision/PIL for the data pipeline's unit tests.

    /usr/bin/python3 apps/trainer/test/unit/data-torchvision-fixtures.py > apps/trainer/test/unit/data-torchvision-fixtures.json

Needs torch, torchvision and Pillow (Debian: apt-get install python3-torchvision python3-pil). Generated with
torchvision 0.14.1 / Pillow 9.4.0 (Debian bookworm). RandomResizedCrop.get_params is run with torch.empty().uniform_
and torch.randint fed from a recorded list of uniform numbers, so the TypeScript port can be fed the same list.
"""
import base64
import io
import json
import sys

import numpy as np
import torch
import torchvision
from PIL import Image
from torchvision import transforms as T
from torchvision.transforms import functional as F


def b64(a):
    return base64.b64encode(np.ascontiguousarray(a, dtype=np.uint8).tobytes()).decode()


def png(img):
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def smooth(w, h):
    x = np.arange(w)[None, :]
    y = np.arange(h)[:, None]
    r = (x * 255 // max(1, w - 1)) + 0 * y
    g = (y * 255 // max(1, h - 1)) + 0 * x
    b = ((x + 2 * y) * 3) % 256
    return np.stack([r, g, b], axis=-1).astype(np.uint8)


def busy(w, h):
    x = np.arange(w)[None, :, None]
    y = np.arange(h)[:, None, None]
    c = np.arange(3)[None, None, :]
    return ((x * 37 + y * 11 + c * 85 + ((x * y) % 17) * 5) % 256).astype(np.uint8)


class Stream:
    def __init__(self, us):
        self.us = list(us)
        self.k = 0

    def next(self):
        u = self.us[self.k]
        self.k += 1
        return u


def rrc_case(width, height, scale, us):
    s = Stream(us)
    real_empty, real_randint = torch.empty, torch.randint

    class Draw:
        def uniform_(self, lo, hi):
            lo, hi = float(lo), float(hi)
            return torch.tensor([lo + (hi - lo) * s.next()], dtype=torch.float64)

    def fake_empty(*args, **kwargs):
        return Draw()

    def fake_randint(lo, hi, size):
        return torch.tensor([lo + int(np.floor(s.next() * (hi - lo)))])

    torch.empty, torch.randint = fake_empty, fake_randint
    try:
        img = Image.new("RGB", (width, height))
        i, j, h, w = T.RandomResizedCrop.get_params(img, scale=list(scale), ratio=[3.0 / 4.0, 4.0 / 3.0])
    finally:
        torch.empty, torch.randint = real_empty, real_randint
    return {"width": width, "height": height, "scale": list(scale), "us": us, "draws": s.k,
            "expect": {"top": i, "left": j, "height": h, "width": w}}


def val_case(name, img, size):
    out = T.CenterCrop(size)(T.Resize(round(size * 256 / 224))(img.convert("RGB")))
    return {"name": name, "png": png(img), "size": size, "out": b64(np.asarray(out))}


def crop_case(name, img, rect, size, flip):
    out = F.resized_crop(img.convert("RGB"), rect["top"], rect["left"], rect["height"], rect["width"], [size, size],
                         T.InterpolationMode.BILINEAR)
    if flip:
        out = F.hflip(out)
    return {"name": name, "png": png(img), "rect": rect, "size": size, "flip": flip, "out": b64(np.asarray(out))}


def main():
    rng = np.random.default_rng(20240601)
    sizes = [(500, 375), (375, 500), (28, 28), (224, 224), (1000, 10), (10, 1000), (3, 2000), (2000, 3), (1, 1),
             (640, 427), (33, 17)]
    scales = [(0.08, 1.0), (0.5, 1.0), (0.9, 1.0), (1.0, 1.0), (0.25, 0.3)]
    rrc = []
    for (w, h) in sizes:
        for sc in scales:
            for _ in range(3):
                rrc.append(rrc_case(w, h, sc, [round(float(u), 6) for u in rng.random(22)]))

    gray = Image.fromarray(busy(28, 28)[:, :, 0], mode="L")
    rgba = Image.fromarray(np.concatenate([smooth(40, 30), ((np.arange(40)[None, :] * 6 + np.arange(30)[:, None] * 2)
                                                           % 256).astype(np.uint8)[:, :, None]], axis=-1), mode="RGBA")
    smooth_img = Image.fromarray(smooth(61, 47))
    busy_img = Image.fromarray(busy(160, 120))
    val = [
        val_case("smooth 61x47 -> 32", smooth_img, 32),
        val_case("busy 160x120 -> 64", busy_img, 64),
        val_case("busy 160x120 -> 96 (upsample)", busy_img, 96),
        val_case("grey 28x28 -> 64 (upsample)", gray, 64),
        val_case("rgba 40x30 -> 16", rgba, 16),
    ]
    crops = [
        crop_case("smooth crop", smooth_img, {"left": 5, "top": 3, "width": 40, "height": 31}, 24, False),
        crop_case("smooth crop flipped", smooth_img, {"left": 5, "top": 3, "width": 40, "height": 31}, 24, True),
        crop_case("busy crop", busy_img, {"left": 17, "top": 9, "width": 101, "height": 88}, 32, True),
        crop_case("grey upsample crop", gray, {"left": 2, "top": 4, "width": 20, "height": 17}, 56, False),
    ]
    t = T.Compose([T.ToTensor(), T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
    ramp = Image.fromarray(np.repeat(np.arange(256, dtype=np.uint8)[None, :, None], 3, axis=2))
    norm = t(ramp).numpy()[:, 0, :]  # 3 x 256, float32
    json.dump({
        "generator": {"torch": torch.__version__, "torchvision": torchvision.__version__,
                      "pillow": Image.__version__},
        "randomResizedCrop": rrc,
        "val": val,
        "crops": crops,
        "normalize": [[float(v) for v in row] for row in norm],
    }, sys.stdout, separators=(",", ":"))


main()
