//! A trained model for inference: the transform network T and, when present, its enhancement
//! network — `E(x, T(x))` (local, §3.2) or `E(B(T(x)))` (global, Eq. 11) — loaded from
//! safetensors checkpoints (a run's `final/` folder, or a single transform file).

use crate::error::{Result, TrainError};
use diat_nets::checkpoint;
use diat_nets::{LocalEnhanceConfig, LocalEnhanceNet, TransformConfig, TransformNet};
use std::path::{Path, PathBuf};
use tch::{Device, Tensor, nn, nn::ModuleT};

enum Enhancer {
    /// E(x, T(x)), composited into the input through the attribute region when the model has one.
    Local(LocalEnhanceNet, Option<Tensor>),
    Global(TransformNet, f64),
}

/// T (+ E) on one device, frozen.
pub struct Model {
    t: TransformNet,
    e: Option<Enhancer>,
    pub image_size: i64,
    pub device: Device,
    pub source: PathBuf,
    /// The task it was trained for (`task.name` of the run's `pipeline.toml`), when known.
    pub task: Option<String>,
    _vs: Vec<nn::VarStore>,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Model({}, {}px, enhancement: {})",
            self.source.display(),
            self.image_size,
            self.enhancement()
        )
    }
}

impl Model {
    /// Loads from a folder holding `transform.safetensors` (and optionally `enhance.safetensors`
    /// and `pipeline.toml` for the blur σ), or from a transform checkpoint file.
    ///
    /// Nothing is allocated before the folder passed its completeness check (a run's `final/`
    /// must carry a valid `complete.json`) and every network's config is checked against its
    /// limits and against the size of the weights it came with.
    pub fn load(path: &Path, device: Device) -> Result<Self> {
        let (tpath, epath, pipeline) = if path.is_dir() {
            diat_common::complete::check_folder(path)
                .map_err(|e| TrainError::Config(e.to_string()))?;
            let e = path.join("enhance.safetensors");
            (
                path.join("transform.safetensors"),
                e.exists().then_some(e),
                Some(path.join("pipeline.toml")),
            )
        } else {
            (path.to_path_buf(), None, None)
        };
        if !tpath.exists() {
            return Err(TrainError::Config(format!(
                "no transform network at {}",
                tpath.display()
            )));
        }
        let mut stores = Vec::new();
        let (_, tcfg) = checkpoint::checked_config::<TransformConfig>(&tpath, "transform")?;
        let mut vs = nn::VarStore::new(device);
        let t = diat_nets::transform_net(&vs.root(), &tcfg);
        checkpoint::load(&vs, &tpath, Some("transform"))?;
        vs.freeze();
        stores.push(vs);
        // The pipeline beside the weights: absent is fine (hand-made folders), unreadable is not.
        let pipeline = match pipeline.filter(|p| p.exists()) {
            None => None,
            Some(p) => {
                let text = std::fs::read_to_string(&p).map_err(|e| TrainError::io(&p, e))?;
                Some(text.parse::<toml::Table>().map_err(|e| {
                    TrainError::Config(format!("{}: not a pipeline file: {e}", p.display()))
                })?)
            }
        };
        let sigma = pipeline
            .as_ref()
            .and_then(|t| t.get("stages")?.get("enhance")?.get("sigma")?.as_float())
            .unwrap_or(diat_nets::blur::PAPER_SIGMA);
        diat_nets::blur::check_sigma("stages.enhance.sigma", sigma, tcfg.image_size)
            .map_err(|e| TrainError::Config(format!("{}/pipeline.toml: {e}", path.display())))?;
        let task = pipeline
            .as_ref()
            .and_then(|t| Some(t.get("task")?.get("name")?.as_str()?.to_string()));
        let e = match epath {
            None => None,
            Some(ep) => {
                let meta = checkpoint::read_meta(&ep)?;
                let mut vs = nn::VarStore::new(device);
                let e = match meta.architecture.as_str() {
                    "local_enhance" => {
                        let (_, c) =
                            checkpoint::checked_config::<LocalEnhanceConfig>(&ep, "local_enhance")?;
                        let region = match path.join("region.safetensors") {
                            r if path.is_dir() && r.is_file() => {
                                Some(load_region(&r, tcfg.image_size, device)?)
                            }
                            _ => None,
                        };
                        Enhancer::Local(diat_nets::local_enhance_net(&vs.root(), &c), region)
                    }
                    "global_enhance" => {
                        let (_, c) =
                            checkpoint::checked_config::<TransformConfig>(&ep, "global_enhance")?;
                        if c.image_size != tcfg.image_size {
                            return Err(TrainError::Config(format!(
                                "{}: enhancement network for {} px images, transform for {} px",
                                ep.display(),
                                c.image_size,
                                tcfg.image_size
                            )));
                        }
                        Enhancer::Global(diat_nets::global_enhance_net(&vs.root(), &c), sigma)
                    }
                    other => {
                        return Err(TrainError::Config(format!(
                            "{}: unexpected architecture {other}",
                            ep.display()
                        )));
                    }
                };
                checkpoint::load(&vs, &ep, Some(meta.architecture.as_str()))?;
                vs.freeze();
                stores.push(vs);
                Some(e)
            }
        };
        Ok(Self {
            t,
            e,
            image_size: tcfg.image_size,
            device,
            source: path.to_path_buf(),
            task,
            _vs: stores,
        })
    }

    pub fn enhancement(&self) -> &'static str {
        match self.e {
            None => "none",
            Some(Enhancer::Local(_, Some(_))) => "masked local",
            Some(Enhancer::Local(_, None)) => "local",
            Some(Enhancer::Global(..)) => "global",
        }
    }

    /// The attribute region of a masked local model (`1×1×S×S` in [0, 1]): where the edit may
    /// change the face.
    pub fn region(&self) -> Option<&Tensor> {
        match &self.e {
            Some(Enhancer::Local(_, Some(r))) => Some(r),
            _ => None,
        }
    }

    /// `x`: N×3×S×S in [-1, 1] on this model's device; returns (T(x), enhanced or T(x)).
    pub fn apply(&self, x: &Tensor) -> (Tensor, Tensor) {
        tch::no_grad(|| {
            let tx = self.t.forward_t(x, false);
            let out = match &self.e {
                None => tx.shallow_clone(),
                Some(Enhancer::Local(e, None)) => e.forward(x, &tx),
                Some(Enhancer::Local(e, Some(r))) => r * e.forward(x, &tx) + (1.0 - r) * x,
                Some(Enhancer::Global(e, sigma)) => {
                    e.forward_t(&diat_nets::blur::gaussian_blur(&tx, *sigma), false)
                }
            };
            (tx, out.clamp(-1.0, 1.0))
        })
    }
}

/// The attribute region of a local model (`region.safetensors`, 1×1×S×S in [0, 1]).
fn load_region(path: &Path, size: i64, device: Device) -> Result<Tensor> {
    let (tensors, _) = checkpoint::read_tensors(path)?;
    let r = tensors
        .into_iter()
        .find(|(n, _)| n == "region")
        .map(|(_, t)| t)
        .ok_or_else(|| TrainError::Config(format!("{}: no tensor named region", path.display())))?;
    if r.size() != [1, 1, size, size] {
        return Err(TrainError::Config(format!(
            "{}: region of shape {:?}, expected [1, 1, {size}, {size}] for this model",
            path.display(),
            r.size()
        )));
    }
    Ok(r.to_kind(tch::Kind::Float).to_device(device))
}
