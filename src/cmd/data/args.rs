//! `diat data`'s arguments.

use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub(super) cmd: Cmd,
}

#[derive(Debug, clap::Subcommand)]
pub(super) enum Cmd {
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
    Synth(crate::cmd::synth::Args),
    /// A CelebA-format dataset (official layout) from photos named by CelebA id and aligned by
    /// `diat align --largest --aligned`: labels from --celeba, landmarks from the detector, a new
    /// division by identity (80/10/10 %, seeded); report.json lists every face left out.
    FromAligned {
        /// faces.json of `diat align` (its folder holds aligned/).
        faces_json: PathBuf,
        /// A CelebA root whose attribute and identity files label the photos.
        #[arg(long)]
        celeba: PathBuf,
        /// The dataset root to create.
        #[arg(long)]
        out: PathBuf,
        /// Leave out faces whose 178×178 training window lies less than this much inside the photo.
        #[arg(long, default_value_t = 0.75)]
        min_coverage: f32,
        /// Seed of the identity division.
        #[arg(long, default_value_t = diat_celeba::split::DEFAULT_SEED)]
        seed: u64,
        /// Replace --out if it exists.
        #[arg(long)]
        overwrite: bool,
    },
}

#[derive(Debug, clap::Args)]
pub(super) struct ClusterArgs {
    #[command(flatten)]
    pub(super) opts: ClusterOpts,
}

#[derive(Debug, clap::Args)]
pub(super) struct ClusterOpts {
    /// The output folder of `diat data index` (also where everything else is written).
    #[arg(long)]
    pub(super) out: PathBuf,
    /// Reviewable exclusions file (clustering parameters, heuristic, curator overrides).
    #[arg(long, default_value = "pipelines/clusters.toml")]
    pub(super) exclusions: PathBuf,
    /// Override k (paper: 62).
    #[arg(long)]
    pub(super) k: Option<usize>,
    /// Override the k-means seed.
    #[arg(long)]
    pub(super) cluster_seed: Option<u64>,
    /// Members per contact sheet (0: no sheets).
    #[arg(long, default_value_t = 36)]
    pub(super) sheet_size: usize,
}

#[derive(Debug, clap::Args)]
pub(super) struct SetsArgs {
    /// The CelebA root (default: the one recorded by `diat data index`).
    #[arg(long)]
    pub(super) root: Option<PathBuf>,
    #[arg(long)]
    pub(super) out: PathBuf,
    #[command(flatten)]
    pub(super) opts: SetsOpts,
}

#[derive(Debug, clap::Args)]
pub(super) struct SetsOpts {
    /// Paper tasks to build (default: all five).
    #[arg(long = "task")]
    pub(super) tasks: Vec<String>,
    /// A TOML file of custom tasks ([[task]] name, attribute, guided_value, region, confounders).
    #[arg(long)]
    pub(super) task_file: Option<PathBuf>,
    /// Input-set size (paper: 2,000).
    #[arg(long, default_value_t = 2000)]
    pub(super) input_size: usize,
    /// Held-out test inputs per task.
    #[arg(long, default_value_t = 200)]
    pub(super) test_size: usize,
    #[arg(long, default_value_t = 0)]
    pub(super) seed: u64,
    /// Output image side (paper: 128).
    #[arg(long, default_value_t = 128)]
    pub(super) size: u32,
    /// Do not balance the guided set on the task's confounders.
    #[arg(long)]
    pub(super) no_balance: bool,
    /// Fail when more than this fraction of images is rejected.
    #[arg(long, default_value_t = 0.01)]
    pub(super) max_rejects: f64,
    /// Also build the pretraining store (all kept training images).
    #[arg(long)]
    pub(super) pretrain: bool,
    /// Cap the pretraining store.
    #[arg(long)]
    pub(super) pretrain_limit: Option<usize>,
    /// Use every image when no clustering was run.
    #[arg(long)]
    pub(super) no_cluster_filter: bool,
    /// 68-point landmarks (CSV: image_id,x0,y0,…,x67,y67 in aligned-image coordinates) for the
    /// paper's finer mask hulls; images not listed fall back to the 5-point hulls.
    #[arg(long, value_name = "CSV")]
    pub(super) landmarks68: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// A CelebA root (any layout) whose images are decoded.
    pub(super) root: PathBuf,
    /// Images to process (cycling over the available ones).
    #[arg(long, default_value_t = 2000)]
    pub(super) images: usize,
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub(super) threads: Option<usize>,
    /// Also run the Pillow pipeline of scripts/bench/pillow_crop.py with this python.
    #[arg(long)]
    pub(super) python: Option<PathBuf>,
}
