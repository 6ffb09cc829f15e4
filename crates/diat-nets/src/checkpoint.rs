//! Checkpoints: safetensors files whose tensor names are exactly the PyTorch `state_dict` names of
//! the reference modules in `scripts/reference/diat_reference.py` (each architecture's module
//! documentation lists them), so
//!
//! ```python
//! net = TransformNet(TransformConfig(**json.loads(meta["diat.config"])))
//! net.load_state_dict(safetensors.torch.load_file(path), strict=True)
//! ```
//!
//! works (`diat_reference.load_rust_checkpoint` does exactly this). Batch normalisation layers
//! carry PyTorch's int64 `num_batches_tracked` (see [`crate::layers::BatchNorm2d`]).
//!
//! Metadata (safetensors header `__metadata__`, all strings):
//!
//! | key | value |
//! |---|---|
//! | `format` | `pt` (the Hugging Face convention for PyTorch-named tensors) |
//! | `diat.checkpoint` | `1`, the version of this layout |
//! | `diat.architecture` | `transform`, `reconstruction`, `global_enhance`, `discriminator`, `vggface`, `denoise`, `local_enhance` |
//! | `diat.config` | the architecture's `Config` as JSON (the Python dataclass takes the same fields) |
//! | `diat.crate` | `diat-nets <version>` |
//! | `diat.tch` | the tch version |
//! | `diat.libtorch` | the version of the libtorch the writing process had loaded |
//!
//! Loading ([`load`], [`load_weights`]) is strict: every tensor of the network must be in the
//! file with the same shape and no other tensor may be; a mismatch fails with a message listing
//! the missing, unexpected and mis-shaped names.

use crate::error::{NetsError, Result};
use crate::limits::NetConfig;
use safetensors::tensor::{Dtype, SafeTensors};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use tch::{Device, Kind, Tensor, nn};

/// Version of the checkpoint layout (`diat.checkpoint`).
pub const CHECKPOINT_VERSION: &str = "1";
/// The tch version diat-nets is built against.
pub const TCH_VERSION: &str = "0.24.0";

/// The metadata of a checkpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckpointMeta {
    pub architecture: String,
    /// The architecture's config, as JSON.
    pub config: serde_json::Value,
    pub crate_version: String,
    pub tch_version: String,
    pub libtorch_version: String,
    /// Any other `__metadata__` entries (e.g. `diat.source` of an imported VGG-Face).
    pub extra: BTreeMap<String, String>,
}

impl CheckpointMeta {
    /// Metadata for a checkpoint of `architecture` with `config`, written by this process.
    pub fn new<C: serde::Serialize>(architecture: &str, config: &C) -> Result<Self> {
        Ok(Self {
            architecture: architecture.to_string(),
            config: serde_json::to_value(config).map_err(|e| NetsError::Config(e.to_string()))?,
            crate_version: format!("diat-nets {}", env!("CARGO_PKG_VERSION")),
            tch_version: TCH_VERSION.to_string(),
            libtorch_version: libtorch_version().unwrap_or_else(|| "unknown".into()),
            extra: BTreeMap::new(),
        })
    }

    fn to_map(&self) -> HashMap<String, String> {
        let mut m: HashMap<String, String> = self.extra.clone().into_iter().collect();
        m.insert("format".into(), "pt".into());
        m.insert("diat.checkpoint".into(), CHECKPOINT_VERSION.into());
        m.insert("diat.architecture".into(), self.architecture.clone());
        m.insert("diat.config".into(), self.config.to_string());
        m.insert("diat.crate".into(), self.crate_version.clone());
        m.insert("diat.tch".into(), self.tch_version.clone());
        m.insert("diat.libtorch".into(), self.libtorch_version.clone());
        m
    }

