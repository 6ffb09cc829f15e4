"""Plain PyTorch definitions of the DIAT / DIAT-A networks and losses.

This is the reference that `crates/diat-nets` is tested against (see `parity.py`): every module
here has exactly the parameter names of the Rust checkpoints, so a checkpoint written by
`diat_nets::checkpoint::save` loads with ``load_state_dict(strict=True)``; every loss has the
equation number of the paper (Li, Zuo, Zhang: *Deep Identity-aware Transfer of Facial
Attributes*) and the same normalisation as the Rust function of the same name.

Conventions shared with the Rust crate:
- images are N x 3 x S x S, RGB, in [-1, 1];
- channel counts are the paper's times ``width``, rounded half away from zero, at least 1;
- pixel-domain squared Frobenius norms are summed over each image and averaged over the batch;
  feature-domain losses (Eq. 1, 12) use the paper's 1/(2 C H W) per image, averaged over the batch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F


def scaled(channels: int, width: float) -> int:
    """Rust's ``((c as f64 * width).round() as i64).max(1)`` (round half away from zero)."""
    return max(1, int(math.floor(channels * width + 0.5)))


def leaky_relu(x: torch.Tensor, slope: float) -> torch.Tensor:
    """max(x, slope * x): the form the Rust crate uses (tch's leaky_relu has no slope)."""
    return torch.maximum(x, x * slope)


# ---------------------------------------------------------------- transform network T (Table 1)


@dataclass
class TransformConfig:
    res_blocks: int = 5
    width: float = 1.0
    image_size: int = 128
    # Options beyond the paper (crates/diat-nets/src/transform.rs): "resize" = nearest x2 + 3x3 conv
    # in the decoder and a 9x9 output conv; residual = T predicts a change of its input.
    upsample: str = "deconv"
    residual: bool = False
    residual_blur: float = 0.0  # sigma of a Gaussian blur of the residual change (0: none)

    def channels(self) -> list[int]:
        return [scaled(c, self.width) for c in (32, 64, 128)]


class ConvBn(nn.Module):
    def __init__(self, cin: int, cout: int, k: int, stride: int, pad: int):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, stride=stride, padding=pad)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x):
        return self.bn(self.conv(x))


class DeconvBn(nn.Module):
    def __init__(self, cin: int, cout: int, output_padding: int):
        super().__init__()
        self.conv = nn.ConvTranspose2d(cin, cout, 3, stride=2, padding=1, output_padding=output_padding)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x):
        return self.bn(self.conv(x))


