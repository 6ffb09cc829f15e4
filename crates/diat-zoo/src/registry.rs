//! The registry: a TOML file (`zoo/registry.toml`, documented in `zoo/README.md`) listing every
//! published model as `name@version` with its files, hashes and provenance.
//!
//! ```toml
//! schema = 1
//!
//! [[model]]
//! name = "eyeglasses"
//! version = "1.0.0"
//! task = "eyeglasses-add"
//! variant = "diat-a"
//! license = "CC-BY-NC-4.0"
//! created = "2026-05-01T12:00:00Z"
//! data_manifest_sha256 = "…64 hex…"
//! architecture = { transform = { base = 64 } }
//! preprocessing = { crop = { left = 0, top = 20, width = 178, height = 178 }, size = 128, value_range = [-1.0, 1.0] }
//! metrics = { identity_cosine = 0.71 }
//!
//! [[model.files]]
//! role = "transform"
//! url = "https://example.org/eyeglasses-1.0.0/transform.safetensors"
//! sha256 = "…64 hex…"
//! size = 12345678
//! format = "safetensors"
//! ```
//!
//! A file's `url` may also be a relative path (`models/mouth_open/0.1.0/transform.safetensors`):
//! it is resolved against the registry's own location, so weights that ship beside
//! `zoo/registry.toml` in the repository resolve through the same verified path as a download
//! (size and sha256 checked, copied into the content-addressed cache), offline too. The registry
//! built into the binary resolves against the repository's `zoo/` folder it was built from
//! ([`embedded_files_base`]; `DIAT_ZOO_FILES` moves it).
//!
//! Every table is strict: an unknown field is an error, so a typo never silently drops a hash.
//! A bare name resolves to the newest version that is not yanked (stable releases before
//! pre-releases); `name@1.2.3` pins a version (a yanked one still resolves, with a warning);
//! `name@^1.2` or `name@1` take the newest non-yanked match of a semver requirement.

use crate::error::{Result, ZooError};
use reqwest::Url;
use semver::{Version, VersionReq};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

/// The schema version this build reads and writes.
pub const SCHEMA_VERSION: u32 = 1;

/// The registry shipped with this build (`zoo/registry.toml`).
pub const EMBEDDED_REGISTRY: &str = include_str!("../../../zoo/registry.toml");

/// A parsed, validated registry.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Registry {
    /// Schema version of the file; must be [`SCHEMA_VERSION`].
    pub schema: u32,
    /// The entries, in file order.
    #[serde(default, rename = "model", skip_serializing_if = "Vec::is_empty")]
    pub models: Vec<ModelEntry>,
}

/// One published model version.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ModelEntry {
    /// `[a-z0-9][a-z0-9._-]*`, at most 64 characters.
    pub name: String,
    /// Semantic version.
    pub version: Version,
    /// The attribute transfer task (e.g. `eyeglasses-add`, `male-to-female`).
    pub task: String,
    /// `diat` (perceptual identity loss only) or `diat-a` (adaptive perceptual identity loss and
    /// the enhancement network), or another lowercase token.
    pub variant: String,
    /// One line for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// SPDX licence expression of the weights.
    pub license: String,
    /// RFC 3339 date-time of publication, quoted (`"2026-05-01T12:00:00Z"`).
    pub created: String,
    /// sha256 of the training set's `manifest.json` (the data the weights were trained on).
    pub data_manifest_sha256: String,
    /// Withdrawn: bare names and requirements skip it; an exact pin still resolves, with a warning.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub yanked: bool,
    /// Why it was yanked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub yanked_reason: Option<String>,
    /// `name@version` of the entry that replaces this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub superseded_by: Option<String>,
    /// Network configuration the weights belong to (free-form; read by the networks' builders).
    #[serde(default)]
    pub architecture: toml::Table,
    /// How faces must be prepared before the transform sees them.
    pub preprocessing: Preprocessing,
    /// Evaluation numbers of the run (free names, numeric values).
    #[serde(default)]
    pub metrics: BTreeMap<String, f64>,
    /// The files, at least one with role `transform`.
    pub files: Vec<FileEntry>,
}

