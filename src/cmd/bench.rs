//! `diat bench …`: benchmarks, each implemented beside the command it measures.

use anyhow::Result;
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