class ResizeConvBn(nn.Module):
    """Nearest x2 up-sampling, then a 3x3 conv + BN (parameter names as DeconvBn's)."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, stride=1, padding=1)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x):
        return self.bn(self.conv(F.interpolate(x, scale_factor=2, mode="nearest")))


RESIDUAL_CLAMP = 0.999


class ResBlock(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.a = ConvBn(c, c, 3, 1, 1)
        self.b = ConvBn(c, c, 3, 1, 1)

    def forward(self, x):
        return self.b(F.relu(self.a(x))) + x


class TransformNet(nn.Module):
    """T, the reconstruction network g and the global enhancement network (same architecture)."""

    def __init__(self, cfg: TransformConfig):
        super().__init__()
        a, b, c = cfg.channels()
        self.c1 = ConvBn(3, a, 9, 1, 4)
        self.c2 = ConvBn(a, b, 3, 2, 1)
        self.c3 = ConvBn(b, c, 3, 2, 1)
        self.res = nn.ModuleList([ResBlock(c) for _ in range(cfg.res_blocks)])
        self.residual = cfg.residual
        self.residual_blur = cfg.residual_blur
        if cfg.upsample == "resize":
            self.d1 = ResizeConvBn(c, b)
            self.d2 = ResizeConvBn(b, a)
            self.out = nn.Conv2d(a, 3, 9, padding=4)
        else:
            self.d1 = DeconvBn(c, b, 1)
            self.d2 = DeconvBn(b, a, 0)
            self.out = nn.ConvTranspose2d(a, 3, 10, padding=4)

    def forward(self, x):
        h = F.relu(self.c1(x))
        h = F.relu(self.c2(h))
        h = F.relu(self.c3(h))
        for r in self.res:
            h = r(h)
        h = F.relu(self.d1(h))
        h = F.relu(self.d2(h))
        if self.residual:
            change = self.out(h)
            if self.residual_blur > 0:
                change = gaussian_blur(change, self.residual_blur)
            return torch.tanh(torch.atanh(x.clamp(-RESIDUAL_CLAMP, RESIDUAL_CLAMP)) + change)
        return torch.tanh(self.out(h))


# ---------------------------------------------------------------- discriminator D (Table 2)

D_LAYERS = [  # (channels, kernel, stride, pad)
    (32, 8, 2, 3),
    (32, 3, 1, 1),
    (64, 4, 2, 1),
    (64, 3, 1, 1),
    (128, 4, 2, 1),
    (128, 4, 2, 1),
]


@dataclass
class DiscriminatorConfig:
    width: float = 1.0
    image_size: int = 128
    fc_hidden: int = 1000
    slope: float = 0.2


class Discriminator(nn.Module):
    def __init__(self, cfg: DiscriminatorConfig):
        super().__init__()
        self.slope = cfg.slope
        convs, cin = [], 3
        for c, k, s, p in D_LAYERS:
            cout = scaled(c, cfg.width)
            convs.append(nn.Conv2d(cin, cout, k, stride=s, padding=p))
            cin = cout
        self.conv = nn.ModuleList(convs)
        side = cfg.image_size // 16
        hidden = scaled(cfg.fc_hidden, cfg.width)
        self.fc1 = nn.Linear(cin * side * side, hidden)
        self.fc2 = nn.Linear(hidden, 1)

    def forward(self, x):
        """Returns (logits [N], [post-activation map of conv-1 .. conv-6])."""
        feats, h = [], x
        for conv in self.conv:
            h = leaky_relu(conv(h), self.slope)
            feats.append(h)
        h = leaky_relu(self.fc1(h.flatten(1)), self.slope)
        return self.fc2(h).squeeze(1), feats


# ---------------------------------------------------------------- VGG-Face (feature extractor)

VGG_LAYERS = [  # (name, channels, max-pool after)
    ("conv1_1", 64, False), ("conv1_2", 64, True),
    ("conv2_1", 128, False), ("conv2_2", 128, True),
    ("conv3_1", 256, False), ("conv3_2", 256, False), ("conv3_3", 256, True),
    ("conv4_1", 512, False), ("conv4_2", 512, False), ("conv4_3", 512, True),
    ("conv5_1", 512, False), ("conv5_2", 512, False), ("conv5_3", 512, True),
]  # fmt: skip
VGG_MEAN_RGB = (129.186279296875, 104.76238250732422, 93.59396362304688)


@dataclass
class VggFaceConfig:
    width: float = 1.0
    image_size: int = 128


class VggFace(nn.Module):
    """The 13 conv layers of VGG-Face, named as in the published ``vgg_face_dag`` state dict."""

    def __init__(self, cfg: VggFaceConfig):
        super().__init__()
        cin = 3
        for name, c, _ in VGG_LAYERS:
            cout = scaled(c, cfg.width)
            setattr(self, name, nn.Conv2d(cin, cout, 3, padding=1))
            cin = cout
        self.register_buffer("mean", torch.tensor(VGG_MEAN_RGB).view(1, 3, 1, 1), persistent=False)

    def forward(self, x, upto: int):
        """Post-ReLU maps of conv layers 1..=upto (1-based) for x in [-1, 1]."""
        h = (x + 1.0) * 127.5 - self.mean
        feats = []
        for name, _, pool in VGG_LAYERS[:upto]:
            h = F.relu(getattr(self, name)(h))
            feats.append(h)
            if pool:
                h = F.max_pool2d(h, 2, 2)
        return feats


# ---------------------------------------------------------------- denoising f, local enhancement


@dataclass
class DenoiseConfig:
    width: float = 1.0
    image_size: int = 128
    hidden: int = 64
    residual: bool = True


class DenoiseNet(nn.Module):
    def __init__(self, cfg: DenoiseConfig):
        super().__init__()
        h = scaled(cfg.hidden, cfg.width)
        self.residual = cfg.residual
        self.conv1 = nn.Conv2d(3, h, 3, padding=1)
        self.conv2 = nn.Conv2d(h, 3, 3, padding=1)

    def forward(self, y):
        r = self.conv2(F.relu(self.conv1(y)))
        return y + r if self.residual else r


@dataclass
class LocalEnhanceConfig:
    width: float = 1.0
    image_size: int = 128
    hidden: int = 64
    layers: int = 4
    residual: bool = True


class LocalEnhanceNet(nn.Module):
    def __init__(self, cfg: LocalEnhanceConfig):
        super().__init__()
        h = scaled(cfg.hidden, cfg.width)
        self.residual = cfg.residual
        chans = [6] + [h] * (cfg.layers - 1) + [3]
        self.conv = nn.ModuleList(nn.Conv2d(chans[i], chans[i + 1], 3, padding=1) for i in range(cfg.layers))

    def forward(self, source, transformed):
        h = torch.cat([source, transformed], 1)
        for i, conv in enumerate(self.conv):
            h = conv(h)
            if i + 1 < len(self.conv):
                h = F.relu(h)
        return transformed + h if self.residual else h


# ---------------------------------------------------------------- Gaussian blur B (Eq. 11)


def gaussian_kernel(sigma: float) -> torch.Tensor:
    radius = math.ceil(3.0 * sigma)
    i = torch.arange(-radius, radius + 1, dtype=torch.float64)
    g = torch.exp(-(i * i) / (2.0 * sigma * sigma))
    return (g / g.sum()).float()


def gaussian_blur(x: torch.Tensor, sigma: float = 1.8) -> torch.Tensor:
    g = gaussian_kernel(sigma).to(x.device, x.dtype)
    k, c = g.numel(), x.shape[1]
    r = k // 2
    h = F.pad(x, (r, r, r, r), mode="reflect")
    h = F.conv2d(h, g.view(1, 1, 1, k).expand(c, 1, 1, k).contiguous(), groups=c)
    return F.conv2d(h, g.view(1, 1, k, 1).expand(c, 1, k, 1).contiguous(), groups=c)


# ---------------------------------------------------------------- losses


def per_image_sq(diff: torch.Tensor) -> torch.Tensor:
    return diff.square().flatten(1).sum(1).mean()


def eq1_content_loss(phi_hat, phi):
    n, c, h, w = phi.shape
    return (phi_hat - phi).square().flatten(1).sum(1).mean() / (2.0 * c * h * w)


def weighted_content(feats_a, feats_b, layers):
    return sum(w * eq1_content_loss(feats_a[l - 1], feats_b[l - 1]) for l, w in layers)


ID_LAYERS = [(4, 0.5), (5, 0.5)]
ENH_LAYERS = [(1, 0.1), (2, 0.5), (3, 1.0)]


def vgg_pair(vgg, a, b, layers):
    upto = max(l for l, _ in layers)
    n = a.shape[0]
    feats = vgg(torch.cat([a, b], 0), upto)
    return [f[:n] for f in feats], [f[n:] for f in feats]


def eq2_perceptual_identity_loss(vgg, tx, x, layers=ID_LAYERS):
    ft, fx = vgg_pair(vgg, tx, x, layers)
    return weighted_content(ft, fx, layers)


def eq3_discriminator_loss(real_logits, fake_logits):
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def r1_penalty(D, real):
    """R1 gradient penalty (Mescheder et al. 2018; not in the paper) before its weight:
    0.5 * E ||grad_a D(a)||^2 over guided images; returns (penalty, real logits)."""
    real = real.detach().requires_grad_(True)
    logits, _ = D(real)
    (g,) = torch.autograd.grad(logits.sum(), real, create_graph=True)
    return 0.5 * g.square().sum(dim=(1, 2, 3)).mean(), logits


def eq3_generator_loss(fake_logits, gan="non_saturating"):
    if gan == "non_saturating":
        return F.softplus(-fake_logits).mean()
    return -F.softplus(fake_logits).mean()


def eq4_reconstruction_objective(vgg, gx, x, layers=ID_LAYERS):
    return eq2_perceptual_identity_loss(vgg, gx, x, layers)


def eq5_denoise_objective(f, gx, x):
    n = x.shape[0]
    out = f(torch.cat([gx, x], 0))
    return per_image_sq(out[:n] - x) + per_image_sq(out[n:] - x)


def eq6_smoothness(f, tx):
    return per_image_sq(f(tx) - tx)


@dataclass
class DiatLossConfig:
    lam: float = 0.1
    gamma: float = 0.001
    identity_layers: list = field(default_factory=lambda: list(ID_LAYERS))
    gan: str = "non_saturating"


def eq7_diat_objective(tx, x, d, vgg, f, cfg: DiatLossConfig):
    logits, _ = d(tx)
    gan = eq3_generator_loss(logits, cfg.gan)
    ident = eq2_perceptual_identity_loss(vgg, tx, x, cfg.identity_layers)
    smooth = eq6_smoothness(f, tx)
    return gan + cfg.lam * ident + cfg.gamma * smooth, gan, ident, smooth


def eq8_reconstruction_loss(tx, x):
    return per_image_sq(x - tx)


def eq9_discriminator_pretrain_loss(logits, y):
    return (y - torch.sigmoid(logits)).square().mean()


def eq10_local_enhancement_loss(vgg, etx, tx, x, mask, betas=ENH_LAYERS):
    # Each term a mean over its own region (see diat-nets losses.rs, eq10_local_enhancement_loss).
    d = (1.0 - mask) * (etx - x)
    pixel = per_image_sq(d) / (2.0 * d.shape[1] * d.shape[2] * d.shape[3])
    pixel = pixel / (1.0 - mask).mean().clamp_min(1e-6)
    ft, fe = vgg_pair(vgg, mask * tx, mask * etx, betas)
    return pixel + weighted_content(ft, fe, betas) / mask.mean().clamp_min(1e-6)


def eq11_global_enhancement_loss(ebx, x):
    return per_image_sq(ebx - x)


def eq12_adaptive_content_loss(d_hat, d):
    return eq1_content_loss(d_hat, d)


def d_pair(d, tx, x):
    n = tx.shape[0]
    logits, feats = d(torch.cat([tx, x], 0))
    return logits[:n], [f[:n] for f in feats], [f[n:] for f in feats]


def eq13_adaptive_identity_loss(d, tx, x, layers=ID_LAYERS):
    _, ft, fx = d_pair(d, tx, x)
    return sum(w * eq12_adaptive_content_loss(ft[l - 1], fx[l - 1]) for l, w in layers)


@dataclass
class DiatALossConfig:
    lam: float = 0.1
    identity_layers: list = field(default_factory=lambda: list(ID_LAYERS))
    gan: str = "non_saturating"


def eq14_diat_a_objective(tx, x, d, cfg: DiatALossConfig):
    logits, ft, fx = d_pair(d, tx, x)
    gan = eq3_generator_loss(logits, cfg.gan)
    ident = sum(w * eq12_adaptive_content_loss(ft[l - 1], fx[l - 1]) for l, w in cfg.identity_layers)
    return gan + cfg.lam * ident, gan, ident


# ---------------------------------------------------------------- checkpoints written by Rust

ARCHITECTURES = {
    "transform": (TransformNet, TransformConfig),
    "reconstruction": (TransformNet, TransformConfig),
    "global_enhance": (TransformNet, TransformConfig),
    "discriminator": (Discriminator, DiscriminatorConfig),
    "vggface": (VggFace, VggFaceConfig),
    "denoise": (DenoiseNet, DenoiseConfig),
    "local_enhance": (LocalEnhanceNet, LocalEnhanceConfig),
}


def load_rust_checkpoint(path: str, device: str = "cpu") -> tuple[str, nn.Module]:
    """Builds the module named by a diat checkpoint's metadata and loads it with strict=True."""
    import json

    from safetensors import safe_open
    from safetensors.torch import load_file

    with safe_open(path, framework="pt") as fh:
        meta = fh.metadata()
    arch = meta["diat.architecture"]
    cls, cfg_cls = ARCHITECTURES[arch]
    net = cls(cfg_cls(**json.loads(meta["diat.config"])))
    net.load_state_dict(load_file(path, device=device), strict=True)
    return arch, net.to(device)
