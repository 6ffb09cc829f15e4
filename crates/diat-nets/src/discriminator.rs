//! Discriminator D — paper §3.1.1, Table 2; its conv-4 and conv-5 feature maps also define the
//! adaptive perceptual identity loss of DIAT-A (§4.1, Eq. 12–13).
//!
//! | layer | output at 128 px |
//! |---|---|
//! | 8×8 conv 32, pad 3, stride 2 | 32×64×64 |
//! | 3×3 conv 32, pad 1, stride 1 | 32×64×64 |
//! | 4×4 conv 64, pad 1, stride 2 | 64×32×32 |
//! | 3×3 conv 64, pad 1, stride 1 | 64×32×32 |
//! | 4×4 conv 128, pad 1, stride 2 | 128×16×16 |
//! | 4×4 conv 128, pad 1, stride 2 | 128×8×8 |
//! | fully connected, 1000 units | 1000 |
//! | fully connected, 1 unit | 1 (a logit) |
//!
//! Choices the paper leaves open: leaky ReLU with slope 0.2 after every layer but the last
//! (DCGAN, Radford et al.); no normalisation layer, so a sample's features do not depend on the
//! rest of its batch — the features of T(x) and x in Eq. (12) are compared exactly, and D can run
//! on a concatenated batch (real and generated images in one pass) without changing anything.
//! The last layer outputs a logit; D(a) of the paper is `sigmoid(logit)`, and the losses use the
//! numerically stable log-sigmoid forms. Feature maps are taken after the activation.
//!
//! Parameter names (`scripts/reference/diat_reference.py`, class `Discriminator`):
//! `conv.{0..5}.{weight,bias}` (`nn.ModuleList` of `Conv2d`), `fc1.{weight,bias}`,
//! `fc2.{weight,bias}` (`Linear`); `fc1` takes the conv-6 map flattened in C, H, W order.

use crate::error::Result;
use crate::layers::{leaky_relu, scaled};
use crate::limits::{self, NetConfig};
use tch::{Tensor, nn};

/// (channels, kernel, stride, padding) of the six conv layers of Table 2.
pub const TABLE2_CONVS: [(i64, i64, i64, i64); 6] = [
    (32, 8, 2, 3),
    (32, 3, 1, 1),
    (64, 4, 2, 1),
    (64, 3, 1, 1),
    (128, 4, 2, 1),
    (128, 4, 2, 1),
];

/// Configuration of D.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DiscriminatorConfig {
    /// Channel multiplier (also applied to the hidden fully connected layer).
    pub width: f64,
    /// Input side in pixels (paper: 128); a multiple of 16.
    pub image_size: i64,
    /// Units of the first fully connected layer (paper: 1000).
    pub fc_hidden: i64,
    /// Leaky ReLU slope.
    pub slope: f64,
}

impl Default for DiscriminatorConfig {
    fn default() -> Self {
        Self {
            width: 1.0,
            image_size: 128,
            fc_hidden: 1000,
            slope: 0.2,
        }
    }
}

impl DiscriminatorConfig {
    /// A small network for CPU tests and smoke runs.
    pub fn tiny(image_size: i64) -> Self {
        Self {
            width: 0.25,
            image_size,
            ..Self::default()
        }
    }

    /// Output channels of the six conv layers.
    pub fn channels(&self) -> [i64; 6] {
        TABLE2_CONVS.map(|(c, ..)| scaled(c, self.width))
    }

    /// Checks every field (see [`crate::limits`]).
    pub fn validate(&self) -> Result<()> {
        self.check(&|f| format!("discriminator: {f}"))
    }
}

impl NetConfig for DiscriminatorConfig {
    fn check(&self, key: &dyn Fn(&str) -> String) -> Result<()> {
        limits::multiple_in_range(
            &key("image_size"),
            self.image_size,
            16,
            limits::IMAGE_SIZE.0,
            limits::IMAGE_SIZE.1,
        )?;
        limits::in_range(&key("width"), self.width, limits::WIDTH.0, limits::WIDTH.1)?;
        limits::in_range(&key("fc_hidden"), self.fc_hidden, 1, 100_000)?;
        limits::in_range(&key("slope"), self.slope, 0.0, 0.999)
    }

    fn state_elements(&self) -> f64 {
        let mut cin = 3;
        let mut n = 0.0;
        for (&(_, k, ..), cout) in TABLE2_CONVS.iter().zip(self.channels()) {
            n += limits::conv_elements(cin, cout, k);
            cin = cout;
        }
        let side = (self.image_size / 16) as f64;
        let hidden = scaled(self.fc_hidden, self.width) as f64;
        n + cin as f64 * side * side * hidden + hidden + hidden + 1.0
    }

