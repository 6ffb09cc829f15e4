//! Library-level tests of the synthetic faces: determinism, file formats, attribute columns versus
//! what is drawn, counterfactual locality, the judge's accuracy and the evaluation baselines.

use diat_common::progress::{Mode, Progress};
use diat_synth::dataset::{Manifest, SynthConfig, write_dataset, write_images};
use diat_synth::eval::{Direction, EvalConfig, Transform, evaluate};
use diat_synth::face::{Beard, FaceSpec};
use diat_synth::image_io::{Img, decode};
use diat_synth::judge::{Frame, Judge, as_stored, score};
use diat_synth::mask::attribute_mask;
use diat_synth::{Attr, FLIPPABLE, HEIGHT, Layout, Renderer, WIDTH, render_rgb8};
use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::Path;

fn quiet() -> Progress {
    Progress::with_mode("test", None, Mode::Hidden)
}

fn files(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(
                    p.strip_prefix(root).unwrap().display().to_string(),
                    fs::read(&p).unwrap(),
                );
            }
        }
    }
    out
}

#[test]
fn same_seed_gives_the_same_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = SynthConfig::new(Layout::new(42, 36, 4));
    let a = tmp.path().join("a");
    let b = tmp.path().join("b");
    write_dataset(&cfg, &a, false, &quiet()).unwrap();
    // Another thread count must not matter either.
    let (r, _) =
        diat_synth::with_threads(Some(1), || write_dataset(&cfg, &b, false, &quiet())).unwrap();
    r.unwrap();
    let (fa, fb) = (files(&a), files(&b));
    assert_eq!(fa.keys().collect::<Vec<_>>(), fb.keys().collect::<Vec<_>>());
    for (k, v) in &fa {
        assert!(
            v == &fb[k],
            "{k} differs between two runs with the same seed"
        );
    }
    // A different seed gives different images.
    let c = tmp.path().join("c");
    write_dataset(
        &SynthConfig::new(Layout::new(43, 36, 4)),
        &c,
        false,
        &quiet(),
    )
    .unwrap();
    assert_ne!(
        fa["Img/img_align_celeba.zip"],
        files(&c)["Img/img_align_celeba.zip"]
    );
    // Refuses to overwrite unless asked.
    assert!(write_dataset(&cfg, &a, false, &quiet()).is_err());
    write_dataset(&cfg, &a, true, &quiet()).unwrap();
    assert_eq!(files(&a), fa);
}