    fn from_map(path: &Path, map: Option<HashMap<String, String>>) -> Result<Self> {
        let mut map = map.unwrap_or_default();
        let mut take = |key: &str| {
            map.remove(key).ok_or_else(|| NetsError::Metadata {
                path: path.into(),
                key: key.into(),
                problem: "missing (not a diat checkpoint?)".into(),
            })
        };
        let architecture = take("diat.architecture")?;
        let config_text = take("diat.config")?;
        let crate_version = take("diat.crate")?;
        let tch_version = take("diat.tch")?;
        let libtorch_version = take("diat.libtorch")?;
        map.remove("format");
        map.remove("diat.checkpoint");
        let config = serde_json::from_str(&config_text).map_err(|e| NetsError::Metadata {
            path: path.into(),
            key: "diat.config".into(),
            problem: e.to_string(),
        })?;
        Ok(Self {
            architecture,
            config,
            crate_version,
            tch_version,
            libtorch_version,
            extra: map.into_iter().collect(),
        })
    }

    /// The config, deserialised.
    pub fn config<C: serde::de::DeserializeOwned>(&self, path: &Path) -> Result<C> {
        serde_json::from_value(self.config.clone()).map_err(|e| NetsError::Metadata {
            path: path.into(),
            key: "diat.config".into(),
            problem: format!("does not fit the {} config: {e}", self.architecture),
        })
    }
}

/// The `lib/` directory of the libtorch loaded into this process (where `libtorch_cpu.so` was
/// mapped from).
pub fn libtorch_lib_dir() -> Option<PathBuf> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    let lib = maps
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .find(|p| p.ends_with("/libtorch_cpu.so"))?;
    Path::new(lib).parent().map(Path::to_path_buf)
}

/// The version of the libtorch loaded into this process (e.g. `2.11.0+cu130`), read from the
/// `version.py` (pip wheel) or `build-version` (libtorch zip) beside its `lib/` directory.
pub fn libtorch_version() -> Option<String> {
    let lib = libtorch_lib_dir()?;
    let root = lib.parent()?;
    if let Ok(text) = std::fs::read_to_string(root.join("version.py")) {
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("__version__") {
                return Some(
                    rest.trim_start_matches([' ', '='])
                        .trim()
                        .trim_matches(['\'', '"'])
                        .to_string(),
                );
            }
        }
    }
    std::fs::read_to_string(root.join("build-version"))
        .ok()
        .map(|s| s.trim().to_string())
}

fn dtype_of(kind: Kind) -> Option<Dtype> {
    Some(match kind {
        Kind::Bool => Dtype::BOOL,
        Kind::Uint8 => Dtype::U8,
        Kind::Int8 => Dtype::I8,
        Kind::Int16 => Dtype::I16,
        Kind::Int => Dtype::I32,
        Kind::Int64 => Dtype::I64,
        Kind::BFloat16 => Dtype::BF16,
        Kind::Half => Dtype::F16,
        Kind::Float => Dtype::F32,
        Kind::Double => Dtype::F64,
        _ => return None,
    })
}

fn kind_of(dtype: Dtype) -> Option<Kind> {
    Some(match dtype {
        Dtype::BOOL => Kind::Bool,
        Dtype::U8 => Kind::Uint8,
        Dtype::I8 => Kind::Int8,
        Dtype::I16 => Kind::Int16,
        Dtype::I32 => Kind::Int,
        Dtype::I64 => Kind::Int64,
        Dtype::BF16 => Kind::BFloat16,
        Dtype::F16 => Kind::Half,
        Dtype::F32 => Kind::Float,
        Dtype::F64 => Kind::Double,
        _ => return None,
    })
}

