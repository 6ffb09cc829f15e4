#!/usr/bin/env python3
"""The Python peer of `diat eval lfw`'s whole-photo path (issue 20, item 4), written as a user of
the Python ecosystem would write it: facenet-pytorch 2.6.0's MTCNN finds the face, numpy fits the
similarity onto CelebA's landmark template, PIL warps the face into the model's crop, the model
runs in PyTorch from diat's own safetensors, and the edit goes back into the photo with PIL/numpy.

Per photo, each stage is timed with time.perf_counter, with the same stage names and the same
bookkeeping as `diat eval lfw` (`times` in its JSON report):

  decode  PIL open + EXIF orientation + convert("RGB") (+ load)
  detect  mtcnn.detect(photo, landmarks=True)
  align   5-point similarity fit (Umeyama, no reflection), PIL affine warp (bilinear) of the photo
          into CelebA's 178x218 aligned frame, PIL bilinear resize of its crop window (box 0, 20,
          178, 198) to the model's size: diat's align_face, step for step; --direct warps straight
          to the model's size instead (one PIL transform, no resize, less work than diat)
  edit    uint8 crops -> tensor in [-1, 1], the model (Model::apply of crates/diat-train/src/
          model.rs), -> uint8
  paste   the edit (edited - original crop, at the model's resolution) warped back into the photo
          with the inverse transform (PIL, mode "F"), blended through the crop footprint's feathered
          mask (8 crop pixels, smoothstep; crates/diat-align/src/paste.rs), rounded, clipped
  write   PNG into --out as <photo stem>.png
  path    the sum of the above; photos_per_second = photos / path (rejected photos included)

Of several detections the one whose box centre is nearest the photo centre is edited; one whose box
is shorter than --min-face (40) photo pixels is rejected, as diat does. The first photo(s) run the
whole path once untimed first (warm-up: first-call costs of torch and PIL are not counted).

MTCNN comes from the facenet-pytorch wheel that scripts/setup-mtcnn.sh keeps in diat's cache, its
code imported the way scripts/mtcnn/reference.py does (torchvision stub for batched_nms), its weights
the wheel's own data/{p,r,o}net.pt. The networks are scripts/reference/diat_reference.py's.

Checked against diat on 4 LFW photos (PNG copies, so that both read the same pixels): MTCNN's
landmarks, the similarity, the model's output and the paste-back agree with diat's (paste: at most
one pixel off by 1). Known differences from diat's path:
  - decode: libjpeg-turbo (PIL) instead of image-rs: JPEG pixels may differ by a few levels;
  - detect: the torchvision stub's batched_nms is Python (torchvision's is C++); the JSON reports
    the time spent in it (`detect_nms_stub`);
  - align: PIL's bilinear affine takes one sample per pixel where diat averages k x k bilinear
    samples when it shrinks the photo (k = 2 for LFW's faces), and fills outside the photo with
    black where diat repeats the edge pixels: crops agree to within ~0.5 level on average, more
    where the crop window leaves the photo;
  - write: PIL's PNG encoder (zlib level 6) straight to the file, not image-rs's written atomically;
  - the edit runs --batch photos per forward (default 1; `diat eval lfw` defaults to 32).

usage: lfw_path.py --model DIR --photos LIST.txt [--out DIR] [--threads N] [--json OUT.json]
"""

import argparse
import importlib.util
import json
import os
import sys
import tempfile
import time
import tomllib
import zipfile

import numpy as np
import PIL
import torch
from PIL import Image, ImageOps

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPTS = os.path.dirname(HERE)

# crates/diat-align/src/template.rs CELEBA_TEMPLATE: CelebA's mean landmarks in the 178x218 frame.
CELEBA_TEMPLATE = np.array([
    [69.25, 111.5],
    [107.90625, 111.0625],
    [89.03125, 134.75],
    [71.0625, 151.875],
    [105.28125, 152.03125],
])
# crates/diat-nets/src/mtcnn.rs CELEBA_OFFSET: MTCNN's landmark coordinates -> CelebA's.
CELEBA_OFFSET = -1.0
# The crop window (crates/diat-celeba CropSpec default): rows 20..198 at full width.
WINDOW = (0, 20, 178, 178)  # left, top, width, height
ALIGNED = (178, 218)  # CelebA's aligned frame (template.rs ALIGNED_WIDTH, ALIGNED_HEIGHT)
FEATHER = 8.0  # crates/diat-align/src/paste.rs PasteOptions::default
PAPER_SIGMA = 1.8  # crates/diat-nets/src/blur.rs


