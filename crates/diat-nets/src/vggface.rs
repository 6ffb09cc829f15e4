//! VGG-Face (Parkhi et al. 2015) as a frozen feature extractor — paper §3.1.1: the perceptual
//! identity loss (Eq. 1–2) uses its 4th and 5th conv layers, the reconstruction network's
//! objective (Eq. 4) too, and the local enhancement loss (Eq. 10) its first three.
//!
//! Only the 13 conv layers are built (the fully connected classifier is never used); a forward
//! pass stops at the deepest layer asked for. Layers are indexed 1…13 in network order
//! (`conv1_1` = 1, `conv1_2` = 2, `conv2_1` = 3, `conv2_2` = 4, `conv3_1` = 5, …); a feature
//! map is the layer's output after its ReLU (the convention of perceptual losses, Johnson et al.).
//! 2×2 max pooling follows `conv1_2`, `conv2_2`, `conv3_3`, `conv4_3` and `conv5_3`.
//!
//! Inputs are images in [-1, 1] (the rest of diat's convention); they are mapped to VGG-Face's
//! own input, RGB in 0…255 minus the training mean (129.186, 104.762, 93.594), inside
//! [`VggFace::features`].
//!
//! Weights: the VGG-Face weights cannot be downloaded by diat. `diat nets import-vggface FILE`
//! ([`import_vggface`]) converts a published PyTorch state dict — the Caffe/MatConvNet-converted
//! `vgg_face_dag.pth` (names `conv1_1.weight` …), `vgg-face.pytorch` (`conv_1_1.weight` …) or a
//! torchvision-style `features.N.weight` dict, saved by `torch.save` in the zip or the legacy
//! (PyTorch < 1.6) format or as safetensors, optionally under `module.`/`state_dict.` — to a diat
//! safetensors checkpoint at [`default_weights_path`]; [`vgg_face_pretrained`] loads it when it
//! is there. Parameter names of the checkpoint: `conv1_1.{weight,bias}` … `conv5_3.{weight,bias}`
//! (`scripts/reference/diat_reference.py`, class `VggFace`).

use crate::checkpoint::{self, CheckpointMeta};
use crate::error::{NetsError, Result};
use crate::layers::scaled;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tch::{Device, Kind, Tensor, nn};

/// (name, output channels, max-pool after) of VGG-Face's conv layers, in order.
pub const VGG_LAYERS: [(&str, i64, bool); 13] = [
    ("conv1_1", 64, false),
    ("conv1_2", 64, true),
    ("conv2_1", 128, false),
    ("conv2_2", 128, true),
    ("conv3_1", 256, false),
    ("conv3_2", 256, false),
    ("conv3_3", 256, true),
    ("conv4_1", 512, false),
    ("conv4_2", 512, false),
    ("conv4_3", 512, true),
    ("conv5_1", 512, false),
    ("conv5_2", 512, false),
    ("conv5_3", 512, true),
];

/// The mean RGB value (0…255) VGG-Face was trained with.
pub const VGG_FACE_MEAN_RGB: [f64; 3] = [129.186279296875, 104.76238250732422, 93.59396362304688];

/// Architecture name in checkpoints.
pub const ARCHITECTURE: &str = "vggface";

/// Configuration of the VGG-Face feature extractor.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct VggFaceConfig {
    /// Channel multiplier (1.0 for the real weights; smaller only for random-weight smoke runs).
    pub width: f64,
    /// Input side in pixels (paper: 128, the transform network's output).
    pub image_size: i64,
}

impl Default for VggFaceConfig {
    fn default() -> Self {
        Self {
            width: 1.0,
            image_size: 128,
        }
    }
}

impl VggFaceConfig {
    /// A small random-weight network for CPU tests and smoke runs.
    pub fn tiny(image_size: i64) -> Self {
        Self {
            width: 0.25,
            image_size,
        }
    }

    /// Output channels of the 13 conv layers.
    pub fn channels(&self) -> [i64; 13] {
        VGG_LAYERS.map(|(_, c, _)| scaled(c, self.width))
    }
}

/// The VGG-Face conv layers.
#[derive(Debug)]
pub struct VggFace {
    convs: Vec<nn::Conv2D>,
    mean: Tensor,
    pub config: VggFaceConfig,
}

