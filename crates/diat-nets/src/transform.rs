//! Face transform network T — paper §3.1, Table 1. The same architecture is used for the
//! reconstruction network g (§3.1.1, Eq. 4) and the global enhancement network (§3.2, Eq. 11).
//!
//! 9×9 conv (32) → 3×3 stride-2 conv (64) → 3×3 stride-2 conv (128) → residual blocks (128) →
//! 3×3 stride-2 deconv (64, 64×64 at 128 px) → 3×3 stride-2 deconv (32, 127×127) → 10×10 deconv
//! pad 4 (3, 128×128).
//!
//! Choices the paper leaves open, made as Johnson et al. (2016), whose network Table 1 follows:
//! batch normalization + ReLU after every layer but the last, residual blocks of two 3×3 convs with
//! BN (ReLU only after the first) and an identity skip, and a tanh output so images live in [-1, 1].
//! The text says 5 residual blocks while Table 1 lists 4: the default is 5, configurable.
//! The first deconv uses output padding 1 to give Table 1's 64×64; the second none (127×127).
//! Convolutions keep their bias (as in Johnson et al.'s code) even where BN follows.
//!
//! Parameter names (a plain PyTorch module with these attribute names loads a checkpoint with
//! `strict=True`; see `scripts/reference/diat_reference.py`, class `TransformNet`):
//!
//! | name | PyTorch module |
//! |---|---|
//! | `c1`, `c2`, `c3` `.conv.{weight,bias}` | `Conv2d` 9×9 s1 p4, 3×3 s2 p1, 3×3 s2 p1 |
//! | `c1`…`c3` `.bn.{weight,bias,running_mean,running_var,num_batches_tracked}` | `BatchNorm2d` |
//! | `res.{i}.a`, `res.{i}.b` `.conv.*`, `.bn.*` | residual block `i`: two 3×3 conv + BN |
//! | `d1`, `d2` `.conv.*`, `.bn.*` | `ConvTranspose2d` 3×3 s2 p1 (output padding 1, 0) + BN |
//! | `out.{weight,bias}` | `ConvTranspose2d` 10×10 s1 p4 |
//!
//! Two options beyond the paper, both off by default (the paper's network above):
//! - `upsample = "resize"` replaces each 3×3 stride-2 deconv by a nearest-neighbour ×2 upsampling
//!   and a 3×3 conv (+ BN), and the 10×10 output deconv by a 9×9 conv pad 4 (the mirror of `c1`):
//!   Odena et al. (2016), "Deconvolution and checkerboard artifacts". The paper's 3×3 stride-2
//!   deconvs overlap unevenly and, on real faces at 64 px, print a 4-pixel grid on T's output that
//!   the adversarial stage amplifies into speckle (docs/networks.md). Same parameter names; `d1`,
//!   `d2` and `out` hold `Conv2d` weights (`out.weight` is 3×C×9×9).
//! - `residual = true`: T predicts a change of the input, `tanh(atanh(x) + out(h))` (x clamped to
//!   ±0.999 first): the identity is T's easiest output, so what T does not edit keeps the input's
//!   detail instead of passing through the 4× down-sampling bottleneck. With `residual_blur = σ`
//!   the change is blurred (Gaussian, σ pixels, [`crate::blur::gaussian_blur`]) before it is
//!   added: T's edits are then smooth by construction, and the high-frequency speckle that fools
//!   a small discriminator (docs/networks.md) is out of T's reach.
//!
//! For inference, [`TransformNet::fold`] folds every batch normalisation into the preceding
//! convolution and can cast to bf16 and the channels-last layout (the GPU benchmark's levers).

use crate::error::Result;
use crate::layers::{ConvBn, DeconvBn, conv_bn, deconv_bn, scaled, to_channels_last};
use crate::limits::{self, NetConfig};
use tch::{Kind, Tensor, nn, nn::ModuleT};

