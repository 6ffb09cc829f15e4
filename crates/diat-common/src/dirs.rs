//! The directories diat reads and writes, resolved from the environment.
//!
//! `DIAT_HOME` (default `$XDG_CACHE_HOME/diat`, else `~/.cache/diat`) holds `data/` (prepared
//! datasets), `zoo/v1/` (the content-addressed model cache; the folder name carries the cache
//! layout version), `cache/` and `runs/` (training runs). Each can be moved on its own with
//! `DIAT_DATA_DIR`, `DIAT_ZOO_DIR`, `DIAT_CACHE_DIR` and `DIAT_RUNS_DIR`.

use serde::Serialize;
use std::path::{Path, PathBuf};

/// Resolved diat directories.
#[derive(Debug, Clone, Serialize)]
pub struct Dirs {
    pub home: PathBuf,
    pub data: PathBuf,
    pub zoo: PathBuf,
    pub cache: PathBuf,
    pub runs: PathBuf,
}

impl Dirs {
    /// Resolves from the process environment.
    pub fn from_env() -> Self {
        Self::resolve(|k| {
            std::env::var_os(k)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        })
    }

    /// Resolves with an explicit lookup (tests).
    pub fn resolve(get: impl Fn(&str) -> Option<PathBuf>) -> Self {
        let home = get("DIAT_HOME").unwrap_or_else(|| {
            get("XDG_CACHE_HOME")
                .or_else(|| get("HOME").map(|h| h.join(".cache")))
                .unwrap_or_else(std::env::temp_dir)
                .join("diat")
        });
        let sub = |var: &str, rel: &str| get(var).unwrap_or_else(|| home.join(rel));
        Self {
            data: sub("DIAT_DATA_DIR", "data"),
            zoo: sub("DIAT_ZOO_DIR", "zoo/v1"),
            cache: sub("DIAT_CACHE_DIR", "cache"),
            runs: sub("DIAT_RUNS_DIR", "runs"),
            home,
        }
    }

    /// `(name, path)` for every directory.
    pub fn entries(&self) -> [(&'static str, &Path); 5] {
        [
            ("home", &self.home),
            ("data", &self.data),
            ("zoo", &self.zoo),
            ("cache", &self.cache),
            ("runs", &self.runs),
        ]
    }
}

/// Whether `dir` is writable: it (or its nearest existing ancestor) accepts a new file.
/// Creates nothing that stays behind.
pub fn writable(dir: &Path) -> bool {
    let mut probe_dir = dir;
    while !probe_dir.exists() {
        match probe_dir.parent() {
            Some(p) if !p.as_os_str().is_empty() => probe_dir = p,
            _ => return false,
        }
    }
    let probe = probe_dir.join(format!(".diat-write-probe-{}", std::process::id()));
    match std::fs::File::create(&probe) {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            true
        }
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn home_and_overrides() {
        let env: HashMap<&str, PathBuf> = [("HOME", "/h".into()), ("DIAT_RUNS_DIR", "/r".into())]
            .into_iter()
            .collect();
        let d = Dirs::resolve(|k| env.get(k).cloned());
        assert_eq!(d.home, PathBuf::from("/h/.cache/diat"));
        assert_eq!(d.zoo, PathBuf::from("/h/.cache/diat/zoo/v1"));
        assert_eq!(d.runs, PathBuf::from("/r"));
        let env: HashMap<&str, PathBuf> = [("DIAT_HOME", "/x".into())].into_iter().collect();
        assert_eq!(
            Dirs::resolve(|k| env.get(k).cloned()).data,
            PathBuf::from("/x/data")
        );
    }

    #[test]
    fn writable_probe() {
        let t = tempfile::tempdir().unwrap();
        assert!(writable(&t.path().join("not/yet/there")));
        assert_eq!(std::fs::read_dir(t.path()).unwrap().count(), 0);
    }
}
