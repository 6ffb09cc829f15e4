#!/usr/bin/env python3
"""PyTorch eager counterpart of `diat bench nets` (same flags, same measurements, same JSON).

Measures, with the networks of scripts/reference/diat_reference.py:
  * the transform network T's inference forward pass, img/s, for each batch size and precision
    (fp32; bf16 where supported natively: CUDA, or a CPU with AVX512-BF16/AMX);
  * one DIAT-A training iteration (T forward in training mode; D step on [a; T(x).detach()];
    T step on Eq. (14) with D frozen; Adam, lr 1e-5), img/s of input images, fp32.

Each measurement: `--warmup` untimed iterations, then rounds until both --min-iters and
--min-time are reached, synchronising the device before reading the clock (exactly the loop of
the Rust benchmark). Default is plain eager PyTorch; --levers applies what `diat bench nets` does by
default (BN folded into the convolutions for inference, channels-last, cudnn.benchmark, fused Adam).

Run it back to back with the Rust benchmark on the same machine, e.g.
    diat bench nets --compare-python $DIAT_TORCH_PYTHON      # runs this script afterwards
    python scripts/bench/bench_nets.py --width 0.25 --image-size 64 --batches 1,16 --step-batch 8
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.fusion import fuse_conv_bn_eval

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reference"))
import diat_reference as R  # noqa: E402


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(device, warmup, min_time, min_iters, f):
    for _ in range(warmup):
        f()
    sync(device)
    start = time.perf_counter()
    n, rnd = 0, max(1, min_iters)
    while True:
        for _ in range(rnd):
            f()
        n += rnd
        sync(device)
        secs = time.perf_counter() - start
        if secs >= min_time:
            return n, secs
        rnd = max(1, math.ceil((min_time - secs) / (secs / n)))


def bf16_supported(device: torch.device) -> bool:
    if device.type == "cuda":
        return True
    try:
        with open("/proc/cpuinfo") as fh:
            words = set(fh.read().split())
        return "avx512_bf16" in words or "amx_bf16" in words
    except OSError:
        return False


class FoldedTransform(nn.Module):
    """T with every BatchNorm folded into the preceding (transposed) convolution."""

    def __init__(self, t: R.TransformNet):
        super().__init__()
        t = copy.deepcopy(t).eval()
        self.c = nn.ModuleList(fuse_conv_bn_eval(m.conv, m.bn) for m in (t.c1, t.c2, t.c3))
        self.res = nn.ModuleList(
            nn.ModuleList([fuse_conv_bn_eval(r.a.conv, r.a.bn), fuse_conv_bn_eval(r.b.conv, r.b.bn)]) for r in t.res
        )
        self.d = nn.ModuleList(fuse_conv_bn_eval(m.conv, m.bn, transpose=True) for m in (t.d1, t.d2))
        self.out = t.out

    def forward(self, x):
        h = x
        for c in self.c:
            h = F.relu(c(h))
        for a, b in self.res:
            h = b(F.relu(a(h))) + h
        for d in self.d:
            h = F.relu(d(h))
        return torch.tanh(self.out(h))


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def step_flops_per_image(device, n, s, tcfg, dcfg):
    """FLOPs of one DIAT-A iteration (D step + T step, forward and backward), per input image,
    as torch.utils.flop_counter counts them (convolutions and matrix products)."""
    from torch.utils.flop_counter import FlopCounterMode

    T = R.TransformNet(tcfg).to(device).train()
    D = R.Discriminator(dcfg).to(device)
    x = torch.rand(n, 3, s, s, device=device) * 2 - 1
    g = torch.rand(n, 3, s, s, device=device) * 2 - 1
    with FlopCounterMode(display=False) as fc:
        tx = T(x)
        logits, _ = D(torch.cat([g, tx.detach()], 0))
        R.eq3_discriminator_loss(logits[:n], logits[n:]).backward()
        D.requires_grad_(False)
        total, _, _ = R.eq14_diat_a_objective(tx, x, D, R.DiatALossConfig())
        total.backward()
    return fc.get_total_flops() / n


def gemm_peak(device, dtype, size=2048, min_time=1.0):
    """The machine's attainable peak: FLOP/s of a large matrix product in `dtype`."""
    a = torch.rand(size, size, device=device).to(dtype)
    b = torch.rand(size, size, device=device).to(dtype)
    iters, secs = measure(device, 2, min_time, 3, lambda: torch.mm(a, b))
    return 2 * size**3 * iters / secs


