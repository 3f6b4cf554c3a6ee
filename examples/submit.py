#!/usr/bin/env python3
"""Fine-tune on an ImageFolder with Python's standard library only: upload the folder through presigned URLs (only
files the server does not already hold; large files in parts), submit, follow the epochs, download the model.

    GPULAB_URL=http://127.0.0.1:8080 GPULAB_TOKEN=gpl_... python3 examples/submit.py DIR [--name NAME]
        [--epochs 3] [--image-size 224] [--freeze head|full] [--max-hours 1] [--out DIR]
"""
import argparse
import hashlib
import json
import os
import sys
import time
import urllib.error
import urllib.request

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".tif", ".tiff", ".bmp"}
TERMINAL = {"SUCCEEDED", "FAILED", "CANCELLED", "TIMED_OUT", "BUDGET_EXHAUSTED"}


def api(method, path, body=None, headers=None):
    """One API call; a problem+json error is raised with its code, field and detail."""
    req = urllib.request.Request(
        os.environ["GPULAB_URL"].rstrip("/") + path,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": "Bearer " + os.environ["GPULAB_TOKEN"], "Content-Type": "application/json",
                 **(headers or {})},
    )
    try:
        with urllib.request.urlopen(req) as res:
            return json.loads(res.read() or b"null")
    except urllib.error.HTTPError as e:
        problem = json.loads(e.read() or b"{}")
        sys.exit(f"{method} {path}: {e.code} {problem.get('code')} {problem.get('field') or ''}: {problem.get('detail')}")


def put(url, data):
    """A PUT of raw bytes to a presigned URL; returns the ETag (multipart completion needs it)."""
    req = urllib.request.Request(url, method="PUT", data=data, headers={"Content-Length": str(len(data))})
    with urllib.request.urlopen(req) as res:
        return res.headers.get("ETag", "")


def manifest(root):
    files = []
    for split in ("train", "val"):
        for dirpath, _, names in os.walk(os.path.join(root, split)):
            for n in sorted(names):
                if os.path.splitext(n)[1].lower() not in IMAGE_EXTENSIONS or n.startswith("."):
                    continue
                full = os.path.join(dirpath, n)
                with open(full, "rb") as f:
                    digest = hashlib.sha256(f.read()).hexdigest()
                files.append({"path": os.path.relpath(full, root).replace(os.sep, "/"),
                              "size": os.path.getsize(full), "sha256": digest})
    return files


def upload(root, name):
    session = api("POST", "/v1/datasets/uploads", {"name": name, "files": manifest(root)})
    print(f"upload {session['id']}: {session['pending']['files']} of {session['files']} files to send")
    parts = {}
    while session["missing"]:
        for blob in session["missing"]:
            path = os.path.join(root, blob["paths"][0])
            with open(path, "rb") as f:
                if blob["method"] == "PUT":
                    put(blob["url"], f.read())
                    continue
                sent = []
                for part in blob["parts"]:
                    f.seek((part["partNumber"] - 1) * blob["partSize"])
                    sent.append({"partNumber": part["partNumber"], "etag": put(part["url"], f.read(part["size"]))})
                parts[blob["sha256"]] = sent
        if not session["truncated"]:
            break
        session = api("GET", f"/v1/datasets/uploads/{session['id']}")
    done = api("POST", f"/v1/datasets/uploads/{session['id']}/complete", {"parts": parts} if parts else {})
    return done["dataset"]["id"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--name")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--image-size", type=int, default=224)
    ap.add_argument("--freeze", default="head")
    ap.add_argument("--max-hours", type=float, default=1)
    ap.add_argument("--out")
    a = ap.parse_args()
    dataset = upload(a.dir, a.name or os.path.basename(os.path.abspath(a.dir)))
    spec = {"name": "submit.py", "dataset": {"id": dataset}, "epochs": a.epochs, "imageSize": a.image_size,
            "freeze": {"mode": a.freeze}, "resources": {"maxHours": a.max_hours}}
    job = api("POST", "/v1/jobs", spec, {"Idempotency-Key": f"submit-py-{dataset}-{a.epochs}-{a.image_size}"})
    print(f"job {job['id']} submitted")
    shown = 0
    while True:
        job = api("GET", f"/v1/jobs/{job['id']}")
        for m in job["metrics"][shown:]:
            print(f"Epoch {m['epoch']}/{m['epochs']} | Train Loss: {m['trainLoss']:.4f} | "
                  f"Val Loss: {m['valLoss']:.4f} | Val Acc: {m['valAcc'] * 100:.2f}%")
        shown = len(job["metrics"])
        if job["status"] in TERMINAL:
            break
        time.sleep(2)
    print(f"job {job['id']} {job['status']} — {job.get('statusMessage') or ''}; cost {job['cost']['amount']}")
    if job["status"] != "SUCCEEDED":
        sys.exit(1)
    out = a.out or f"./model-{job['id']}"
    for f in api("GET", f"/v1/jobs/{job['id']}/artifacts")["model"]:
        target = os.path.join(out, f["path"])
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with urllib.request.urlopen(f["url"]) as res, open(target, "wb") as dst:
            dst.write(res.read())
    print(f"model in {out}")


if __name__ == "__main__":
    main()
