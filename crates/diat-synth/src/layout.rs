//! Which image belongs to which identity and split, and the random streams every face is drawn from.
//!
//! Image `i` (0-based; file `{i+1:06}.jpg`) belongs to identity `i / per_identity` (written 1-based in
//! `identity_CelebA.txt`). Identities are split like CelebA's official partition, in contiguous
//! blocks (train, then validation, then test) in roughly its 81/10/9 proportions, so every identity is
//! in exactly one split and test identities are never seen in training. Everything about a face is a
//! pure function of `(seed, identity)` and `(seed, image index)`, so any single image or its
//! counterfactual twin can be re-rendered alone.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// CelebA's official split sizes: 162,770 / 19,867 / 19,962 of 202,599.
pub const CELEBA_SPLIT: [f64; 3] = [
    162_770.0 / 202_599.0,
    19_867.0 / 202_599.0,
    19_962.0 / 202_599.0,
];

/// The evaluation partition of `Eval/list_eval_partition.txt`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Partition {
    Train = 0,
    Val = 1,
    Test = 2,
}

/// The shape of a synthetic dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layout {
    /// Master seed.
    pub seed: u64,
    /// Number of images.
    pub count: u32,
    /// Images per identity (the last identity may have fewer).
    pub per_identity: u32,
}

impl Layout {
    /// A layout; `count` and `per_identity` must be at least 1 (see [`Layout::validate`]).
    pub fn new(seed: u64, count: u32, per_identity: u32) -> Self {
        Self {
            seed,
            count,
            per_identity,
        }
    }

    /// Checks the sizes.
    pub fn validate(&self) -> Result<(), crate::Error> {
        if self.count == 0 {
            return Err(crate::Error::Invalid(
                "image count must be at least 1".into(),
            ));
        }
        if self.per_identity == 0 {
            return Err(crate::Error::Invalid(
                "images per identity must be at least 1".into(),
            ));
        }
        if self.count > 999_999 {
            return Err(crate::Error::Invalid(format!(
                "image count {} does not fit CelebA's 6-digit file names (max 999999)",
                self.count
            )));
        }
        Ok(())
    }

    /// Number of identities.
    pub fn identities(&self) -> u32 {
        self.count.div_ceil(self.per_identity.max(1))
    }

    /// Identity (0-based) of image `index` (0-based).
    pub fn identity_of(&self, index: u32) -> u32 {
        index / self.per_identity.max(1)
    }

    /// First identity of the validation and of the test split. With 3 or more identities each split
    /// has at least one.
    pub fn split_points(&self) -> (u32, u32) {
        let n = self.identities();
        if n < 3 {
            return (n, n);
        }
        let test = ((n as f64 * CELEBA_SPLIT[2]).round() as u32).max(1);
        let val = ((n as f64 * CELEBA_SPLIT[1]).round() as u32).max(1);
        let train = n - test - val;
        let (train, val) = if train == 0 {
            (1, val - 1)
        } else {
            (train, val)
        };
        (train, train + val)
    }

    /// Split of an identity.
    pub fn partition_of_identity(&self, identity: u32) -> Partition {
        let (v, t) = self.split_points();
        if identity < v {
            Partition::Train
        } else if identity < t {
            Partition::Val
        } else {
            Partition::Test
        }
    }

    /// Split of an image.
    pub fn partition_of(&self, index: u32) -> Partition {
        self.partition_of_identity(self.identity_of(index))
    }

    /// Image indices of one split, in order.
    pub fn indices_in(&self, p: Partition) -> std::ops::Range<u32> {
        let (v, t) = self.split_points();
        let per = self.per_identity.max(1);
        let (a, b) = match p {
            Partition::Train => (0, v),
            Partition::Val => (v, t),
            Partition::Test => (t, self.identities()),
        };
        a.saturating_mul(per).min(self.count)..b.saturating_mul(per).min(self.count)
    }
}

/// CelebA-style file name of image `index` (0-based): `000001.jpg`.
pub fn file_name(index: u32) -> String {
    format!("{:06}.jpg", index + 1)
}

/// Parses `000123.jpg` / `000123.png` / `000123` back to the 0-based index.
pub fn parse_file_name(name: &str) -> Option<u32> {
    let stem = name.rsplit_once('.').map(|(s, _)| s).unwrap_or(name);
    if stem.is_empty() || stem.len() > 9 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    stem.parse::<u32>().ok().and_then(|n| n.checked_sub(1))
}

/// Independent random streams.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Stream {
    Identity = 1,
    Image = 2,
}

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The generator of one stream item: a pure function of `(seed, stream, index)`.
pub(crate) fn rng(seed: u64, stream: Stream, index: u32) -> ChaCha8Rng {
    let k =
        splitmix(splitmix(seed ^ 0x6469_6174_7379_6e74) ^ ((stream as u64) << 40) ^ index as u64);
    ChaCha8Rng::seed_from_u64(k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_are_per_identity_and_close_to_celeba() {
        let l = Layout::new(1, 10_000, 10);
        let mut counts = [0u32; 3];
        for i in 0..l.count {
            counts[l.partition_of(i) as usize] += 1;
            assert_eq!(l.partition_of(i), l.partition_of_identity(l.identity_of(i)));
        }
        assert_eq!(counts.iter().sum::<u32>(), 10_000);
        assert!(
            (counts[0] as f64 / 10_000.0 - 0.803).abs() < 0.01,
            "{counts:?}"
        );
        assert!(
            (counts[2] as f64 / 10_000.0 - 0.0985).abs() < 0.01,
            "{counts:?}"
        );
        let test: Vec<u32> = l.indices_in(Partition::Test).collect();
        assert_eq!(test.len() as u32, counts[2]);
        assert!(test.iter().all(|&i| l.partition_of(i) == Partition::Test));
        // Tiny layouts still have all three splits.
        let t = Layout::new(1, 7, 2);
        let parts: Vec<_> = (0..7).map(|i| t.partition_of(i)).collect();
        for p in [Partition::Train, Partition::Val, Partition::Test] {
            assert!(parts.contains(&p), "{parts:?}");
        }
    }

    #[test]
    fn file_names() {
        assert_eq!(file_name(0), "000001.jpg");
        assert_eq!(parse_file_name("000001.jpg"), Some(0));
        assert_eq!(parse_file_name("000120.png"), Some(119));
        assert_eq!(parse_file_name("abc.png"), None);
        assert_eq!(parse_file_name("000000.png"), None);
    }
}
