//! Train / validation / test division of real faces by identity. diat's real faces
//! (`shared/celeba-real`) all come from CelebA's official test split, so any division of them must
//! be made anew, and by identity, so that no person is seen both in training and in evaluation.
//!
//! [`identity_split`] hashes the identity with a seed (SplitMix64) into [0, 1) and cuts it at
//! 0.8 and 0.9: about 80 / 10 / 10 % of the identities. A hash, not a shuffled list, so an identity's
//! side never depends on which other faces a dataset holds: the classifier of `diat eval real`
//! and the real-face training sets use the same rule with the same [`DEFAULT_SEED`], and a face
//! held out from one is held out from the other.

/// The seed every diat real-face division uses unless told otherwise.
pub const DEFAULT_SEED: u64 = 2017;

pub use crate::dataset::Split;

/// SplitMix64's output function of `z` (Steele, Lea, Flood 2014): a well-mixed 64-bit hash.
pub fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The side of CelebA identity `identity` under `seed` (80 / 10 / 10 % of identities).
pub fn identity_split(identity: u32, seed: u64) -> Split {
    let h = splitmix64(splitmix64(seed) ^ u64::from(identity));
    let u = (h >> 11) as f64 / (1u64 << 53) as f64;
    if u < 0.8 {
        Split::Train
    } else if u < 0.9 {
        Split::Val
    } else {
        Split::Test
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proportions_and_stability() {
        let mut n = [0usize; 3];
        for id in 1..=10_177 {
            n[identity_split(id, DEFAULT_SEED).partition_code() as usize] += 1;
        }
        let share = |k: usize| n[k] as f64 / 10_177.0;
        assert!((share(0) - 0.8).abs() < 0.02, "{n:?}");
        assert!((share(1) - 0.1).abs() < 0.015, "{n:?}");
        assert!((share(2) - 0.1).abs() < 0.015, "{n:?}");
        // Fixed values: changing the rule changes every held-out set, so it is pinned.
        let first: Vec<u8> = (1..=12)
            .map(|i| identity_split(i, DEFAULT_SEED).partition_code())
            .collect();
        assert_eq!(first, PINNED);
        assert_ne!(
            (1..=200).map(|i| identity_split(i, 1)).collect::<Vec<_>>(),
            (1..=200)
                .map(|i| identity_split(i, DEFAULT_SEED))
                .collect::<Vec<_>>()
        );
    }

    const PINNED: [u8; 12] = [0, 2, 0, 0, 0, 0, 0, 2, 0, 0, 1, 0];
}
