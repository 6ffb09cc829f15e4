//! Zip archives that group files which belong together (a run's config, metrics and samples).
//!
//! Writing is reproducible: entries in the given order, fixed timestamps, so packing the same files
//! twice gives the same bytes and the same sha256. Reading refuses, before anything is written,
//! every entry that could land outside the destination: absolute paths (`/x`, `\x`, `C:x`), `..`
//! components, backslashes, NUL bytes, symbolic links and other special files, and duplicate
//! names. Extraction goes to a temporary sibling folder renamed into place at the end.

use crate::error::{IoContext, Result, ZooError};
use std::collections::BTreeSet;
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipArchive, ZipWriter};

/// Largest total of extracted bytes accepted (a guard against zip bombs).
pub const MAX_EXTRACTED_BYTES: u64 = 64 << 30;

/// Writes `entries` (`(name inside the zip, file on disk)`) to `out`, deflating all but
/// already-compressed images. Names use `/` and must pass [`check_entry_name`].
pub fn write_zip(out: &Path, entries: &[(String, PathBuf)]) -> Result<()> {
    let err = |m: String| ZooError::Archive {
        archive: out.to_path_buf(),
        message: m,
    };
    let mut seen = BTreeSet::new();
    for (name, _) in entries {
        check_entry_name(name).map_err(|m| err(format!("{name:?}: {m}")))?;
        if !seen.insert(name.as_str()) {
            return Err(err(format!("{name:?} twice")));
        }
    }
    diat_common::atomic::write_atomic_with(out, |w| {
        let mut z = ZipWriter::new(io::Cursor::new(Vec::new()));
        for (name, path) in entries {
            let stored = path
                .extension()
                .is_some_and(|e| e == "png" || e == "jpg" || e == "zip");
            let opts = SimpleFileOptions::default()
                .compression_method(if stored {
                    CompressionMethod::Stored
                } else {
                    CompressionMethod::Deflated
                })
                .last_modified_time(DateTime::default())
                .unix_permissions(0o644)
                .large_file(fs::metadata(path)?.len() >= u32::MAX as u64);
            z.start_file(name.as_str(), opts)
                .map_err(io::Error::other)?;
            io::copy(
                &mut fs::File::open(path)
                    .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?,
                &mut z,
            )?;
        }
        let bytes = z.finish().map_err(io::Error::other)?.into_inner();
        io::Write::write_all(w, &bytes)
    })
    .map_err(|e| err(e.to_string()))
}

/// Whether a zip entry name is a plain relative path: no absolute form, no `..`, no backslash,
/// no NUL, no empty or `.` components (a trailing `/` marks a folder).
pub fn check_entry_name(name: &str) -> std::result::Result<(), String> {
    if name.is_empty() {
        return Err("empty name".into());
    }
    if name.contains('\0') {
        return Err("NUL byte in name".into());
    }
    if name.contains('\\') {
        return Err("backslash in name".into());
    }
    if name.starts_with('/') {
        return Err("absolute path".into());
    }
    let b = name.as_bytes();
    if b.len() >= 2 && b[1] == b':' && b[0].is_ascii_alphabetic() {
        return Err("drive-letter path".into());
    }
    let body = name.strip_suffix('/').unwrap_or(name);
    for c in body.split('/') {
        match c {
            ".." => return Err("`..` component".into()),
            "" | "." => return Err("empty or `.` component".into()),
            _ => {}
        }
    }
    Ok(())
}

