//! Alignment and paste-back (paper §5.4) on real aligned CelebA images (`shared/celeba`,
//! `$DIAT_CELEBA_SAMPLES` overrides): a "photo" is made by rotating, scaling and moving an aligned
//! image into a larger canvas with a known similarity S; the tests check that
//!
//! - aligning the photo with the landmarks S(template) recovers the original 128×128 crop
//!   (PSNR ≥ 30 dB when enlarged, ≥ 26 dB when shrunk; the remainder is the two bilinear
//!   resamplings), and with S(official landmarks) gives the same crop as aligning the original
//!   with its official landmarks (PSNR ≥ 30 dB);
//! - pasting back an unedited crop leaves every pixel outside the crop's footprint bit-identical
//!   and reproduces the face region to resampling accuracy (photo → 128×128 crop → photo, two
//!   bilinear resamplings: PSNR ≥ 27 dB where the photo's face is about the crop's size, ≥ 25 dB
//!   where it is 2.6× larger and the crop cannot carry its detail), and exactly, up to rounding,
//!   in residual mode;
//! - an edited crop lands where the face is.

use diat_align::*;
use std::path::{Path, PathBuf};

fn celeba() -> PathBuf {
    std::env::var_os("DIAT_CELEBA_SAMPLES")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/celeba"))
}

fn original(name: &str) -> RgbImage {
    let path = celeba().join("Img/img_align_celeba").join(name);
    load_photo(&path).unwrap_or_else(|e| panic!("{e} (set DIAT_CELEBA_SAMPLES)"))
}

fn official(name: &str) -> Landmarks {
    let f = LandmarkFile::read(&celeba().join("Anno/list_landmarks_align_celeba.txt")).unwrap();
    f.faces_of(name)[0]
}

use image::RgbImage;

/// The original placed into a `w × h` canvas by `s` (edge-replicated background).
fn photo_of(orig: &RgbImage, s: &Similarity, w: u32, h: u32) -> RgbImage {
    warp::warp(orig, s, w, h).0
}

fn map(s: &Similarity, lm: &Landmarks) -> Landmarks {
    lm.map(|p| s.apply(p))
}

/// A similarity with `scale` and `degrees` that puts the aligned image's centre at the canvas'.
fn placing(scale: f64, degrees: f64, w: u32, h: u32) -> Similarity {
    let r = Similarity::new(scale, degrees.to_radians(), 0.0, 0.0);
    let c = r.apply([89.0, 109.0]);
    Similarity {
        tx: w as f64 / 2.0 - c[0],
        ty: h as f64 / 2.0 - c[1],
        ..r
    }
}

const NAMES: [&str; 4] = ["000001.jpg", "000007.jpg", "000013.jpg", "000029.jpg"];

#[test]
fn alignment_of_a_rotated_scaled_copy_recovers_the_crop() {
    let window = CropWindow::default();
    for (scale, degrees, w, h, floor) in [
        (1.7, 23.0, 520, 560, 30.0),
        (2.3, -41.0, 760, 700, 30.0),
        (0.8, 12.0, 300, 280, 26.0),
    ] {
        let s = placing(scale, degrees, w, h);
        let mut worst = f64::INFINITY;
        let mut worst_official = f64::INFINITY;
        for name in NAMES {
            let orig = original(name);
            let photo = photo_of(&orig, &s, w, h);
            let want = crop_aligned(&orig, window).unwrap();

            // Landmarks exactly at the template's image: the alignment undoes S.
            let face = align_face(&photo, &map(&s, &CELEBA_TEMPLATE), window, None).unwrap();
            let back = face.transform.after(&s);
            assert!(
                (back.a - 1.0).abs() < 1e-9 && back.b.abs() < 1e-9 && back.tx.abs() < 1e-6,
                "{back:?}"
            );
            assert!(face.coverage > 0.999, "{name}: coverage {}", face.coverage);
            worst = worst.min(psnr(&face.crop, &want, None));

            // The official landmarks: the photo's crop equals the original's own alignment.
            let lm = official(name);
            let direct = align_face(&orig, &lm, window, None).unwrap();
            let via = align_face(&photo, &map(&s, &lm), window, None).unwrap();
            assert!((via.fit_rms - direct.fit_rms).abs() < 1e-6);
            worst_official = worst_official.min(psnr(&via.crop, &direct.crop, None));
        }
        eprintln!(
            "scale {scale}, {degrees}°: recovered crop PSNR ≥ {worst:.2} dB; \
             official-landmark crop vs direct alignment PSNR ≥ {worst_official:.2} dB"
        );
        assert!(worst >= floor, "scale {scale}: PSNR {worst} < {floor}");
        assert!(
            worst_official >= floor,
            "scale {scale}: PSNR {worst_official} < {floor}"
        );
    }
}