/// Input preparation.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Preprocessing {
    /// Box taken from the aligned source image (pixels).
    pub crop: Crop,
    /// Side of the square network input, pixels.
    pub size: u32,
    /// `[low, high]` the pixel values are mapped to (`[-1.0, 1.0]` for tanh outputs).
    pub value_range: [f64; 2],
}

/// A crop box in source pixels.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Crop {
    pub left: u32,
    pub top: u32,
    pub width: u32,
    pub height: u32,
}

/// One file of a model.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    /// `transform`, `enhance`, `discriminator`, `optimizer`, `run` (zip of config, metrics and
    /// samples), or another lowercase token; unique within a model.
    pub role: String,
    /// Primary location (https; http only to loopback; file:// for local mirrors; a relative
    /// path: beside the registry, see the module documentation).
    pub url: String,
    /// Alternative locations of the same bytes, tried in order after `url`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mirrors: Vec<String>,
    /// Full sha256 of the file, 64 lowercase hex digits.
    pub sha256: String,
    /// Exact size in bytes.
    pub size: u64,
    /// `safetensors`, `zip` (extracted safely after download), `json`, `toml`, `png`, ...
    pub format: String,
}

impl FileEntry {
    /// The file name the file gets in a model's folder of the cache: `<role>.<format>`.
    pub fn local_name(&self) -> String {
        format!("{}.{}", self.role, self.format)
    }

    /// `url` then the mirrors.
    pub fn sources(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.url.as_str()).chain(self.mirrors.iter().map(String::as_str))
    }
}

impl ModelEntry {
    /// `name@version`.
    pub fn id(&self) -> String {
        format!("{}@{}", self.name, self.version)
    }

    /// The file with this role.
    pub fn file(&self, role: &str) -> Option<&FileEntry> {
        self.files.iter().find(|f| f.role == role)
    }

    /// Total size of the files in bytes.
    pub fn total_size(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }

    /// Checks every rule of the schema that serde does not.
    pub fn validate(&self) -> std::result::Result<(), String> {
        check_name(&self.name)?;
        for (what, v) in [("task", &self.task), ("variant", &self.variant)] {
            check_token(what, v)?;
        }
        if self.license.trim().is_empty() {
            return Err("license is empty".into());
        }
        check_datetime(&self.created)?;
        check_sha256("data_manifest_sha256", &self.data_manifest_sha256)?;
        if self.yanked_reason.is_some() && !self.yanked {
            return Err("yanked_reason without yanked = true".into());
        }
        if let Some(s) = &self.superseded_by {
            let r = ModelRef::parse(s).map_err(|e| format!("superseded_by: {e}"))?;
            if r.name == self.name && r.version.as_ref().is_some_and(|v| v.matches(&self.version)) {
                return Err("superseded_by names the entry itself".into());
            }
        }
        let p = &self.preprocessing;
        if p.size == 0 || p.crop.width == 0 || p.crop.height == 0 {
            return Err("preprocessing: size and crop width/height must be positive".into());
        }
        let [lo, hi] = p.value_range;
        if !(lo.is_finite() && hi.is_finite() && lo < hi) {
            return Err(format!(
                "preprocessing.value_range [{lo}, {hi}] must be finite with low < high"
            ));
        }
        for (k, v) in &self.metrics {
            if !v.is_finite() {
                return Err(format!("metrics.{k} is not a finite number"));
            }
        }
        if self.files.is_empty() {
            return Err("no files".into());
        }
        let mut roles = BTreeSet::new();
        for f in &self.files {
            check_token("role", &f.role).map_err(|e| format!("files: {e}"))?;
            if !roles.insert(f.role.as_str()) {
                return Err(format!("files: role {:?} appears twice", f.role));
            }
            check_token("format", &f.format).map_err(|e| format!("files[{}]: {e}", f.role))?;
            check_sha256("sha256", &f.sha256).map_err(|e| format!("files[{}]: {e}", f.role))?;
            if f.size == 0 {
                return Err(format!("files[{}]: size is 0", f.role));
            }
            for u in f.sources() {
                check_url(u).map_err(|e| format!("files[{}]: {e}", f.role))?;
            }
        }
        if !roles.contains("transform") {
            return Err("files: no file with role \"transform\"".into());
        }
        Ok(())
    }
}