    fn activation_elements(&self) -> f64 {
        let mut side = self.image_size as f64;
        let mut n = 0.0;
        for (&(_, _, stride, _), c) in TABLE2_CONVS.iter().zip(self.channels()) {
            side /= stride as f64;
            // conv output, slope·x and the leaky ReLU's maximum.
            n += 3.0 * c as f64 * side * side;
        }
        n + 3.0 * scaled(self.fc_hidden, self.width) as f64
    }
}

/// The discriminator.
#[derive(Debug)]
pub struct Discriminator {
    convs: Vec<nn::Conv2D>,
    fc1: nn::Linear,
    fc2: nn::Linear,
    pub config: DiscriminatorConfig,
}

/// D's output for a batch: one logit per image and the six post-activation conv maps.
#[derive(Debug)]
pub struct DiscriminatorOutput {
    /// `[N]` logits; `sigmoid(logit)` is the probability that the image is from the guided set.
    pub logits: Tensor,
    /// Post-activation maps of conv-1 … conv-6 (`features[l - 1]` is the paper's `D_l`).
    pub features: Vec<Tensor>,
}

/// Builds D under `p`.
pub fn discriminator(p: &nn::Path<'_>, config: &DiscriminatorConfig) -> Discriminator {
    let conv = p / "conv";
    let mut cin = 3;
    let convs = TABLE2_CONVS
        .iter()
        .enumerate()
        .map(|(i, &(c, k, stride, padding))| {
            let cout = scaled(c, config.width);
            let layer = nn::conv2d(
                &conv / i,
                cin,
                cout,
                k,
                nn::ConvConfig {
                    stride,
                    padding,
                    ..Default::default()
                },
            );
            cin = cout;
            layer
        })
        .collect();
    let side = config.image_size / 16;
    let hidden = scaled(config.fc_hidden, config.width);
    Discriminator {
        convs,
        fc1: nn::linear(p / "fc1", cin * side * side, hidden, Default::default()),
        fc2: nn::linear(p / "fc2", hidden, 1, Default::default()),
        config: config.clone(),
    }
}

impl Discriminator {
    /// Logits and all six feature maps of `x` (N×3×S×S in [-1, 1]).
    pub fn forward(&self, x: &Tensor) -> DiscriminatorOutput {
        let slope = self.config.slope;
        let mut features = Vec::with_capacity(self.convs.len());
        let mut h = x.shallow_clone();
        for conv in &self.convs {
            h = leaky_relu(&h.apply(conv), slope);
            features.push(h.shallow_clone());
        }
        let h = leaky_relu(&h.flatten(1, -1).apply(&self.fc1), slope);
        DiscriminatorOutput {
            logits: h.apply(&self.fc2).squeeze_dim(1),
            features,
        }
    }

    /// Logits only.
    pub fn logits(&self, x: &Tensor) -> Tensor {
        self.forward(x).logits
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn table2_activation_sizes() {
        let vs = nn::VarStore::new(Device::Cpu);
        let d = discriminator(&vs.root(), &DiscriminatorConfig::default());
        let x = Tensor::rand([2, 3, 128, 128], (Kind::Float, Device::Cpu)) * 2.0 - 1.0;
        let out = d.forward(&x);
        let sizes: Vec<Vec<i64>> = out.features.iter().map(|f| f.size()).collect();
        assert_eq!(
            sizes,
            [
                [2, 32, 64, 64],
                [2, 32, 64, 64],
                [2, 64, 32, 32],
                [2, 64, 32, 32],
                [2, 128, 16, 16],
                [2, 128, 8, 8]
            ]
        );
        assert_eq!(out.logits.size(), [2]);
        let vars = vs.variables();
        assert_eq!(vars["fc1.weight"].size(), [1000, 128 * 8 * 8]);
        assert_eq!(vars["conv.0.weight"].size(), [32, 3, 8, 8]);
        assert_eq!(vars.len(), 6 * 2 + 4);
    }

    #[test]
    fn features_do_not_depend_on_the_batch() {
        let vs = nn::VarStore::new(Device::Cpu);
        let d = discriminator(&vs.root(), &DiscriminatorConfig::tiny(32));
        let x = Tensor::rand([4, 3, 32, 32], (Kind::Float, Device::Cpu));
        let all = d.forward(&x);
        let one = d.forward(&x.narrow(0, 1, 1));
        let scale = one.features[4].abs().max().double_value(&[]);
        let diff = (all.features[4].narrow(0, 1, 1) - &one.features[4])
            .abs()
            .max()
            .double_value(&[]);
        assert!(diff <= 1e-5 * scale, "{diff} (scale {scale})");
        assert!(
            DiscriminatorConfig {
                image_size: 40,
                ..Default::default()
            }
            .validate()
            .is_err()
        );
    }
}
