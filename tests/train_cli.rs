//! `diat train` end to end on tiny CPU stores: artefacts, skipping finished stages, SIGKILL and
//! SIGINT followed by --resume (reproducing the uninterrupted run's losses exactly), and
//! non-finite losses.

#![cfg(feature = "torch")] // needs libtorch: not part of the curator's build's tests

mod common;

use diat_celeba::annotations::attribute_index;
use diat_celeba::crop::CropSpec;
use diat_celeba::store::{MetaRow, StoreWriter};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SIZE: u32 = 32;

/// A smooth pseudo-random face-like image: a bright ellipse on a background, plus a dark "mouth"
/// bar when `open`.
fn image(seed: u32, open: bool) -> Vec<u8> {
    let mut v = vec![0u8; (SIZE * SIZE * 3) as usize];
    let h = |k: u32| (seed.wrapping_mul(2654435761).wrapping_add(k * 97) >> 8) % 200;
    for y in 0..SIZE {
        for x in 0..SIZE {
            let (dx, dy) = (x as f32 - 16.0, y as f32 - 16.0);
            let face = dx * dx / 120.0 + dy * dy / 180.0 < 1.0;
            let mouth = open && (12..20).contains(&x) && (21..25).contains(&y);
            let i = ((y * SIZE + x) * 3) as usize;
            let px = if mouth {
                [40, 10, 10]
            } else if face {
                [200, (150 + h(1) / 4) as u8, 120]
            } else {
                [h(2) as u8, h(3) as u8, h(4) as u8]
            };
            v[i..i + 3].copy_from_slice(&px);
        }
    }
    v
}

fn store(dir: &Path, role: &str, n: u32, open: impl Fn(u32) -> bool, masks: bool) {
    let crop = CropSpec::default().with_size(SIZE);
    let mut w = StoreWriter::create(dir, role, Some("mouth_open"), crop, 0, masks, false).unwrap();
    let a = attribute_index("Mouth_Slightly_Open").unwrap();
    let mut mask = vec![0u8; (SIZE * SIZE) as usize];
    for y in 19..27 {
        for x in 10..22 {
            mask[(y * SIZE + x) as usize] = 255;
        }
    }
    for i in 0..n {
        let mut attrs = [false; 40];
        attrs[a] = open(i);
        let meta = MetaRow {
            id: format!("{:06}.jpg", i + 1),
            split: None,
            identity: Some(i / 4 + 1),
            attrs,
            landmarks: [f32::NAN; 10],
            cluster: None,
        };
        w.push(&image(i, open(i)), masks.then_some(mask.as_slice()), meta)
            .unwrap();
    }
    let task = serde_json::json!({"task": {"name": "mouth_open", "attribute": "Mouth_Slightly_Open", "guided_value": true, "region": "mouth"}});
    w.finish(task).unwrap();
}

fn data(dir: &Path) -> PathBuf {
    let d = dir.join("data");
    store(&d.join("pretrain"), "pretrain", 48, |i| i % 2 == 0, false);
    store(
        &d.join("tasks/mouth_open/guided"),
        "guided",
        24,
        |_| true,
        true,
    );
    store(
        &d.join("tasks/mouth_open/input"),
        "input",
        16,
        |_| false,
        true,
    );
    d
}

fn pipeline() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines/smoke/mouth_open.toml")
}

fn train_cmd(data: &Path, run: &Path, extra: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_diat"));
    c.arg("train")
        .arg("--pipeline")
        .arg(pipeline())
        .arg("--run-dir")
        .arg(run);
    c.arg("--set")
        .arg(format!("task.data=\"{}\"", data.display()));
    for s in [
        "stages.pretrain_t.steps=20",
        "stages.pretrain_d.steps=10",
        "stages.adversarial.steps=30",
        "train.checkpoint_every=5",
        "train.log_every=1",
        "train.sample_every=15",
    ] {
        c.arg("--set").arg(s);
    }
    c.args(extra)
        .env("DIAT_PROGRESS", "none")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

/// (stage, step, [(loss name, value)]) per logged line.
type Logged = Vec<(String, u64, Vec<(String, f64)>)>;

fn losses(run: &Path) -> Logged {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let o = v.as_object().unwrap();
            let ls = o
                .iter()
                .filter(|(k, _)| k.starts_with("loss_"))
                .map(|(k, x)| (k.clone(), x.as_f64().unwrap()))
                .collect();
            (
                v["stage"].as_str().unwrap().to_string(),
                v["step"].as_u64().unwrap(),
                ls,
            )
        })
        .collect()
}

