//! A model-independent attribute judge: for each drawn attribute, a detector measures the drawn
//! evidence in pixel space at landmark-relative places, with a threshold calibrated on renders.
//!
//! The detectors see only the image and the five landmarks (never the face parameters):
//!
//! * `Eyeglasses`: the frame's bridge — a thin line across the nose between the eyes. Score: the
//!   largest deviation of a row mean from the median row, in a band around the eye line, relative
//!   to the median (frames are drawn in a colour that contrasts with the skin).
//! * `Mouth_Slightly_Open`: the dark mouth cavity between the lips. Score: the mean thickness (in
//!   pixels of the 178×218 frame, per unit of mouth width) of pixels darker than 0.22 × the skin
//!   reference (0.26 × in downscaled frames), in the central part of the mouth.
//! * `Smiling`: the U-shaped mouth line. Score: how much lower the centroid of the darkest structure
//!   (lip line or cavity, per-column adaptive threshold) is at the mouth's centre than towards the
//!   corners, in pixels of the 178×218 frame.
//! * `Male`: long hair (drawn for women) beside the neck. Score: the fraction of sample points
//!   beside the jaw and neck that differ from the background of the same row (image borders).
//! * `Young`: grey hair. Score: one minus the fraction of hair-region sample points (top of the
//!   head, forehead, temples) that are grey (low saturation, not dark) and not background; bald men
//!   keep a grey fringe over the temples.
//!
//! [`Judge::calibrate`] renders counterfactual pairs (so both classes are balanced and identical
//! otherwise), JPEG-compresses them like the dataset, maps them to the evaluation frame and picks
//! each threshold as the midpoint of the best-separating gap.

use crate::attrs::{Attr, FLIPPABLE};
use crate::face::{FaceSpec, HEIGHT, Landmarks, WIDTH, dist, mid};
use crate::image_io::{Img, decode, encode_jpeg};
use crate::layout::Layout;
use crate::render::Renderer;
use rayon::prelude::*;
use serde::Serialize;
use std::path::Path;

/// Where an evaluated image sits relative to the aligned 178×218 frame: image = (aligned - (x0, y0)) · scale.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Frame {
    pub x0: f32,
    pub y0: f32,
    pub scale: f32,
    /// Image size.
    pub w: usize,
    pub h: usize,
    /// When not 0: the image went through `via × via` pixels on its way to `w × h` (a model that
    /// works at a lower resolution, its output resized back up), e.g. 64 for a 64 px model scored
    /// in the 128×128 frame. The judge is calibrated on images that took the same path.
    #[serde(skip_serializing_if = "is_zero")]
    pub via: usize,
}

fn is_zero(v: &usize) -> bool {
    *v == 0
}

impl Frame {
    /// The aligned frame itself.
    pub const FULL: Frame = Frame {
        x0: 0.0,
        y0: 0.0,
        scale: 1.0,
        w: WIDTH,
        h: HEIGHT,
        via: 0,
    };

    /// A square crop of the aligned frame resized to `out × out`.
    pub fn crop(x0: usize, y0: usize, size: usize, out: usize) -> Frame {
        Frame {
            x0: x0 as f32,
            y0: y0 as f32,
            scale: out as f32 / size as f32,
            w: out,
            h: out,
            via: 0,
        }
    }

    /// This frame reached through `px × px` pixels (see [`Frame::via`]); `px` = the frame's own
    /// size means no detour.
    pub fn through(self, px: usize) -> Frame {
        Frame {
            via: if px == self.w && px == self.h { 0 } else { px },
            ..self
        }
    }

    /// Pixels of the smallest version this image went through, per aligned-frame pixel.
    pub fn effective_scale(&self) -> f32 {
        match self.via {
            0 => self.scale,
            via => self.scale * via as f32 / self.w as f32,
        }
    }

    /// This frame without the detour: where the exact references live.
    pub fn direct(self) -> Frame {
        Frame { via: 0, ..self }
    }

    /// The 128×128 training frame: the central 178×178 square (rows 20..198) resized to 128.
    pub fn celeba_128() -> Frame {
        Frame::crop(0, 20, 178, 128)
    }

    /// Whether this is the full aligned frame.
    pub fn is_full(&self) -> bool {
        *self == Frame::FULL
    }

