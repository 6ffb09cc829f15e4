//! `diat data …`: CelebA ingestion (inspect, index, cluster, sets, prepare) and synthetic faces
//! (`data synth`, see `synth.rs`).

use anyhow::{Result, bail};
use diat_celeba::cluster::ExclusionFile;
use diat_celeba::crop::CropSpec;
use diat_celeba::layout::Layout;
use diat_celeba::pipeline::BuildConfig;
use diat_celeba::sets::{SelectConfig, TaskSpec};
use diat_celeba::workflow::{self, SetsOptions};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, clap::Subcommand)]
enum Cmd {
    /// Report the layout found, counts, split sizes and what is missing or inconsistent.
    Inspect {
        root: PathBuf,
        /// Check the official md5 sums (reads the whole image zip).
        #[arg(long)]
        verify: bool,
        #[arg(long)]
        json: bool,
    },
    /// Write the index table (index.parquet): ids, split, identity, attributes, landmarks.
    Index {
        root: PathBuf,
        #[arg(long)]
        out: PathBuf,
        #[arg(long)]
        verify: bool,
    },
    /// Landmark k-means (§5.1), exclusions, per-cluster statistics and contact sheets.
    Cluster(ClusterArgs),
    /// Per-task guided / input / test stores (Algorithm 1 step 1), masks and reports.
    Sets(SetsArgs),
    /// index + cluster + sets for every paper task + the pretraining store.
    Prepare {
        root: PathBuf,
        #[command(flatten)]
        cluster: ClusterOpts,
        #[command(flatten)]
        sets: SetsOpts,
    },
    /// Render a synthetic CelebA-format dataset (the embedded default).
    Synth(super::synth::Args),
}

#[derive(Debug, clap::Args)]
struct ClusterArgs {
    #[command(flatten)]
    opts: ClusterOpts,
}

#[derive(Debug, clap::Args)]
struct ClusterOpts {
    /// The output folder of `diat data index` (also where everything else is written).
    #[arg(long)]
    out: PathBuf,
    /// Reviewable exclusions file (clustering parameters, heuristic, curator overrides).
    #[arg(long, default_value = "pipelines/clusters.toml")]
    exclusions: PathBuf,
    /// Override k (paper: 62).
    #[arg(long)]
    k: Option<usize>,
    /// Override the k-means seed.
    #[arg(long)]
    cluster_seed: Option<u64>,
    /// Members per contact sheet (0: no sheets).
    #[arg(long, default_value_t = 36)]
    sheet_size: usize,
}

#[derive(Debug, clap::Args)]
struct SetsArgs {
    /// The CelebA root (default: the one recorded by `diat data index`).
    #[arg(long)]
    root: Option<PathBuf>,
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    opts: SetsOpts,
}

#[derive(Debug, clap::Args)]
struct SetsOpts {
    /// Paper tasks to build (default: all five).
    #[arg(long = "task")]
    tasks: Vec<String>,
    /// A TOML file of custom tasks ([[task]] name, attribute, guided_value, region, confounders).
    #[arg(long)]
    task_file: Option<PathBuf>,
    /// Input-set size (paper: 2,000).
    #[arg(long, default_value_t = 2000)]
    input_size: usize,
    /// Held-out test inputs per task.
    #[arg(long, default_value_t = 200)]
    test_size: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Output image side (paper: 128).
    #[arg(long, default_value_t = 128)]
    size: u32,
    /// Do not balance the guided set on the task's confounders.
    #[arg(long)]
    no_balance: bool,
    /// Fail when more than this fraction of images is rejected.
    #[arg(long, default_value_t = 0.01)]
    max_rejects: f64,
    /// Also build the pretraining store (all kept training images).
    #[arg(long)]
    pretrain: bool,
    /// Cap the pretraining store.
    #[arg(long)]
    pretrain_limit: Option<usize>,
    /// Use every image when no clustering was run.
    #[arg(long)]
    no_cluster_filter: bool,
    /// 68-point landmarks (CSV: image_id,x0,y0,…,x67,y67 in aligned-image coordinates) for the
    /// paper's finer mask hulls; images not listed fall back to the 5-point hulls.
    #[arg(long, value_name = "CSV")]
    landmarks68: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// A CelebA root (any layout) whose images are decoded.
    root: PathBuf,
    /// Images to process (cycling over the available ones).
    #[arg(long, default_value_t = 2000)]
    images: usize,
    /// Worker threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Also run the Pillow pipeline of scripts/bench/pillow_crop.py with this python.
    #[arg(long)]
    python: Option<PathBuf>,
}

