//! From what a person types (`eyeglasses`, `eyeglasses@1.2.0`, `runs/x/checkpoints`,
//! `transform.safetensors`) to local files by role. [`resolve_and_fetch`] is what `diat apply`
//! calls.
//!
//! An argument that names an existing path is local and never touches the network or the
//! registry:
//!
//! - a `.safetensors` file: one file, its role read from its name (else `transform`);
//! - a folder with `ref.json` (a model folder of the cache);
//! - a training run folder (its `final/`, else its `checkpoints/`) or any folder of
//!   `*.safetensors`: roles from the file names (see [`role_of_file`]), plus `pipeline.toml`
//!   (role `pipeline`) when it lies beside them;
//! - a `.zip` (as written by `publish` or holding checkpoints): extracted safely into the cache
//!   under `local/<sha256>/`, then read as a folder.
//!
//! Anything else is a model reference, resolved in the registry and pulled (see
//! [`crate::fetch`]); a model that the registry does not list but that is installed in the cache
//! (pulled earlier with another registry) is used as it is.

use crate::cache::{Cache, InstalledModel, REF_FILE};
use crate::error::{Result, ZooError};
use crate::fetch::{FetchOptions, FetchOutcome, Fetcher};
use crate::registry::{ModelEntry, ModelRef, Registry};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Where the registry comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistrySource {
    /// `zoo/registry.toml` as built into this binary.
    Embedded,
    /// A file.
    File(PathBuf),
    /// An https (or loopback http, or file://) url.
    Url(String),
}

impl RegistrySource {
    /// A path, or a url when it has a scheme.
    pub fn parse(s: &str) -> Self {
        if s.contains("://") {
            Self::Url(s.to_string())
        } else {
            Self::File(PathBuf::from(s))
        }
    }

    /// `DIAT_REGISTRY` when set, else the embedded registry.
    pub fn from_env() -> Self {
        match std::env::var("DIAT_REGISTRY") {
            Ok(s) if !s.trim().is_empty() => Self::parse(s.trim()),
            _ => Self::Embedded,
        }
    }
}

impl std::fmt::Display for RegistrySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Embedded => f.write_str("embedded zoo/registry.toml"),
            Self::File(p) => write!(f, "{}", p.display()),
            Self::Url(u) => f.write_str(u),
        }
    }
}

/// Everything resolution needs.
#[derive(Debug, Clone)]
pub struct ResolveOptions {
    pub registry: RegistrySource,
    pub cache: Cache,
    pub fetch: FetchOptions,
}

impl ResolveOptions {
    /// `DIAT_REGISTRY`, the cache of `DIAT_HOME`/`DIAT_ZOO_DIR`, `DIAT_OFFLINE`.
    pub fn from_env() -> Self {
        Self {
            registry: RegistrySource::from_env(),
            cache: Cache::from_env(),
            fetch: FetchOptions::from_env(),
        }
    }

    /// Loads the registry (a url one is fetched with the same rules as model files), its relative
    /// file urls resolved against its location.
    pub fn load_registry(&self) -> Result<Registry> {
        match &self.registry {
            RegistrySource::Embedded => Registry::embedded_resolved(),
            RegistrySource::File(p) => Registry::load_resolved(p),
            RegistrySource::Url(u) => {
                let text = Fetcher::new(self.fetch.clone())?.fetch_text(u, 16 << 20)?;
                let mut reg = Registry::from_toml_str(&text, u)?;
                if let Ok(base) = reqwest::Url::parse(u) {
                    reg.resolve_relative_urls(&base);
                }
                Ok(reg)
            }
        }
    }
}

/// A model made local.
#[derive(Debug, Clone, Serialize)]
pub struct Resolved {
    /// `name@version`, or the local path given.
    pub id: String,
    /// The registry entry (none for a local checkpoint outside the cache).
    pub entry: Option<ModelEntry>,
    /// The folder holding the files: the cache's `refs/<name>/<version>` or, for local paths, the
    /// run's `final/` (or `checkpoints/`), the folder given, or the file's folder. For a pulled
    /// model and a run it looks like a run's `final/`: `transform.safetensors`,
    /// `enhance.safetensors`, `pipeline.toml`, ... side by side.
    pub dir: PathBuf,
    /// Role → file (zip files: their extracted folder).
    pub files: BTreeMap<String, PathBuf>,
    /// What each file's fetch did (empty for local paths).
    pub fetched: Vec<FetchOutcome>,
}

