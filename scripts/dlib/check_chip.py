#!/usr/bin/env python3
"""Checks diat's dlib face chips (crates/diat-align/src/chip.rs, through its `chip` example) against
dlib itself.

1. dlib5: on real photos (default: the first 36 of /work/shared/celeba-real/faces/*.jpg), dlib's
   frontal face detector and 5-point shape predictor give the points; dlib.get_face_chip(img, shape,
   150, 0.25) and `chip IMG POINTS OUT dlib5` must agree (max and mean absolute pixel difference).
   The same photos upscaled x3 (points x3) exercise dlib's image pyramid.
2. celeba5: on CelebA's aligned images with the official 5-point landmarks (eye centres, nose tip,
   mouth corners: our convention), `chip ... celeba5` must equal dlib's own extraction for the same
   template (dlib.chip_details(padded celeba5 template, landmarks, 150x150) + dlib.extract_image_chip),
   and is compared with dlib's chip from its own 5 points: mean absolute pixel difference and the
   distance between the two chips' descriptors (dlib's face_recognition_model_v1; the same person
   below 0.6).

Images are decoded once with Pillow and written as PNG, so both sides read the same pixels.

usage: check_chip.py [--faces GLOB] [--n 36] [--celeba DIR] [--chip-bin PATH] [--json OUT]
"""

import argparse
import glob
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reference import DAT, SP5, dlib_dir, load_rgb, write_json  # noqa: E402


def default_chip_bin():
    here = os.path.dirname(os.path.abspath(__file__))
    target = subprocess.run(["bash", os.path.join(here, "..", "target-dir.sh")], check=True,
                            capture_output=True, text=True).stdout.strip()
    return os.path.join(target, "release", "examples", "chip")


def rust_chip(binary, png, points, out, mode):
    pts = ",".join(f"{v:.17g}" for p in points for v in p)
    subprocess.run([binary, png, pts, out, mode], check=True)
    return np.asarray(Image.open(out).convert("RGB"), dtype=np.int32)


# crates/diat-align/src/chip.rs: celeba5_template() (dlib's 68-point mean face: eye centres = means of
# points 36-41 and 42-47, nose tip 30, mouth corners 48 and 54)
MEAN_EYE_L = ([0.121737, 0.187122, 0.265825, 0.334606, 0.260918, 0.182743],
              [0.216423, 0.178758, 0.179852, 0.231733, 0.245099, 0.244077])
MEAN_EYE_R = ([0.645647, 0.714428, 0.793132, 0.858516, 0.79751, 0.719335],
              [0.231733, 0.179852, 0.178758, 0.216423, 0.244077, 0.245099])


def celeba5_template():
    eye = lambda e: (sum(e[0]) / 6.0, sum(e[1]) / 6.0)  # noqa: E731
    return [eye(MEAN_EYE_L), eye(MEAN_EYE_R), (0.490127, 0.515625), (0.254149, 0.780233),
            (0.726104, 0.780233)]


def dlib_template_chip(img, template, points, size=150, padding=0.25):
    import dlib

    chip_pts = dlib.dpoints([dlib.dpoint((padding + x) / (2 * padding + 1) * size,
                                         (padding + y) / (2 * padding + 1) * size)
                             for x, y in template])
    img_pts = dlib.dpoints([dlib.dpoint(x, y) for x, y in points])
    det = dlib.chip_details(chip_pts, img_pts, dlib.chip_dims(size, size))
    return np.asarray(dlib.extract_image_chip(img, det), dtype=np.int32)


