//! Building blocks shared by the architectures: batch normalisation with PyTorch's buffers,
//! conv + BN pairs, leaky ReLU, channel scaling and the channels-last memory layout.

use tch::{Device, Kind, Tensor, nn, nn::ModuleT};

/// `((channels × width).round()).max(1)`: the channel count of a layer under a width multiplier
/// (round half away from zero; the Python reference mirrors it).
pub fn scaled(channels: i64, width: f64) -> i64 {
    ((channels as f64 * width).round() as i64).max(1)
}

/// Leaky ReLU with slope `slope < 1`, written as `max(x, slope·x)` (exact for slopes below one;
/// tch's `leaky_relu` has a fixed slope of 0.01).
pub fn leaky_relu(x: &Tensor, slope: f64) -> Tensor {
    x.maximum(&(x * slope))
}

/// Batch normalisation epsilon (PyTorch's and tch's default).
pub const BN_EPS: f64 = 1e-5;

/// `BatchNorm2d` with exactly PyTorch's state: `weight`, `bias`, `running_mean`, `running_var`
/// and the int64 scalar `num_batches_tracked`, which counts training-mode forwards (momentum is
/// 0.1, so as in PyTorch it is only counted, never used). Having the counter in the var store
/// is what makes checkpoints load in PyTorch with `strict=True`.
#[derive(Debug)]
pub struct BatchNorm2d {
    pub bn: nn::BatchNorm,
    pub num_batches_tracked: Tensor,
}

/// `BatchNorm2d(channels)` under `p` (eps 1e-5, momentum 0.1, affine: PyTorch's defaults).
pub fn batch_norm2d(p: &nn::Path<'_>, channels: i64) -> BatchNorm2d {
    let bn = nn::batch_norm2d(
        p,
        channels,
        nn::BatchNormConfig {
            eps: BN_EPS,
            momentum: 0.1,
            ..Default::default()
        },
    );
    let num_batches_tracked = p.add(
        "num_batches_tracked",
        Tensor::zeros([], (Kind::Int64, p.device())),
        false,
    );
    BatchNorm2d {
        bn,
        num_batches_tracked,
    }
}

impl ModuleT for BatchNorm2d {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        if train {
            tch::no_grad(|| {
                let _ = self.num_batches_tracked.shallow_clone().g_add_scalar_(1);
            });
        }
        self.bn.forward_t(xs, train)
    }
}

impl BatchNorm2d {
    /// Per-channel `(scale, shift)` with `bn(x) = scale·x + shift` in inference mode.
    pub fn affine(&self) -> (Tensor, Tensor) {
        let inv_std = (&self.bn.running_var + BN_EPS).rsqrt();
        let scale = match &self.bn.ws {
            Some(w) => w * &inv_std,
            None => inv_std,
        };
        let shift = -&self.bn.running_mean * &scale;
        let shift = match &self.bn.bs {
            Some(b) => shift + b,
            None => shift,
        };
        (scale.detach(), shift.detach())
    }
}

/// A convolution followed by batch normalisation (`<name>.conv.*`, `<name>.bn.*`).
#[derive(Debug)]
pub struct ConvBn {
    pub conv: nn::Conv2D,
    pub bn: BatchNorm2d,
}

impl ConvBn {
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        x.apply(&self.conv).apply_t(&self.bn, train)
    }
}

/// `Conv2d(cin, cout, k, stride, pad)` + `BatchNorm2d(cout)` under `p`.
pub fn conv_bn(p: &nn::Path<'_>, cin: i64, cout: i64, k: i64, stride: i64, pad: i64) -> ConvBn {
    let cfg = nn::ConvConfig {
        stride,
        padding: pad,
        ..Default::default()
    };
    ConvBn {
        conv: nn::conv2d(p / "conv", cin, cout, k, cfg),
        bn: batch_norm2d(&(p / "bn"), cout),
    }
}

/// A transposed convolution followed by batch normalisation.
#[derive(Debug)]
pub struct DeconvBn {
    pub conv: nn::ConvTranspose2D,
    pub bn: BatchNorm2d,
}

impl DeconvBn {
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        x.apply(&self.conv).apply_t(&self.bn, train)
    }
}

/// `ConvTranspose2d(cin, cout, k, stride, pad, output_padding)` + `BatchNorm2d(cout)` under `p`.
pub fn deconv_bn(
    p: &nn::Path<'_>,
    cin: i64,
    cout: i64,
    k: i64,
    stride: i64,
    pad: i64,
    output_padding: i64,
) -> DeconvBn {
    let cfg = nn::ConvTransposeConfig {
        stride,
        padding: pad,
        output_padding,
        ..Default::default()
    };
    DeconvBn {
        conv: nn::conv_transpose2d(p / "conv", cin, cout, k, cfg),
        bn: batch_norm2d(&(p / "bn"), cout),
    }
}

/// The same values in the channels-last (NHWC) memory layout, still indexed N×C×H×W.
/// cuDNN's fastest convolution kernels (tensor cores) use it; tch has no memory-format API, so
/// this permutes to NHWC, makes it contiguous and permutes the view back.
pub fn to_channels_last(x: &Tensor) -> Tensor {
    if x.dim() != 4 {
        return x.shallow_clone();
    }
    x.permute([0, 2, 3, 1]).contiguous().permute([0, 3, 1, 2])
}

/// Whether `x` (4-d) is laid out channels-last.
pub fn is_channels_last(x: &Tensor) -> bool {
    let (size, stride) = (x.size(), x.stride());
    size.len() == 4 && stride[1] == 1 && stride[3] == size[1] && stride[2] == size[1] * size[3]
}

/// Blocks until queued work on `device` is done (CUDA launches are asynchronous): call it before
/// reading a timer.
pub fn synchronize(device: Device) {
    if let Device::Cuda(i) = device {
        tch::Cuda::synchronize(i as i64);
    }
}

/// Whether bf16 convolutions are supported natively on `device`: CUDA (bf16 tensor cores from
/// Ampere on; older cards emulate), or a CPU with AVX512-BF16 or AMX-BF16 (elsewhere libtorch
/// emulates bf16 and it is slower than fp32).
pub fn bf16_supported(device: Device) -> bool {
    match device {
        Device::Cuda(_) => true,
        Device::Cpu => diat_common::machine::cpu_flags()
            .iter()
            .any(|f| f == "avx512_bf16" || f == "amx_bf16"),
        _ => false,
    }
}
