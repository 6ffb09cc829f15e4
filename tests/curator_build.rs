//! The curator's build (`--no-default-features`: no libtorch): it says what it is, and the
//! commands that need libtorch refuse with exit 1, naming the build that has them. `data`,
//! `data synth`, `eval synth` and `zoo` are tested by their own files, which run against this build
//! too (`make test`).

#![cfg(not(feature = "torch"))]

mod common;

#[test]
fn doctor_names_the_build_and_torch_commands_refuse() {
    let out = common::run(&["doctor", "--json"]);
    common::assert_ok(&out, "diat doctor --json");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["build"], "curator (no libtorch)");
    assert!(v["libtorch"]["version"].is_null());
    for args in [
        &["train", "--pipeline", "pipelines/mouth_open.toml"][..],
        &["apply", "--model", "x", "a.jpg", "--out", "o"],
        &["align", "photos", "--out", "o"],
        &["nets", "forward"],
        &["classifier", "train"],
        &["eval", "real", "--attr", "Eyeglasses"],
        &[
            "eval",
            "synth",
            "--attr",
            "Eyeglasses",
            "--model",
            "m",
            "--count",
            "20",
        ],
    ] {
        let out = common::run(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(
            err.contains("needs libtorch") && err.contains("default build"),
            "{args:?}: {err}"
        );
    }
}
