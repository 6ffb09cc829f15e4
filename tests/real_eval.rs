//! Real-face evaluation (issue 13) on real CelebA faces: the dlib descriptor port against dlib
//! itself, the attribute classifier against its PyTorch module, `diat classifier train|score`, and
//! `diat eval real` end to end with bad inputs and a model of the wrong task.
//!
//! Needs `make setup` (the converted dlib weights, dlib-bin in the torch venv, MTCNN) and the
//! real faces in `../shared/celeba-real/faces` (`DIAT_CELEBA_REAL` overrides).

#![cfg(feature = "torch")] // needs libtorch: not part of the curator's build's tests

mod common;

use common::{diat, p};
use diat_align::image::RgbImage;
use diat_align::{Landmarks, align_face, chip, load_photo};
use diat_nets::face_descriptor::{FaceDescriptor, SAME_PERSON_THRESHOLD, distance};
use diat_nets::mtcnn::{Mtcnn, MtcnnConfig};
use std::path::{Path, PathBuf};
use std::process::Command;
use tch::{Device, nn};

fn real_faces() -> PathBuf {
    let p = std::env::var("DIAT_CELEBA_REAL")
        .map(PathBuf::from)
        .unwrap_or_else(|_| common::repo("../shared/celeba-real/faces"));
    assert!(p.is_dir(), "real faces missing at {}", p.display());
    p
}

/// The first `n` real face crops, by name.
fn some_faces(n: usize, skip: usize) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(real_faces())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jpg"))
        .collect();
    v.sort();
    v.into_iter().skip(skip).take(n).collect()
}

fn python() -> String {
    std::env::var("DIAT_TORCH_PYTHON").expect("DIAT_TORCH_PYTHON (written by make setup)")
}

fn run_python(args: &[&str]) -> String {
    let out = Command::new(python()).args(args).output().expect("python");
    common::assert_ok(&out, format!("python {args:?}"))
}

/// `n` real crops of `n / 8` people (8 each, the first such identities by id): pairs of the same
/// person and of different people.
fn faces_of_few_people(n: usize) -> Vec<PathBuf> {
    let labels = diat_eval::faces::Labels::load(&common::celeba_samples()).unwrap();
    let mut by_person: std::collections::BTreeMap<u32, Vec<PathBuf>> = Default::default();
    for f in some_faces(usize::MAX, 0) {
        let id = diat_eval::faces::image_id(&f.to_string_lossy());
        if let Some(person) = labels.identity(&id) {
            by_person.entry(person).or_default().push(f);
        }
    }
    by_person
        .into_values()
        .filter(|v| v.len() >= 8)
        .flat_map(|v| v.into_iter().take(8))
        .take(n)
        .collect()
}

/// The 32 aligned CelebA images with their official landmarks, and `n` real crops with MTCNN's,
/// as (name, image, landmarks).
fn faces_with_landmarks(n: usize) -> Vec<(String, RgbImage, Landmarks)> {
    let celeba = common::celeba_samples();
    let file = diat_align::LandmarkFile::read(&celeba.join("Anno/list_landmarks_align_celeba.txt"))
        .unwrap();
    let mut out = Vec::new();
    for i in 1..=32 {
        let name = format!("{i:06}.jpg");
        let img = load_photo(&celeba.join("Img/img_align_celeba").join(&name)).unwrap();
        let lm = file.faces_of(&name)[0];
        out.push((format!("aligned-{i:06}"), img, lm));
    }
    let det = Mtcnn::load_default(Device::Cpu, MtcnnConfig::default()).unwrap();
    for path in faces_of_few_people(n) {
        let img = load_photo(&path).unwrap();
        let mut found = det.detect(img.as_raw(), img.width(), img.height()).unwrap();
        found.sort_by(|a, b| b.area().total_cmp(&a.area()));
        if let Some(d) = found.first() {
            let lm: Landmarks = d.celeba_landmarks().map(|q| q.map(f64::from));
            let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
            out.push((format!("real-{stem}"), img, lm));
        }
    }
    out
}

