//! The content-addressed cache under `$DIAT_HOME/zoo/v1` (`DIAT_ZOO_DIR` moves it; the `v1`
//! is the version of this layout):
//!
//! ```text
//! blobs/sha256/<hex>                          verified bytes, read-only, named by their sha256
//! blobs/sha256/<hex>.partial-<pid>-<unique>   a download in progress (one per process)
//! refs/<name>/<version>/ref.json              the registry entry the model was pulled with
//! refs/<name>/<version>/<role>.<format>       symlink to ../../../blobs/sha256/<hex>
//! refs/<name>/<version>/<role>/               a `zip` file, extracted (safely)
//! ```
//!
//! A blob shared by several models is stored once. `rm` drops a model's folder and the blobs no
//! other model uses; `gc` drops blobs no model references (older than a grace period, so a pull
//! that is between writing its blob and its folder is left alone), partials of processes that no
//! longer run, and half-built folders; `verify` rehashes blobs and checks every model's links.

use crate::archive;
use crate::error::{IoContext, Result, ZooError};
use crate::hash::sha256_file;
use crate::registry::{ModelEntry, ModelRef, check_sha256};
use crate::util::{now_rfc3339, partial_owner, pid_alive, unique_suffix};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

/// Name of the file that describes an installed model.
pub const REF_FILE: &str = "ref.json";

/// The cache.
#[derive(Debug, Clone)]
pub struct Cache {
    root: PathBuf,
}

/// State of one blob.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum BlobStatus {
    Ok,
    Missing,
    WrongSize { actual: u64, expected: u64 },
    WrongHash { actual: String },
}

impl fmt::Display for BlobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ok => f.write_str("ok"),
            Self::Missing => f.write_str("missing"),
            Self::WrongSize { actual, expected } => {
                write!(f, "corrupt ({actual} bytes, expected {expected})")
            }
            Self::WrongHash { actual } => write!(f, "corrupt (sha256 {actual})"),
        }
    }
}

/// `ref.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RefFile {
    layout: u32,
    pulled: String,
    entry: ModelEntry,
}

/// A model present in the cache.
#[derive(Debug, Clone, Serialize)]
pub struct InstalledModel {
    /// The registry entry it was pulled with.
    pub entry: ModelEntry,
    /// `refs/<name>/<version>`.
    pub dir: PathBuf,
    /// When it was pulled (RFC 3339).
    pub pulled: String,
    /// Role → the file (a link into the blobs) or, for zip files, the extracted folder.
    pub files: BTreeMap<String, PathBuf>,
}

/// What `verify` found for one blob.
#[derive(Debug, Clone, Serialize)]
pub struct BlobReport {
    pub sha256: String,
    pub path: PathBuf,
    #[serde(flatten)]
    pub status: BlobStatus,
    /// `name@version role` of every installed model file that uses it.
    pub used_by: Vec<String>,
}

/// Result of `verify`.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    pub blobs: Vec<BlobReport>,
    /// Problems with model folders (missing links, unreadable `ref.json`).
    pub problems: Vec<String>,
    pub bytes_hashed: u64,
    pub seconds: f64,
}

impl VerifyReport {
    /// Everything verified.
    pub fn ok(&self) -> bool {
        self.problems.is_empty() && self.blobs.iter().all(|b| b.status == BlobStatus::Ok)
    }
}

/// How `gc` behaves.
#[derive(Debug, Clone, Copy)]
pub struct GcOptions {
    /// Report only.
    pub dry_run: bool,
    /// Unreferenced blobs younger than this are kept (a pull may be about to reference them).
    pub keep_recent: Duration,
}

impl Default for GcOptions {
    fn default() -> Self {
        Self {
            dry_run: false,
            keep_recent: Duration::from_secs(15 * 60),
        }
    }
}

/// Result of `gc` and `rm`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct GcReport {
    pub dry_run: bool,
    /// Models removed (`rm`).
    pub removed_models: Vec<String>,
    pub removed_blobs: Vec<String>,
    /// Partials, half-built folders, broken model folders.
    pub removed_other: Vec<PathBuf>,
    pub freed_bytes: u64,
    /// Unreferenced blobs kept because they are recent.
    pub kept_recent: Vec<String>,
}