def time_step(a, device, n, s, tcfg, dcfg, kind_name, layout):
    """One DIAT-A iteration (D step + T step) with forward passes and losses under
    torch.autocast for bf16 (backward outside, as PyTorch recommends), timed."""
    torch.manual_seed(0)
    mf = torch.channels_last if layout == "channels_last" else torch.contiguous_format
    T = R.TransformNet(tcfg).to(device=device, memory_format=mf).train()
    D = R.Discriminator(dcfg).to(device=device, memory_format=mf)
    x = (torch.rand(n, 3, s, s, device=device) * 2 - 1).contiguous(memory_format=mf)
    g = (torch.rand(n, 3, s, s, device=device) * 2 - 1).contiguous(memory_format=mf)
    extra = {"fused": True} if a.levers else {}
    opt_t = torch.optim.Adam(T.parameters(), lr=1e-5, **extra)
    opt_d = torch.optim.Adam(D.parameters(), lr=1e-5, **extra)
    cfg = R.DiatALossConfig()
    amp = kind_name == "bf16"

    def step():
        with torch.autocast(device.type, torch.bfloat16, enabled=amp):
            tx = T(x)
            logits, _ = D(torch.cat([g, tx.detach()], 0))
            d_loss = R.eq3_discriminator_loss(logits[:n], logits[n:])
        opt_d.zero_grad()
        d_loss.backward()
        opt_d.step()
        D.requires_grad_(False)
        with torch.autocast(device.type, torch.bfloat16, enabled=amp):
            total, _, _ = R.eq14_diat_a_objective(tx, x, D, cfg)
        opt_t.zero_grad()
        total.backward()
        opt_t.step()
        D.requires_grad_(True)

    iters, secs = measure(device, a.warmup, a.min_time, a.min_iters, step)
    return dict(what="diat_a_step", batch=n, kind=kind_name, layout=layout, img_per_s=n * iters / secs,
                ms_per_iter=secs * 1e3 / iters, iters=iters)  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--image-size", type=int, default=128)
    ap.add_argument("--width", type=float, default=1.0)
    ap.add_argument("--res-blocks", type=int, default=5)
    ap.add_argument("--batches", default="1,64,256")
    ap.add_argument("--kinds", default="fp32,bf16")
    ap.add_argument("--step-batch", type=int, default=64)
    ap.add_argument("--step-kinds", default="fp32,bf16", help="fp32, bf16 (torch.autocast)")
    ap.add_argument("--step-layouts", default="nchw,channels_last")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--min-time", type=float, default=2.0)
    ap.add_argument("--min-iters", type=int, default=3)
    ap.add_argument("--levers", action="store_true", help="BN folding, channels-last, cudnn.benchmark, fused Adam")
    ap.add_argument("--threads", type=int, default=0, help="intra-op threads (0: torch's default)")
    ap.add_argument("--json")
    a = ap.parse_args()

    if a.threads > 0:
        torch.set_num_threads(a.threads)
    if a.device == "auto":
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        device = torch.device(a.device)
    torch.backends.cudnn.benchmark = a.levers
    mf = torch.channels_last if a.levers else torch.contiguous_format
    if device.type == "cuda":
        dev_name = torch.cuda.get_device_name(device)
    else:
        dev_name = f"{cpu_name()} (CPU, {torch.get_num_threads()} threads)"
    settings = (
        f"image {a.image_size}px, width {a.width}, {a.res_blocks} res blocks, "
        + ("levers: BN folded, channels-last, cudnn.benchmark, fused Adam" if a.levers else "plain eager")
    )
    print(f"PyTorch {torch.__version__} bench nets on {dev_name}: {settings}")
    torch.manual_seed(0)
    s = a.image_size
    tcfg = R.TransformConfig(res_blocks=a.res_blocks, width=a.width, image_size=s)
    dcfg = R.DiscriminatorConfig(width=a.width, image_size=s)
    rows = []

    t = R.TransformNet(tcfg).to(device).eval()
    for kind_name in [k for k in a.kinds.split(",") if k]:
        dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[kind_name]
        if dtype == torch.bfloat16 and not bf16_supported(device):
            print(f"T forward {kind_name}: skipped (no native bf16 on this device)")
            continue
        net = FoldedTransform(t) if a.levers else copy.deepcopy(t)
        net = net.to(device=device, dtype=dtype, memory_format=mf).eval()
        for batch in [int(b) for b in a.batches.split(",") if b]:
            x = (torch.rand(batch, 3, s, s, device=device) * 2 - 1).to(dtype).contiguous(memory_format=mf)

            def fwd():
                with torch.no_grad():
                    net(x)

            iters, secs = measure(device, a.warmup, a.min_time, a.min_iters, fwd)
            row = dict(what="t_forward", batch=batch, kind=kind_name,
                       layout="channels_last" if a.levers else "nchw", img_per_s=batch * iters / secs,
                       ms_per_iter=secs * 1e3 / iters, iters=iters)  # fmt: skip
            print(f"T forward   batch {batch:>4} {kind_name}: {row['img_per_s']:>10.1f} img/s "
                  f"({row['ms_per_iter']:.2f} ms/iter, {iters} iters)")  # fmt: skip
            rows.append(row)

    if a.step_batch > 0:
        n = a.step_batch
        for kind_name in [k for k in a.step_kinds.split(",") if k]:
            for layout in [x for x in a.step_layouts.split(",") if x]:
                if kind_name == "bf16" and not bf16_supported(device):
                    print(f"DIAT-A step bf16 {layout}: skipped (no native bf16 on this device)")
                    continue
                row = time_step(a, device, n, s, tcfg, dcfg, kind_name, layout)
                print(f"DIAT-A step batch {n:>4} {kind_name} {layout:<13}: {row['img_per_s']:>10.1f} img/s "
                      f"({row['ms_per_iter']:.2f} ms/iter, {row['iters']} iters)")  # fmt: skip
                rows.append(row)

    flops = {}
    if a.step_batch > 0:
        flops["step_flops_per_image"] = step_flops_per_image(device, a.step_batch, s, tcfg, dcfg)
        flops["peak_flops"] = {"fp32": gemm_peak(device, torch.float32)}
        if bf16_supported(device):
            flops["peak_flops"]["bf16"] = gemm_peak(device, torch.bfloat16)
        print(f"DIAT-A step: {flops['step_flops_per_image'] / 1e9:.2f} GFLOP per image; attainable peak "
              + ", ".join(f"{k} {v / 1e9:.0f} GFLOP/s" for k, v in flops["peak_flops"].items())
              + " (a 2048² matrix product)")  # fmt: skip
    if a.json:
        report = dict(
            **flops,
            implementation=f"PyTorch {torch.__version__} eager" + (" + levers" if a.levers else ""),
            device=dev_name,
            threads=torch.get_num_threads(),
            libtorch=torch.__version__,
            settings=settings,
            results=rows,
        )
        with open(a.json, "w") as fh:
            json.dump(report, fh, indent=1)


if __name__ == "__main__":
    main()
