//! The errors of the zoo. Every variant names what it was about (a path, a url, a model) so the
//! message alone tells a person what to do.

use std::path::{Path, PathBuf};

/// Result with [`ZooError`].
pub type Result<T, E = ZooError> = std::result::Result<T, E>;

/// What can go wrong in the zoo.
#[derive(Debug, thiserror::Error)]
pub enum ZooError {
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The registry file does not follow the schema.
    #[error("registry {origin}: {message}")]
    Registry { origin: String, message: String },
    /// No model of that name, or no version of it matching the request.
    #[error("{0}")]
    NotFound(String),
    /// A name or version that is not well formed.
    #[error("invalid model reference {reference:?}: {message}")]
    InvalidRef { reference: String, message: String },
    /// A url that may not be fetched (plain http to a remote host, unsupported scheme...).
    #[error("refusing {url}: {message}")]
    InsecureUrl { url: String, message: String },
    /// Offline mode and the file is not in the cache.
    #[error(
        "offline (DIAT_OFFLINE=1 or --offline): {what} (sha256 {sha256}) is not in the cache; it would be at {}",
        path.display()
    )]
    Offline {
        what: String,
        sha256: String,
        path: PathBuf,
    },
    /// The server answered with a status that is not worth retrying (or retries ran out on one).
    #[error("{url}: HTTP {status}{}", if body.is_empty() { String::new() } else { format!(" ({body})") })]
    Http {
        url: String,
        status: u16,
        body: String,
    },
    /// Timeouts, refused or reset connections, truncated bodies, after the last retry.
    #[error("{url}: {message}")]
    Transfer { url: String, message: String },
    /// The downloaded (or cached) bytes are not the published ones.
    #[error("{what}: {message}")]
    Integrity { what: String, message: String },
    /// A zip archive with an entry that could escape the folder it is extracted into.
    #[error("{}: unsafe archive entry {entry:?}: {message}", archive.display())]
    UnsafeArchive {
        archive: PathBuf,
        entry: String,
        message: String,
    },
    /// A zip archive that cannot be read or written.
    #[error("{}: {message}", archive.display())]
    Archive { archive: PathBuf, message: String },
    /// `publish` was given a run folder it cannot pack.
    #[error("{}: {message}", run.display())]
    Publish { run: PathBuf, message: String },
    /// Every source of a file failed; each attempt's error is listed.
    #[error("{what}: every source failed:\n{}", errors.iter().map(|e| format!("  - {e}")).collect::<Vec<_>>().join("\n"))]
    AllSourcesFailed { what: String, errors: Vec<ZooError> },
    /// Anything else with a clear message.
    #[error("{0}")]
    Other(String),
}

impl ZooError {
    /// An I/O error about `path`.
    pub fn io(path: impl AsRef<Path>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.as_ref().to_path_buf(),
            source,
        }
    }

    /// A registry schema error.
    pub fn registry(origin: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Registry {
            origin: origin.into(),
            message: message.into(),
        }
    }

    /// Whether the error is an integrity failure (wrong hash or size).
    pub fn is_integrity(&self) -> bool {
        match self {
            Self::Integrity { .. } => true,
            Self::AllSourcesFailed { errors, .. } => errors.iter().all(Self::is_integrity),
            _ => false,
        }
    }
}

/// Adds a path to I/O errors.
pub(crate) trait IoContext<T> {
    fn at(self, path: impl AsRef<Path>) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn at(self, path: impl AsRef<Path>) -> Result<T> {
        self.map_err(|e| ZooError::io(path, e))
    }
}
