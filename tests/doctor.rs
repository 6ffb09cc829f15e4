//! `diat doctor --json` is machine-readable and tells the truth about this machine.

#![cfg(feature = "torch")] // needs libtorch: not part of the curator's build's tests

mod common;

use std::process::Command;

#[test]
fn doctor_json_parses_and_reports_libtorch_and_dirs() {
    let home = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_diat"))
        .args(["doctor", "--json"])
        .env("DIAT_HOME", home.path())
        .output()
        .unwrap();
    common::assert_ok(&out, "diat doctor");
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("doctor --json prints JSON");
    assert_eq!(v["tch_version"], "0.24.0");
    let version = v["libtorch"]["version"]
        .as_str()
        .expect("libtorch version found");
    assert!(version.starts_with("2.11.0"), "libtorch {version}");
    assert!(v["libtorch"]["lib_dir"].as_str().unwrap().ends_with("lib"));
    assert!(v["cuda"]["available"].is_boolean());
    assert!(v["threads"]["torch_intra_op"].as_i64().unwrap() >= 1);
    let dirs = v["dirs"].as_array().unwrap();
    let names: Vec<_> = dirs.iter().map(|d| d["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["home", "data", "zoo", "cache", "runs"]);
    for d in dirs {
        assert!(
            d["path"]
                .as_str()
                .unwrap()
                .starts_with(home.path().to_str().unwrap())
        );
        assert_eq!(d["writable"], true, "{d}");
    }
}

#[test]
fn transform_forward_runs() {
    let out = Command::new(env!("CARGO_BIN_EXE_diat"))
        .args(["nets", "forward", "--size", "32", "--batch", "2"])
        .output()
        .unwrap();
    common::assert_ok(&out, "diat doctor");
    let s = String::from_utf8_lossy(&out.stdout);
    assert!(s.contains("output [2, 3, 32, 32]"), "{s}");
}
