//! `diat data synth`, `diat eval synth` and `diat bench synth` as a user runs them.

mod common;

use common::{fails, ok, p};

#[test]
fn data_synth_writes_a_reproducible_celeba_layout() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let sheet = tmp.path().join("sheet.png");
    let out = ok(&[
        "data",
        "synth",
        "--count",
        "24",
        "--per-identity",
        "4",
        "--seed",
        "3",
        "--out",
        p(&a),
        "--sheet",
        p(&sheet),
    ]);
    assert!(out.contains("wrote 24 images of 6 identities"), "{out}");
    for f in [
        "Img/img_align_celeba.zip",
        "Anno/list_attr_celeba.txt",
        "Anno/list_landmarks_align_celeba.txt",
        "Anno/identity_CelebA.txt",
        "Eval/list_eval_partition.txt",
        "diat_synth.json",
    ] {
        assert!(a.join(f).is_file(), "missing {f}");
    }
    assert_eq!(&std::fs::read(&sheet).unwrap()[1..4], b"PNG");
    ok(&[
        "data",
        "synth",
        "--count",
        "24",
        "--per-identity",
        "4",
        "--seed",
        "3",
        "--out",
        p(&b),
        "--threads",
        "1",
    ]);
    for f in [
        "Img/img_align_celeba.zip",
        "Anno/list_attr_celeba.txt",
        "Anno/list_landmarks_align_celeba.txt",
    ] {
        assert!(
            std::fs::read(a.join(f)).unwrap() == std::fs::read(b.join(f)).unwrap(),
            "{f} differs"
        );
    }
    // No half-written leftovers next to the dataset.
    let names: Vec<String> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.contains("partial")), "{names:?}");

    // One image and its twin, alone.
    let loose = tmp.path().join("loose");
    ok(&[
        "data",
        "synth",
        "--count",
        "24",
        "--per-identity",
        "4",
        "--seed",
        "3",
        "--images",
        "5,7-8",
        "--out",
        p(&loose),
    ]);
    let twin = tmp.path().join("twin");
    ok(&[
        "data",
        "synth",
        "--count",
        "24",
        "--per-identity",
        "4",
        "--seed",
        "3",
        "--images",
        "5",
        "--counterfactual",
        "smiling",
        "--out",
        p(&twin),
    ]);
    assert!(
        loose.join("000005.jpg").is_file()
            && loose.join("000008.jpg").is_file()
            && twin.join("000005.jpg").is_file()
    );
    assert_ne!(
        std::fs::read(loose.join("000005.jpg")).unwrap(),
        std::fs::read(twin.join("000005.jpg")).unwrap()
    );

    // Clear errors, never a panic.
    fails(
        &["data", "synth", "--count", "24", "--out", p(&a)],
        "--overwrite",
    );
    fails(
        &[
            "data",
            "synth",
            "--count",
            "0",
            "--out",
            p(&tmp.path().join("z")),
        ],
        "at least 1",
    );
    fails(
        &[
            "data",
            "synth",
            "--counterfactual",
            "Bangs",
            "--out",
            p(&tmp.path().join("z")),
        ],
        "Eyeglasses",
    );
    fails(
        &[
            "data",
            "synth",
            "--counterfactual",
            "Nope",
            "--out",
            p(&tmp.path().join("z")),
        ],
        "unknown attribute",
    );
    fails(
        &[
            "data",
            "synth",
            "--count",
            "10",
            "--images",
            "11",
            "--out",
            p(&tmp.path().join("z")),
        ],
        "beyond",
    );
}

#[test]
fn eval_synth_scores_the_baselines() {
    let tmp = tempfile::tempdir().unwrap();
    let common = [
        "--count",
        "600",
        "--per-identity",
        "5",
        "--limit",
        "12",
        "--calibration-pairs",
        "40",
    ];
    let mut args = vec![
        "eval",
        "synth",
        "--attr",
        "Eyeglasses",
        "--direction",
        "add",
        "--json",
        "-",
    ];
    args.extend(common);
    let json: serde_json::Value = serde_json::from_str(&ok(&args)).unwrap();
    assert_eq!(json["attr"], "Eyeglasses");
    assert_eq!(json["inputs"], 12);
    let results = json["results"].as_array().unwrap();
    let by = |name: &str| {
        results
            .iter()
            .find(|r| r["transform"] == name)
            .unwrap()
            .clone()
    };
    assert!(by("identity")["attribute_success"].as_f64().unwrap() <= 0.1);
    assert!(by("counterfactual")["attribute_success"].as_f64().unwrap() >= 0.9);
    assert!(by("identity")["outside_mask"]["psnr"].as_f64().unwrap() > 35.0);

    // Inputs written for a model, scored back from a folder (here: unchanged, i.e. the identity).
    let inputs = tmp.path().join("inputs");
    let mut args = vec![
        "eval",
        "synth",
        "--attr",
        "Mouth_Slightly_Open",
        "--write-inputs",
        p(&inputs),
    ];
    args.extend(common);
    assert!(ok(&args).contains("wrote 12 evaluation inputs"));
    let mut args = vec![
        "eval",
        "synth",
        "--attr",
        "Mouth_Slightly_Open",
        "--outputs",
        p(&inputs),
        "--transform",
        "identity",
    ];
    args.extend(common);
    let table = ok(&args);
    assert!(
        table.contains("PSNR in") && table.contains("identity"),
        "{table}"
    );
    let rows: Vec<&str> = table
        .lines()
        .filter(|l| l.starts_with("identity") || l.starts_with('…'))
        .collect();
    assert_eq!(rows.len(), 2, "{table}");
    // The unchanged inputs score exactly like the identity.
    assert_eq!(
        rows[0].split_whitespace().skip(1).collect::<Vec<_>>(),
        rows[1].split_whitespace().skip(1).collect::<Vec<_>>()
    );

    let mut args = vec![
        "eval",
        "synth",
        "--attr",
        "Young",
        "--outputs",
        "/nonexistent/dir",
    ];
    args.extend(common);
    fails(&args, "does not exist");
    fails(&["eval", "synth", "--attr", "Bangs"], "Eyeglasses");
    fails(
        &["eval", "synth", "--attr", "Male", "--crop", "0,50,178"],
        "inside the 178×218",
    );
    fails(
        &["eval", "synth", "--attr", "Male", "--data", p(tmp.path())],
        "not a dataset written by",
    );
}

#[test]
fn bench_synth_reports_rates() {
    let json: serde_json::Value = serde_json::from_str(
        ok(&["bench", "synth", "--faces", "60", "--json", "-"])
            .split_once('{')
            .map(|(_, j)| format!("{{{j}"))
            .as_deref()
            .unwrap(),
    )
    .unwrap();
    for k in [
        "render_1t",
        "render_encode_1t",
        "render_all",
        "render_encode_all",
    ] {
        assert!(json[k]["faces_per_s"].as_f64().unwrap() > 0.0, "{k}");
    }
}
