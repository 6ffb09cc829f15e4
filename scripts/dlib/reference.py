#!/usr/bin/env python3
"""PyTorch reference of dlib's face-recognition ResNet (dlib_face_recognition_resnet_model_v1) and
the dlib side of diat's parity tests.

`DlibResNet` is a plain nn.Module whose parameter names are those of the safetensors file written
by scripts/dlib/convert.py (load_state_dict(strict=True)); it maps uint8 RGB 150x150 face chips
(cut as dlib.get_face_chip cuts them) to 128-D descriptors, the same person when the Euclidean
distance is below 0.6. What it reproduces of dlib (dlib/dnn/*.h, tools/python/src/face_recognition.cpp):

* input_rgb_image_sized<150>: x = (pixel - mean_channel) / 256, mean (R, G, B) = (122.782, 117.001,
  104.298), channels in RGB order, NCHW;
* con_: cross-correlation (as torch's conv2d), filters [out, in, kh, kw], bias; padding = k/2 when the
  stride is 1, else 0 (dlib's default); output size 1 + (n + 2p - k) / s (floor);
* affine_ (CONV_MODE): y = gamma[c] * x + beta[c];
* max_pool<3,3,2,2> and avg_pool<2,2,2,2>: padding 0, floor output size, windows always inside the
  input; avg_pool_everything: the mean over all rows and columns;
* add_prev: the output has the larger of each dimension; each input is zero-padded at its end
  (higher channels, bottom rows, right columns) and the two are added;
* fc_no_bias<128>: y = x W (dlib stores W as [in, out]; the file holds W^T, torch's Linear layout);
  loss_metric outputs the raw 128 values (no normalisation).

usage:
  reference.py descriptors --weights W.safetensors --chips DIR_OR_FILES... --json OUT [--dat DAT]
  reference.py chip --image IMG --points x0,y0,...,x4,y4 [--size 150] [--padding 0.25] --out PNG
  reference.py pipeline --images IMG... --json OUT [--dir DLIB_DIR] [--upsample 1]

`descriptors` writes per chip the descriptor from dlib (face_recognition_model_v1(dat)
.compute_face_descriptor(chip)) and from DlibResNet, and their max abs difference. `chip` writes
dlib.get_face_chip for dlib's 5-point convention (shape_predictor_5_face_landmarks: outer and inner
corner of the image-right eye, outer and inner corner of the image-left eye, base of the nose).
`pipeline` runs dlib's own path (frontal face detector, 5-point shape predictor, descriptor with
padding 0.25; the largest face) and writes the rectangle, the 5 points and the descriptor.

dlib and its model files: scripts/setup-dlib.sh installs dlib-bin into the torch venv and the files
into $DIAT_DLIB_DIR (default $DIAT_CACHE_DIR/dlib, $DIAT_HOME/cache/dlib, ~/.cache/diat/cache/dlib).
"""

import argparse
import glob
import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

DAT = "dlib_face_recognition_resnet_model_v1.dat"
SP5 = "shape_predictor_5_face_landmarks.dat"
WEIGHTS = "dlib_face_resnet_v1.safetensors"
DEFAULT_MEAN_RGB = (122.782, 117.001, 104.298)
# (channels, first block of the stage is a stride-2 "down" block)
STAGES = [(32, False, 3), (64, True, 4), (128, True, 3), (256, True, 3), (256, True, 1)]


def dlib_dir():
    if os.environ.get("DIAT_DLIB_DIR"):
        return os.environ["DIAT_DLIB_DIR"]
    home = os.environ.get("DIAT_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "diat")
    cache = os.environ.get("DIAT_CACHE_DIR") or os.path.join(home, "cache")
    return os.path.join(cache, "dlib")


class Affine(nn.Module):
    """dlib's affine_ in CONV_MODE: per-channel gamma (weight) and beta (bias)."""

    def __init__(self, channels):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x):
        return x * self.weight[None, :, None, None] + self.bias[None, :, None, None]


def add_prev(a, b):
    """dlib's add_prev_ (cpu::add(dest, src1, src2)): max of each dimension, zero-padded at the end."""
    if a.shape == b.shape:
        return a + b
    c = max(a.shape[1], b.shape[1])
    h = max(a.shape[2], b.shape[2])
    w = max(a.shape[3], b.shape[3])

    def pad(t):
        return F.pad(t, (0, w - t.shape[3], 0, h - t.shape[2], 0, c - t.shape[1]))

    return pad(a) + pad(b)


