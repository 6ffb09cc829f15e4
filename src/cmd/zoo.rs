//! `diat zoo`: the model registry and the local cache (issue 7).
//!
//! `list | info | pull | verify | gc | rm | publish`, each with `--json` (machine-readable
//! output on stdout; progress and logs stay on stderr). The registry is `--registry PATH|URL`,
//! else `DIAT_REGISTRY`, else the `zoo/registry.toml` built into this binary. The cache is
//! `$DIAT_HOME/zoo/v1` (`DIAT_ZOO_DIR` moves it). `--offline` or `DIAT_OFFLINE=1` never touches
//! the network. The layer itself is the `diat-zoo` crate.

use anyhow::{Context, Result, bail};
use diat_zoo::cache::{BlobStatus, GcOptions, GcReport};
use diat_zoo::resolve::RegistrySource;
use diat_zoo::{Cache, FetchOptions, ModelRef, PublishOptions, Registry, ResolveOptions, Resolved};
use serde::Serialize;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Clone, clap::Args)]
struct Common {
    /// Registry file or https url [default: $DIAT_REGISTRY, else the registry built into diat].
    #[arg(long, value_name = "PATH|URL")]
    registry: Option<String>,
    /// Machine-readable JSON on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Clone, clap::Args)]
struct Net {
    /// Never touch the network (also DIAT_OFFLINE=1): use the cache or fail naming what is missing.
    #[arg(long)]
    offline: bool,
    /// Accept plain http to non-loopback hosts (https is required otherwise).
    #[arg(long)]
    allow_http: bool,
    /// Seconds without a byte before an attempt counts as timed out.
    #[arg(long, default_value_t = 30.0, value_name = "SECS")]
    timeout: f64,
    /// Seconds allowed for connecting.
    #[arg(long, default_value_t = 15.0, value_name = "SECS")]
    connect_timeout: f64,
    /// Below this many bytes/s over --speed-window an attempt counts as timed out (0: off).
    #[arg(long, default_value_t = 1024, value_name = "BYTES")]
    min_speed: u64,
    /// Window for --min-speed.
    #[arg(long, default_value_t = 30.0, value_name = "SECS")]
    speed_window: f64,
    /// Retries per source on timeouts, connection errors, 408, 429 and 5xx.
    #[arg(long, default_value_t = 5)]
    retries: u32,
    /// First retry delay (doubled each retry, with jitter, at most 30 s).
    #[arg(long, default_value_t = 500, value_name = "MS")]
    retry_delay_ms: u64,
    /// No progress display.
    #[arg(long, short)]
    quiet: bool,
}

impl Net {
    fn fetch_options(&self) -> Result<FetchOptions> {
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
enum Cmd {
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
struct PublishArgs {
    /// Machine-readable JSON on stdout.
    #[arg(long)]
    json: bool,
    /// The run folder (checkpoints/*.safetensors, config.toml, run.json, metrics.jsonl, samples/).
    run_dir: PathBuf,
    #[arg(long)]
    name: String,
    /// Semantic version, e.g. 1.0.0.
    #[arg(long)]
    version: String,
    /// Where OUT will be served: urls are BASE_URL/NAME/VERSION/FILE.
    #[arg(long, value_name = "URL")]
    base_url: String,
    /// Further base urls serving the same files (become mirrors).
    #[arg(long, value_name = "URL")]
    mirror_base_url: Vec<String>,
    /// Output folder; files go to OUT/NAME/VERSION/.
    #[arg(long, default_value = "zoo-publish")]
    out: PathBuf,
    /// Registry file to append the stanza to (created if missing).
    #[arg(long, value_name = "PATH")]
    registry: Option<PathBuf>,
    /// SPDX licence of the weights (CelebA-trained weights inherit CelebA's non-commercial terms).
    #[arg(long)]
    license: String,
    /// Task [default: from run.json or the config].
    #[arg(long)]
    task: Option<String>,
    /// diat | diat-a [default: from run.json or the config].
    #[arg(long)]
    variant: Option<String>,
    #[arg(long)]
    description: Option<String>,
    /// The training set's manifest.json (its sha256 goes into the entry).
    #[arg(long, value_name = "PATH")]
    data_manifest: Option<PathBuf>,
    /// The sha256 of the training set's manifest.json, if the file is not at hand.
    #[arg(long, value_name = "HEX")]
    data_manifest_sha256: Option<String>,
    /// Replace OUT/NAME/VERSION if it exists.
    #[arg(long)]
    overwrite: bool,
}

fn registry_source(common: &Common) -> RegistrySource {
    match &common.registry {
        Some(s) => RegistrySource::parse(s),
        None => RegistrySource::from_env(),
    }
}

fn resolve_opts(common: &Common, fetch: FetchOptions) -> ResolveOptions {
    ResolveOptions {
        registry: registry_source(common),
        cache: Cache::from_env(),
        fetch,
    }
}

fn print_json(v: &impl Serialize) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

fn mb(bytes: u64) -> String {
    if bytes >= 1 << 30 {
        format!("{:.2} GiB", bytes as f64 / (1u64 << 30) as f64)
    } else if bytes >= 1 << 20 {
        format!("{:.1} MiB", bytes as f64 / (1u64 << 20) as f64)
    } else if bytes >= 1 << 10 {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    } else {
        format!("{bytes} B")
    }
}

#[derive(Serialize)]
struct ListRow {
    id: String,
    name: String,
    version: String,
    task: String,
    variant: String,
    size: u64,
    yanked: bool,
    superseded_by: Option<String>,
    installed: bool,
}

pub fn run(args: Args) -> Result<ExitCode> {
    match args.cmd {
        Cmd::List {
            common,
            installed,
            all,
        } => list(&common, installed, all),
        Cmd::Info {
            common,
            model,
            offline,
        } => info(&common, &model, offline),
        Cmd::Pull {
            common,
            net,
            models,
        } => pull(&common, &net, &models),
        Cmd::Verify { common, models } => verify(&common, &models),
        Cmd::Gc {
            common,
            dry_run,
            keep_recent,
        } => {
            let cache = Cache::from_env();
            let r = cache.gc(GcOptions {
                dry_run,
                keep_recent: Duration::from_secs(keep_recent),
            })?;
            report_removal(
                &common,
                &cache,
                &r,
                if dry_run { "would free" } else { "freed" },
            )
        }
        Cmd::Rm { common, models } => {
            let cache = Cache::from_env();
            let mut total = GcReport::default();
            for m in &models {
                let r = cache.remove(&ModelRef::parse(m)?)?;
                total.removed_models.extend(r.removed_models);
                total.removed_blobs.extend(r.removed_blobs);
                total.freed_bytes += r.freed_bytes;
            }
            report_removal(&common, &cache, &total, "freed")
        }
        Cmd::Publish(a) => publish(a),
    }
}

fn list(common: &Common, installed_only: bool, all: bool) -> Result<ExitCode> {
    let cache = Cache::from_env();
    let installed = cache.installed()?;
    let is_installed = |id: &str| installed.iter().any(|m| m.entry.id() == id);
    let entries: Vec<diat_zoo::ModelEntry> = if installed_only {
        installed.iter().map(|m| m.entry.clone()).collect()
    } else {
        resolve_opts(common, FetchOptions::from_env())
            .load_registry()?
            .models
    };
    let mut rows: Vec<ListRow> = entries
        .iter()
        .filter(|e| all || installed_only || !e.yanked)
        .map(|e| ListRow {
            id: e.id(),
            name: e.name.clone(),
            version: e.version.to_string(),
            task: e.task.clone(),
            variant: e.variant.clone(),
            size: e.total_size(),
            yanked: e.yanked,
            superseded_by: e.superseded_by.clone(),
            installed: is_installed(&e.id()),
        })
        .collect();
    rows.sort_by(|a, b| (&a.name, &b.version).cmp(&(&b.name, &a.version)));
    if common.json {
        print_json(&rows)?;
        return Ok(ExitCode::SUCCESS);
    }
    if rows.is_empty() {
        if installed_only {
            println!("no models in the cache {}", cache.root().display());
        } else {
            println!("the registry ({}) lists no models", registry_source(common));
        }
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<28} {:<16} {:<8} {:>10}  state",
        "model", "task", "variant", "size"
    );
    for r in rows {
        let mut state = Vec::new();
        if r.installed {
            state.push("installed".to_string());
        }
        if r.yanked {
            state.push(match &r.superseded_by {
                Some(s) => format!("yanked (use {s})"),
                None => "yanked".into(),
            });
        }
        println!(
            "{:<28} {:<16} {:<8} {:>10}  {}",
            r.id,
            r.task,
            r.variant,
            mb(r.size),
            state.join(", ")
        );
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Serialize)]
struct Info<'a> {
    entry: &'a diat_zoo::ModelEntry,
    installed: bool,
    dir: Option<PathBuf>,
    files: Vec<InfoFile<'a>>,
}

#[derive(Serialize)]
struct InfoFile<'a> {
    role: &'a str,
    sha256: &'a str,
    size: u64,
    blob: PathBuf,
    cached: bool,
}

fn info(common: &Common, model: &str, offline: bool) -> Result<ExitCode> {
    let r = ModelRef::parse(model)?;
    let cache = Cache::from_env();
    let fetch = FetchOptions {
        offline: offline || diat_zoo::fetch::offline_from_env(),
        ..FetchOptions::default()
    };
    let registry: Option<Registry> = match resolve_opts(common, fetch.clone()).load_registry() {
        Ok(reg) => Some(reg),
        Err(e) if fetch.offline => {
            tracing::warn!("{e}; showing the cache only");
            None
        }
        Err(e) => return Err(e.into()),
    };
    let installed_match = cache.find_installed(&r)?;
    let entry = match registry.as_ref().map(|reg| reg.resolve(&r)) {
        Some(Ok(e)) => e.clone(),
        other => match &installed_match {
            Some(m) => m.entry.clone(),
            None => match other {
                Some(Err(e)) => return Err(e.into()),
                _ => bail!("{r} is not in the cache {}", cache.root().display()),
            },
        },
    };
    let dir = cache.model_dir(&entry.name, &entry.version);
    let installed = dir.join(diat_zoo::cache::REF_FILE).is_file();
    let files: Vec<InfoFile<'_>> = entry
        .files
        .iter()
        .map(|f| {
            let blob = cache.blob_path(&f.sha256).unwrap_or_default();
            let cached = matches!(
                cache.check_blob(&f.sha256, Some(f.size), false),
                Ok(BlobStatus::Ok)
            );
            InfoFile {
                role: &f.role,
                sha256: &f.sha256,
                size: f.size,
                blob,
                cached,
            }
        })
        .collect();
    if common.json {
        print_json(&Info {
            entry: &entry,
            installed,
            dir: installed.then(|| dir.clone()),
            files,
        })?;
        return Ok(ExitCode::SUCCESS);
    }
    let e = &entry;
    println!("{}", e.id());
    if let Some(d) = &e.description {
        println!("  {d}");
    }
    println!(
        "  task {}, variant {}, licence {}, created {}",
        e.task, e.variant, e.license, e.created
    );
    if e.yanked {
        println!(
            "  YANKED{}{}",
            e.yanked_reason
                .as_deref()
                .map(|s| format!(": {s}"))
                .unwrap_or_default(),
            e.superseded_by
                .as_deref()
                .map(|s| format!(" (superseded by {s})"))
                .unwrap_or_default()
        );
    } else if let Some(s) = &e.superseded_by {
        println!("  superseded by {s}");
    }
    let p = &e.preprocessing;
    println!(
        "  preprocessing: crop {}x{} at ({}, {}), resize to {}x{}, values in [{}, {}]",
        p.crop.width,
        p.crop.height,
        p.crop.left,
        p.crop.top,
        p.size,
        p.size,
        p.value_range[0],
        p.value_range[1]
    );
    println!("  training data manifest sha256 {}", e.data_manifest_sha256);
    if !e.architecture.is_empty() {
        println!(
            "  architecture: {}",
            toml::to_string(&e.architecture)?.trim().replace('\n', "; ")
        );
    }
    for (k, v) in &e.metrics {
        println!("  metric {k} = {v}");
    }
    for f in &files {
        let src = e.file(f.role).map(|x| x.url.as_str()).unwrap_or_default();
        println!(
            "  {:<14} {:>10}  sha256 {}  {}\n                 {}",
            f.role,
            mb(f.size),
            f.sha256,
            if f.cached { "cached" } else { "not cached" },
            src
        );
    }
    println!(
        "  {} {}",
        if installed {
            "installed at"
        } else {
            "would be installed at"
        },
        dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn pull(common: &Common, net: &Net, models: &[String]) -> Result<ExitCode> {
    let opts = resolve_opts(common, net.fetch_options()?);
    let mut done: Vec<Resolved> = Vec::new();
    for m in models {
        // `pull` takes model names only (local paths are for `apply`).
        ModelRef::parse(m)?;
        let r =
            diat_zoo::resolve_and_fetch_with(m, &opts).with_context(|| format!("pulling {m}"))?;
        if !common.json {
            let got: u64 = r.fetched.iter().map(|f| f.transferred).sum();
            let secs: f64 = r.fetched.iter().map(|f| f.seconds).sum();
            let cached = r.fetched.iter().filter(|f| f.cached).count();
            let rate = if secs > 0.0 && got > 0 {
                format!(" ({}/s)", mb((got as f64 / secs) as u64))
            } else {
                String::new()
            };
            println!(
                "{}: {} files verified ({} from the cache), {} downloaded in {secs:.2}s{rate} -> {}",
                r.id,
                r.fetched.len(),
                cached,
                mb(got),
                r.dir.display()
            );
        }
        done.push(r);
    }
    if common.json {
        print_json(&done)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn verify(common: &Common, models: &[String]) -> Result<ExitCode> {
    let cache = Cache::from_env();
    let refs: Vec<ModelRef> = models
        .iter()
        .map(|m| ModelRef::parse(m))
        .collect::<Result<_, _>>()?;
    let report = cache.verify(if refs.is_empty() { None } else { Some(&refs) })?;
    let ok = report.ok();
    if common.json {
        #[derive(Serialize)]
        struct Out<'a> {
            ok: bool,
            cache: &'a std::path::Path,
            #[serde(flatten)]
            report: &'a diat_zoo::VerifyReport,
        }
        print_json(&Out {
            ok,
            cache: cache.root(),
            report: &report,
        })?;
    } else {
        for b in &report.blobs {
            let users = if b.used_by.is_empty() {
                "unreferenced".to_string()
            } else {
                b.used_by.join(", ")
            };
            let status = if b.status == BlobStatus::Ok {
                "ok".to_string()
            } else {
                b.status.to_string().to_uppercase()
            };
            println!("{status:<10} {}  {users}", b.sha256);
        }
        for p in &report.problems {
            println!("PROBLEM    {p}");
        }
        let rate = if report.seconds > 0.0 {
            report.bytes_hashed as f64 / report.seconds
        } else {
            0.0
        };
        println!(
            "{} blobs, {} hashed in {:.2}s ({}/s): {}",
            report.blobs.len(),
            mb(report.bytes_hashed),
            report.seconds,
            mb(rate as u64),
            if ok {
                "all verified"
            } else {
                "DAMAGED (`diat zoo pull` fetches damaged files again)"
            }
        );
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn report_removal(common: &Common, cache: &Cache, r: &GcReport, verb: &str) -> Result<ExitCode> {
    if common.json {
        print_json(r)?;
        return Ok(ExitCode::SUCCESS);
    }
    for m in &r.removed_models {
        println!("removed {m}");
    }
    for b in &r.removed_blobs {
        println!(
            "{} blob {b}",
            if r.dry_run { "would remove" } else { "removed" }
        );
    }
    for p in &r.removed_other {
        println!(
            "{} {}",
            if r.dry_run { "would remove" } else { "removed" },
            p.display()
        );
    }
    if !r.kept_recent.is_empty() {
        println!(
            "kept {} recent unreferenced blob(s) (see --keep-recent)",
            r.kept_recent.len()
        );
    }
    println!("{verb} {} in {}", mb(r.freed_bytes), cache.root().display());
    Ok(ExitCode::SUCCESS)
}

fn publish(a: PublishArgs) -> Result<ExitCode> {
    let version = a
        .version
        .parse()
        .with_context(|| format!("--version {:?} is not a semantic version", a.version))?;
    let p = diat_zoo::publish(&PublishOptions {
        run_dir: a.run_dir,
        name: a.name,
        version,
        base_url: a.base_url,
        mirror_base_urls: a.mirror_base_url,
        out: a.out,
        registry: a.registry,
        task: a.task,
        variant: a.variant,
        license: a.license,
        description: a.description,
        data_manifest_sha256: a.data_manifest_sha256,
        data_manifest: a.data_manifest,
        overwrite: a.overwrite,
    })?;
    if a.json {
        print_json(&p)?;
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!("published {} into {}:", p.entry.id(), p.dir.display());
    for (f, path) in p.entry.files.iter().zip(&p.files) {
        eprintln!(
            "  {:<14} {:>10}  {}  -> upload to {}",
            f.role,
            mb(f.size),
            path.display(),
            f.url
        );
    }
    if let Some(r) = &p.registry {
        eprintln!("appended to {}", r.display());
    }
    print!("{}", p.stanza);
    Ok(ExitCode::SUCCESS)
}
