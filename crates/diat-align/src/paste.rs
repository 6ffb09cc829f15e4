//! Paste-back: the edited 128×128 crop goes back into the original photo through the inverse of
//! the alignment, blended with a feathered mask, so the output is the whole photo with the face
//! edited (the paper shows edited crops only; a photo tool needs the whole picture).
//!
//! Each photo pixel inside the crop window's footprint is mapped photo → aligned → crop and the
//! edited crop is sampled there (bilinear; averaged over k×k sub-pixel samples where the photo's
//! face is smaller than the crop). The mask is 1 inside the window and falls smoothly
//! (smoothstep) to 0 over its outer `feather` crop pixels; pixels outside the footprint are not
//! touched, so they stay bit-identical.

use crate::error::{AlignError, Result};
use crate::face::AlignedFace;
use crate::similarity::Similarity;
use crate::template::CropWindow;
use crate::warp::{sample_bilinear, supersampling, to_u8};
use image::RgbImage;
use serde::{Deserialize, Serialize};

/// How the edited crop enters the photo.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PasteMode {
    /// The photo takes the (resampled) edited crop.
    Replace,
    /// The photo takes its own pixels plus the (resampled) edit `edited − original crop`: keeps
    /// the photo's full resolution where the model changed nothing. The default (`diat apply
    /// --align`, `diat align --paste-back`).
    #[default]
    Residual,
}

/// Paste-back settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PasteOptions {
    /// Width of the soft edge of the mask, in crop pixels (0: a hard edge).
    pub feather: f64,
    pub mode: PasteMode,
}

impl Default for PasteOptions {
    fn default() -> Self {
        Self {
            feather: 8.0,
            mode: PasteMode::Residual,
        }
    }
}

/// `photo` with `edited` (the face's crop after editing) pasted back, default options.
pub fn paste_back(photo: &RgbImage, face: &AlignedFace, edited: &RgbImage) -> Result<RgbImage> {
    paste_back_with(photo, face, edited, &PasteOptions::default())
}

/// `photo` with `edited` pasted back.
pub fn paste_back_with(
    photo: &RgbImage,
    face: &AlignedFace,
    edited: &RgbImage,
    opts: &PasteOptions,
) -> Result<RgbImage> {
    let mut out = photo.clone();
    paste_into(
        &mut out,
        &face.transform,
        face.window,
        edited,
        Some(&face.crop),
        opts,
    )?;
    Ok(out)
}

/// The mask weight at crop point `c`.
pub fn mask_weight(c: [f64; 2], size: u32, feather: f64) -> f64 {
    let s = size as f64;
    let d = (c[0] + 0.5)
        .min(c[1] + 0.5)
        .min(s - 0.5 - c[0])
        .min(s - 0.5 - c[1]);
    if d <= 0.0 {
        0.0
    } else if feather <= 0.0 || d >= feather {
        1.0
    } else {
        let t = d / feather;
        t * t * (3.0 - 2.0 * t)
    }
}