class Block(nn.Module):
    """ares / ares_down: relu(add_prev(affine2(conv2(relu(affine1(conv1(x))))), skip(x)))."""

    def __init__(self, cin, cout, down):
        super().__init__()
        self.down = down
        # dlib's con_<N,3,3,s,s>: padding 0 when the stride is 2, 1 when it is 1
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=2 if down else 1, padding=0 if down else 1)
        self.affine1 = Affine(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, stride=1, padding=1)
        self.affine2 = Affine(cout)

    def forward(self, x):
        y = self.affine2(self.conv2(F.relu(self.affine1(self.conv1(x)))))
        skip = F.avg_pool2d(x, 2, 2) if self.down else x
        return F.relu(add_prev(y, skip))


class DlibResNet(nn.Module):
    def __init__(self, mean_rgb=DEFAULT_MEAN_RGB):
        super().__init__()
        self.conv0 = nn.Conv2d(3, 32, 7, stride=2, padding=0)
        self.affine0 = Affine(32)
        blocks = []
        cin = 32
        for cout, down, n in STAGES:
            for j in range(n):
                blocks.append(Block(cin, cout, down and j == 0))
                cin = cout
        self.blocks = nn.ModuleList(blocks)
        self.fc = nn.Linear(256, 128, bias=False)
        self.register_buffer("mean_rgb", torch.tensor(mean_rgb, dtype=torch.float32),
                             persistent=False)

    @classmethod
    def load(cls, path, device="cpu"):
        from safetensors import safe_open
        from safetensors.torch import load_file

        with safe_open(path, "pt") as f:
            meta = f.metadata() or {}
        if meta.get("diat.architecture") != "dlib_face_resnet_v1":
            raise ValueError(f"{path}: diat.architecture {meta.get('diat.architecture')!r}, "
                             "expected dlib_face_resnet_v1")
        mean = tuple(float(v) for v in meta["diat.input.mean_rgb"].split(",")) \
            if "diat.input.mean_rgb" in meta else DEFAULT_MEAN_RGB
        net = cls(mean)
        net.load_state_dict(load_file(path), strict=True)
        return net.to(device).eval()

    def preprocess(self, chips):
        """uint8 [N, 150, 150, 3] RGB -> float [N, 3, 150, 150]: (pixel - mean) / 256."""
        x = chips.to(self.mean_rgb.device).to(torch.float32)
        x = (x - self.mean_rgb) / 256.0
        return x.permute(0, 3, 1, 2).contiguous()

    def forward(self, x):
        x = F.relu(self.affine0(self.conv0(x)))
        x = F.max_pool2d(x, 3, 2)
        for b in self.blocks:
            x = b(x)
        x = x.mean(dim=(2, 3))
        return self.fc(x)

    @torch.no_grad()
    def descriptors(self, chips):
        """uint8 RGB chips [N, 150, 150, 3] (numpy or tensor) -> float32 [N, 128]."""
        if isinstance(chips, np.ndarray):
            chips = torch.from_numpy(np.array(chips, dtype=np.uint8, copy=True))
        if chips.dim() != 4 or tuple(chips.shape[1:]) != (150, 150, 3) or chips.dtype != torch.uint8:
            raise ValueError(f"expected uint8 chips [N,150,150,3], got {tuple(chips.shape)} {chips.dtype}")
        return self(self.preprocess(chips))


# ------------------------------------------------------------------------------------------------


def load_rgb(path):
    from PIL import Image

    with Image.open(path) as im:
        return np.ascontiguousarray(np.asarray(im.convert("RGB"), dtype=np.uint8))


def list_images(items):
    files = []
    for it in items:
        if os.path.isdir(it):
            for ext in ("png", "jpg", "jpeg", "bmp"):
                files += glob.glob(os.path.join(it, f"*.{ext}"))
        else:
            files.append(it)
    return sorted(set(files))


def dlib_point(x, y):
    import dlib

    # dlib's Python full_object_detection holds integer points (dlib::point).
    return dlib.point(int(math.floor(x + 0.5)), int(math.floor(y + 0.5)))


def full_object_detection(points):
    import dlib

    pts = [dlib_point(x, y) for x, y in points]
    xs = [p.x for p in pts]
    ys = [p.y for p in pts]
    rect = dlib.rectangle(min(xs), min(ys), max(xs), max(ys))
    return dlib.full_object_detection(rect, pts)


def write_json(path, obj):
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    tmp = path + ".partial"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=1)
        f.write("\n")
    os.replace(tmp, path)


