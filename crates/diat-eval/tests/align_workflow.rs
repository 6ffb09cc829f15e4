//! `diat align` as library calls (`diat_align::workflow` with MTCNN from `diat_eval::apply`) on a
//! group photo made from two real aligned CelebA images (`shared/celeba`, `$DIAT_CELEBA_SAMPLES`
//! overrides), rotated and scaled into one photo with their official landmarks mapped along.

use diat_align::image::{Rgb, RgbImage};
use diat_align::workflow::{AlignOptions, align_photos, paste_back_photos};
use diat_align::{
    CropWindow, FacesJson, LandmarkFile, Landmarks, PasteOptions, Similarity, align_face,
    crop_aligned, load_photo, save_image,
};
use diat_celeba::crop::{CropSpec, Cropper};
use diat_eval::apply::{MtcnnFinder, crop_window, detect_and_align, load_detector};
use std::path::{Path, PathBuf};
use tch::Device;

fn celeba() -> PathBuf {
    std::env::var_os("DIAT_CELEBA_SAMPLES")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/celeba"))
}

fn original(name: &str) -> RgbImage {
    load_photo(&celeba().join("Img/img_align_celeba").join(name))
        .unwrap_or_else(|e| panic!("{e} (set DIAT_CELEBA_SAMPLES)"))
}

#[test]
fn the_crop_is_the_training_crop_byte_for_byte() {
    // diat-align repeats CelebA ingestion's window and resizer; this holds them together.
    for size in [128, 64] {
        let window = crop_window(size);
        assert_eq!(window.size, size);
        let mut cropper = Cropper::new(CropSpec::default().with_size(size));
        for name in ["000001.jpg", "000017.jpg"] {
            let img = original(name);
            let mut want = vec![0u8; (size * size * 3) as usize];
            cropper.process_rgb(img.as_raw(), &mut want).unwrap();
            assert_eq!(
                crop_aligned(&img, window).unwrap().into_raw(),
                want,
                "{name} at {size}"
            );
        }
    }
    assert_eq!(crop_window(128), CropWindow::default());
}

/// Two CelebA faces rotated and scaled into one 900×600 photo, with their official landmarks
/// mapped into it, and each face's crop from the aligned original.
fn group_photo() -> (RgbImage, Vec<Landmarks>, Vec<RgbImage>) {
    let file = LandmarkFile::read(&celeba().join("Anno/list_landmarks_align_celeba.txt")).unwrap();
    let mut photo = RgbImage::from_pixel(900, 600, Rgb([90, 120, 150]));
    let mut lms = Vec::new();
    let mut crops = Vec::new();
    for (name, s) in [
        ("000010.jpg", Similarity::new(2.0, 0.25, 120.0, 20.0)),
        ("000009.jpg", Similarity::new(1.2, -0.35, 560.0, 230.0)),
    ] {
        let orig = original(name);
        let inv = s.inverse();
        for (x, y, px) in photo.enumerate_pixels_mut() {
            let p = inv.apply([x as f64, y as f64]);
            if p[0] >= 0.0 && p[1] >= 0.0 && p[0] <= 177.0 && p[1] <= 217.0 {
                px.0 =
                    diat_align::warp::to_u8(diat_align::warp::sample_bilinear(&orig, p[0], p[1]));
            }
        }
        lms.push(file.faces_of(name)[0].map(|p| s.apply(p)));
        crops.push(
            align_face(&orig, &file.faces_of(name)[0], crop_window(128), None)
                .unwrap()
                .crop,
        );
    }
    (photo, lms, crops)
}

