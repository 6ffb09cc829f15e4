#!/usr/bin/env python3
"""PyTorch definition of diat's attribute classifier (`diat_nets::attr_classifier`), the network
`diat eval real` scores attribute success with. Loads diat's checkpoints with strict=True:

    meta = safetensors.safe_open(path, "pt").metadata()
    net = AttrClassifier(**json.loads(meta["diat.config"]))
    net.load_state_dict(safetensors.torch.load_file(path), strict=True)

Inputs: [N, 3, S, S] RGB in [-1, 1] (the 178x178 central window of CelebA's aligned image resized
to S); outputs one logit per attribute (config "attributes", in order).

CLI (used by tests and `diat bench classifier`):
    classifier_reference.py probs --weights W --images A.png B.png ... --json OUT
    classifier_reference.py bench --weights W --batches 1,64 --threads 2 --json OUT
"""

from __future__ import annotations

import argparse
import json
import math
import time

import torch
import torch.nn as nn


class ConvBn(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, stride, 1)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x):
        return torch.relu(self.bn(self.conv(x)))


class AttrClassifier(nn.Module):
    def __init__(self, image_size=64, width=32, attributes=(), dropout=0.2):
        super().__init__()
        w = width
        layers = [(3, w, 1), (w, 2 * w, 2), (2 * w, 2 * w, 1), (2 * w, 4 * w, 2), (4 * w, 4 * w, 1),
                  (4 * w, 8 * w, 2), (8 * w, 8 * w, 1)]
        self.features = nn.Sequential(*[ConvBn(i, o, s) for i, o, s in layers])
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(8 * w, len(attributes))
        self.image_size = image_size
        self.attributes = list(attributes)

    def forward(self, x):
        x = self.features(x).mean(dim=(2, 3))
        return self.head(self.dropout(x))


def load(path: str) -> AttrClassifier:
    from safetensors import safe_open
    from safetensors.torch import load_file

    with safe_open(path, "pt") as f:
        meta = f.metadata()
    assert meta.get("diat.architecture") == "attr_classifier", meta.get("diat.architecture")
    net = AttrClassifier(**json.loads(meta["diat.config"]))
    net.load_state_dict(load_file(path), strict=True)
    return net.eval()


def to_input(paths, size):
    import numpy as np
    from PIL import Image

    xs = []
    for p in paths:
        img = Image.open(p).convert("RGB")
        assert img.size == (size, size), f"{p}: {img.size}, expected {size}x{size} crops"
        xs.append(np.asarray(img, dtype=np.float32))
    x = torch.from_numpy(np.stack(xs)).permute(0, 3, 1, 2)
    return x / 127.5 - 1.0


def measure(f, min_time=2.0, warmup=3):
    for _ in range(warmup):
        f()
    n, start = 0, time.perf_counter()
    while True:
        f()
        n += 1
        secs = time.perf_counter() - start
        if secs >= min_time:
            return n, secs


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("probs")
    p.add_argument("--weights", required=True)
    p.add_argument("--images", nargs="+", required=True)
    p.add_argument("--json", required=True)
    b = sub.add_parser("bench")
    b.add_argument("--weights", required=True)
    b.add_argument("--batches", default="1,64")
    b.add_argument("--threads", type=int, default=0)
    b.add_argument("--min-time", type=float, default=2.0)
    b.add_argument("--json", required=True)
    a = ap.parse_args()
    net = load(a.weights)
    if a.cmd == "probs":
        with torch.no_grad():
            probs = torch.sigmoid(net(to_input(a.images, net.image_size)))
        out = {"attributes": net.attributes, "images": a.images, "probabilities": probs.tolist()}
    else:
        if a.threads > 0:
            torch.set_num_threads(a.threads)
        rows = []
        for bs in [int(v) for v in a.batches.split(",")]:
            x = torch.rand(bs, 3, net.image_size, net.image_size) * 2 - 1
            with torch.no_grad():
                n, secs = measure(lambda: net(x), a.min_time)
            rows.append({"batch": bs, "images_per_second": n * bs / secs})
            print(f"PyTorch eager classifier batch {bs}: {n * bs / secs:,.0f} img/s", flush=True)
        out = {"torch": torch.__version__, "threads": torch.get_num_threads(), "rows": rows}
    with open(a.json, "w") as fh:
        json.dump(out, fh, indent=1)


if __name__ == "__main__":
    main()
