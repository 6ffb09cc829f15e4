//! Real-face evaluation of DIAT models (`diat eval real`, `diat classifier train`): the two
//! numbers the field reports, measured on real faces by networks that did not train the
//! transform —
//!
//! - did the attribute change: an attribute classifier trained by diat on real CelebA faces
//!   split by identity ([`classifier`], the network in `diat_nets::attr_classifier`), the role
//!   AttGAN's and STGAN's classifier plays;
//! - is it still the same person: dlib's ResNet face descriptor (`diat_nets::face_descriptor`,
//!   distance < 0.6) on dlib's 150×150 face chips cut from diat's own landmarks
//!   (`diat_align::chip`).
//!
//! | module | what |
//! |---|---|
//! | [`apply`] | `diat apply`: a model on images, crops and whole photos (detect, align, edit, paste back) |
//! | [`batch`] | crops → a model's input, outputs → images, a model's region, descriptors of faces |
//! | [`faces`] | CelebA labels by image id; aligned faces from `diat align` folders, photo folders or zips |
//! | [`classifier`] | classifier data, training, held-out scores, loading |
//! | [`metrics`] | accuracy and balanced accuracy |
//! | [`real`] | `diat eval real`: conditions, identity and attribute measures, report, contact sheet |
//! | [`lfw`] | `diat eval lfw`: whole LFW photos through detect, align, edit, paste back; verification across photos, attributes kept, stage times |
//! | [`sheet`] | before/after contact sheets |
//! | [`bench`](mod@bench) | `diat bench real`: both networks beside their peers |
//! | [`font`] | a tiny bitmap font for the contact sheet's captions |

pub mod apply;
pub mod batch;
pub mod bench;
pub mod classifier;
pub mod error;
pub mod faces;
pub mod font;
pub mod lfw;
pub mod metrics;
pub mod real;
pub mod sheet;

pub use error::{EvalError, Result};