/// Configuration of T (also of the reconstruction network g and the global enhancement network).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TransformConfig {
    /// Residual blocks (paper text: 5; Table 1: 4).
    pub res_blocks: usize,
    /// Channel multiplier: 1.0 gives Table 1's 32/64/128 channels.
    pub width: f64,
    /// Input/output side in pixels (paper: 128); must be a multiple of 4.
    pub image_size: i64,
    /// How the decoder up-samples (paper: transposed convolutions). Not written into a
    /// checkpoint's metadata when it is the paper's, so earlier checkpoints stay byte-identical.
    #[serde(default, skip_serializing_if = "diat_common::is_default")]
    pub upsample: Upsample,
    /// T predicts a change of its input (module documentation). Off in the paper.
    #[serde(default, skip_serializing_if = "diat_common::is_default")]
    pub residual: bool,
    /// In residual mode, σ (pixels) of a Gaussian blur of the predicted change before it is added:
    /// T cannot print texture finer than this (module documentation). 0: no blur.
    #[serde(default, skip_serializing_if = "diat_common::is_default")]
    pub residual_blur: f64,
}

/// The decoder's up-sampling layers (see the module documentation).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Upsample {
    /// The paper's 3×3 stride-2 transposed convolutions and 10×10 output deconv.
    #[default]
    Deconv,
    /// Nearest ×2 up-sampling + 3×3 conv, 9×9 output conv (no checkerboard).
    Resize,
}

/// Clamp bound of the input before `atanh` in residual mode.
const RESIDUAL_CLAMP: f64 = 0.999;

impl Default for TransformConfig {
    fn default() -> Self {
        Self {
            res_blocks: 5,
            width: 1.0,
            image_size: 128,
            upsample: Upsample::Deconv,
            residual: false,
            residual_blur: 0.0,
        }
    }
}

impl TransformConfig {
    /// A small network for CPU tests and smoke runs.
    pub fn tiny(image_size: i64) -> Self {
        Self {
            res_blocks: 2,
            width: 0.25,
            image_size,
            ..Self::default()
        }
    }

    /// Table 1 literally: 4 residual blocks.
    pub fn table1() -> Self {
        Self {
            res_blocks: 4,
            ..Self::default()
        }
    }

    /// Channels of the three stages.
    pub fn channels(&self) -> [i64; 3] {
        [32, 64, 128].map(|c| scaled(c, self.width))
    }

    /// Checks every field (see [`crate::limits`]).
    pub fn validate(&self) -> Result<()> {
        self.check(&|f| format!("transform network: {f}"))
    }
}

impl NetConfig for TransformConfig {
    fn check(&self, key: &dyn Fn(&str) -> String) -> Result<()> {
        limits::multiple_in_range(
            &key("image_size"),
            self.image_size,
            4,
            8,
            limits::IMAGE_SIZE.1,
        )?;
        limits::in_range(&key("width"), self.width, limits::WIDTH.0, limits::WIDTH.1)?;
        limits::in_range(&key("res_blocks"), self.res_blocks, 0, 64)?;
        limits::in_range(&key("residual_blur"), self.residual_blur, 0.0, 16.0)
    }

    fn state_elements(&self) -> f64 {
        let [a, b, c] = self.channels();
        limits::conv_bn_elements(3, a, 9)
            + limits::conv_bn_elements(a, b, 3)
            + limits::conv_bn_elements(b, c, 3)
            + 2.0 * self.res_blocks as f64 * limits::conv_bn_elements(c, c, 3)
            + limits::conv_bn_elements(c, b, 3)
            + limits::conv_bn_elements(b, a, 3)
            + match self.upsample {
                Upsample::Deconv => limits::conv_elements(a, 3, 10),
                Upsample::Resize => limits::conv_elements(a, 3, 9),
            }
    }

    fn activation_elements(&self) -> f64 {
        let [a, b, c] = self.channels().map(|v| v as f64);
        let s2 = (self.image_size * self.image_size) as f64;
        // conv, BN and ReLU outputs per layer; a residual block has two layers and a sum.
        s2 * (3.0 * a
            + 3.0 * b / 4.0
            + 3.0 * c / 16.0
            + self.res_blocks as f64 * 7.0 * c / 16.0
            + 3.0 * b / 4.0
            + 3.0 * a
            + 6.0)
    }
}

#[derive(Debug)]
struct ResBlock {
    a: ConvBn,
    b: ConvBn,
}

/// The transform network (see the module documentation for its parameter names).
#[derive(Debug)]
pub struct TransformNet {
    c1: ConvBn,
    c2: ConvBn,
    c3: ConvBn,
    res: Vec<ResBlock>,
    d1: UpLayer,
    d2: UpLayer,
    out: OutLayer,
    pub config: TransformConfig,
}