/// A CPU, contiguous copy of a tensor, viewed as safetensors data.
struct TensorBytes {
    dtype: Dtype,
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

impl TensorBytes {
    fn new(name: &str, t: &Tensor) -> Result<Self> {
        let dtype = dtype_of(t.kind()).ok_or_else(|| {
            NetsError::Config(format!(
                "tensor {name}: kind {:?} cannot be saved",
                t.kind()
            ))
        })?;
        let t = t.detach().to_device(Device::Cpu).contiguous();
        let numel = t.numel();
        let mut bytes = vec![0u8; numel * t.kind().elt_size_in_bytes()];
        t.f_copy_data_u8(&mut bytes, numel)?;
        Ok(Self {
            dtype,
            shape: t.size().iter().map(|&d| d as usize).collect(),
            bytes,
        })
    }
}

/// The safetensors bytes of `data` with `metadata`, the same for the same input in every process:
/// `__metadata__` first with its keys sorted, then the tensors in the order the reference
/// writer lays out their data (larger dtype first, then by name), the header padded with spaces
/// to a multiple of 8 bytes. (`safetensors::serialize` writes the metadata in hash-map order,
/// which differs from process to process.)
fn serialize_sorted(data: &[(String, TensorBytes)], metadata: &HashMap<String, String>) -> Vec<u8> {
    let mut order: Vec<&(String, TensorBytes)> = data.iter().collect();
    order.sort_by(|(ln, l), (rn, r)| r.dtype.cmp(&l.dtype).then(ln.cmp(rn)));
    let sorted: BTreeMap<&String, &String> = metadata.iter().collect();
    let mut header = String::from("{");
    header.push_str("\"__metadata__\":");
    header.push_str(&serde_json::to_string(&sorted).unwrap_or_else(|_| "{}".into()));
    let mut offset = 0usize;
    for (name, t) in &order {
        let end = offset + t.bytes.len();
        let entry = serde_json::json!({
            "dtype": t.dtype,
            "shape": t.shape,
            "data_offsets": [offset, end],
        });
        header.push(',');
        header.push_str(&serde_json::to_string(name).unwrap_or_default());
        header.push(':');
        header.push_str(&entry.to_string());
        offset = end;
    }
    header.push('}');
    while header.len() % 8 != 0 {
        header.push(' ');
    }
    let mut out = Vec::with_capacity(8 + header.len() + offset);
    out.extend((header.len() as u64).to_le_bytes());
    out.extend(header.as_bytes());
    for (_, t) in &order {
        out.extend(&t.bytes);
    }
    out
}

/// Writes named tensors with `meta` to `path` (atomically: a temporary file renamed into place).
pub fn save_tensors(
    path: &Path,
    tensors: &[(String, Tensor)],
    meta: &CheckpointMeta,
) -> Result<()> {
    let data: Vec<(String, TensorBytes)> = tensors
        .iter()
        .map(|(n, t)| Ok((n.clone(), TensorBytes::new(n, t)?)))
        .collect::<Result<_>>()?;
    let bytes = serialize_sorted(&data, &meta.to_map());
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| NetsError::Io {
            path: dir.into(),
            source,
        })?;
    }
    diat_common::write_atomic(path, &bytes).map_err(|source| NetsError::Io {
        path: path.into(),
        source,
    })
}

/// Saves every variable of `vs` (trainable or not) to `path` with metadata naming `architecture`
/// and its `config`.
pub fn save<C: serde::Serialize>(
    vs: &nn::VarStore,
    path: &Path,
    architecture: &str,
    config: &C,
) -> Result<()> {
    let meta = CheckpointMeta::new(architecture, config)?;
    let mut tensors: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    save_tensors(path, &tensors, &meta)?;
    tracing::debug!(
        "saved {architecture} checkpoint ({} tensors) to {}",
        tensors.len(),
        path.display()
    );
    Ok(())
}

/// Named tensors, in file order.
pub type NamedTensors = Vec<(String, Tensor)>;

/// Reads every tensor of a safetensors file (on the CPU) and its raw `__metadata__`.
pub fn read_tensors(path: &Path) -> Result<(NamedTensors, Option<HashMap<String, String>>)> {
    let buf = std::fs::read(path).map_err(|source| NetsError::Io {
        path: path.into(),
        source,
    })?;
    read_tensors_from_bytes(path, &buf)
}

/// [`read_tensors`] of a file already in memory (e.g. weights built into the binary); `path`
/// names it in errors.
pub fn read_tensors_from_bytes(
    path: &Path,
    buf: &[u8],
) -> Result<(NamedTensors, Option<HashMap<String, String>>)> {
    let st = SafeTensors::deserialize(buf).map_err(|source| NetsError::Safetensors {
        path: path.into(),
        source,
    })?;
    let (_, header) = SafeTensors::read_metadata(buf).map_err(|source| NetsError::Safetensors {
        path: path.into(),
        source,
    })?;
    let mut out = Vec::with_capacity(st.len());
    for (name, view) in st.iter() {
        let kind = kind_of(view.dtype()).ok_or_else(|| NetsError::Metadata {
            path: path.into(),
            key: name.into(),
            problem: format!("unsupported dtype {:?}", view.dtype()),
        })?;
        let shape: Vec<i64> = view.shape().iter().map(|&d| d as i64).collect();
        out.push((
            name.to_string(),
            Tensor::f_from_data_size(view.data(), &shape, kind)?,
        ));
    }
    Ok((out, header.metadata().clone()))
}

