//! Only the crates that need libtorch depend on tch: ingestion, the shared plumbing (and later the
//! zoo's download layer) build and test on machines without libtorch.

mod common;

use std::process::Command;

fn deps_of(package: &str) -> String {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "tree",
            "--offline",
            "--prefix",
            "none",
            "--edges",
            "normal,build,dev",
            "-p",
            package,
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    common::assert_ok(&out, format!("cargo tree -p {package}"));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn libtorch_free_crates_do_not_depend_on_tch() {
    for package in ["diat-common", "diat-celeba", "diat-zoo", "diat-align"] {
        let tree = deps_of(package);
        assert!(
            tree.lines().count() > 3,
            "{package}: suspiciously small tree:\n{tree}"
        );
        for forbidden in ["torch-sys ", "tch "] {
            assert!(
                !tree.lines().any(|l| l.starts_with(forbidden)),
                "{package} depends on {forbidden}"
            );
        }
    }
    // The check itself sees tch where it is.
    assert!(
        deps_of("diat-nets")
            .lines()
            .any(|l| l.starts_with("torch-sys "))
    );
}

/// The binary without its `torch` feature (the curator's build) links no libtorch.
#[test]
fn the_curators_build_has_no_libtorch() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "tree",
            "--offline",
            "--prefix",
            "none",
            "--edges",
            "normal,build",
            "-p",
            "diat",
            "--no-default-features",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    let tree = common::assert_ok(&out, "cargo tree -p diat --no-default-features");
    assert!(
        tree.contains("diat-celeba") && tree.contains("diat-zoo"),
        "{tree}"
    );
    for forbidden in ["torch-sys ", "tch ", "diat-nets ", "diat-train "] {
        assert!(
            !tree.lines().any(|l| l.starts_with(forbidden)),
            "the curator's build depends on {forbidden}"
        );
    }
}
