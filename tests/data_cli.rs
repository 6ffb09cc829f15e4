//! `diat data …` end to end on the 32 real CelebA images: inspect, index, cluster, sets.

mod common;

use common::{celeba_samples as samples, diat};
use std::path::{Path, PathBuf};

/// A 32-image official-layout root (consistent annotation subsets, real JPEGs).
fn subset(dir: &Path) -> PathBuf {
    let s = samples();
    let root = dir.join("celeba");
    for d in ["Anno", "Eval", "Img/img_align_celeba"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    let head = |src: &str, dst: &str, header: bool| {
        let text = std::fs::read_to_string(s.join(src)).unwrap();
        let lines: Vec<&str> = text.split("\r\n").filter(|l| !l.is_empty()).collect();
        let body = if header {
            format!("32\r\n{}\r\n", lines[1])
        } else {
            String::new()
        };
        let rows = if header { &lines[2..34] } else { &lines[..32] };
        std::fs::write(
            root.join(dst),
            body + &rows.iter().map(|l| format!("{l}\r\n")).collect::<String>(),
        )
        .unwrap();
    };
    head(
        "Anno/list_attr_celeba.txt",
        "Anno/list_attr_celeba.txt",
        true,
    );
    head(
        "Anno/list_landmarks_align_celeba.txt",
        "Anno/list_landmarks_align_celeba.txt",
        true,
    );
    head(
        "Anno/identity_CelebA.txt",
        "Anno/identity_CelebA.txt",
        false,
    );
    head(
        "Eval/list_eval_partition.txt",
        "Eval/list_eval_partition.txt",
        false,
    );
    for i in 1..=32 {
        let n = format!("{i:06}.jpg");
        std::fs::copy(
            s.join("Img/img_align_celeba").join(&n),
            root.join("Img/img_align_celeba").join(&n),
        )
        .unwrap();
    }
    root
}

#[test]
fn inspect_reports_official_layout_and_splits() {
    let (ok, out, err) = diat(&["data", "inspect", samples().to_str().unwrap(), "--json"]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["layout"]["kind"], "official");
    assert_eq!(v["split_sizes"], serde_json::json!([162770, 19867, 19962]));
    assert_eq!(v["images_annotated"], 202599);
    assert_eq!(v["images_found"], 32);
    assert!(
        v["problems"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p.as_str().unwrap().contains("missing"))
    );
}

#[test]
fn index_cluster_sets_end_to_end() {
    let tmp = tempfile::tempdir().unwrap();
    let root = subset(tmp.path());
    let out = tmp.path().join("prepared");
    let (r, o) = (root.to_str().unwrap(), out.to_str().unwrap());
    let (ok, stdout, err) = diat(&["data", "index", r, "--out", o, "--verify"]);
    assert!(
        !ok,
        "the 32-row subsets are not the official files: md5 must fail"
    );
    assert!(err.contains("checksum mismatch"), "{stdout}{err}");
    let (ok, stdout, err) = diat(&["data", "index", r, "--out", o]);
    assert!(ok, "{err}");
    assert!(
        stdout.contains("indexed 32 images (official layout)"),
        "{stdout}"
    );

    let (ok, stdout, err) = diat(&[
        "data",
        "cluster",
        "--out",
        o,
        "--k",
        "3",
        "--sheet-size",
        "8",
    ]);
    assert!(ok, "{err}");
    assert!(stdout.contains("3 clusters (fingerprint"), "{stdout}");
    let clusters: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("clusters/clusters.json")).unwrap())
            .unwrap();
    assert_eq!(clusters["stats"].as_array().unwrap().len(), 3);
    let sheets = std::fs::read_dir(out.join("clusters"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".png"))
        .count();
    assert_eq!(sheets, 3);
    // Same seed, same fingerprint.
    let (_, again, _) = diat(&[
        "data",
        "cluster",
        "--out",
        o,
        "--k",
        "3",
        "--sheet-size",
        "0",
    ]);
    let fp = |s: &str| {
        s.split("fingerprint ")
            .nth(1)
            .unwrap()
            .split(')')
            .next()
            .unwrap()
            .to_string()
    };
    assert_eq!(fp(&stdout), fp(&again));

    let (ok, stdout, err) = diat(&[
        "data",
        "sets",
        "--out",
        o,
        "--task",
        "mouth_open",
        "--input-size",
        "8",
        "--test-size",
        "4",
        "--no-balance",
        "--size",
        "64",
        "--no-cluster-filter",
    ]);
    assert!(ok, "{err}");
    assert!(stdout.contains("mouth_open: guided"), "{stdout}");
    assert!(
        err.contains("Mouth_Slightly_Open"),
        "the proportions table is shown: {err}"
    );
    let t = out.join("tasks/mouth_open");
    for f in [
        "guided/images.u8",
        "guided/masks.u8",
        "guided/meta.parquet",
        "guided/manifest.json",
        "input/manifest.json",
        "report.json",
        "report.txt",
        "mask_preview.png",
    ] {
        assert!(t.join(f).exists(), "{f}");
    }
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(t.join("input/manifest.json")).unwrap()).unwrap();
    assert_eq!(m["count"], 8);
    assert_eq!(m["shape"], serde_json::json!([8, 64, 64, 3]));
    assert_eq!(
        std::fs::metadata(t.join("input/images.u8")).unwrap().len(),
        8 * 64 * 64 * 3
    );
    let g: serde_json::Value =
        serde_json::from_slice(&std::fs::read(t.join("guided/manifest.json")).unwrap()).unwrap();
    assert_eq!(g["count"], 18, "all 18 open-mouth images of the subset");
    assert!(g["sha256"]["images.u8"].as_str().unwrap().len() == 64);
    // No test split among the first 32 images: reported, not fatal.
    assert!(
        std::fs::read_to_string(t.join("report.txt"))
            .unwrap()
            .contains("no held-out test inputs")
    );

    // An open-mouth image cut short: rejected and counted (exit 0), an error under --strict.
    let attrs = std::fs::read_to_string(root.join("Anno/list_attr_celeba.txt")).unwrap();
    let mut lines = attrs.lines().skip(1);
    let col = lines
        .next()
        .unwrap()
        .split_whitespace()
        .position(|a| a == "Mouth_Slightly_Open")
        .unwrap();
    let open = lines
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|f| f[col + 1] == "1")
        .unwrap()[0]
        .to_string();
    let img = root.join("Img/img_align_celeba").join(&open);
    let bytes = std::fs::read(&img).unwrap();
    std::fs::write(&img, &bytes[..bytes.len() / 2]).unwrap();
    let sets = |strict: bool| {
        let mut a = vec![
            "data",
            "sets",
            "--out",
            o,
            "--task",
            "mouth_open",
            "--input-size",
            "8",
            "--test-size",
            "4",
            "--no-balance",
            "--size",
            "64",
            "--no-cluster-filter",
            "--max-rejects",
            "0.1",
        ];
        if strict {
            a.push("--strict");
        }
        diat(&a)
    };
    let (ok, _, err) = sets(false);
    assert!(ok, "{err}");
    let rejects = std::fs::read_to_string(t.join("guided/rejects.csv")).unwrap();
    assert!(rejects.contains(&open), "{rejects}");
    let (ok, _, err) = sets(true);
    assert!(!ok, "--strict with a rejected image");
    assert!(err.contains("--strict: 1 image(s) rejected"), "{err}");

    // Unknown tasks and unclustered filtering are clear errors.
    let (ok, _, err) = diat(&["data", "sets", "--out", o, "--task", "wear_hat"]);
    assert!(!ok && err.contains("unknown task 'wear_hat'"), "{err}");
}

#[test]
fn malformed_annotation_row_names_file_and_line() {
    let tmp = tempfile::tempdir().unwrap();
    let root = subset(tmp.path());
    let p = root.join("Anno/list_attr_celeba.txt");
    let text = std::fs::read_to_string(&p)
        .unwrap()
        .replacen("000005.jpg  1", "000005.jpg  7", 1);
    let text = if text.contains("000005.jpg  7") {
        text
    } else {
        std::fs::read_to_string(&p)
            .unwrap()
            .replacen("000005.jpg -1", "000005.jpg  x", 1)
    };
    std::fs::write(&p, text).unwrap();
    let (ok, _, err) = diat(&[
        "data",
        "index",
        root.to_str().unwrap(),
        "--out",
        tmp.path().join("o").to_str().unwrap(),
    ]);
    assert!(!ok);
    assert!(err.contains("list_attr_celeba.txt:7:"), "{err}");
    assert!(!tmp.path().join("o/index.parquet").exists());
}
