//! Errors of the ingestion crate. Every error names the file (and line, for annotations).

use std::path::PathBuf;

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("{path}:{line}: {msg}")]
    Parse {
        path: PathBuf,
        line: usize,
        msg: String,
    },

    #[error(
        "{path} is an HTML page, not CelebA data (a failed download saved in place of the file?): \
         download it again"
    )]
    Html { path: PathBuf },

    #[error("{path}: {msg}")]
    Invalid { path: PathBuf, msg: String },

    #[error(
        "checksum mismatch for {path}: md5 {actual}, expected {expected} (corrupt or modified file)"
    )]
    Checksum {
        path: PathBuf,
        expected: String,
        actual: String,
    },

    #[error("no CelebA dataset found under {root}: {msg}")]
    Layout { root: PathBuf, msg: String },

    #[error("inconsistent annotations: {0}")]
    Inconsistent(String),

    #[error("{0}")]
    Config(String),

    #[error(
        "too many rejected images: {rejected} of {total} ({pct:.2}%) exceeds the limit of {limit_pct:.2}%; see {report}"
    )]
    TooManyRejects {
        rejected: usize,
        total: usize,
        pct: f64,
        limit_pct: f64,
        report: PathBuf,
    },

    #[error("empty {what}: {why}")]
    Empty { what: String, why: String },

    #[error("polars: {0}")]
    Polars(#[from] polars::error::PolarsError),

    #[error("zip {path}: {source}")]
    Zip {
        path: PathBuf,
        source: zip::result::ZipError,
    },
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
    pub(crate) fn parse(path: impl Into<PathBuf>, line: usize, msg: impl Into<String>) -> Self {
        Error::Parse {
            path: path.into(),
            line,
            msg: msg.into(),
        }
    }
    pub(crate) fn invalid(path: impl Into<PathBuf>, msg: impl Into<String>) -> Self {
        Error::Invalid {
            path: path.into(),
            msg: msg.into(),
        }
    }
}

/// Whether `bytes` look like an HTML page (a typical failed download of a Google Drive file).
pub fn looks_like_html(bytes: &[u8]) -> bool {
    let head = &bytes[..bytes.len().min(512)];
    let text = String::from_utf8_lossy(head)
        .trim_start_matches('\u{feff}')
        .trim_start()
        .to_ascii_lowercase();
    text.starts_with("<!doctype html")
        || text.starts_with("<html")
        || text.starts_with("<head")
        || (text.starts_with('<') && text.contains("<html"))
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn html_detection() {
        assert!(looks_like_html(
            b"<!DOCTYPE html><html><head><title>Google Drive - Virus scan warning"
        ));
        assert!(looks_like_html(b"\n  <html lang=en>"));
        assert!(!looks_like_html(
            b"202599\r\n5_o_Clock_Shadow Arched_Eyebrows"
        ));
        assert!(!looks_like_html(b"PK\x03\x04"));
    }
}
