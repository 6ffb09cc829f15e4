//! Denoising network f — paper §3.1.1, "perceptual regularization": two 3×3 conv layers, trained
//! with Eq. (5) to remove from g(x) the artifacts n = g(x) − x that the reconstruction network g
//! (T's architecture) leaves; the smoothness term Eq. (6) then asks T(x) to be a fixed point of f.
//!
//! Choices the paper leaves open: 64 hidden channels with a ReLU between the two layers, and a
//! residual output `f(y) = y + conv2(relu(conv1(y)))` (the layers model the correction, which a
//! two-layer network can learn far more easily than the identity; `residual: false` gives the
//! plain `conv2(relu(conv1(y)))`).
//!
//! Parameter names (`scripts/reference/diat_reference.py`, class `DenoiseNet`):
//! `conv1.{weight,bias}` (3 → hidden), `conv2.{weight,bias}` (hidden → 3), both 3×3, padding 1.

use crate::layers::scaled;
use tch::{Tensor, nn, nn::Module};

/// Configuration of f.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DenoiseConfig {
    /// Channel multiplier applied to `hidden`.
    pub width: f64,
    /// Image side in pixels (any; kept for uniformity with the other networks).
    pub image_size: i64,
    /// Hidden channels between the two layers.
    pub hidden: i64,
    /// Output `y + layers(y)` instead of `layers(y)`.
    pub residual: bool,
}

impl Default for DenoiseConfig {
    fn default() -> Self {
        Self {
            width: 1.0,
            image_size: 128,
            hidden: 64,
            residual: true,
        }
    }
}

impl DenoiseConfig {
    /// A small network for CPU tests and smoke runs.
    pub fn tiny(image_size: i64) -> Self {
        Self {
            width: 0.25,
            image_size,
            ..Self::default()
        }
    }
}

/// The denoising network f.
#[derive(Debug)]
pub struct DenoiseNet {
    conv1: nn::Conv2D,
    conv2: nn::Conv2D,
    pub config: DenoiseConfig,
}

/// Builds f under `p`.
pub fn denoise_net(p: &nn::Path<'_>, config: &DenoiseConfig) -> DenoiseNet {
    let hidden = scaled(config.hidden, config.width);
    let pad = nn::ConvConfig {
        padding: 1,
        ..Default::default()
    };
    DenoiseNet {
        conv1: nn::conv2d(p / "conv1", 3, hidden, 3, pad),
        conv2: nn::conv2d(p / "conv2", hidden, 3, 3, pad),
        config: config.clone(),
    }
}

impl Module for DenoiseNet {
    /// `y`: N×3×H×W; returns the denoised image, same shape.
    fn forward(&self, y: &Tensor) -> Tensor {
        let r = y.apply(&self.conv1).relu().apply(&self.conv2);
        if self.config.residual { y + r } else { r }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn two_layers_same_shape() {
        let vs = nn::VarStore::new(Device::Cpu);
        let f = denoise_net(&vs.root(), &DenoiseConfig::default());
        let y = Tensor::rand([2, 3, 20, 24], (Kind::Float, Device::Cpu));
        assert_eq!(f.forward(&y).size(), [2, 3, 20, 24]);
        let vars = vs.variables();
        assert_eq!(vars["conv1.weight"].size(), [64, 3, 3, 3]);
        assert_eq!(vars["conv2.weight"].size(), [3, 64, 3, 3]);
        assert_eq!(vars.len(), 4);
    }
}
