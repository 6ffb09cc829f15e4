#!/usr/bin/env python3
"""dlib's own face-verification pipeline on an LFW pairs file, the reference for the "before" row
of `diat eval lfw`: dlib's HOG frontal face detector (upsampled once; of several faces the one
nearest the photo's centre, as diat picks), its 5-point shape predictor, and
`face_recognition_model_v1.compute_face_descriptor(img, shape, 0, 0.25)` (no jitter, padding
0.25, 150x150 chips); verification at dlib's threshold 0.6 and ROC AUC, like diat's report.
dlib-bin and the two .dat files come with `make setup` (scripts/setup-dlib.sh).
    lfw_dlib.py --lfw DIR [--pairs FILE] [--limit N] [--json OUT]
"""

import argparse
import json
import os
import sys

import numpy as np
from PIL import Image

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "dlib"))
import reference as R  # noqa: E402


def read_pairs(path):
    with open(path) as f:
        lines = [l.split() for l in f.read().splitlines()[1:] if l.strip()]
    out = []
    for w in lines:
        if len(w) == 3:
            out.append(((w[0], int(w[1])), (w[0], int(w[2])), True))
        else:
            out.append(((w[0], int(w[1])), (w[2], int(w[3])), False))
    return out


def auc(pos, neg):
    scores = sorted([(s, 1) for s in pos] + [(s, 0) for s in neg])
    rank_sum, i = 0.0, 0
    while i < len(scores):
        j = i
        while j < len(scores) and scores[j][0] == scores[i][0]:
            j += 1
        mid = (i + j + 1) / 2
        rank_sum += mid * sum(1 for k in range(i, j) if scores[k][1])
        i = j
    p, n = len(pos), len(neg)
    return (rank_sum - p * (p + 1) / 2) / (p * n)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lfw", required=True)
    ap.add_argument("--pairs")
    ap.add_argument("--limit", type=int)
    ap.add_argument("--json")
    a = ap.parse_args()
    import dlib

    pairs = read_pairs(a.pairs or os.path.join(a.lfw, "pairsDevTest.txt"))
    if a.limit:
        same = [p for p in pairs if p[2]][: (a.limit + 1) // 2]
        diff = [p for p in pairs if not p[2]][: a.limit // 2]
        pairs = same + diff
    images = os.path.join(a.lfw, "lfw-deepfunneled")
    d = R.dlib_dir()
    detector = dlib.get_frontal_face_detector()
    sp = dlib.shape_predictor(os.path.join(d, R.SP5))
    model = dlib.face_recognition_model_v1(os.path.join(d, R.DAT))
    descs, missing = {}, []
    for ref in sorted({r for p in pairs for r in p[:2]}):
        path = os.path.join(images, ref[0], f"{ref[0]}_{ref[1]:04d}.jpg")
        img = np.asarray(Image.open(path).convert("RGB"))
        dets = detector(img, 1)
        if len(dets) == 0:
            missing.append(path)
            continue
        h, w = img.shape[:2]
        rect = min(dets, key=lambda r: ((r.left() + r.right()) / 2 - w / 2) ** 2
                   + ((r.top() + r.bottom()) / 2 - h / 2) ** 2)
        descs[ref] = np.asarray(model.compute_face_descriptor(img, sp(img, rect), 0, 0.25))
    dist = [(float(np.linalg.norm(descs[x] - descs[y])), same)
            for x, y, same in pairs if x in descs and y in descs]
    same = [d for d, s in dist if s]
    diff = [d for d, s in dist if not s]
    right = sum(d < 0.6 for d in same) + sum(d >= 0.6 for d in diff)
    report = {
        "pipeline": "dlib " + dlib.__version__ + ": HOG detector (upsample 1), shape_predictor_5, "
                    "compute_face_descriptor(num_jitters=0, padding=0.25)",
        "photos": len(descs) + len(missing), "no_face": missing, "pairs": len(pairs),
        "pairs_scored": len(dist), "accuracy": right / max(len(dist), 1),
        "same_verified": sum(d < 0.6 for d in same) / max(len(same), 1),
        "different_rejected": sum(d >= 0.6 for d in diff) / max(len(diff), 1),
        "auc": auc([-d for d in same], [-d for d in diff]),
    }
    print(json.dumps(report if len(missing) < 20 else {**report, "no_face": len(missing)}, indent=1))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
