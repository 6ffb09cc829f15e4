//! CelebA ingestion for diat: from any CelebA download to the paper's curated per-task sets
//! (§5.1, Algorithm 1 step 1, §3.2 masks). No libtorch dependency.
//!
//! - [`layout`]: find CelebA in its official, torchvision, Kaggle or StarGAN layout; read images
//!   in place (folders or straight from the zip);
//! - [`annotations`], [`dataset`]: parse and validate the annotation files into columns and a
//!   polars `DataFrame` (the index);
//! - [`cluster`]: landmark k-means with reviewable exclusions;
//! - [`crop`]: the central crop resized to 128×128, landmarks transformed alike;
//! - [`sets`]: guided / input / test sets per task, balanced on confounders;
//! - [`masks`]: convex-hull attribute masks;
//! - [`split`]: train / val / test by identity for real faces;
//! - [`store`], [`pipeline`]: packed memory-mappable stores with parquet sidecars and manifests.

pub mod annotations;
pub mod bench;
pub mod cluster;
pub mod crop;
pub mod dataset;
pub mod error;
pub mod export;
pub mod inspect;
pub mod layout;
pub mod masks;
pub mod pipeline;
pub mod sets;
pub mod sheets;
pub mod split;
pub mod store;
pub mod verify;
pub mod workflow;

pub use error::{Error, Result};