impl Registry {
    /// An empty registry of the current schema.
    pub fn empty() -> Self {
        Self {
            schema: SCHEMA_VERSION,
            models: Vec::new(),
        }
    }

    /// Parses and validates TOML; `origin` (a path or url) only labels errors.
    pub fn from_toml_str(text: &str, origin: &str) -> Result<Self> {
        // The schema number first, so a newer file gets "upgrade diat" rather than field errors.
        let probe: toml::Table =
            toml::from_str(text).map_err(|e| ZooError::registry(origin, e.to_string()))?;
        match probe.get("schema") {
            None => {
                return Err(ZooError::registry(
                    origin,
                    format!("missing `schema = {SCHEMA_VERSION}`"),
                ));
            }
            Some(toml::Value::Integer(n)) if *n == i64::from(SCHEMA_VERSION) => {}
            Some(toml::Value::Integer(n)) if *n > i64::from(SCHEMA_VERSION) => {
                return Err(ZooError::registry(
                    origin,
                    format!(
                        "schema {n} is newer than this diat understands ({SCHEMA_VERSION}); upgrade diat"
                    ),
                ));
            }
            Some(v) => {
                return Err(ZooError::registry(
                    origin,
                    format!("unsupported schema {v}"),
                ));
            }
        }
        let reg: Registry =
            toml::from_str(text).map_err(|e| ZooError::registry(origin, e.to_string()))?;
        reg.validate().map_err(|m| ZooError::registry(origin, m))?;
        Ok(reg)
    }