impl Cache {
    /// A cache rooted at `root` (created on first write).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The cache of `diat_common::Dirs::from_env()` (`$DIAT_HOME/zoo/v1`, `DIAT_ZOO_DIR`).
    pub fn from_env() -> Self {
        Self::new(diat_common::Dirs::from_env().zoo)
    }

    /// The root folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `blobs/sha256`.
    pub fn blob_dir(&self) -> PathBuf {
        self.root.join("blobs").join("sha256")
    }

    /// Where the blob with this sha256 lives.
    pub fn blob_path(&self, sha256: &str) -> Result<PathBuf> {
        check_sha256("sha256", sha256).map_err(ZooError::Other)?;
        Ok(self.blob_dir().join(sha256))
    }

    /// `refs`.
    pub fn refs_dir(&self) -> PathBuf {
        self.root.join("refs")
    }

    /// `refs/<name>/<version>`.
    pub fn model_dir(&self, name: &str, version: &semver::Version) -> PathBuf {
        self.refs_dir().join(name).join(version.to_string())
    }

    /// Checks a blob: present, of `size` (when given), and (with `rehash`) of its sha256.
    pub fn check_blob(&self, sha256: &str, size: Option<u64>, rehash: bool) -> Result<BlobStatus> {
        let path = self.blob_path(sha256)?;
        let meta = match fs::metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(BlobStatus::Missing),
            Err(e) => return Err(ZooError::io(&path, e)),
        };
        if let Some(expected) = size
            && meta.len() != expected
        {
            return Ok(BlobStatus::WrongSize {
                actual: meta.len(),
                expected,
            });
        }
        if rehash {
            let (actual, _) = sha256_file(&path)?;
            if actual != sha256 {
                return Ok(BlobStatus::WrongHash { actual });
            }
        }
        Ok(BlobStatus::Ok)
    }

    /// Removes a blob (a corrupt one, before it is fetched again).
    pub fn discard_blob(&self, sha256: &str) -> Result<()> {
        let path = self.blob_path(sha256)?;
        // Move it aside first so a reader never sees it half-deleted under its name.
        let aside = path.with_file_name(format!("{sha256}.discard-{}", unique_suffix()));
        match fs::rename(&path, &aside) {
            Ok(()) => fs::remove_file(&aside).at(&aside),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(ZooError::io(&path, e)),
        }
    }

    /// Records a model whose blobs are all present: builds `refs/<name>/<version>` (links,
    /// extracted zips, `ref.json`) under a temporary name and renames it into place.
    pub fn install(&self, entry: &ModelEntry) -> Result<InstalledModel> {
        for f in &entry.files {
            let p = self.blob_path(&f.sha256)?;
            if !p.is_file() {
                return Err(ZooError::Other(format!(
                    "{} {}: blob {} is missing",
                    entry.id(),
                    f.role,
                    p.display()
                )));
            }
        }
        let target = self.model_dir(&entry.name, &entry.version);
        if let Some(existing) = self
            .read_installed(&target)
            .ok()
            .filter(|m| &m.entry == entry && links_ok(m))
        {
            return Ok(existing);
        }
        let parent = target.parent().expect("refs/<name>/<version> has a parent");
        fs::create_dir_all(parent).at(parent)?;
        let staging = parent.join(format!(".{}.partial-{}", entry.version, unique_suffix()));
        let build = || -> Result<()> {
            fs::create_dir(&staging).at(&staging)?;
            for f in &entry.files {
                let blob = self.blob_path(&f.sha256)?;
                if f.format == "zip" {
                    archive::extract_zip(&blob, &staging.join(&f.role))?;
                } else {
                    let link = staging.join(f.local_name());
                    link_blob(&blob, &f.sha256, &link)?;
                }
            }
            let rf = RefFile {
                layout: 1,
                pulled: now_rfc3339(),
                entry: entry.clone(),
            };
            let json =
                serde_json::to_vec_pretty(&rf).map_err(|e| ZooError::Other(e.to_string()))?;
            fs::write(staging.join(REF_FILE), json).at(staging.join(REF_FILE))
        };
        if let Err(e) = build() {
            let _ = fs::remove_dir_all(&staging);
            return Err(e);
        }
        // Replace whatever is there; if another process installs the same model at the same
        // moment, either result is complete and equivalent.
        let mut olds = Vec::new();
        let mut placed = Err(std::io::Error::other("not attempted"));
        for _ in 0..3 {
            if target.exists() {
                let old = parent.join(format!(".{}.old-{}", entry.version, unique_suffix()));
                if fs::rename(&target, &old).is_ok() {
                    olds.push(old);
                }
            }
            placed = fs::rename(&staging, &target);
            if placed.is_ok() {
                break;
            }
            if self
                .read_installed(&target)
                .is_ok_and(|m| &m.entry == entry && links_ok(&m))
            {
                placed = Ok(());
                break;
            }
        }
        let _ = fs::remove_dir_all(&staging);
        for old in olds {
            let _ = fs::remove_dir_all(&old);
        }
        placed.at(&target)?;
        self.read_installed(&target)
    }

    fn read_installed(&self, dir: &Path) -> Result<InstalledModel> {
        let p = dir.join(REF_FILE);
        let text = fs::read(&p).at(&p)?;
        let rf: RefFile = serde_json::from_slice(&text)
            .map_err(|e| ZooError::Other(format!("{}: {e}", p.display())))?;
        let files = rf
            .entry
            .files
            .iter()
            .map(|f| {
                let path = if f.format == "zip" {
                    dir.join(&f.role)
                } else {
                    dir.join(f.local_name())
                };
                (f.role.clone(), path)
            })
            .collect();
        Ok(InstalledModel {
            entry: rf.entry,
            dir: dir.to_path_buf(),
            pulled: rf.pulled,
            files,
        })
    }

    /// Every installed model (folders that cannot be read are skipped with a warning; `verify`
    /// reports them and `gc` removes them).
    pub fn installed(&self) -> Result<Vec<InstalledModel>> {
        Ok(self.scan_models()?.0)
    }

    /// Installed models and the model folders that are broken (with why).
    fn scan_models(&self) -> Result<(Vec<InstalledModel>, Vec<Broken>)> {
        let mut ok = Vec::new();
        let mut broken = Vec::new();
        for name_dir in read_dir_sorted(&self.refs_dir())? {
            if !name_dir.is_dir() {
                continue;
            }
            for vdir in read_dir_sorted(&name_dir)? {
                let fname = vdir
                    .file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned();
                if fname.starts_with('.') || !vdir.is_dir() {
                    continue;
                }
                match self.read_installed(&vdir) {
                    Ok(m) => ok.push(m),
                    Err(e) => {
                        tracing::warn!("broken model folder {}: {e}", vdir.display());
                        broken.push((vdir, e.to_string()));
                    }
                }
            }
        }
        ok.sort_by(|a, b| {
            (&a.entry.name, &a.entry.version).cmp(&(&b.entry.name, &b.entry.version))
        });
        Ok((ok, broken))
    }

    /// The installed model a reference picks: the exact version, or the newest installed one
    /// that matches (yanked ones only when pinned).
    pub fn find_installed(&self, r: &ModelRef) -> Result<Option<InstalledModel>> {
        let mut all: Vec<InstalledModel> = self
            .installed()?
            .into_iter()
            .filter(|m| m.entry.name == r.name)
            .collect();
        all.sort_by(|a, b| b.entry.version.cmp(&a.entry.version));
        Ok(match &r.version {
            Some(crate::registry::VersionSpec::Exact(v)) => {
                all.into_iter().find(|m| &m.entry.version == v)
            }
            spec => {
                let live: Vec<InstalledModel> = all
                    .into_iter()
                    .filter(|m| {
                        !m.entry.yanked && spec.as_ref().is_none_or(|s| s.matches(&m.entry.version))
                    })
                    .collect();
                let stable = live.iter().position(|m| m.entry.version.pre.is_empty());
                let i = stable.or(if live.is_empty() { None } else { Some(0) });
                i.map(|i| live[i].clone())
            }
        })
    }

    /// [`Cache::remove`] for each of `refs`, one report for all (`diat zoo rm A B …`).
    pub fn remove_all(&self, refs: &[ModelRef]) -> Result<GcReport> {
        let mut total = GcReport::default();
        for r in refs {
            let one = self.remove(r)?;
            total.removed_models.extend(one.removed_models);
            total.removed_blobs.extend(one.removed_blobs);
            total.freed_bytes += one.freed_bytes;
        }
        Ok(total)
    }

    /// Removes installed models matching `r` (a bare name: every version) and the blobs no
    /// remaining model uses.
    pub fn remove(&self, r: &ModelRef) -> Result<GcReport> {
        let all = self.installed()?;
        let (gone, kept): (Vec<_>, Vec<_>) = all.into_iter().partition(|m| {
            m.entry.name == r.name
                && r.version
                    .as_ref()
                    .is_none_or(|s| s.matches(&m.entry.version))
        });
        if gone.is_empty() {
            return Err(ZooError::NotFound(format!(
                "{r} is not in the cache {}",
                self.root.display()
            )));
        }
        let still: BTreeSet<&str> = kept
            .iter()
            .flat_map(|m| m.entry.files.iter().map(|f| f.sha256.as_str()))
            .collect();
        let mut report = GcReport::default();
        for m in &gone {
            remove_dir_atomic(&m.dir)?;
            report.removed_models.push(m.entry.id());
        }
        let drop: BTreeSet<&str> = gone
            .iter()
            .flat_map(|m| m.entry.files.iter().map(|f| f.sha256.as_str()))
            .filter(|s| !still.contains(s))
            .collect();
        for sha in drop {
            let p = self.blob_path(sha)?;
            if let Ok(meta) = fs::metadata(&p) {
                fs::remove_file(&p).at(&p)?;
                report.freed_bytes += meta.len();
                report.removed_blobs.push(sha.to_string());
            }
        }
        self.prune_empty_name_dirs();
        Ok(report)
    }

    fn prune_empty_name_dirs(&self) {
        if let Ok(dirs) = read_dir_sorted(&self.refs_dir()) {
            for d in dirs {
                let _ = fs::remove_dir(&d); // only succeeds when empty
            }
        }
    }

    /// Removes what nothing references (see the module docs).
    pub fn gc(&self, opts: GcOptions) -> Result<GcReport> {
        let (models, broken) = self.scan_models()?;
        let referenced: BTreeSet<String> = models
            .iter()
            .flat_map(|m| m.entry.files.iter().map(|f| f.sha256.clone()))
            .collect();
        let mut report = GcReport {
            dry_run: opts.dry_run,
            ..GcReport::default()
        };
        let now = SystemTime::now();
        let age = |m: &fs::Metadata| {
            m.modified()
                .ok()
                .and_then(|t| now.duration_since(t).ok())
                .unwrap_or_default()
        };
        let week = Duration::from_secs(7 * 86_400);
        for p in read_dir_sorted(&self.blob_dir())? {
            let name = p
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            let Ok(meta) = fs::symlink_metadata(&p) else {
                continue;
            };
            if check_sha256("", &name).is_ok() {
                if referenced.contains(&name) {
                    continue;
                }
                if age(&meta) < opts.keep_recent {
                    report.kept_recent.push(name);
                    continue;
                }
                if !opts.dry_run {
                    fs::remove_file(&p).at(&p)?;
                }
                report.freed_bytes += meta.len();
                report.removed_blobs.push(name);
            } else if name.contains(".partial-") || name.contains(".discard-") {
                let dead = partial_owner(&name).is_none_or(|pid| !pid_alive(pid));
                if dead || age(&meta) > week {
                    if !opts.dry_run {
                        fs::remove_file(&p).at(&p)?;
                    }
                    report.freed_bytes += meta.len();
                    report.removed_other.push(p);
                }
            }
        }
        // Half-built or half-removed model folders of dead processes, and broken ones.
        for name_dir in read_dir_sorted(&self.refs_dir())? {
            for p in read_dir_sorted(&name_dir).unwrap_or_default() {
                let name = p
                    .file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned();
                let temp =
                    name.starts_with('.') && (name.contains(".partial-") || name.contains(".old-"));
                let owner = name
                    .rsplit_once(".old-")
                    .and_then(|(_, t)| t.split('-').next()?.parse().ok());
                let owner = owner.or_else(|| partial_owner(&name));
                if temp && owner.is_none_or(|pid| !pid_alive(pid)) {
                    if !opts.dry_run {
                        fs::remove_dir_all(&p).at(&p)?;
                    }
                    report.removed_other.push(p);
                }
            }
        }
        for (dir, why) in broken {
            tracing::info!("removing broken model folder {} ({why})", dir.display());
            if !opts.dry_run {
                remove_dir_atomic(&dir)?;
            }
            report.removed_other.push(dir);
        }
        if !opts.dry_run {
            self.prune_empty_name_dirs();
        }
        Ok(report)
    }

    /// Rehashes blobs and checks model folders: every blob (`only` = None) or those of the
    /// installed models matching `only`.
    pub fn verify(&self, only: Option<&[ModelRef]>) -> Result<VerifyReport> {
        let start = Instant::now();
        let (models, broken) = self.scan_models()?;
        let selected: Vec<&InstalledModel> = models
            .iter()
            .filter(|m| {
                only.is_none_or(|refs| {
                    refs.iter().any(|r| {
                        r.name == m.entry.name
                            && r.version
                                .as_ref()
                                .is_none_or(|s| s.matches(&m.entry.version))
                    })
                })
            })
            .collect();
        if let Some(refs) = only {
            for r in refs {
                if !selected.iter().any(|m| m.entry.name == r.name) {
                    return Err(ZooError::NotFound(format!(
                        "{r} is not in the cache {}",
                        self.root.display()
                    )));
                }
            }
        }
        let mut expected: BTreeMap<String, (u64, Vec<String>)> = BTreeMap::new();
        let mut problems: Vec<String> = Vec::new();
        if only.is_none() {
            problems.extend(
                broken
                    .iter()
                    .map(|(d, why)| format!("{}: {why}", d.display())),
            );
        }
        for m in &selected {
            for f in &m.entry.files {
                let e = expected
                    .entry(f.sha256.clone())
                    .or_insert((f.size, Vec::new()));
                e.1.push(format!("{} {}", m.entry.id(), f.role));
                let path = &m.files[&f.role];
                if fs::metadata(path).is_err() {
                    problems.push(format!(
                        "{} {}: {} is missing or dangling",
                        m.entry.id(),
                        f.role,
                        path.display()
                    ));
                }
            }
        }
        if only.is_none() {
            for p in read_dir_sorted(&self.blob_dir())? {
                let name = p
                    .file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned();
                if check_sha256("", &name).is_ok() {
                    expected.entry(name).or_insert((u64::MAX, Vec::new()));
                }
            }
        }
        let mut blobs = Vec::new();
        let mut bytes_hashed = 0;
        for (sha, (size, used_by)) in expected {
            let size = (size != u64::MAX).then_some(size);
            let status = self.check_blob(&sha, size, true)?;
            if status == BlobStatus::Ok {
                bytes_hashed += fs::metadata(self.blob_path(&sha)?)
                    .map(|m| m.len())
                    .unwrap_or(0);
            }
            blobs.push(BlobReport {
                path: self.blob_path(&sha)?,
                sha256: sha,
                status,
                used_by,
            });
        }
        Ok(VerifyReport {
            blobs,
            problems,
            bytes_hashed,
            seconds: start.elapsed().as_secs_f64(),
        })
    }
}

