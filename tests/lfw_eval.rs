//! `diat eval lfw` (issue 20) end to end on real LFW photos: a small LFW folder made here from
//! the first pairs of `pairsDevTest.txt` plus people whose photos cannot be used (a truncated
//! JPEG, an HTML page saved as .jpg, a missing file, a photo without a face, a face too small);
//! every photo is edited or listed with its reason, pasted-back PNGs are written for exactly the
//! edited ones and are bit-identical to the input far from the face, a local model changes no
//! pixel outside its region, and identities still verify across photos.
//!
//! Needs `make setup` (MTCNN, dlib's converted weights) and LFW in `../shared/lfw`
//! (`DIAT_LFW` overrides).

#![cfg(feature = "torch")] // needs libtorch: not part of the curator's build's tests

mod common;

use diat_align::image::{self, Rgb, RgbImage, imageops};
use serde_json::Value;
use std::path::{Path, PathBuf};

fn lfw() -> PathBuf {
    let p = std::env::var("DIAT_LFW")
        .map(PathBuf::from)
        .unwrap_or_else(|_| common::repo("../shared/lfw"));
    assert!(
        p.join("pairsDevTest.txt").is_file(),
        "LFW missing at {}",
        p.display()
    );
    p
}

fn photo(root: &Path, name: &str, n: u32) -> PathBuf {
    root.join(name).join(format!("{name}_{n:04}.jpg"))
}

/// A folder in LFW's layout: the photos of the first `n` same and `n` different pairs of
/// pairsDevTest.txt, and two more pairs of each kind naming unusable photos.
fn mini_lfw(dir: &Path, n: usize) -> (PathBuf, usize) {
    let src = lfw();
    let text = std::fs::read_to_string(src.join("pairsDevTest.txt")).unwrap();
    let lines: Vec<&str> = text.lines().skip(1).collect();
    let half = lines.len() / 2;
    let chosen: Vec<&str> = lines[..n]
        .iter()
        .chain(&lines[half..half + n])
        .copied()
        .collect();
    let images = dir.join("lfw-deepfunneled");
    let mut real = std::collections::BTreeSet::new();
    for l in &chosen {
        let w: Vec<&str> = l.split_whitespace().collect();
        let refs = match w[..] {
            [a, i, j] => vec![(a, i), (a, j)],
            [a, i, b, j] => vec![(a, i), (b, j)],
            _ => panic!("{l}"),
        };
        for (name, k) in refs {
            let k: u32 = k.parse().unwrap();
            let to = photo(&images, name, k);
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::copy(photo(&src.join("lfw-deepfunneled"), name, k), &to).unwrap();
            real.insert(to);
        }
    }
    // Unusable photos.
    let put = |name: &str, k: u32, bytes: &[u8]| {
        let to = photo(&images, name, k);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::write(to, bytes).unwrap();
    };
    let first = real.iter().next().unwrap().clone();
    let jpeg = std::fs::read(&first).unwrap();
    put("Broken_File", 1, &jpeg[..jpeg.len() / 3]);
    put(
        "Broken_File",
        2,
        b"<!DOCTYPE html><html><body>Not found</body></html>",
    );
    let mut grey = Vec::new();
    RgbImage::from_pixel(250, 250, Rgb([128, 128, 128]))
        .write_to(
            &mut std::io::Cursor::new(&mut grey),
            image::ImageFormat::Jpeg,
        )
        .unwrap();
    put("Grey_Wall", 1, &grey);
    // The first photo at 90×90: its face is found but shorter than --min-face 40.
    let small = imageops::resize(
        &image::open(&first).unwrap().to_rgb8(),
        90,
        90,
        imageops::FilterType::Triangle,
    );
    let mut tiny = Vec::new();
    small
        .write_to(
            &mut std::io::Cursor::new(&mut tiny),
            image::ImageFormat::Png,
        )
        .unwrap();
    put("Tiny_Face", 1, &tiny);
    put("Tiny_Face", 2, &tiny);
    let mut pairs = format!("{}\n", n + 2);
    for l in &lines[..n] {
        pairs.push_str(&format!("{l}\n"));
    }
    pairs.push_str("Broken_File\t1\t2\nTiny_Face\t1\t2\n");
    for l in &lines[half..half + n] {
        pairs.push_str(&format!("{l}\n"));
    }
    pairs.push_str("Grey_Wall\t1\tNobody_Here\t1\nTiny_Face\t1\tGrey_Wall\t1\n");
    std::fs::write(dir.join("pairsDevTest.txt"), pairs).unwrap();
    (images, real.len())
}

