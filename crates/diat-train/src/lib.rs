//! Training for DIAT and DIAT-A (paper Algorithm 1, §3.2, §4, §5.1): pipeline files, the data
//! loader over the packed stores, one stage runner and one GAN iteration for every variant, and
//! resumable run directories.

pub mod bench;
pub mod config;
pub mod data;
pub mod error;
pub mod images;
pub mod model;
pub mod run;
pub mod trainer;

pub use config::{PipelineConfig, Variant};
pub use error::{Result, TrainError};
pub use trainer::{Summary, TrainOptions, train};
