//! What the benchmarks share: their JSON reports and the run of their PyTorch peer. Kept apart
//! from `bench.rs` (which dispatches to the benchmarks) so no command module imports it back.

use anyhow::{Context, Result, bail};
use std::path::Path;

/// Writes a benchmark's report as pretty JSON to `path`, when one was asked for.
pub(crate) fn write_report(path: Option<&Path>, report: &impl serde::Serialize) -> Result<()> {
    if let Some(path) = path {
        diat_common::write_atomic(path, &serde_json::to_vec_pretty(report)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// Runs a benchmark's PyTorch counterpart (`python script --flag value … --json TMP`) right after
/// ours, its output going to the terminal, and reads back its JSON report.
pub(crate) fn run_python_peer<T: serde::de::DeserializeOwned>(
    python: &Path,
    script: &Path,
    args: &[(&str, String)],
) -> Result<T> {
    let dir = tempfile::Builder::new()
        .prefix("diat-bench-")
        .tempdir()
        .context("creating a temporary folder")?;
    let json = dir.path().join("pytorch.json");
    let mut cmd = std::process::Command::new(python);
    cmd.arg(script);
    for (flag, value) in args {
        cmd.arg(flag).arg(value);
    }
    cmd.arg("--json").arg(&json);
    println!("\nrunning {cmd:?}");
    let status = cmd
        .status()
        .with_context(|| format!("starting {}", python.display()))?;
    if !status.success() {
        bail!(
            "the PyTorch benchmark {} failed ({status})",
            script.display()
        );
    }
    let bytes = std::fs::read(&json).with_context(|| format!("reading {}", json.display()))?;
    serde_json::from_slice(&bytes)
        .with_context(|| format!("{}: not the benchmark's JSON report", json.display()))
}
