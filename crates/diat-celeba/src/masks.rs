//! Attribute masks — paper §3.2: "each local attribute is associated with certain landmarks and a
//! convex hull is generated based on these landmarks. By expanding the convex hull with a certain
//! margin, we define the attribute mask m (1 inside, 0 outside)."
//!
//! CelebA has 5 landmarks, so the hull points are derived from them (documented per region below);
//! with a 68-point landmark file (iBUG order) the paper's own definition is used directly.

use serde::{Deserialize, Serialize};

/// The face region a local task edits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Region {
    /// Lips and mouth opening (mouth_open / mouth_close).
    Mouth,
    /// Both eyes with brows and the frame area of glasses (eyeglasses_remove).
    Eyes,
}

/// Geometry of the mask, in units of the face's own distances so it scales with the crop.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaskSpec {
    /// Mouth: corners pushed outwards by this fraction of the eye-to-mouth distance...
    pub mouth_side: f32,
    /// ...and the hull reaches this fraction of it above the mouth line...
    pub mouth_up: f32,
    /// ...and this fraction below it (an open jaw drops the lower lip).
    pub mouth_down: f32,
    /// Eyes: hull reaches this fraction of the inter-ocular distance beyond each eye outwards...
    pub eye_side: f32,
    /// ...this fraction above the eye line (brows, upper frame)...
    pub eye_up: f32,
    /// ...and this fraction below it (lower frame).
    pub eye_down: f32,
    /// Margin the hull is expanded by, as a fraction of the inter-ocular distance.
    pub margin: f32,
}

impl Default for MaskSpec {
    fn default() -> Self {
        Self {
            mouth_side: 0.25,
            mouth_up: 0.35,
            mouth_down: 0.55,
            eye_side: 0.55,
            eye_up: 0.45,
            eye_down: 0.35,
            margin: 0.08,
        }
    }
}

type P = (f32, f32);

fn sub(a: P, b: P) -> P {
    (a.0 - b.0, a.1 - b.1)
}
fn add(a: P, b: P) -> P {
    (a.0 + b.0, a.1 + b.1)
}
fn mul(a: P, s: f32) -> P {
    (a.0 * s, a.1 * s)
}
fn norm(a: P) -> f32 {
    (a.0 * a.0 + a.1 * a.1).sqrt()
}
fn cross(o: P, a: P, b: P) -> f32 {
    (a.0 - o.0) * (b.1 - o.1) - (a.1 - o.1) * (b.0 - o.0)
}

/// Hull points of a region from the 5 CelebA landmarks (x, y pairs in image coordinates), and
/// the margin in pixels.
pub fn region_points_5(lm: &[f32; 10], region: Region, spec: &MaskSpec) -> (Vec<P>, f32) {
    let el = (lm[0], lm[1]);
    let er = (lm[2], lm[3]);
    let ml = (lm[6], lm[7]);
    let mr = (lm[8], lm[9]);
    let eye_mid = mul(add(el, er), 0.5);
    let mouth_mid = mul(add(ml, mr), 0.5);
    let iod = norm(sub(er, el)).max(1.0);
    let margin = spec.margin * iod;
    match region {
        Region::Mouth => {
            let d = norm(sub(mouth_mid, eye_mid)).max(1.0);
            let u = mul(sub(mr, ml), 1.0 / norm(sub(mr, ml)).max(1e-3)); // along the mouth
            let v = mul(sub(mouth_mid, eye_mid), 1.0 / d); // down the face
            let l = sub(ml, mul(u, spec.mouth_side * d));
            let r = add(mr, mul(u, spec.mouth_side * d));
            let pts = vec![
                sub(l, mul(v, spec.mouth_up * d)),
                sub(r, mul(v, spec.mouth_up * d)),
                add(r, mul(v, spec.mouth_down * d)),
                add(l, mul(v, spec.mouth_down * d)),
            ];
            (pts, margin)
        }
        Region::Eyes => {
            let u = mul(sub(er, el), 1.0 / iod);
            let v = (-u.1, u.0); // perpendicular, pointing down in image coordinates
            let l = sub(el, mul(u, spec.eye_side * iod));
            let r = add(er, mul(u, spec.eye_side * iod));
            let pts = vec![
                sub(l, mul(v, spec.eye_up * iod)),
                sub(r, mul(v, spec.eye_up * iod)),
                add(r, mul(v, spec.eye_down * iod)),
                add(l, mul(v, spec.eye_down * iod)),
            ];
            (pts, margin)
        }
    }
}

/// Hull points of a region from 68 iBUG landmarks (136 values, x/y interleaved): the paper's
/// definition. Mouth: points 48–67; eyes: 36–47 with the brows 17–26.
pub fn region_points_68(lm: &[f32], region: Region, spec: &MaskSpec) -> (Vec<P>, f32) {
    let pt = |i: usize| (lm[2 * i], lm[2 * i + 1]);
    let idx: Vec<usize> = match region {
        Region::Mouth => (48..68).collect(),
        Region::Eyes => (17..27).chain(36..48).collect(),
    };
    let el = mul(add(pt(36), pt(39)), 0.5);
    let er = mul(add(pt(42), pt(45)), 0.5);
    let iod = norm(sub(er, el)).max(1.0);
    (idx.into_iter().map(pt).collect(), spec.margin * iod)
}

