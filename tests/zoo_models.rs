//! The zoo's shipped models, as an evaluator gets them from a fresh clone: the built-in registry
//! lists them, each pulls offline (its weights from `zoo/models/`, size and sha256 checked into a
//! temporary cache), edits the 32 real aligned CelebA images, and edits a whole photo with three
//! real faces of held-out people (detect, align like CelebA, apply, paste back).

mod common;

use diat_align::image::{self, GenericImageView, Rgb, RgbImage};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// Three real test-split face crops of different people, each padded onto a grey canvas side by
/// side (a 3-person photo); returns the photo and each face's box on it.
fn group_photo(dir: &Path) -> (PathBuf, Vec<(u32, u32, u32, u32)>) {
    let faces = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/celeba-real/faces");
    // Ids of three people from the held-out identities of the identity split (seed 2017), which no shipped model trained on.
    let mut photo = RgbImage::from_pixel(3 * 300, 320, Rgb([128, 128, 128]));
    let mut boxes = Vec::new();
    for (k, id) in ["182665.jpg", "182904.jpg", "183273.jpg"]
        .iter()
        .enumerate()
    {
        let img = image::open(faces.join(id))
            .unwrap_or_else(|e| panic!("{}: {e}", faces.join(id).display()))
            .to_rgb8();
        let (w, h) = img.dimensions();
        let (x0, y0) = (
            k as u32 * 300 + (300 - w.min(280)) / 2,
            (320 - h.min(300)) / 2,
        );
        for (x, y, px) in img.view(0, 0, w.min(280), h.min(300)).pixels() {
            photo.put_pixel(x0 + x, y0 + y, Rgb([px[0], px[1], px[2]]));
        }
        boxes.push((x0, y0, w.min(280), h.min(300)));
    }
    let path = dir.join("group.jpg");
    photo.save(&path).unwrap();
    (path, boxes)
}

#[test]
fn every_shipped_model_pulls_offline_and_edits_real_faces_and_a_group_photo() {
    let t = tempfile::tempdir().unwrap();
    let home = t.path().join("zoo");
    let out = common::diat_in(&home, &["zoo", "list", "--json"]);
    let listed: Value = serde_json::from_slice(common::assert_ok(&out, "zoo list").as_bytes())
        .expect("zoo list --json");
    // Each model once, by name: a bare name pulls its newest version.
    let mut seen = std::collections::BTreeSet::new();
    let models: Vec<&Value> = listed["models"]
        .as_array()
        .or_else(|| listed.as_array())
        .expect("a list of models")
        .iter()
        .filter(|m| seen.insert(m["name"].as_str().unwrap_or_default().to_string()))
        .collect();
    assert!(
        !models.is_empty(),
        "zoo/registry.toml ships no model: {listed}"
    );
    let celeba = common::celeba_samples().join("Img/img_align_celeba");
    let (photo, boxes) = group_photo(t.path());
    let original = image::open(&photo).unwrap().to_rgb8();
    for m in models {
        let name = m["name"].as_str().expect("name");
        // Offline: the weights come from zoo/models/ beside the registry, verified into the cache.
        let pulled = common::diat_in(&home, &["zoo", "pull", name, "--offline"]);
        common::assert_ok(&pulled, format!("zoo pull {name} --offline"));
        common::assert_ok(&common::diat_in(&home, &["zoo", "verify"]), "zoo verify");
        let card = common::diat_in(&home, &["zoo", "info", name, "--json"]);
        let info: Value = serde_json::from_str(&common::assert_ok(&card, "zoo info")).unwrap();
        let size = info["entry"]["preprocessing"]["size"]
            .as_u64()
            .expect("preprocessing.size") as u32;
        let local = info["entry"]["architecture"]["enhancement"] == "local";

        // `diat apply --model NAME ARGS --out OUT --cpu`, which must succeed: its stdout.
        let apply = |args: &[&str], out: &Path| {
            let mut all = vec!["apply", "--model", name];
            all.extend_from_slice(args);
            all.extend_from_slice(&["--out", common::p(out), "--cpu"]);
            common::assert_ok(&common::diat_in(&home, &all), format!("diat {all:?}"))
        };

        // The 32 real aligned CelebA images.
        let aligned_out = t.path().join(format!("{name}-aligned"));
        let text = apply(&[common::p(&celeba)], &aligned_out);
        assert!(text.contains("32 image(s) written"), "{text}");
        let mut changed = 0;
        for e in std::fs::read_dir(&aligned_out).unwrap() {
            let img = image::open(e.unwrap().path()).unwrap().to_rgb8();
            assert_eq!(img.dimensions(), (size, size));
            changed += usize::from(img.pixels().any(|p| p.0 != [0, 0, 0]));
        }
        assert_eq!(changed, 32, "{name}: blank outputs");

        // A whole photo with three faces: every face found and edited, the photo's size kept; a
        // local model leaves the photo's border (far from every mouth and eye) untouched.
        let photo_out = t.path().join(format!("{name}-photo"));
        let text = apply(&["--align", common::p(&photo)], &photo_out);
        assert!(text.contains("1 photo(s) with 3 edited face(s)"), "{text}");
        let edited = image::open(photo_out.join("group.png")).unwrap().to_rgb8();
        assert_eq!(edited.dimensions(), original.dimensions());
        for &(x0, y0, w, h) in &boxes {
            let diff: u64 = (y0..y0 + h)
                .flat_map(|y| (x0..x0 + w).map(move |x| (x, y)))
                .map(|(x, y)| {
                    let (a, b) = (edited.get_pixel(x, y).0, original.get_pixel(x, y).0);
                    (0..3).map(|c| a[c].abs_diff(b[c]) as u64).sum::<u64>()
                })
                .sum();
            assert!(diff > 0, "{name}: the face at x={x0} was not edited");
        }
        for y in if local { vec![0, 319] } else { vec![] } {
            for x in (0..900).step_by(7) {
                assert_eq!(
                    edited.get_pixel(x, y),
                    original.get_pixel(x, y),
                    "{name}: the photo's border changed at ({x}, {y})"
                );
            }
        }
    }
}