/// Losses equal up to float reassociation: MKL/oneDNN may pick alignment-dependent kernels for
/// tensors restored from a checkpoint, which moves the 7th significant digit now and then.
fn assert_same_losses(got: &Logged, want: &Logged) {
    assert_eq!(got.len(), want.len(), "same metric lines");
    for (g, w) in got.iter().zip(want) {
        assert_eq!((&g.0, g.1), (&w.0, w.1));
        assert_eq!(g.2.len(), w.2.len());
        for ((gk, gv), (wk, wv)) in g.2.iter().zip(&w.2) {
            assert_eq!(gk, wk);
            let rel = (gv - wv).abs() / wv.abs().max(1e-6);
            assert!(rel < 1e-5, "{} step {} {gk}: {gv} vs {wv}", g.0, g.1);
        }
    }
}

fn wait_for(p: impl Fn() -> bool, what: &str) {
    let t = Instant::now();
    while !p() {
        assert!(
            t.elapsed() < Duration::from_secs(300),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn has_checkpoint(run: &Path, stage: &str) -> bool {
    std::fs::read_dir(run.join("checkpoints").join(stage))
        .map(|rd| {
            rd.flatten().any(|e| {
                e.file_name().to_string_lossy().starts_with("step-")
                    && e.path().join("state.json").exists()
            })
        })
        .unwrap_or(false)
}

#[test]
fn smoke_run_then_sigkill_and_sigint_resumes_reproduce_it() {
    let tmp = tempfile::tempdir().unwrap();
    let data = data(tmp.path());
    let a = tmp.path().join("a");
    let out = train_cmd(&data, &a, &["--set", "task.variant=\"diat-a0\""])
        .output()
        .unwrap();
    common::assert_ok(&out, "diat train (DIAT-A0 smoke)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("adversarial: trained"), "{stdout}");
    for f in [
        "resolved.toml",
        "run.json",
        "metrics.jsonl",
        "loss_curve.png",
        "final/transform.safetensors",
        "final/discriminator.safetensors",
        "samples/adversarial-step-00000030.png",
    ] {
        assert!(a.join(f).exists(), "{f}");
    }
    assert!(
        !a.join("final/enhance.safetensors").exists(),
        "DIAT-A0 has no enhancement"
    );
    assert!(
        a.join("checkpoints/adversarial")
            .read_dir()
            .unwrap()
            .count()
            <= 2,
        "keep-last-N"
    );
    let run_json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(a.join("run.json")).unwrap()).unwrap();
    assert_eq!(run_json["device"], "Cpu");
    let reference = losses(&a);
    assert_eq!(
        reference.iter().filter(|r| r.0 == "adversarial").count(),
        30
    );
    assert!(
        reference
            .iter()
            .any(|r| r.2.iter().any(|(k, _)| k == "loss_identity"))
    );

    // Finished stages are skipped; an existing run needs --resume.
    let out = train_cmd(
        &data,
        &a,
        &["--set", "task.variant=\"diat-a0\"", "--resume"],
    )
    .output()
    .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("adversarial: already done"));
    let out = train_cmd(&data, &a, &["--set", "task.variant=\"diat-a0\""])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--resume"));

    // SIGKILL in the middle of the adversarial stage, then --resume.
    interrupt_then_resume(
        &data,
        &tmp.path().join("b"),
        "adversarial",
        "KILL",
        &reference,
    );
    // SIGINT: finish the step, checkpoint, exit 130; --resume completes identically.
    interrupt_then_resume(
        &data,
        &tmp.path().join("c"),
        "pretrain_d",
        "INT",
        &reference,
    );
}

/// Starts a DIAT-A0 smoke run, sends `signal` once `stage` has a checkpoint, then `--resume`s it:
/// every logged loss must equal the uninterrupted run's (`reference`).
fn interrupt_then_resume(data: &Path, run: &Path, stage: &str, signal: &str, reference: &Logged) {
    let a0 = ["--set", "task.variant=\"diat-a0\""];
    let mut child = train_cmd(data, run, &a0).spawn().unwrap();
    wait_for(
        || has_checkpoint(run, stage),
        &format!("a {stage} checkpoint"),
    );
    Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(child.id().to_string())
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    if signal == "INT" {
        assert_eq!(
            status.code(),
            Some(130),
            "SIGINT exits 130 after a checkpoint"
        );
    } else {
        assert!(
            !run.join(format!("stages/{stage}/done.json")).exists(),
            "killed before {stage} finished"
        );
    }
    let out = train_cmd(data, run, &[&a0[..], &["--resume"]].concat())
        .output()
        .unwrap();
    common::assert_ok(&out, "--resume");
    assert_same_losses(&losses(run), reference);
}

/// `stages.adversarial.ema`: the weight average is checkpointed with the other networks, resumes
/// after a SIGKILL to the same model, and is the T the run hands on (`final/transform`).
#[test]
fn t_weight_average_is_the_stage_result_and_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    let data = data(tmp.path());
    let set = [
        "--set",
        "task.variant=\"diat-a0\"",
        "--set",
        "stages.adversarial.ema=0.8",
    ];
    let a = tmp.path().join("a");
    let out = train_cmd(&data, &a, &set).output().unwrap();
    common::assert_ok(&out, "diat train (EMA)");
    let reference = losses(&a);
    let read = |p: PathBuf| std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    let stage = a.join("stages/adversarial");
    let (avg, last) = (
        read(stage.join("transform_ema.safetensors")),
        read(stage.join("transform.safetensors")),
    );
    assert_eq!(
        read(a.join("final/transform.safetensors")),
        avg,
        "final T is the average"
    );
    assert_ne!(avg, last, "the average differs from the last iterate");
    let ckpt = std::fs::read_dir(a.join("checkpoints/adversarial"))
        .unwrap()
        .flatten()
        .next()
        .unwrap()
        .path();
    assert!(
        ckpt.join("transform_ema.safetensors").exists(),
        "{}",
        ckpt.display()
    );
    let resolved = std::fs::read_to_string(a.join("resolved.toml")).unwrap();
    assert!(resolved.contains("ema = 0.8"), "{resolved}");
    // Averaging only watches: without it, the same seed trains T and D exactly as with it.
    let plain = tmp.path().join("plain");
    let out = train_cmd(&data, &plain, &set[..2]).output().unwrap();
    common::assert_ok(&out, "diat train (no EMA)");
    assert_same_losses(&losses(&plain), &reference);
    assert!(
        !plain
            .join("stages/adversarial/transform_ema.safetensors")
            .exists()
    );

    // Killed in the middle of the adversarial stage, then resumed: the same average.
    let b = tmp.path().join("b");
    let mut child = train_cmd(&data, &b, &set).spawn().unwrap();
    wait_for(
        || has_checkpoint(&b, "adversarial"),
        "an adversarial checkpoint",
    );
    child.kill().unwrap();
    let _ = child.wait();
    assert!(!b.join("stages/adversarial/done.json").exists());
    let out = train_cmd(&data, &b, &[&set[..], &["--resume"]].concat())
        .output()
        .unwrap();
    common::assert_ok(&out, "--resume (EMA)");
    assert_same_losses(&losses(&b), &reference);
    let tensors = |p: PathBuf| {
        let mut v = tch::Tensor::read_safetensors(&p).unwrap();
        v.sort_by(|x, y| x.0.cmp(&y.0));
        v
    };
    let close = |x: PathBuf, y: PathBuf, what: &str| {
        let (tx, ty) = (tensors(x), tensors(y));
        assert_eq!(tx.len(), ty.len());
        for ((nx, vx), (ny, vy)) in tx.iter().zip(&ty) {
            assert_eq!(nx, ny);
            assert!(vx.allclose(vy, 1e-4, 1e-5, false), "{nx}: {what}");
        }
    };
    close(
        a.join("final/transform.safetensors"),
        b.join("final/transform.safetensors"),
        "the average differs after resume",
    );
    close(
        a.join("stages/adversarial/transform.safetensors"),
        plain.join("final/transform.safetensors"),
        "the last iterate differs from a run without averaging",
    );
}

#[test]
fn full_diat_a_with_local_enhancement_and_nan_detection() {
    let tmp = tempfile::tempdir().unwrap();
    let data = data(tmp.path());
    let run = tmp.path().join("r");
    let out = train_cmd(&data, &run, &["--set", "stages.enhance.steps=10"])
        .output()
        .unwrap();
    common::assert_ok(&out, "diat train (DIAT-A smoke)");
    assert!(run.join("final/enhance.safetensors").exists());
    assert!(run.join("samples/enhance-step-00000010.png").exists());

    // `diat apply` with the run's final networks: a folder with two faces and a broken file.
    let inputs = tmp.path().join("faces");
    std::fs::create_dir_all(&inputs).unwrap();
    for i in 0..2 {
        image::RgbImage::from_raw(SIZE, SIZE, image(100 + i, false))
            .unwrap()
            .save(inputs.join(format!("face{i}.png")))
            .unwrap();
    }
    std::fs::write(inputs.join("broken.jpg"), b"<html>not an image</html>").unwrap();
    let applied = tmp.path().join("applied");
    let out = Command::new(env!("CARGO_BIN_EXE_diat"))
        .args(["apply", "--cpu", "--model"])
        .arg(run.join("final"))
        .arg(&inputs)
        .arg("--out")
        .arg(&applied)
        .env("DIAT_PROGRESS", "none")
        .output()
        .unwrap();
    common::assert_ok(&out, "diat apply");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("2 image(s) written")
            && String::from_utf8_lossy(&out.stdout).contains("local enhancement")
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("skipped")
            && String::from_utf8_lossy(&out.stderr).contains("broken.jpg")
    );
    let face = image::open(applied.join("face0.png")).unwrap().into_rgb8();
    assert_eq!(face.dimensions(), (SIZE, SIZE));
    // --strict: the same run writes what it can, then fails because of the skipped file.
    let strict_out = tmp.path().join("applied-strict");
    let o = apply(&run.join("final"), &[&inputs], &strict_out, &["--strict"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--strict: 1 image(s) skipped"));
    assert!(strict_out.join("face0.png").is_file());

    apply_never_overwrites_nor_reads_truncated_images(&run.join("final"), tmp.path());
    an_incomplete_or_altered_final_is_refused(&run, tmp.path());

    // `--align` on real photos: a CelebA face placed in a larger photo is edited in place; a
    // photo without a face is reported and skipped.
    let samples = std::env::var("DIAT_CELEBA_SAMPLES")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/celeba"));
    let celeb = image::open(samples.join("Img/img_align_celeba/000001.jpg"))
        .unwrap()
        .into_rgb8();
    let mut photo = image::RgbImage::from_pixel(360, 300, image::Rgb([90, 120, 150]));
    image::imageops::overlay(&mut photo, &celeb, 100, 40);
    let photos = tmp.path().join("photos");
    std::fs::create_dir_all(&photos).unwrap();
    photo.save(photos.join("photo.png")).unwrap();
    image::RgbImage::from_pixel(120, 90, image::Rgb([200, 200, 200]))
        .save(photos.join("blank.png"))
        .unwrap();
    let edited = tmp.path().join("edited");
    let out = Command::new(env!("CARGO_BIN_EXE_diat"))
        .args(["apply", "--align", "--cpu", "--model"])
        .arg(run.join("final"))
        .arg(&photos)
        .arg("--out")
        .arg(&edited)
        .env("DIAT_PROGRESS", "none")
        .output()
        .unwrap();
    common::assert_ok(&out, "diat apply --align");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("1 photo(s) with 1 edited face(s)"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("blank.png: no face found"));
    let result = image::open(edited.join("photo.png")).unwrap().into_rgb8();
    assert_eq!(result.dimensions(), photo.dimensions());
    assert_eq!(
        result.get_pixel(5, 5),
        photo.get_pixel(5, 5),
        "far from the face the photo is untouched"
    );
    // The edit enters as a residual at the model's resolution (the default): the mouth region
    // changed, the rest of the face (the forehead) is bit-identical.
    let mouth_changed = (160..220)
        .flat_map(|x| (165..210).map(move |y| (x, y)))
        .any(|(x, y)| result.get_pixel(x, y) != photo.get_pixel(x, y));
    assert!(mouth_changed, "the mouth was edited");
    for (x, y) in [(189, 100), (150, 110), (230, 110)] {
        assert_eq!(
            result.get_pixel(x, y),
            photo.get_pixel(x, y),
            "({x}, {y}): outside the model's region the photo is untouched"
        );
    }
    // --paste replace puts the upsampled output over the whole face.
    let replaced = tmp.path().join("replaced");
    let out = Command::new(env!("CARGO_BIN_EXE_diat"))
        .args(["apply", "--align", "--cpu", "--paste", "replace", "--model"])
        .arg(run.join("final"))
        .arg(photos.join("photo.png"))
        .arg("--out")
        .arg(&replaced)
        .env("DIAT_PROGRESS", "none")
        .output()
        .unwrap();
    common::assert_ok(&out, "diat apply --align --paste replace");
    let r = image::open(replaced.join("photo.png")).unwrap().into_rgb8();
    assert_ne!(r.get_pixel(189, 100), photo.get_pixel(189, 100));

    // The three-step path with a model of another size and no extra flag: `align` (128 px
    // crops) → `apply` (a 32 px model) → `align --paste-back`.
    let step = |args: &[&std::ffi::OsStr], what: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_diat"))
            .args(args)
            .env("DIAT_PROGRESS", "none")
            .output()
            .unwrap();
        common::assert_ok(&out, what);
    };
    let (al, ed, pb) = (
        tmp.path().join("al"),
        tmp.path().join("ed"),
        tmp.path().join("pb"),
    );
    let photo_png = photos.join("photo.png");
    // `align` on the folder (a photo without a face in it): 0 with the count, 1 under --strict.
    for (strict, code) in [(false, 0), (true, 1)] {
        let mut c = Command::new(env!("CARGO_BIN_EXE_diat"));
        c.args(["align", "--device", "cpu"])
            .arg(&photos)
            .arg("--out")
            .arg(tmp.path().join(format!("al-{strict}")));
        if strict {
            c.arg("--strict");
        }
        let o = c.env("DIAT_PROGRESS", "none").output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(code), "--strict {strict}: {err}");
        assert!(err.contains("1 without a face"), "{err}");
    }
    step(
        &[
            "align".as_ref(),
            "--device".as_ref(),
            "cpu".as_ref(),
            photo_png.as_os_str(),
            "--out".as_ref(),
            al.as_os_str(),
        ],
        "diat align",
    );
    let crops = al.join("crop");
    step(
        &[
            "apply".as_ref(),
            "--cpu".as_ref(),
            "--model".as_ref(),
            run.join("final").as_os_str(),
            crops.as_os_str(),
            "--out".as_ref(),
            ed.as_os_str(),
        ],
        "diat apply on 128 px crops with a 32 px model",
    );
    let faces = al.join("faces.json");
    step(
        &[
            "align".as_ref(),
            "--paste-back".as_ref(),
            faces.as_os_str(),
            "--edited".as_ref(),
            ed.as_os_str(),
            "--out".as_ref(),
            pb.as_os_str(),
        ],
        "diat align --paste-back of 32 px edits",
    );
    let three = image::open(pb.join("photo.png")).unwrap().into_rgb8();
    assert_eq!(three.dimensions(), photo.dimensions());
    assert_eq!(three.get_pixel(189, 100), photo.get_pixel(189, 100));
    assert!(
        (160..220)
            .flat_map(|x| (165..210).map(move |y| (x, y)))
            .any(|(x, y)| three.get_pixel(x, y) != photo.get_pixel(x, y))
    );

    // A diverging loss (injected: the limits refuse the learning rates that would do it): the
    // run stops naming stage and step, keeping good checkpoints.
    let bad = tmp.path().join("bad");
    let out = train_cmd(&data, &bad, &[])
        .env("DIAT_FAULT_NONFINITE", "pretrain_t:12")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("stage pretrain_t, step") && err.contains("not finite"),
        "{err}"
    );
    for (_, dir) in std::fs::read_dir(bad.join("checkpoints/pretrain_t"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| ((), e.path()))
    {
        let state: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("state.json")).unwrap()).unwrap();
        for (_, v) in state["losses"].as_object().unwrap() {
            assert!(
                v.as_f64().is_some_and(f64::is_finite),
                "checkpoints hold finite states only: {state}"
            );
        }
    }
}

