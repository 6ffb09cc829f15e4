//! Helpers shared by the integration tests: run the `diat` binary as a user would.
#![allow(dead_code)] // each test binary uses a different subset

use std::fmt::Display;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// `diat` with plain-line progress off and warnings only, ready for arguments.
pub fn diat_cmd() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_diat"));
    c.env("DIAT_PROGRESS", "none").env("DIAT_LOG", "warn");
    c
}

/// `diat ARGS` with the zoo's cache in `zoo` (a fresh one: nothing pulled before), the built-in
/// registry, and the rest of the diat cache (MTCNN's weights) where `make setup` put it.
pub fn diat_in(zoo: &Path, args: &[&str]) -> Output {
    diat_cmd()
        .args(args)
        .env("DIAT_ZOO_DIR", zoo)
        .env_remove("DIAT_REGISTRY")
        .env_remove("DIAT_ZOO_FILES")
        .output()
        .expect("running diat")
}

/// Runs `diat ARGS`: its whole output.
pub fn run(args: &[&str]) -> Output {
    diat_cmd().args(args).output().expect("running diat")
}

/// Runs `diat ARGS`: (success, stdout, stderr).
pub fn diat(args: &[&str]) -> (bool, String, String) {
    let out = run(args);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// Runs `diat ARGS`, which must succeed: its stdout.
pub fn ok(args: &[&str]) -> String {
    let (success, stdout, stderr) = diat(args);
    assert!(success, "diat {args:?} failed:\n{stderr}");
    stdout
}

/// Runs `diat ARGS`, which must fail cleanly (no panic) with `needle` in its stderr.
pub fn fails(args: &[&str], needle: &str) {
    let (success, _, err) = diat(args);
    assert!(!success, "diat {args:?} should fail");
    assert!(
        err.contains(needle),
        "diat {args:?}: expected {needle:?} in:\n{err}"
    );
    assert!(!err.contains("panicked"), "diat {args:?} panicked:\n{err}");
}

/// A path as an argument.
pub fn p(path: &Path) -> &str {
    path.to_str().expect("UTF-8 path")
}

/// The real CelebA sample files (`$DIAT_CELEBA_SAMPLES`, else `../shared/celeba`).
pub fn celeba_samples() -> PathBuf {
    let p = std::env::var("DIAT_CELEBA_SAMPLES")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/celeba"));
    assert!(
        p.join("Anno").exists(),
        "real CelebA samples missing at {}",
        p.display()
    );
    p
}

/// A file of the repository.
pub fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// `out` (of any process) must have succeeded; else panics with `what` and its stderr. Its stdout.
pub fn assert_ok(out: &Output, what: impl Display) -> String {
    assert!(
        out.status.success(),
        "{what}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into()
}