def read_celeba_landmarks(path):
    rows = {}
    with open(path) as f:
        lines = f.read().split("\n")
    for line in lines[2:]:
        t = line.split()
        if len(t) == 11:
            v = [float(x) for x in t[1:]]
            rows[t[0]] = [(v[2 * i], v[2 * i + 1]) for i in range(5)]
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--faces", default="/work/shared/celeba-real/faces/*.jpg")
    ap.add_argument("--n", type=int, default=36)
    ap.add_argument("--upscaled", type=int, default=12, help="how many of them also x3")
    ap.add_argument("--celeba", default="/work/shared/celeba")
    ap.add_argument("--chip-bin", default=default_chip_bin())
    ap.add_argument("--dir", default=dlib_dir(), help="folder with dlib's .dat files")
    ap.add_argument("--json")
    a = ap.parse_args()
    if not os.path.exists(a.chip_bin):
        sys.exit(f"{a.chip_bin} not found: cargo build --release -p diat-align --example chip")

    import dlib

    detector = dlib.get_frontal_face_detector()
    sp = dlib.shape_predictor(os.path.join(a.dir, SP5))
    model = dlib.face_recognition_model_v1(os.path.join(a.dir, DAT))
    tmp = tempfile.mkdtemp(prefix="diat-chip-")
    report = {"dlib5": [], "dlib5_x3": [], "celeba5_parity": [], "celeba5": []}

    def dlib5_points(img):
        dets = detector(img, 1)
        if len(dets) == 0:
            return None
        rect = max(dets, key=lambda r: r.width() * r.height())
        return sp(img, rect)

    def compare(name, img, shape, key, scale=1):
        png = os.path.join(tmp, f"{name}.png")
        Image.fromarray(img).save(png)
        pts = [(shape.part(i).x * scale, shape.part(i).y * scale) for i in range(5)]
        if scale != 1:
            shape = dlib.full_object_detection(
                dlib.rectangle(0, 0, img.shape[1] - 1, img.shape[0] - 1),
                [dlib.point(int(x), int(y)) for x, y in pts])
        want = np.asarray(dlib.get_face_chip(img, shape, 150, 0.25), dtype=np.int32)
        got = rust_chip(a.chip_bin, png, pts, os.path.join(tmp, f"{name}.chip.png"), "dlib5")
        d = np.abs(got - want)
        report[key].append({"image": name, "max": int(d.max()), "mean": float(d.mean()),
                            "differing": int((d > 0).sum())})

    # 1. dlib5 parity on real photos (and x3 for the pyramid)
    files = sorted(glob.glob(a.faces))[:a.n]
    for i, f in enumerate(files):
        img = load_rgb(f)
        shape = dlib5_points(img)
        if shape is None:
            continue
        name = os.path.splitext(os.path.basename(f))[0]
        compare(name, img, shape, "dlib5")
        if i < a.upscaled:
            big = np.asarray(Image.fromarray(img).resize((img.shape[1] * 3, img.shape[0] * 3),
                                                         Image.BICUBIC))
            compare(name + "_x3", big, shape, "dlib5_x3", scale=3)

    # 2. celeba5: our landmarks vs dlib's own 5 points
    lms = read_celeba_landmarks(os.path.join(a.celeba, "Anno", "list_landmarks_align_celeba.txt"))
    for fn, pts in sorted(lms.items()):
        img = load_rgb(os.path.join(a.celeba, "Img", "img_align_celeba", fn))
        name = "celeba_" + os.path.splitext(fn)[0]
        png = os.path.join(tmp, f"{name}.png")
        Image.fromarray(img).save(png)
        ours = rust_chip(a.chip_bin, png, pts, os.path.join(tmp, f"{name}.chip.png"), "celeba5")
        want = dlib_template_chip(img, celeba5_template(), pts)
        d = np.abs(ours - want)
        report["celeba5_parity"].append({"image": fn, "max": int(d.max()), "mean": float(d.mean()),
                                         "differing": int((d > 0).sum())})
        row = {"image": fn}
        shape = dlib5_points(img)
        d_ours = np.asarray(model.compute_face_descriptor(ours.astype(np.uint8)))
        if shape is not None:
            ref = np.asarray(dlib.get_face_chip(img, shape, 150, 0.25), dtype=np.int32)
            d_ref = np.asarray(model.compute_face_descriptor(ref.astype(np.uint8)))
            row.update(mean_abs=float(np.abs(ours - ref).mean()),
                       descriptor_distance=float(np.linalg.norm(d_ours - d_ref)))
        else:
            row.update(mean_abs=None, descriptor_distance=None, note="dlib found no face")
        report["celeba5"].append(row)

    summary = {}
    for key in ("dlib5", "dlib5_x3", "celeba5_parity"):
        rows = report[key]
        if rows:
            summary[key] = {"chips": len(rows), "max_abs": max(r["max"] for r in rows),
                            "mean_abs": float(np.mean([r["mean"] for r in rows])),
                            "identical_chips": sum(1 for r in rows if r["max"] == 0),
                            "differing_values": int(sum(r["differing"] for r in rows))}
    c = [r for r in report["celeba5"] if r["mean_abs"] is not None]
    if c:
        dist = np.array([r["descriptor_distance"] for r in c])
        summary["celeba5"] = {"chips": len(c), "no_dlib_face": len(report["celeba5"]) - len(c),
                              "mean_abs": float(np.mean([r["mean_abs"] for r in c])),
                              "descriptor_distance_mean": float(dist.mean()),
                              "descriptor_distance_max": float(dist.max()),
                              "descriptor_distance_over_0.6": int((dist >= 0.6).sum())}
    report["summary"] = summary
    print(json.dumps(summary, indent=1))
    if a.json:
        write_json(a.json, report)


if __name__ == "__main__":
    main()