fn apply(model: &Path, inputs: &[&Path], out: &Path, extra: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_diat"))
        .args(["apply", "--cpu", "--model"])
        .arg(model)
        .args(inputs)
        .arg("--out")
        .arg(out)
        .args(extra)
        .env("DIAT_PROGRESS", "none")
        .output()
        .unwrap()
}

/// Two inputs never share an output name (`face.jpg` + `face.png`; an input named like another's
/// intermediate; one file name in two folders is an error before anything is written), and a
/// JPEG cut in half is refused as `diat data` and `diat align` refuse it.
fn apply_never_overwrites_nor_reads_truncated_images(model: &Path, tmp: &Path) {
    let dir = tmp.join("collide");
    std::fs::create_dir_all(&dir).unwrap();
    let (a, b) = (
        image::RgbImage::from_raw(SIZE, SIZE, image(7, false)).unwrap(),
        image::RgbImage::from_raw(SIZE, SIZE, image(8, true)).unwrap(),
    );
    a.save(dir.join("face.jpg")).unwrap();
    b.save(dir.join("face.png")).unwrap();
    b.save(dir.join("face.transform.png")).unwrap();
    let out = tmp.join("collide-out");
    let o = apply(model, &[&dir], &out, &[]);
    let stdout = common::assert_ok(&o, "apply with colliding stems");
    assert!(stdout.contains("3 image(s) written"), "{stdout}");
    let mut names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["face.jpg.png", "face.png.png", "face.transform.png"]
    );
    // With --keep-intermediate, face.png's T(x) would be face.png.transform.png, fine, but an
    // input already named like an intermediate of another collides: refused up front.
    std::fs::remove_file(dir.join("face.jpg")).unwrap();
    let out2 = tmp.join("collide-out2");
    let o = apply(model, &[&dir], &out2, &["--keep-intermediate"]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("would both be written as face.transform.png"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    assert!(!out2.exists() || std::fs::read_dir(&out2).unwrap().count() == 0);
    // The same file name in two folders.
    let other = tmp.join("collide-b");
    std::fs::create_dir_all(&other).unwrap();
    a.save(other.join("face.png")).unwrap();
    let o = apply(model, &[&dir, &other], &tmp.join("collide-out3"), &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("would both be written as face.png"));

    // A JPEG truncated in half: apply skips it (rc 1: nothing produced), as data and align do.
    let trunc = tmp.join("trunc");
    std::fs::create_dir_all(&trunc).unwrap();
    let celeba = common::celeba_samples().join("Img/img_align_celeba/000001.jpg");
    let bytes = std::fs::read(&celeba).unwrap();
    std::fs::write(trunc.join("half.jpg"), &bytes[..bytes.len() / 2]).unwrap();
    let o = apply(model, &[&trunc], &tmp.join("trunc-out"), &[]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("half.jpg") && err.contains("truncated JPEG"),
        "{err}"
    );
    assert!(!tmp.join("trunc-out/half.png").exists());
    let o = Command::new(env!("CARGO_BIN_EXE_diat"))
        .args(["align", "--device", "cpu"])
        .arg(&trunc)
        .arg("--out")
        .arg(tmp.join("trunc-aligned"))
        .env("DIAT_PROGRESS", "none")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("half.jpg") && err.contains("truncated JPEG"),
        "align: {err}"
    );
    let mut cropper = diat_celeba::crop::Cropper::new(CropSpec::default().with_size(SIZE));
    let mut px = vec![0u8; (SIZE * SIZE * 3) as usize];
    let e = cropper
        .process(&bytes[..bytes.len() / 2], &mut px)
        .unwrap_err();
    assert!(e.to_string().contains("truncated JPEG"), "data: {e}");
}

