//! What `diat zoo list`, `info`, `pull`, `verify`, `gc`/`rm` and `publish` report, as values a
//! library user can call for ([`list`], [`info`]) and render ([`Display`]
//! on each report: the text the command prints; the values serialize to its `--json`).
//!
//! ```no_run
//! use diat_zoo::report::{info, list};
//! use diat_zoo::{ModelRef, ResolveOptions};
//!
//! # fn main() -> diat_zoo::Result<()> {
//! let opts = ResolveOptions::from_env();
//! print!("{}", list(&opts, false, false)?);
//! print!("{}", info(&ModelRef::parse("mouth_open")?, &opts)?);
//! # Ok(())
//! # }
//! ```

use crate::cache::{BlobStatus, Cache, GcReport, REF_FILE, VerifyReport};
use crate::registry::{ModelEntry, ModelRef};
use crate::resolve::{ResolveOptions, Resolved};
use crate::{Published, Registry, Result, ZooError};
use serde::Serialize;
use std::fmt::{self, Display, Formatter};
use std::path::PathBuf;

/// `bytes` for people: `512 B`, `3.4 KiB`, `12.0 MiB`, `1.25 GiB`.
pub fn human_bytes(bytes: u64) -> String {
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

/// One model of [`list`].
#[derive(Debug, Clone, Serialize)]
pub struct ListRow {
    pub id: String,
    pub name: String,
    pub version: String,
    pub task: String,
    pub variant: String,
    pub size: u64,
    pub yanked: bool,
    pub superseded_by: Option<String>,
    pub installed: bool,
}

/// The models of the registry (or, with `installed_only`, of the cache), newest version first
/// within a name; yanked ones only with `all` (or `installed_only`).
#[derive(Debug, Clone, Serialize)]
#[serde(transparent)]
pub struct ModelList {
    pub rows: Vec<ListRow>,
    /// What an empty list says (not serialized).
    #[serde(skip)]
    pub empty: String,
}

/// `diat zoo list`.
pub fn list(opts: &ResolveOptions, installed_only: bool, all: bool) -> Result<ModelList> {
    let cache = &opts.cache;
    let installed = cache.installed()?;
    let is_installed = |id: &str| installed.iter().any(|m| m.entry.id() == id);
    let entries: Vec<ModelEntry> = if installed_only {
        installed.iter().map(|m| m.entry.clone()).collect()
    } else {
        opts.load_registry()?.models
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
    let empty = if installed_only {
        format!("no models in the cache {}", cache.root().display())
    } else {
        format!("the registry ({}) lists no models", opts.registry)
    };
    Ok(ModelList { rows, empty })
}

impl Display for ModelList {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        if self.rows.is_empty() {
            return writeln!(f, "{}", self.empty);
        }
        writeln!(
            f,
            "{:<28} {:<16} {:<8} {:>10}  state",
            "model", "task", "variant", "size"
        )?;
        for r in &self.rows {
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
            writeln!(
                f,
                "{:<28} {:<16} {:<8} {:>10}  {}",
                r.id,
                r.task,
                r.variant,
                human_bytes(r.size),
                state.join(", ")
            )?;
        }
        Ok(())
    }
}

/// One file of [`ModelInfo`].
#[derive(Debug, Clone, Serialize)]
pub struct InfoFile {
    pub role: String,
    pub sha256: String,
    pub size: u64,
    /// Its place in the cache.
    pub blob: PathBuf,
    /// Whether the cache holds it, verified by size (not re-hashed).
    pub cached: bool,
}

/// `diat zoo info`: a registry entry and its state in the cache.
#[derive(Debug, Clone, Serialize)]
pub struct ModelInfo {
    pub entry: ModelEntry,
    pub installed: bool,
    /// Where it is installed (none when it is not).
    pub dir: Option<PathBuf>,
    /// Where it is, or would be, installed.
    #[serde(skip)]
    pub install_dir: PathBuf,
    pub files: Vec<InfoFile>,
}

/// Looks `model` up in the registry; when the registry cannot be read and `opts.fetch.offline`,
/// in the cache alone (a warning is logged).
pub fn info(model: &ModelRef, opts: &ResolveOptions) -> Result<ModelInfo> {
    let cache = &opts.cache;
    let registry: Option<Registry> = match opts.load_registry() {
        Ok(reg) => Some(reg),
        Err(e) if opts.fetch.offline => {
            tracing::warn!("{e}; showing the cache only");
            None
        }
        Err(e) => return Err(e),
    };
    let installed_match = cache.find_installed(model)?;
    let entry = match registry.as_ref().map(|reg| reg.resolve(model)) {
        Some(Ok(e)) => e.clone(),
        other => match installed_match {
            Some(m) => m.entry,
            None => match other {
                Some(Err(e)) => return Err(e),
                _ => {
                    return Err(ZooError::NotFound(format!(
                        "{model} is not in the cache {}",
                        cache.root().display()
                    )));
                }
            },
        },
    };
    let dir = cache.model_dir(&entry.name, &entry.version);
    let installed = dir.join(REF_FILE).is_file();
    let files = entry
        .files
        .iter()
        .map(|f| InfoFile {
            role: f.role.clone(),
            sha256: f.sha256.clone(),
            size: f.size,
            blob: cache.blob_path(&f.sha256).unwrap_or_default(),
            cached: matches!(
                cache.check_blob(&f.sha256, Some(f.size), false),
                Ok(BlobStatus::Ok)
            ),
        })
        .collect();
    Ok(ModelInfo {
        entry,
        installed,
        dir: installed.then(|| dir.clone()),
        install_dir: dir,
        files,
    })
}

impl Display for ModelInfo {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let e = &self.entry;
        writeln!(f, "{}", e.id())?;
        if let Some(d) = &e.description {
            writeln!(f, "  {d}")?;
        }
        writeln!(
            f,
            "  task {}, variant {}, licence {}, created {}",
            e.task, e.variant, e.license, e.created
        )?;
        if e.yanked {
            let reason = e.yanked_reason.as_deref().map(|s| format!(": {s}"));
            let by = e.superseded_by.as_deref();
            let by = by.map(|s| format!(" (superseded by {s})"));
            writeln!(
                f,
                "  YANKED{}{}",
                reason.unwrap_or_default(),
                by.unwrap_or_default()
            )?;
        } else if let Some(s) = &e.superseded_by {
            writeln!(f, "  superseded by {s}")?;
        }
        let p = &e.preprocessing;
        writeln!(
            f,
            "  preprocessing: crop {}x{} at ({}, {}), resize to {}x{}, values in [{}, {}]",
            p.crop.width,
            p.crop.height,
            p.crop.left,
            p.crop.top,
            p.size,
            p.size,
            p.value_range[0],
            p.value_range[1]
        )?;
        writeln!(
            f,
            "  training data manifest sha256 {}",
            e.data_manifest_sha256
        )?;
        if !e.architecture.is_empty() {
            let arch = toml::to_string(&e.architecture).map_err(|_| fmt::Error)?;
            writeln!(f, "  architecture: {}", arch.trim().replace('\n', "; "))?;
        }
        for (k, v) in &e.metrics {
            writeln!(f, "  metric {k} = {v}")?;
        }
        for file in &self.files {
            let src = e.file(&file.role).map(|x| x.url.as_str());
            writeln!(
                f,
                "  {:<14} {:>10}  sha256 {}  {}\n                 {}",
                file.role,
                human_bytes(file.size),
                file.sha256,
                if file.cached { "cached" } else { "not cached" },
                src.unwrap_or_default()
            )?;
        }
        let at = if self.installed {
            "installed at"
        } else {
            "would be installed at"
        };
        writeln!(f, "  {at} {}", self.install_dir.display())
    }
}

