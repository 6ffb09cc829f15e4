//! The identity measure of `diat eval real` on LFW's verification pairs: MTCNN (the face nearest
//! the photo's centre) → dlib chip from diat's landmarks → the dlib descriptor port, same person
//! when the distance is below 0.6; accuracy over a pairs file (`pairsDevTest.txt`: 500 same +
//! 500 different pairs). dlib reports 99.38 % on LFW's View 2 for its own pipeline.
//!
//! `cargo run --release -p diat-eval --example lfw_pairs -- LFW_DIR [PAIRS_FILE]`
//! (LFW_DIR holds `lfw-deepfunneled/` and the pairs files.)

use diat_align::{Landmarks, chip, load_photo};
use diat_nets::face_descriptor::{FaceDescriptor, SAME_PERSON_THRESHOLD, distance};
use diat_nets::mtcnn::{Mtcnn, MtcnnConfig};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use tch::Device;

fn photo(root: &Path, name: &str, n: &str) -> PathBuf {
    let n: u32 = n.parse().expect("image number");
    root.join("lfw-deepfunneled")
        .join(name)
        .join(format!("{name}_{n:04}.jpg"))
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let root = PathBuf::from(args.get(1).expect("LFW folder"));
    let pairs_file = args
        .get(2)
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("pairsDevTest.txt"));
    let text = std::fs::read_to_string(&pairs_file).expect("pairs file");
    let mut pairs = Vec::new();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        match f.len() {
            3 => pairs.push((photo(&root, f[0], f[1]), photo(&root, f[0], f[2]), true)),
            4 => pairs.push((photo(&root, f[0], f[1]), photo(&root, f[2], f[3]), false)),
            _ => {}
        }
    }
    let det = Mtcnn::load_default(Device::Cpu, MtcnnConfig::default()).expect("MTCNN");
    let desc = FaceDescriptor::load_default(Device::Cpu).expect("descriptor");
    let start = std::time::Instant::now();
    let mut cache: HashMap<PathBuf, Option<[f32; 128]>> = HashMap::new();
    let mut describe = |p: &PathBuf| -> Option<[f32; 128]> {
        if let Some(d) = cache.get(p) {
            return *d;
        }
        let img = load_photo(p).ok()?;
        let found = det.detect(img.as_raw(), img.width(), img.height()).ok()?;
        let (cx, cy) = (img.width() as f32 / 2.0, img.height() as f32 / 2.0);
        let d = found.iter().min_by(|a, b| {
            let dist = |f: &diat_nets::mtcnn::FaceDetection| {
                let (x, y) = ((f.bbox[0] + f.bbox[2]) / 2.0, (f.bbox[1] + f.bbox[3]) / 2.0);
                (x - cx).hypot(y - cy)
            };
            dist(a).total_cmp(&dist(b))
        });
        let r = d.and_then(|d| {
            let lm: Landmarks = d.celeba_landmarks().map(|q| q.map(f64::from));
            let c = chip::face_chip(&img, &lm, 150, 0.25).ok()?;
            desc.describe(&[c.as_raw().as_slice()], 1)
                .ok()
                .map(|v| v[0])
        });
        cache.insert(p.clone(), r);
        r
    };
    let (mut right, mut total, mut missing) = (0usize, 0usize, 0usize);
    let (mut same_d, mut diff_d) = (Vec::new(), Vec::new());
    for (a, b, same) in &pairs {
        let (Some(da), Some(db)) = (describe(a), describe(b)) else {
            missing += 1;
            continue;
        };
        let d = distance(&da, &db);
        if *same {
            same_d.push(d)
        } else {
            diff_d.push(d)
        }
        total += 1;
        right += usize::from((d < SAME_PERSON_THRESHOLD) == *same);
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    println!(
        "{}: {} pairs, {} without a face; accuracy at 0.6: {:.2} % ({right}/{total}); mean distance same {:.3}, different {:.3}; {:.1} s",
        pairs_file.display(),
        pairs.len(),
        missing,
        100.0 * right as f64 / total.max(1) as f64,
        mean(&same_d),
        mean(&diff_d),
        start.elapsed().as_secs_f64()
    );
}
