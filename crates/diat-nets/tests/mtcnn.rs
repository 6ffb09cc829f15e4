//! MTCNN (paper §5.4: test photos are aligned by 5 facial landmarks) on the 32 real aligned CelebA
//! images of `shared/celeba` (`$DIAT_CELEBA_SAMPLES` overrides the folder):
//!
//! - the detected landmarks agree with CelebA's official ones: median error under 5% of the
//!   inter-ocular distance (IOD);
//! - the Rust pipeline reproduces facenet-pytorch 2.6.0's own `detect_face` (run through
//!   `scripts/mtcnn/reference.py` with `$DIAT_TORCH_PYTHON`) to 0.05 px.
//!
//! Both need the converted weights from `make setup` (`scripts/setup-mtcnn.sh`); without them the
//! tests fail and say so: a missing detector is not a pass.
//!
//! Coordinates: MTCNN's landmarks (as facenet-pytorch returns them) read about one pixel larger in
//! x and y than CelebA's official numbers for the same points: measured on these 32 images, MTCNN
//! minus CelebA is +1.1 px on average over all ten coordinates (each landmark's mean between +0.6
//! and +1.8 px), a convention shift (1-based vs 0-based pixel indices somewhere in the lineage)
//! rather than scatter. The comparison applies [`CELEBA_OFFSET`] (−1 px), as `diat align` does
//! before fitting CelebA's template; without it the median per-landmark error is 5.3% of the IOD.
//!
//! The aligned images are small (178×218) with big faces; MTCNN's defaults (min_face 20) find every
//! face without padding the image.

use diat_nets::mtcnn::{CELEBA_OFFSET, FaceDetection, Mtcnn, MtcnnConfig, default_dir};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tch::{Device, Kind, Tensor};

fn celeba() -> PathBuf {
    std::env::var_os("DIAT_CELEBA_SAMPLES")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/celeba"))
}

/// Official landmarks, as in the file.
fn official_landmarks() -> BTreeMap<String, [[f32; 2]; 5]> {
    let path = celeba().join("Anno/list_landmarks_align_celeba.txt");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (set DIAT_CELEBA_SAMPLES to the CelebA sample folder)",
            path.display()
        )
    });
    let mut out = BTreeMap::new();
    for line in text.lines().skip(2) {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() != 11 {
            continue;
        }
        let v: Vec<f32> = f[1..].iter().map(|s| s.parse::<f32>().unwrap()).collect();
        let mut lm = [[0f32; 2]; 5];
        for k in 0..5 {
            lm[k] = [v[2 * k], v[2 * k + 1]];
        }
        out.insert(f[0].to_string(), lm);
    }
    assert!(out.len() >= 32, "{}: {} rows", path.display(), out.len());
    out
}

fn detector() -> Mtcnn {
    let dir = default_dir();
    Mtcnn::load(&dir, Device::Cpu, MtcnnConfig::default()).unwrap_or_else(|e| {
        panic!(
            "MTCNN weights are needed for this test and are not usable at {}: {e}\n\
             run `make setup` (scripts/setup-mtcnn.sh) or set DIAT_MTCNN_DIR",
            dir.display()
        )
    })
}

/// Decodes an image (stb, through tch) into HWC RGB bytes.
fn decode(path: &Path) -> (Vec<u8>, u32, u32) {
    let t = tch::vision::image::load(path).unwrap(); // [3, H, W] uint8
    let (h, w) = (t.size()[1], t.size()[2]);
    let hwc = t.permute([1, 2, 0]).contiguous().view([-1]);
    (Vec::<u8>::try_from(&hwc).unwrap(), w as u32, h as u32)
}

fn dist(a: [f32; 2], b: [f32; 2]) -> f32 {
    ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)).sqrt()
}

