//! `diat zoo`'s arguments.

use anyhow::{Context, Result};
use diat_zoo::FetchOptions;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub(super) cmd: Cmd,
}

#[derive(Debug, Clone, clap::Args)]
pub(super) struct Common {
    /// Registry file or https url [default: $DIAT_REGISTRY, else the registry built into diat].
    #[arg(long, value_name = "PATH|URL")]
    pub(super) registry: Option<String>,
    /// Machine-readable JSON on stdout.
    #[arg(long)]
    pub(super) json: bool,
}

#[derive(Debug, Clone, clap::Args)]
pub(super) struct Net {
    /// Never touch the network (also DIAT_OFFLINE=1): use the cache or fail naming what is missing.
    #[arg(long)]
    pub(super) offline: bool,
    /// Accept plain http to non-loopback hosts (https is required otherwise).
    #[arg(long)]
    pub(super) allow_http: bool,
    /// Seconds without a byte before an attempt counts as timed out.
    #[arg(long, default_value_t = 30.0, value_name = "SECS")]
    pub(super) timeout: f64,
    /// Seconds allowed for connecting.
    #[arg(long, default_value_t = 15.0, value_name = "SECS")]
    pub(super) connect_timeout: f64,
    /// Below this many bytes/s over --speed-window an attempt counts as timed out (0: off).
    #[arg(long, default_value_t = 1024, value_name = "BYTES")]
    pub(super) min_speed: u64,
    /// Window for --min-speed.
    #[arg(long, default_value_t = 30.0, value_name = "SECS")]
    pub(super) speed_window: f64,
    /// Retries per source on timeouts, connection errors, 408, 429 and 5xx.
    #[arg(long, default_value_t = 5)]
    pub(super) retries: u32,
    /// First retry delay (doubled each retry, with jitter, at most 30 s).
    #[arg(long, default_value_t = 500, value_name = "MS")]
    pub(super) retry_delay_ms: u64,
    /// No progress display.
    #[arg(long, short)]
    pub(super) quiet: bool,
}

impl Net {
    pub(super) fn fetch_options(&self) -> Result<FetchOptions> {
        let secs = |v: f64, what: &str| -> Result<Duration> {
            Duration::try_from_secs_f64(v)
                .ok()
                .filter(|d| !d.is_zero())
                .with_context(|| format!("--{what} {v}: not a positive number of seconds"))
        };
        Ok(FetchOptions {
            offline: self.offline || diat_zoo::fetch::offline_from_env(),
            allow_http: self.allow_http,
            connect_timeout: secs(self.connect_timeout, "connect-timeout")?,
            read_timeout: secs(self.timeout, "timeout")?,
            min_speed: self.min_speed,
            speed_window: secs(self.speed_window, "speed-window")?,
            retries: self.retries,
            retry_delay: Duration::from_millis(self.retry_delay_ms),
            progress: !self.quiet,
            ..FetchOptions::default()
        })
    }
}

#[derive(Debug, clap::Subcommand)]
pub(super) enum Cmd {
    /// Models in the registry (or, with --installed, in the cache).
    List {
        #[command(flatten)]
        common: Common,
        /// List the cache instead of the registry.
        #[arg(long)]
        installed: bool,
        /// Include yanked versions.
        #[arg(long)]
        all: bool,
    },
    /// Everything about one model: files, hashes, preprocessing, metrics, cache state.
    Info {
        #[command(flatten)]
        common: Common,
        /// NAME[@VERSION]
        model: String,
        #[arg(long)]
        offline: bool,
    },
    /// Download and verify models into the cache (resumes, retries, checks sha256 and size).
    Pull {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        net: Net,
        /// NAME[@VERSION|@REQ] ...
        #[arg(required = true)]
        models: Vec<String>,
    },
    /// Rehash cached blobs and check model folders (all, or the named models); exit 1 on damage.
    Verify {
        #[command(flatten)]
        common: Common,
        models: Vec<String>,
    },
    /// Remove blobs no model uses, partial downloads of dead processes, half-built folders.
    Gc {
        #[command(flatten)]
        common: Common,
        /// Report only.
        #[arg(long)]
        dry_run: bool,
        /// Keep unreferenced blobs younger than this (a running pull may be about to use them).
        #[arg(long, default_value_t = 900, value_name = "SECS")]
        keep_recent: u64,
    },
    /// Remove models from the cache (a bare name: every version) and the blobs only they used.
    Rm {
        #[command(flatten)]
        common: Common,
        #[arg(required = true)]
        models: Vec<String>,
    },
    /// Pack a training run into files to upload and a registry stanza.
    Publish(PublishArgs),
}

#[derive(Debug, clap::Args)]
pub(super) struct PublishArgs {
    /// Machine-readable JSON on stdout.
    #[arg(long)]
    pub(super) json: bool,
    /// The run folder (checkpoints/*.safetensors, config.toml, run.json, metrics.jsonl, samples/).
    pub(super) run_dir: PathBuf,
    #[arg(long)]
    pub(super) name: String,
    /// Semantic version, e.g. 1.0.0.
    #[arg(long)]
    pub(super) version: String,
    /// Where OUT will be served: urls are BASE_URL/NAME/VERSION/FILE.
    #[arg(long, value_name = "URL")]
    pub(super) base_url: String,
    /// Further base urls serving the same files (become mirrors).
    #[arg(long, value_name = "URL")]
    pub(super) mirror_base_url: Vec<String>,
    /// Output folder; files go to OUT/NAME/VERSION/.
    #[arg(long, default_value = "zoo-publish")]
    pub(super) out: PathBuf,
    /// Registry file to append the stanza to (created if missing).
    #[arg(long, value_name = "PATH")]
    pub(super) registry: Option<PathBuf>,
    /// SPDX licence of the weights (CelebA-trained weights inherit CelebA's non-commercial terms).
    #[arg(long)]
    pub(super) license: String,
    /// Task [default: from run.json or the config].
    #[arg(long)]
    pub(super) task: Option<String>,
    /// diat | diat-a [default: from run.json or the config].
    #[arg(long)]
    pub(super) variant: Option<String>,
    #[arg(long)]
    pub(super) description: Option<String>,
    /// The training set's manifest.json (its sha256 goes into the entry).
    #[arg(long, value_name = "PATH")]
    pub(super) data_manifest: Option<PathBuf>,
    /// The sha256 of the training set's manifest.json, if the file is not at hand.
    #[arg(long, value_name = "HEX")]
    pub(super) data_manifest_sha256: Option<String>,
    /// Replace OUT/NAME/VERSION if it exists.
    #[arg(long)]
    pub(super) overwrite: bool,
    /// `diat eval real --json` report of this run on held-out faces (metrics and model card).
    #[arg(long, value_name = "JSON")]
    pub(super) eval: Option<PathBuf>,
    /// `diat eval lfw --json` report of the model on LFW's whole photos (metrics and model card).
    #[arg(long, value_name = "JSON")]
    pub(super) eval_lfw: Option<PathBuf>,
    /// Markdown notes for the model card (data, split, what limits the model).
    #[arg(long, value_name = "MD")]
    pub(super) notes: Option<PathBuf>,
    /// Leave the sample sheets (training faces) out of run.zip, e.g. for weights committed to a
    /// repository when the dataset's images may not be.
    #[arg(long)]
    pub(super) no_samples: bool,
}