#[test]
fn lfw_photos_are_edited_pasted_back_and_verified_and_unusable_ones_listed() {
    let t = tempfile::tempdir().unwrap();
    let (images, real) = mini_lfw(t.path(), 10);
    let out = t.path().join("out");
    let json = t.path().join("r.json");
    let sheet = t.path().join("sheet.png");
    let zoo = t.path().join("zoo");
    let run = |extra: &[&str]| {
        let mut args = vec!["eval", "lfw", "--model", "mouth_open", "--lfw"];
        args.push(common::p(t.path()));
        args.extend_from_slice(extra);
        common::diat_in(&zoo, &args)
    };
    let o = run(&[
        "--out",
        common::p(&out),
        "--json",
        common::p(&json),
        "--sheet",
        common::p(&sheet),
    ]);
    let text = common::assert_ok(&o, "diat eval lfw");
    assert!(text.contains("identity across photos"), "{text}");
    let r: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    // 24 pairs, the 4 naming unusable photos not scored.
    assert_eq!(r["pairs"], 24);
    assert_eq!(r["pairs_scored"], 20);
    assert_eq!(r["photos_edited"].as_u64().unwrap() as usize, real);
    let reasons = &r["rejected_by_reason"];
    assert_eq!(reasons["unreadable"], 3, "{reasons}"); // truncated, HTML, missing
    assert_eq!(reasons["no face found"], 1, "{reasons}");
    assert_eq!(reasons["face too small"], 2, "{reasons}");
    assert_eq!(
        r["photos"].as_u64().unwrap() as usize,
        real + 6,
        "every photo is edited or rejected"
    );
    // A PNG for exactly the edited photos.
    let written: Vec<_> = std::fs::read_dir(&out).unwrap().collect();
    assert_eq!(written.len(), real);
    for bad in ["Broken_File_0001", "Grey_Wall_0001", "Tiny_Face_0001"] {
        assert!(!out.join(format!("{bad}.png")).exists());
    }
    // The written photo is the input outside the face: the 20-pixel frame is bit-identical.
    let s = &r["photos_scored"][0];
    let stem = s["photo"].as_str().unwrap();
    let name = &stem[..stem.len() - 5];
    let before = image::open(images.join(name).join(format!("{stem}.jpg")))
        .unwrap()
        .to_rgb8();
    let after = image::open(out.join(format!("{stem}.png")))
        .unwrap()
        .to_rgb8();
    assert_eq!(before.dimensions(), after.dimensions());
    let mut changed = 0;
    for (x, y, p) in after.enumerate_pixels() {
        let frame = x < 20 || y < 20 || x >= after.width() - 20 || y >= after.height() - 20;
        if frame {
            assert_eq!(p, before.get_pixel(x, y), "({x}, {y}) changed");
        }
        changed += usize::from(p != before.get_pixel(x, y));
    }
    assert!(changed > 0, "the edit changed nothing");
    // A local model changes nothing outside its attribute region.
    let outside = &r["outside_region"];
    assert_eq!(outside["pixels_changed"], 0, "{outside}");
    assert!(outside["pixels_changed_anywhere"].as_u64().unwrap() > 0);
    // The descriptor verifies these pairs before the edit, and the edit keeps most of them.
    let v = &r["verification"];
    assert_eq!(v[0]["condition"], "before");
    assert!(v[0]["accuracy"].as_f64().unwrap() >= 0.9, "{v}");
    assert!(v[1]["same_verified"].as_f64().unwrap() >= 0.8, "{v}");
    let auc = v[0]["auc"].as_f64().unwrap();
    assert!((0.9..=1.0).contains(&auc), "{v}");
    // Attributes: eligibility by the classifier, success of the three conditions, the others.
    assert!(r["eligible"].as_u64().unwrap() > 0);
    let conds: Vec<&str> = r["attribute_success"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["condition"].as_str().unwrap())
        .collect();
    assert_eq!(conds, ["identity", "blurred input", "model"]);
    assert_eq!(r["unchanged"].as_array().unwrap().len(), 4);
    let times = &r["times"];
    assert!(times["photos_per_second"].as_f64().unwrap() > 0.0);
    assert!(sheet.is_file());
    // --strict: a rejected photo makes it an error (exit 1), the report still written.
    let strict = common::diat_in(
        &zoo,
        &[
            "--strict",
            "eval",
            "lfw",
            "--model",
            "mouth_open",
            "--lfw",
            common::p(t.path()),
        ],
    );
    let err = String::from_utf8_lossy(&strict.stderr);
    assert_eq!(strict.status.code(), Some(1), "{err}");
    assert!(err.contains("photo(s) rejected"), "{err}");
}

#[test]
fn bad_pairs_files_and_wrong_tasks_are_clear_errors() {
    let t = tempfile::tempdir().unwrap();
    let (_, _) = mini_lfw(t.path(), 1);
    let bad = t.path().join("bad.txt");
    std::fs::write(&bad, "2\nA 1 2\nB 1 C\n").unwrap();
    let zoo = t.path().join("zoo");
    let run = |args: &[&str]| {
        let o = common::diat_in(&zoo, args);
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stderr).to_string(),
        )
    };
    let lfw = common::p(t.path());
    let (code, err) = run(&[
        "eval",
        "lfw",
        "--model",
        "mouth_open",
        "--lfw",
        lfw,
        "--pairs",
        common::p(&bad),
    ]);
    assert_eq!(code, Some(1));
    assert!(err.contains("bad.txt:3"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    let (code, err) = run(&[
        "eval",
        "lfw",
        "--model",
        "mouth_open",
        "--lfw",
        lfw,
        "--attr",
        "Eyeglasses",
    ]);
    assert_eq!(code, Some(1));
    assert!(err.contains("not for Eyeglasses"), "{err}");
}
