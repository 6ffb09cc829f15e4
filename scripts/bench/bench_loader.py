#!/usr/bin/env python3
"""PyTorch counterpart of `diat bench loader` (same flags, same measurement, same JSON).

Reads the packed stores of a prepared data directory (`<data>/tasks/<task>/{input,guided}`:
images.u8 = N×S×S×3 uint8 RGB, shape in manifest.json) the way a PyTorch user would: a map-style
Dataset over a numpy memmap returning one uint8 HWC tensor per image, one shuffling DataLoader
per set (`num_workers` = the thread count, `pin_memory` on CUDA, persistent workers), and per
iteration `dstep + tstep` input batches and `dstep` guided batches — exactly what one iteration of
the adversarial stage of `diat train` reads — each moved to the device
(`non_blocking=True`) and converted to N×3×S×S floats in [-1, 1] (channels-last on CUDA, as
`diat train` lays them out). No training in between.

Before timing, every page of both stores is touched (both implementations read from the page
cache); `--warmup` iterations are untimed; the device is synchronised before the clock is read.

    diat bench loader --data out/demo/prepared --compare-python $DIAT_TORCH_PYTHON
    python scripts/bench/bench_loader.py --data out/demo/prepared --threads 1,2 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import torch
import torch.utils.data as tud
from bench_nets import cpu_name  # same folder: one CPU-name reader for both benchmarks


class PackedStore(tud.Dataset):
    def __init__(self, root: str):
        with open(os.path.join(root, "manifest.json")) as f:
            man = json.load(f)
        n, h, w, c = man["shape"]
        self.images = np.memmap(
            os.path.join(root, "images.u8"), dtype=np.uint8, mode="r", shape=(n, h, w, c)
        )

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, i: int) -> torch.Tensor:
        return torch.from_numpy(np.array(self.images[i]))


def endless(loader: tud.DataLoader):
    while True:
        yield from loader


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--task", default="mouth_open")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--dstep", type=int, default=1)
    ap.add_argument("--tstep", type=int, default=1)
    ap.add_argument("--threads", default="1,2,4")
    ap.add_argument("--iters", type=int, default=300)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--json")
    a = ap.parse_args()

    if a.device == "auto":
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        device = torch.device(a.device)
    cuda = device.type == "cuda"
    tdir = os.path.join(a.data, "tasks", a.task)
    inp, gui = PackedStore(os.path.join(tdir, "input")), PackedStore(os.path.join(tdir, "guided"))
    for s in (inp, gui):
        int(s.images.reshape(-1)[::4096].astype(np.uint64).sum())  # page cache, as the Rust side
    size = inp.images.shape[1]
    per_iter = a.batch * (2 * a.dstep + a.tstep)
    settings = (
        f"{a.task} {size}px, batch {a.batch}, dstep {a.dstep} tstep {a.tstep} "
        f"({per_iter} images per iteration: {a.dstep + a.tstep} input + {a.dstep} guided)"
    )
    dev_name = torch.cuda.get_device_name(device) if cuda else f"{cpu_name()} (CPU)"
    print(f"PyTorch DataLoader on {dev_name}: {settings}")

    # As `diat train` by default: channels-last on CUDA, contiguous NCHW elsewhere.
    fmt = torch.channels_last if cuda else torch.contiguous_format

    def to_device(x: torch.Tensor) -> torch.Tensor:
        return (
            x.to(device, non_blocking=True).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)
        ).contiguous(memory_format=fmt)

    rows = []
    for threads in [int(t) for t in a.threads.split(",")]:
        g = torch.Generator().manual_seed(0)

        def loader(ds: PackedStore) -> tud.DataLoader:
            return tud.DataLoader(
                ds,
                batch_size=a.batch,
                shuffle=True,
                drop_last=True,
                num_workers=threads,
                pin_memory=cuda,
                persistent_workers=True,
                prefetch_factor=4,
                generator=g,
            )

        li, lg = endless(loader(inp)), endless(loader(gui))
        total = a.warmup + a.iters
        sink = []
        start = time.perf_counter()
        for i in range(total):
            if i == a.warmup:
                if cuda:
                    torch.cuda.synchronize()
                start = time.perf_counter()
            xs = [next(li) for _ in range(a.dstep + a.tstep)]
            gs = [next(lg) for _ in range(a.dstep)]
            sink = [to_device(x) for x in xs + gs]
        if cuda:
            torch.cuda.synchronize()
        secs = time.perf_counter() - start
        del sink, li, lg
        ips = a.iters * per_iter / secs
        print(
            f"DataLoader {threads:>2} worker(s): {ips:>10.0f} img/s "
            f"({secs * 1e3 / a.iters:.2f} ms/iter, {a.iters} iters)"
        )
        rows.append({"threads": threads, "img_per_s": ips, "iters": a.iters})
    report = {
        "implementation": f"PyTorch {torch.__version__} DataLoader",
        "device": dev_name,
        "settings": settings,
        "results": rows,
    }
    if a.json:
        with open(a.json, "w") as f:
            json.dump(report, f, indent=2)


if __name__ == "__main__":
    main()
