//! Differentiable augmentation of D's inputs (Zhao, Liu, Lin, Zhu, Han 2020, "Differentiable
//! Augmentation for Data-Efficient GAN Training"; not in the DIAT paper).
//!
//! With a few thousand guided faces per task, D learns to tell real from transformed by
//! high-frequency details, and T answers with a speckled texture that fools it (measured on real
//! faces: docs/networks.md). DiffAugment shows D only randomly augmented images — real ones and
//! T's alike, through the same differentiable operations, so T's gradient passes through them:
//! `color` (brightness ±0.5, saturation ×[0, 2], contrast ×[0.5, 1.5]), `translation` (±1/8 of the
//! side, zero fill) and `cutout` (a zeroed square of half the side). The operations follow the
//! authors' PyTorch code (`DiffAugment_pytorch.py`) for images in [-1, 1].
//!
//! [`Augmentation::sample`] draws one set of parameters per image (from torch's generator, so a
//! seeded run repeats them); [`Augmentation::apply`] applies them, so two batches can share them:
//! T's step augments `T(x)` and `x` alike, and Eq. (13)'s identity term still compares an image
//! with its own transform.

use tch::{Device, Kind, Tensor};

/// Which augmentations D's inputs get (none: the paper). Written in configs as the string
/// [`Policy::parse`] reads (`"color,translation,cutout"`), checked when the config is read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Policy {
    pub color: bool,
    pub translation: bool,
    pub cutout: bool,
}

impl Policy {
    /// All three (the authors' setting for small data).
    pub const ALL: Policy = Policy {
        color: true,
        translation: true,
        cutout: true,
    };

    /// Parses `"color,translation,cutout"` (any subset, comma-separated; `""` or `"none"` for none).
    pub fn parse(s: &str) -> Result<Policy, String> {
        let mut p = Policy::default();
        for part in s.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            match part {
                "none" => {}
                "color" => p.color = true,
                "translation" => p.translation = true,
                "cutout" => p.cutout = true,
                other => {
                    return Err(format!(
                        "unknown augmentation '{other}' (known: color, translation, cutout, none)"
                    ));
                }
            }
        }
        Ok(p)
    }

    /// Whether any augmentation is on.
    pub fn any(&self) -> bool {
        self.color || self.translation || self.cutout
    }
}

impl TryFrom<String> for Policy {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Policy::parse(&s)
    }
}

impl From<Policy> for String {
    fn from(p: Policy) -> String {
        [
            (p.color, "color"),
            (p.translation, "translation"),
            (p.cutout, "cutout"),
        ]
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, name)| *name)
        .collect::<Vec<_>>()
        .join(",")
    }
}

/// One draw of augmentation parameters for a batch of `n` images of side `h`×`w`.
#[derive(Debug)]
pub struct Augmentation {
    policy: Policy,
    /// Per image, shaped N×1×1×1.
    brightness: Tensor,
    saturation: Tensor,
    contrast: Tensor,
    /// Per image, shaped N×1×1 (rows, columns).
    shift: (Tensor, Tensor),
    /// Zero-one mask N×1×H×W.
    cutout: Option<Tensor>,
}

fn uniform(n: i64, lo: f64, hi: f64, device: Device) -> Tensor {
    Tensor::rand([n, 1, 1, 1], (Kind::Float, device)) * (hi - lo) + lo
}

fn randint(lo: i64, hi_exclusive: i64, n: i64, device: Device) -> Tensor {
    Tensor::randint_low(lo, hi_exclusive, [n, 1, 1], (Kind::Int64, device))
}

/// Index grids `(batch, rows, cols)` of shape N×H×W.
fn grids(n: i64, h: i64, w: i64, device: Device) -> (Tensor, Tensor, Tensor) {
    let opts = (Kind::Int64, device);
    let g = Tensor::meshgrid_indexing(
        &[
            Tensor::arange(n, opts),
            Tensor::arange(h, opts),
            Tensor::arange(w, opts),
        ],
        "ij",
    );
    (
        g[0].shallow_clone(),
        g[1].shallow_clone(),
        g[2].shallow_clone(),
    )
}

impl Augmentation {
    /// Draws parameters for `n` images of side `h`×`w` under `policy`.
    pub fn sample(policy: Policy, n: i64, h: i64, w: i64, device: Device) -> Self {
        let (brightness, saturation, contrast) = if policy.color {
            (
                uniform(n, -0.5, 0.5, device),
                uniform(n, 0.0, 2.0, device),
                uniform(n, 0.5, 1.5, device),
            )
        } else {
            let z = Tensor::zeros([n, 1, 1, 1], (Kind::Float, device));
            (z.shallow_clone(), z.ones_like(), z.ones_like())
        };
        let shift = if policy.translation {
            let (sh, sw) = (
                (h as f64 * 0.125 + 0.5) as i64,
                (w as f64 * 0.125 + 0.5) as i64,
            );
            (
                randint(-sh, sh + 1, n, device),
                randint(-sw, sw + 1, n, device),
            )
        } else {
            let z = Tensor::zeros([n, 1, 1], (Kind::Int64, device));
            (z.shallow_clone(), z)
        };
        let cutout = policy.cutout.then(|| {
            let (ch, cw) = ((h as f64 * 0.5 + 0.5) as i64, (w as f64 * 0.5 + 0.5) as i64);
            let oy = randint(0, h + (1 - ch % 2), n, device);
            let ox = randint(0, w + (1 - cw % 2), n, device);
            let (gb, gy, gx) = grids(n, ch, cw, device);
            let gy = (gy + oy - ch / 2).clamp(0, h - 1);
            let gx = (gx + ox - cw / 2).clamp(0, w - 1);
            let mut mask = Tensor::ones([n, h, w], (Kind::Float, device));
            let _ = mask.index_put_(
                &[Some(gb), Some(gy), Some(gx)],
                &Tensor::zeros([], (Kind::Float, device)),
                false,
            );
            mask.unsqueeze(1)
        });
        Augmentation {
            policy,
            brightness,
            saturation,
            contrast,
            shift,
            cutout,
        }
    }