/// The metadata of a checkpoint given as raw `__metadata__` (from [`read_tensors`]).
pub fn meta_from_map(path: &Path, map: Option<HashMap<String, String>>) -> Result<CheckpointMeta> {
    CheckpointMeta::from_map(path, map)
}

/// Reads only the metadata of a diat checkpoint.
pub fn read_meta(path: &Path) -> Result<CheckpointMeta> {
    read_header(path).map(|(meta, _)| meta)
}

/// Reads only the header of a diat checkpoint: its metadata and the number of elements of all
/// its tensors (from their shapes).
pub fn read_header(path: &Path) -> Result<(CheckpointMeta, f64)> {
    use std::io::Read;
    let io = |source| NetsError::Io {
        path: path.into(),
        source,
    };
    let bad = |problem: String| NetsError::Metadata {
        path: path.into(),
        key: "header".into(),
        problem,
    };
    let mut f = std::fs::File::open(path).map_err(io)?;
    let mut len = [0u8; 8];
    f.read_exact(&mut len).map_err(io)?;
    let n = u64::from_le_bytes(len);
    let file_len = f.metadata().map_err(io)?.len();
    if n > 100_000_000 || n.saturating_add(8) > file_len {
        return Err(bad(format!(
            "declares {n} header bytes in a file of {file_len} bytes"
        )));
    }
    let mut header = vec![0u8; n as usize];
    f.read_exact(&mut header).map_err(io)?;
    let h: BTreeMap<String, serde_json::Value> =
        serde_json::from_slice(&header).map_err(|e| bad(e.to_string()))?;
    let mut metadata = None;
    let mut elements = 0.0;
    for (name, v) in h {
        if name == "__metadata__" {
            metadata = Some(
                serde_json::from_value::<HashMap<String, String>>(v)
                    .map_err(|e| bad(format!("__metadata__: {e}")))?,
            );
            continue;
        }
        let shape = v["shape"]
            .as_array()
            .ok_or_else(|| bad(format!("tensor {name}: no shape")))?;
        let mut numel = 1.0;
        for d in shape {
            numel *= d
                .as_u64()
                .ok_or_else(|| bad(format!("tensor {name}: shape {shape:?}")))?
                as f64;
        }
        elements += numel;
    }
    Ok((CheckpointMeta::from_map(path, metadata)?, elements))
}

/// The network config a checkpoint carries, checked before anything is allocated: every field
/// within its limits (the error names `diat.config.<field>`), the architecture the expected one,
/// and the network it describes exactly as large as the tensors the file holds.
pub fn checked_config<C: NetConfig>(
    path: &Path,
    architecture: &str,
) -> Result<(CheckpointMeta, C)> {
    let (meta, elements) = read_header(path)?;
    if meta.architecture != architecture {
        return Err(NetsError::Architecture {
            path: path.into(),
            expected: architecture.into(),
            found: meta.architecture,
        });
    }
    let config: C = meta.config(path)?;
    config
        .check(&|f| format!("diat.config.{f}"))
        .map_err(|e| NetsError::Metadata {
            path: path.into(),
            key: "diat.config".into(),
            problem: e
                .to_string()
                .trim_start_matches("invalid configuration: ")
                .into(),
        })?;
    let want = config.state_elements();
    if want != elements {
        return Err(NetsError::Metadata {
            path: path.into(),
            key: "diat.config".into(),
            problem: format!(
                "describes a {architecture} network of {want} elements, but the file holds {elements}: \
                 the metadata does not belong to these weights"
            ),
        });
    }
    Ok((meta, config))
}

