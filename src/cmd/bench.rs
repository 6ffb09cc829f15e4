//! `diat bench …`: benchmarks, each implemented beside the command it measures.

use anyhow::Result;
#[cfg(feature = "torch")]
use anyhow::{Context, bail};
#[cfg(feature = "torch")]
use std::path::Path;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, clap::Subcommand)]
enum Cmd {
    /// Ingestion: annotation parsing and decode+crop+resize throughput.
    Data(super::data::BenchArgs),
    /// Networks: transform forward and a DIAT-A training step.
    #[cfg(feature = "torch")]
    Nets(super::nets::BenchArgs),
    /// Synthetic face rendering throughput.
    Synth(super::synth::BenchArgs),
    /// The training data loader: batches of the adversarial stage delivered to the device.
    #[cfg(feature = "torch")]
    Loader(super::train::BenchArgs),
    /// The real-face evaluation networks: dlib descriptor port and attribute classifier, beside
    /// dlib's Python API and PyTorch eager.
    #[cfg(feature = "torch")]
    Real(super::eval_real::BenchArgs),
}

pub fn run(args: Args) -> Result<ExitCode> {
    match args.cmd {
        Cmd::Data(a) => super::data::bench(a),
        Cmd::Synth(a) => super::synth::bench(a),
        #[cfg(feature = "torch")]
        Cmd::Nets(a) => super::nets::bench(a),
        #[cfg(feature = "torch")]
        Cmd::Loader(a) => super::train::bench(a),
        #[cfg(feature = "torch")]
        Cmd::Real(a) => super::eval_real::bench(a),
    }
}

/// Writes a benchmark's report as pretty JSON to `path`, when one was asked for.
#[cfg(feature = "torch")]
pub(crate) fn write_report(path: Option<&Path>, report: &impl serde::Serialize) -> Result<()> {
    if let Some(path) = path {
        std::fs::write(path, serde_json::to_vec_pretty(report)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// Runs a benchmark's PyTorch counterpart (`python script --flag value … --json TMP`) right after
/// ours, its output going to the terminal, and reads back its JSON report.
#[cfg(feature = "torch")]
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
