#!/usr/bin/env python3
"""The peer of `diat bench data`: the same decode + central crop + resize to 128x128 in Pillow.

Reads the same CelebA root (official, torchvision, kaggle or stargan layout; folder or zip), loads
the first N image files into memory (cycling), and prints JSON with img/s on one core for decode
alone, crop+resize alone, and both. Crop: box (0, 20, 178, 198), bilinear resize, as diat's default.
"""
import argparse, io, json, os, sys, time, zipfile

from PIL import Image
import PIL

BOX = (0, 20, 178, 198)
SIZE = (128, 128)


def find(root):
    cands = [
        ("Anno/list_attr_celeba.txt", ["Img/img_align_celeba", "img_align_celeba"], ["Img/img_align_celeba.zip"]),
        ("list_attr_celeba.csv", ["img_align_celeba/img_align_celeba", "img_align_celeba"], ["img_align_celeba.zip"]),
        ("list_attr_celeba.txt", ["images", "img_align_celeba"], ["img_align_celeba.zip"]),
        ("celeba/list_attr_celeba.txt", ["celeba/img_align_celeba"], ["celeba/img_align_celeba.zip"]),
    ]
    for attr, dirs, zips in cands:
        if os.path.exists(os.path.join(root, attr)):
            for d in dirs:
                p = os.path.join(root, d)
                if os.path.isdir(p):
                    return ("dir", p)
            for z in zips:
                p = os.path.join(root, z)
                if os.path.isfile(p):
                    return ("zip", p)
    sys.exit(f"no CelebA images under {root}")


def load(root, n):
    kind, p = find(root)
    files = []
    if kind == "dir":
        for name in sorted(os.listdir(p)):
            if name.lower().endswith((".jpg", ".png")):
                with open(os.path.join(p, name), "rb") as f:
                    files.append(f.read())
            if len(files) >= n:
                break
    else:
        with zipfile.ZipFile(p) as z:
            for name in sorted(z.namelist()):
                if name.lower().endswith(".jpg"):
                    files.append(z.read(name))
                if len(files) >= n:
                    break
    return files


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("root")
    ap.add_argument("--images", type=int, default=2000)
    a = ap.parse_args()
    files = load(a.root, a.images)
    n = a.images
    pick = lambda i: files[i % len(files)]

    def decode(b):
        im = Image.open(io.BytesIO(b))
        return im.convert("RGB")

    for i in range(min(32, len(files))):
        decode(pick(i)).crop(BOX).resize(SIZE, Image.BILINEAR)
    t = time.perf_counter()
    for i in range(n):
        decode(pick(i))
    dec = n / (time.perf_counter() - t)
    im = decode(pick(0))
    t = time.perf_counter()
    for i in range(n):
        im.crop(BOX).resize(SIZE, Image.BILINEAR).tobytes()
    cr = n / (time.perf_counter() - t)
    t = time.perf_counter()
    for i in range(n):
        decode(pick(i)).crop(BOX).resize(SIZE, Image.BILINEAR).tobytes()
    full = n / (time.perf_counter() - t)
    print(json.dumps({"decode_ips": dec, "crop_resize_ips": cr, "full_ips": full, "version": PIL.__version__}))


if __name__ == "__main__":
    main()