/// `final/` appears whole (renamed into place, sealed by complete.json) and every loader checks
/// it: a missing record (a run killed before the seal, or an older diat), a removed, truncated or
/// swapped file, and a checkpoint whose metadata config does not describe its weights.
fn an_incomplete_or_altered_final_is_refused(run: &Path, tmp: &Path) {
    let fin = run.join("final");
    assert!(fin.join("complete.json").is_file());
    let input = tmp.join("one");
    std::fs::create_dir_all(&input).unwrap();
    image::RgbImage::from_raw(SIZE, SIZE, image(3, false))
        .unwrap()
        .save(input.join("f.png"))
        .unwrap();
    let copy = |name: &str| -> PathBuf {
        let r = tmp.join(name);
        std::fs::create_dir_all(r.join("final")).unwrap();
        std::fs::copy(run.join("resolved.toml"), r.join("resolved.toml")).unwrap();
        for e in std::fs::read_dir(&fin).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), r.join("final").join(e.file_name())).unwrap();
        }
        r.join("final")
    };
    let refused = |model: &Path, want: &str| {
        let o = apply(model, &[&input], &tmp.join("refused-out"), &[]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{want}: {err}");
        assert!(err.contains(want), "expected {want:?} in {err}");
        assert!(!err.contains("panicked"), "{err}");
        assert!(!tmp.join("refused-out/f.png").exists());
    };
    // Killed after transform.safetensors, before the rest (what an older diat left).
    let f = copy("killed");
    std::fs::remove_file(f.join("complete.json")).unwrap();
    std::fs::remove_file(f.join("enhance.safetensors")).unwrap();
    refused(&f, "no complete.json");
    let f = copy("removed");
    std::fs::remove_file(f.join("enhance.safetensors")).unwrap();
    refused(&f, "enhance.safetensors, listed in complete.json");
    let f = copy("cut");
    let t = std::fs::read(f.join("transform.safetensors")).unwrap();
    std::fs::write(f.join("transform.safetensors"), &t[..t.len() - 100]).unwrap();
    refused(&f, "transform.safetensors has");
    // A checkpoint file on its own (no folder record): its config is checked against limits
    // and against the weights before anything is allocated.
    let (tensors, map) =
        diat_nets::checkpoint::read_tensors(&fin.join("transform.safetensors")).unwrap();
    let mut meta = diat_nets::checkpoint::meta_from_map(&fin, map).unwrap();
    for (config, want) in [
        (
            serde_json::json!({"res_blocks": 2, "width": 1e7, "image_size": 32}),
            "diat.config.width = 10000000 is out of range",
        ),
        (
            serde_json::json!({"res_blocks": 2, "width": 0.25, "image_size": 0}),
            "diat.config.image_size = 0 is out of range",
        ),
        (
            serde_json::json!({"res_blocks": 2, "width": 0.25, "image_size": 30}),
            "diat.config.image_size = 30 must be a multiple of 4",
        ),
        (
            serde_json::json!({"res_blocks": 3, "width": 0.25, "image_size": 32}),
            "does not belong to these weights",
        ),
    ] {
        meta.config = config;
        let p = tmp.join("tampered.safetensors");
        diat_nets::checkpoint::save_tensors(&p, &tensors, &meta).unwrap();
        refused(&p, want);
    }
}