/// Convex hull (Andrew's monotone chain), counter-clockwise in a y-up sense.
pub fn convex_hull(points: &[P]) -> Vec<P> {
    let mut p: Vec<P> = points
        .iter()
        .copied()
        .filter(|q| q.0.is_finite() && q.1.is_finite())
        .collect();
    p.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    p.dedup();
    if p.len() < 3 {
        return p;
    }
    let mut lower: Vec<P> = Vec::new();
    for &q in &p {
        while lower.len() >= 2 && cross(lower[lower.len() - 2], lower[lower.len() - 1], q) <= 0.0 {
            lower.pop();
        }
        lower.push(q);
    }
    let mut upper: Vec<P> = Vec::new();
    for &q in p.iter().rev() {
        while upper.len() >= 2 && cross(upper[upper.len() - 2], upper[upper.len() - 1], q) <= 0.0 {
            upper.pop();
        }
        upper.push(q);
    }
    lower.pop();
    upper.pop();
    lower.extend(upper);
    lower
}

fn seg_dist(p: P, a: P, b: P) -> f32 {
    let ab = sub(b, a);
    let t = (((p.0 - a.0) * ab.0 + (p.1 - a.1) * ab.1) / (ab.0 * ab.0 + ab.1 * ab.1).max(1e-12))
        .clamp(0.0, 1.0);
    norm(sub(p, add(a, mul(ab, t))))
}

/// Rasterizes the hull of `points` expanded by `margin` pixels into a `size × size` mask
/// (255 inside, 0 outside), testing pixel centres.
pub fn rasterize(points: &[P], margin: f32, size: u32, out: &mut [u8]) {
    let hull = convex_hull(points);
    out.fill(0);
    if hull.is_empty() {
        return;
    }
    let (mut x0, mut y0, mut x1, mut y1) = (f32::MAX, f32::MAX, f32::MIN, f32::MIN);
    for &(x, y) in &hull {
        x0 = x0.min(x);
        y0 = y0.min(y);
        x1 = x1.max(x);
        y1 = y1.max(y);
    }
    let clampi = |v: f32| (v.floor().max(0.0) as u32).min(size);
    let (xa, xb) = (clampi(x0 - margin - 1.0), clampi(x1 + margin + 2.0));
    let (ya, yb) = (clampi(y0 - margin - 1.0), clampi(y1 + margin + 2.0));
    let n = hull.len();
    for y in ya..yb {
        for x in xa..xb {
            let p = (x as f32, y as f32);
            let inside = n >= 3 && (0..n).all(|i| cross(hull[i], hull[(i + 1) % n], p) >= 0.0);
            let near = inside || (0..n).any(|i| seg_dist(p, hull[i], hull[(i + 1) % n]) <= margin);
            if near {
                out[(y * size + x) as usize] = 255;
            }
        }
    }
}

/// The mask of `region` for an image with 5 landmarks in its `size × size` coordinates.
pub fn mask_5(lm: &[f32; 10], region: Region, spec: &MaskSpec, size: u32, out: &mut [u8]) {
    let (pts, margin) = region_points_5(lm, region, spec);
    rasterize(&pts, margin, size, out);
}

/// Parses a 68-point landmark CSV: `image_id,x0,y0,…,x67,y67` in aligned-image coordinates, with
/// an optional header line. Returns id → 136 values.
pub fn read_landmarks_68(
    path: &std::path::Path,
) -> crate::error::Result<std::collections::HashMap<String, Vec<f32>>> {
    use crate::error::Error;
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    if crate::error::looks_like_html(text.as_bytes()) {
        return Err(Error::Html { path: path.into() });
    }
    let mut out = std::collections::HashMap::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || (i == 0 && line.starts_with("image_id")) {
            continue;
        }
        let mut toks = line.split(',').map(str::trim);
        let id = toks.next().unwrap_or_default().to_string();
        let vals: Result<Vec<f32>, _> = toks.map(str::parse::<f32>).collect();
        let vals = vals.map_err(|e| Error::parse(path, i + 1, format!("not a number: {e}")))?;
        if vals.len() != 136 {
            return Err(Error::parse(
                path,
                i + 1,
                format!("expected 136 coordinates, found {}", vals.len()),
            ));
        }
        out.insert(id, vals);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    // CelebA's mean landmarks mapped into the default 128 crop, roughly.
    const LM: [f32; 10] = [49.5, 64.0, 76.8, 64.0, 63.0, 81.0, 51.6, 94.0, 75.2, 94.0];

    #[test]
    fn hull_of_a_square_with_an_inner_point() {
        let h = convex_hull(&[(0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0), (0.5, 0.5)]);
        assert_eq!(h.len(), 4);
    }

    #[test]
    fn mouth_mask_covers_the_mouth_and_not_the_eyes() {
        let mut m = vec![0u8; 128 * 128];
        mask_5(&LM, Region::Mouth, &MaskSpec::default(), 128, &mut m);
        let at = |x: f32, y: f32| m[(y as usize) * 128 + x as usize];
        assert_eq!(at(63.0, 94.0), 255, "mouth centre");
        assert_eq!(at(51.6, 94.0), 255, "mouth corner");
        assert_eq!(at(63.0, 102.0), 255, "below the lower lip");
        assert_eq!(at(49.5, 64.0), 0, "left eye");
        assert_eq!(at(10.0, 94.0), 0, "cheek edge");
        let area = m.iter().filter(|&&v| v == 255).count();
        assert!((300..3000).contains(&area), "area {area}");
    }

    #[test]
    fn eye_mask_covers_both_eyes_and_bridge_not_mouth() {
        let mut m = vec![0u8; 128 * 128];
        mask_5(&LM, Region::Eyes, &MaskSpec::default(), 128, &mut m);
        let at = |x: f32, y: f32| m[(y as usize) * 128 + x as usize];
        for (x, y) in [
            (49.5, 64.0),
            (76.8, 64.0),
            (63.0, 64.0),
            (36.0, 64.0),
            (90.0, 64.0),
        ] {
            assert_eq!(at(x, y), 255, "({x},{y})");
        }
        assert_eq!(at(63.0, 94.0), 0);
    }
}