/// dlib's descriptor computed by dlib itself and by our port on the same 150×150 chips, cut by
/// `diat_align::chip` from diat's landmarks: every element within 1e-4, and the same
/// same/different decision on every pair.
#[test]
fn descriptor_port_matches_dlib_on_real_faces() {
    let tmp = tempfile::tempdir().unwrap();
    let chips_dir = tmp.path().join("chips");
    std::fs::create_dir_all(&chips_dir).unwrap();
    let faces = faces_with_landmarks(48);
    assert!(faces.len() >= 32 + 45, "{} faces", faces.len());
    let mut chips = Vec::new();
    for (name, img, lm) in &faces {
        let c = chip::face_chip(img, lm, chip::FACE_CHIP_SIZE, chip::FACE_CHIP_PADDING).unwrap();
        c.save(chips_dir.join(format!("{name}.png"))).unwrap();
        chips.push((name.clone(), c));
    }
    let desc = FaceDescriptor::load_default(Device::Cpu).unwrap();
    let raw: Vec<&[u8]> = chips.iter().map(|(_, c)| c.as_raw().as_slice()).collect();
    let ours = desc.describe(&raw, 16).unwrap();

    let json = tmp.path().join("dlib.json");
    let weights = diat_nets::face_descriptor::default_path();
    run_python(&[
        p(&common::repo("scripts/dlib/reference.py")),
        "descriptors",
        "--weights",
        p(&weights),
        "--chips",
        p(&chips_dir),
        "--json",
        p(&json),
    ]);
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let rows = doc["chips"].as_array().unwrap();
    assert_eq!(rows.len(), chips.len());
    let mut dlib: Vec<[f32; 128]> = vec![[0.0; 128]; chips.len()];
    let mut worst = 0f64;
    for row in rows {
        let file = row["file"].as_str().unwrap();
        let stem = Path::new(file).file_stem().unwrap().to_string_lossy();
        let k = chips.iter().position(|(n, _)| *n == stem).unwrap();
        let d: Vec<f64> = row["dlib"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        for (j, v) in d.iter().enumerate() {
            dlib[k][j] = *v as f32;
            worst = worst.max((v - f64::from(ours[k][j])).abs());
        }
    }
    eprintln!(
        "descriptor parity: {} chips ({} aligned CelebA, {} real crops), max |dlib − diat| = {worst:.2e}",
        chips.len(),
        32,
        chips.len() - 32
    );
    assert!(worst <= 1e-4, "max abs difference {worst}");
    let (mut pairs, mut same, mut disagree) = (0, 0, 0);
    for i in 0..chips.len() {
        for j in i + 1..chips.len() {
            let a = distance(&ours[i], &ours[j]) < SAME_PERSON_THRESHOLD;
            let b = distance(&dlib[i], &dlib[j]) < SAME_PERSON_THRESHOLD;
            pairs += 1;
            same += usize::from(b);
            disagree += usize::from(a != b);
        }
    }
    eprintln!("decisions: {pairs} pairs, {same} same-person by dlib, {disagree} disagreements");
    assert_eq!(disagree, 0);
    assert!(same > 0, "no same-person pair among the test faces");
}

/// A random-weight 64 px transform in a run-like folder whose pipeline.toml names `task`.
fn random_model(dir: &Path, task: &str) -> PathBuf {
    let m = dir.join(format!("model-{task}"));
    std::fs::create_dir_all(&m).unwrap();
    let cfg = diat_nets::TransformConfig::tiny(64);
    let vs = nn::VarStore::new(Device::Cpu);
    let _t = diat_nets::transform_net(&vs.root(), &cfg);
    diat_nets::checkpoint::save(&vs, &m.join("transform.safetensors"), "transform", &cfg).unwrap();
    std::fs::write(
        m.join("pipeline.toml"),
        format!("[task]\nname = \"{task}\"\n"),
    )
    .unwrap();
    m
}

/// `diat eval real` on Mouth_Slightly_Open with CelebA's labels on the CPU, plus `extra`.
fn eval_real(
    direction: &str,
    model: &Path,
    faces: &Path,
    extra: &[&str],
) -> (bool, String, String) {
    let celeba = common::celeba_samples();
    let mut args = vec![
        "eval",
        "real",
        "--attr",
        "Mouth_Slightly_Open",
        "--direction",
        direction,
        "--model",
        p(model),
        "--faces",
        p(faces),
        "--celeba",
        p(&celeba),
        "--device",
        "cpu",
    ];
    args.extend_from_slice(extra);
    diat(&args)
}

#[test]
fn eval_real_end_to_end_with_bad_inputs() {
    let tmp = tempfile::tempdir().unwrap();
    let faces = tmp.path().join("faces");
    std::fs::create_dir_all(&faces).unwrap();
    for f in some_faces(40, 100) {
        std::fs::copy(&f, faces.join(f.file_name().unwrap())).unwrap();
    }
    // A photo without a face (MTCNN finds none), a JPEG cut in half, an HTML page saved as .jpg.
    let noface = real_faces().join("187303.jpg");
    std::fs::copy(&noface, faces.join("187303.jpg")).unwrap();
    let bytes = std::fs::read(some_faces(1, 7)[0].clone()).unwrap();
    std::fs::write(faces.join("0-truncated.jpg"), &bytes[..bytes.len() / 2]).unwrap();
    std::fs::write(
        faces.join("0-html.jpg"),
        b"<!DOCTYPE html><html>nope</html>",
    )
    .unwrap();
    let model = random_model(tmp.path(), "mouth_open");
    let json = tmp.path().join("r.json");
    let sheet = tmp.path().join("sheet.png");
    let (ok, out, err) = eval_real(
        "add",
        &model,
        &faces,
        &[
            "--split",
            "all",
            "--limit",
            "14",
            "--json",
            p(&json),
            "--sheet",
            p(&sheet),
        ],
    );
    assert!(ok, "{out}\n{err}");
    assert!(!err.contains("panicked"), "{err}");
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(r["faces_evaluated"], 14);
    let cond = |name: &str| {
        r["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["condition"] == name)
            .unwrap_or_else(|| panic!("no condition {name}"))
            .clone()
    };
    for c in [
        "model",
        "T(x) only",
        "identity",
        "other identity",
        "blurred input",
        "model, blurred",
    ] {
        let c = cond(c);
        let s = c["attribute_success"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&s), "{c}");
    }
    // Changing nothing keeps every identity at distance 0; another person keeps (almost) none.
    assert_eq!(cond("identity")["identity_kept"], 1.0);
    assert_eq!(cond("identity")["mean_distance"], 0.0);
    let other = cond("other identity");
    assert!(other["identity_kept"].as_f64().unwrap() <= 0.25, "{other}");
    assert!(other["mean_distance"].as_f64().unwrap() > 0.6, "{other}");
    // The inputs are faces without an open mouth: CelebA says so, and so does the classifier on
    // most of them.
    assert!(cond("identity")["attribute_success"].as_f64().unwrap() <= 0.3);
    // Bad inputs are reported per file, not fatal. (They sort before the real faces, so they are
    // met first; the face-less photo only when reached.)
    let rejected = r["rejected"].as_array().unwrap();
    let reason = |name: &str| {
        rejected
            .iter()
            .find(|x| x["source"].as_str().unwrap().ends_with(name))
            .map(|x| x["reason"].as_str().unwrap().to_string())
    };
    // (Named outside CelebA's ids, so no label skips them before they are read.)
    assert!(reason("0-html.jpg").is_some(), "{rejected:?}");
    let truncated = reason("0-truncated.jpg").unwrap_or_default();
    assert!(truncated.contains("truncated"), "{rejected:?}");
    assert!(
        out.contains("identity kept") && out.contains("other identity"),
        "{out}"
    );
    assert!(image::open(&sheet).is_ok());
    // --strict: the rejected inputs make it fail, after the report is written.
    std::fs::remove_file(&json).unwrap();
    let (ok, _, err) = eval_real(
        "add",
        &model,
        &faces,
        &[
            "--split",
            "all",
            "--limit",
            "14",
            "--json",
            p(&json),
            "--strict",
        ],
    );
    assert!(
        !ok && err.contains("--strict:") && err.contains("face(s) rejected"),
        "{err}"
    );
    assert!(json.is_file());

    // The face-less photo alone: reported, nothing evaluated, exit 1.
    let lone = tmp.path().join("lone");
    std::fs::create_dir_all(&lone).unwrap();
    // Named outside CelebA (a label would deselect it before detection).
    std::fs::copy(&noface, lone.join("0-noface.jpg")).unwrap();
    let closer = random_model(tmp.path(), "mouth_close");
    let (ok, out, err) = eval_real("remove", &closer, &lone, &["--split", "all"]);
    assert!(!ok && !err.contains("panicked"), "{out}\n{err}");
    assert!(out.contains("no face found"), "{out}");
    assert!(err.contains("no face evaluated"), "{err}");

    // A model of the wrong task is refused before any work.
    let (ok, _, err) = eval_real("add", &closer, &faces, &[]);
    assert!(!ok && err.contains("trained for task mouth_close"), "{err}");
    assert!(!err.contains("panicked"), "{err}");

    // A zip of photos works like the folder.
    let zip_path = tmp.path().join("faces.zip");
    {
        let mut z = zip::ZipWriter::new(std::fs::File::create(&zip_path).unwrap());
        for f in some_faces(6, 100) {
            z.start_file(
                f.file_name().unwrap().to_string_lossy(),
                zip::write::SimpleFileOptions::default(),
            )
            .unwrap();
            std::io::Write::write_all(&mut z, &std::fs::read(&f).unwrap()).unwrap();
        }
        z.finish().unwrap();
    }
    let (ok, out, err) = eval_real("add", &model, &zip_path, &["--split", "all", "--json", "-"]);
    assert!(ok, "{out}\n{err}");
    let r: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(r["faces_evaluated"].as_u64().unwrap() >= 1);
}

/// `diat align` on a few real faces, then `diat classifier train` (tiny, one epoch) and `score`,
/// and the shipped classifier against its PyTorch module on the same crops.
#[test]
fn classifier_train_score_and_pytorch_parity() {
    let tmp = tempfile::tempdir().unwrap();
    let photos = tmp.path().join("photos");
    std::fs::create_dir_all(&photos).unwrap();
    for f in some_faces(60, 300) {
        std::fs::copy(&f, photos.join(f.file_name().unwrap())).unwrap();
    }
    let aligned = tmp.path().join("aligned");
    common::ok(&[
        "align",
        p(&photos),
        "--out",
        p(&aligned),
        "--largest",
        "--aligned",
        "--device",
        "cpu",
    ]);
    let celeba = common::celeba_samples();
    let out_file = tmp.path().join("cls/c.safetensors");
    // 60 faces hold too few identities for a fixed 80/10/10 division to give every side one:
    // try seeds until it does (deterministic).
    let mut trained = None;
    for seed in 1..40u64 {
        let (ok, out, err) = diat(&[
            "classifier",
            "train",
            "--faces",
            p(&aligned),
            "--celeba",
            p(&celeba),
            "--out",
            p(&out_file),
            "--size",
            "32",
            "--width",
            "4",
            "--epochs",
            "1",
            "--batch",
            "16",
            "--split-seed",
            &seed.to_string(),
            "--device",
            "cpu",
        ]);
        assert!(!err.contains("panicked"), "{err}");
        if ok {
            trained = Some((seed, out));
            break;
        }
        assert!(
            err.contains("no training or no validation identity"),
            "{err}"
        );
    }
    let (seed, out) = trained.expect("some seed splits 60 faces three ways");
    assert!(
        out.contains("Mouth_Slightly_Open") && out.contains("balanced"),
        "{out}"
    );
    let card: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_file.with_extension("json")).unwrap()).unwrap();
    assert_eq!(card["data"]["used"], 60);
    assert_eq!(card["report"]["val"].as_array().unwrap().len(), 5);
    let md = std::fs::read_to_string(out_file.with_extension("md")).unwrap();
    assert!(
        md.contains("sha256") && md.contains("Held-out identities"),
        "{md}"
    );
    let score = common::ok(&[
        "classifier",
        "score",
        "--faces",
        p(&aligned),
        "--celeba",
        p(&celeba),
        "--classifier",
        p(&out_file),
        "--split",
        "val",
        "--split-seed",
        &seed.to_string(),
        "--device",
        "cpu",
    ]);
    assert!(score.contains("Eyeglasses"), "{score}");

    // The shipped classifier: diat and its PyTorch module agree on real crops.
    let shipped = common::repo("zoo/eval/attr_classifier_v1.safetensors");
    assert_eq!(
        std::fs::read(&shipped).unwrap(),
        diat_eval::classifier::SHIPPED
    );
    let cls = diat_eval::classifier::Classifier::shipped(Device::Cpu).unwrap();
    let s = cls.config().image_size as u32;
    let crops_dir = tmp.path().join("crops");
    std::fs::create_dir_all(&crops_dir).unwrap();
    let det = Mtcnn::load_default(Device::Cpu, MtcnnConfig::default()).unwrap();
    let mut files = Vec::new();
    let mut crops = Vec::new();
    for (k, f) in some_faces(8, 300).iter().enumerate() {
        let img = load_photo(f).unwrap();
        let d = det.detect(img.as_raw(), img.width(), img.height()).unwrap();
        let lm: Landmarks = d[0].celeba_landmarks().map(|q| q.map(f64::from));
        let face = align_face(&img, &lm, diat_eval::classifier::window(s as i64), None).unwrap();
        let path = crops_dir.join(format!("{k}.png"));
        face.crop.save(&path).unwrap();
        files.push(path);
        crops.push(face.crop);
    }
    let json = tmp.path().join("probs.json");
    let mut args = vec![
        p(&common::repo("scripts/reference/classifier_reference.py")).to_string(),
        "probs".into(),
        "--weights".into(),
        p(&shipped).into(),
        "--json".into(),
        p(&json).into(),
        "--images".into(),
    ];
    args.extend(files.iter().map(|f| p(f).to_string()));
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    run_python(&argv);
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let attrs = cls.config().attributes.clone();
    for (a, name) in attrs.iter().enumerate() {
        let ours = cls.probability(&crops, name).unwrap();
        for (k, v) in ours.iter().enumerate() {
            let theirs = doc["probabilities"][k][a].as_f64().unwrap();
            assert!(
                (v - theirs).abs() < 1e-5,
                "{name} face {k}: diat {v}, PyTorch {theirs}"
            );
        }
    }
}