    /// Reads and validates a registry file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| ZooError::io(path, e))?;
        Self::from_toml_str(&text, &path.display().to_string())
    }

    /// Reads a registry file and resolves its relative urls against the file's folder.
    pub fn load_resolved(path: &Path) -> Result<Self> {
        let abs = std::path::absolute(path).map_err(|e| ZooError::io(path, e))?;
        let dir = abs.parent().unwrap_or(Path::new("/"));
        Self::load(path)?.resolved_in(dir, &path.display().to_string())
    }

    /// The registry shipped with this build, as written (relative urls left relative).
    pub fn embedded() -> Result<Self> {
        Self::from_toml_str(EMBEDDED_REGISTRY, "embedded zoo/registry.toml")
    }

    /// The registry shipped with this build, its relative urls resolved against
    /// [`embedded_files_base`].
    pub fn embedded_resolved() -> Result<Self> {
        Self::embedded()?.resolved_in(
            &embedded_files_base(),
            "embedded zoo/registry.toml (its files: DIAT_ZOO_FILES)",
        )
    }

    /// The registry with its relative urls resolved against the folder `dir` (absolute);
    /// `origin` names the registry in the error.
    fn resolved_in(mut self, dir: &Path, origin: &str) -> Result<Self> {
        let base = Url::from_directory_path(dir).map_err(|()| {
            ZooError::registry(
                origin,
                format!(
                    "its files' folder {} is not an absolute path",
                    dir.display()
                ),
            )
        })?;
        self.resolve_relative_urls(&base);
        Ok(self)
    }

    /// Makes every relative `url` and mirror absolute against `base` (a folder url ending in
    /// `/`, or a registry's own url).
    pub fn resolve_relative_urls(&mut self, base: &Url) {
        for f in self.models.iter_mut().flat_map(|m| m.files.iter_mut()) {
            for u in std::iter::once(&mut f.url).chain(f.mirrors.iter_mut()) {
                if is_relative_url(u)
                    && let Ok(abs) = base.join(u)
                {
                    *u = abs.to_string();
                }
            }
        }
    }

    /// Checks every entry and that `name@version` is unique.
    pub fn validate(&self) -> std::result::Result<(), String> {
        if self.schema != SCHEMA_VERSION {
            return Err(format!("unsupported schema {}", self.schema));
        }
        let mut seen = BTreeSet::new();
        for m in &self.models {
            m.validate().map_err(|e| format!("{}: {e}", m.id()))?;
            if !seen.insert((m.name.clone(), m.version.clone())) {
                return Err(format!("{} appears twice", m.id()));
            }
        }
        Ok(())
    }

    /// The registry as TOML.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("a registry always serializes")
    }

    /// All versions of `name`, newest first.
    pub fn versions(&self, name: &str) -> Vec<&ModelEntry> {
        let mut v: Vec<_> = self.models.iter().filter(|m| m.name == name).collect();
        v.sort_by(|a, b| b.version.cmp(&a.version));
        v
    }

    /// Model names, sorted, each once.
    pub fn names(&self) -> Vec<&str> {
        let set: BTreeSet<&str> = self.models.iter().map(|m| m.name.as_str()).collect();
        set.into_iter().collect()
    }

    /// Resolves a reference as described in the module docs.
    pub fn resolve(&self, r: &ModelRef) -> Result<&ModelEntry> {
        let all = self.versions(&r.name);
        if all.is_empty() {
            let names = self.names();
            let known = if names.is_empty() {
                "the registry has no models".to_string()
            } else {
                format!("known: {}", names.join(", "))
            };
            return Err(ZooError::NotFound(format!(
                "no model named {:?} in the registry ({known})",
                r.name
            )));
        }
        let listed = || {
            all.iter()
                .map(|m| describe_version(m))
                .collect::<Vec<_>>()
                .join(", ")
        };
        match &r.version {
            Some(VersionSpec::Exact(v)) => {
                let m = all.iter().find(|m| &m.version == v).ok_or_else(|| {
                    ZooError::NotFound(format!(
                        "{}@{v} is not in the registry (versions: {})",
                        r.name,
                        listed()
                    ))
                })?;
                if m.yanked {
                    tracing::warn!(
                        "{} is yanked{}{}",
                        m.id(),
                        m.yanked_reason
                            .as_deref()
                            .map(|s| format!(" ({s})"))
                            .unwrap_or_default(),
                        m.superseded_by
                            .as_deref()
                            .map(|s| format!("; superseded by {s}"))
                            .unwrap_or_default()
                    );
                }
                Ok(m)
            }
            spec => {
                let matching: Vec<&&ModelEntry> = all
                    .iter()
                    .filter(|m| spec.as_ref().is_none_or(|s| s.matches(&m.version)))
                    .collect();
                let live: Vec<&&ModelEntry> =
                    matching.iter().copied().filter(|m| !m.yanked).collect();
                let pick = live
                    .iter()
                    .find(|m| m.version.pre.is_empty())
                    .or_else(|| live.first())
                    .map(|m| **m);
                pick.ok_or_else(|| {
                    let what = match spec {
                        Some(s) => format!("{}@{s}", r.name),
                        None => r.name.clone(),
                    };
                    if matching.is_empty() {
                        ZooError::NotFound(format!("no version of {what} matches (versions: {})", listed()))
                    } else {
                        ZooError::NotFound(format!(
                            "every version of {what} is yanked (versions: {}); pin one with name@version to use it anyway",
                            listed()
                        ))
                    }
                })
            }
        }
    }
}

fn describe_version(m: &ModelEntry) -> String {
    match (&m.yanked, &m.superseded_by) {
        (true, Some(s)) => format!("{} (yanked, superseded by {s})", m.version),
        (true, None) => format!("{} (yanked)", m.version),
        _ => m.version.to_string(),
    }
}

/// A version request after `@`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersionSpec {
    /// `1.2.3`: exactly this version.
    Exact(Version),
    /// `^1.2`, `1`, `>=1.0, <2`: the newest non-yanked match.
    Req(VersionReq),
}

impl VersionSpec {
    /// Whether `v` satisfies the request.
    pub fn matches(&self, v: &Version) -> bool {
        match self {
            Self::Exact(e) => e == v,
            Self::Req(r) => r.matches(v),
        }
    }
}

impl fmt::Display for VersionSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exact(v) => write!(f, "{v}"),
            Self::Req(r) => write!(f, "{r}"),
        }
    }
}

/// `name` or `name@version-or-requirement`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelRef {
    pub name: String,
    pub version: Option<VersionSpec>,
}