fn is_float(k: Kind) -> bool {
    matches!(k, Kind::Half | Kind::BFloat16 | Kind::Float | Kind::Double)
}

/// Copies `tensors` into the variables of `vs`, strictly: same names, same shapes, float into float
/// and integer into integer (values are converted to the variable's kind and device).
pub fn copy_into(vs: &nn::VarStore, path: &Path, tensors: Vec<(String, Tensor)>) -> Result<()> {
    let vars = vs.variables();
    let file: BTreeMap<String, Tensor> = tensors.into_iter().collect();
    let want: BTreeSet<&String> = vars.keys().collect();
    let have: BTreeSet<&String> = file.keys().collect();
    let missing: Vec<&&String> = want.difference(&have).collect();
    let unexpected: Vec<&&String> = have.difference(&want).collect();
    let mut mismatched = Vec::new();
    for (name, src) in &file {
        if let Some(var) = vars.get(name)
            && (src.size() != var.size() || is_float(src.kind()) != is_float(var.kind()))
        {
            mismatched.push(format!(
                "{name}: checkpoint {:?} {:?}, network {:?} {:?}",
                src.size(),
                src.kind(),
                var.size(),
                var.kind()
            ));
        }
    }
    if !(missing.is_empty() && unexpected.is_empty() && mismatched.is_empty()) {
        let list = |v: Vec<String>| {
            let n = v.len();
            let mut s = v.into_iter().take(12).collect::<Vec<_>>().join(", ");
            if n > 12 {
                s.push_str(&format!(", … ({} more)", n - 12));
            }
            s
        };
        let mut details = Vec::new();
        if !missing.is_empty() {
            details.push(format!(
                "  {} missing from the checkpoint: {}",
                missing.len(),
                list(missing.iter().map(|s| s.to_string()).collect())
            ));
        }
        if !unexpected.is_empty() {
            details.push(format!(
                "  {} not in the network: {}",
                unexpected.len(),
                list(unexpected.iter().map(|s| s.to_string()).collect())
            ));
        }
        if !mismatched.is_empty() {
            details.push(format!(
                "  {} with another shape or type: {}",
                mismatched.len(),
                list(mismatched)
            ));
        }
        return Err(NetsError::Mismatch {
            path: path.into(),
            details: details.join("\n"),
        });
    }
    tch::no_grad(|| -> Result<()> {
        for (name, mut var) in vars {
            let src = &file[&name];
            var.f_copy_(&src.to_device(var.device()).to_kind(var.kind()))?;
        }
        Ok(())
    })
}

/// Loads a safetensors file into `vs` strictly (names and shapes), ignoring its metadata: for
/// weights written by PyTorch (`safetensors.torch.save_file(net.state_dict(), path)`).
pub fn load_weights(vs: &nn::VarStore, path: &Path) -> Result<()> {
    let (tensors, _) = read_tensors(path)?;
    copy_into(vs, path, tensors)
}

/// Loads a diat checkpoint into `vs` strictly, after checking that it holds `architecture`
/// (when given). Returns its metadata.
pub fn load(vs: &nn::VarStore, path: &Path, architecture: Option<&str>) -> Result<CheckpointMeta> {
    let (tensors, meta) = read_tensors(path)?;
    let meta = CheckpointMeta::from_map(path, meta)?;
    if let Some(expected) = architecture.filter(|a| *a != meta.architecture) {
        return Err(NetsError::Architecture {
            path: path.into(),
            expected: expected.into(),
            found: meta.architecture.clone(),
        });
    }
    copy_into(vs, path, tensors)?;
    tracing::debug!("loaded {} checkpoint {}", meta.architecture, path.display());
    Ok(meta)
}

