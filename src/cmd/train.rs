//! `diat train --pipeline pipelines/<task>.toml`: the paper's whole training for one task.

use anyhow::{Context, Result, bail};
use diat_train::bench::{LoaderBench, LoaderReport, comparison_table};
use diat_train::{PipelineConfig, TrainError, TrainOptions};
use std::path::PathBuf;
use std::process::ExitCode;
use tch::Device;

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

/// `diat bench loader`: what the adversarial stage's data loader delivers — the very loader of
/// `diat train` (worker threads gathering batches from the packed stores, pinned for CUDA), each
/// batch moved to the device and converted to floats in [-1, 1] as the training loop does, with
/// no training in between. `scripts/bench/bench_loader.py` measures PyTorch's DataLoader on the
/// same stores with the same batches per iteration.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// A prepared data directory (`diat data prepare` / `diat data sets` output).
    #[arg(long)]
    data: PathBuf,
    /// The task whose input and guided sets are read.
    #[arg(long, default_value = "mouth_open")]
    task: String,
    /// Images per batch (paper: 64).
    #[arg(long, default_value_t = 64)]
    batch: usize,
    /// D updates per iteration (each reads an input and a guided batch).
    #[arg(long, default_value_t = 1)]
    dstep: u64,
    /// T updates per iteration (each reads an input batch).
    #[arg(long, default_value_t = 1)]
    tstep: u64,
    /// Worker thread counts to measure.
    #[arg(long, value_delimiter = ',', default_value = "1,2,4")]
    threads: Vec<usize>,
    /// Timed iterations per measurement.
    #[arg(long, default_value_t = 300)]
    iters: u64,
    /// Untimed iterations first.
    #[arg(long, default_value_t = 20)]
    warmup: u64,
    /// cpu, cuda, or auto (CUDA when available).
    #[arg(long, default_value = "auto")]
    device: String,
    /// Write the results as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Then run scripts/bench/bench_loader.py with the same settings through this python and
    /// print the ratios.
    #[arg(long)]
    compare_python: Option<PathBuf>,
    /// The PyTorch benchmark script for --compare-python.
    #[arg(long, default_value = "scripts/bench/bench_loader.py")]
    python_script: PathBuf,
}

pub fn bench(a: BenchArgs) -> Result<ExitCode> {
    let device = super::parse_device(&a.device)?;
    let device_name = match device {
        Device::Cuda(i) => super::doctor::report()
            .cuda
            .devices
            .get(i)
            .cloned()
            .unwrap_or_else(|| format!("cuda:{i}")),
        _ => format!("{} (CPU)", diat_common::machine::cpu_model()),
    };
    let bench = LoaderBench {
        data: a.data.clone(),
        task: a.task.clone(),
        batch: a.batch,
        dstep: a.dstep,
        tstep: a.tstep,
        threads: a.threads.clone(),
        iters: a.iters,
        warmup: a.warmup,
    };
    let report = bench
        .run(
            device,
            &device_name,
            &mut |settings| println!("diat bench loader on {device_name}: {settings}"),
            &mut |row| println!("{row}"),
        )
        .with_context(|| format!("benchmarking the loader on {}", a.data.display()))?;
    super::peer::write_report(a.json.as_deref(), &report)?;
    if let Some(python) = &a.compare_python {
        let threads: Vec<String> = a.threads.iter().map(|t| t.to_string()).collect();
        let theirs: LoaderReport = super::peer::run_python_peer(
            python,
            &a.python_script,
            &[
                ("--data", a.data.display().to_string()),
                ("--task", a.task.clone()),
                ("--batch", a.batch.to_string()),
                ("--dstep", a.dstep.to_string()),
                ("--tstep", a.tstep.to_string()),
                ("--threads", threads.join(",")),
                ("--iters", a.iters.to_string()),
                ("--warmup", a.warmup.to_string()),
                ("--device", a.device.clone()),
            ],
        )?;
        println!("\n{}", comparison_table(&report, &theirs));
    }
    Ok(ExitCode::SUCCESS)
}