/// Every §5.1 variant through the one GAN loop, both enhancement networks, and both memory
/// formats (channels-last is what CUDA runs use by default; here it checks on the CPU that no
/// stage depends on contiguous NCHW activations). VGG-Face weights cannot be obtained here, so the
/// VGG-Face variants run on random weights, which must be asked for explicitly.
#[test]
fn every_variant_trains_through_the_one_gan_loop() {
    let tmp = tempfile::tempdir().unwrap();
    let data = data(tmp.path());
    // (variant, enhancement, memory format, stages that must have logged, adversarial losses)
    type Case<'a> = (&'a str, &'a str, &'a str, &'a [&'a str], &'a [&'a str]);
    let cases: [Case<'_>; 5] = [
        (
            "diat",
            "global",
            "channels_last",
            &[
                "reconstruct",
                "denoise",
                "pretrain_t",
                "pretrain_d",
                "adversarial",
                "enhance",
            ],
            &["d", "t", "gan", "identity", "smooth"],
        ),
        (
            "diat-a",
            "global",
            "channels_last",
            &["pretrain_t", "pretrain_d", "adversarial", "enhance"],
            &["d", "t", "gan", "identity"],
        ),
        (
            "diat1",
            "local",
            "channels_last",
            &["pretrain_t", "pretrain_d", "adversarial"],
            &["d", "t", "gan"],
        ),
        (
            "diat2",
            "local",
            "contiguous",
            &["pretrain_t", "pretrain_d", "adversarial"],
            &["d", "t", "gan", "identity"],
        ),
        (
            "diat3",
            "local",
            "contiguous",
            &[
                "reconstruct",
                "denoise",
                "pretrain_t",
                "pretrain_d",
                "adversarial",
            ],
            &["d", "t", "gan", "identity", "smooth"],
        ),
    ];
    for (variant, enhancement, format, stages, adv_losses) in cases {
        let run = tmp.path().join(format!("{variant}-{enhancement}"));
        let settings = [
            format!("task.variant=\"{variant}\""),
            format!("task.enhancement=\"{enhancement}\""),
            format!("train.memory_format=\"{format}\""),
        ];
        let mut extra = vec![];
        for s in &settings {
            extra.extend(["--set", s.as_str()]);
        }
        extra.extend([
            "--set",
            "stages.reconstruct.steps=5",
            "--set",
            "stages.denoise.steps=5",
            "--set",
            "stages.adversarial.steps=6",
            "--set",
            "stages.enhance.steps=5",
        ]);
        let out = train_cmd(&data, &run, &extra)
            .env("DIAT_ALLOW_RANDOM_VGGFACE", "1")
            .output()
            .unwrap();
        common::assert_ok(&out, format!("{variant}/{enhancement}/{format}"));
        let logged = losses(&run);
        let mut seen: Vec<&str> = logged.iter().map(|(s, _, _)| s.as_str()).collect();
        seen.dedup();
        assert_eq!(seen, stages.to_vec(), "{variant}: stages run");
        let (_, _, adv) = logged
            .iter()
            .rev()
            .find(|(s, _, _)| s == "adversarial")
            .unwrap();
        let mut names: Vec<&str> = adv
            .iter()
            .map(|(n, _)| n.trim_start_matches("loss_"))
            .collect();
        names.sort();
        let mut want = adv_losses.to_vec();
        want.sort();
        assert_eq!(names, want, "{variant}: adversarial losses");
        assert!(adv.iter().all(|(_, v)| v.is_finite()));
        assert!(run.join("final/transform.safetensors").exists());
        assert_eq!(
            run.join("final/enhance.safetensors").exists(),
            stages.contains(&"enhance"),
            "{variant}"
        );
        let resolved = std::fs::read_to_string(run.join("resolved.toml")).unwrap();
        assert!(resolved.contains(&format!("memory_format = \"{format}\"")));
    }
    // Without the explicit opt-in, a VGG-Face variant refuses random weights, naming the fix.
    let out = train_cmd(
        &data,
        &tmp.path().join("no-vgg"),
        &["--set", "task.variant=\"diat2\""],
    )
    .env_remove("DIAT_ALLOW_RANDOM_VGGFACE")
    .env("DIAT_HOME", tmp.path().join("home"))
    .output()
    .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("import-vggface") && !err.contains("panicked"),
        "{err}"
    );
}