impl Display for Resolved {
    /// `diat zoo pull`'s line: files verified, bytes downloaded, where; then, for each file whose
    /// first source(s) failed, a line naming them, why, and where it came from instead
    /// (`  transform: source 1 of 2 (https://a/x) failed: HTTP 404; fetched from https://b/x`).
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let got: u64 = self.fetched.iter().map(|x| x.transferred).sum();
        let secs: f64 = self.fetched.iter().map(|x| x.seconds).sum();
        let cached = self.fetched.iter().filter(|x| x.cached).count();
        let rate = if secs > 0.0 && got > 0 {
            format!(" ({}/s)", human_bytes((got as f64 / secs) as u64))
        } else {
            String::new()
        };
        writeln!(
            f,
            "{}: {} files verified ({cached} from the cache), {} downloaded in {secs:.2}s{rate} -> {}",
            self.id,
            self.fetched.len(),
            human_bytes(got),
            self.dir.display()
        )?;
        for x in &self.fetched {
            let Some(note) = x.fallback_note() else {
                continue;
            };
            let role = self
                .entry
                .as_ref()
                .and_then(|e| e.files.iter().find(|file| file.sha256 == x.sha256))
                .map_or_else(|| format!("sha256 {}", x.sha256), |file| file.role.clone());
            writeln!(f, "  {role}: {note}")?;
        }
        Ok(())
    }
}

