//! `diat zoo`: the model registry and the local cache (issue 7).
//!
//! `list | info | pull | verify | gc | rm | publish`, each with `--json` (machine-readable
//! output on stdout; progress and logs stay on stderr). The registry is `--registry PATH|URL`,
//! else `DIAT_REGISTRY`, else the `zoo/registry.toml` built into this binary. The cache is
//! `$DIAT_HOME/zoo/v1` (`DIAT_ZOO_DIR` moves it). `--offline` or `DIAT_OFFLINE=1` never touches
//! the network. The layer itself is the `diat-zoo` crate.

use anyhow::{Context, Result};
use diat_zoo::cache::GcOptions;
use diat_zoo::report::{self, Removal};
use diat_zoo::resolve::RegistrySource;
use diat_zoo::{Cache, FetchOptions, ModelRef, PublishOptions, ResolveOptions, Resolved};
use serde::Serialize;
use std::fmt::Display;
use std::process::ExitCode;
use std::time::Duration;

mod args;
pub use args::Args;
use args::{Cmd, Common, PublishArgs};

fn resolve_opts(common: &Common, fetch: FetchOptions) -> ResolveOptions {
    ResolveOptions {
        registry: match &common.registry {
            Some(s) => RegistrySource::parse(s),
            None => RegistrySource::from_env(),
        },
        cache: Cache::from_env(),
        fetch,
    }
}

/// Prints `value` as JSON with `--json`, else as its text.
fn show(json: bool, value: &(impl Serialize + Display)) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(value)?);
    } else {
        print!("{value}");
    }
    Ok(())
}

pub fn run(args: Args) -> Result<ExitCode> {
    match args.cmd {
        Cmd::List {
            common,
            installed,
            all,
        } => {
            let opts = resolve_opts(&common, FetchOptions::from_env());
            show(common.json, &report::list(&opts, installed, all)?)?;
        }
        Cmd::Info {
            common,
            model,
            offline,
        } => {
            let fetch = FetchOptions {
                offline: offline || diat_zoo::fetch::offline_from_env(),
                ..FetchOptions::default()
            };
            let info = report::info(&ModelRef::parse(&model)?, &resolve_opts(&common, fetch))?;
            show(common.json, &info)?;
        }
        Cmd::Pull {
            common,
            net,
            models,
        } => {
            let opts = resolve_opts(&common, net.fetch_options()?);
            let mut done: Vec<Resolved> = Vec::new();
            for m in &models {
                // `pull` takes model names only (local paths are for `apply`).
                ModelRef::parse(m)?;
                let r = diat_zoo::resolve_and_fetch_with(m, &opts)
                    .with_context(|| format!("pulling {m}"))?;
                if !common.json {
                    print!("{r}");
                }
                done.push(r);
            }
            if common.json {
                println!("{}", serde_json::to_string_pretty(&done)?);
            }
        }
        Cmd::Verify { common, models } => {
            let cache = Cache::from_env();
            let refs = parse_refs(&models)?;
            let report = cache.verify((!refs.is_empty()).then_some(&refs[..]))?;
            if common.json {
                #[derive(Serialize)]
                struct Out<'a> {
                    ok: bool,
                    cache: &'a std::path::Path,
                    #[serde(flatten)]
                    report: &'a diat_zoo::VerifyReport,
                }
                let out = Out {
                    ok: report.ok(),
                    cache: cache.root(),
                    report: &report,
                };
                println!("{}", serde_json::to_string_pretty(&out)?);
            } else {
                print!("{report}");
            }
            if !report.ok() {
                return Ok(ExitCode::FAILURE);
            }
        }
        Cmd::Gc {
            common,
            dry_run,
            keep_recent,
        } => {
            let cache = Cache::from_env();
            let report = cache.gc(GcOptions {
                dry_run,
                keep_recent: Duration::from_secs(keep_recent),
            })?;
            show_removal(common.json, &cache, &report)?;
        }
        Cmd::Rm { common, models } => {
            let cache = Cache::from_env();
            let refs = parse_refs(&models)?;
            show_removal(common.json, &cache, &cache.remove_all(&refs)?)?;
        }
        Cmd::Publish(a) => publish(a)?,
    }
    Ok(ExitCode::SUCCESS)
}

fn parse_refs(models: &[String]) -> Result<Vec<ModelRef>> {
    Ok(models
        .iter()
        .map(|m| ModelRef::parse(m))
        .collect::<Result<_, _>>()?)
}

fn show_removal(json: bool, cache: &Cache, report: &diat_zoo::GcReport) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(report)?);
    } else {
        print!("{}", Removal { report, cache });
    }
    Ok(())
}

fn publish(a: PublishArgs) -> Result<()> {
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
        eval_report: a.eval,
        lfw_report: a.eval_lfw,
        notes: a.notes,
        no_samples: a.no_samples,
    })?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&p)?);
    } else {
        eprint!("{p}");
        print!("{}", p.stanza);
    }
    Ok(())
}
