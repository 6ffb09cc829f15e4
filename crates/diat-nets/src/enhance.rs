//! Face enhancement networks E — paper §3.2.
//!
//! * Local attributes (Eq. 10): "a fully convolutional network (FCN) of 4 layers" whose input is
//!   the source image and the transformed image (6 channels). Choices the paper leaves open:
//!   3×3 convs with 64 hidden channels and ReLU between layers, and a residual output
//!   `E(x, T(x)) = T(x) + layers([x, T(x)])` (the network corrects the transformed image;
//!   `residual: false` outputs `layers(…)` directly). The channel order of the input is
//!   `[source, transformed]`.
//! * Global attributes (Eq. 11): the transform network's architecture ([`global_enhance_net`],
//!   Table 1), applied to blurred images `E(B(·))`.
//!
//! Parameter names of the local network (`scripts/reference/diat_reference.py`, class
//! `LocalEnhanceNet`): `conv.{0..3}.{weight,bias}` (6 → hidden → hidden → hidden → 3). The global
//! network's are T's (see [`crate::transform`]).

use crate::error::Result;
use crate::layers::scaled;
use crate::limits::{self, NetConfig};
use crate::transform::{TransformConfig, TransformNet, transform_net};
use tch::{Tensor, nn};

/// Configuration of the local enhancement network.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LocalEnhanceConfig {
    /// Channel multiplier applied to `hidden`.
    pub width: f64,
    /// Image side in pixels (any; kept for uniformity with the other networks).
    pub image_size: i64,
    /// Hidden channels.
    pub hidden: i64,
    /// Conv layers (paper: 4).
    pub layers: usize,
    /// Output `T(x) + layers(…)` instead of `layers(…)`.
    pub residual: bool,
}

impl Default for LocalEnhanceConfig {
    fn default() -> Self {
        Self {
            width: 1.0,
            image_size: 128,
            hidden: 64,
            layers: 4,
            residual: true,
        }
    }
}

impl LocalEnhanceConfig {
    /// A small network for CPU tests and smoke runs.
    pub fn tiny(image_size: i64) -> Self {
        Self {
            width: 0.25,
            image_size,
            ..Self::default()
        }
    }
}

impl LocalEnhanceConfig {
    /// Checks every field (see [`crate::limits`]).
    pub fn validate(&self) -> Result<()> {
        self.check(&|f| format!("local enhancement network: {f}"))
    }
}

impl NetConfig for LocalEnhanceConfig {
    fn check(&self, key: &dyn Fn(&str) -> String) -> Result<()> {
        limits::in_range(&key("image_size"), self.image_size, 1, limits::IMAGE_SIZE.1)?;
        limits::in_range(&key("width"), self.width, limits::WIDTH.0, limits::WIDTH.1)?;
        limits::in_range(&key("hidden"), self.hidden, 1, 4096)?;
        limits::in_range(&key("layers"), self.layers, 2, 64)
    }

    fn state_elements(&self) -> f64 {
        let hidden = scaled(self.hidden, self.width);
        (0..self.layers)
            .map(|i| {
                let cin = if i == 0 { 6 } else { hidden };
                let cout = if i + 1 == self.layers { 3 } else { hidden };
                limits::conv_elements(cin, cout, 3)
            })
            .sum()
    }

    fn activation_elements(&self) -> f64 {
        let s2 = (self.image_size * self.image_size) as f64;
        let hidden = scaled(self.hidden, self.width) as f64;
        s2 * (6.0 + 2.0 * hidden * (self.layers - 1) as f64 + 6.0)
    }
}

/// The local enhancement network.
#[derive(Debug)]
pub struct LocalEnhanceNet {
    convs: Vec<nn::Conv2D>,
    pub config: LocalEnhanceConfig,
}

/// Builds the local enhancement network under `p`.
pub fn local_enhance_net(p: &nn::Path<'_>, config: &LocalEnhanceConfig) -> LocalEnhanceNet {
    assert!(
        config.layers >= 2,
        "the local enhancement network needs at least 2 layers"
    );
    let hidden = scaled(config.hidden, config.width);
    let pad = nn::ConvConfig {
        padding: 1,
        ..Default::default()
    };
    let conv = p / "conv";
    let convs = (0..config.layers)
        .map(|i| {
            let cin = if i == 0 { 6 } else { hidden };
            let cout = if i + 1 == config.layers { 3 } else { hidden };
            nn::conv2d(&conv / i, cin, cout, 3, pad)
        })
        .collect();
    LocalEnhanceNet {
        convs,
        config: config.clone(),
    }
}

impl LocalEnhanceNet {
    /// `E(x, T(x))`: `source` and `transformed` are N×3×H×W; returns N×3×H×W.
    pub fn forward(&self, source: &Tensor, transformed: &Tensor) -> Tensor {
        let mut h = Tensor::cat(&[source, transformed], 1);
        let last = self.convs.len() - 1;
        for (i, conv) in self.convs.iter().enumerate() {
            h = h.apply(conv);
            if i < last {
                h = h.relu();
            }
        }
        if self.config.residual {
            transformed + h
        } else {
            h
        }
    }
}

/// The global enhancement network: T's architecture (Table 1), used as `E(B(·))`.
pub fn global_enhance_net(p: &nn::Path<'_>, config: &TransformConfig) -> TransformNet {
    transform_net(p, config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind, nn::ModuleT};

    #[test]
    fn local_takes_six_channels_global_is_t() {
        let vs = nn::VarStore::new(Device::Cpu);
        let e = local_enhance_net(&vs.root(), &LocalEnhanceConfig::default());
        let x = Tensor::rand([2, 3, 32, 32], (Kind::Float, Device::Cpu));
        assert_eq!(e.forward(&x, &x).size(), [2, 3, 32, 32]);
        let vars = vs.variables();
        assert_eq!(vars["conv.0.weight"].size(), [64, 6, 3, 3]);
        assert_eq!(vars["conv.3.weight"].size(), [3, 64, 3, 3]);
        assert_eq!(vars.len(), 8);
        let gvs = nn::VarStore::new(Device::Cpu);
        let g = global_enhance_net(&gvs.root(), &TransformConfig::tiny(32));
        assert_eq!(g.forward_t(&x, false).size(), [2, 3, 32, 32]);
    }
}