/// A decoder layer: the paper's deconv, or resize + conv.
#[derive(Debug)]
enum UpLayer {
    Deconv(DeconvBn),
    Resize(ConvBn),
}

impl UpLayer {
    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        match self {
            UpLayer::Deconv(l) => l.forward_t(x, train),
            UpLayer::Resize(l) => l.forward_t(&upsample2(x), train),
        }
    }
}

/// Nearest-neighbour ×2 up-sampling (PyTorch's `F.interpolate(x, scale_factor=2)`).
fn upsample2(x: &Tensor) -> Tensor {
    let s = x.size();
    x.upsample_nearest2d([s[2] * 2, s[3] * 2], None, None)
}

/// The output layer: the paper's 10×10 deconv or a 9×9 conv.
#[derive(Debug)]
enum OutLayer {
    Deconv(nn::ConvTranspose2D),
    Conv(nn::Conv2D),
}

impl OutLayer {
    fn weights(&self) -> (&Tensor, Option<&Tensor>) {
        match self {
            OutLayer::Deconv(l) => (&l.ws, l.bs.as_ref()),
            OutLayer::Conv(l) => (&l.ws, l.bs.as_ref()),
        }
    }
}

/// `atanh` of the input clamped to ±[`RESIDUAL_CLAMP`]: what residual mode adds T's output to.
fn residual_base(x: &Tensor) -> Tensor {
    x.clamp(-RESIDUAL_CLAMP, RESIDUAL_CLAMP).atanh()
}

/// Builds T under `p`.
pub fn transform_net(p: &nn::Path<'_>, config: &TransformConfig) -> TransformNet {
    let [a, b, c] = config.channels();
    let res = p / "res";
    TransformNet {
        c1: conv_bn(&(p / "c1"), 3, a, 9, 1, 4),
        c2: conv_bn(&(p / "c2"), a, b, 3, 2, 1),
        c3: conv_bn(&(p / "c3"), b, c, 3, 2, 1),
        res: (0..config.res_blocks)
            .map(|i| {
                let r = &res / i;
                ResBlock {
                    a: conv_bn(&(&r / "a"), c, c, 3, 1, 1),
                    b: conv_bn(&(&r / "b"), c, c, 3, 1, 1),
                }
            })
            .collect(),
        d1: up_layer(&(p / "d1"), c, b, 1, config.upsample),
        d2: up_layer(&(p / "d2"), b, a, 0, config.upsample),
        out: match config.upsample {
            Upsample::Deconv => OutLayer::Deconv(nn::conv_transpose2d(
                p / "out",
                a,
                3,
                10,
                nn::ConvTransposeConfig {
                    padding: 4,
                    ..Default::default()
                },
            )),
            Upsample::Resize => OutLayer::Conv(nn::conv2d(
                p / "out",
                a,
                3,
                9,
                nn::ConvConfig {
                    padding: 4,
                    ..Default::default()
                },
            )),
        },
        config: config.clone(),
    }
}

fn up_layer(p: &nn::Path<'_>, cin: i64, cout: i64, output_padding: i64, up: Upsample) -> UpLayer {
    match up {
        Upsample::Deconv => UpLayer::Deconv(deconv_bn(p, cin, cout, 3, 2, 1, output_padding)),
        Upsample::Resize => UpLayer::Resize(conv_bn(p, cin, cout, 3, 1, 1)),
    }
}

/// Residual mode's output: `tanh(base + change)`, the change blurred first when `sigma` > 0
/// (`base` is [`residual_base`] of the input).
fn residual_output(base: Tensor, change: Tensor, sigma: f64) -> Tensor {
    let change = if sigma > 0.0 {
        crate::blur::gaussian_blur(&change, sigma)
    } else {
        change
    };
    (base + change).tanh()
}