fn load_exclusions(o: &ClusterOpts) -> Result<ExclusionFile> {
    Ok(workflow::load_exclusions(
        &o.exclusions,
        o.k,
        o.cluster_seed,
    )?)
}

fn tasks_of(o: &SetsOpts) -> Result<Vec<TaskSpec>> {
    Ok(workflow::tasks(o.task_file.as_deref(), &o.tasks)?)
}

fn sets_options(o: &SetsOpts) -> Result<SetsOptions> {
    let landmarks68 = o
        .landmarks68
        .as_deref()
        .map(diat_celeba::masks::read_landmarks_68)
        .transpose()?
        .map(std::sync::Arc::new);
    Ok(SetsOptions {
        select: SelectConfig {
            input_size: o.input_size,
            test_size: o.test_size,
            seed: o.seed,
            balance: !o.no_balance,
        },
        build: BuildConfig {
            crop: CropSpec::default().with_size(o.size),
            max_reject_fraction: o.max_rejects,
            landmarks68,
            ..Default::default()
        },
        pretrain: o.pretrain,
        pretrain_limit: o.pretrain_limit,
        allow_unclustered: o.no_cluster_filter,
    })
}

pub fn run(args: Args) -> Result<ExitCode> {
    match args.cmd {
        Cmd::Inspect { root, verify, json } => {
            let layout = Layout::detect(&root)?;
            let report = diat_celeba::inspect::inspect(&layout, verify)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", report.text());
            }
        }
        Cmd::Index { root, out, verify } => {
            let s = workflow::index(&root, &out, verify)?;
            println!(
                "indexed {} images ({} layout) into {}",
                s.images,
                s.layout,
                out.join("index.parquet").display()
            );
            for w in &s.warnings {
                println!("warning: {w}");
            }
        }
        Cmd::Cluster(a) => {
            let s = workflow::cluster(&a.opts.out, &load_exclusions(&a.opts)?, a.opts.sheet_size)?;
            print!("{}", s.text(&a.opts.out));
        }
        Cmd::Sets(a) => {
            let outs = workflow::sets(
                &a.out,
                a.root.as_deref(),
                &tasks_of(&a.opts)?,
                &sets_options(&a.opts)?,
            )?;
            return Ok(sets_outcome(&outs));
        }
        Cmd::Prepare {
            root,
            cluster,
            sets,
        } => {
            let out = cluster.out.clone();
            let s = workflow::index(&root, &out, false)?;
            println!("indexed {} images ({} layout)", s.images, s.layout);
            let c = workflow::cluster(&out, &load_exclusions(&cluster)?, cluster.sheet_size)?;
            print!("{}", c.text(&out));
            let mut opts = sets_options(&sets)?;
            opts.pretrain = true;
            let outs = workflow::sets(&out, Some(&root), &tasks_of(&sets)?, &opts)?;
            let code = sets_outcome(&outs);
            println!("pretraining store: {}", out.join("pretrain").display());
            return Ok(code);
        }
        Cmd::Synth(a) => return super::synth::run(a),
    }
    Ok(ExitCode::SUCCESS)
}

pub fn bench(args: BenchArgs) -> Result<ExitCode> {
    let r = diat_celeba::bench::run(
        &args.root,
        args.images,
        args.threads,
        args.python.as_deref(),
    )?;
    print!("{}", r.text());
    if r.images == 0 {
        bail!("no image was processed");
    }
    Ok(ExitCode::SUCCESS)
}

/// The exit code of `sets`/`prepare`: images written into the task stores against images
/// rejected (unreadable, wrong size).
fn sets_outcome(outs: &[workflow::TaskOutput]) -> ExitCode {
    for o in outs {
        eprintln!("{}:\n{}", o.task, o.report.table());
        println!(
            "{}: guided {} · input {} · test {} → {}",
            o.task,
            o.report.guided,
            o.report.input,
            o.report.test,
            o.dir.display()
        );
    }
    let written = outs.iter().map(|o| o.written()).sum();
    let rejected = outs.iter().map(|o| o.rejected).sum();
    super::outcome(written, rejected, "image(s) rejected")
}