    /// Converts an aligned 178×218 image into this frame (crop + area resize).
    pub fn apply(&self, aligned: &Img) -> Img {
        if self.is_full() {
            return aligned.clone();
        }
        let size = (self.w as f32 / self.scale).round() as usize;
        if self.via == 0 {
            return aligned.crop_resize(self.x0 as usize, self.y0 as usize, size, self.w);
        }
        // Down to the model's side (like the ingestion's crop), back up bilinearly (like
        // `diat apply --out-size`).
        let small = aligned.crop_resize(self.x0 as usize, self.y0 as usize, size, self.via);
        let img = image::RgbImage::from_raw(small.w as u32, small.h as u32, small.data)
            .expect("consistent image size");
        let up = image::imageops::resize(
            &img,
            self.w as u32,
            self.h as u32,
            image::imageops::FilterType::Triangle,
        );
        Img::new(self.w, self.h, up.into_raw())
    }

    /// Aligned coordinates → image coordinates.
    pub fn map(&self, p: (f32, f32)) -> (f32, f32) {
        ((p.0 - self.x0) * self.scale, (p.1 - self.y0) * self.scale)
    }
}

/// Samples an image at aligned-frame coordinates.
struct View<'a> {
    img: &'a Img,
    frame: Frame,
}

impl View<'_> {
    fn at(&self, p: (f32, f32)) -> [f32; 3] {
        let (x, y) = self.frame.map(p);
        self.img.sample(x, y)
    }
    fn luma(&self, p: (f32, f32)) -> f32 {
        let c = self.at(p);
        0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2]
    }
    /// Whether an aligned point falls inside the image.
    fn inside(&self, p: (f32, f32)) -> bool {
        let (x, y) = self.frame.map(p);
        x >= 0.0 && y >= 0.0 && x <= (self.img.w - 1) as f32 && y <= (self.img.h - 1) as f32
    }
}

/// The face frame spanned by the landmarks: eye midpoint, eye axis, its normal, pixel scale.
struct Axes {
    o: (f32, f32),
    ax: (f32, f32),
    ay: (f32, f32),
    iod: f32,
    k: f32,
}

impl Axes {
    fn new(lm: &Landmarks) -> Self {
        let iod = lm.iod().max(1.0);
        let ax = (
            (lm.right_eye.0 - lm.left_eye.0) / iod,
            (lm.right_eye.1 - lm.left_eye.1) / iod,
        );
        Axes {
            o: lm.eye_mid(),
            ax,
            ay: (-ax.1, ax.0),
            iod,
            k: lm.eye_mouth() / 41.0,
        }
    }
    /// Face-frame point (`u` along the eyes, `v` down) in units of the inter-ocular distance.
    fn at(&self, u: f32, v: f32) -> (f32, f32) {
        let (u, v) = (u * self.iod, v * self.iod);
        (
            self.o.0 + u * self.ax.0 + v * self.ay.0,
            self.o.1 + u * self.ax.1 + v * self.ay.1,
        )
    }
}

fn median(v: &mut [f32]) -> f32 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f32::total_cmp);
    v[v.len() / 2]
}

/// Skin reference luma: the nose bridge just below the eye line.
fn skin_ref(view: &View<'_>, a: &Axes) -> f32 {
    let mut v = Vec::with_capacity(25);
    for i in -2..=2 {
        for j in -2..=2 {
            v.push(view.luma(a.at(i as f32 * 0.025, 0.42 + j as f32 * 0.025)));
        }
    }
    median(&mut v).max(0.02)
}

fn glasses_score(view: &View<'_>, a: &Axes) -> f32 {
    let step = 0.5 / a.iod;
    let mut rows = Vec::new();
    let mut v = -0.25;
    while v <= 0.12 {
        let mut acc = 0.0;
        let mut n = 0.0f32;
        let mut u = -0.1;
        while u <= 0.1 {
            acc += view.luma(a.at(u, v));
            n += 1.0;
            u += 1.0 / a.iod;
        }
        rows.push(acc / n);
        v += step;
    }
    let mut sorted = rows.clone();
    let med = median(&mut sorted);
    rows.iter().map(|r| (r - med).abs()).fold(0.0, f32::max) / med.max(0.15)
}

