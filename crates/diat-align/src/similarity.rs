//! 2-D similarity transforms (rotation, uniform scale, translation; never a reflection) and their
//! least-squares fit to point correspondences — Umeyama's method restricted to proper rotations,
//! which in 2-D has the closed form below.

use crate::error::{AlignError, Result};
use serde::{Deserialize, Serialize};

/// A point `[x, y]` in pixel units.
pub type Point = [f64; 2];

/// `p ↦ [a·x − b·y + tx, b·x + a·y + ty]`: scale `√(a² + b²)`, rotation `atan2(b, a)`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Similarity {
    pub a: f64,
    pub b: f64,
    pub tx: f64,
    pub ty: f64,
}

impl Similarity {
    pub const IDENTITY: Self = Self {
        a: 1.0,
        b: 0.0,
        tx: 0.0,
        ty: 0.0,
    };

    /// Rotation by `angle` radians (counter-clockwise in x-right/y-up axes, i.e. clockwise on
    /// screen), scaling by `scale`, then translation.
    pub fn new(scale: f64, angle: f64, tx: f64, ty: f64) -> Self {
        Self {
            a: scale * angle.cos(),
            b: scale * angle.sin(),
            tx,
            ty,
        }
    }

    /// The least-squares similarity taking `src[i]` to `dst[i]`: minimises
    /// `Σ |dst[i] − T(src[i])|²` over rotations, uniform scales and translations (Umeyama 1991,
    /// without reflection). Needs two or more distinct source points.
    pub fn estimate(src: &[Point], dst: &[Point]) -> Result<Self> {
        if src.len() != dst.len() || src.len() < 2 {
            return Err(AlignError::Invalid(format!(
                "a similarity needs two or more point pairs, got {} and {}",
                src.len(),
                dst.len()
            )));
        }
        if src.iter().chain(dst).flatten().any(|c| !c.is_finite()) {
            return Err(AlignError::Invalid("landmarks are not finite".into()));
        }
        let n = src.len() as f64;
        let mean = |p: &[Point]| {
            let s = p.iter().fold([0.0, 0.0], |s, q| [s[0] + q[0], s[1] + q[1]]);
            [s[0] / n, s[1] / n]
        };
        let (ms, md) = (mean(src), mean(dst));
        let (mut var, mut dot, mut cross) = (0.0, 0.0, 0.0);
        for (s, d) in src.iter().zip(dst) {
            let (sx, sy) = (s[0] - ms[0], s[1] - ms[1]);
            let (dx, dy) = (d[0] - md[0], d[1] - md[1]);
            var += sx * sx + sy * sy;
            dot += sx * dx + sy * dy;
            cross += sx * dy - sy * dx;
        }
        if var < 1e-12 || (dot * dot + cross * cross) < 1e-24 {
            return Err(AlignError::Degenerate);
        }
        let (a, b) = (dot / var, cross / var);
        Ok(Self {
            a,
            b,
            tx: md[0] - (a * ms[0] - b * ms[1]),
            ty: md[1] - (b * ms[0] + a * ms[1]),
        })
    }

    pub fn apply(&self, p: Point) -> Point {
        [
            self.a * p[0] - self.b * p[1] + self.tx,
            self.b * p[0] + self.a * p[1] + self.ty,
        ]
    }

    pub fn scale(&self) -> f64 {
        self.a.hypot(self.b)
    }

    /// Rotation in degrees.
    pub fn rotation_degrees(&self) -> f64 {
        self.b.atan2(self.a).to_degrees()
    }

    pub fn inverse(&self) -> Self {
        let d = self.a * self.a + self.b * self.b;
        let (a, b) = (self.a / d, -self.b / d);
        Self {
            a,
            b,
            tx: -(a * self.tx - b * self.ty),
            ty: -(b * self.tx + a * self.ty),
        }
    }