/// A path with `.safetensors` appended when it has no extension.
pub fn with_extension(path: &Path) -> PathBuf {
    if path.extension().is_some() {
        path.into()
    } else {
        path.with_extension("safetensors")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transform::{TransformConfig, transform_net};

    #[test]
    fn save_load_round_trip_and_metadata() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.safetensors");
        let cfg = TransformConfig::tiny(16);
        let vs = nn::VarStore::new(Device::Cpu);
        let t = transform_net(&vs.root(), &cfg);
        let _ = tch::no_grad(|| {
            nn::ModuleT::forward_t(
                &t,
                &Tensor::rand([2, 3, 16, 16], (Kind::Float, Device::Cpu)),
                true,
            )
        });
        save(&vs, &path, "transform", &cfg).unwrap();

        let meta = read_meta(&path).unwrap();
        assert_eq!(meta.architecture, "transform");
        assert_eq!(meta.config::<TransformConfig>(&path).unwrap(), cfg);
        assert_eq!(meta.tch_version, TCH_VERSION);
        assert!(
            meta.libtorch_version.starts_with("2."),
            "{}",
            meta.libtorch_version
        );

        let vs2 = nn::VarStore::new(Device::Cpu);
        let _ = transform_net(&vs2.root(), &cfg);
        load(&vs2, &path, Some("transform")).unwrap();
        let (a, b) = (vs.variables(), vs2.variables());
        for (name, t) in &a {
            assert!(t.equal(&b[name]), "{name}");
        }
        assert_eq!(b["c1.bn.num_batches_tracked"].int64_value(&[]), 1);

        let e = load(&vs2, &path, Some("discriminator"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("expected \"discriminator\""), "{e}");
    }

    #[test]
    fn mismatches_are_listed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.safetensors");
        let vs = nn::VarStore::new(Device::Cpu);
        let _ = transform_net(&vs.root(), &TransformConfig::tiny(16));
        save(&vs, &path, "transform", &TransformConfig::tiny(16)).unwrap();
        let other = nn::VarStore::new(Device::Cpu);
        let _ = transform_net(
            &other.root(),
            &TransformConfig {
                res_blocks: 3,
                width: 0.5,
                image_size: 16,
                ..Default::default()
            },
        );
        let e = load(&other, &path, Some("transform"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("missing from the checkpoint: res.2.a.bn.bias"),
            "{e}"
        );
        assert!(
            e.contains("c1.conv.weight: checkpoint [8, 3, 9, 9] Float, network [16, 3, 9, 9]"),
            "{e}"
        );
        let e = load_weights(&vs, Path::new("/nonexistent.safetensors"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("/nonexistent.safetensors"), "{e}");
    }

    fn numel(vs: &nn::VarStore) -> f64 {
        vs.variables().values().map(|t| t.numel() as f64).sum()
    }

    #[test]
    fn state_elements_are_exact() {
        use crate::{DiscriminatorConfig, LocalEnhanceConfig, discriminator, local_enhance_net};
        for (res_blocks, width, image_size) in
            [(0, 0.1, 8), (2, 0.25, 16), (5, 1.0, 128), (3, 0.37, 36)]
        {
            let c = TransformConfig {
                res_blocks,
                width,
                image_size,
                ..Default::default()
            };
            let vs = nn::VarStore::new(Device::Cpu);
            let _ = transform_net(&vs.root(), &c);
            assert_eq!(c.state_elements(), numel(&vs), "{c:?}");
        }
        for (width, image_size, fc_hidden) in [(0.25, 16, 1000), (1.0, 128, 1000), (0.3, 64, 7)] {
            let c = DiscriminatorConfig {
                width,
                image_size,
                fc_hidden,
                ..Default::default()
            };
            let vs = nn::VarStore::new(Device::Cpu);
            let _ = discriminator(&vs.root(), &c);
            assert_eq!(c.state_elements(), numel(&vs), "{c:?}");
        }
        for (width, layers) in [(0.25, 2), (1.0, 4), (0.5, 7)] {
            let c = LocalEnhanceConfig {
                width,
                layers,
                ..Default::default()
            };
            let vs = nn::VarStore::new(Device::Cpu);
            let _ = local_enhance_net(&vs.root(), &c);
            assert_eq!(c.state_elements(), numel(&vs), "{c:?}");
        }
    }

    /// Rewrites the `diat.config` of a checkpoint (what a corrupted or hand-edited file holds).
    fn with_config(src: &Path, dst: &Path, config: serde_json::Value) {
        let (tensors, map) = read_tensors(src).unwrap();
        let mut meta = meta_from_map(src, map).unwrap();
        meta.config = config;
        save_tensors(dst, &tensors, &meta).unwrap();
    }

    #[test]
    fn checked_config_refuses_before_allocating() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.safetensors");
        let cfg = TransformConfig::tiny(16);
        let vs = nn::VarStore::new(Device::Cpu);
        let _ = transform_net(&vs.root(), &cfg);
        save(&vs, &path, "transform", &cfg).unwrap();
        let (_, got) = checked_config::<TransformConfig>(&path, "transform").unwrap();
        assert_eq!(got, cfg);
        let bad = dir.path().join("bad.safetensors");
        for (config, want) in [
            (
                serde_json::json!({"res_blocks": 2, "width": 1e7, "image_size": 16}),
                "diat.config.width = 10000000 is out of range",
            ),
            (
                serde_json::json!({"res_blocks": 2, "width": 0.25, "image_size": 0}),
                "diat.config.image_size = 0 is out of range",
            ),
            (
                serde_json::json!({"res_blocks": 2, "width": 0.25, "image_size": 30}),
                "diat.config.image_size = 30 must be a multiple of 4",
            ),
            (
                serde_json::json!({"res_blocks": 2, "width": -1.0, "image_size": 16}),
                "diat.config.width = -1 is out of range",
            ),
            (
                serde_json::json!({"res_blocks": 3, "width": 0.25, "image_size": 16}),
                "does not belong to these weights",
            ),
            (
                serde_json::json!({"res_blocks": 2, "width": 0.5, "image_size": 16}),
                "does not belong to these weights",
            ),
            (
                serde_json::json!({"res_blocks": "x"}),
                "does not fit the transform config",
            ),
        ] {
            with_config(&path, &bad, config);
            let e = checked_config::<TransformConfig>(&bad, "transform")
                .unwrap_err()
                .to_string();
            assert!(
                e.contains(want) && e.contains("bad.safetensors"),
                "{want}: {e}"
            );
        }
        let e = checked_config::<crate::DiscriminatorConfig>(&path, "discriminator")
            .unwrap_err()
            .to_string();
        assert!(e.contains("expected \"discriminator\""), "{e}");
        // A header that claims more bytes than the file has.
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[..8].copy_from_slice(&(1u64 << 40).to_le_bytes());
        std::fs::write(&bad, &bytes).unwrap();
        let e = read_header(&bad).unwrap_err().to_string();
        assert!(e.contains("header bytes"), "{e}");
    }

    #[test]
    fn the_same_tensors_give_the_same_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = TransformConfig::tiny(16);
        let vs = nn::VarStore::new(Device::Cpu);
        let _ = transform_net(&vs.root(), &cfg);
        let (a, b) = (
            dir.path().join("a.safetensors"),
            dir.path().join("b.safetensors"),
        );
        save(&vs, &a, "transform", &cfg).unwrap();
        // The same tensors in another order, metadata built again: the same file.
        let mut tensors: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
        tensors.reverse();
        let mut meta = CheckpointMeta::new("transform", &cfg).unwrap();
        meta.extra.insert("z".into(), "1".into());
        meta.extra.insert("a".into(), "2".into());
        save_tensors(&b, &tensors, &meta).unwrap();
        meta.extra.clear();
        save_tensors(&b, &tensors, &meta).unwrap();
        let bytes = std::fs::read(&a).unwrap();
        assert_eq!(bytes, std::fs::read(&b).unwrap());
        // A valid safetensors file: header padded to 8, metadata keys sorted, loads strictly.
        let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        assert_eq!(n % 8, 0);
        let header = std::str::from_utf8(&bytes[8..8 + n]).unwrap();
        assert!(
            header.starts_with("{\"__metadata__\":{\"diat.architecture\":"),
            "{header}"
        );
        let vs2 = nn::VarStore::new(Device::Cpu);
        let _ = transform_net(&vs2.root(), &cfg);
        load(&vs2, &a, Some("transform")).unwrap();
        for (name, t) in vs.variables() {
            assert!(t.equal(&vs2.variables()[&name]), "{name}");
        }
    }
}
