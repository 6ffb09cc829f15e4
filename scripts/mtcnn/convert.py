#!/usr/bin/env python3
"""Converts facenet-pytorch 2.6.0's MTCNN weights (pnet.pt, rnet.pt, onet.pt: PyTorch state dicts
inside the wheel) into diat checkpoints (safetensors) for `diat_nets::mtcnn` (paper §5.4: every
test photo is aligned by its 5 facial landmarks first).

The Rust networks use facenet-pytorch's own parameter names (conv1.weight, prelu1.weight, dense4.*,
...), so the conversion renames nothing; it checks the names and shapes against the architecture
below and writes each tensor as little-endian float32.

The files are written by hand (the safetensors layout: u64 header length, JSON header with sorted
keys, data) rather than with `safetensors.torch.save_file`, so that the bytes do not depend on the
Python package's version or on hash-map order and their sha256 can be pinned in
scripts/setup-mtcnn.sh. Metadata keys follow `diat_nets::checkpoint` (format, diat.checkpoint,
diat.architecture, diat.config, diat.crate, diat.tch, diat.libtorch) plus diat.source and
diat.source_sha256.

usage: convert.py --pt-dir DIR_WITH_PNET_RNET_ONET_PT --out DIR [--source TEXT]
"""

import argparse
import hashlib
import json
import os
import struct
import sys

import numpy as np
import torch

# name -> shape, in facenet_pytorch.models.mtcnn's module order.
ARCH = {
    "pnet": {
        "conv1.weight": (10, 3, 3, 3), "conv1.bias": (10,), "prelu1.weight": (10,),
        "conv2.weight": (16, 10, 3, 3), "conv2.bias": (16,), "prelu2.weight": (16,),
        "conv3.weight": (32, 16, 3, 3), "conv3.bias": (32,), "prelu3.weight": (32,),
        "conv4_1.weight": (2, 32, 1, 1), "conv4_1.bias": (2,),
        "conv4_2.weight": (4, 32, 1, 1), "conv4_2.bias": (4,),
    },
    "rnet": {
        "conv1.weight": (28, 3, 3, 3), "conv1.bias": (28,), "prelu1.weight": (28,),
        "conv2.weight": (48, 28, 3, 3), "conv2.bias": (48,), "prelu2.weight": (48,),
        "conv3.weight": (64, 48, 2, 2), "conv3.bias": (64,), "prelu3.weight": (64,),
        "dense4.weight": (128, 576), "dense4.bias": (128,), "prelu4.weight": (128,),
        "dense5_1.weight": (2, 128), "dense5_1.bias": (2,),
        "dense5_2.weight": (4, 128), "dense5_2.bias": (4,),
    },
    "onet": {
        "conv1.weight": (32, 3, 3, 3), "conv1.bias": (32,), "prelu1.weight": (32,),
        "conv2.weight": (64, 32, 3, 3), "conv2.bias": (64,), "prelu2.weight": (64,),
        "conv3.weight": (64, 64, 3, 3), "conv3.bias": (64,), "prelu3.weight": (64,),
        "conv4.weight": (128, 64, 2, 2), "conv4.bias": (128,), "prelu4.weight": (128,),
        "dense5.weight": (256, 1152), "dense5.bias": (256,), "prelu5.weight": (256,),
        "dense6_1.weight": (2, 256), "dense6_1.bias": (2,),
        "dense6_2.weight": (4, 256), "dense6_2.bias": (4,),
        "dense6_3.weight": (10, 256), "dense6_3.bias": (10,),
    },
}


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_safetensors(path, tensors, metadata):
    """tensors: dict name -> contiguous float32 numpy array. Deterministic bytes."""
    header = {"__metadata__": dict(sorted(metadata.items()))}
    offset = 0
    blobs = []
    for name in sorted(tensors):
        data = np.ascontiguousarray(tensors[name], dtype="<f4").tobytes()
        header[name] = {
            "dtype": "F32",
            "shape": list(tensors[name].shape),
            "data_offsets": [offset, offset + len(data)],
        }
        offset += len(data)
        blobs.append(data)
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)  # align the data to 8 bytes, as safetensors does
    tmp = path + ".partial"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


def convert(net, src, out_dir, source):
    state = torch.load(src, map_location="cpu", weights_only=True)
    want = ARCH[net]
    got = {k: tuple(v.shape) for k, v in state.items()}
    if got != want:
        missing = sorted(set(want) - set(got))
        unexpected = sorted(set(got) - set(want))
        shapes = sorted(k for k in set(want) & set(got) if want[k] != got[k])
        sys.exit(f"{src}: not facenet-pytorch's {net}: missing {missing}, unexpected {unexpected}, "
                 f"other shapes {shapes}")
    tensors = {k: v.detach().to(torch.float32).numpy() for k, v in state.items()}
    meta = {
        "format": "pt",
        "diat.checkpoint": "1",
        "diat.architecture": f"mtcnn_{net}",
        "diat.config": "{}",
        "diat.crate": "scripts/mtcnn/convert.py 1",
        "diat.tch": "none (converted in Python)",
        "diat.libtorch": "none (converted in Python)",
        "diat.source": f"{source} facenet_pytorch/data/{net}.pt",
        "diat.source_sha256": sha256(src),
        "diat.license": "MIT (facenet-pytorch, Tim Esler); MTCNN weights by Zhang et al. 2016",
    }
    dst = os.path.join(out_dir, f"{net}.safetensors")
    write_safetensors(dst, tensors, meta)
    print(f"{sha256(dst)}  {net}.safetensors")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pt-dir", required=True, help="folder holding pnet.pt, rnet.pt, onet.pt")
    ap.add_argument("--out", required=True)
    ap.add_argument("--source", default="facenet-pytorch 2.6.0 (PyPI)")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    for net in ("pnet", "rnet", "onet"):
        convert(net, os.path.join(a.pt_dir, f"{net}.pt"), a.out, a.source)


if __name__ == "__main__":
    main()
