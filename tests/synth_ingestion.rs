//! A synthetic dataset passes the ingestion's own validation: same layout, formats and checks as
//! the real CelebA files.

mod common;

use common::diat;

#[test]
fn synthetic_dataset_passes_inspect_index_and_sets() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("synth");
    let (r, o) = (
        root.to_str().unwrap().to_string(),
        tmp.path().join("prep").to_str().unwrap().to_string(),
    );
    let (ok, _, err) = diat(&["data", "synth", "--out", &r, "--count", "400"]);
    assert!(ok, "{err}");
    let (ok, out, err) = diat(&["data", "inspect", &r, "--json"]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["layout"]["kind"], "official");
    assert_eq!(v["images_annotated"], 400);
    assert_eq!(v["images_found"], 400);
    assert_eq!(v["images_missing"], 0);
    assert_eq!(
        v["problems"],
        serde_json::json!([]),
        "no inconsistency in a synthetic dataset"
    );
    let (ok, _, err) = diat(&["data", "index", &r, "--out", &o]);
    assert!(ok, "{err}");
    let (ok, out, err) = diat(&[
        "data",
        "cluster",
        "--out",
        &o,
        "--k",
        "8",
        "--sheet-size",
        "0",
    ]);
    assert!(ok, "{err}");
    assert!(out.contains("8 clusters"), "{out}");
    let (ok, out, err) = diat(&[
        "data",
        "sets",
        "--out",
        &o,
        "--task",
        "eyeglasses_remove",
        "--input-size",
        "20",
        "--test-size",
        "10",
        "--size",
        "64",
    ]);
    assert!(ok, "{err}");
    assert!(out.contains("eyeglasses_remove: guided"), "{out}");
    let m: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            tmp.path()
                .join("prep/tasks/eyeglasses_remove/input/manifest.json"),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(m["count"], 20);
    assert_eq!(
        m["details"]["rejected"], 0,
        "every synthetic JPEG decodes as an aligned CelebA image"
    );
}