/// Mouth frame: centre, axis, half width.
fn mouth_axes(lm: &Landmarks) -> ((f32, f32), (f32, f32), f32) {
    let w = dist(lm.left_mouth, lm.right_mouth).max(2.0) * 0.5;
    let ax = (
        (lm.right_mouth.0 - lm.left_mouth.0) / (2.0 * w),
        (lm.right_mouth.1 - lm.left_mouth.1) / (2.0 * w),
    );
    (mid(lm.left_mouth, lm.right_mouth), ax, w)
}

fn mouth_open_score(view: &View<'_>, lm: &Landmarks, skin: f32) -> f32 {
    let a = Axes::new(lm);
    let (c, ax, w) = mouth_axes(lm);
    let ay = (-ax.1, ax.0);
    let at = |u: f32, v: f32| (c.0 + u * ax.0 + v * ay.0, c.1 + u * ax.1 + v * ay.1);
    // Downscaling lightens the cavity's edges (and the closed mouth line stays lighter still); at
    // half the 128 frame's resolution or less the cavity is only a few pixels tall.
    let thr = match view.frame.effective_scale() {
        // 0.4: the best calibration accuracy on 400 pairs sent through 64 px (93.8%; 0.34–0.5
        // give 87–93%), chosen on renders only.
        s if s < 0.45 => 0.4,
        s if s < 0.9 => 0.26,
        _ => 0.22,
    } * skin;
    let dv = 0.5 * a.k;
    let mut dark = 0.0f32;
    let mut cols = 0.0f32;
    let mut u = -0.4 * w;
    while u <= 0.4 * w {
        let mut v = -a.k;
        while v <= 13.0 * a.k {
            if view.luma(at(u, v)) < thr {
                dark += dv;
            }
            v += dv;
        }
        cols += 1.0;
        u += a.k;
    }
    dark / cols.max(1.0) / a.k
}

fn smile_score(view: &View<'_>, lm: &Landmarks) -> f32 {
    let a = Axes::new(lm);
    let (c, ax, w) = mouth_axes(lm);
    let ay = (-ax.1, ax.0);
    let at = |u: f32, v: f32| (c.0 + u * ax.0 + v * ay.0, c.1 + u * ax.1 + v * ay.1);
    // Centroid (along the mouth normal) of the darkest structure of a column band: the lip line or
    // the cavity. The threshold adapts to each column (a quarter of the way from its darkest to its
    // brightest pixel), so lips, stubble and shading do not pull it. The window follows the lips'
    // arch (deep at the centre, shallow near the corners), which keeps beards and chins out.
    let centroid = |t: f32| {
        let depth = (2.0 + 9.0 * (1.0 - t * t)) * a.k;
        let mut sw = 0.0;
        let mut sv = 0.0;
        for du in [-0.08f32, 0.0, 0.08] {
            let mut col = Vec::with_capacity(32);
            let mut v = -a.k;
            while v <= depth {
                col.push((v, view.luma(at((t + du) * w, v))));
                v += 0.5 * a.k;
            }
            let lo = col.iter().map(|x| x.1).fold(f32::MAX, f32::min);
            let hi = col.iter().map(|x| x.1).fold(f32::MIN, f32::max);
            let thr = lo + 0.25 * (hi - lo);
            for (v, l) in col {
                let d = (thr - l).max(0.0);
                sw += d;
                sv += d * v;
            }
        }
        if sw > 0.0 { sv / sw } else { 0.0 }
    };
    (centroid(0.0) - 0.5 * (centroid(-0.65) + centroid(0.65))) / a.k
}

/// Per-row background reference: the image borders (aligned x = 2 and 175) of the same row.
fn background_at(view: &View<'_>, y: f32, left: bool) -> [f32; 3] {
    let x = if left { 2.0 } else { (WIDTH - 3) as f32 };
    let p = (x, y);
    if view.inside(p) {
        view.at(p)
    } else {
        // Cropped frames lose the borders: clamp to the visible border of the frame.
        let (lo, hi) = (
            view.frame.x0 + 1.0 / view.frame.scale,
            view.frame.x0 + (view.img.w as f32 - 2.0) / view.frame.scale,
        );
        view.at((if left { lo } else { hi }, y))
    }
}