def load_module(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


# ---------------------------------------------------------------- MTCNN (facenet-pytorch 2.6.0)


def mtcnn_dir():
    """The rules of crates/diat-common/src/dirs.rs (as scripts/setup-mtcnn.sh)."""
    if os.environ.get("DIAT_MTCNN_DIR"):
        return os.environ["DIAT_MTCNN_DIR"]
    home = os.environ.get("DIAT_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "diat")
    cache = os.environ.get("DIAT_CACHE_DIR") or os.path.join(home, "cache")
    return os.path.join(cache, "mtcnn")


class NmsClock:
    """Wraps the torchvision stub's batched_nms to count the time spent in it (a pure-Python
    stand-in for torchvision's C++ kernel: part of `detect` that a pip-installed torchvision would
    not spend)."""

    def __init__(self, fn):
        self.fn, self.seconds = fn, 0.0

    def __call__(self, *args):
        t = time.perf_counter()
        try:
            return self.fn(*args)
        finally:
            self.seconds += time.perf_counter() - t


def load_mtcnn(wheel, min_face_size):
    ref = load_module("diat_mtcnn_reference", os.path.join(SCRIPTS, "mtcnn", "reference.py"))
    detect_mod, mtcnn_mod = ref.load_upstream(wheel)
    clock = NmsClock(detect_mod.batched_nms)
    detect_mod.batched_nms = clock
    # P/R/O-Net(pretrained=True) torch.load '<models dir>/../data/?net.pt': give the module a home
    # holding the wheel's data/ folder for the constructor, as an installed package would have.
    with tempfile.TemporaryDirectory(prefix="facenet_pytorch-") as home, zipfile.ZipFile(wheel) as z:
        for n in ("pnet", "rnet", "onet"):
            z.extract(f"facenet_pytorch/data/{n}.pt", home)
        os.makedirs(os.path.join(home, "facenet_pytorch", "models"))
        mtcnn_mod.__file__ = os.path.join(home, "facenet_pytorch", "models", "mtcnn.py")
        mtcnn = mtcnn_mod.MTCNN(min_face_size=min_face_size, select_largest=False, keep_all=True,
                                device=torch.device("cpu"))
    return mtcnn.eval(), clock


# ---------------------------------------------------------------- the model (Model::load / apply)


class DiatModel:
    def __init__(self, folder):
        ref = load_module("diat_reference", os.path.join(SCRIPTS, "reference", "diat_reference.py"))
        from safetensors.torch import load_file

        self.blur = ref.gaussian_blur
        arch, self.t = ref.load_rust_checkpoint(os.path.join(folder, "transform.safetensors"))
        assert arch == "transform", arch
        self.t.eval()
        self.image_size = self._image_size(os.path.join(folder, "transform.safetensors"))
        self.e, self.kind, self.region = None, "none", None
        self.sigma = PAPER_SIGMA
        self.task = None
        pipeline = os.path.join(folder, "pipeline.toml")
        if os.path.exists(pipeline):
            with open(pipeline, "rb") as fh:
                p = tomllib.load(fh)
            self.sigma = float(p.get("stages", {}).get("enhance", {}).get("sigma", PAPER_SIGMA))
            self.task = p.get("task", {}).get("name")
        epath = os.path.join(folder, "enhance.safetensors")
        if os.path.exists(epath):
            arch, self.e = ref.load_rust_checkpoint(epath)
            self.e.eval()
            if arch == "local_enhance":
                self.kind = "local"
                rpath = os.path.join(folder, "region.safetensors")
                if os.path.isfile(rpath):
                    r = load_file(rpath)["region"].float()
                    s = self.image_size
                    assert tuple(r.shape) == (1, 1, s, s), r.shape
                    self.region, self.kind = r, "masked local"
            elif arch == "global_enhance":
                self.kind = "global"
            else:
                raise SystemExit(f"{epath}: unexpected architecture {arch}")

    @staticmethod
    def _image_size(path):
        from safetensors import safe_open

        with safe_open(path, framework="pt") as fh:
            return int(json.loads(fh.metadata()["diat.config"])["image_size"])

    @torch.inference_mode()
    def apply(self, x):
        tx = self.t(x)
        if self.e is None:
            out = tx
        elif self.kind == "global":
            out = self.e(self.blur(tx, self.sigma))
        elif self.region is not None:
            r = self.region
            out = r * self.e(x, tx) + (1.0 - r) * x
        else:
            out = self.e(x, tx)
        return out.clamp(-1.0, 1.0)

    def edit(self, crops):
        """uint8 N x S x S x 3 crops -> uint8 edited crops (crates/diat-train images_to_device,
        Model::apply, images::to_rgb)."""
        x = torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)
        y = self.apply(x.contiguous())
        y = ((y + 1.0) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).contiguous()
        return list(y.numpy())


# ---------------------------------------------------------------- geometry


def fit_similarity(src, dst):
    """Least-squares similarity src -> dst (crates/diat-align/src/similarity.rs): x' = a x - b y + tx,
    y' = b x + a y + ty, as a 2x3 matrix."""
    ms, md = src.mean(0), dst.mean(0)
    s, d = src - ms, dst - md
    var = (s * s).sum()
    a = (s * d).sum() / var
    b = (s[:, 0] * d[:, 1] - s[:, 1] * d[:, 0]).sum() / var
    return np.array([[a, -b, md[0] - (a * ms[0] - b * ms[1])],
                     [b, a, md[1] - (b * ms[0] + a * ms[1])]])


def compose(m2, m1):
    """The 2x3 affine m2 after m1."""
    return np.hstack([m2[:, :2] @ m1[:, :2], (m2[:, :2] @ m1[:, 2:] + m2[:, 2:])])


def invert(m):
    a = np.linalg.inv(m[:, :2])
    return np.hstack([a, -a @ m[:, 2:]])


def pil_affine(m):
    """PIL's AFFINE data for a map from output to input pixel-centre coordinates (PIL samples
    output pixel x at data(x + 0.5) in coordinates where input pixel i spans [i, i + 1])."""
    a = m[:, :2]
    t = m[:, 2] + 0.5 - a @ np.array([0.5, 0.5])
    return (a[0, 0], a[0, 1], t[0], a[1, 0], a[1, 1], t[1])


def shift(dx, dy):
    return np.array([[1.0, 0.0, dx], [0.0, 1.0, dy]])


def crop_to_aligned(size):
    """Crop pixel-centre coordinates (size x size) -> aligned-frame ones (CropWindow::to_aligned)."""
    left, top, w, h = WINDOW
    sx, sy = size / w, size / h
    return np.array([[1 / sx, 0.0, 0.5 / sx - 0.5 + left], [0.0, 1 / sy, 0.5 / sy - 0.5 + top]])


def align(photo, points, size, direct):
    """The similarity photo -> aligned frame and the size x size crop (uint8 HxWx3)."""
    s = fit_similarity(np.asarray(points, dtype=np.float64) + CELEBA_OFFSET, CELEBA_TEMPLATE)
    to_photo = invert(s)
    if direct:
        m = compose(to_photo, crop_to_aligned(size))
        crop = photo.transform((size, size), Image.AFFINE, pil_affine(m), resample=Image.BILINEAR)
    else:
        left, top, w, h = WINDOW
        aligned = photo.transform(ALIGNED, Image.AFFINE, pil_affine(to_photo), resample=Image.BILINEAR)
        crop = aligned.resize((size, size), Image.BILINEAR, box=(left, top, left + w, top + h))
    return s, np.asarray(crop)


def paste(photo, s, crop, edited, feather=FEATHER):
    """Residual paste-back (crates/diat-align/src/paste.rs, PasteMode::Residual): photo + mask *
    warp(edited - crop), over the bounding box of the crop's footprint."""
    size = crop.shape[0]
    to_crop = compose(invert(crop_to_aligned(size)), s)  # photo -> crop pixel-centre coordinates
    to_photo = invert(to_crop)
    c = np.array([[-0.5, -0.5, 1.0], [size - 0.5, -0.5, 1.0], [-0.5, size - 0.5, 1.0],
                  [size - 0.5, size - 0.5, 1.0]])
    corners = c @ to_photo.T
    H, W = photo.shape[:2]
    x0, y0 = (max(int(np.floor(corners[:, k].min())), 0) for k in (0, 1))
    x1 = int(min(max(np.ceil(corners[:, 0].max()) + 1, 0), W))
    y1 = int(min(max(np.ceil(corners[:, 1].max()) + 1, 0), H))
    out = photo.copy()
    if x1 <= x0 or y1 <= y0:
        return out
    bw, bh = x1 - x0, y1 - y0
    m = compose(to_crop, shift(x0, y0))  # box pixel -> crop coordinates
    residual = edited.astype(np.float32) - crop.astype(np.float32)
    data = pil_affine(m)
    warped = np.stack([
        np.asarray(Image.fromarray(np.ascontiguousarray(residual[:, :, ch]), mode="F")
                   .transform((bw, bh), Image.AFFINE, data, resample=Image.BILINEAR))
        for ch in range(3)], axis=-1)
    # The feathered mask of the crop footprint (paste.rs mask_weight), per photo pixel.
    gx, gy = np.meshgrid(np.arange(bw, dtype=np.float32), np.arange(bh, dtype=np.float32))
    cx = m[0, 0] * gx + m[0, 1] * gy + m[0, 2]
    cy = m[1, 0] * gx + m[1, 1] * gy + m[1, 2]
    d = np.minimum(np.minimum(cx + 0.5, cy + 0.5), np.minimum(size - 0.5 - cx, size - 0.5 - cy))
    t = np.clip(d / feather, 0.0, 1.0)
    w = (t * t * (3.0 - 2.0 * t)).astype(np.float32)
    box = out[y0:y1, x0:x1].astype(np.float32)
    out[y0:y1, x0:x1] = np.clip(np.rint(box + w[..., None] * warped), 0, 255).astype(np.uint8)
    return out


def central_face(boxes, width, height):
    centres = np.stack([(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2], 1)
    return int(np.argmin(((centres - [width / 2, height / 2]) ** 2).sum(1)))


# ---------------------------------------------------------------- the path


STAGES = ("decode", "detect", "align", "edit", "paste", "write")


def run(paths, mtcnn, model, args, times, rejected, out_dir):
    """The whole path over `paths`, in chunks of --batch photos (edit batched, as diat's
    --batch); adds into `times`, appends to `rejected`; returns the number of photos edited."""
    clock = time.perf_counter
    size = model.image_size
    edited_count = 0
    for start in range(0, len(paths), args.batch):
        faces = []  # (path, photo array, similarity, crop)
        for path in paths[start:start + args.batch]:
            t = clock()
            try:
                with Image.open(path) as im:
                    photo = ImageOps.exif_transpose(im).convert("RGB")
                    photo.load()
            except Exception as e:  # noqa: BLE001 - any decoder failure rejects the photo
                times["decode"] += clock() - t
                rejected.append([path, f"unreadable: {e}"])
                continue
            times["decode"] += clock() - t
            t = clock()
            boxes, probs, points = mtcnn.detect(photo, landmarks=True)
            times["detect"] += clock() - t
            if boxes is None or len(boxes) == 0:
                rejected.append([path, "no face found"])
                continue
            k = central_face(np.asarray(boxes, dtype=np.float64), *photo.size)
            b = boxes[k]
            side = float(min(b[2] - b[0], b[3] - b[1]))
            if side < args.min_face:
                rejected.append([path, f"face too small: {side:.0f} px, --min-face {args.min_face:g}"])
                continue
            t = clock()
            s, crop = align(photo, points[k], size, args.direct)
            times["align"] += clock() - t
            faces.append((path, photo, s, crop))
        if not faces:
            continue
        t = clock()
        outs = model.edit([f[3] for f in faces])
        times["edit"] += clock() - t
        for (path, photo, s, crop), out in zip(faces, outs):
            t = clock()
            result = paste(np.asarray(photo), s, crop, out)
            times["paste"] += clock() - t
            if out_dir is not None:
                t = clock()
                name = os.path.splitext(os.path.basename(path))[0] + ".png"
                Image.fromarray(result).save(os.path.join(out_dir, name))
                times["write"] += clock() - t
            edited_count += 1
    return edited_count


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True, help="a diat model folder (transform.safetensors, ...)")
    ap.add_argument("--photos", required=True, help="a text file: one photo path per line")
    ap.add_argument("--out", help="write each edited photo here as <stem>.png")
    ap.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    ap.add_argument("--json", help="write the report here (- for stdout)")
    ap.add_argument("--min-face", type=float, default=40.0,
                    help="reject a face whose box is shorter than this (photo pixels)")
    ap.add_argument("--mtcnn-min-face", type=float, default=20.0, help="MTCNN(min_face_size=...)")
    ap.add_argument("--batch", type=int, default=1, help="photos per forward pass")
    ap.add_argument("--direct", action="store_true",
                    help="warp straight to the model's size (one PIL transform, no resize)")
    ap.add_argument("--wheel", help="the facenet-pytorch 2.6.0 wheel (default: diat's MTCNN cache)")
    ap.add_argument("--warmup", type=int, default=1, help="photos run untimed first")
    a = ap.parse_args()
    a.batch = max(1, a.batch)

    torch.set_num_threads(a.threads)
    with open(a.photos) as fh:
        paths = [line.strip() for line in fh if line.strip()]
    if not paths:
        sys.exit(f"{a.photos}: no photos")
    wheel = a.wheel or os.path.join(mtcnn_dir(), "facenet_pytorch-2.6.0-py3-none-any.whl")
    if not os.path.isfile(wheel):
        sys.exit(f"no facenet-pytorch wheel at {wheel}: run scripts/setup-mtcnn.sh")
    mtcnn, nms = load_mtcnn(wheel, a.mtcnn_min_face)
    model = DiatModel(a.model)
    if a.out:
        os.makedirs(a.out, exist_ok=True)

    # Warm-up, untimed: the whole path on the first photo(s) and one forward pass at batch size.
    scratch = {k: 0.0 for k in STAGES}
    with tempfile.TemporaryDirectory(prefix="lfw_path-warmup-") as tmp:
        run(paths[:max(a.warmup, 0)], mtcnn, model, a, scratch, [], tmp)
    s = model.image_size
    model.edit([np.zeros((s, s, 3), np.uint8)] * min(a.batch, len(paths)))

    times = {k: 0.0 for k in STAGES}
    rejected = []
    nms.seconds = 0.0
    edited = run(paths, mtcnn, model, a, times, rejected, a.out)
    times["path"] = sum(times[k] for k in STAGES)
    n = len(paths)
    report = {
        "peer": f"facenet-pytorch 2.6.0 MTCNN + PyTorch {torch.__version__.split('+')[0]} "
                f"+ PIL {PIL.__version__}",
        "model": os.path.abspath(a.model),
        "enhancement": model.kind,
        "image_size": s,
        "align": "direct" if a.direct else "window+resize",
        "batch": a.batch,
        "threads": a.threads,
        "photos": n,
        "edited": edited,
        "rejected": rejected,
        "times": times,
        "detect_nms_stub": nms.seconds,
        "photos_per_second": n / max(times["path"], 1e-9),
    }
    text = json.dumps(report, indent=2)
    if a.json == "-":
        print(text)
    elif a.json:
        with open(a.json, "w") as fh:
            fh.write(text + "\n")
    t = times
    print(f"lfw_path: {n} photos, {edited} edited, {len(rejected)} rejected, {a.threads} threads: "
          f"decode {t['decode']:.3f} detect {t['detect']:.3f} (nms stub {nms.seconds:.3f}) "
          f"align {t['align']:.3f} edit {t['edit']:.3f} paste {t['paste']:.3f} "
          f"write {t['write']:.3f} = {t['path']:.3f} s, {report['photos_per_second']:.2f} photos/s",
          file=sys.stderr)


if __name__ == "__main__":
    main()