fn median(mut v: Vec<f32>) -> f32 {
    v.sort_by(f32::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}

/// The detection whose landmarks are closest to `gt` (a CelebA image holds one annotated face).
/// Its landmarks in CelebA's coordinates.
fn closest(faces: &[FaceDetection], gt: &[[f32; 2]; 5]) -> Option<[[f32; 2]; 5]> {
    let celeba = |f: &FaceDetection| f.landmarks.map(|p| p.map(|c| c + CELEBA_OFFSET));
    let err = |l: &[[f32; 2]; 5]| (0..5).map(|k| dist(l[k], gt[k])).sum::<f32>();
    faces
        .iter()
        .map(celeba)
        .min_by(|a, b| err(a).total_cmp(&err(b)))
}

#[test]
fn landmarks_agree_with_celeba_official_ones() {
    let mtcnn = detector();
    let gt = official_landmarks();
    let (mut per_image, mut per_point, mut bias) = (Vec::new(), Vec::new(), [0f32; 2]);
    let mut missed = Vec::new();
    for (name, lm) in &gt {
        let (rgb, w, h) = decode(&celeba().join("Img/img_align_celeba").join(name));
        let faces = mtcnn.detect(&rgb, w, h).unwrap();
        let Some(found) = closest(&faces, lm) else {
            missed.push(name.clone());
            continue;
        };
        let iod = dist(lm[0], lm[1]);
        let errs: Vec<f32> = (0..5).map(|k| dist(found[k], lm[k]) / iod).collect();
        for k in 0..5 {
            bias[0] += found[k][0] - lm[k][0];
            bias[1] += found[k][1] - lm[k][1];
        }
        per_image.push(errs.iter().sum::<f32>() / 5.0);
        per_point.extend(errs);
    }
    let n = per_image.len() as f32;
    let (med_img, med_pt) = (median(per_image.clone()), median(per_point.clone()));
    let worst = per_image.iter().cloned().fold(0.0, f32::max);
    eprintln!(
        "MTCNN vs CelebA on {n} images: median per-image mean error {:.2}% IOD, median per-landmark \
         error {:.2}% IOD, worst image {:.2}% IOD, bias ({:+.2}, {:+.2}) px, missed {missed:?}",
        100.0 * med_img,
        100.0 * med_pt,
        100.0 * worst,
        bias[0] / (5.0 * n),
        bias[1] / (5.0 * n),
    );
    assert!(missed.is_empty(), "no face found in {missed:?}");
    assert!(
        med_img < 0.05,
        "median per-image landmark error {med_img} IOD"
    );
    assert!(med_pt < 0.05, "median per-landmark error {med_pt} IOD");
    assert!(worst < 0.25, "worst image {worst} IOD");
}

#[test]
fn no_face_in_a_flat_image() {
    let mtcnn = detector();
    let (w, h) = (160u32, 120u32);
    let rgb = vec![128u8; (w * h * 3) as usize];
    assert!(mtcnn.detect(&rgb, w, h).unwrap().is_empty());
    assert!(mtcnn.detect(&rgb[..10], w, h).is_err());
}

#[test]
fn matches_facenet_pytorch_detect_face() {
    let python = std::env::var("DIAT_TORCH_PYTHON").unwrap_or_else(|_| {
        panic!("DIAT_TORCH_PYTHON is not set: run `make setup` (it writes .cargo/config.toml)")
    });
    let mtcnn = detector();
    let dir = tempfile::tempdir().unwrap();
    // Both sides read the same pixels: PNG copies of the decoded JPEGs.
    let names: Vec<String> = official_landmarks().into_keys().collect();
    let mut pngs = Vec::new();
    for name in &names {
        let t = tch::vision::image::load(celeba().join("Img/img_align_celeba").join(name)).unwrap();
        let png = dir.path().join(name.replace(".jpg", ".png"));
        tch::vision::image::save(&t, &png).unwrap();
        pngs.push(png);
    }
    // A larger scene too: two faces side by side on a 2× upscaled canvas (pyramid, several boxes).
    let a = tch::vision::image::load(&pngs[0]).unwrap();
    let b = tch::vision::image::load(&pngs[5]).unwrap();
    let scene = Tensor::cat(&[a, b], 2).to_kind(Kind::Float).unsqueeze(0);
    let scene = scene
        .upsample_bilinear2d([436, 712], false, None, None)
        .squeeze_dim(0);
    let scene_png = dir.path().join("scene.png");
    tch::vision::image::save(
        &scene.clamp(0.0, 255.0).round().to_kind(Kind::Uint8),
        &scene_png,
    )
    .unwrap();
    pngs.push(scene_png);

    let weights = default_dir();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/mtcnn/reference.py");
    let out = std::process::Command::new(&python)
        .arg(&script)
        .arg("--weights")
        .arg(&weights)
        .args(&pngs)
        .output()
        .expect("cannot start $DIAT_TORCH_PYTHON");
    assert!(
        out.status.success(),
        "reference.py failed (the wheel is kept in {} by `make setup`):\n{}",
        weights.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let reference: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut worst = 0f32;
    let mut faces_total = 0;
    for png in &pngs {
        let (rgb, w, h) = decode(png);
        let ours = mtcnn.detect(&rgb, w, h).unwrap();
        let theirs = reference[png.to_str().unwrap()].clone();
        let boxes = theirs["boxes"].as_array().unwrap();
        let points = theirs["points"].as_array().unwrap();
        assert_eq!(
            ours.len(),
            boxes.len(),
            "{}: {ours:?} vs {theirs}",
            png.display()
        );
        faces_total += ours.len();
        for (i, face) in ours.iter().enumerate() {
            let b: Vec<f32> = serde_json::from_value(boxes[i].clone()).unwrap();
            let p: Vec<[f32; 2]> = serde_json::from_value(points[i].clone()).unwrap();
            for (ours, theirs) in face.bbox.iter().zip(&b) {
                worst = worst.max((ours - theirs).abs());
            }
            for (ours, theirs) in face.landmarks.iter().zip(&p) {
                worst = worst.max(dist(*ours, *theirs));
            }
            assert!(
                (face.score - b[4]).abs() < 1e-4,
                "{}: score {} vs {}",
                png.display(),
                face.score,
                b[4]
            );
        }
    }
    eprintln!("Rust vs facenet-pytorch: {faces_total} faces, largest difference {worst:.5} px");
    assert!(faces_total >= 34, "{faces_total} faces");
    assert!(worst < 0.05, "largest box/landmark difference {worst} px");
}