#[test]
fn pipeline_files_reject_unknown_keys() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("bad.toml");
    std::fs::write(
        &p,
        format!(
            "inherit = \"{}\"\n[train]\nbatchsize = 3\n",
            pipeline().display()
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_diat"))
        .args(["train", "--dry-run", "--pipeline"])
        .arg(&p)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("unknown field `batchsize`"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for task in [
        "mouth_open",
        "mouth_close",
        "eyeglasses_remove",
        "male_to_female",
        "older_to_younger",
    ] {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("pipelines/{task}.toml"));
        let out = Command::new(env!("CARGO_BIN_EXE_diat"))
            .args(["train", "--dry-run", "--pipeline"])
            .arg(&p)
            .output()
            .unwrap();
        common::assert_ok(&out, task);
        let resolved = String::from_utf8_lossy(&out.stdout);
        assert!(
            resolved.contains(&format!("name = \"{task}\""))
                && resolved.contains("lambda = 1000.0"),
            "{resolved}"
        );
    }
}

fn sha256_files(dir: &Path) -> Vec<(String, String)> {
    use sha2::{Digest, Sha256};
    let mut v: Vec<(String, String)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| {
            let h = Sha256::digest(std::fs::read(&p).unwrap());
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                h.iter().map(|b| format!("{b:02x}")).collect(),
            )
        })
        .collect();
    v.sort();
    v
}