impl ModelRef {
    /// Parses `name[@version]`.
    pub fn parse(s: &str) -> Result<Self> {
        let bad = |m: String| ZooError::InvalidRef {
            reference: s.to_string(),
            message: m,
        };
        let (name, version) = match s.split_once('@') {
            Some((n, v)) => (n, Some(v)),
            None => (s, None),
        };
        check_name(name).map_err(bad)?;
        let version = match version {
            None => None,
            Some(v) => Some(match Version::parse(v) {
                Ok(v) => VersionSpec::Exact(v),
                Err(_) => VersionSpec::Req(VersionReq::parse(v).map_err(|e| {
                    bad(format!("{v:?} is neither a version nor a requirement: {e}"))
                })?),
            }),
        };
        Ok(Self {
            name: name.to_string(),
            version,
        })
    }
}

impl fmt::Display for ModelRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.version {
            Some(v) => write!(f, "{}@{v}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// Model names: `[a-z0-9][a-z0-9._-]*`, at most 64 characters (they become folder names).
pub fn check_name(name: &str) -> std::result::Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
        && !name.contains("..");
    if ok {
        Ok(())
    } else {
        Err(format!(
            "name {name:?} must match [a-z0-9][a-z0-9._-]* (at most 64 characters)"
        ))
    }
}

fn check_token(what: &str, v: &str) -> std::result::Result<(), String> {
    let ok = !v.is_empty()
        && v.len() <= 64
        && v.bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && v.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(format!("{what} {v:?} must match [a-z0-9][a-z0-9_-]*"))
    }
}

/// 64 lowercase hex digits.
pub fn check_sha256(what: &str, v: &str) -> std::result::Result<(), String> {
    if v.len() == 64
        && v.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        Ok(())
    } else {
        Err(format!("{what} {v:?} is not 64 lowercase hex digits"))
    }
}

fn check_datetime(v: &str) -> std::result::Result<(), String> {
    let b = v.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|s| s.iter().all(u8::is_ascii_digit));
    let ok = b.len() >= 20
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19)
        && (v.ends_with('Z') || v[19..].contains(['+', '-']));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "created {v:?} is not an RFC 3339 date-time like \"2026-05-01T12:00:00Z\""
        ))
    }
}

/// Where the files named by relative urls of the built-in registry live: `$DIAT_ZOO_FILES`, else
/// the `zoo/` folder of the repository this binary was built from.
pub fn embedded_files_base() -> PathBuf {
    match std::env::var_os("DIAT_ZOO_FILES") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => Path::new(env!("CARGO_MANIFEST_DIR"))
            .ancestors()
            .nth(2)
            .unwrap_or(Path::new("/"))
            .join("zoo"),
    }
}

/// A relative path such as `models/x/1.0.0/transform.safetensors`: no scheme, not absolute,
/// segments of `[A-Za-z0-9._-]` that are not `.` or `..`.
pub fn is_relative_url(u: &str) -> bool {
    !u.is_empty()
        && u.split('/').all(|seg| {
            !seg.is_empty()
                && seg != "."
                && seg != ".."
                && seg
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        })
}