#[test]
fn detect_and_align_finds_every_face_of_a_group_photo() {
    let detector = load_detector(Device::Cpu, 20.0)
        .unwrap_or_else(|e| panic!("{e:#}\nthis test needs MTCNN's weights: run `make setup`"));
    let (photo, lms, crops) = group_photo();
    let faces = detect_and_align(&detector, &photo, crop_window(128), false).unwrap();
    assert_eq!(
        faces.len(),
        2,
        "{:?}",
        faces.iter().map(|f| f.detection).collect::<Vec<_>>()
    );
    // Largest first; each matches the face placed there, and aligns it about as well as the
    // official landmarks do.
    for (k, face) in faces.iter().enumerate() {
        let iod = (lms[k][0][0] - lms[k][1][0]).hypot(lms[k][0][1] - lms[k][1][1]);
        let err = (0..5)
            .map(|i| {
                (face.landmarks[i][0] - lms[k][i][0]).hypot(face.landmarks[i][1] - lms[k][i][1])
            })
            .fold(0.0, f64::max);
        // Where the true landmarks land in the aligned frame under the detected alignment,
        // against the template (the official landmarks' own fit is the floor).
        let lm = &lms[k];
        let rms = face
            .transform
            .rms_residual(lm, &diat_align::CELEBA_TEMPLATE);
        let floor = diat_align::fit_to_template(lm)
            .unwrap()
            .rms_residual(lm, &diat_align::CELEBA_TEMPLATE);
        let psnr = diat_align::psnr(&face.crop, &crops[k], None);
        eprintln!(
            "face {k}: worst landmark error {:.1}% IOD; true landmarks {rms:.2} px RMS from the \
             template (best possible {floor:.2}); crop PSNR {psnr:.1} dB",
            100.0 * err / iod
        );
        assert!(err < 0.15 * iod, "face {k}: {err} px, IOD {iod}");
        assert!(rms < floor + 1.0, "face {k}: {rms} px vs {floor}");
    }
    let one = detect_and_align(&detector, &photo, crop_window(128), true).unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].transform, faces[0].transform);
    let blank = RgbImage::from_pixel(320, 240, Rgb([128, 128, 128]));
    assert!(
        detect_and_align(&detector, &blank, crop_window(128), false)
            .unwrap()
            .is_empty()
    );

    // The same through the workflow: one faces.json entry per face, the blank photo listed.
    let dir = tempfile::tempdir().unwrap();
    let (g, b) = (dir.path().join("group.png"), dir.path().join("blank.png"));
    save_image(&g, &photo).unwrap();
    save_image(&b, &blank).unwrap();
    let r = align_photos(
        &[g, b],
        &MtcnnFinder(&detector),
        &AlignOptions::new(dir.path().join("out")),
    )
    .unwrap();
    assert_eq!((r.doc.faces.len(), r.faceless, r.failed), (2, 1, 0));
    assert_eq!(r.doc.landmarks_from, "mtcnn");
}

#[test]
fn landmark_file_aligns_and_pastes_back() {
    let dir = tempfile::tempdir().unwrap();
    let d = |p: &str| dir.path().join(p);
    let (photo, lms, _) = group_photo();
    save_image(&d("group.png"), &photo).unwrap();
    save_image(&d("blank.png"), &RgbImage::new(64, 64)).unwrap();
    std::fs::write(d("broken.jpg"), b"<html>not a photo</html>").unwrap();
    let mut csv = diat_align::landmarks::header() + "\n";
    for lm in &lms {
        let v: Vec<String> = lm.iter().flatten().map(|c| format!("{c:.3}")).collect();
        csv += &format!("group.png,{}\n", v.join(","));
    }
    std::fs::write(d("lm.csv"), csv).unwrap();
    let file = LandmarkFile::read(&d("lm.csv")).unwrap();
    let photos = [d("group.png"), d("blank.png"), d("broken.jpg")];
    let r = align_photos(&photos, &file, &AlignOptions::new(d("out"))).unwrap();
    assert_eq!((r.faceless, r.failed, r.skipped()), (1, 1, 2));
    let doc = FacesJson::read(&d("out/faces.json")).unwrap();
    assert_eq!(doc.faces.len(), 2);
    assert_eq!(doc.photos[1].status, "no face");
    assert!(
        doc.photos[2].status.contains("broken.jpg"),
        "{:?}",
        doc.photos[2]
    );
    assert_eq!(doc.faces[0].crop_file.as_deref(), Some("crop/group_0.png"));
    assert_eq!(
        load_photo(&d("out/aligned/group_1.png"))
            .unwrap()
            .dimensions(),
        (178, 218)
    );
    assert_eq!(
        load_photo(&d("out/crop/group_0.png")).unwrap().dimensions(),
        (128, 128)
    );

    // Unedited crops pasted back (residual, the default) reproduce the photo up to rounding.
    let back = paste_back_photos(
        &d("out/faces.json"),
        &d("out/crop"),
        &d("same"),
        &PasteOptions::default(),
    )
    .unwrap();
    assert_eq!((back.written, back.missing), (vec![d("same/group.png")], 0));
    let same = load_photo(&d("same/group.png")).unwrap();
    let max = same
        .as_raw()
        .iter()
        .zip(photo.as_raw())
        .map(|(a, b)| (*a as i32 - *b as i32).abs())
        .max()
        .unwrap();
    assert!(max <= 1, "{max}");

    // Only the largest face, only crops.
    let one = AlignOptions {
        largest: true,
        write_aligned: false,
        ..AlignOptions::new(d("one"))
    };
    let r = align_photos(&[d("group.png")], &file, &one).unwrap();
    assert_eq!(r.doc.faces.len(), 1);
    assert!(d("one/crop/group_0.png").is_file() && !d("one/aligned").exists());
    // Nothing to align is an error, not an empty faces.json.
    assert!(align_photos(&[], &file, &AlignOptions::new(d("none"))).is_err());
}