impl Display for VerifyReport {
    /// `diat zoo verify`: a line per blob and problem, then the summary.
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        for b in &self.blobs {
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
            writeln!(f, "{status:<10} {}  {users}", b.sha256)?;
        }
        for p in &self.problems {
            writeln!(f, "PROBLEM    {p}")?;
        }
        let rate = if self.seconds > 0.0 {
            self.bytes_hashed as f64 / self.seconds
        } else {
            0.0
        };
        writeln!(
            f,
            "{} blobs, {} hashed in {:.2}s ({}/s): {}",
            self.blobs.len(),
            human_bytes(self.bytes_hashed),
            self.seconds,
            human_bytes(rate as u64),
            if self.ok() {
                "all verified"
            } else {
                "DAMAGED (`diat zoo pull` fetches damaged files again)"
            }
        )
    }
}

/// A [`GcReport`] with the cache it is about, for printing (`diat zoo gc`, `rm`).
pub struct Removal<'a> {
    pub report: &'a GcReport,
    pub cache: &'a Cache,
}

impl Display for Removal<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let r = self.report;
        let verb = if r.dry_run { "would remove" } else { "removed" };
        for m in &r.removed_models {
            writeln!(f, "removed {m}")?;
        }
        for b in &r.removed_blobs {
            writeln!(f, "{verb} blob {b}")?;
        }
        for p in &r.removed_other {
            writeln!(f, "{verb} {}", p.display())?;
        }
        if !r.kept_recent.is_empty() {
            writeln!(
                f,
                "kept {} recent unreferenced blob(s) (see --keep-recent)",
                r.kept_recent.len()
            )?;
        }
        writeln!(
            f,
            "{} {} in {}",
            if r.dry_run { "would free" } else { "freed" },
            human_bytes(r.freed_bytes),
            self.cache.root().display()
        )
    }
}

impl Display for Published {
    /// `diat zoo publish`'s account: each file and where to upload it, the registry appended to.
    /// (The stanza itself is `self.stanza`.)
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "published {} into {}:",
            self.entry.id(),
            self.dir.display()
        )?;
        for (file, path) in self.entry.files.iter().zip(&self.files) {
            writeln!(
                f,
                "  {:<14} {:>10}  {}  -> upload to {}",
                file.role,
                human_bytes(file.size),
                path.display(),
                file.url
            )?;
        }
        if let Some(r) = &self.registry {
            writeln!(f, "appended to {}", r.display())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_for_people() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(3 << 10), "3.0 KiB");
        assert_eq!(human_bytes(12 << 20), "12.0 MiB");
        assert_eq!(human_bytes(5 << 29), "2.50 GiB");
    }
}
