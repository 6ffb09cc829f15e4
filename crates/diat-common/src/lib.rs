//! Shared plumbing for every diat crate: progress reporting that suits both terminals and logs,
//! outputs that are never half-written, completeness records of folders that belong together, the
//! directories diat uses, and the one image resizer.
//!
//! This crate does not depend on libtorch.

pub mod atomic;
pub mod complete;
pub mod decode;
pub mod dirs;
pub mod machine;
pub mod names;
pub mod progress;
pub mod resize;
pub mod zipdir;

pub use atomic::{StagedDir, write_atomic};

/// For `#[serde(skip_serializing_if = "diat_common::is_default")]`: an option at its default is
/// left out of a written config or checkpoint header, so options added later do not change the
/// bytes of files written before them.
pub fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

/// CelebA's 10 aligned-landmark columns in file order (x, y of left eye, right eye, nose, left and
/// right mouth corner; "left" is the image's left), shared by the ingestion, the synthetic
/// dataset writer and the landmark CSVs of real-photo alignment.
pub const LANDMARK_NAMES: [&str; 10] = [
    "lefteye_x",
    "lefteye_y",
    "righteye_x",
    "righteye_y",
    "nose_x",
    "nose_y",
    "leftmouth_x",
    "leftmouth_y",
    "rightmouth_x",
    "rightmouth_y",
];
pub use dirs::Dirs;
pub use progress::Progress;