/// dlib's whole path (its detector, 5-point predictor, chip and network) against diat's: with
/// dlib's own 5 points, `diat_align::chip` + the port give dlib's descriptors (within 1e-4); with
/// diat's path (MTCNN landmarks → chip) the same/different decisions agree on nearly every pair.
#[test]
fn dlib_pipeline_end_to_end_on_real_faces() {
    let tmp = tempfile::tempdir().unwrap();
    let mut pngs = Vec::new();
    for f in faces_of_few_people(32) {
        let img = load_photo(&f).unwrap();
        let out = tmp
            .path()
            .join(format!("{}.png", f.file_stem().unwrap().to_string_lossy()));
        img.save(&out).unwrap();
        pngs.push(out);
    }
    let json = tmp.path().join("pipeline.json");
    let mut args: Vec<String> = vec![
        p(&common::repo("scripts/dlib/reference.py")).into(),
        "pipeline".into(),
        "--json".into(),
        p(&json).into(),
        "--images".into(),
    ];
    args.extend(pngs.iter().map(|f| p(f).to_string()));
    run_python(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let desc = FaceDescriptor::load_default(Device::Cpu).unwrap();
    let det = Mtcnn::load_default(Device::Cpu, MtcnnConfig::default()).unwrap();
    let (mut dlib_d, mut ported, mut ours) = (Vec::new(), Vec::new(), Vec::new());
    let mut worst = 0f64;
    for row in doc["images"].as_array().unwrap() {
        if row["faces"] == 0 {
            continue;
        }
        let img = load_photo(Path::new(row["file"].as_str().unwrap())).unwrap();
        let pts: Vec<[f64; 2]> = row["points"]
            .as_array()
            .unwrap()
            .iter()
            .map(|q| [q[0].as_f64().unwrap(), q[1].as_f64().unwrap()])
            .collect();
        let pts: [[f64; 2]; 5] = pts.try_into().unwrap();
        let c = chip::dlib_chip_from_dlib5(&img, &pts, 150, 0.25).unwrap();
        let mine = desc.describe(&[c.as_raw().as_slice()], 1).unwrap()[0];
        let theirs: Vec<f32> = row["descriptor"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap() as f32)
            .collect();
        for (a, b) in mine.iter().zip(&theirs) {
            worst = worst.max(f64::from((a - b).abs()));
        }
        let mut found = det.detect(img.as_raw(), img.width(), img.height()).unwrap();
        found.sort_by(|a, b| b.area().total_cmp(&a.area()));
        let Some(d) = found.first() else { continue };
        let lm: Landmarks = d.celeba_landmarks().map(|q| q.map(f64::from));
        let c = chip::face_chip(&img, &lm, 150, 0.25).unwrap();
        ours.push(desc.describe(&[c.as_raw().as_slice()], 1).unwrap()[0]);
        dlib_d.push(theirs.try_into().unwrap());
        ported.push(mine);
    }
    assert!(dlib_d.len() >= 24, "dlib found {} faces", dlib_d.len());
    eprintln!(
        "dlib's pipeline vs diat's chip + port with dlib's points: {} faces, max |diff| = {worst:.2e}",
        dlib_d.len()
    );
    assert!(worst <= 1e-4, "{worst}");
    let (mut pairs, mut agree, mut same) = (0, 0, 0);
    for i in 0..ours.len() {
        for j in i + 1..ours.len() {
            let a: &[f32; 128] = &dlib_d[i];
            let b: &[f32; 128] = &dlib_d[j];
            let theirs = distance(a, b) < SAME_PERSON_THRESHOLD;
            let mine = distance(&ours[i], &ours[j]) < SAME_PERSON_THRESHOLD;
            pairs += 1;
            same += usize::from(theirs);
            agree += usize::from(theirs == mine);
        }
    }
    let share = agree as f64 / pairs as f64;
    eprintln!(
        "diat's path (MTCNN → chip) vs dlib's: {agree}/{pairs} pair decisions agree ({:.1} %), {same} same-person pairs by dlib",
        100.0 * share
    );
    assert!(same >= 20, "{same}");
    assert!(share >= 0.95, "{share}");
}