impl Resolved {
    /// The file of a role.
    pub fn file(&self, role: &str) -> Option<&Path> {
        self.files.get(role).map(PathBuf::as_path)
    }

    /// The transform checkpoint (always present).
    pub fn transform(&self) -> &Path {
        self.file("transform")
            .expect("resolution guarantees a transform")
    }

    /// What a loader that takes "a `final/`-like folder or a transform file" should open: the
    /// folder when it holds `transform.safetensors` under that name (zoo models, run folders),
    /// else the transform file itself (e.g. `weights_000500.safetensors`).
    pub fn model_path(&self) -> &Path {
        if self.transform() == self.dir.join("transform.safetensors") {
            &self.dir
        } else {
            self.transform()
        }
    }
}

/// [`resolve_and_fetch_with`] with [`ResolveOptions::from_env`].
pub fn resolve_and_fetch(name_or_path: &str) -> Result<Resolved> {
    resolve_and_fetch_with(name_or_path, &ResolveOptions::from_env())
}

/// A model name (`name`, `name@version`, `name@^1`) or a local checkpoint path → local files by
/// role, downloading and verifying what the cache lacks. See the module docs.
pub fn resolve_and_fetch_with(name_or_path: &str, opts: &ResolveOptions) -> Result<Resolved> {
    let path = Path::new(name_or_path);
    if path.exists() {
        return resolve_local(path, &opts.cache);
    }
    let r = match ModelRef::parse(name_or_path) {
        Ok(r) => r,
        Err(e) if looks_like_path(name_or_path) => {
            return Err(ZooError::NotFound(format!(
                "{name_or_path}: no such file or folder (and not a model name: {e})"
            )));
        }
        Err(e) => return Err(e),
    };
    let registry = match opts.load_registry() {
        Ok(reg) => Some(reg),
        Err(e) if opts.fetch.offline => {
            tracing::warn!(
                "registry {} unavailable offline ({e}); using the cache only",
                opts.registry
            );
            None
        }
        Err(e) => return Err(e),
    };
    let entry = match registry.as_ref().map(|reg| reg.resolve(&r)) {
        Some(Ok(entry)) => entry.clone(),
        other => {
            if let Some(m) = opts.cache.find_installed(&r)? {
                tracing::info!(
                    "{r}: not in registry {}; using {} from the cache",
                    opts.registry,
                    m.entry.id()
                );
                let fetcher = Fetcher::new(opts.fetch.clone())?;
                let (m, fetched) = pull(&m.entry, &opts.cache, &fetcher)?;
                return Ok(from_installed(m, fetched));
            }
            return Err(match other {
                Some(Err(e)) => e,
                _ => ZooError::NotFound(format!(
                    "{r} is not in the cache {} (offline)",
                    opts.cache.root().display()
                )),
            });
        }
    };
    let fetcher = Fetcher::new(opts.fetch.clone())?;
    let (m, fetched) = pull(&entry, &opts.cache, &fetcher)?;
    Ok(from_installed(m, fetched))
}

fn from_installed(m: InstalledModel, fetched: Vec<FetchOutcome>) -> Resolved {
    Resolved {
        id: m.entry.id(),
        dir: m.dir.clone(),
        files: m.files.clone(),
        entry: Some(m.entry),
        fetched,
    }
}

/// Fetches every file of `entry` into the cache (verifying cached ones) and installs the model.
pub fn pull(
    entry: &ModelEntry,
    cache: &Cache,
    fetcher: &Fetcher,
) -> Result<(InstalledModel, Vec<FetchOutcome>)> {
    let mut outcomes = Vec::with_capacity(entry.files.len());
    for f in &entry.files {
        outcomes.push(fetcher.fetch(cache, f, &format!("{} {}", entry.id(), f.role))?);
    }
    Ok((cache.install(entry)?, outcomes))
}

