//! Errors of the networks crate.

use std::path::PathBuf;

/// Everything that can go wrong building, loading or saving networks.
#[derive(Debug, thiserror::Error)]
pub enum NetsError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a valid safetensors file: {source}")]
    Safetensors {
        path: PathBuf,
        #[source]
        source: safetensors::SafeTensorError,
    },
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
    #[error("{path}: checkpoint does not match the network:\n{details}")]
    Mismatch { path: PathBuf, details: String },
    #[error("{path}: checkpoint holds architecture {found:?}, expected {expected:?}")]
    Architecture {
        path: PathBuf,
        expected: String,
        found: String,
    },
    #[error("{path}: metadata {key:?}: {problem}")]
    Metadata {
        path: PathBuf,
        key: String,
        problem: String,
    },
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("{path}: {problem}")]
    Import { path: PathBuf, problem: String },
}

pub type Result<T, E = NetsError> = std::result::Result<T, E>;
