//! Completeness records: a folder whose files belong together (a training run's `final/`) carries
//! `complete.json`, written last, listing every file with its size and SHA-256. A loader that
//! finds the record checks it, and a run's `final/` without one is refused: a folder killed half-way
//! through, or with a file swapped, truncated or removed since, never passes as a model.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The record's file name.
pub const RECORD: &str = "complete.json";
const FORMAT: &str = "diat-complete-1";

#[derive(Debug, Serialize, Deserialize)]
struct Entry {
    bytes: u64,
    sha256: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Record {
    format: String,
    files: BTreeMap<String, Entry>,
}

/// A folder that is not (or no longer) what its record says.
#[derive(Debug, thiserror::Error)]
#[error("{dir}: incomplete: {problem}")]
pub struct Incomplete {
    pub dir: PathBuf,
    pub problem: String,
}

fn sha256_file(path: &Path) -> std::io::Result<(u64, String)> {
    let (hex, n) = crate::machine::sha256_reader(std::fs::File::open(path)?)?;
    Ok((n, hex))
}

/// Regular files of `dir` except the record and hidden (temporary) entries, by name.
fn listed_files(dir: &Path) -> std::io::Result<Vec<String>> {
    let mut names = Vec::new();
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        if name == RECORD || name.starts_with('.') || !e.file_type()?.is_file() {
            continue;
        }
        names.push(name);
    }
    names.sort();
    Ok(names)
}

/// Writes `dir/complete.json` (atomically) over every file now in `dir`: call it once the folder
/// holds everything.
pub fn seal(dir: &Path) -> std::io::Result<()> {
    let mut files = BTreeMap::new();
    for name in listed_files(dir)? {
        let (bytes, sha256) = sha256_file(&dir.join(&name))?;
        files.insert(name, Entry { bytes, sha256 });
    }
    let record = Record {
        format: FORMAT.into(),
        files,
    };
    let json = serde_json::to_vec_pretty(&record).map_err(std::io::Error::other)?;
    crate::write_atomic(&dir.join(RECORD), &json)
}

/// Checks `dir` against its record: every listed file present with its size and hash, no other
/// file beside them.
pub fn verify(dir: &Path) -> Result<(), Incomplete> {
    let bad = |problem: String| Incomplete {
        dir: dir.to_path_buf(),
        problem,
    };
    let path = dir.join(RECORD);
    let text = std::fs::read(&path).map_err(|e| bad(format!("{RECORD}: {e}")))?;
    let record: Record =
        serde_json::from_slice(&text).map_err(|e| bad(format!("{RECORD} is not a record: {e}")))?;
    if record.format != FORMAT {
        return Err(bad(format!(
            "{RECORD} has format {:?}, this diat reads {FORMAT:?}",
            record.format
        )));
    }
    let present = listed_files(dir).map_err(|e| bad(e.to_string()))?;
    if let Some(extra) = present.iter().find(|n| !record.files.contains_key(*n)) {
        return Err(bad(format!("{extra} is not listed in {RECORD}")));
    }
    for (name, want) in &record.files {
        if name.contains(['/', '\\']) || name.starts_with('.') {
            return Err(bad(format!("{RECORD} lists {name:?}, not a file name")));
        }
        let (bytes, sha256) = sha256_file(&dir.join(name))
            .map_err(|e| bad(format!("{name}, listed in {RECORD}: {e}")))?;
        if bytes != want.bytes || sha256 != want.sha256 {
            return Err(bad(format!(
                "{name} has {bytes} bytes (sha256 {}…), {RECORD} records {} bytes (sha256 {}…)",
                &sha256[..12],
                want.bytes,
                want.sha256.get(..12).unwrap_or(&want.sha256)
            )));
        }
    }
    Ok(())
}

/// Whether `dir` is a training run's `final/` (its parent holds the run's `resolved.toml`).
pub fn is_run_final(dir: &Path) -> bool {
    dir.file_name().is_some_and(|n| n == "final")
        && dir
            .parent()
            .is_some_and(|p| p.join("resolved.toml").is_file())
}

/// The check every loader of a model folder runs: a folder with a record must match it, a run's
/// `final/` must have one; other folders (a zoo entry, hand-made weights) pass.
pub fn check_folder(dir: &Path) -> Result<(), Incomplete> {
    if dir.join(RECORD).exists() {
        return verify(dir);
    }
    if is_run_final(dir) {
        return Err(Incomplete {
            dir: dir.to_path_buf(),
            problem: format!(
                "no {RECORD}: the run stopped before its final networks were all written \
                 (finish it with `diat train … --resume`), or an older diat wrote it"
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_folder_verifies_and_every_change_is_caught() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path().join("final");
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(tmp.path().join("resolved.toml"), "").unwrap();
        std::fs::write(d.join("transform.safetensors"), b"T weights").unwrap();
        std::fs::write(d.join("enhance.safetensors"), b"E weights").unwrap();
        // A run's final/ without a record: refused.
        let e = check_folder(&d).unwrap_err().to_string();
        assert!(
            e.contains("no complete.json") && e.contains("--resume"),
            "{e}"
        );
        seal(&d).unwrap();
        check_folder(&d).unwrap();
        // Removed, truncated, replaced, added.
        let e = |f: &dyn Fn()| {
            f();
            check_folder(&d).unwrap_err().to_string()
        };
        let msg = e(&|| std::fs::remove_file(d.join("enhance.safetensors")).unwrap());
        assert!(
            msg.contains("enhance.safetensors, listed in complete.json"),
            "{msg}"
        );
        std::fs::write(d.join("enhance.safetensors"), b"E weights").unwrap();
        check_folder(&d).unwrap();
        let msg = e(&|| std::fs::write(d.join("enhance.safetensors"), b"E").unwrap());
        assert!(msg.contains("has 1 bytes"), "{msg}");
        let msg = e(&|| std::fs::write(d.join("enhance.safetensors"), b"X weights").unwrap());
        assert!(msg.contains("sha256"), "{msg}");
        std::fs::write(d.join("enhance.safetensors"), b"E weights").unwrap();
        let msg = e(&|| std::fs::write(d.join("region.safetensors"), b"R").unwrap());
        assert!(msg.contains("region.safetensors is not listed"), "{msg}");
        std::fs::remove_file(d.join("region.safetensors")).unwrap();
        // Hidden temporaries are ignored; a torn record is an error.
        std::fs::write(d.join(".x.partial-1"), b"tmp").unwrap();
        check_folder(&d).unwrap();
        let msg = e(&|| std::fs::write(d.join(RECORD), b"{\"format\": \"diat-comp").unwrap());
        assert!(msg.contains("not a record"), "{msg}");
        // A folder that is not a run's final/ and has no record passes.
        let other = tmp.path().join("zoo-model");
        std::fs::create_dir_all(&other).unwrap();
        check_folder(&other).unwrap();
    }
}
