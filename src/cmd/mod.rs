//! Subcommands of `diat`, one module each.

use anyhow::{Result, bail};
use clap::{Parser, Subcommand};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
#[cfg(feature = "torch")]
use tch::Device;

#[cfg(feature = "torch")]
pub mod align;
#[cfg(feature = "torch")]
pub mod apply;
pub mod bench;
#[cfg(feature = "torch")]
pub mod classifier;
pub mod data;
pub mod doctor;
pub mod eval;
#[cfg(feature = "torch")]
pub mod eval_lfw;
#[cfg(feature = "torch")]
pub mod eval_real;
#[cfg(feature = "torch")]
pub mod nets;
pub mod output;
#[cfg(feature = "torch")]
pub mod peer;
pub mod synth;
#[cfg(feature = "torch")]
pub mod train;
pub mod zoo;

/// What a command of the default build says in the curator's build.
#[cfg(not(feature = "torch"))]
pub(crate) const NEEDS_TORCH: &str = "needs libtorch: this is the curator's build (built without \
    the `torch` feature); the default build has it (`make build`, or `cargo install --path .`)";

/// The arguments of a command this build does not have (they are not parsed).
#[cfg(not(feature = "torch"))]
#[derive(Debug, clap::Args)]
pub struct NeedsTorch {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
    rest: Vec<String>,
}

#[cfg(not(feature = "torch"))]
impl NeedsTorch {
    /// Refuses `command` (exit 1, naming the build that has it).
    pub(crate) fn refuse(&self, command: &str) -> Result<ExitCode> {
        bail!("diat {command} {NEEDS_TORCH}")
    }
}

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
    #[cfg(feature = "torch")]
    Train(train::Args),
    /// Train a pipeline (needs the default build).
    #[cfg(not(feature = "torch"))]
    Train(NeedsTorch),
    /// Model zoo: list, info, pull, verify, gc, rm, publish.
    Zoo(zoo::Args),
    /// Apply a trained model to aligned faces.
    #[cfg(feature = "torch")]
    Apply(apply::Args),
    /// Apply a trained model (needs the default build).
    #[cfg(not(feature = "torch"))]
    Apply(NeedsTorch),
    /// Detect and align faces in real photos to the CelebA crop (and paste edits back).
    #[cfg(feature = "torch")]
    Align(align::Args),
    /// Detect and align faces in real photos (needs the default build).
    #[cfg(not(feature = "torch"))]
    Align(NeedsTorch),
    /// Evaluate a transform: on synthetic faces against exact counterfactuals, or on real faces
    /// with an attribute classifier and a face-identity descriptor.
    Eval(eval::Args),
    /// The attribute classifier of `diat eval real`: train, score.
    #[cfg(feature = "torch")]
    Classifier(classifier::Args),
    /// The attribute classifier (needs the default build).
    #[cfg(not(feature = "torch"))]
    Classifier(NeedsTorch),
    /// Network utilities.
    #[cfg(feature = "torch")]
    Nets(nets::Args),
    /// Network utilities (need the default build).
    #[cfg(not(feature = "torch"))]
    Nets(NeedsTorch),
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
        Command::Zoo(args) => zoo::run(args),
        Command::Eval(args) => eval::run(args),
        #[cfg(feature = "torch")]
        Command::Train(args) => train::run(args),
        #[cfg(feature = "torch")]
        Command::Apply(args) => apply::run(args),
        #[cfg(feature = "torch")]
        Command::Align(args) => align::run(args),
        #[cfg(feature = "torch")]
        Command::Classifier(args) => classifier::run(args),
        #[cfg(feature = "torch")]
        Command::Nets(args) => nets::run(args),
        #[cfg(not(feature = "torch"))]
        Command::Train(a) => a.refuse("train"),
        #[cfg(not(feature = "torch"))]
        Command::Apply(a) => a.refuse("apply"),
        #[cfg(not(feature = "torch"))]
        Command::Align(a) => a.refuse("align"),
        #[cfg(not(feature = "torch"))]
        Command::Classifier(a) => a.refuse("classifier"),
        #[cfg(not(feature = "torch"))]
        Command::Nets(a) => a.refuse("nets"),
        Command::Bench(args) => bench::run(args),
    }
}

/// `--device auto|cpu|cuda` (auto: CUDA when available).
#[cfg(feature = "torch")]
pub(crate) fn parse_device(s: &str) -> Result<Device> {
    Ok(match s {
        "auto" => Device::cuda_if_available(),
        "cpu" => Device::Cpu,
        "cuda" if tch::Cuda::is_available() => Device::Cuda(0),
        "cuda" => bail!("--device cuda: CUDA is not available"),
        other => bail!("--device must be auto, cpu or cuda, got {other}"),
    })
}