fn check_url(u: &str) -> std::result::Result<(), String> {
    if is_relative_url(u) {
        return Ok(());
    }
    let url = reqwest::Url::parse(u).map_err(|e| format!("url {u:?}: {e}"))?;
    match url.scheme() {
        "https" | "http" | "file" => Ok(()),
        s => Err(format!(
            "url {u:?}: scheme {s:?} is not https, http or file"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn entry(version: &str, yanked: bool) -> String {
        format!(
            r#"
[[model]]
name = "glasses"
version = "{version}"
task = "eyeglasses-add"
variant = "diat-a"
license = "MIT"
created = "2026-05-01T12:00:00Z"
data_manifest_sha256 = "{HEX}"
yanked = {yanked}
preprocessing = {{ crop = {{ left = 0, top = 20, width = 178, height = 178 }}, size = 128, value_range = [-1.0, 1.0] }}
[[model.files]]
role = "transform"
url = "https://example.org/t.safetensors"
sha256 = "{HEX}"
size = 10
format = "safetensors"
"#
        )
    }

    fn reg(entries: &[(&str, bool)]) -> Registry {
        let mut s = String::from("schema = 1\n");
        for (v, y) in entries {
            s.push_str(&entry(v, *y));
        }
        Registry::from_toml_str(&s, "test").unwrap()
    }

    fn pick(r: &Registry, s: &str) -> String {
        r.resolve(&ModelRef::parse(s).unwrap())
            .map(|m| m.version.to_string())
            .unwrap_or_else(|e| format!("ERR {e}"))
    }

    #[test]
    fn resolution_rules() {
        let r = reg(&[
            ("1.0.0", false),
            ("1.2.0", false),
            ("1.3.0", true),
            ("2.0.0-rc.1", false),
        ]);
        assert_eq!(pick(&r, "glasses"), "1.2.0");
        assert_eq!(
            pick(&r, "glasses@1.3.0"),
            "1.3.0",
            "exact pins resolve even when yanked"
        );
        assert_eq!(pick(&r, "glasses@^1"), "1.2.0");
        assert_eq!(
            pick(&r, "glasses@1.0"),
            "1.2.0",
            "Cargo semantics: 1.0 means ^1.0"
        );
        assert_eq!(pick(&r, "glasses@~1.0"), "1.0.0");
        assert!(pick(&r, "glasses@9.0.0").contains("not in the registry"));
        assert!(pick(&r, "other").contains("no model named"));
        let r = reg(&[("2.0.0-rc.1", false), ("1.0.0", true)]);
        assert_eq!(
            pick(&r, "glasses"),
            "2.0.0-rc.1",
            "pre-release when nothing stable is live"
        );
        let r = reg(&[("1.0.0", true)]);
        assert!(pick(&r, "glasses").contains("every version"));
    }

    #[test]
    fn unknown_fields_and_bad_values_are_errors() {
        let good = format!("schema = 1\n{}", entry("1.0.0", false));
        Registry::from_toml_str(&good, "t").unwrap();
        for (from, to) in [
            (
                "format = \"safetensors\"",
                "format = \"safetensors\"\nchecksum = \"x\"",
            ),
            ("task =", "tsak = \"x\"\ntask ="),
            ("size = 128,", "size = 128, mean = 0.5,"),
            ("schema = 1", "schema = 2"),
            ("schema = 1", ""),
            ("version = \"1.0.0\"", "version = \"1.0\""),
            ("name = \"glasses\"", "name = \"Glasses/..\""),
            ("role = \"transform\"", "role = \"enhance\""),
            ("https://example.org", "ftp://example.org"),
            ("size = 10", "size = 0"),
            (
                "created = \"2026-05-01T12:00:00Z\"",
                "created = \"yesterday\"",
            ),
        ] {
            let bad = good.replacen(from, to, 1);
            assert_ne!(bad, good);
            let e = Registry::from_toml_str(&bad, "t").unwrap_err().to_string();
            assert!(e.starts_with("registry t:"), "{e}");
        }
        let twice = format!("{good}{}", entry("1.0.0", false));
        assert!(
            Registry::from_toml_str(&twice, "t")
                .unwrap_err()
                .to_string()
                .contains("twice")
        );
        let newer = good.replace("schema = 1", "schema = 7");
        assert!(
            Registry::from_toml_str(&newer, "t")
                .unwrap_err()
                .to_string()
                .contains("upgrade diat")
        );
    }

    #[test]
    fn readme_example_parses() {
        let readme = include_str!("../../../zoo/README.md");
        let start = readme
            .find("### A full entry")
            .expect("README has the example");
        let block = &readme[start..];
        let body = &block[block.find("```toml\n").expect("toml block") + 8..];
        let body = &body[..body.find("```").expect("closed block")];
        let r = Registry::from_toml_str(body, "zoo/README.md").unwrap();
        assert_eq!(r.models.len(), 1);
        assert_eq!(r.models[0].files.len(), 3);
    }

    #[test]
    fn round_trips_and_embedded_parses() {
        let r = reg(&[("1.0.0", false), ("1.1.0", true)]);
        let again = Registry::from_toml_str(&r.to_toml(), "again").unwrap();
        assert_eq!(r, again);
        Registry::embedded().unwrap();
    }
}
