//! Synthetic CelebA-format faces with exact counterfactuals (issue 4).
//!
//! A deterministic renderer of aligned 178×218 faces: identity parameters (head shape, skin tone, hair
//! colour and length, eye spacing and colour, nose, background, lighting) × visibly drawn attributes
//! (at least `Eyeglasses`, `Mouth_Slightly_Open`, `Smiling`, `Male`, `Young`; the other CelebA columns
//! follow consistently from what is drawn) × small per-image pose, scale and lighting jitter.
//! Everything is a pure function of `(seed, image index)`, so any image, and its twin with one attribute
//! flipped, can be rendered alone. On top of the renderer:
//!
//! * [`dataset`] writes a complete CelebA dataset in the official layout;
//! * [`mask`] defines the paper's attribute masks (§3.2) from the five landmarks;
//! * [`judge`] re-detects drawn attributes in pixel space, independently of any model;
//! * [`metrics`] and [`eval`] score a transform against the exact counterfactuals;
//! * [`sheet`] builds contact sheets; [`bench`](mod@bench) measures throughput; [`jpeg`] is the fast JPEG
//!   encoder the dataset writer uses.
//!
//! This crate does not depend on libtorch.

pub mod attrs;
pub mod bench;
pub mod dataset;
pub mod eval;
pub mod face;
pub mod image_io;
pub mod jpeg;
pub mod judge;
pub mod layout;
pub mod mask;
pub mod metrics;
pub mod raster;
pub mod render;
pub mod sheet;

pub use attrs::{Attr, AttrRow, FLIPPABLE};
pub use face::{FaceSpec, HEIGHT, Landmarks, WIDTH};
pub use layout::{Layout, Partition};
pub use render::{Renderer, render_rgb8};

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    NotFlippable(#[from] face::NotFlippable),
    #[error("{path}: {source}")]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {msg}")]
    Image {
        path: std::path::PathBuf,
        msg: String,
    },
    #[error("zip: {0}")]
    Zip(String),
    #[error("jpeg encoding: {0}")]
    Jpeg(String),
}

impl Error {
    pub(crate) fn io(path: impl Into<std::path::PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Runs `f` on a rayon pool of `threads` threads (all cores when `None`); rendering, dataset writing,
/// calibration and evaluation inside `f` use that pool. Returns `f`'s result and the thread count.
pub fn with_threads<R: Send>(
    threads: Option<usize>,
    f: impl FnOnce() -> R + Send,
) -> Result<(R, usize)> {
    let mut b = rayon::ThreadPoolBuilder::new();
    if let Some(t) = threads {
        if t == 0 {
            return Err(Error::Invalid("the thread count must be at least 1".into()));
        }
        b = b.num_threads(t);
    }
    let pool = b
        .build()
        .map_err(|e| Error::Invalid(format!("starting {threads:?} threads: {e}")))?;
    let n = pool.current_num_threads();
    Ok((pool.install(f), n))
}
