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
    Nets(super::nets::BenchArgs),
    /// Synthetic face rendering throughput.
    Synth(super::synth::BenchArgs),
}

pub fn run(args: Args) -> Result<ExitCode> {
    match args.cmd {
        Cmd::Data(a) => super::data::bench(a),
        Cmd::Nets(a) => super::nets::bench(a),
        Cmd::Synth(a) => super::synth::bench(a),
    }
}