/// A model folder that cannot be read, and why.
type Broken = (PathBuf, String);

fn links_ok(m: &InstalledModel) -> bool {
    m.files.values().all(|p| fs::metadata(p).is_ok())
}

/// Entries of a folder, sorted; a missing folder is empty.
fn read_dir_sorted(dir: &Path) -> Result<Vec<PathBuf>> {
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(ZooError::io(dir, e)),
    };
    let mut v: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
    v.sort();
    Ok(v)
}

/// Renames a folder aside, then deletes it, so it never exists half-deleted under its name.
fn remove_dir_atomic(dir: &Path) -> Result<()> {
    let name = dir.file_name().unwrap_or_default().to_string_lossy();
    let aside = dir.with_file_name(format!(".{name}.old-{}", unique_suffix()));
    fs::rename(dir, &aside).at(dir)?;
    fs::remove_dir_all(&aside).at(&aside)
}

/// `link` → the blob: a relative symlink where the platform has them, else a hard link or a copy.
fn link_blob(blob: &Path, sha256: &str, link: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        let _ = blob;
        let target = Path::new("../../..")
            .join("blobs")
            .join("sha256")
            .join(sha256);
        std::os::unix::fs::symlink(&target, link).at(link)
    }
    #[cfg(not(unix))]
    {
        let _ = sha256;
        fs::hard_link(blob, link)
            .or_else(|_| fs::copy(blob, link).map(|_| ()))
            .at(link)
    }
}
