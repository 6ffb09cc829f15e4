//! `diat train --pipeline pipelines/<task>.toml`: the paper's whole training for one task.

use anyhow::{Result, bail};
use diat_train::{PipelineConfig, TrainError, TrainOptions};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The pipeline file (pipelines/<task>.toml).
    #[arg(long)]
    pipeline: PathBuf,
    /// Run directory (default: $DIAT_RUNS_DIR/<task>-<variant>).
    #[arg(long)]
    run_dir: Option<PathBuf>,
    /// Continue an existing run (finished stages are skipped, the current one resumes from its
    /// last checkpoint); also starts a new run when none exists.
    #[arg(long)]
    resume: bool,
    /// Override a pipeline value, e.g. --set stages.adversarial.steps=100 (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
    /// Print the resolved pipeline and exit.
    #[arg(long)]
    dry_run: bool,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let cfg = PipelineConfig::load_with_overrides(&args.pipeline, &args.overrides)?;
    if args.dry_run {
        print!("{}", cfg.to_toml());
        return Ok(ExitCode::SUCCESS);
    }
    let run_dir = args.run_dir.unwrap_or_else(|| {
        diat_common::Dirs::from_env().runs.join(format!(
            "{}-{}",
            cfg.task.name,
            cfg.task.variant.name()
        ))
    });
    let opts = TrainOptions {
        run_dir,
        resume: args.resume,
        progress: diat_common::progress::Mode::auto(),
    };
    let stop = diat_train::trainer::stop_flag();
    match diat_train::train(&cfg, &opts, stop) {
        Ok(s) => {
            for (stage, ran) in &s.stages {
                println!("{stage}: {}", if *ran { "trained" } else { "already done" });
            }
            println!(
                "run: {}  final networks: {}",
                s.run_dir.display(),
                s.final_dir.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e @ TrainError::Interrupted { .. }) => {
            eprintln!("{e}");
            Ok(ExitCode::from(130))
        }
        Err(e) => bail!(e),
    }
}