#[test]
fn dataset_has_the_official_layout_and_line_formats() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("celeba");
    let cfg = SynthConfig::new(Layout::new(7, 30, 3));
    let summary = write_dataset(&cfg, &root, false, &quiet()).unwrap();
    assert_eq!(summary.manifest.partitions.iter().sum::<u32>(), 30);
    assert_eq!(Manifest::read(&root).unwrap(), summary.manifest);

    let text = |p: &str| fs::read_to_string(root.join(p)).unwrap();
    let attr = text("Anno/list_attr_celeba.txt");
    let lines: Vec<&str> = attr.split("\r\n").collect();
    assert_eq!(
        lines.len(),
        30 + 3,
        "count, header, 30 rows, empty after the final CRLF"
    );
    assert_eq!(lines[0], "30");
    assert_eq!(lines[1], Attr::NAMES.join(" ") + " ");
    assert!(
        !attr.replace("\r\n", "").contains('\n'),
        "every line ends with CRLF"
    );
    for (i, l) in lines[2..32].iter().enumerate() {
        assert_eq!(&l[..10], format!("{:06}.jpg", i + 1));
        assert_eq!(l.len(), 10 + 40 * 3);
        for f in l.as_bytes()[10..].chunks(3) {
            assert!(f == b" -1" || f == b"  1", "{l}");
        }
    }
    let lm = text("Anno/list_landmarks_align_celeba.txt");
    let lines: Vec<&str> = lm.split("\r\n").collect();
    assert_eq!(lines[0], "30");
    assert_eq!(
        lines[1],
        "lefteye_x lefteye_y righteye_x righteye_y nose_x nose_y leftmouth_x leftmouth_y rightmouth_x rightmouth_y"
    );
    for (i, l) in lines[2..32].iter().enumerate() {
        assert_eq!(l.len(), 10 + 1 + 10 * 5, "{l:?}");
        let v: Vec<i32> = l[11..]
            .split_whitespace()
            .map(|x| x.parse().unwrap())
            .collect();
        let spec = cfg.spec(i as u32);
        assert_eq!(
            v,
            spec.landmarks().to_row().to_vec(),
            "landmarks are the drawn ones"
        );
    }
    let ids = text("Anno/identity_CelebA.txt");
    assert!(
        ids.starts_with("000001.jpg 1\r\n000002.jpg 1\r\n000003.jpg 1\r\n000004.jpg 2\r\n"),
        "{ids}"
    );
    let parts = text("Eval/list_eval_partition.txt");
    let parts: Vec<(String, u8)> = parts
        .split("\r\n")
        .filter(|l| !l.is_empty())
        .map(|l| (l[..10].to_string(), l[11..].parse().unwrap()))
        .collect();
    assert_eq!(parts.len(), 30);
    // Sorted like CelebA's (train, then val, then test) and split per identity.
    assert!(parts.windows(2).all(|w| w[0].1 <= w[1].1));
    for p in [0, 1, 2] {
        assert!(parts.iter().any(|x| x.1 == p), "split {p} is empty");
    }
    for id in 0..10 {
        let s: Vec<u8> = parts[id * 3..id * 3 + 3].iter().map(|x| x.1).collect();
        assert!(
            s.iter().all(|&x| x == s[0]),
            "identity {} straddles splits: {s:?}",
            id + 1
        );
    }

    // Same style as the real files, where they are available.
    let real = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/celeba/Anno");
    if real.join("list_attr_celeba.txt").is_file() {
        let mut head = vec![0u8; 4096];
        let n = fs::File::open(real.join("list_attr_celeba.txt"))
            .unwrap()
            .read(&mut head)
            .unwrap();
        let head = String::from_utf8_lossy(&head[..n]).to_string();
        let real_lines: Vec<&str> = head.split("\r\n").collect();
        assert_eq!(
            real_lines[1],
            text("Anno/list_attr_celeba.txt")
                .split("\r\n")
                .nth(1)
                .unwrap()
        );
        assert_eq!(real_lines[2].len(), 10 + 40 * 3);
        let real_lm = fs::read_to_string(real.join("list_landmarks_align_celeba.txt")).unwrap();
        let rl: Vec<&str> = real_lm.split("\r\n").collect();
        assert_eq!(rl[1], lm.split("\r\n").nth(1).unwrap());
        assert_eq!(rl[2].len(), lm.split("\r\n").nth(2).unwrap().len());
        let real_id = fs::read_to_string(real.join("identity_CelebA.txt")).unwrap();
        assert!(real_id.starts_with("000001.jpg 2880\r\n"));
    }

    // The zip: the official member layout, decodable 178×218 JPEGs.
    let mut z =
        zip::ZipArchive::new(fs::File::open(root.join("Img/img_align_celeba.zip")).unwrap())
            .unwrap();
    assert_eq!(z.len(), 31);
    assert_eq!(z.by_index(0).unwrap().name(), "img_align_celeba/");
    let mut names = Vec::new();
    for i in 1..z.len() {
        let mut f = z.by_index(i).unwrap();
        names.push(f.name().to_string());
        if i <= 3 {
            let mut b = Vec::new();
            f.read_to_end(&mut b).unwrap();
            assert_eq!(&b[..2], &[0xFF, 0xD8]);
            let img = decode(&b, Path::new("x.jpg")).unwrap();
            assert_eq!((img.w, img.h), (WIDTH, HEIGHT));
        }
    }
    assert_eq!(names[0], "img_align_celeba/000001.jpg");
    assert_eq!(names[29], "img_align_celeba/000030.jpg");
}