/// Two trainings of one pipeline with one seed give byte-identical `final/` files on one
/// machine, and publishing one run twice gives the same files and hashes.
#[test]
fn seeded_runs_and_their_publications_are_byte_reproducible() {
    let tmp = tempfile::tempdir().unwrap();
    let data = data(tmp.path());
    let sets = ["--set", "stages.enhance.steps=5"];
    for r in ["one", "two"] {
        let out = train_cmd(&data, &tmp.path().join(r), &sets)
            .output()
            .unwrap();
        common::assert_ok(&out, format!("diat train ({r})"));
    }
    let (a, b) = (
        sha256_files(&tmp.path().join("one/final")),
        sha256_files(&tmp.path().join("two/final")),
    );
    assert_eq!(a.len(), 6, "{a:?}");
    assert_eq!(a, b, "final/ of two seeded runs");
    let mut published = Vec::new();
    for k in 0..2 {
        // A second apart: the stanza's date comes from the run, not the clock.
        std::thread::sleep(Duration::from_millis(1100 * k));
        let out = tmp.path().join(format!("zoo{k}"));
        let o = Command::new(env!("CARGO_BIN_EXE_diat"))
            .args(["zoo", "publish"])
            .arg(tmp.path().join("one"))
            .args(["--name", "mouth-open", "--version", "1.0.0"])
            .args(["--base-url", "https://example.org/zoo", "--license", "MIT"])
            .args(["--data-manifest-sha256", &"ab".repeat(32)])
            .arg("--out")
            .arg(&out)
            .arg("--registry")
            .arg(tmp.path().join(format!("registry{k}.toml")))
            .env("DIAT_PROGRESS", "none")
            .output()
            .unwrap();
        common::assert_ok(&o, "diat zoo publish");
        published.push(sha256_files(&out.join("mouth-open/1.0.0")));
        published.push(vec![(
            "registry".into(),
            std::fs::read_to_string(tmp.path().join(format!("registry{k}.toml"))).unwrap(),
        )]);
    }
    assert!(!published[0].is_empty());
    assert_eq!(published[0], published[2], "published files");
    assert_eq!(published[1], published[3], "registry stanza");
}