impl ModuleT for TransformNet {
    /// `x`: N×3×S×S in [-1, 1]; returns the same shape in [-1, 1]. In training mode batch
    /// normalisation uses batch statistics and updates the running ones.
    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let mut h = self.c1.forward_t(x, train).relu();
        h = self.c2.forward_t(&h, train).relu();
        h = self.c3.forward_t(&h, train).relu();
        for r in &self.res {
            let y = r.a.forward_t(&h, train).relu();
            h = r.b.forward_t(&y, train) + h;
        }
        h = self.d1.forward_t(&h, train).relu();
        h = self.d2.forward_t(&h, train).relu();
        let h = match &self.out {
            OutLayer::Deconv(l) => h.apply(l),
            OutLayer::Conv(l) => h.apply(l),
        };
        if self.config.residual {
            residual_output(residual_base(x), h, self.config.residual_blur)
        } else {
            h.tanh()
        }
    }
}

/// A convolution with BN folded in: plain tensors, no autograd.
#[derive(Debug)]
struct FoldedConv {
    w: Tensor,
    b: Tensor,
    stride: i64,
    pad: i64,
    /// `Some(output_padding)` for a transposed convolution.
    transposed: Option<i64>,
    /// Nearest ×2 up-sampling before the convolution.
    upsample: bool,
}

impl FoldedConv {
    fn forward(&self, x: &Tensor) -> Tensor {
        let (s, p) = ([self.stride; 2], [self.pad; 2]);
        let up;
        let x = if self.upsample {
            up = upsample2(x);
            &up
        } else {
            x
        };
        match self.transposed {
            None => x.conv2d(&self.w, Some(&self.b), s, p, [1, 1], 1),
            Some(op) => x.conv_transpose2d(&self.w, Some(&self.b), s, p, [op; 2], 1, [1, 1]),
        }
    }
}

/// T for inference with batch normalisation folded into the convolutions, optionally in bf16 and
/// channels-last. Same outputs as `TransformNet::forward_t(x, false)` up to rounding.
#[derive(Debug)]
pub struct FoldedTransform {
    c: [FoldedConv; 3],
    res: Vec<[FoldedConv; 2]>,
    d: [FoldedConv; 2],
    out: FoldedConv,
    kind: Kind,
    channels_last: bool,
    residual: bool,
    residual_blur: f64,
}

impl TransformNet {
    /// Folds the running statistics of every batch normalisation into the preceding convolution
    /// (`w' = w·γ/√(σ²+ε)`, `b' = (b−μ)·γ/√(σ²+ε) + β`, per output channel: dim 0 of a conv
    /// weight, dim 1 of a transposed one), then casts to `kind` and, when `channels_last`, lays the
    /// weights out NHWC.
    pub fn fold(&self, kind: Kind, channels_last: bool) -> FoldedTransform {
        let prep = |t: Tensor| {
            let t = t.to_kind(kind);
            if channels_last {
                to_channels_last(&t)
            } else {
                t.contiguous()
            }
        };
        let conv = |cb: &ConvBn, stride: i64, pad: i64| {
            tch::no_grad(|| {
                let (scale, shift) = cb.bn.affine();
                let w = &cb.conv.ws * scale.view([-1, 1, 1, 1]);
                let b = match &cb.conv.bs {
                    Some(b) => b * &scale + &shift,
                    None => shift,
                };
                FoldedConv {
                    w: prep(w),
                    b: b.to_kind(kind),
                    stride,
                    pad,
                    transposed: None,
                    upsample: false,
                }
            })
        };
        let deconv = |db: &DeconvBn, output_padding: i64| {
            tch::no_grad(|| {
                let (scale, shift) = db.bn.affine();
                let w = &db.conv.ws * scale.view([1, -1, 1, 1]);
                let b = match &db.conv.bs {
                    Some(b) => b * &scale + &shift,
                    None => shift,
                };
                FoldedConv {
                    w: prep(w),
                    b: b.to_kind(kind),
                    stride: 2,
                    pad: 1,
                    transposed: Some(output_padding),
                    upsample: false,
                }
            })
        };
        let up = |l: &UpLayer, output_padding: i64| match l {
            UpLayer::Deconv(db) => deconv(db, output_padding),
            UpLayer::Resize(cb) => FoldedConv {
                upsample: true,
                ..conv(cb, 1, 1)
            },
        };
        let (ws, bs) = self.out.weights();
        let out = tch::no_grad(|| FoldedConv {
            w: prep(ws.detach()),
            b: bs.map_or_else(
                || Tensor::zeros([3], (kind, ws.device())),
                |b| b.detach().to_kind(kind),
            ),
            stride: 1,
            pad: 4,
            transposed: match self.out {
                OutLayer::Deconv(_) => Some(0),
                OutLayer::Conv(_) => None,
            },
            upsample: false,
        });
        FoldedTransform {
            c: [
                conv(&self.c1, 1, 4),
                conv(&self.c2, 2, 1),
                conv(&self.c3, 2, 1),
            ],
            res: self
                .res
                .iter()
                .map(|r| [conv(&r.a, 1, 1), conv(&r.b, 1, 1)])
                .collect(),
            d: [up(&self.d1, 1), up(&self.d2, 0)],
            out,
            kind,
            channels_last,
            residual: self.config.residual,
            residual_blur: self.config.residual_blur,
        }
    }
}