fn looks_like_path(s: &str) -> bool {
    s.contains('/')
        || s.contains('\\')
        || s.ends_with(".safetensors")
        || s.ends_with(".zip")
        || s.starts_with('.')
}

/// The role a checkpoint file plays, from its name: the file stem without a trailing step
/// number or `final`/`best` marker (`transform.safetensors`, `transform_000500.safetensors`,
/// `transform-final.safetensors` → `transform`; `global_enhance.safetensors` →
/// `global_enhance`), lowercased.
pub fn role_of_file(path: &Path) -> Option<String> {
    const SEP: [char; 3] = ['-', '_', '.'];
    let mut s = path.file_stem()?.to_string_lossy().to_ascii_lowercase();
    loop {
        let before = s.len();
        for marker in ["final", "best", "last", "latest", "step"] {
            if let Some(rest) = s.strip_suffix(marker)
                && rest.ends_with(SEP)
            {
                s = rest.trim_end_matches(SEP).to_string();
            }
        }
        let t = s.trim_end_matches(|c: char| c.is_ascii_digit());
        if t.len() < s.len() && (t.ends_with(SEP) || t.ends_with("step")) {
            s = t.trim_end_matches(SEP).to_string();
        }
        if s.len() == before {
            break;
        }
    }
    (!s.is_empty()).then_some(s)
}

/// The trailing number of a file stem (training step), if any.
fn step_of(path: &Path) -> Option<u64> {
    let stem = path.file_stem()?.to_string_lossy().into_owned();
    let digits: String = stem
        .chars()
        .rev()
        .take_while(char::is_ascii_digit)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    digits.parse().ok()
}

/// Groups `*.safetensors` of a folder by role; of several files for one role the plain
/// `<role>.safetensors` wins, then a `final`/`best`/`last` one, then the highest step number.
pub fn checkpoints_by_role(dir: &Path) -> Result<BTreeMap<String, PathBuf>> {
    let rd = std::fs::read_dir(dir).map_err(|e| ZooError::io(dir, e))?;
    let mut groups: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    for e in rd.flatten() {
        let p = e.path();
        if p.extension().is_some_and(|x| x == "safetensors")
            && p.is_file()
            && let Some(role) = role_of_file(&p)
        {
            groups.entry(role).or_default().push(p);
        }
    }
    Ok(groups
        .into_iter()
        .map(|(role, mut files)| {
            files.sort_by_key(|p| {
                let stem = p
                    .file_stem()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .to_ascii_lowercase();
                let exact = stem == role;
                let marked = ["final", "best", "last", "latest"]
                    .iter()
                    .any(|m| stem.ends_with(m));
                (exact, marked, step_of(p).unwrap_or(0), stem)
            });
            let pick = files.pop().expect("non-empty group");
            if !files.is_empty() {
                tracing::debug!(
                    "{role}: using {} of {} candidates",
                    pick.display(),
                    files.len() + 1
                );
            }
            (role, pick)
        })
        .collect())
}

/// Roles that a lone checkpoint file is never taken for a transform by.
const NOT_TRANSFORM: [&str; 8] = [
    "enhance",
    "global_enhance",
    "local_enhance",
    "discriminator",
    "optimizer",
    "vggface",
    "denoise",
    "reconstruction",
];