fn cdist(a: [f32; 3], b: [f32; 3]) -> f32 {
    (0..3).map(|i| (a[i] - b[i]).abs()).fold(0.0, f32::max)
}

fn male_score(view: &View<'_>, lm: &Landmarks) -> f32 {
    let a = Axes::new(lm);
    let em = lm.eye_mouth() / a.iod;
    let mut hair = 0.0f32;
    let mut n = 0.0f32;
    for side in [-1.0f32, 1.0] {
        for du in [1.08f32, 1.13, 1.18] {
            let mut dv = 0.05;
            while dv <= 0.45 {
                let p = a.at(side * du, em + dv);
                if view.inside(p) {
                    let bg = background_at(view, p.1, side < 0.0);
                    if cdist(view.at(p), bg) > 0.12 {
                        hair += 1.0;
                    }
                    n += 1.0;
                }
                dv += 0.08;
            }
        }
    }
    // High score = male (no long hair beside the neck).
    1.0 - hair / n.max(1.0)
}

fn is_grey(c: [f32; 3]) -> bool {
    let mx = c[0].max(c[1]).max(c[2]);
    let mn = c[0].min(c[1]).min(c[2]);
    let luma = 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
    luma > 0.33 && (mx - mn) / mx.max(1e-3) < 0.16
}

fn young_score(view: &View<'_>, lm: &Landmarks) -> f32 {
    let a = Axes::new(lm);
    let mut grey = 0.0f32;
    let mut n = 0.0f32;
    let mut visit = |p: (f32, f32), left: bool| {
        if !view.inside(p) {
            return;
        }
        n += 1.0;
        let c = view.at(p);
        if is_grey(c) && cdist(c, background_at(view, p.1, left)) > 0.1 {
            grey += 1.0;
        }
    };
    // Top of the head and forehead.
    for i in -4..=4 {
        let u = i as f32 * 0.08;
        for v in [-1.45f32, -1.35, -1.25, -0.85, -0.75] {
            visit(a.at(u, v), u < 0.0);
        }
    }
    // Temples, beside the forehead (fringes of bald men, sides of short and long hair).
    for side in [-1.0f32, 1.0] {
        for du in [0.92f32, 0.98, 1.04, 1.1, 1.16, 1.22, 1.28, 1.34] {
            for v in [-0.45f32, -0.35, -0.25, -0.15] {
                visit(a.at(side * du, v), side < 0.0);
            }
        }
    }
    // High score = young: little grey (that is not background) among all sample points.
    1.0 - grey / n.max(1.0)
}

/// The raw detector score of `attr` (higher means present), or `None` for attributes without a
/// detector.
pub fn score(attr: Attr, img: &Img, frame: Frame, lm: &Landmarks) -> Option<f32> {
    let view = View { img, frame };
    let a = Axes::new(lm);
    Some(match attr {
        Attr::Eyeglasses => glasses_score(&view, &a),
        Attr::MouthSlightlyOpen => mouth_open_score(&view, lm, skin_ref(&view, &a)),
        Attr::Smiling => smile_score(&view, lm),
        Attr::Male => male_score(&view, lm),
        Attr::Young => young_score(&view, lm),
        _ => return None,
    })
}

/// A calibrated threshold.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Threshold {
    pub attr: Attr,
    pub threshold: f32,
    /// Accuracy on the calibration renders.
    pub calibration_accuracy: f32,
    pub calibration_pairs: usize,
}

impl Serialize for Attr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// Calibrated detectors for one evaluation frame.
#[derive(Debug, Clone, Serialize)]
pub struct Judge {
    pub frame: Frame,
    pub jpeg_quality: u8,
    pub thresholds: Vec<Threshold>,
}

/// Seed of the calibration renders (fixed, so thresholds are reproducible; disjoint from any
/// dataset seed in practice because calibration uses its own identities).
pub const CALIBRATION_SEED: u64 = 0x0CA1_1B2A_7E00;