impl FoldedTransform {
    /// The compute kind (the kind of the output).
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// Inference forward pass (no autograd). The input is cast to the folded kind and layout; the
    /// output is in that kind.
    pub fn forward(&self, x: &Tensor) -> Tensor {
        tch::no_grad(|| {
            let x = x.to_kind(self.kind);
            let x = if self.channels_last {
                to_channels_last(&x)
            } else {
                x
            };
            let mut h = self.c[0].forward(&x).relu_();
            h = self.c[1].forward(&h).relu_();
            h = self.c[2].forward(&h).relu_();
            for [a, b] in &self.res {
                let y = a.forward(&h).relu_();
                h = b.forward(&y) + h;
            }
            h = self.d[0].forward(&h).relu_();
            h = self.d[1].forward(&h).relu_();
            let mut out = self.out.forward(&h);
            if self.residual {
                // The input's atanh in fp32 (bf16 is coarse near ±1), the sum in the folded kind.
                let base = residual_base(&x.to_kind(Kind::Float)).to_kind(self.kind);
                residual_output(base, out, self.residual_blur)
            } else {
                out.tanh_()
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn table1_activation_sizes() {
        let vs = nn::VarStore::new(Device::Cpu);
        let t = transform_net(
            &vs.root(),
            &TransformConfig {
                width: 0.25,
                ..Default::default()
            },
        );
        let x = Tensor::rand([2, 3, 128, 128], (Kind::Float, Device::Cpu)) * 2.0 - 1.0;
        let h1 = t.c3.forward_t(
            &t.c2
                .forward_t(&t.c1.forward_t(&x, false).relu(), false)
                .relu(),
            false,
        );
        assert_eq!(h1.size(), [2, 32, 32, 32]);
        let deconv = |l: &UpLayer| match l {
            UpLayer::Deconv(d) => d.conv.ws.shallow_clone(),
            UpLayer::Resize(_) => unreachable!("the paper's network"),
        };
        let d1 = h1.conv_transpose2d(&deconv(&t.d1), None::<Tensor>, 2, 1, 1, 1, 1);
        assert_eq!(d1.size(), [2, 16, 64, 64]);
        let d2 = d1.conv_transpose2d(&deconv(&t.d2), None::<Tensor>, 2, 1, 0, 1, 1);
        assert_eq!(d2.size(), [2, 8, 127, 127]);
        assert_eq!(t.forward_t(&x, false).size(), [2, 3, 128, 128]);
    }

    #[test]
    fn paper_parameter_count_and_names() {
        let vs = nn::VarStore::new(Device::Cpu);
        let _ = transform_net(&vs.root(), &TransformConfig::default());
        let vars = vs.variables();
        assert_eq!(vars["c1.conv.weight"].size(), [32, 3, 9, 9]);
        assert_eq!(vars["res.4.b.bn.running_var"].size(), [128]);
        assert_eq!(vars["d1.conv.weight"].size(), [128, 64, 3, 3]);
        assert_eq!(vars["out.weight"].size(), [32, 3, 10, 10]);
        assert_eq!(vars["c2.bn.num_batches_tracked"].kind(), Kind::Int64);
        assert!(!vars.contains_key("res.5.a.conv.weight"));
        // 3 convs + 10 residual convs + 2 deconvs, each with BN (7 tensors each), + out (2).
        assert_eq!(vars.len(), 15 * 7 + 2);
    }

    #[test]
    fn resize_and_residual_options_keep_the_shape_and_fold() {
        tch::manual_seed(5);
        for (upsample, residual, residual_blur) in [
            (Upsample::Resize, false, 0.0),
            (Upsample::Deconv, true, 0.0),
            (Upsample::Resize, true, 0.0),
            (Upsample::Resize, true, 1.0),
        ] {
            let cfg = TransformConfig {
                upsample,
                residual,
                residual_blur,
                ..TransformConfig::tiny(32)
            };
            let vs = nn::VarStore::new(Device::Cpu);
            let t = transform_net(&vs.root(), &cfg);
            let n: i64 = vs.variables().values().map(|v| v.numel() as i64).sum();
            assert_eq!(n as f64, cfg.state_elements(), "{cfg:?}");
            let x = Tensor::rand([2, 3, 32, 32], (Kind::Float, Device::Cpu)) * 2.0 - 1.0;
            tch::no_grad(|| {
                let _ = t.forward_t(&x, true);
            });
            let want = tch::no_grad(|| t.forward_t(&x, false));
            assert_eq!(want.size(), [2, 3, 32, 32]);
            let got = t.fold(Kind::Float, true).forward(&x);
            let err = (&got - &want).abs().max().double_value(&[]);
            assert!(err < 1e-5, "{cfg:?}: folded max error {err}");
        }
        // Residual mode with a zero output layer is the identity (up to the clamp).
        let cfg = TransformConfig {
            residual: true,
            upsample: Upsample::Resize,
            ..TransformConfig::tiny(32)
        };
        let vs = nn::VarStore::new(Device::Cpu);
        let t = transform_net(&vs.root(), &cfg);
        tch::no_grad(|| {
            for (name, mut v) in vs.variables() {
                if name.starts_with("out.") {
                    let _ = v.zero_();
                }
            }
        });
        let x = Tensor::rand([1, 3, 32, 32], (Kind::Float, Device::Cpu)) * 1.9 - 0.95;
        let y = tch::no_grad(|| t.forward_t(&x, false));
        assert!((y - &x).abs().max().double_value(&[]) < 1e-5);
    }

    #[test]
    fn paper_config_metadata_has_no_new_keys() {
        // Earlier checkpoints' metadata (and so their bytes) must not change.
        let json = serde_json::to_string(&TransformConfig::default()).unwrap();
        assert_eq!(json, r#"{"res_blocks":5,"width":1.0,"image_size":128}"#);
        let back: TransformConfig = serde_json::from_str(&json).unwrap();
        assert_eq!(back, TransformConfig::default());
        let r = TransformConfig {
            upsample: Upsample::Resize,
            residual: true,
            ..Default::default()
        };
        let json = serde_json::to_string(&r).unwrap();
        assert!(
            json.contains(r#""upsample":"resize","residual":true"#),
            "{json}"
        );
    }

    #[test]
    fn folded_batch_norm_matches_eval_mode() {
        tch::manual_seed(3);
        let vs = nn::VarStore::new(Device::Cpu);
        let t = transform_net(
            &vs.root(),
            &TransformConfig {
                image_size: 32,
                ..TransformConfig::tiny(32)
            },
        );
        let x = Tensor::rand([3, 3, 32, 32], (Kind::Float, Device::Cpu)) * 2.0 - 1.0;
        // Give BN non-trivial running statistics with a few training-mode passes.
        tch::no_grad(|| {
            for _ in 0..3 {
                let _ = t.forward_t(&x, true);
            }
        });
        assert_eq!(
            vs.variables()["c1.bn.num_batches_tracked"].int64_value(&[]),
            3
        );
        let want = tch::no_grad(|| t.forward_t(&x, false));
        for channels_last in [false, true] {
            let got = t.fold(Kind::Float, channels_last).forward(&x);
            let err = (&got - &want).abs().max().double_value(&[]);
            assert!(err < 1e-5, "channels_last={channels_last}: max error {err}");
        }
        let bf = t.fold(Kind::BFloat16, true).forward(&x);
        assert_eq!(bf.kind(), Kind::BFloat16);
        let err = (bf.to_kind(Kind::Float) - &want)
            .abs()
            .max()
            .double_value(&[]);
        assert!(err < 0.1, "bf16 max error {err}");
    }
}
