#!/usr/bin/env python3
"""Peers of `diat bench real`, on the same machine in the same run:

  * dlib's own face descriptor through its Python API (dlib-bin,
    `face_recognition_model_v1.compute_face_descriptor` on a list of 150x150 chips), img/s;
  * diat's attribute classifier as a plain PyTorch module in eager mode
    (scripts/reference/classifier_reference.py), inference, img/s.

Same batch sizes and minimum time as the Rust side; random inputs (speed does not depend on them).
    bench_real.py --dat DAT --classifier W --batches 1,32 --threads 2 --min-time 2 --json OUT
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reference"))
import classifier_reference as C  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dat", required=True, help="dlib_face_recognition_resnet_model_v1.dat")
    ap.add_argument("--classifier", required=True)
    ap.add_argument("--batches", default="1,32")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--min-time", type=float, default=2.0)
    ap.add_argument("--json", required=True)
    a = ap.parse_args()
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    import dlib

    model = dlib.face_recognition_model_v1(a.dat)
    net = C.load(a.classifier)
    rng = np.random.default_rng(1)
    rows = []
    for b in [int(v) for v in a.batches.split(",")]:
        chips = [rng.integers(0, 256, (150, 150, 3), dtype=np.uint8) for _ in range(b)]
        n, secs = C.measure(lambda: model.compute_face_descriptor(chips), a.min_time, warmup=2)
        rows.append({"network": "dlib descriptor (dlib Python API)", "batch": b,
                     "images_per_second": n * b / secs})
        print(f"dlib descriptor, batch {b}: {n * b / secs:,.1f} img/s", flush=True)
        x = torch.rand(b, 3, net.image_size, net.image_size) * 2 - 1
        with torch.no_grad():
            n, secs = C.measure(lambda: torch.sigmoid(net(x)), a.min_time, warmup=2)
        rows.append({"network": "attribute classifier (PyTorch eager)", "batch": b,
                     "images_per_second": n * b / secs})
        print(f"PyTorch classifier, batch {b}: {n * b / secs:,.1f} img/s", flush=True)
    out = {"dlib": dlib.__version__, "torch": torch.__version__,
           "torch_threads": torch.get_num_threads(), "rows": rows}
    with open(a.json, "w") as fh:
        json.dump(out, fh, indent=1)


if __name__ == "__main__":
    main()