def cmd_descriptors(a):
    import dlib

    dat = a.dat or os.path.join(os.path.dirname(os.path.abspath(a.weights)), DAT)
    model = dlib.face_recognition_model_v1(dat)
    net = DlibResNet.load(a.weights)
    files = list_images(a.chips)
    if not files:
        sys.exit("descriptors: no chip images given")
    chips = np.stack([load_rgb(f) for f in files])
    ours = net.descriptors(chips).numpy().astype(np.float64)
    rows = []
    worst = 0.0
    for f, chip, o in zip(files, chips, ours):
        d = np.array(model.compute_face_descriptor(chip), dtype=np.float64)
        diff = float(np.max(np.abs(d - o)))
        worst = max(worst, diff)
        rows.append({"file": f, "dlib": d.tolist(), "torch": o.tolist(), "max_abs_diff": diff,
                     "distance": float(np.linalg.norm(d - o))})
    write_json(a.json, {"weights": a.weights, "dat": dat, "max_abs_diff": worst, "chips": rows})
    print(f"{len(rows)} chips: max |dlib - torch| = {worst:.3g}")


def parse_points(text):
    v = [float(t) for t in text.replace(";", ",").split(",") if t.strip()]
    if len(v) != 10:
        raise SystemExit(f"--points needs 10 numbers (x0,y0,...,x4,y4), got {len(v)}")
    return [(v[2 * i], v[2 * i + 1]) for i in range(5)]


def cmd_chip(a):
    import dlib
    from PIL import Image

    img = load_rgb(a.image)
    det = full_object_detection(parse_points(a.points))
    chip = dlib.get_face_chip(img, det, size=a.size, padding=a.padding)
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    Image.fromarray(np.asarray(chip, dtype=np.uint8)).save(a.out)
    print(f"{a.out}: {a.size}x{a.size} chip, points "
          + " ".join(f"({det.part(i).x},{det.part(i).y})" for i in range(5)))


def cmd_pipeline(a):
    import dlib

    d = a.dir or dlib_dir()
    detector = dlib.get_frontal_face_detector()
    sp = dlib.shape_predictor(a.sp or os.path.join(d, SP5))
    model = dlib.face_recognition_model_v1(a.dat or os.path.join(d, DAT))
    rows = []
    for f in list_images(a.images):
        img = load_rgb(f)
        dets = detector(img, a.upsample)
        if len(dets) == 0:
            rows.append({"file": f, "faces": 0, "rect": None, "points": None, "descriptor": None})
            continue
        rect = max(dets, key=lambda r: r.width() * r.height())
        shape = sp(img, rect)
        desc = model.compute_face_descriptor(img, shape, 0, 0.25)
        rows.append({
            "file": f, "faces": len(dets),
            "rect": [rect.left(), rect.top(), rect.right(), rect.bottom()],
            "points": [[shape.part(i).x, shape.part(i).y] for i in range(shape.num_parts)],
            "descriptor": list(np.asarray(desc, dtype=np.float64).tolist()),
        })
    write_json(a.json, {"detector": "dlib.get_frontal_face_detector", "upsample": a.upsample,
                        "padding": 0.25, "images": rows})
    print(f"{len(rows)} images, {sum(1 for r in rows if r['faces'])} with a face")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("descriptors", help="dlib vs PyTorch descriptors of 150x150 chips")
    p.add_argument("--weights", required=True)
    p.add_argument("--chips", required=True, nargs="+", help="folders and/or image files")
    p.add_argument("--json", required=True)
    p.add_argument("--dat", help=f"dlib's {DAT} (default: next to --weights)")
    p.set_defaults(fn=cmd_descriptors)
    p = sub.add_parser("chip", help="dlib.get_face_chip for dlib's 5-point convention")
    p.add_argument("--image", required=True)
    p.add_argument("--points", required=True, help="x0,y0,...,x4,y4 (rounded to integers)")
    p.add_argument("--size", type=int, default=150)
    p.add_argument("--padding", type=float, default=0.25)
    p.add_argument("--out", required=True)
    p.set_defaults(fn=cmd_chip)
    p = sub.add_parser("pipeline", help="dlib's detector + 5-point predictor + descriptor")
    p.add_argument("--images", required=True, nargs="+")
    p.add_argument("--json", required=True)
    p.add_argument("--dir", help="folder with dlib's .dat files (default: setup-dlib.sh's)")
    p.add_argument("--dat")
    p.add_argument("--sp")
    p.add_argument("--upsample", type=int, default=1)
    p.set_defaults(fn=cmd_pipeline)
    a = ap.parse_args()
    torch.set_grad_enabled(False)
    a.fn(a)


if __name__ == "__main__":
    main()
