//! `diat zoo publish`: a trained run folder → files to upload and the registry stanza that lists
//! them.
//!
//! A run folder holds (training writes it; only the first item is required):
//!
//! ```text
//! final/*.safetensors              transform (required), enhance, discriminator (`diat train`)
//! final/pipeline.toml               the resolved pipeline, published beside the weights
//! checkpoints/*.safetensors         used when there is no final/transform.safetensors
//! resolved.toml | resolved_config.toml | config.toml
//! loss_curve.png
//! run.json                          task, variant, data manifest hash, metrics, ... (optional)
//! metrics.jsonl
//! samples/*.png                     sample sheets
//! ```
//!
//! Output, laid out like the urls (`<base-url>/<name>/<version>/<file>`), so uploading `OUT/` as
//! it is makes every url live:
//!
//! ```text
//! OUT/<name>/<version>/<role>.safetensors   one per checkpoint role (latest step of each)
//! OUT/<name>/<version>/pipeline.toml        final/pipeline.toml, when the run has it
//! OUT/<name>/<version>/run.zip              config, run.json, metrics.jsonl, loss curve, each stage's last sample sheet
//! OUT/<name>/<version>/registry-stanza.toml the [[model]] entry
//! ```
//!
//! The zip is reproducible (same files, same bytes). Once pulled, a model's folder holds
//! `transform.safetensors`, `enhance.safetensors`, `pipeline.toml`, ... side by side, as in the
//! run's `final/`, so what loads a run's `final/` loads a pulled model too.
//!
//! Fields come from the command line first, then `run.json`, then the config (`resolved.toml`):
//! `task` (or `[task].name`), `variant` (or `[task].variant`), `data_manifest_sha256` (or
//! `data.manifest_sha256` in run.json); `architecture` is the config's `[architecture]` (or
//! `[model]`, `[arch]`) table, plus `[task].enhancement`, or run.json's `architecture`;
//! `preprocessing` the config's `[preprocessing]` table, else the CelebA default (rows 20..198
//! of the 178×218 aligned image, resized to `[model].image_size` or 128, values in [-1, 1]);
//! `metrics` the numeric fields of run.json's `metrics` and of the last line of `metrics.jsonl`
//! (without step counters and timings).

use crate::error::{IoContext, Result, ZooError};
use crate::hash::sha256_file;
use crate::registry::{
    Crop, FileEntry, ModelEntry, Preprocessing, Registry, SCHEMA_VERSION, check_sha256,
};
use crate::resolve::checkpoints_by_role;
use semver::Version;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

/// Configuration files of a run, in order of preference.
const CONFIG_NAMES: [&str; 3] = ["resolved.toml", "resolved_config.toml", "config.toml"];

/// What to publish and how.
#[derive(Debug, Clone)]
pub struct PublishOptions {
    pub run_dir: PathBuf,
    pub name: String,
    pub version: Version,
    /// The files' urls are `<base_url>/<name>/<version>/<file>`.
    pub base_url: String,
    /// Further base urls serving the same tree (become `mirrors`).
    pub mirror_base_urls: Vec<String>,
    /// Output root; files go to `<out>/<name>/<version>/`.
    pub out: PathBuf,
    /// Registry file to append the stanza to (created with `schema = 1` if missing).
    pub registry: Option<PathBuf>,
    pub task: Option<String>,
    pub variant: Option<String>,
    pub license: String,
    pub description: Option<String>,
    /// sha256 of the training set's manifest, or ...
    pub data_manifest_sha256: Option<String>,
    /// ... the manifest file to hash.
    pub data_manifest: Option<PathBuf>,
    /// Replace an existing output folder.
    pub overwrite: bool,
    /// A `diat eval real --json` report of the run's model on held-out faces: its figures go
    /// into the entry's `metrics` and the model card.
    pub eval_report: Option<PathBuf>,
    /// A `diat eval lfw --json` report of the model on LFW's whole photos: its figures go into
    /// the entry's `metrics` and the model card.
    pub lfw_report: Option<PathBuf>,
    /// Markdown for the card's Notes (which images, which split, what limited the model).
    pub notes: Option<PathBuf>,
    /// Leave the sample sheets out of `run.zip` (they show training faces: a model published
    /// inside a repository must not carry a dataset's images whose terms forbid that).
    pub no_samples: bool,
}

