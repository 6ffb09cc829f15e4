//! `diat bench …`: benchmarks, each implemented beside the command it measures.

use anyhow::{Result, bail};
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
    Nets(super::nets::BenchArgs),
    /// Synthetic face rendering throughput.
    Synth(super::synth::BenchArgs),
    /// The training data loader: batches of the adversarial stage delivered to the device.
    Loader(super::train::BenchArgs),
}

pub fn run(args: Args) -> Result<ExitCode> {
    match args.cmd {
        Cmd::Data(a) => super::data::bench(a),
        Cmd::Nets(a) => super::nets::bench(a),
        Cmd::Synth(a) => super::synth::bench(a),
        Cmd::Loader(a) => super::train::bench(a),
    }
}

/// `--device auto|cpu|cuda` of the benchmarks (auto: CUDA when available).
pub(crate) fn device(name: &str) -> Result<tch::Device> {
    use tch::Device;
    Ok(match name {
        "auto" => Device::cuda_if_available(),
        "cpu" => Device::Cpu,
        "cuda" if tch::Cuda::is_available() => Device::Cuda(0),
        "cuda" => bail!("--device cuda: CUDA is not available"),
        other => bail!("--device must be auto, cpu or cuda, got {other}"),
    })
}

/// The CPU's model name, for benchmark reports.
pub(crate) fn cpu_name() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|r| r.trim_start_matches([' ', '\t', ':']).to_string())
            })
        })
        .unwrap_or_else(|| "unknown CPU".into())
}