    /// Applies the drawn parameters to `x` (N×C×H×W, the `n`, `h`, `w` of [`Self::sample`]);
    /// differentiable in `x`. The result is in `x`'s kind.
    pub fn apply(&self, x: &Tensor) -> Tensor {
        let kind = x.kind();
        let mut y = x.shallow_clone();
        if self.policy.color {
            let k = |t: &Tensor| t.to_kind(kind);
            y = &y + k(&self.brightness);
            let mean = y.mean_dim(1, true, kind);
            y = (&y - &mean) * k(&self.saturation) + &mean;
            let mean = y.mean_dim([1i64, 2, 3].as_slice(), true, kind);
            y = (&y - &mean) * k(&self.contrast) + &mean;
        }
        if self.policy.translation {
            let s = y.size();
            let (n, h, w) = (s[0], s[2], s[3]);
            let (gb, gy, gx) = grids(n, h, w, y.device());
            let gy = (gy + &self.shift.0 + 1).clamp(0, h + 1);
            let gx = (gx + &self.shift.1 + 1).clamp(0, w + 1);
            let padded = y.constant_pad_nd([1i64, 1, 1, 1].as_slice());
            y = padded
                .permute([0, 2, 3, 1])
                .index(&[Some(gb), Some(gy), Some(gx)])
                .permute([0, 3, 1, 2]);
        }
        if let Some(mask) = &self.cutout {
            y = y.multiply(&mask.to_kind(kind));
        }
        y
    }
}

/// `policy` applied to `x` with freshly drawn parameters.
pub fn diff_augment(policy: Policy, x: &Tensor) -> Tensor {
    if !policy.any() {
        return x.shallow_clone();
    }
    let s = x.size();
    Augmentation::sample(policy, s[0], s[2], s[3], x.device()).apply(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_parse_and_none_is_the_identity() {
        assert_eq!(
            Policy::parse("color,translation,cutout").unwrap(),
            Policy::ALL
        );
        assert_eq!(Policy::parse("none").unwrap(), Policy::default());
        assert!(Policy::parse("flip").unwrap_err().contains("flip"));
        // Configs hold the policy as that string, both ways.
        let all: String = Policy::ALL.into();
        assert_eq!(all, "color,translation,cutout");
        assert_eq!(Policy::try_from(all).unwrap(), Policy::ALL);
        let x = Tensor::rand([2, 3, 8, 8], (Kind::Float, Device::Cpu));
        assert!(diff_augment(Policy::default(), &x).equal(&x));
    }

    #[test]
    fn translation_moves_pixels_and_fills_with_zero() {
        tch::manual_seed(1);
        let p = Policy {
            translation: true,
            ..Default::default()
        };
        let x = Tensor::arange(64, (Kind::Float, Device::Cpu)).view([1, 1, 8, 8]) + 1.0;
        let mut a = Augmentation::sample(p, 1, 8, 8, Device::Cpu);
        a.shift = (
            Tensor::from_slice(&[1i64]).view([1, 1, 1]),
            Tensor::from_slice(&[-1i64]).view([1, 1, 1]),
        );
        let y = a.apply(&x);
        // y[r][c] = x[r + 1][c − 1], zero outside.
        assert_eq!(y.double_value(&[0, 0, 0, 1]), x.double_value(&[0, 0, 1, 0]));
        assert_eq!(y.double_value(&[0, 0, 7, 3]), 0.0);
        assert_eq!(y.double_value(&[0, 0, 3, 0]), 0.0);
    }

    #[test]
    fn shared_parameters_give_the_same_transform_and_gradients_flow() {
        tch::manual_seed(2);
        let x = Tensor::rand([3, 3, 16, 16], (Kind::Float, Device::Cpu)).set_requires_grad(true);
        let a = Augmentation::sample(Policy::ALL, 3, 16, 16, Device::Cpu);
        let (y1, y2) = (a.apply(&x), a.apply(&x));
        assert!(y1.equal(&y2));
        // Cutout zeroes a square of half the side (clipped at the border).
        let zeros = y1.eq(0.0).sum(Kind::Int64).int64_value(&[]);
        assert!(zeros >= 3 * 3 * 16, "{zeros}");
        y1.sum(Kind::Float).backward();
        assert!(x.grad().abs().sum(Kind::Float).double_value(&[]) > 0.0);
    }
}
