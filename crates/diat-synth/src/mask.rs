//! Attribute masks in the aligned 178×218 frame (paper §3.2): the convex hull of the attribute's
//! landmarks, expanded by a margin.
//!
//! With CelebA's five landmarks the hulls are segments, so each mask is a *stadium* (the set of
//! points within distance `r` of a segment, i.e. the hull expanded by the margin `r`):
//!
//! * mouth (`Mouth_Slightly_Open`, `Smiling`): the segment between the two mouth corners, expanded by
//!   [`MOUTH_MARGIN`] × the eye-to-mouth distance (eye midpoint to mouth midpoint);
//! * eyes (`Eyeglasses`): the segment between the two eye centres, expanded by [`EYE_MARGIN`] × the
//!   eye-to-mouth distance (covers both eyes, the brows and the glasses' frame and hinges).
//!
//! A pixel `(x, y)` (sampled at its integer coordinates, like the landmarks) is inside when its
//! distance to the segment is at most `r`. Global attributes (`Male`, `Young`) have no mask. The
//! renderer clips every mask-attribute layer to this region, so a local counterfactual changes no
//! pixel outside it.

use crate::attrs::Attr;
use crate::face::Landmarks;
use crate::raster::Capsule;
use serde::Serialize;

/// Mouth margin as a fraction of the eye-to-mouth distance.
pub const MOUTH_MARGIN: f32 = 0.55;
/// Eye-region margin as a fraction of the eye-to-mouth distance.
pub const EYE_MARGIN: f32 = 0.5;

/// A stadium-shaped region: points within `r` of the segment `a`–`b`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Stadium {
    pub a: (f32, f32),
    pub b: (f32, f32),
    pub r: f32,
}

impl Stadium {
    /// Whether pixel `(x, y)` is inside.
    pub fn contains(&self, x: f32, y: f32) -> bool {
        self.capsule().seg_dist(x, y) <= self.r
    }

    /// The same region as a raster shape (distance to the boundary).
    pub fn capsule(&self) -> Capsule {
        Capsule::new(self.a, self.b, self.r)
    }

    /// Maps through a crop + resize: image = (aligned - o) · s (uniform scale `s`).
    pub fn map(&self, ox: f32, oy: f32, s: f32) -> Self {
        Self {
            a: ((self.a.0 - ox) * s, (self.a.1 - oy) * s),
            b: ((self.b.0 - ox) * s, (self.b.1 - oy) * s),
            r: self.r * s,
        }
    }

    /// Row-major `w × h` bitmap (true inside).
    pub fn bitmap(&self, w: usize, h: usize) -> Vec<bool> {
        let mut out = Vec::with_capacity(w * h);
        for y in 0..h {
            for x in 0..w {
                out.push(self.contains(x as f32, y as f32));
            }
        }
        out
    }
}

/// The mouth mask.
pub fn mouth_mask(lm: &Landmarks) -> Stadium {
    Stadium {
        a: lm.left_mouth,
        b: lm.right_mouth,
        r: MOUTH_MARGIN * lm.eye_mouth(),
    }
}

/// The eye-region mask.
pub fn eye_mask(lm: &Landmarks) -> Stadium {
    Stadium {
        a: lm.left_eye,
        b: lm.right_eye,
        r: EYE_MARGIN * lm.eye_mouth(),
    }
}

/// The mask of a local attribute; `None` for global ones (no unchanged region is defined).
pub fn attribute_mask(attr: Attr, lm: &Landmarks) -> Option<Stadium> {
    match attr {
        Attr::Eyeglasses => Some(eye_mask(lm)),
        Attr::MouthSlightlyOpen | Attr::Smiling => Some(mouth_mask(lm)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_cover_the_features_at_celeba_means() {
        let lm = Landmarks::from_row([69, 111, 108, 111, 89, 135, 71, 152, 105, 152]);
        let m = mouth_mask(&lm);
        assert!(m.contains(88.0, 152.0) && m.contains(88.0, 170.0) && !m.contains(88.0, 190.0));
        assert!(!m.contains(69.0, 111.0));
        let e = eye_mask(&lm);
        assert!(e.contains(69.0, 111.0) && e.contains(88.0, 100.0) && !e.contains(88.0, 152.0));
        assert!(attribute_mask(Attr::Male, &lm).is_none());
        let bm = m.bitmap(178, 218);
        assert!(bm[152 * 178 + 88] && !bm[0]);
    }
}