/// Pastes `edited` into `photo` in place. `transform` maps the photo into the aligned frame,
/// `window` is the crop's window there; `original` (the unedited crop) is needed for
/// [`PasteMode::Residual`].
pub fn paste_into(
    photo: &mut RgbImage,
    transform: &Similarity,
    window: CropWindow,
    edited: &RgbImage,
    original: Option<&RgbImage>,
    opts: &PasteOptions,
) -> Result<()> {
    window.validate().map_err(AlignError::Invalid)?;
    let size = window.size;
    // The edited crop may have any square size (a model's own resolution): crop coordinates are
    // scaled onto it, so a 64 px edit of a 128 px window lands where it belongs.
    let s = edited.width();
    if s == 0 || edited.height() != s {
        return Err(AlignError::Invalid(format!(
            "edited crop is {}x{}, expected a square",
            edited.width(),
            edited.height()
        )));
    }
    let original = match (opts.mode, original) {
        (PasteMode::Residual, None) => {
            return Err(AlignError::Invalid(
                "residual paste-back needs the original crop".into(),
            ));
        }
        // The edit is taken at the edited crop's resolution: the original is brought to that
        // size with the resizer that made the model's input, so where the model changed
        // nothing the edit is exactly zero and the photo keeps its own pixels.
        (PasteMode::Residual, Some(o)) if o.dimensions() == (s, s) => Some(o.clone()),
        (PasteMode::Residual, Some(o)) => Some(crate::resize(o, s, s)?),
        (PasteMode::Replace, _) => None,
    };
    let original = original.as_ref();
    if photo.width() == 0 || photo.height() == 0 {
        return Ok(());
    }
    let to_photo = transform.inverse();
    // The footprint of the window in the photo.
    let corners = [
        [-0.5, -0.5],
        [size as f64 - 0.5, -0.5],
        [-0.5, size as f64 - 0.5],
        [size as f64 - 0.5, size as f64 - 0.5],
    ]
    .map(|c| to_photo.apply(window.to_aligned(c)));
    let lo = |k: usize| corners.iter().map(|p| p[k]).fold(f64::INFINITY, f64::min);
    let hi = |k: usize| {
        corners
            .iter()
            .map(|p| p[k])
            .fold(f64::NEG_INFINITY, f64::max)
    };
    let x0 = lo(0).floor().max(0.0) as u32;
    let y0 = lo(1).floor().max(0.0) as u32;
    let x1 = (hi(0).ceil() + 1.0).min(photo.width() as f64).max(0.0) as u32;
    let y1 = (hi(1).ceil() + 1.0).min(photo.height() as f64).max(0.0) as u32;
    // Crop pixels per photo pixel.
    let crop_scale = transform.scale() * size as f64 / window.width.max(window.height) as f64;
    let k = supersampling(1.0 / crop_scale);
    let to_crop = |p: [f64; 2]| window.to_crop(transform.apply(p));
    // Window pixel coordinates → the edited crop's (pixel centres aligned).
    let r = s as f64 / size as f64;
    let at = |img: &RgbImage, c: [f64; 2]| {
        sample_bilinear(img, (c[0] + 0.5) * r - 0.5, (c[1] + 0.5) * r - 0.5)
    };
    let sample = |img: &RgbImage, x: f64, y: f64| -> [f32; 3] {
        if k == 1 {
            return at(img, to_crop([x, y]));
        }
        let mut acc = [0f32; 3];
        for j in 0..k {
            for i in 0..k {
                let dx = (i as f64 + 0.5) / k as f64 - 0.5;
                let dy = (j as f64 + 0.5) / k as f64 - 0.5;
                let v = at(img, to_crop([x + dx, y + dy]));
                for ch in 0..3 {
                    acc[ch] += v[ch];
                }
            }
        }
        acc.map(|a| a / (k * k) as f32)
    };
    for y in y0..y1 {
        for x in x0..x1 {
            let (px, py) = (x as f64, y as f64);
            let w = mask_weight(to_crop([px, py]), size, opts.feather) as f32;
            if w <= 0.0 {
                continue;
            }
            let e = sample(edited, px, py);
            let pixel = photo.get_pixel_mut(x, y);
            let old = pixel.0.map(|v| v as f32);
            let new = match original {
                None => e,
                Some(o) => {
                    let o = sample(o, px, py);
                    [
                        old[0] + e[0] - o[0],
                        old[1] + e[1] - o[1],
                        old[2] + e[2] - o[2],
                    ]
                }
            };
            pixel.0 = to_u8([
                old[0] + w * (new[0] - old[0]),
                old[1] + w * (new[1] - old[1]),
                old[2] + w * (new[2] - old[2]),
            ]);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mask_profile() {
        assert_eq!(mask_weight([64.0, 64.0], 128, 8.0), 1.0);
        assert_eq!(mask_weight([-0.6, 64.0], 128, 8.0), 0.0);
        assert_eq!(mask_weight([200.0, 64.0], 128, 8.0), 0.0);
        let edge = mask_weight([3.5, 64.0], 128, 8.0);
        assert!((edge - 0.5).abs() < 1e-12, "{edge}");
        assert_eq!(mask_weight([0.0, 64.0], 128, 0.0), 1.0);
    }

    #[test]
    fn wrong_sizes_are_errors() {
        let mut photo = RgbImage::new(50, 50);
        let opts = PasteOptions {
            mode: PasteMode::Replace,
            ..PasteOptions::default()
        };
        let t = Similarity::IDENTITY;
        let w = CropWindow::default();
        assert!(paste_into(&mut photo, &t, w, &RgbImage::new(64, 60), None, &opts).is_err());
        assert!(paste_into(&mut photo, &t, w, &RgbImage::new(64, 64), None, &opts).is_ok());
        let crop = RgbImage::new(128, 128);
        let residual = PasteOptions {
            mode: PasteMode::Residual,
            ..opts
        };
        assert!(paste_into(&mut photo, &t, w, &crop, None, &residual).is_err());
        assert!(paste_into(&mut photo, &t, w, &crop, Some(&crop), &residual).is_ok());
    }

    /// A textured photo and its crop through the identity alignment.
    fn photo_and_crop() -> (RgbImage, Similarity, CropWindow, RgbImage) {
        let photo = RgbImage::from_fn(178, 218, |x, y| {
            image::Rgb([
                (x * 7 + y * 3) as u8,
                ((x ^ y) * 5) as u8,
                ((x * y) % 251) as u8,
            ])
        });
        let w = CropWindow::default();
        let t = Similarity::IDENTITY;
        let crop = crate::crop_aligned(&photo, w).unwrap();
        (photo, t, w, crop)
    }

    #[test]
    fn residual_at_the_models_resolution_changes_only_the_edit() {
        let (photo, t, w, crop) = photo_and_crop();
        let residual = PasteOptions {
            mode: PasteMode::Residual,
            ..PasteOptions::default()
        };
        // A 64 px model that changed nothing: the photo stays bit-identical (its own detail
        // is kept, not replaced by the 64 px rendering of it).
        let model_input = crate::resize(&crop, 64, 64).unwrap();
        let mut out = photo.clone();
        paste_into(&mut out, &t, w, &model_input, Some(&crop), &residual).unwrap();
        assert_eq!(out, photo);
        // Replace mode puts the 64 px rendering back: far more pixels change.
        let mut replaced = photo.clone();
        let replace = PasteOptions {
            mode: PasteMode::Replace,
            ..PasteOptions::default()
        };
        paste_into(&mut replaced, &t, w, &model_input, None, &replace).unwrap();
        let changed = |a: &RgbImage| {
            a.pixels()
                .zip(photo.pixels())
                .filter(|(p, q)| p.0.iter().zip(q.0).any(|(u, v)| u.abs_diff(v) > 2))
                .count()
        };
        assert!(changed(&replaced) > 5000, "{}", changed(&replaced));
        // An edit confined to a block of the model's crop changes only that block's footprint.
        let mut edited = model_input.clone();
        for y in 40..50 {
            for x in 20..44 {
                edited.put_pixel(x, y, image::Rgb([255, 0, 0]));
            }
        }
        let mut out = photo.clone();
        paste_into(&mut out, &t, w, &edited, Some(&crop), &residual).unwrap();
        let n = changed(&out);
        assert!(n > 0);
        for (x, y, p) in out.enumerate_pixels() {
            if p != photo.get_pixel(x, y) {
                let c = w.to_crop(t.apply([x as f64, y as f64]));
                let (mx, my) = ((c[0] + 0.5) / 2.0 - 0.5, (c[1] + 0.5) / 2.0 - 0.5);
                assert!(
                    (18.0..46.0).contains(&mx) && (38.0..52.0).contains(&my),
                    "photo ({x}, {y}) → model ({mx:.1}, {my:.1}) changed"
                );
            }
        }
    }
}