#[test]
fn attribute_columns_match_what_is_drawn() {
    let layout = Layout::new(5, 600, 6);
    let judge = Judge::calibrate(Frame::FULL, 90, 60);
    let mut r = Renderer::new();
    let mut agree = BTreeMap::<&str, (usize, usize)>::new();
    for i in (0..layout.count).step_by(3) {
        let spec = FaceSpec::for_image(&layout, i);
        let row = spec.attributes();
        let img = as_stored(&mut r, &spec, 90);
        for a in FLIPPABLE {
            let e = agree.entry(a.name()).or_default();
            e.1 += 1;
            if judge.detect(a, &img, &spec.landmarks()) == Some(row.get(a)) {
                e.0 += 1;
            }
        }
        // The other columns follow consistently from what is drawn.
        let male = row.get(Attr::Male);
        let young = row.get(Attr::Young);
        assert_eq!(row.get(Attr::GrayHair), !young);
        assert!(!(row.get(Attr::BlackHair) && row.get(Attr::BlondHair)));
        assert!(!(row.get(Attr::BrownHair) && row.get(Attr::BlondHair)));
        assert!(
            !(row.get(Attr::GrayHair)
                && (row.get(Attr::BlackHair)
                    || row.get(Attr::BlondHair)
                    || row.get(Attr::BrownHair)))
        );
        assert_eq!(
            row.get(Attr::NoBeard),
            !(row.get(Attr::Goatee) || (male && spec.identity.beard == Beard::Full))
        );
        if !male {
            for a in [
                Attr::Goatee,
                Attr::Mustache,
                Attr::FiveOClockShadow,
                Attr::Sideburns,
                Attr::Bald,
                Attr::WearingNecktie,
            ] {
                assert!(!row.get(a), "a woman with {a}");
            }
        } else {
            for a in [
                Attr::WearingLipstick,
                Attr::HeavyMakeup,
                Attr::WearingEarrings,
                Attr::WearingNecklace,
            ] {
                assert!(!row.get(a), "a man with {a}");
            }
        }
        assert!(
            !(row.get(Attr::Bald) && (row.get(Attr::Bangs) || row.get(Attr::RecedingHairline)))
        );
        assert!(
            !row.get(Attr::Blurry) && !row.get(Attr::WearingHat),
            "never drawn"
        );
        assert!(
            !row.get(Attr::DoubleChin) || row.get(Attr::Chubby),
            "double chin without chubby"
        );
    }
    for (a, (ok, n)) in &agree {
        let acc = *ok as f64 / *n as f64;
        assert!(
            acc >= 0.98,
            "{a}: the judge agrees with the column on only {ok}/{n}"
        );
    }
    // Prevalence: every drawn attribute occurs both ways in reasonable proportions.
    let rows: Vec<_> = (0..layout.count)
        .map(|i| FaceSpec::for_image(&layout, i).attributes())
        .collect();
    for a in FLIPPABLE {
        let p = rows.iter().filter(|r| r.get(a)).count() as f64 / rows.len() as f64;
        assert!((0.08..0.92).contains(&p), "{a}: prevalence {p}");
    }
}

#[test]
fn local_counterfactuals_change_only_their_mask() {
    let layout = Layout::new(9, 3000, 3);
    let mut changed_inside = 0;
    for i in (0..layout.count).step_by(25) {
        let spec = FaceSpec::for_image(&layout, i);
        let a = render_rgb8(&spec);
        for attr in [Attr::Eyeglasses, Attr::MouthSlightlyOpen, Attr::Smiling] {
            let twin = spec.flipped(attr).unwrap();
            assert_eq!(twin.landmarks(), spec.landmarks(), "same landmarks");
            let b = render_rgb8(&twin);
            let mask = attribute_mask(attr, &spec.landmarks())
                .unwrap()
                .bitmap(WIDTH, HEIGHT);
            let mut inside = 0;
            for p in 0..WIDTH * HEIGHT {
                if a[3 * p..3 * p + 3] != b[3 * p..3 * p + 3] {
                    assert!(
                        mask[p],
                        "image {i}, {attr}: pixel ({}, {}) outside the mask changed",
                        p % WIDTH,
                        p / WIDTH
                    );
                    inside += 1;
                }
            }
            assert!(
                inside > 20,
                "image {i}, {attr}: the counterfactual barely changes ({inside} pixels)"
            );
            changed_inside += 1;
        }
        // Global attributes do change outside any local mask.
        let m = render_rgb8(&spec.flipped(Attr::Male).unwrap());
        let diff = a.chunks(3).zip(m.chunks(3)).filter(|(x, y)| x != y).count();
        assert!(
            diff > 2000,
            "image {i}: flipping Male changes only {diff} pixels"
        );
    }
    assert_eq!(changed_inside, 120 * 3);
}