/// Builds VGG-Face under `p`. Freeze the var store (`vs.freeze()`) to use it as a fixed loss
/// network; gradients still flow to its input.
pub fn vgg_face(p: &nn::Path<'_>, config: &VggFaceConfig) -> VggFace {
    let mut cin = 3;
    let pad = nn::ConvConfig {
        padding: 1,
        ..Default::default()
    };
    let convs = VGG_LAYERS
        .iter()
        .zip(config.channels())
        .map(|(&(name, ..), cout)| {
            let conv = nn::conv2d(p / name, cin, cout, 3, pad);
            cin = cout;
            conv
        })
        .collect();
    let mean = Tensor::from_slice(&VGG_FACE_MEAN_RGB.map(|m| m as f32))
        .view([1, 3, 1, 1])
        .to_device(p.device());
    VggFace {
        convs,
        mean,
        config: config.clone(),
    }
}

impl VggFace {
    /// Post-ReLU feature maps of conv layers `1..=upto` (1-based; at most 13) of `x`, an N×3×H×W
    /// image batch in [-1, 1].
    pub fn features(&self, x: &Tensor, upto: usize) -> Vec<Tensor> {
        assert!(
            (1..=VGG_LAYERS.len()).contains(&upto),
            "VGG-Face has conv layers 1..=13, asked for {upto}"
        );
        let mut h = (x + 1.0) * 127.5 - self.mean.to_kind(x.kind());
        let mut out = Vec::with_capacity(upto);
        for (conv, &(_, _, pool)) in self.convs.iter().zip(VGG_LAYERS.iter()).take(upto) {
            h = h.apply(conv).relu();
            out.push(h.shallow_clone());
            if pool {
                h = h.max_pool2d([2, 2], [2, 2], [0, 0], [1, 1], false);
            }
        }
        out
    }

    /// The name of conv layer `index` (1-based).
    pub fn layer_name(index: usize) -> &'static str {
        VGG_LAYERS[index - 1].0
    }
}

/// Where the imported VGG-Face weights live: `$DIAT_VGGFACE`, else
/// `<DIAT_CACHE_DIR>/vggface/vgg_face.safetensors`.
pub fn default_weights_path(dirs: &diat_common::Dirs) -> PathBuf {
    match std::env::var_os("DIAT_VGGFACE").filter(|v| !v.is_empty()) {
        Some(p) => PathBuf::from(p),
        None => dirs.cache.join("vggface").join("vgg_face.safetensors"),
    }
}

/// The paper's VGG-Face in a new frozen var store on `device`, with the imported weights from
/// `weights` when that file exists (`Ok((net, vs, true))`), random ones otherwise (with a warning:
/// identity losses are then meaningless except for smoke runs).
pub fn vgg_face_pretrained(
    weights: &Path,
    device: Device,
) -> Result<(VggFace, nn::VarStore, bool)> {
    let mut vs = nn::VarStore::new(device);
    let net = vgg_face(&vs.root(), &VggFaceConfig::default());
    let loaded = if weights.exists() {
        checkpoint::load(&vs, weights, Some(ARCHITECTURE))?;
        tracing::info!("VGG-Face weights loaded from {}", weights.display());
        true
    } else {
        tracing::warn!(
            "no VGG-Face weights at {} (import them with `diat nets import-vggface`): using random weights",
            weights.display()
        );
        false
    };
    vs.freeze();
    Ok((net, vs, loaded))
}

/// What [`import_vggface`] did.
#[derive(Debug, Clone)]
pub struct ImportReport {
    /// The naming scheme recognised: `vgg_face_dag`, `vgg-face.pytorch` or `torchvision`.
    pub scheme: &'static str,
    /// Width multiplier inferred from the channel counts (1.0 for the real network).
    pub width: f64,
    /// Tensors of the input that are not conv layers (the classifier) and were left out.
    pub dropped: Vec<String>,
    /// Whether conv1_1's input channels were reversed (BGR → RGB).
    pub bgr_to_rgb: bool,
}

/// Options of [`import_vggface`].
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// The input weights expect BGR input (raw Caffe ports; `vgg_face_dag.pth` is RGB already):
    /// reverse conv1_1's input channels.
    pub bgr: bool,
}

/// Reads named tensors from a PyTorch state dict (`torch.save`: the zip format of PyTorch ≥ 1.6
/// through libtorch, the legacy format through [`crate::torch_legacy`]) or a safetensors file.
pub fn read_state_dict(path: &Path) -> Result<Vec<(String, Tensor)>> {
    let mut head = [0u8; 16];
    let n = {
        use std::io::Read;
        let mut f = std::fs::File::open(path).map_err(|source| NetsError::Io {
            path: path.into(),
            source,
        })?;
        f.read(&mut head).map_err(|source| NetsError::Io {
            path: path.into(),
            source,
        })?
    };
    if head[..n].starts_with(b"PK\x03\x04") {
        return Tensor::loadz_multi_with_device(path, Device::Cpu).map_err(|e| NetsError::Import {
            path: path.into(),
            problem: format!("cannot read the PyTorch state dict: {e}"),
        });
    }
    if n > 8 && head[8] == b'{' {
        return Ok(checkpoint::read_tensors(path)?.0);
    }
    if crate::torch_legacy::looks_legacy(&head[..n]) {
        return crate::torch_legacy::read_legacy(path);
    }
    Err(NetsError::Import {
        path: path.into(),
        problem:
            "neither a PyTorch state dict (torch.save, zip or legacy format) nor a safetensors file"
                .into(),
    })
}