    /// `self ∘ first`: first `first`, then `self`.
    pub fn after(&self, first: &Self) -> Self {
        Self {
            a: self.a * first.a - self.b * first.b,
            b: self.b * first.a + self.a * first.b,
            tx: self.a * first.tx - self.b * first.ty + self.tx,
            ty: self.b * first.tx + self.a * first.ty + self.ty,
        }
    }

    /// The 2×3 matrix `[[a, −b, tx], [b, a, ty]]` (OpenCV's `warpAffine` layout).
    pub fn matrix(&self) -> [[f64; 3]; 2] {
        [[self.a, -self.b, self.tx], [self.b, self.a, self.ty]]
    }

    /// Root-mean-square residual of the fit `src → dst`.
    pub fn rms_residual(&self, src: &[Point], dst: &[Point]) -> f64 {
        let sum: f64 = src
            .iter()
            .zip(dst)
            .map(|(s, d)| {
                let q = self.apply(*s);
                (q[0] - d[0]).powi(2) + (q[1] - d[1]).powi(2)
            })
            .sum();
        (sum / src.len().max(1) as f64).sqrt()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PTS: [Point; 5] = [
        [30.0, 40.0],
        [70.0, 38.0],
        [52.0, 60.0],
        [35.0, 80.0],
        [68.0, 82.0],
    ];

    #[test]
    fn exact_fit_is_recovered() {
        let t = Similarity::new(1.7, 0.4, -12.0, 33.0);
        let dst: Vec<Point> = PTS.iter().map(|p| t.apply(*p)).collect();
        let e = Similarity::estimate(&PTS, &dst).unwrap();
        for (x, y) in [(e.a, t.a), (e.b, t.b), (e.tx, t.tx), (e.ty, t.ty)] {
            assert!((x - y).abs() < 1e-9, "{e:?} vs {t:?}");
        }
        assert!((e.scale() - 1.7).abs() < 1e-12);
        assert!((e.rotation_degrees() - 0.4f64.to_degrees()).abs() < 1e-9);
        let id = e.inverse().after(&e);
        assert!((id.a - 1.0).abs() < 1e-12 && id.b.abs() < 1e-12 && id.tx.abs() < 1e-9);
        assert!(e.rms_residual(&PTS, &dst) < 1e-9);
    }

    #[test]
    fn never_a_reflection_and_degenerate_input_is_an_error() {
        // Mirrored targets: the best proper similarity is returned (det > 0 by construction).
        let dst: Vec<Point> = PTS.iter().map(|p| [-p[0], p[1]]).collect();
        let e = Similarity::estimate(&PTS, &dst).unwrap();
        assert!(e.a * e.a + e.b * e.b >= 0.0 && e.rms_residual(&PTS, &dst) > 1.0);
        assert!(matches!(
            Similarity::estimate(&[[1.0, 1.0]; 5], &PTS),
            Err(AlignError::Degenerate)
        ));
        assert!(Similarity::estimate(&PTS[..1], &PTS[..1]).is_err());
    }

    #[test]
    fn least_squares_beats_perturbations() {
        let t = Similarity::new(0.8, -0.2, 5.0, 7.0);
        let noise = [0.5, -0.3, 0.2, 0.7, -0.6, 0.1, -0.2, 0.4, 0.3, -0.5];
        let dst: Vec<Point> = PTS
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let q = t.apply(*p);
                [q[0] + noise[2 * i], q[1] + noise[2 * i + 1]]
            })
            .collect();
        let e = Similarity::estimate(&PTS, &dst).unwrap();
        let best = e.rms_residual(&PTS, &dst);
        for d in [
            [1e-3, 0.0, 0.0, 0.0],
            [0.0, 1e-3, 0.0, 0.0],
            [0.0, 0.0, 1e-2, 0.0],
            [0.0, 0.0, 0.0, -1e-2],
        ] {
            let p = Similarity {
                a: e.a + d[0],
                b: e.b + d[1],
                tx: e.tx + d[2],
                ty: e.ty + d[3],
            };
            assert!(p.rms_residual(&PTS, &dst) > best);
        }
    }
}