/// Extracts `archive` into `dest` (which must not exist yet), refusing unsafe entries (see the
/// module docs) before writing anything. Returns the extracted files, relative to `dest`.
pub fn extract_zip(archive: &Path, dest: &Path) -> Result<Vec<PathBuf>> {
    let arch_err = |m: String| ZooError::Archive {
        archive: archive.to_path_buf(),
        message: m,
    };
    let unsafe_entry = |entry: &str, m: String| ZooError::UnsafeArchive {
        archive: archive.to_path_buf(),
        entry: entry.to_string(),
        message: m,
    };
    // Duplicate names are looked for in the archive's own central directory: the zip library
    // indexes entries by name and would show only the last of two.
    let names = diat_common::zipdir::entry_names(archive).map_err(|e| arch_err(e.to_string()))?;
    if let Some(name) = diat_common::zipdir::first_duplicate(&names) {
        return Err(unsafe_entry(&name, "duplicate name".into()));
    }
    let f = fs::File::open(archive).at(archive)?;
    let mut z = ZipArchive::new(io::BufReader::new(f)).map_err(|e| arch_err(e.to_string()))?;
    if z.len() != names.len() {
        return Err(arch_err(format!(
            "{} entries in the central directory, {} readable",
            names.len(),
            z.len()
        )));
    }

    // Pass 1: check every entry; nothing is written unless all are safe.
    let mut plan = Vec::with_capacity(z.len());
    let mut total = 0u64;
    for i in 0..z.len() {
        let e = z.by_index_raw(i).map_err(|e| arch_err(e.to_string()))?;
        let name = String::from_utf8(e.name_raw().to_vec()).map_err(|_| {
            unsafe_entry(
                &String::from_utf8_lossy(e.name_raw()),
                "name is not UTF-8".into(),
            )
        })?;
        check_entry_name(&name).map_err(|m| unsafe_entry(&name, m))?;
        if e.is_symlink() {
            return Err(unsafe_entry(&name, "symbolic link".into()));
        }
        if let Some(mode) = e.unix_mode() {
            let kind = mode & 0o170_000;
            if kind != 0 && kind != 0o100_000 && kind != 0o040_000 {
                return Err(unsafe_entry(&name, format!("special file (mode {mode:o})")));
            }
        }
        if e.enclosed_name().is_none() {
            return Err(unsafe_entry(&name, "path escapes the destination".into()));
        }
        // (Duplicate names were refused above, from the central directory itself.)
        let key = name.trim_end_matches('/').to_string();
        total = total.saturating_add(e.size());
        if total > MAX_EXTRACTED_BYTES {
            return Err(arch_err(format!(
                "more than {MAX_EXTRACTED_BYTES} bytes once extracted"
            )));
        }
        plan.push((i, key, e.is_dir(), e.size()));
    }

    if dest.exists() {
        return Err(arch_err(format!(
            "destination {} already exists",
            dest.display()
        )));
    }
    let parent = dest
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(parent).at(parent)?;
    let staging = parent.join(format!(
        ".{}.partial-{}",
        dest.file_name().unwrap_or_default().to_string_lossy(),
        crate::util::unique_suffix()
    ));
    let result = (|| {
        fs::create_dir(&staging).at(&staging)?;
        let mut files = Vec::new();
        for (i, key, is_dir, size) in &plan {
            let rel: PathBuf = key.split('/').collect();
            let out = staging.join(&rel);
            if *is_dir {
                fs::create_dir_all(&out).at(&out)?;
                continue;
            }
            if let Some(p) = out.parent() {
                fs::create_dir_all(p).at(p)?;
            }
            let mut e = z.by_index(*i).map_err(|e| arch_err(e.to_string()))?;
            // create_new: never follow something already there.
            let mut w = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&out)
                .at(&out)?;
            let n = io::copy(&mut (&mut e).take(size + 1), &mut w)
                .map_err(|e| arch_err(format!("{key}: {e}")))?;
            if n != *size {
                return Err(arch_err(format!(
                    "{key}: {n} bytes, the directory says {size}"
                )));
            }
            files.push(rel);
        }
        fs::rename(&staging, dest).at(dest)?;
        Ok(files)
    })();
    if result.is_err() {
        let _ = fs::remove_dir_all(&staging);
    }
    result
}

