//! Shared plumbing for every diat crate: progress reporting that suits both terminals and logs,
//! outputs that are never half-written, and the directories diat uses.
//!
//! This crate does not depend on libtorch.

pub mod atomic;
pub mod dirs;
pub mod progress;

pub use atomic::{StagedDir, write_atomic};
pub use dirs::Dirs;
pub use progress::Progress;
