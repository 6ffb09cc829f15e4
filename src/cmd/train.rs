//! `diat train --pipeline pipelines/<task>.toml`: the paper's whole training for one task.

use anyhow::{Context, Result, bail};
use diat_nets::layers::synchronize;
use diat_train::data::Source;
use diat_train::trainer::adversarial_loader;
use diat_train::{PipelineConfig, TrainError, TrainOptions};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;
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

#[derive(Debug, Serialize, Deserialize)]
struct LoaderRow {
    threads: usize,
    /// Delivered to the training loop, converted on the device (wall clock).
    img_per_s: f64,
    /// What the workers alone could sustain (images per second of worker time × workers);
    /// absent for PyTorch.
    #[serde(default)]
    worker_capacity_img_per_s: Option<f64>,
    iters: u64,
}

#[derive(Debug, Serialize, Deserialize)]
struct LoaderReport {
    implementation: String,
    device: String,
    settings: String,
    results: Vec<LoaderRow>,
}

/// Touches every page of a store so that both implementations read from the page cache.
fn warm_page_cache(src: &Source) -> u64 {
    src.store
        .images_raw()
        .iter()
        .step_by(4096)
        .map(|&b| u64::from(b))
        .sum()
}

pub fn bench(a: BenchArgs) -> Result<ExitCode> {
    let device = super::parse_device(&a.device)?;
    if a.batch == 0 || a.iters == 0 || a.tstep == 0 || a.threads.contains(&0) {
        bail!("--batch, --iters, --tstep and every --threads value must be at least 1");
    }
    // The two sets the adversarial stage reads, at whatever size `data` holds them.
    let tdir = a.data.join("tasks").join(&a.task);
    let open = |role: &str| {
        Source::open(&tdir.join(role)).with_context(|| {
            format!(
                "opening the {} {role} set under {}",
                a.task,
                a.data.display()
            )
        })
    };
    let (input, guided) = (open("input")?, open("guided")?);
    if input.size() != guided.size() {
        bail!(
            "{}: input images are {} px but guided ones {} px",
            tdir.display(),
            input.size(),
            guided.size()
        );
    }
    std::hint::black_box(warm_page_cache(&input) + warm_page_cache(&guided));
    let per_iter = a.batch as u64 * (2 * a.dstep + a.tstep);
    let settings = format!(
        "{} {}px, batch {}, dstep {} tstep {} ({} images per iteration: {} input + {} guided)",
        a.task,
        input.size(),
        a.batch,
        a.dstep,
        a.tstep,
        per_iter,
        a.dstep + a.tstep,
        a.dstep
    );
    let device_name = match device {
        Device::Cuda(i) => super::doctor::report()
            .cuda
            .devices
            .get(i)
            .cloned()
            .unwrap_or_else(|| format!("cuda:{i}")),
        _ => format!("{} (CPU)", diat_common::machine::cpu_model()),
    };
    println!("diat bench loader on {device_name}: {settings}");
    // As `diat train` lays batches out by default (train.memory_format = "auto").
    let channels_last = diat_train::config::MemoryFormat::Auto.channels_last(device);
    let mut rows = Vec::new();
    for &threads in &a.threads {
        let total = a.warmup + a.iters;
        let mut loader = adversarial_loader(
            &input,
            &guided,
            0,
            a.batch,
            (a.dstep, a.tstep),
            (0, total),
            threads,
            device,
        );
        let mut start = Instant::now();
        let mut sink = Vec::new();
        for i in 0..total {
            if i == a.warmup {
                synchronize(device);
                start = Instant::now();
            }
            let (xs, aas) = loader.next_item().context("the loader stopped early")?;
            // What the training loop does with them: to the device, to floats in [-1, 1].
            sink = xs
                .iter()
                .chain(&aas)
                .map(|r| r.to_device(device, channels_last).images)
                .collect();
        }
        synchronize(device);
        let secs = start.elapsed().as_secs_f64();
        drop(sink);
        let row = LoaderRow {
            threads,
            img_per_s: (a.iters * per_iter) as f64 / secs,
            worker_capacity_img_per_s: Some(loader.capacity_ips()),
            iters: a.iters,
        };
        println!(
            "loader {threads:>2} worker thread(s): {:>10.0} img/s ({:.2} ms/iter, {} iters; \
             the workers alone could sustain {:.0} img/s)",
            row.img_per_s,
            secs * 1e3 / a.iters as f64,
            a.iters,
            loader.capacity_ips()
        );
        rows.push(row);
    }
    let report = LoaderReport {
        implementation: "diat (adversarial_loader)".into(),
        device: device_name,
        settings,
        results: rows,
    };
    super::peer::write_report(a.json.as_deref(), &report)?;
    if let Some(python) = &a.compare_python {
        compare_loader_with_pytorch(&a, python, &report)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn compare_loader_with_pytorch(a: &BenchArgs, python: &Path, ours: &LoaderReport) -> Result<()> {
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
    println!("\n| worker threads | diat img/s | PyTorch DataLoader img/s | ratio |");
    println!("|---:|---:|---:|---:|");
    for r in &ours.results {
        if let Some(p) = theirs.results.iter().find(|p| p.threads == r.threads) {
            println!(
                "| {} | {:.0} | {:.0} | {:.2} |",
                r.threads,
                r.img_per_s,
                p.img_per_s,
                r.img_per_s / p.img_per_s
            );
        }
    }
    Ok(())
}