/// Renders image `index` of `layout` (or its spec) as the dataset stores it: JPEG at `quality`,
/// decoded back.
pub fn as_stored(r: &mut Renderer, spec: &FaceSpec, quality: u8) -> Img {
    let mut img = Img::new(WIDTH, HEIGHT, vec![0; WIDTH * HEIGHT * 3]);
    r.render_rgb8(spec, &mut img.data);
    let jpg = encode_jpeg(&img, quality).expect("in-memory JPEG encoding of a valid image");
    decode(&jpg, Path::new("<render>")).expect("decoding our own JPEG")
}

impl Judge {
    /// Calibrates all detectors on `pairs` counterfactual pairs per attribute, stored as JPEG at
    /// `quality` and viewed in `frame`.
    pub fn calibrate(frame: Frame, quality: u8, pairs: usize) -> Judge {
        Self::calibrate_only(frame, quality, pairs, &FLIPPABLE)
    }

    /// Like [`Judge::calibrate`], for some attributes only.
    pub fn calibrate_only(frame: Frame, quality: u8, pairs: usize, attrs: &[Attr]) -> Judge {
        let layout = Layout::new(CALIBRATION_SEED, pairs.max(2) as u32, 2);
        let thresholds = attrs
            .iter()
            .filter(|a| a.is_flippable())
            .map(|&attr| {
                let scores: Vec<(f32, bool)> = (0..layout.count)
                    .into_par_iter()
                    .map_init(Renderer::new, |r, i| {
                        let spec = FaceSpec::for_image(&layout, i);
                        let mut out = Vec::with_capacity(2);
                        for on in [false, true] {
                            let s = spec.with(attr, on).expect("flippable");
                            let img = frame.apply(&as_stored(r, &s, quality));
                            let sc = score(attr, &img, frame, &s.landmarks()).expect("detector");
                            out.push((sc, on));
                        }
                        out
                    })
                    .flatten()
                    .collect();
                let (threshold, acc) = best_threshold(&scores);
                Threshold {
                    attr,
                    threshold,
                    calibration_accuracy: acc,
                    calibration_pairs: layout.count as usize,
                }
            })
            .collect();
        Judge {
            frame,
            jpeg_quality: quality,
            thresholds,
        }
    }

    /// The threshold of an attribute.
    pub fn threshold(&self, attr: Attr) -> Option<&Threshold> {
        self.thresholds.iter().find(|t| t.attr == attr)
    }

    /// Whether `attr` is judged present in `img` (in this judge's frame), `None` without a detector.
    pub fn detect(&self, attr: Attr, img: &Img, lm: &Landmarks) -> Option<bool> {
        let t = self.threshold(attr)?;
        Some(score(attr, img, self.frame, lm)? > t.threshold)
    }
}

/// The threshold (midpoint of a gap) with the best accuracy for "score > threshold ⇔ positive".
pub fn best_threshold(scores: &[(f32, bool)]) -> (f32, f32) {
    let mut s: Vec<(f32, bool)> = scores
        .iter()
        .copied()
        .filter(|(v, _)| v.is_finite())
        .collect();
    if s.is_empty() {
        return (0.0, 0.0);
    }
    s.sort_by(|a, b| a.0.total_cmp(&b.0));
    let n = s.len();
    let pos_total = s.iter().filter(|x| x.1).count();
    // Threshold below everything: all predicted positive.
    let mut best = (s[0].0 - 1e-3, pos_total);
    let mut correct = pos_total;
    for i in 0..n {
        // Moving s[i] to the negative side.
        if s[i].1 {
            correct -= 1
        } else {
            correct += 1
        }
        if i + 1 < n && s[i + 1].0 == s[i].0 {
            continue;
        }
        let thr = if i + 1 < n {
            0.5 * (s[i].0 + s[i + 1].0)
        } else {
            s[i].0 + 1e-3
        };
        if correct > best.1 {
            best = (thr, correct);
        }
    }
    (best.0, best.1 as f32 / n as f32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn best_threshold_separates() {
        let s = [(0.1, false), (0.2, false), (0.8, true), (0.9, true)];
        let (t, acc) = best_threshold(&s);
        assert!((t - 0.5).abs() < 1e-6 && acc == 1.0);
        let s = [(0.1, false), (0.85, false), (0.8, true), (0.9, true)];
        assert_eq!(best_threshold(&s).1, 0.75);
    }
}