/// The 13 conv names in a state dict under each known naming scheme.
fn scheme_names(scheme: &str) -> Vec<String> {
    const TORCHVISION_INDEX: [usize; 13] = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28];
    VGG_LAYERS
        .iter()
        .zip(TORCHVISION_INDEX)
        .map(|(&(name, ..), idx)| match scheme {
            "vgg_face_dag" => name.to_string(),
            "vgg-face.pytorch" => name.replacen("conv", "conv_", 1),
            _ => format!("features.{idx}"),
        })
        .collect()
}

/// Converts published VGG-Face weights (see the module documentation) to a diat checkpoint at
/// `output`: the 13 conv layers under diat's names, f32, shapes checked, classifier dropped.
pub fn import_vggface(
    input: &Path,
    output: &Path,
    options: &ImportOptions,
) -> Result<ImportReport> {
    let err = |problem: String| NetsError::Import {
        path: input.into(),
        problem,
    };
    let mut tensors: BTreeMap<String, Tensor> = BTreeMap::new();
    for (name, t) in read_state_dict(input)? {
        let name = name.strip_prefix("state_dict.").unwrap_or(&name);
        let name = name.strip_prefix("module.").unwrap_or(name).to_string();
        tensors.insert(name, t);
    }
    let scheme = ["vgg_face_dag", "vgg-face.pytorch", "torchvision"]
        .into_iter()
        .find(|s| scheme_names(s).iter().all(|n| tensors.contains_key(&format!("{n}.weight"))))
        .ok_or_else(|| {
            let names: Vec<&String> = tensors.keys().take(12).collect();
            err(format!(
                "no VGG-Face conv layers found: expected conv1_1.weight…conv5_3.weight, conv_1_1.weight… or \
                 features.0.weight…features.28.weight; the file has {} tensors, e.g. {names:?}",
                tensors.len()
            ))
        })?;
    let src = scheme_names(scheme);
    let first = &tensors[&format!("{}.weight", src[0])];
    let width = first.size()[0] as f64 / 64.0;
    let config = VggFaceConfig {
        width,
        ..Default::default()
    };
    let mut out = Vec::with_capacity(26);
    let mut cin = 3;
    for ((&(name, ..), cout), s) in VGG_LAYERS.iter().zip(config.channels()).zip(&src) {
        let w = tensors
            .remove(&format!("{s}.weight"))
            .ok_or_else(|| err(format!("{s}.weight missing")))?;
        let b = tensors
            .remove(&format!("{s}.bias"))
            .ok_or_else(|| err(format!("{s}.bias missing")))?;
        if w.size() != [cout, cin, 3, 3] || b.size() != [cout] {
            return Err(err(format!(
                "{s} ({name}): weight {:?} / bias {:?}, expected [{cout}, {cin}, 3, 3] / [{cout}]",
                w.size(),
                b.size()
            )));
        }
        let w = if name == "conv1_1" && options.bgr {
            w.flip([1])
        } else {
            w
        };
        out.push((
            format!("{name}.weight"),
            w.to_kind(Kind::Float).contiguous(),
        ));
        out.push((format!("{name}.bias"), b.to_kind(Kind::Float).contiguous()));
        cin = cout;
    }
    let dropped: Vec<String> = tensors.into_keys().collect();
    if !dropped.is_empty() {
        tracing::debug!(
            "left out {} non-conv tensors ({})",
            dropped.len(),
            dropped.join(", ")
        );
    }
    let mut meta = CheckpointMeta::new(ARCHITECTURE, &config)?;
    meta.extra.insert(
        "diat.source".into(),
        input
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default(),
    );
    meta.extra
        .insert("diat.source_scheme".into(), scheme.into());
    meta.extra
        .insert("diat.source_bgr".into(), options.bgr.to_string());
    checkpoint::save_tensors(output, &out, &meta)?;
    Ok(ImportReport {
        scheme,
        width,
        dropped,
        bgr_to_rgb: options.bgr,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_sizes_and_names() {
        let vs = nn::VarStore::new(Device::Cpu);
        let vgg = vgg_face(&vs.root(), &VggFaceConfig::tiny(32));
        let x = Tensor::zeros([1, 3, 32, 32], (Kind::Float, Device::Cpu));
        let f = vgg.features(&x, 13);
        assert_eq!(f[3].size(), [1, 32, 16, 16]); // conv2_2, after one pooling
        assert_eq!(f[4].size(), [1, 64, 8, 8]); // conv3_1
        assert_eq!(f[12].size(), [1, 128, 2, 2]);
        assert_eq!(vgg.features(&x, 5).len(), 5);
        assert_eq!(VggFace::layer_name(4), "conv2_2");
        let full = nn::VarStore::new(Device::Cpu);
        let _ = vgg_face(&full.root(), &VggFaceConfig::default());
        let n: i64 = full.variables().values().map(|t| t.numel() as i64).sum();
        assert_eq!(n, 14_714_688, "VGG-16 conv parameters");
    }

    #[test]
    fn scheme_names_cover_all_layers() {
        assert_eq!(scheme_names("vgg-face.pytorch")[4], "conv_3_1");
        assert_eq!(scheme_names("torchvision")[12], "features.28");
    }

    #[test]
    fn import_flips_bgr_and_rejects_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = VggFaceConfig::tiny(32);
        let mut cin = 3;
        let mut named = Vec::new();
        for (&(name, ..), cout) in VGG_LAYERS.iter().zip(cfg.channels()) {
            named.push((
                format!("conv_{}.weight", &name[4..]),
                Tensor::randn([cout, cin, 3, 3], (Kind::Float, Device::Cpu)),
            ));
            named.push((
                format!("conv_{}.bias", &name[4..]),
                Tensor::randn([cout], (Kind::Float, Device::Cpu)),
            ));
            cin = cout;
        }
        let src = dir.path().join("in.safetensors");
        checkpoint::save_tensors(&src, &named, &CheckpointMeta::new("raw", &()).unwrap()).unwrap();
        let dst = dir.path().join("out.safetensors");
        let report = import_vggface(&src, &dst, &ImportOptions { bgr: true }).unwrap();
        assert_eq!((report.scheme, report.width), ("vgg-face.pytorch", 0.25));
        let (got, meta) = checkpoint::read_tensors(&dst).unwrap();
        let w = &got.iter().find(|(n, _)| n == "conv1_1.weight").unwrap().1;
        assert!(w.equal(&named[0].1.flip([1])));
        assert_eq!(meta.unwrap()["diat.architecture"], "vggface");

        let bad = dir.path().join("bad.pth");
        std::fs::write(&bad, [0x80, 0x02, 0x8a, 0x0a]).unwrap();
        let e = import_vggface(&bad, &dst, &ImportOptions::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("legacy torch.save file: truncated"), "{e}");
        std::fs::write(&bad, b"hello").unwrap();
        let e = import_vggface(&bad, &dst, &ImportOptions::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("neither a PyTorch state dict"), "{e}");
        let other = dir.path().join("other.safetensors");
        checkpoint::save_tensors(
            &other,
            &named[2..],
            &CheckpointMeta::new("raw", &()).unwrap(),
        )
        .unwrap();
        let e = import_vggface(&other, &dst, &ImportOptions::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("no VGG-Face conv layers"), "{e}");
    }

    #[test]
    fn pretrained_weights_are_loaded_when_present() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vgg_face.safetensors");
        let (_, _, loaded) = vgg_face_pretrained(&path, Device::Cpu).unwrap();
        assert!(!loaded);
        let vs = nn::VarStore::new(Device::Cpu);
        let _ = vgg_face(&vs.root(), &VggFaceConfig::default());
        checkpoint::save(&vs, &path, ARCHITECTURE, &VggFaceConfig::default()).unwrap();
        let (_, loaded_vs, loaded) = vgg_face_pretrained(&path, Device::Cpu).unwrap();
        assert!(loaded);
        let (a, b) = (vs.variables(), loaded_vs.variables());
        assert!(a["conv5_3.weight"].equal(&b["conv5_3.weight"]));
        assert!(b.values().all(|t| !t.requires_grad()), "frozen");
        let dirs = diat_common::Dirs::resolve(|k| (k == "DIAT_HOME").then(|| "/h".into()));
        if std::env::var_os("DIAT_VGGFACE").is_none() {
            assert_eq!(
                default_weights_path(&dirs),
                Path::new("/h/cache/vggface/vgg_face.safetensors")
            );
        }
    }
}