/// What `publish` wrote.
#[derive(Debug, Clone, Serialize)]
pub struct Published {
    pub entry: ModelEntry,
    /// `<out>/<name>/<version>`.
    pub dir: PathBuf,
    /// The files to upload, in the entry's order.
    pub files: Vec<PathBuf>,
    /// The `[[model]]` stanza.
    pub stanza: String,
    /// The registry file it was appended to.
    pub registry: Option<PathBuf>,
}

/// The `[[model]]` TOML of one entry.
pub fn stanza(entry: &ModelEntry) -> String {
    #[derive(Serialize)]
    struct One<'a> {
        model: [&'a ModelEntry; 1],
    }
    toml::to_string(&One { model: [entry] }).expect("an entry always serializes")
}

fn numeric_fields(v: &serde_json::Value, out: &mut BTreeMap<String, f64>) {
    const SKIP: [&str; 8] = [
        "step",
        "epoch",
        "iter",
        "iteration",
        "time",
        "elapsed",
        "seconds",
        "wall_s",
    ];
    if let Some(obj) = v.as_object() {
        for (k, x) in obj {
            // Step counters, timings and throughputs describe the run, not the model.
            if SKIP.contains(&k.as_str()) || k.ends_with("_per_s") {
                continue;
            }
            if let Some(f) = x.as_f64().filter(|f| f.is_finite()) {
                out.insert(k.clone(), f);
            }
        }
    }
}

fn json_to_toml(v: &serde_json::Value) -> Option<toml::Value> {
    Some(match v {
        serde_json::Value::Null => return None,
        serde_json::Value::Bool(b) => toml::Value::Boolean(*b),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => toml::Value::Integer(i),
            None => toml::Value::Float(n.as_f64()?),
        },
        serde_json::Value::String(s) => toml::Value::String(s.clone()),
        serde_json::Value::Array(a) => {
            toml::Value::Array(a.iter().filter_map(json_to_toml).collect())
        }
        serde_json::Value::Object(o) => toml::Value::Table(
            o.iter()
                .filter_map(|(k, v)| Some((k.clone(), json_to_toml(v)?)))
                .collect(),
        ),
    })
}

/// When the published weights were made, so that publishing one run twice gives the same stanza:
/// `SOURCE_DATE_EPOCH` (the reproducible-builds convention) when set, else the time the run's
/// `final/` was sealed (its `complete.json`), else the newest checkpoint's, else now.
fn created_time(ck_dir: &Path) -> String {
    if let Some(secs) = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
    {
        return crate::util::rfc3339(secs);
    }
    let mtime = |p: &Path| {
        fs::metadata(p)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_secs())
    };
    let sealed = mtime(&ck_dir.join(diat_common::complete::RECORD));
    let newest = || {
        fs::read_dir(ck_dir)
            .ok()?
            .flatten()
            .filter_map(|e| mtime(&e.path()))
            .max()
    };
    match sealed.or_else(newest) {
        Some(secs) => crate::util::rfc3339(secs),
        None => crate::util::now_rfc3339(),
    }
}

