//! Training for DIAT and DIAT-A (paper Algorithm 1, §3.2, §4, §5.1): pipeline files, the data
//! loader over the packed stores, one stage runner and one GAN iteration for every variant, and
//! resumable run directories.
//!
//! Training a pipeline (what `diat train --pipeline pipelines/demo/mouth_open.toml --set
//! stages.adversarial.steps=200` does), then loading its final networks:
//!
//! ```no_run
//! use diat_train::{PipelineConfig, TrainOptions, model::Model, train};
//! use std::path::{Path, PathBuf};
//!
//! # fn main() -> diat_train::Result<()> {
//! let cfg = PipelineConfig::load_with_overrides(
//!     Path::new("pipelines/demo/mouth_open.toml"),
//!     &["stages.adversarial.steps=200".to_string()],
//! )?;
//! let opts = TrainOptions {
//!     run_dir: PathBuf::from("runs/demo"),
//!     resume: true, // an interrupted run goes on from its last checkpoint
//!     progress: diat_common::progress::Mode::auto(),
//! };
//! // Ctrl-C (SIGINT/SIGTERM) checkpoints and stops.
//! let summary = train(&cfg, &opts, diat_train::trainer::stop_flag())?;
//! let model = Model::load(&summary.final_dir, tch::Device::Cpu)?;
//! println!("{model:?}: {}px, task {:?}", model.image_size, model.task);
//! # Ok(())
//! # }
//! ```

pub mod bench;
pub mod config;
pub mod data;
pub mod ema;
pub mod error;
pub mod images;
pub mod model;
pub mod run;
pub mod trainer;

pub use config::{PipelineConfig, Variant};
pub use error::{Result, TrainError};
pub use trainer::{Summary, TrainOptions, train};
