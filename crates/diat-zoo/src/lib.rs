//! The diat model zoo, without libtorch: a versioned registry of published DIAT / DIAT-A
//! checkpoints, verified resumable downloads into a content-addressed cache, and publishing of
//! trained runs.
//!
//! - [`registry`]: `zoo/registry.toml` (schema 1), `name@version` resolution.
//! - [`fetch`]: HTTP(S) downloads with Range resume, retries with backoff, sha256 and size checks
//!   before an atomic rename; offline mode.
//! - [`cache`]: `$DIAT_HOME/zoo/v1` — blobs by sha256, one folder per installed model; `verify`,
//!   `gc`, `rm`.
//! - [`archive`]: reproducible zips and safe extraction.
//! - [`publish`](mod@publish): packs a training run into uploadable files and a registry stanza.
//! - [`card`]: the model card (`card.md`) published with every model.
//! - [`report`]: what `diat zoo list/info/pull/verify/gc/publish` report, as values with their text.
//! - [`resolve`]: [`resolve_and_fetch`], what `diat apply` calls to turn a model name (or a local
//!   checkpoint path) into local files by role.

pub mod archive;
pub mod cache;
pub mod card;
pub mod error;
pub mod fetch;
pub mod hash;
pub mod publish;
pub mod registry;
pub mod report;
pub mod resolve;
mod util;

pub use cache::{BlobStatus, Cache, GcOptions, GcReport, InstalledModel, VerifyReport};
pub use error::{Result, ZooError};
pub use fetch::{FailedSource, FetchOptions, FetchOutcome, Fetcher};
pub use publish::{PublishOptions, Published, publish};
pub use registry::{FileEntry, ModelEntry, ModelRef, Preprocessing, Registry, SCHEMA_VERSION};
pub use resolve::{ResolveOptions, Resolved, pull, resolve_and_fetch, resolve_and_fetch_with};
pub use util::now_rfc3339;
