//! Errors of the training crate.

use std::path::PathBuf;

pub type Result<T, E = TrainError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("configuration: {0}")]
    Config(String),
    #[error("data: {0}")]
    Data(#[from] diat_celeba::Error),
    #[error(transparent)]
    Nets(#[from] diat_nets::NetsError),
    #[error("torch: {0}")]
    Torch(#[from] tch::TchError),
    #[error(
        "stage {stage}, step {step}: loss {name} is {value} (not finite); stopped, the last good checkpoint is kept"
    )]
    NonFinite {
        stage: String,
        step: u64,
        name: String,
        value: f64,
    },
    #[error(
        "interrupted at stage {stage}, step {step}: checkpoint written, continue with --resume"
    )]
    Interrupted { stage: String, step: u64 },
    #[error("checkpoint {path}: {msg}")]
    Checkpoint { path: PathBuf, msg: String },
}

impl TrainError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        TrainError::Io {
            path: path.into(),
            source,
        }
    }
}