#[test]
fn the_judge_is_accurate_on_fresh_renders_at_both_sizes() {
    // Calibrated on its own seed; tested on pairs it has never seen.
    let layout = Layout::new(2024, 150, 2);
    let mut r = Renderer::new();
    for frame in [Frame::FULL, Frame::celeba_128()] {
        let judge = Judge::calibrate(frame, 90, 80);
        for t in &judge.thresholds {
            assert!(t.calibration_accuracy >= 0.98, "{t:?}");
        }
        for attr in FLIPPABLE {
            let mut ok = 0;
            let mut n = 0;
            for i in 0..layout.count {
                let spec = FaceSpec::for_image(&layout, i);
                for on in [false, true] {
                    let s = spec.with(attr, on).unwrap();
                    let img = frame.apply(&as_stored(&mut r, &s, 90));
                    n += 1;
                    if judge.detect(attr, &img, &s.landmarks()) == Some(on) {
                        ok += 1;
                    }
                }
            }
            let acc = ok as f64 / n as f64;
            assert!(acc >= 0.98, "{}×{} {attr}: {ok}/{n}", frame.w, frame.h);
        }
    }
    // No detector for undrawn columns.
    let spec = FaceSpec::for_image(&layout, 0);
    assert!(
        score(
            Attr::Bangs,
            &Img::filled(WIDTH, HEIGHT, [0, 0, 0]),
            Frame::FULL,
            &spec.landmarks()
        )
        .is_none()
    );
}

#[test]
fn baselines_score_as_expected() {
    let tmp = tempfile::tempdir().unwrap();
    let synth = SynthConfig::new(Layout::new(3, 1500, 5));
    for (attr, direction) in [
        (Attr::Eyeglasses, Direction::Add),
        (Attr::Eyeglasses, Direction::Remove),
        (Attr::MouthSlightlyOpen, Direction::Flip),
        (Attr::Smiling, Direction::Flip),
        (Attr::Male, Direction::Flip),
        (Attr::Young, Direction::Flip),
    ] {
        let mut cfg = EvalConfig::new(synth.clone(), attr);
        cfg.direction = direction;
        cfg.limit = 16;
        cfg.calibration_pairs = 60;
        let report = evaluate(
            &cfg,
            &[Transform::Identity, Transform::Counterfactual],
            Mode::Hidden,
        )
        .unwrap();
        assert_eq!(report.inputs, 16, "{attr}");
        assert!(
            report.judge_agrees_on_inputs >= 0.93,
            "{attr}: {}",
            report.judge_agrees_on_inputs
        );
        let (id, cf) = (&report.results[0], &report.results[1]);
        assert!(
            id.attribute_success <= 0.07,
            "{attr} identity success {}",
            id.attribute_success
        );
        assert!(
            cf.attribute_success >= 0.93,
            "{attr} counterfactual success {}",
            cf.attribute_success
        );
        // The twin differs from the reference only by JPEG loss.
        assert!(
            cf.whole.psnr > 35.0 && cf.whole.ssim > 0.95,
            "{attr}: {:?}",
            cf.whole
        );
        if attr.is_local() {
            let (inn, out) = (
                id.inside_mask.as_ref().unwrap(),
                id.outside_mask.as_ref().unwrap(),
            );
            // The identity keeps everything outside the mask (JPEG loss only) but not inside.
            assert!(
                out.psnr > 35.0 && out.psnr > inn.psnr + 5.0,
                "{attr}: in {inn:?} out {out:?}"
            );
        } else {
            assert!(id.inside_mask.is_none() && id.outside_mask.is_none());
        }
    }

    // A folder of outputs: the inputs themselves, written as files, score like the identity, also
    // at 128×128 (some missing).
    let mut cfg = EvalConfig::new(synth.clone(), Attr::Smiling);
    cfg.limit = 10;
    cfg.calibration_pairs = 60;
    let inputs = tmp.path().join("inputs");
    assert_eq!(diat_synth::eval::write_inputs(&cfg, &inputs).unwrap(), 10);
    let report = evaluate(
        &cfg,
        &[Transform::Identity, Transform::Outputs(inputs.clone())],
        Mode::Hidden,
    )
    .unwrap();
    let (id, dir) = (&report.results[0], &report.results[1]);
    assert_eq!(dir.evaluated, 10);
    assert_eq!(id.attribute_success, dir.attribute_success);
    assert!((id.whole.psnr - dir.whole.psnr).abs() < 1e-9);
    let small = tmp.path().join("small");
    fs::create_dir_all(&small).unwrap();
    for (k, (i, _)) in cfg.inputs().iter().enumerate().skip(2) {
        let img = diat_synth::image_io::read(&inputs.join(format!("{:06}.jpg", i + 1))).unwrap();
        let img = Frame::celeba_128().apply(&img);
        diat_synth::image_io::write_png(&small.join(format!("{:06}.png", i + 1)), &img).unwrap();
        let _ = k;
    }
    let report = evaluate(&cfg, &[Transform::Outputs(small.clone())], Mode::Hidden).unwrap();
    assert_eq!(report.results[0].frame, "128x128");
    assert_eq!(
        (report.results[0].evaluated, report.results[0].missing),
        (8, 2)
    );
    assert!(report.results[0].attribute_success <= 0.15);
    // Wrong sizes are a clear error, not a panic.
    let bad = tmp.path().join("bad");
    fs::create_dir_all(&bad).unwrap();
    let (i0, _) = cfg.inputs()[0];
    diat_synth::image_io::write_png(
        &bad.join(format!("{:06}.png", i0 + 1)),
        &Img::filled(100, 100, [1, 2, 3]),
    )
    .unwrap();
    let err = evaluate(&cfg, &[Transform::Outputs(bad)], Mode::Hidden)
        .unwrap_err()
        .to_string();
    assert!(err.contains("100×100"), "{err}");
    let err = evaluate(
        &cfg,
        &[Transform::Outputs(tmp.path().join("nope"))],
        Mode::Hidden,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("does not exist"), "{err}");
}

