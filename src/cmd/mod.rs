//! Subcommands of `diat`, one module each.

use anyhow::{Result, bail};
use clap::{Parser, Subcommand};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use tch::Device;

pub mod align;
pub mod apply;
pub mod bench;
pub mod classifier;
pub mod data;
pub mod doctor;
pub mod eval;
pub mod nets;
pub mod synth;
pub mod train;
pub mod zoo;

/// The exit-code policy, shown by `diat --help`.
const EXIT_CODES: &str = "\
Exit codes (apply, align, data, eval and every other command):
  0    the output was produced; skipped inputs (unreadable images, photos without a face,
       rejected rows) are counted in the summary
  1    an error, or nothing was produced from a non-empty input; with --strict also any skip
  2    a usage error (unknown option, missing argument)
  130  interrupted (diat train checkpoints first; --resume continues)";

/// Deep Identity-aware Transfer of facial attributes (DIAT, DIAT-A).
#[derive(Debug, Parser)]
#[command(name = "diat", version, about, long_about = None, after_help = EXIT_CODES)]
pub struct Cli {
    /// More log output (-v debug, -vv trace); DIAT_LOG=<filter> overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Any skipped input (unreadable image, photo without a face, rejected image or face) makes
    /// the command fail with exit code 1, after writing what it could.
    #[arg(long, global = true)]
    pub strict: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Report libtorch, CUDA/cuDNN, threads and the directories diat uses.
    Doctor(doctor::Args),
    /// CelebA ingestion: inspect, index, cluster, crop, per-task sets, synthetic faces.
    Data(data::Args),
    /// Train a pipeline (Algorithm 1 and the enhancement stage).
    Train(train::Args),
    /// Model zoo: list, info, pull, verify, gc, rm, publish.
    Zoo(zoo::Args),
    /// Apply a trained model to aligned faces.
    Apply(apply::Args),
    /// Detect and align faces in real photos to the CelebA crop (and paste edits back).
    Align(align::Args),
    /// Evaluate a transform: on synthetic faces against exact counterfactuals, or on real faces
    /// with an attribute classifier and a face-identity descriptor.
    Eval(eval::Args),
    /// The attribute classifier of `diat eval real`: train, score.
    Classifier(classifier::Args),
    /// Network utilities.
    Nets(nets::Args),
    /// Benchmarks (each beside its named peer in the same run).
    Bench(bench::Args),
}

static STRICT: AtomicBool = AtomicBool::new(false);

/// The exit code of a command that turned inputs into `produced` outputs and skipped `skipped`
/// of them (`what` names them): 1 when nothing was produced, 1 under `--strict` when anything
/// was skipped, else 0.
pub(crate) fn outcome(produced: usize, skipped: usize, what: &str) -> ExitCode {
    if produced == 0 {
        return ExitCode::FAILURE;
    }
    if skipped > 0 && STRICT.load(Ordering::Relaxed) {
        eprintln!("--strict: {skipped} {what}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    STRICT.store(cli.strict, Ordering::Relaxed);
    match cli.command {
        Command::Doctor(args) => doctor::run(args),
        Command::Data(args) => data::run(args),
        Command::Train(args) => train::run(args),
        Command::Zoo(args) => zoo::run(args),
        Command::Apply(args) => apply::run(args),
        Command::Align(args) => align::run(args),
        Command::Eval(args) => eval::run(args),
        Command::Classifier(args) => classifier::run(args),
        Command::Nets(args) => nets::run(args),
        Command::Bench(args) => bench::run(args),
    }
}

/// `--device auto|cpu|cuda` (auto: CUDA when available).
pub(crate) fn parse_device(s: &str) -> Result<Device> {
    Ok(match s {
        "auto" => Device::cuda_if_available(),
        "cpu" => Device::Cpu,
        "cuda" if tch::Cuda::is_available() => Device::Cuda(0),
        "cuda" => bail!("--device cuda: CUDA is not available"),
        other => bail!("--device must be auto, cpu or cuda, got {other}"),
    })
}