/// Names of the entries of a zip (after the same safety checks as [`extract_zip`], nothing written).
pub fn list_zip(archive: &Path) -> Result<Vec<String>> {
    let f = fs::File::open(archive).at(archive)?;
    let z = ZipArchive::new(io::BufReader::new(f)).map_err(|e| ZooError::Archive {
        archive: archive.to_path_buf(),
        message: e.to_string(),
    })?;
    let names: Vec<String> = z.file_names().map(str::to_string).collect();
    let dup = diat_common::zipdir::duplicate_name(archive).map_err(|e| ZooError::Archive {
        archive: archive.to_path_buf(),
        message: e.to_string(),
    })?;
    if let Some(d) = dup {
        return Err(ZooError::UnsafeArchive {
            archive: archive.to_path_buf(),
            entry: d,
            message: "duplicate name".into(),
        });
    }
    for n in &names {
        check_entry_name(n).map_err(|m| ZooError::UnsafeArchive {
            archive: archive.to_path_buf(),
            entry: n.clone(),
            message: m,
        })?;
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn raw_zip(path: &Path, build: impl FnOnce(&mut ZipWriter<fs::File>)) {
        let mut z = ZipWriter::new(fs::File::create(path).unwrap());
        build(&mut z);
        z.finish().unwrap();
    }

    #[test]
    fn round_trip_is_reproducible() {
        let t = tempfile::tempdir().unwrap();
        fs::write(t.path().join("a.json"), b"{\"x\":1}").unwrap();
        fs::create_dir(t.path().join("s")).unwrap();
        fs::write(t.path().join("s/p.png"), b"\x89PNG fake").unwrap();
        let entries = vec![
            ("run.json".to_string(), t.path().join("a.json")),
            ("samples/p.png".to_string(), t.path().join("s/p.png")),
        ];
        write_zip(&t.path().join("one.zip"), &entries).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(1100));
        write_zip(&t.path().join("two.zip"), &entries).unwrap();
        assert_eq!(
            fs::read(t.path().join("one.zip")).unwrap(),
            fs::read(t.path().join("two.zip")).unwrap()
        );
        let files = extract_zip(&t.path().join("one.zip"), &t.path().join("out")).unwrap();
        assert_eq!(files.len(), 2);
        assert_eq!(
            fs::read(t.path().join("out/samples/p.png")).unwrap(),
            b"\x89PNG fake"
        );
        assert!(
            write_zip(
                &t.path().join("bad.zip"),
                &[("../x".into(), t.path().join("a.json"))]
            )
            .is_err()
        );
    }

    #[test]
    fn refuses_escaping_entries_and_writes_nothing() {
        let t = tempfile::tempdir().unwrap();
        let opts = SimpleFileOptions::default();
        type Build = Box<dyn FnOnce(&mut ZipWriter<fs::File>)>;
        let cases: Vec<(&str, Build)> = vec![
            (
                "abs",
                Box::new(move |z| {
                    z.start_file("ok.txt", opts).unwrap();
                    z.write_all(b"fine").unwrap();
                    z.start_file("/etc/evil", opts).unwrap();
                    z.write_all(b"x").unwrap();
                }),
            ),
            (
                "dotdot",
                Box::new(move |z| {
                    z.start_file("a/../../evil", opts).unwrap();
                    z.write_all(b"x").unwrap();
                }),
            ),
            (
                "backslash",
                Box::new(move |z| {
                    z.start_file("..\\evil", opts).unwrap();
                    z.write_all(b"x").unwrap();
                }),
            ),
            (
                "symlink",
                Box::new(move |z| {
                    z.add_symlink("link", "/etc/passwd", opts).unwrap();
                }),
            ),
            (
                "drive",
                Box::new(move |z| {
                    z.start_file("C:evil", opts).unwrap();
                    z.write_all(b"x").unwrap();
                }),
            ),
        ];
        for (label, build) in cases {
            let zip = t.path().join(format!("{label}.zip"));
            raw_zip(&zip, build);
            let dest = t.path().join(format!("{label}-out"));
            let e = extract_zip(&zip, &dest).unwrap_err();
            assert!(matches!(e, ZooError::UnsafeArchive { .. }), "{label}: {e}");
            assert!(!dest.exists(), "{label}: destination created");
        }
        let leftovers: Vec<_> = fs::read_dir(t.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| !n.ends_with(".zip"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[test]
    fn duplicate_names_are_seen_in_the_central_directory() {
        let t = tempfile::tempdir().unwrap();
        let zip = t.path().join("dup.zip");
        let opts = SimpleFileOptions::default().compression_method(CompressionMethod::Stored);
        raw_zip(&zip, |z| {
            z.start_file("transform.safetensors", opts).unwrap();
            z.write_all(b"the published weights").unwrap();
            z.start_file("transform.safetensorZ", opts).unwrap();
            z.write_all(b"other weights").unwrap();
        });
        // Rename the second entry to the first one's name, in the local and central headers.
        let bytes = fs::read(&zip).unwrap();
        let (from, to) = (b"transform.safetensorZ", b"transform.safetensors");
        let mut out = bytes.clone();
        for i in 0..bytes.len() - from.len() {
            if &bytes[i..i + from.len()] == from {
                out[i..i + from.len()].copy_from_slice(to);
            }
        }
        fs::write(&zip, &out).unwrap();
        // The zip library alone sees one entry.
        let lib = ZipArchive::new(fs::File::open(&zip).unwrap()).unwrap();
        assert_eq!(lib.len(), 1, "the library merges duplicates");
        let dest = t.path().join("out");
        let e = extract_zip(&zip, &dest).unwrap_err();
        assert!(
            matches!(&e, ZooError::UnsafeArchive { message, .. } if message == "duplicate name"),
            "{e}"
        );
        assert!(!dest.exists());
        assert!(list_zip(&zip).is_err());
    }
}