fn resolve_local(path: &Path, cache: &Cache) -> Result<Resolved> {
    let id = path.display().to_string();
    let no_transform = |dir: &Path, found: &BTreeMap<String, PathBuf>| {
        ZooError::NotFound(format!(
            "{}: no transform checkpoint (found roles: {})",
            dir.display(),
            if found.is_empty() {
                "none".to_string()
            } else {
                found.keys().cloned().collect::<Vec<_>>().join(", ")
            }
        ))
    };
    if path.is_file() {
        let ext = path
            .extension()
            .map(|e| e.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_default();
        if ext == "zip" {
            let (sha, _) = crate::hash::sha256_file(path)?;
            let dest = cache.root().join("local").join(&sha);
            if !dest.exists() {
                crate::archive::extract_zip(path, &dest)?;
            }
            let mut r = resolve_local(&dest, cache)?;
            r.id = id;
            return Ok(r);
        }
        if ext != "safetensors" {
            return Err(ZooError::NotFound(format!(
                "{id}: a local checkpoint must be a .safetensors file, a .zip or a folder"
            )));
        }
        // One file is the transform, unless its name says it is another network.
        if let Some(role) = role_of_file(path).filter(|r| NOT_TRANSFORM.contains(&r.as_str())) {
            return Err(ZooError::NotFound(format!(
                "{id}: its name says it is the {role} network; apply needs a transform checkpoint"
            )));
        }
        let files: BTreeMap<String, PathBuf> =
            [("transform".to_string(), path.to_path_buf())].into();
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        return Ok(Resolved {
            id,
            entry: None,
            dir,
            files,
            fetched: Vec::new(),
        });
    }
    if path.join(REF_FILE).is_file() {
        let m = Cache::new(
            path.parent()
                .and_then(Path::parent)
                .and_then(Path::parent)
                .unwrap_or(path),
        )
        .installed()?
        .into_iter()
        .find(|m| m.dir == path)
        .ok_or_else(|| ZooError::Other(format!("{}: unreadable {REF_FILE}", path.display())))?;
        let mut r = from_installed(m, Vec::new());
        r.id = id;
        return Ok(r);
    }
    // A run folder: `final/` (what `diat train` leaves), else `checkpoints/`.
    let fin = path.join("final");
    let ck = path.join("checkpoints");
    let dir = if fin.join("transform.safetensors").is_file() {
        fin
    } else if ck.is_dir() {
        ck
    } else {
        path.to_path_buf()
    };
    let mut files = checkpoints_by_role(&dir)?;
    if dir.join("pipeline.toml").is_file() {
        files.insert("pipeline".into(), dir.join("pipeline.toml"));
    }
    // Extracted publish zips and run folders keep their config etc. beside the checkpoints.
    if path.join("run").is_dir() {
        files.insert("run".into(), path.join("run"));
    }
    if !files.contains_key("transform") {
        return Err(no_transform(&dir, &files));
    }
    Ok(Resolved {
        id,
        entry: None,
        dir,
        files,
        fetched: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_from_names() {
        let r = |s: &str| role_of_file(Path::new(s));
        assert_eq!(r("transform.safetensors").as_deref(), Some("transform"));
        assert_eq!(
            r("Transform_000500.safetensors").as_deref(),
            Some("transform")
        );
        assert_eq!(
            r("transform-step-1200.safetensors").as_deref(),
            Some("transform")
        );
        assert_eq!(
            r("transform_step1200.safetensors").as_deref(),
            Some("transform")
        );
        assert_eq!(
            r("transform-final.safetensors").as_deref(),
            Some("transform")
        );
        assert_eq!(
            r("global_enhance.safetensors").as_deref(),
            Some("global_enhance")
        );
        assert_eq!(
            r("discriminator.safetensors").as_deref(),
            Some("discriminator")
        );
        assert_eq!(r("vgg16.safetensors").as_deref(), Some("vgg16"));
    }

    #[test]
    fn picks_plain_then_latest_step() {
        let t = tempfile::tempdir().unwrap();
        for n in [
            "transform_000100.safetensors",
            "transform_000900.safetensors",
            "enhance_5.safetensors",
            "notes.txt",
        ] {
            std::fs::write(t.path().join(n), b"x").unwrap();
        }
        let m = checkpoints_by_role(t.path()).unwrap();
        assert_eq!(m.len(), 2);
        assert!(m["transform"].ends_with("transform_000900.safetensors"));
        std::fs::write(t.path().join("transform.safetensors"), b"x").unwrap();
        assert!(
            checkpoints_by_role(t.path()).unwrap()["transform"].ends_with("transform.safetensors")
        );
    }
}
