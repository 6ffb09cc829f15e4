//! DIAT / DIAT-A networks and losses (Li, Zuo, Zhang: *Deep Identity-aware Transfer of Facial
//! Attributes*), built with tch. One module per architecture; builders are free functions taking
//! `&nn::Path`, each with a `Config` whose `Default` is the paper's (plus a width multiplier and an
//! image size for small CPU runs).
//!
//! | module | paper |
//! |---|---|
//! | [`transform`] | T, g and the global enhancement network — §3.1, Table 1 |
//! | [`discriminator`](mod@discriminator) | D — §3.1.1, Table 2; its features in DIAT-A — §4.1 |
//! | [`vggface`] | VGG-Face feature extractor and weight importer — §3.1.1 |
//! | [`denoise`] | the denoising network f — §3.1.1 |
//! | [`enhance`] | local and global enhancement networks — §3.2 |
//! | [`blur`] | the Gaussian blur B of Eq. (11) |
//! | [`losses`] | Eq. (1)–(14) |
//! | [`autocast`] | bf16 mixed precision (`torch.autocast`) on the CPU and CUDA |
//! | [`diat_a`] | one DIAT-A training iteration — Algorithm 1 with Eq. (14) |
//! | [`face_descriptor`] | dlib's ResNet face descriptor, the identity measure of `diat eval real` |
//! | [`attr_classifier`] | the attribute classifier of `diat eval real` |
//! | [`limits`] | the allowed range of every config field, exact state sizes, memory estimates |
//! | [`checkpoint`] | safetensors checkpoints that PyTorch loads with `strict=True` |
//! | [`timing`] | the timing loop of every benchmark |
//! | [`bench`](mod@bench) | `diat bench nets`: T forward and the DIAT-A step, beside PyTorch |
//! | [`torch_legacy`] | reader of legacy (PyTorch < 1.6) `torch.save` files, for VGG-Face |
//!
//! Every network and loss is tested against the PyTorch reference in
//! `scripts/reference/diat_reference.py` (`tests/parity.rs`).

pub mod attr_classifier;
pub mod augment;
pub mod autocast;
pub mod bench;
pub mod blur;
pub mod checkpoint;
pub mod denoise;
pub mod diat_a;
pub mod discriminator;
pub mod enhance;
pub mod error;
pub mod face_descriptor;
pub mod layers;
pub mod limits;
pub mod losses;
pub mod mtcnn;
pub mod timing;
pub mod torch_legacy;
pub mod transform;
pub mod vggface;

pub use denoise::{DenoiseConfig, DenoiseNet, denoise_net};
pub use discriminator::{Discriminator, DiscriminatorConfig, DiscriminatorOutput, discriminator};
pub use enhance::{LocalEnhanceConfig, LocalEnhanceNet, global_enhance_net, local_enhance_net};
pub use error::{NetsError, Result};
pub use limits::NetConfig;
pub use transform::{FoldedTransform, TransformConfig, TransformNet, Upsample, transform_net};
pub use vggface::{VggFace, VggFaceConfig, vgg_face};
