//! The attribute classifier of `diat eval real`: did the edit change the attribute? A small CNN
//! over the aligned training crop (the central 178×178 window of CelebA's aligned image, resized to
//! `image_size`, inputs in [-1, 1] like the DIAT networks'), one logit per attribute. It plays the
//! role of AttGAN's and STGAN's attribute classifier (their 13-attribute classifier is 94.5 %
//! accurate on CelebA); diat trains it itself (`diat classifier train`) on real faces split by
//! identity, so it never saw the faces a transform is scored on.
//!
//! Architecture (PyTorch names; `scripts/reference/classifier_reference.py` holds the module):
//!
//! ```text
//! features.0  conv 3×3/1  3 → w    + BN + ReLU   S
//! features.1  conv 3×3/2  w → 2w   + BN + ReLU   S/2
//! features.2  conv 3×3/1 2w → 2w   + BN + ReLU
//! features.3  conv 3×3/2 2w → 4w   + BN + ReLU   S/4
//! features.4  conv 3×3/1 4w → 4w   + BN + ReLU
//! features.5  conv 3×3/2 4w → 8w   + BN + ReLU   S/8
//! features.6  conv 3×3/1 8w → 8w   + BN + ReLU
//! global average pool → dropout → head (8w → attributes)
//! ```
//!
//! with `features.K.conv.{weight,bias}` and `features.K.bn.{weight,bias,running_mean,running_var,
//! num_batches_tracked}`, `head.{weight,bias}`.

use crate::error::{NetsError, Result};
use crate::layers::{ConvBn, conv_bn};
use serde::{Deserialize, Serialize};
use tch::{Tensor, nn};

/// The architecture name in checkpoints (`diat.architecture`).
pub const ARCHITECTURE: &str = "attr_classifier";

/// Classifier settings, stored in the checkpoint's `diat.config`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AttrClassifierConfig {
    /// Side of the square input crop (a multiple of 8).
    pub image_size: i64,
    /// Channels of the first layer (`w` above).
    pub width: i64,
    /// CelebA attribute names, one logit each, in this order.
    pub attributes: Vec<String>,
    /// Dropout before the head (training only).
    pub dropout: f64,
}

impl Default for AttrClassifierConfig {
    fn default() -> Self {
        Self {
            image_size: 64,
            width: 32,
            attributes: [
                "Eyeglasses",
                "Mouth_Slightly_Open",
                "Smiling",
                "Male",
                "Young",
            ]
            .map(String::from)
            .to_vec(),
            dropout: 0.2,
        }
    }
}

impl AttrClassifierConfig {
    /// Rejects sizes the network cannot be built or run with.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(NetsError::Config(format!("attribute classifier: {m}")));
        if !(16..=512).contains(&self.image_size) || self.image_size % 8 != 0 {
            return bad(format!(
                "image_size {} must be a multiple of 8 in 16..=512",
                self.image_size
            ));
        }
        if !(1..=256).contains(&self.width) {
            return bad(format!("width {} must be in 1..=256", self.width));
        }
        if self.attributes.is_empty() {
            return bad("no attributes".into());
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return bad(format!("dropout {} must be in [0, 1)", self.dropout));
        }
        Ok(())
    }

    /// Index of `name` among the outputs.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.attributes.iter().position(|a| a == name)
    }
}

/// The network.
#[derive(Debug)]
pub struct AttrClassifier {
    features: Vec<ConvBn>,
    head: nn::Linear,
    pub config: AttrClassifierConfig,
}

/// Builds the classifier under `p` (call [`AttrClassifierConfig::validate`] first).
pub fn attr_classifier(p: &nn::Path<'_>, config: &AttrClassifierConfig) -> AttrClassifier {
    let w = config.width;
    let layers = [
        (3, w, 1),
        (w, 2 * w, 2),
        (2 * w, 2 * w, 1),
        (2 * w, 4 * w, 2),
        (4 * w, 4 * w, 1),
        (4 * w, 8 * w, 2),
        (8 * w, 8 * w, 1),
    ];
    let f = p / "features";
    AttrClassifier {
        features: layers
            .iter()
            .enumerate()
            .map(|(i, &(cin, cout, s))| conv_bn(&(&f / i), cin, cout, 3, s, 1))
            .collect(),
        head: nn::linear(
            p / "head",
            8 * w,
            config.attributes.len() as i64,
            Default::default(),
        ),
        config: config.clone(),
    }
}

impl AttrClassifier {
    /// `x`: `[N, 3, S, S]` in [-1, 1]. Returns the logits `[N, attributes]`.
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let x = self
            .features
            .iter()
            .fold(x.shallow_clone(), |x, l| l.forward_t(&x, train).relu());
        x.mean_dim([2i64, 3].as_slice(), false, x.kind())
            .dropout(self.config.dropout, train)
            .apply(&self.head)
    }

    /// Probabilities (sigmoid of the logits), inference mode, no gradient.
    pub fn probabilities(&self, x: &Tensor) -> Tensor {
        tch::no_grad(|| self.forward_t(x, false).sigmoid())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn shapes_names_and_validation() {
        let c = AttrClassifierConfig::default();
        c.validate().unwrap();
        let vs = nn::VarStore::new(Device::Cpu);
        let net = attr_classifier(&vs.root(), &c);
        let y = net.forward_t(
            &Tensor::zeros([3, 3, 64, 64], (Kind::Float, Device::Cpu)),
            false,
        );
        assert_eq!(y.size(), [3, 5]);
        let vars = vs.variables();
        assert!(vars.contains_key("features.6.bn.running_var"));
        assert!(vars.contains_key("head.weight"));
        assert_eq!(vars.len(), 7 * 7 + 2);
        for bad in [
            AttrClassifierConfig {
                image_size: 30,
                ..c.clone()
            },
            AttrClassifierConfig {
                width: 0,
                ..c.clone()
            },
            AttrClassifierConfig {
                attributes: vec![],
                ..c.clone()
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
        assert_eq!(c.index_of("Male"), Some(3));
    }
}