#[test]
fn single_images_and_twins_render_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = Layout::new(11, 50, 5);
    let cfg = SynthConfig::new(layout);
    let full = tmp.path().join("full");
    write_dataset(&cfg, &full, false, &quiet()).unwrap();
    let loose = tmp.path().join("loose");
    write_images(&cfg, &[16, 41], &loose).unwrap();
    let mut z =
        zip::ZipArchive::new(fs::File::open(full.join("Img/img_align_celeba.zip")).unwrap())
            .unwrap();
    let mut b = Vec::new();
    z.by_name("img_align_celeba/000017.jpg")
        .unwrap()
        .read_to_end(&mut b)
        .unwrap();
    assert_eq!(
        fs::read(loose.join("000017.jpg")).unwrap(),
        b,
        "re-rendered alone, same bytes"
    );
    // The counterfactual dataset has the same landmarks and identities, and the flipped column.
    let twin_cfg = SynthConfig {
        counterfactual: Some(Attr::Smiling),
        ..cfg.clone()
    };
    let twins = tmp.path().join("twins");
    write_dataset(&twin_cfg, &twins, false, &quiet()).unwrap();
    for f in [
        "Anno/list_landmarks_align_celeba.txt",
        "Anno/identity_CelebA.txt",
        "Eval/list_eval_partition.txt",
    ] {
        assert_eq!(
            fs::read(full.join(f)).unwrap(),
            fs::read(twins.join(f)).unwrap(),
            "{f}"
        );
    }
    let a = fs::read_to_string(full.join("Anno/list_attr_celeba.txt")).unwrap();
    let t = fs::read_to_string(twins.join("Anno/list_attr_celeba.txt")).unwrap();
    let col = Attr::Smiling.index();
    for (la, lt) in a
        .split("\r\n")
        .skip(2)
        .zip(t.split("\r\n").skip(2))
        .filter(|(l, _)| !l.is_empty())
    {
        let (va, vt) = (
            &la[10 + 3 * col..13 + 3 * col],
            &lt[10 + 3 * col..13 + 3 * col],
        );
        assert_ne!(va, vt);
    }
    // Bad input is an error, not a panic.
    assert!(write_images(&cfg, &[50], &loose).is_err());
    assert!(
        SynthConfig {
            counterfactual: Some(Attr::Bangs),
            ..cfg.clone()
        }
        .validate()
        .is_err()
    );
    assert!(SynthConfig::new(Layout::new(1, 0, 1)).validate().is_err());
    assert!(SynthConfig { quality: 0, ..cfg }.validate().is_err());
}