/// Packs the run and writes the stanza (see the module docs).
pub fn publish(opts: &PublishOptions) -> Result<Published> {
    let run = &opts.run_dir;
    let perr = |m: String| ZooError::Publish {
        run: run.clone(),
        message: m,
    };
    crate::registry::check_name(&opts.name).map_err(perr)?;
    if !run.is_dir() {
        return Err(perr("not a folder".into()));
    }
    // `final/` (what `diat train` writes for the zoo), else a flat `checkpoints/`.
    let final_dir = run.join("final");
    let ck_dir =
        if final_dir.join("transform.safetensors").is_file() || !run.join("checkpoints").is_dir() {
            final_dir
        } else {
            run.join("checkpoints")
        };
    if !ck_dir.is_dir() {
        return Err(perr(
            "neither final/ nor checkpoints/: publish needs a training run with final/transform.safetensors \
             (or checkpoints/transform*.safetensors)"
                .into(),
        ));
    }
    // A run's final/ is published only whole (its complete.json checked).
    diat_common::complete::check_folder(&ck_dir).map_err(|e| perr(e.to_string()))?;
    let checkpoints = checkpoints_by_role(&ck_dir)?;
    if !checkpoints.contains_key("transform") {
        return Err(perr(format!(
            "no transform checkpoint in {} (found: {}); nothing to publish",
            ck_dir.display(),
            if checkpoints.is_empty() {
                "no .safetensors".into()
            } else {
                checkpoints.keys().cloned().collect::<Vec<_>>().join(", ")
            }
        )));
    }
    // The resolved pipeline beside the weights (the inference loader reads the blur sigma there).
    let pipeline = ck_dir.join("pipeline.toml");
    let pipeline = pipeline.is_file().then_some(pipeline);

    // Run metadata.
    let run_json: Option<serde_json::Value> = match fs::read(run.join("run.json")) {
        Ok(b) => Some(serde_json::from_slice(&b).map_err(|e| perr(format!("run.json: {e}")))?),
        Err(_) => None,
    };
    let config_path = CONFIG_NAMES
        .iter()
        .map(|n| run.join(n))
        .find(|p| p.is_file());
    let config: Option<toml::Table> = match &config_path {
        Some(p) => {
            let t = fs::read_to_string(p).at(p)?;
            Some(toml::from_str(&t).map_err(|e| perr(format!("{}: {e}", p.display())))?)
        }
        None => None,
    };
    let rj = |k: &str| run_json.as_ref().and_then(|v| v.get(k));
    let rj_str = |k: &str| rj(k).and_then(|v| v.as_str()).map(str::to_string);
    // `key` at the top level of the config, else `[task].key` (`name` for the task).
    let cfg_str = |k: &str| {
        let c = config.as_ref()?;
        let sub = if k == "task" { "name" } else { k };
        c.get(k)
            .and_then(|v| v.as_str())
            .or_else(|| c.get("task")?.get(sub)?.as_str())
            .map(str::to_string)
    };
    let task = opts
        .task
        .clone()
        .or_else(|| rj_str("task"))
        .or_else(|| cfg_str("task"));
    let task = task
        .ok_or_else(|| perr("no task: pass --task (run.json and the config have none)".into()))?;
    let variant = opts
        .variant
        .clone()
        .or_else(|| rj_str("variant"))
        .or_else(|| cfg_str("variant"));
    let variant = variant.ok_or_else(|| {
        perr("no variant: pass --variant diat|diat-a (run.json and the config have none)".into())
    })?;
    let data_sha = match (&opts.data_manifest_sha256, &opts.data_manifest) {
        (Some(h), _) => Some(h.to_ascii_lowercase()),
        (None, Some(p)) => Some(sha256_file(p)?.0),
        (None, None) => rj_str("data_manifest_sha256").or_else(|| {
            rj("data")
                .and_then(|d| d.get("manifest_sha256"))
                .and_then(|v| v.as_str())
                .map(str::to_string)
        }),
    };
    let data_sha = data_sha.ok_or_else(|| {
        perr("no training-data manifest hash: pass --data-manifest PATH/manifest.json or --data-manifest-sha256 HEX".into())
    })?;
    check_sha256("data manifest sha256", &data_sha).map_err(perr)?;

    let mut architecture: toml::Table = config
        .as_ref()
        .and_then(|c| {
            ["architecture", "model", "arch"]
                .iter()
                .find_map(|k| c.get(*k)?.as_table().cloned())
        })
        .or_else(|| {
            rj("architecture")
                .and_then(json_to_toml)
                .and_then(|v| v.as_table().cloned())
        })
        .unwrap_or_else(|| {
            tracing::warn!(
                "no architecture table in the config or run.json; the entry's architecture is empty"
            );
            toml::Table::new()
        });
    if let Some(e) = config
        .as_ref()
        .and_then(|c| c.get("task")?.get("enhancement"))
        .cloned()
    {
        architecture.entry("enhancement").or_insert(e);
    }
    let image_size = config
        .as_ref()
        .and_then(|c| c.get("model")?.get("image_size")?.as_integer())
        .and_then(|v| u32::try_from(v).ok());
    let preprocessing = match config.as_ref().and_then(|c| c.get("preprocessing")) {
        Some(v) => v
            .clone()
            .try_into::<Preprocessing>()
            .map_err(|e| perr(format!("config [preprocessing]: {e}")))?,
        None => Preprocessing {
            crop: Crop {
                left: 0,
                top: 20,
                width: 178,
                height: 178,
            },
            size: image_size.unwrap_or(128),
            value_range: [-1.0, 1.0],
        },
    };
    let mut metrics = BTreeMap::new();
    if let Some(m) = rj("metrics") {
        numeric_fields(m, &mut metrics);
    }
    let metrics_text = fs::read_to_string(run.join("metrics.jsonl")).ok();
    if let Some(text) = &metrics_text
        && let Some(last) = text.lines().rev().find(|l| !l.trim().is_empty())
    {
        let v: serde_json::Value = serde_json::from_str(last)
            .map_err(|e| perr(format!("metrics.jsonl, last line: {e}")))?;
        numeric_fields(&v, &mut metrics);
    }

    // A report file given to publish: JSON, with the array `key` its command writes.
    let read_report =
        |p: &Path, what: &str, key: &str, command: &str| -> Result<serde_json::Value> {
            let b = fs::read(p).at(p)?;
            let v: serde_json::Value = serde_json::from_slice(&b)
                .map_err(|e| perr(format!("{what} {}: {e}", p.display())))?;
            if v.get(key).and_then(|c| c.as_array()).is_none() {
                return Err(perr(format!(
                    "{what} {}: no `{key}` (expected the JSON of `{command} --json`)",
                    p.display()
                )));
            }
            Ok(v)
        };
    let eval_report = opts
        .eval_report
        .as_deref()
        .map(|p| read_report(p, "eval report", "conditions", "diat eval real"))
        .transpose()?;
    if let Some(v) = &eval_report {
        metrics.extend(crate::card::eval_metrics(v));
    }
    let lfw_report = opts
        .lfw_report
        .as_deref()
        .map(|p| read_report(p, "LFW report", "verification", "diat eval lfw"))
        .transpose()?;
    if let Some(v) = &lfw_report {
        metrics.extend(crate::card::lfw_metrics(v));
    }
    let notes = match &opts.notes {
        Some(p) => Some(fs::read_to_string(p).at(p)?),
        None => None,
    };
    let stage_seconds = metrics_text
        .as_deref()
        .map(crate::card::stage_seconds)
        .unwrap_or_default();
    let secs: f64 = stage_seconds.iter().map(|(_, s)| s).sum();
    if secs > 0.0 {
        metrics.insert("training_hours".into(), (secs / 36.0).round() / 100.0);
    }

    // The run zip: everything but the checkpoints.
    let mut zip_entries: Vec<(String, PathBuf)> = Vec::new();
    for name in CONFIG_NAMES
        .iter()
        .chain(&["run.json", "metrics.jsonl", "loss_curve.png"])
    {
        let p = run.join(name);
        if p.is_file() {
            zip_entries.push((name.to_string(), p));
        }
    }
    if let Ok(rd) = fs::read_dir(run.join("samples"))
        && !opts.no_samples
    {
        let mut samples: Vec<PathBuf> = rd
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.is_file()
                    && p.extension()
                        .is_some_and(|x| x == "png" || x == "jpg" || x == "json")
            })
            .collect();
        samples.sort();
        // Of a stage's periodic sheets (`<stage>-step-<n>.png`) only the last one: the zip is for
        // a reader of the card, and every sheet of a long run would outweigh the weights.
        let stage_of = |p: &PathBuf| {
            let n = p
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            n.split_once("-step-").map(|(s, _)| s.to_string())
        };
        let mut kept: Vec<PathBuf> = Vec::new();
        for p in samples {
            if let (Some(last), Some(stage)) = (kept.last(), stage_of(&p))
                && stage_of(last).as_deref() == Some(stage.as_str())
            {
                kept.pop();
            }
            kept.push(p);
        }
        for p in kept {
            let n = p
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            zip_entries.push((format!("samples/{n}"), p));
        }
    }

    // Refuse a version the registry already lists before writing anything.
    let existing_registry = match &opts.registry {
        Some(reg) => {
            let text = match fs::read_to_string(reg) {
                Ok(t) => t,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    format!("schema = {SCHEMA_VERSION}\n")
                }
                Err(e) => return Err(ZooError::io(reg, e)),
            };
            let old = Registry::from_toml_str(&text, &reg.display().to_string())?;
            if old
                .models
                .iter()
                .any(|m| m.name == opts.name && m.version == opts.version)
            {
                return Err(ZooError::registry(
                    reg.display().to_string(),
                    format!("{}@{} is already listed", opts.name, opts.version),
                ));
            }
            Some(text)
        }
        None => None,
    };

    let dir = opts.out.join(&opts.name).join(opts.version.to_string());
    let staged = diat_common::StagedDir::new(&dir, opts.overwrite).at(&dir)?;
    let mut files = Vec::new();
    let base = |b: &str, file: &str| {
        format!(
            "{}/{}/{}/{}",
            b.trim_end_matches('/'),
            opts.name,
            opts.version,
            file
        )
    };
    let entry_of = |role: &str, format: &str, staged_path: &Path| -> Result<FileEntry> {
        let (sha256, size) = sha256_file(staged_path)?;
        let file_name = staged_path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        Ok(FileEntry {
            role: role.to_string(),
            url: base(&opts.base_url, &file_name),
            mirrors: opts
                .mirror_base_urls
                .iter()
                .map(|m| base(m, &file_name))
                .collect(),
            sha256,
            size,
            format: format.to_string(),
        })
    };
    // transform first, then the other roles alphabetically.
    let mut roles: Vec<&String> = checkpoints.keys().collect();
    roles.sort_by_key(|r| (r.as_str() != "transform", r.as_str()));
    for role in roles {
        let target = staged.path().join(format!("{role}.safetensors"));
        fs::copy(&checkpoints[role], &target).at(&target)?;
        files.push(entry_of(role, "safetensors", &target)?);
    }
    if let Some(p) = &pipeline {
        let target = staged.path().join("pipeline.toml");
        fs::copy(p, &target).at(&target)?;
        files.push(entry_of("pipeline", "toml", &target)?);
    }
    if !zip_entries.is_empty() {
        let z = staged.path().join("run.zip");
        crate::archive::write_zip(&z, &zip_entries)?;
        files.push(entry_of("run", "zip", &z)?);
    }
    // The model card last: it lists every other file with its hash.
    let card_entry = |files: Vec<FileEntry>| ModelEntry {
        name: opts.name.clone(),
        version: opts.version.clone(),
        task: task.clone(),
        variant: variant.clone(),
        description: opts.description.clone(),
        license: opts.license.clone(),
        created: created_time(&ck_dir),
        data_manifest_sha256: data_sha.clone(),
        yanked: false,
        yanked_reason: None,
        superseded_by: None,
        architecture: architecture.clone(),
        preprocessing,
        metrics: metrics.clone(),
        files,
    };
    let card = crate::card::model_card(
        &card_entry(files.clone()),
        &crate::card::CardInputs {
            config: config.as_ref(),
            run_json: run_json.as_ref(),
            stage_seconds: &stage_seconds,
            eval: eval_report.as_ref(),
            lfw: lfw_report.as_ref(),
            notes: notes.as_deref(),
        },
    );
    let card_path = staged.path().join("card.md");
    fs::write(&card_path, card).at(&card_path)?;
    files.push(entry_of("card", "md", &card_path)?);
    let entry = card_entry(files);
    entry
        .validate()
        .map_err(|m| perr(format!("the entry would be invalid: {m}")))?;
    let text = stanza(&entry);
    fs::write(staged.path().join("registry-stanza.toml"), &text).at(staged.path())?;

    let registry_text = match (&opts.registry, existing_registry) {
        (Some(reg), Some(existing)) => {
            let sep = if existing.ends_with('\n') {
                "\n"
            } else {
                "\n\n"
            };
            let combined = format!("{existing}{sep}{text}");
            Registry::from_toml_str(&combined, &reg.display().to_string())?;
            Some(combined)
        }
        _ => None,
    };
    let dir = staged.commit().at(&dir)?;
    if let (Some(reg), Some(t)) = (&opts.registry, registry_text) {
        diat_common::write_atomic(reg, t.as_bytes()).at(reg)?;
    }
    let files = entry
        .files
        .iter()
        .map(|f| dir.join(f.url.rsplit('/').next().unwrap_or_default()))
        .collect();
    Ok(Published {
        entry,
        dir,
        files,
        stanza: text,
        registry: opts.registry.clone(),
    })
}