#[test]
fn aligning_a_celeba_image_with_its_own_landmarks_is_nearly_the_identity() {
    // CelebA's images were aligned to (about) this template, so the fit barely moves them.
    for name in NAMES {
        let face = align_face(
            &original(name),
            &official(name),
            CropWindow::default(),
            None,
        )
        .unwrap();
        let t = face.transform;
        assert!((t.scale() - 1.0).abs() < 0.08, "{name}: {t:?}");
        assert!(t.rotation_degrees().abs() < 5.0, "{name}: {t:?}");
        let centre = t.apply([89.0, 109.0]);
        assert!(
            (centre[0] - 89.0).abs() < 8.0 && (centre[1] - 109.0).abs() < 8.0,
            "{name}: {t:?}"
        );
    }
}

#[test]
fn paste_back_of_an_unedited_crop_reproduces_the_photo() {
    let (w, h) = (600, 560);
    // The floor is lower where the photo's face is larger than the crop: 128 pixels cannot carry
    // the detail of a 340-pixel face (that is what residual mode is for).
    for (scale, degrees, floor) in [(1.9, -17.0, 25.0), (0.9, 30.0, 27.0)] {
        let s = placing(scale, degrees, w, h);
        for name in &NAMES[..2] {
            let photo = photo_of(&original(name), &s, w, h);
            let face = align_face(
                &photo,
                &map(&s, &official(name)),
                CropWindow::default(),
                None,
            )
            .unwrap();
            let opts = PasteOptions::default();
            let out = paste_back(&photo, &face, &face.crop).unwrap();

            // Outside the footprint of the crop: bit-identical.
            let weight = |x: u32, y: u32| {
                let c = face
                    .window
                    .to_crop(face.transform.apply([x as f64, y as f64]));
                paste::mask_weight(c, face.window.size, opts.feather)
            };
            let mut outside = 0;
            for (x, y, p) in out.enumerate_pixels() {
                if weight(x, y) == 0.0 {
                    outside += 1;
                    assert_eq!(p, photo.get_pixel(x, y), "{name}: ({x}, {y}) changed");
                }
            }
            assert!(outside > (w * h / 3) as usize, "{outside}");
            // Inside: the photo again, to resampling accuracy.
            let inside = psnr(&out, &photo, Some(&|x, y| weight(x, y) > 0.0));
            let whole = psnr(&out, &photo, None);
            // Residual mode: exact up to rounding.
            let residual = PasteOptions {
                mode: PasteMode::Residual,
                ..opts
            };
            let out_r = paste_back_with(&photo, &face, &face.crop, &residual).unwrap();
            let max_r = out_r
                .as_raw()
                .iter()
                .zip(photo.as_raw())
                .map(|(a, b)| (*a as i32 - *b as i32).abs())
                .max()
                .unwrap();
            eprintln!(
                "{name} scale {scale}: unedited paste-back PSNR {inside:.2} dB in the face region, \
                 {whole:.2} dB whole photo; residual mode max |diff| {max_r}"
            );
            assert!(inside >= floor, "{name}: {inside}");
            assert!(max_r <= 1, "{name}: {max_r}");
        }
    }
}

#[test]
fn an_edited_crop_lands_on_the_face() {
    let (w, h) = (500, 480);
    let s = placing(1.5, 35.0, w, h);
    let name = NAMES[2];
    let photo = photo_of(&original(name), &s, w, h);
    let lm = map(&s, &official(name));
    let face = align_face(&photo, &lm, CropWindow::default(), None).unwrap();
    // Paint the crop's window interior red: the landmarks (well inside the window) turn red,
    // the canvas corners stay.
    // (Replace mode: the crop's pixels themselves, not the edit added to the photo.)
    let red = RgbImage::from_pixel(128, 128, image::Rgb([255, 0, 0]));
    let replace = PasteOptions {
        mode: PasteMode::Replace,
        ..PasteOptions::default()
    };
    let out = paste_back_with(&photo, &face, &red, &replace).unwrap();
    for p in lm {
        let px = out.get_pixel(p[0].round() as u32, p[1].round() as u32);
        assert_eq!(px.0, [255, 0, 0], "{p:?}");
    }
    for (x, y) in [(0, 0), (w - 1, 0), (0, h - 1), (w - 1, h - 1)] {
        assert_eq!(out.get_pixel(x, y), photo.get_pixel(x, y));
    }
    // The soft edge: some pixels strictly between photo and red.
    let blended = out
        .pixels()
        .zip(photo.pixels())
        .filter(|(o, p)| o.0 != [255, 0, 0] && o != p)
        .count();
    assert!(blended > 100, "{blended}");

    // Round trip through files: faces.json-style record and PNG crop.
    let dir = tempfile::tempdir().unwrap();
    let crop_path = dir.path().join("crop.png");
    save_image(&crop_path, &face.crop).unwrap();
    assert_eq!(load_photo(&crop_path).unwrap(), face.crop);
    let rec = face.record("p.jpg", [w, h], 0);
    let mut again = photo.clone();
    paste_into(
        &mut again,
        &rec.similarity(),
        rec.crop_window,
        &red,
        None,
        &replace,
    )
    .unwrap();
    assert_eq!(again, out);
}
