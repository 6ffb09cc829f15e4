//! Errors of real-face evaluation.

use std::path::PathBuf;

/// Everything that can go wrong training the classifier or evaluating on real faces.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {problem}")]
    Input { path: PathBuf, problem: String },
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error(transparent)]
    Celeba(#[from] diat_celeba::Error),
    #[error(transparent)]
    Align(#[from] diat_align::AlignError),
    #[error(transparent)]
    Nets(#[from] diat_nets::NetsError),
    #[error(transparent)]
    Train(#[from] diat_train::TrainError),
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
}

pub type Result<T, E = EvalError> = std::result::Result<T, E>;
