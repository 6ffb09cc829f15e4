//! Errors of the alignment crate.

use std::path::PathBuf;

/// Everything that can go wrong aligning, cropping, pasting back or reading landmarks.
#[derive(Debug, thiserror::Error)]
pub enum AlignError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: cannot decode image: {source}")]
    Decode {
        path: PathBuf,
        #[source]
        source: image::ImageError,
    },
    #[error("{path}: cannot write image: {source}")]
    Encode {
        path: PathBuf,
        #[source]
        source: image::ImageError,
    },
    #[error("{path}:{line}: {problem}")]
    Landmarks {
        path: PathBuf,
        line: usize,
        problem: String,
    },
    #[error("degenerate landmarks (the points coincide): no similarity transform fits them")]
    Degenerate,
    #[error("{0}")]
    Invalid(String),
}

pub type Result<T, E = AlignError> = std::result::Result<T, E>;
