#!/usr/bin/env python3
"""Python reference for `diat_nets::mtcnn`: runs facenet-pytorch 2.6.0's own `detect_face` and
P/R/O-Net modules (imported from the wheel that scripts/setup-mtcnn.sh keeps beside the converted
weights) with the converted safetensors weights, on the given images, and prints JSON:

    {"<image path>": {"boxes": [[x1, y1, x2, y2, score], ...], "points": [[[x, y] * 5], ...]}, ...}

torchvision is not installed in diat's venv; the two things `detect_face.py` imports from it are
replaced by equivalents: `torchvision.ops.boxes.batched_nms` (greedy IoU NMS per index, written in
torch below with torchvision's semantics) and `torchvision.transforms.functional` (unused by
detection). Nothing else of the upstream code is changed.

usage: reference.py --weights DIR [--min-face 20] [--pad N] IMAGE...
"""

import argparse
import importlib.util
import json
import os
import sys
import types
import zipfile

import numpy as np
import torch
from PIL import Image

WHEEL = "facenet_pytorch-2.6.0-py3-none-any.whl"


def nms(boxes, scores, thr):
    order = torch.argsort(scores, descending=True)
    x1, y1, x2, y2 = boxes.unbind(1)
    areas = (x2 - x1) * (y2 - y1)
    keep, removed = [], torch.zeros(len(boxes), dtype=torch.bool)
    for oi in range(len(order)):
        i = order[oi].item()
        if removed[i]:
            continue
        keep.append(i)
        rest = order[oi + 1:]
        xx1 = torch.maximum(x1[i], x1[rest])
        yy1 = torch.maximum(y1[i], y1[rest])
        xx2 = torch.minimum(x2[i], x2[rest])
        yy2 = torch.minimum(y2[i], y2[rest])
        inter = (xx2 - xx1).clamp(min=0) * (yy2 - yy1).clamp(min=0)
        iou = inter / (areas[i] + areas[rest] - inter)
        removed[rest[iou > thr]] = True
    return torch.as_tensor(keep, dtype=torch.long)


def batched_nms(boxes, scores, idxs, thr):
    if boxes.numel() == 0:
        return torch.empty((0,), dtype=torch.int64)
    offsets = idxs.to(boxes) * (boxes.max() + 1)
    return nms(boxes + offsets[:, None], scores, thr)


def install_torchvision_stub():
    tv = types.ModuleType("torchvision")
    ops = types.ModuleType("torchvision.ops")
    ops_boxes = types.ModuleType("torchvision.ops.boxes")
    ops_boxes.batched_nms = batched_nms
    transforms = types.ModuleType("torchvision.transforms")
    functional = types.ModuleType("torchvision.transforms.functional")
    tv.ops, ops.boxes, tv.transforms, transforms.functional = ops, ops_boxes, transforms, functional
    for m in (tv, ops, ops_boxes, transforms, functional):
        sys.modules[m.__name__] = m


def load_upstream(wheel):
    """facenet_pytorch.models.mtcnn and .utils.detect_face from the wheel, without the package's
    __init__ (which imports requests and InceptionResnetV1)."""
    install_torchvision_stub()
    z = zipfile.ZipFile(wheel)
    for pkg in ("fpref", "fpref.utils"):
        m = types.ModuleType(pkg)
        m.__path__ = []
        sys.modules[pkg] = m

    def load(name, member):
        spec = importlib.util.spec_from_loader(name, loader=None)
        mod = importlib.util.module_from_spec(spec)
        mod.__package__ = name.rpartition(".")[0]
        sys.modules[name] = mod
        exec(compile(z.read(member).decode(), f"{wheel}/{member}", "exec"), mod.__dict__)
        return mod

    detect = load("fpref.utils.detect_face", "facenet_pytorch/models/utils/detect_face.py")
    mtcnn = load("fpref.mtcnn", "facenet_pytorch/models/mtcnn.py")
    return detect, mtcnn


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--weights", required=True, help="folder of {pnet,rnet,onet}.safetensors and the wheel")
    ap.add_argument("--wheel", help=f"default: WEIGHTS/{WHEEL}")
    ap.add_argument("--min-face", type=float, default=20)
    ap.add_argument("--pad", type=int, default=0, help="edge-replicate padding added on every side")
    ap.add_argument("images", nargs="+")
    a = ap.parse_args()
    from safetensors.torch import load_file

    torch.set_num_threads(1)
    detect, mtcnn = load_upstream(a.wheel or os.path.join(a.weights, WHEEL))
    nets = []
    for name, cls in (("pnet", mtcnn.PNet), ("rnet", mtcnn.RNet), ("onet", mtcnn.ONet)):
        net = cls(pretrained=False)
        net.load_state_dict(load_file(os.path.join(a.weights, f"{name}.safetensors")), strict=True)
        nets.append(net.eval())
    out = {}
    for path in a.images:
        img = np.asarray(Image.open(path).convert("RGB"))
        if a.pad:
            img = np.pad(img, ((a.pad, a.pad), (a.pad, a.pad), (0, 0)), mode="edge")
        with torch.no_grad():
            boxes, points = detect.detect_face(
                img, a.min_face, *nets, [0.6, 0.7, 0.7], 0.709, torch.device("cpu"))
        out[path] = {"boxes": np.asarray(boxes[0], dtype=np.float64).tolist(),
                     "points": np.asarray(points[0], dtype=np.float64).tolist()}
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
