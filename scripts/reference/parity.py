#!/usr/bin/env python3
"""Parity fixtures for crates/diat-nets (run by its tests through $DIAT_TORCH_PYTHON).

  parity.py export --out DIR
      Builds every network of diat_reference.py at a small size with fixed seeds and writes into DIR:
        config.json                  the configs (same JSON as the Rust Config structs)
        <net>.safetensors            weights with the PyTorch state_dict names (strict checkpoints)
        values.safetensors           inputs, outputs of every network, every loss value (0-d) and
                                     the gradient of T's c1.conv.weight through Eq. (14) (and
                                     through its identity term alone)
        vggface_dag.pth              the VGG-Face weights as a published-style state dict
                                     (conv1_1.weight ..., plus fc6-fc8) saved with torch.save
        vggface_features.pth         the same weights under torchvision-style names
                                     (module.features.N.weight, classifier.N.weight)
        vggface_legacy.pth           the vggface_dag.pth weights in the legacy torch.save format
  parity.py load-rust --dir DIR
      For every NAME.ckpt.safetensors in DIR (checkpoints written by Rust): builds the reference
      module named by its metadata, loads it with load_state_dict(strict=True) and writes its
      eval-mode outputs for the inputs in NAME.in.safetensors to NAME.out.safetensors.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import json
import os
import sys

import torch
from safetensors.torch import load_file, save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import diat_reference as R  # noqa: E402

SIZE, BATCH, WIDTH = 32, 2, 0.25


def randomize_bn(net: torch.nn.Module, gen: torch.Generator) -> None:
    """Non-trivial affine parameters and running statistics, so eval mode is really tested."""
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            c = m.num_features
            with torch.no_grad():
                m.weight.copy_(torch.rand(c, generator=gen) + 0.5)
                m.bias.copy_(torch.randn(c, generator=gen) * 0.1)
                m.running_mean.copy_(torch.randn(c, generator=gen) * 0.1)
                m.running_var.copy_(torch.rand(c, generator=gen) + 0.5)
                m.num_batches_tracked.fill_(3)


def save_weights(net: torch.nn.Module, path: str) -> None:
    save_file({k: v.detach().contiguous() for k, v in net.state_dict().items()}, path)


def export(out: str) -> None:
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(1)
    cfg = {
        "transform": R.TransformConfig(res_blocks=5, width=WIDTH, image_size=SIZE),
        "discriminator": R.DiscriminatorConfig(width=WIDTH, image_size=SIZE),
        "vggface": R.VggFaceConfig(width=WIDTH, image_size=SIZE),
        "denoise": R.DenoiseConfig(width=WIDTH, image_size=SIZE),
        "local_enhance": R.LocalEnhanceConfig(width=WIDTH, image_size=SIZE),
        "transform_rr": R.TransformConfig(
            res_blocks=2, width=WIDTH, image_size=SIZE, upsample="resize", residual=True, residual_blur=1.0
        ),
    }
    nets = {
        "transform": R.TransformNet(cfg["transform"]),
        "reconstruction": R.TransformNet(cfg["transform"]),
        "global_enhance": R.TransformNet(cfg["transform"]),
        "discriminator": R.Discriminator(cfg["discriminator"]),
        "vggface": R.VggFace(cfg["vggface"]),
        "denoise": R.DenoiseNet(cfg["denoise"]),
        "local_enhance": R.LocalEnhanceNet(cfg["local_enhance"]),
        "transform_rr": R.TransformNet(cfg["transform_rr"]),
    }
    for net in nets.values():
        randomize_bn(net, gen)
    for name, net in nets.items():
        save_weights(net, os.path.join(out, f"{name}.safetensors"))
    with open(os.path.join(out, "config.json"), "w") as fh:
        json.dump({k: dataclasses.asdict(v) for k, v in cfg.items()}, fh, indent=1)

    T, g, Eg = nets["transform"], nets["reconstruction"], nets["global_enhance"]
    D, vgg, f, El = nets["discriminator"], nets["vggface"], nets["denoise"], nets["local_enhance"]
    for p in vgg.parameters():
        p.requires_grad_(False)

    x = torch.tanh(torch.randn(BATCH, 3, SIZE, SIZE, generator=gen))
    a = torch.tanh(torch.randn(BATCH, 3, SIZE, SIZE, generator=gen))
    mask = torch.zeros(BATCH, 1, SIZE, SIZE)
    mask[:, :, SIZE // 2 :, SIZE // 4 : 3 * SIZE // 4] = 1.0
    y = torch.tensor([1.0, 0.0])
    v: dict[str, torch.Tensor] = {"x": x, "a": a, "mask": mask, "y": y}

    with torch.no_grad():
        for name, net in (("t", T), ("g", g), ("ge", Eg)):
            net.eval()
            v[f"{name}_eval"] = net(x)
        v["blur_x"] = R.gaussian_blur(x, 1.8)
        v["ge_blur_eval"] = Eg(v["blur_x"])
        logits, feats = D(x)
        v["d_logits"] = logits
        for i, h in enumerate(feats):
            v[f"d_feat_{i + 1}"] = h
        for i, h in enumerate(vgg(x, 13)):
            v[f"vgg_feat_{i + 1}"] = h
        v["f_x"] = f(x)
        v["le_x_t"] = El(x, v["t_eval"])
        # One training-mode forward of a copy of T: output and the updated running statistics.
        T2 = R.TransformNet(cfg["transform"])
        T2.load_state_dict(T.state_dict())
        T2.train()
        v["t_train"] = T2(x)
        v["t_train_c1_running_mean"] = T2.c1.bn.running_mean.clone()
        v["t_train_c1_running_var"] = T2.c1.bn.running_var.clone()
        v["t_train_c1_num_batches_tracked"] = T2.c1.bn.num_batches_tracked.clone()
        # T with resize up-sampling and residual output, eval and training mode.
        Trr = nets["transform_rr"]
        Trr.eval()
        v["trr_eval"] = Trr(x)
        Trr.train()
        v["trr_train"] = Trr(x)

    # Losses, with T, g and E_g in training mode (as during training).
    for net in (T, g, Eg):
        net.train()
    loss: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        tx = T(x)
        gx = g(x)
        vx = vgg(x, 5)
        vt = vgg(tx, 5)
        loss["eq1"] = R.eq1_content_loss(vt[3], vx[3])
        loss["eq2"] = R.eq2_perceptual_identity_loss(vgg, tx, x)
        real, _ = D(a)
        fake, dft = D(tx)
        loss["eq3_d"] = R.eq3_discriminator_loss(real, fake)
        loss["eq3_g_non_saturating"] = R.eq3_generator_loss(fake, "non_saturating")
        loss["eq3_g_saturating"] = R.eq3_generator_loss(fake, "saturating")
        loss["eq4"] = R.eq4_reconstruction_objective(vgg, gx, x)
        loss["eq5"] = R.eq5_denoise_objective(f, gx, x)
        loss["eq6"] = R.eq6_smoothness(f, tx)
        total, gan, ident, smooth = R.eq7_diat_objective(tx, x, D, vgg, f, R.DiatLossConfig())
        loss["eq7"], loss["eq7_gan"], loss["eq7_id"], loss["eq7_smooth"] = total, gan, ident, smooth
        loss["eq8"] = R.eq8_reconstruction_loss(tx, x)
        loss["eq9"] = R.eq9_discriminator_pretrain_loss(v["d_logits"], y)
        loss["eq10"] = R.eq10_local_enhancement_loss(vgg, El(x, tx), tx, x, mask)
        loss["eq11"] = R.eq11_global_enhancement_loss(Eg(v["blur_x"]), x)
        _, dfx = D(x)
        loss["eq12"] = R.eq12_adaptive_content_loss(dft[3], dfx[3])
        loss["eq13"] = R.eq13_adaptive_identity_loss(D, tx, x)
    tx = T(x)
    total, gan, ident = R.eq14_diat_a_objective(tx, x, D, R.DiatALossConfig())
    loss["eq14"], loss["eq14_gan"], loss["eq14_id"] = total.detach(), gan.detach(), ident.detach()
    T.zero_grad()
    total.backward()
    v["grad_t_c1_conv_weight"] = T.c1.conv.weight.grad.clone()
    v["grad_t_res0_a_bn_weight"] = T.res[0].a.bn.weight.grad.clone()
    # The identity term alone is ~1e-4 of the total here: its gradient is checked separately.
    T.zero_grad()
    tx = T(x)
    R.eq14_diat_a_objective(tx, x, D, R.DiatALossConfig())[2].backward()
    v["grad_t_c1_conv_weight_id"] = T.c1.conv.weight.grad.clone()
    # The R1 penalty on D (not in the paper) and its gradient on D's first conv weight.
    D.zero_grad()
    r1, _ = R.r1_penalty(D, a)
    loss["r1"] = r1.detach()
    r1.backward()
    v["grad_d_conv0_weight_r1"] = D.conv[0].weight.grad.clone()
    for k, t in loss.items():
        v[f"loss_{k}"] = t.detach().reshape(())
    save_file({k: t.detach().contiguous() for k, t in v.items()}, os.path.join(out, "values.safetensors"))

    # VGG-Face in the layouts of published PyTorch conversions, for `diat nets import-vggface`.
    dag = {k: t.clone() for k, t in vgg.state_dict().items()}
    last = R.scaled(512, WIDTH)
    dag["fc6.weight"] = torch.randn(8, last, generator=gen)
    dag["fc6.bias"] = torch.randn(8, generator=gen)
    dag["fc8.weight"] = torch.randn(4, 8, generator=gen)
    dag["fc8.bias"] = torch.randn(4, generator=gen)
    torch.save(dag, os.path.join(out, "vggface_dag.pth"))
    # The same in the legacy (PyTorch < 1.6) format of the 2017 conversions, with a bias stored at
    # an offset inside a larger storage and a non-contiguous weight, under a `state_dict` key.
    legacy = collections.OrderedDict((k, t.clone()) for k, t in dag.items())
    b = legacy["conv1_2.bias"]
    store = torch.zeros(b.numel() + 7)
    store[5 : 5 + b.numel()] = b
    legacy["conv1_2.bias"] = store[5 : 5 + b.numel()]
    legacy["conv2_1.weight"] = legacy["conv2_1.weight"].transpose(2, 3).contiguous().transpose(2, 3)
    torch.save({"state_dict": legacy}, os.path.join(out, "vggface_legacy.pth"), _use_new_zipfile_serialization=False)
    tv_index = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]
    tv = {}
    for (name, _, _), idx in zip(R.VGG_LAYERS, tv_index):
        tv[f"module.features.{idx}.weight"] = dag[f"{name}.weight"]
        tv[f"module.features.{idx}.bias"] = dag[f"{name}.bias"]
    tv["module.classifier.0.weight"] = dag["fc6.weight"]
    tv["module.classifier.0.bias"] = dag["fc6.bias"]
    torch.save(tv, os.path.join(out, "vggface_features.pth"))
    print(f"parity fixtures written to {out} (torch {torch.__version__})")


def load_rust_dir(d: str) -> None:
    names = sorted(f[: -len(".ckpt.safetensors")] for f in os.listdir(d) if f.endswith(".ckpt.safetensors"))
    if not names:
        sys.exit(f"no *.ckpt.safetensors in {d}")
    for n in names:
        p = os.path.join(d, n)
        load_rust(f"{p}.ckpt.safetensors", f"{p}.in.safetensors", f"{p}.out.safetensors")


def load_rust(checkpoint: str, inputs: str, out: str) -> None:
    arch, net = R.load_rust_checkpoint(checkpoint)
    net.eval()
    inp = load_file(inputs)
    x = inp["x"]
    res: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        if arch == "discriminator":
            logits, feats = net(x)
            res["logits"] = logits
            for i, h in enumerate(feats):
                res[f"feat_{i + 1}"] = h
        elif arch == "vggface":
            for i, h in enumerate(net(x, 13)):
                res[f"feat_{i + 1}"] = h
        elif arch == "local_enhance":
            res["y"] = net(inp["source"], x)
        else:
            res["y"] = net(x)
    save_file({k: t.contiguous() for k, t in res.items()}, out)
    print(f"{arch}: strict load of {checkpoint} OK")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("export")
    e.add_argument("--out", required=True)
    lr = sub.add_parser("load-rust")
    lr.add_argument("--dir", required=True)
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.cmd == "export":
        export(args.out)
    else:
        load_rust_dir(args.dir)


if __name__ == "__main__":
    main()
