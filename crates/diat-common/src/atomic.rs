//! Outputs that are never half-written: write under a temporary sibling name, rename at the end.
//!
//! A crash or an interrupt leaves at most a `*.partial-<pid>` entry behind, never a file or a folder
//! under its final name that looks complete.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

fn partial_name(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.partial-{}", std::process::id()))
}

/// Flushes the folder holding `path` (so the rename itself survives a power cut). Folders that
/// cannot be opened or synced (some file systems refuse) are left as they are.
pub fn sync_parent(path: &Path) {
    if let Some(parent) = path.parent() {
        let dir = if parent.as_os_str().is_empty() {
            Path::new(".")
        } else {
            parent
        };
        if let Ok(d) = fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
}

/// Writes `bytes` to `path` atomically (temp file in the same folder, fsync of the file, rename,
/// fsync of the folder).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_atomic_with(path, |w| w.write_all(bytes))
}

/// Like [`write_atomic`], with a closure that streams into the file.
pub fn write_atomic_with<F>(path: &Path, fill: F) -> io::Result<()>
where
    F: FnOnce(&mut io::BufWriter<fs::File>) -> io::Result<()>,
{
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent)?;
    }
    let tmp = partial_name(path);
    let result = (|| {
        let mut w = io::BufWriter::new(fs::File::create(&tmp)?);
        fill(&mut w)?;
        let f = w.into_inner().map_err(|e| e.into_error())?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        sync_parent(path);
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// A folder built under a temporary name and renamed into place by [`StagedDir::commit`].
/// Dropped without commit, the temporary folder is removed.
#[derive(Debug)]
pub struct StagedDir {
    staging: PathBuf,
    target: PathBuf,
    committed: bool,
}

impl StagedDir {
    /// Starts staging `target`. With `overwrite` false an existing `target` is an error.
    pub fn new(target: &Path, overwrite: bool) -> io::Result<Self> {
        if target.exists() && !overwrite {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!(
                    "{} already exists (use --overwrite to replace it)",
                    target.display()
                ),
            ));
        }
        if let Some(parent) = target.parent().filter(|p| !p.as_os_str().is_empty()) {
            fs::create_dir_all(parent)?;
        }
        let staging = partial_name(target);
        if staging.exists() {
            fs::remove_dir_all(&staging)?;
        }
        fs::create_dir_all(&staging)?;
        Ok(Self {
            staging,
            target: target.to_path_buf(),
            committed: false,
        })
    }

    /// The folder to write into.
    pub fn path(&self) -> &Path {
        &self.staging
    }

    /// The final location.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Moves the staged folder to its final name, replacing an older one.
    pub fn commit(mut self) -> io::Result<PathBuf> {
        if self.target.exists() {
            let old = self.target.with_file_name(format!(
                ".{}.old-{}",
                self.target
                    .file_name()
                    .unwrap_or_default()
                    .to_string_lossy(),
                std::process::id()
            ));
            fs::rename(&self.target, &old)?;
            fs::rename(&self.staging, &self.target)?;
            fs::remove_dir_all(&old)?;
        } else {
            fs::rename(&self.staging, &self.target)?;
        }
        sync_parent(&self.target);
        self.committed = true;
        Ok(self.target.clone())
    }
}

impl Drop for StagedDir {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_dir_all(&self.staging);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_leaves_no_partial_on_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.bin");
        let err = write_atomic_with(&p, |w| {
            w.write_all(b"half")?;
            Err(io::Error::other("interrupted"))
        });
        assert!(err.is_err());
        assert!(!p.exists());
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
        write_atomic(&p, b"whole").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"whole");
    }

    #[test]
    fn staged_dir_only_appears_on_commit() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("set");
        {
            let s = StagedDir::new(&target, false).unwrap();
            fs::write(s.path().join("a"), b"1").unwrap();
            // dropped without commit
        }
        assert!(!target.exists());
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
        let s = StagedDir::new(&target, false).unwrap();
        fs::write(s.path().join("a"), b"2").unwrap();
        s.commit().unwrap();
        assert_eq!(fs::read(target.join("a")).unwrap(), b"2");
        assert!(StagedDir::new(&target, false).is_err());
        let s = StagedDir::new(&target, true).unwrap();
        fs::write(s.path().join("b"), b"3").unwrap();
        s.commit().unwrap();
        assert!(!target.join("a").exists());
        assert!(target.join("b").exists());
    }
}
