//! Pipeline files: one TOML per task under `pipelines/`, inheriting a shared base
//! (`inherit = "base.toml"`, resolved relative to the file, deep-merged, child wins).
//! Unknown keys are errors; the resolved configuration is written to the run directory.

use crate::error::{Result, TrainError};
use diat_nets::losses::GanLoss;
use diat_nets::{DiscriminatorConfig, LocalEnhanceConfig, NetConfig, TransformConfig, Upsample};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The DIAT variants of §5.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Variant {
    /// Adaptive perceptual identity loss (Eq. 14) + enhancement.
    DiatA,
    /// DIAT-A without the enhancement network.
    DiatA0,
    /// VGG-Face identity loss + perceptual regularizer (Eq. 7) + enhancement.
    Diat,
    /// Attribute (GAN) loss only.
    Diat1,
    /// DIAT without perceptual regularization and enhancement.
    Diat2,
    /// DIAT without the enhancement network.
    Diat3,
}

impl Variant {
    pub fn name(self) -> &'static str {
        match self {
            Variant::DiatA => "diat-a",
            Variant::DiatA0 => "diat-a0",
            Variant::Diat => "diat",
            Variant::Diat1 => "diat1",
            Variant::Diat2 => "diat2",
            Variant::Diat3 => "diat3",
        }
    }
    /// Identity loss on the discriminator's features (DIAT-A family).
    pub fn adaptive(self) -> bool {
        matches!(self, Variant::DiatA | Variant::DiatA0)
    }
    /// Identity loss on VGG-Face features.
    pub fn vgg_identity(self) -> bool {
        matches!(self, Variant::Diat | Variant::Diat2 | Variant::Diat3)
    }
    /// The perceptual regularizer of Eq. (6) (needs g and f: stage 0).
    pub fn smooth(self) -> bool {
        matches!(self, Variant::Diat | Variant::Diat3)
    }
    /// Whether the enhancement stage runs.
    pub fn enhanced(self) -> bool {
        matches!(self, Variant::DiatA | Variant::Diat)
    }
}

/// The enhancement network kind (§3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Enhancement {
    /// Masked 4-layer FCN on (x, T(x)), Eq. (10).
    Local,
    /// Deblurring network E(B(·)), Eq. (11).
    Global,
}

/// Which features the content term of Eq. (10) uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Features {
    /// VGG-Face (the paper; needs imported weights).
    Vggface,
    /// The trained discriminator's conv features (works without VGG-Face weights).
    Discriminator,
}

/// A stage's learning-rate schedule over its steps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LrSchedule {
    /// The stage's rate throughout (the paper).
    #[default]
    Constant,
    /// Half a cosine from the rate down to 1% of it at the last step (sharper auto-encoders in
    /// short runs).
    Cosine,
}

impl LrSchedule {
    /// The rate at `step` (0-based) of a stage of `steps` steps with base rate `lr`.
    pub fn lr(self, lr: f64, step: u64, steps: u64) -> f64 {
        match self {
            LrSchedule::Constant => lr,
            LrSchedule::Cosine => {
                let p = step as f64 / steps.max(1) as f64;
                lr * (0.01 + 0.99 * 0.5 * (1.0 + (std::f64::consts::PI * p).cos()))
            }
        }
    }
}

/// The memory layout of the training batches (and so of every activation: convolutions keep
/// their input's layout).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemoryFormat {
    /// Channels-last on CUDA (cuDNN's faster NHWC kernels: PyTorch eager's DIAT-A step at batch
    /// 64 on an H200 goes from 2.46k to 3.45k img/s with it) and for bf16 on the CPU (oneDNN's
    /// bf16 kernels want NHWC), contiguous NCHW for fp32 on the CPU (those runs stay
    /// bit-reproducible with earlier results).
    #[default]
    Auto,
    ChannelsLast,
    Contiguous,
}

impl MemoryFormat {
    /// Whether batches on `device`, trained in `precision`, are laid out channels-last.
    pub fn channels_last(
        self,
        device: tch::Device,
        precision: diat_nets::autocast::Precision,
    ) -> bool {
        match self {
            MemoryFormat::Auto => {
                device.is_cuda() || precision == diat_nets::autocast::Precision::Bf16
            }
            MemoryFormat::ChannelsLast => true,
            MemoryFormat::Contiguous => false,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskSection {
    /// A task of the prepared data (`DATA/tasks/<name>`).
    pub name: String,
    /// The `diat data` output folder (holds `tasks/` and `pretrain/`).
    pub data: PathBuf,
    pub variant: Variant,
    pub enhancement: Enhancement,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainSection {
    pub seed: u64,
    pub batch: i64,
    /// "auto" (CUDA when available), "cpu" or "cuda".
    pub device: String,
    /// Steps between metric lines.
    pub log_every: u64,
    /// Steps between sample grids (0: never).
    pub sample_every: u64,
    /// Steps between checkpoints.
    pub checkpoint_every: u64,
    /// Checkpoints kept per stage.
    pub keep_checkpoints: usize,
    /// Images in the fixed sample batch.
    pub sample_images: i64,
    /// Loader worker threads.
    pub loader_threads: usize,
    /// Mirror each training image left–right with probability ½ (the horizontal-flip
    /// augmentation of StarGAN's and AttGAN's loaders; masks mirrored alike): twice the faces
    /// for small sets such as eyeglasses_remove's input set. Off by default, so that runs
    /// resolved before it existed resolve and train as they did.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub flip: bool,
    /// "auto" (channels-last on CUDA, and on the CPU when training in bf16), "channels_last" or
    /// "contiguous".
    #[serde(default)]
    pub memory_format: MemoryFormat,
    /// "fp32" (default: bit-reproducible with earlier runs), "bf16" (autocast: convolutions and
    /// matrix products in bfloat16, weights, optimizer state and losses in fp32) or "auto" (bf16
    /// where the device computes it natively: CUDA, or a CPU with AVX512-BF16 or AMX).
    #[serde(default)]
    pub precision: PrecisionSetting,
}

/// `train.precision`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PrecisionSetting {
    #[default]
    Fp32,
    Bf16,
    Auto,
}

impl PrecisionSetting {
    /// The precision training runs in on `device`.
    pub fn resolve(self, device: tch::Device) -> diat_nets::autocast::Precision {
        use diat_nets::autocast::Precision;
        match self {
            PrecisionSetting::Fp32 => Precision::Fp32,
            PrecisionSetting::Bf16 => Precision::Bf16,
            PrecisionSetting::Auto if diat_nets::layers::bf16_supported(device) => Precision::Bf16,
            PrecisionSetting::Auto => Precision::Fp32,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSection {
    pub width: f64,
    pub res_blocks: usize,
    /// Image side; must match the prepared stores.
    pub image_size: i64,
    pub d_fc_hidden: i64,
    pub d_width: f64,
    /// Channel multiplier of the local enhancement network (64 hidden channels at 1.0).
    #[serde(default = "one")]
    pub enhance_width: f64,
    /// Up-sampling of T's decoder (and g's, the global enhancement network's): `"deconv"` (the
    /// paper) or `"resize"` (nearest ×2 + conv, no checkerboard; `diat_nets::transform`).
    #[serde(default, skip_serializing_if = "diat_common::is_default")]
    pub upsample: Upsample,
    /// T (and g, the global enhancement network) predicts a change of its input.
    #[serde(default, skip_serializing_if = "diat_common::is_default")]
    pub residual: bool,
    /// σ (pixels) of the blur of T's residual change (`residual = true` only); 0: none.
    #[serde(default, skip_serializing_if = "diat_common::is_default")]
    pub residual_blur: f64,
}

fn one() -> f64 {
    1.0
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimpleStage {
    pub steps: u64,
    pub lr: f64,
    #[serde(default)]
    pub lr_schedule: LrSchedule,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdversarialStage {
    /// Iterations of Algorithm 1's while loop.
    pub steps: u64,
    pub lr_t: f64,
    pub lr_d: f64,
    pub dstep: u32,
    pub tstep: u32,
    /// λ of Eq. (7)/(14).
    pub lambda: f64,
    /// γ of Eq. (7).
    pub gamma: f64,
    pub gan: GanLoss,
    /// Applies to both rates.
    #[serde(default)]
    pub lr_schedule: LrSchedule,
    /// γ of the R1 gradient penalty on D (`losses::r1_penalty`, not in the paper): D's loss gets
    /// `γ/2 · E‖∇_a D(a)‖²` on guided images. 0 (the default, the paper) turns it off.
    #[serde(default, skip_serializing_if = "diat_common::is_default")]
    pub r1: f64,
    /// Differentiable augmentation of everything D sees in this stage (`diat_nets::augment`, not
    /// in the paper): `"color,translation,cutout"` or any subset; empty (the default) for none.
    #[serde(default, skip_serializing_if = "diat_common::is_default")]
    pub augment: diat_nets::augment::Policy,
    /// Weight of the total variation of T's change, `tv · losses::tv_change(T(x) − x)`, added to
    /// T's objective (not in the paper). 0 (the default, the paper) turns it off.
    #[serde(default, skip_serializing_if = "diat_common::is_default")]
    pub tv: f64,
    /// Decay β of an exponential moving average of T's weights (not in the paper; generator
    /// averaging as in Karras et al., *Progressive Growing of GANs*, 2018): after every iteration
    /// `T̄ ← β·T̄ + (1 − β)·T`, and the stage's result — the T the enhancement stage, `final/` and
    /// the zoo use — is T̄ (`stages/adversarial/transform_ema.safetensors`; the last iterate stays
    /// beside it as `transform.safetensors`).
    /// 0 (the default, the paper) turns it off; 0.999 averages over about the last 1,000 steps.
    #[serde(default, skip_serializing_if = "diat_common::is_default")]
    pub ema: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnhanceStage {
    pub steps: u64,
    pub lr: f64,
    /// β_0..β_2 of Eq. (10).
    pub betas: [f64; 3],
    /// σ of the blur of Eq. (11).
    pub sigma: f64,
    pub features: Features,
    #[serde(default)]
    pub lr_schedule: LrSchedule,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stages {
    /// g, Eq. (4) (DIAT with the regularizer only).
    pub reconstruct: SimpleStage,
    /// f, Eq. (5).
    pub denoise: SimpleStage,
    /// T on all kept images, Eq. (8).
    pub pretrain_t: SimpleStage,
    /// D on attribute labels, Eq. (9).
    pub pretrain_d: SimpleStage,
    pub adversarial: AdversarialStage,
    pub enhance: EnhanceStage,
}

/// A resolved pipeline.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    pub task: TaskSection,
    pub train: TrainSection,
    pub model: ModelSection,
    pub stages: Stages,
}

fn merge(base: &mut toml::Table, child: toml::Table) {
    for (k, v) in child {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(c)) => merge(b, c),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

fn load_table(path: &Path, depth: usize) -> Result<toml::Table> {
    if depth > 8 {
        return Err(TrainError::Config(format!(
            "{}: inheritance deeper than 8 files (a cycle?)",
            path.display()
        )));
    }
    let text = std::fs::read_to_string(path).map_err(|e| TrainError::io(path, e))?;
    let mut table: toml::Table = toml::from_str(&text)
        .map_err(|e| TrainError::Config(format!("{}: {e}", path.display())))?;
    match table.remove("inherit") {
        None => Ok(table),
        Some(toml::Value::String(parent)) => {
            let ppath = path.parent().unwrap_or(Path::new(".")).join(parent);
            let mut base = load_table(&ppath, depth + 1)?;
            merge(&mut base, table);
            Ok(base)
        }
        Some(_) => Err(TrainError::Config(format!(
            "{}: `inherit` must be a file name",
            path.display()
        ))),
    }
}

impl PipelineConfig {
    /// Loads a pipeline file with its inherited bases.
    pub fn load(path: &Path) -> Result<Self> {
        let table = load_table(path, 0)?;
        Self::from_table(table, &path.display().to_string())
    }

    /// Parses a resolved table (tests, overrides).
    pub fn from_table(table: toml::Table, origin: &str) -> Result<Self> {
        let mut cfg: PipelineConfig = toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| TrainError::Config(format!("{origin}: {e}")))?;
        // A bare name lives under DIAT_DATA_DIR; "./x", "../x" and absolute paths are used as is.
        let d = cfg.task.data.to_string_lossy().into_owned();
        if !(cfg.task.data.is_absolute() || d.starts_with("./") || d.starts_with("../")) {
            cfg.task.data = diat_common::Dirs::from_env().data.join(&cfg.task.data);
        }
        cfg.validate()?;
        Ok(cfg)
    }

    /// Applies `key.path=value` overrides (TOML values) on top of a pipeline file.
    pub fn load_with_overrides(path: &Path, overrides: &[String]) -> Result<Self> {
        let mut table = load_table(path, 0)?;
        for o in overrides {
            let (k, v) = o.split_once('=').ok_or_else(|| {
                TrainError::Config(format!("override '{o}': expected key.path=value"))
            })?;
            let value: toml::Value = toml::from_str::<toml::Table>(&format!("v = {v}"))
                .or_else(|_| toml::from_str::<toml::Table>(&format!("v = \"{v}\"")))
                .map_err(|e| TrainError::Config(format!("override '{o}': {e}")))?
                .remove("v")
                .expect("parsed");
            let mut t = &mut table;
            let parts: Vec<&str> = k.trim().split('.').collect();
            for p in &parts[..parts.len() - 1] {
                t = t
                    .entry(p.to_string())
                    .or_insert_with(|| toml::Value::Table(Default::default()))
                    .as_table_mut()
                    .ok_or_else(|| {
                        TrainError::Config(format!("override '{o}': {p} is not a table"))
                    })?;
            }
            t.insert(parts[parts.len() - 1].to_string(), value);
        }
        Self::from_table(table, &path.display().to_string())
    }

    /// T's config (also g's and the global enhancement network's).
    pub fn transform_config(&self) -> TransformConfig {
        TransformConfig {
            res_blocks: self.model.res_blocks,
            width: self.model.width,
            image_size: self.model.image_size,
            upsample: self.model.upsample,
            residual: self.model.residual,
            residual_blur: self.model.residual_blur,
        }
    }

    /// D's config.
    pub fn disc_config(&self) -> DiscriminatorConfig {
        DiscriminatorConfig {
            width: self.model.d_width,
            image_size: self.model.image_size,
            fc_hidden: self.model.d_fc_hidden,
            ..Default::default()
        }
    }

    /// The local enhancement network's config.
    pub fn local_enhance_config(&self) -> LocalEnhanceConfig {
        LocalEnhanceConfig {
            image_size: self.model.image_size,
            width: self.model.enhance_width,
            ..Default::default()
        }
    }

    /// Checks every key against its allowed range (errors name the key, the value and the
    /// range), then estimates the memory of the largest stage before anything is allocated.
    pub fn validate(&self) -> Result<()> {
        self.check_ranges()
            .and_then(|()| self.check_memory())
            .map_err(|e| {
                TrainError::Config(
                    e.to_string()
                        .trim_start_matches("invalid configuration: ")
                        .into(),
                )
            })
    }

    fn check_ranges(&self) -> diat_nets::Result<()> {
        use diat_nets::limits::{in_range, multiple_in_range};
        let (t, m, st) = (&self.train, &self.model, &self.stages);
        in_range("train.batch", t.batch, 1, 4096)?;
        in_range("train.sample_images", t.sample_images, 1, 256)?;
        in_range("train.loader_threads", t.loader_threads, 0, 256)?;
        in_range("train.checkpoint_every", t.checkpoint_every, 1, u64::MAX)?;
        in_range("train.keep_checkpoints", t.keep_checkpoints, 1, 1000)?;
        if !["auto", "cpu", "cuda"].contains(&t.device.as_str()) {
            return Err(diat_nets::NetsError::Config(format!(
                "train.device = {:?} is not one of auto, cpu, cuda",
                t.device
            )));
        }
        multiple_in_range("model.image_size", m.image_size, 16, 16, 2048)?;
        let model_key = |f: &str| match f {
            "image_size" => "model.image_size".to_string(),
            other => format!("model.{other}"),
        };
        self.transform_config().check(&model_key)?;
        self.disc_config().check(&|f| match f {
            "width" => "model.d_width".into(),
            "fc_hidden" => "model.d_fc_hidden".into(),
            other => model_key(other),
        })?;
        self.local_enhance_config().check(&|f| match f {
            "width" => "model.enhance_width".into(),
            other => model_key(other),
        })?;
        const MAX_STEPS: u64 = 1_000_000_000;
        for (name, s) in [
            ("reconstruct", &st.reconstruct),
            ("denoise", &st.denoise),
            ("pretrain_t", &st.pretrain_t),
            ("pretrain_d", &st.pretrain_d),
        ] {
            in_range(&format!("stages.{name}.steps"), s.steps, 0, MAX_STEPS)?;
            in_range(&format!("stages.{name}.lr"), s.lr, 1e-12, 10.0)?;
        }
        let a = &st.adversarial;
        in_range("stages.adversarial.steps", a.steps, 0, MAX_STEPS)?;
        in_range("stages.adversarial.lr_t", a.lr_t, 1e-12, 10.0)?;
        in_range("stages.adversarial.lr_d", a.lr_d, 1e-12, 10.0)?;
        in_range("stages.adversarial.r1", a.r1, 0.0, 1e6)?;
        in_range("stages.adversarial.tv", a.tv, 0.0, 1e6)?;
        in_range("stages.adversarial.ema", a.ema, 0.0, 0.999_999)?;
        in_range("stages.adversarial.dstep", a.dstep, 1, 100)?;
        in_range("stages.adversarial.tstep", a.tstep, 1, 100)?;
        in_range("stages.adversarial.lambda", a.lambda, 0.0, 1e9)?;
        in_range("stages.adversarial.gamma", a.gamma, 0.0, 1e9)?;
        let e = &st.enhance;
        in_range("stages.enhance.steps", e.steps, 0, MAX_STEPS)?;
        in_range("stages.enhance.lr", e.lr, 1e-12, 10.0)?;
        for (i, b) in e.betas.iter().enumerate() {
            in_range(&format!("stages.enhance.betas[{i}]"), *b, 0.0, 1e9)?;
        }
        diat_nets::blur::check_sigma("stages.enhance.sigma", e.sigma, m.image_size)
    }

    /// A lower bound of the memory of an adversarial step (the largest stage): the networks'
    /// parameters with their gradients and Adam moments, T's activations once and D's four
    /// times (real and transformed batches, the identity features of x and T(x)) per image.
    pub fn memory_estimate(&self) -> f64 {
        let (t, d, e) = (
            self.transform_config(),
            self.disc_config(),
            self.local_enhance_config(),
        );
        let params = t.state_elements() + d.state_elements() + e.state_elements();
        let per_image = t.activation_elements() + 4.0 * d.activation_elements();
        4.0 * (4.0 * params + self.train.batch as f64 * per_image)
    }

    fn check_memory(&self) -> diat_nets::Result<()> {
        let because = format!(
            "train.batch = {}, model.image_size = {}, model.width = {}, model.d_width = {}, \
             model.res_blocks = {}, model.d_fc_hidden = {}",
            self.train.batch,
            self.model.image_size,
            self.model.width,
            self.model.d_width,
            self.model.res_blocks,
            self.model.d_fc_hidden
        );
        // On a GPU the activations live in device memory; the host still holds the parameters.
        let bytes = if self.device().is_cuda() {
            let (t, d) = (self.transform_config(), self.disc_config());
            16.0 * (t.state_elements() + d.state_elements())
        } else {
            self.memory_estimate()
        };
        diat_nets::limits::check_memory("this pipeline", bytes, &because)
    }

    /// The resolved configuration as TOML (written to the run directory).
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_default()
    }

    pub fn device(&self) -> tch::Device {
        match self.train.device.as_str() {
            "cpu" => tch::Device::Cpu,
            "cuda" => tch::Device::Cuda(0),
            _ => tch::Device::cuda_if_available(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pipelines() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../pipelines")
    }

    fn with(sets: &[&str]) -> Result<PipelineConfig> {
        let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
        PipelineConfig::load_with_overrides(&pipelines().join("demo/mouth_open.toml"), &sets)
    }

    #[test]
    fn every_pipeline_of_the_repository_validates() {
        for f in [
            "mouth_open",
            "mouth_close",
            "eyeglasses_remove",
            "male_to_female",
            "older_to_younger",
            "demo/mouth_open",
            "smoke/mouth_open",
        ] {
            PipelineConfig::load(&pipelines().join(format!("{f}.toml")))
                .unwrap_or_else(|e| panic!("{f}: {e}"));
        }
    }

    #[test]
    fn out_of_range_keys_are_named_with_value_and_range() {
        for (set, want) in [
            (
                "model.width=1e7",
                "model.width = 10000000 is out of range (allowed 0.001..=16)",
            ),
            ("model.width=-1", "model.width = -1 is out of range"),
            ("model.width=nan", "model.width = NaN is out of range"),
            (
                "model.d_fc_hidden=-1",
                "model.d_fc_hidden = -1 is out of range",
            ),
            ("model.d_width=0", "model.d_width = 0 is out of range"),
            (
                "model.enhance_width=100",
                "model.enhance_width = 100 is out of range",
            ),
            ("model.image_size=0", "model.image_size = 0 is out of range"),
            (
                "model.image_size=30",
                "model.image_size = 30 must be a multiple of 16",
            ),
            (
                "model.res_blocks=1000",
                "model.res_blocks = 1000 is out of range",
            ),
            (
                "train.batch=1000000000",
                "train.batch = 1000000000 is out of range (allowed 1..=4096)",
            ),
            ("train.batch=0", "train.batch = 0 is out of range"),
            (
                "train.sample_images=-3",
                "train.sample_images = -3 is out of range",
            ),
            (
                "train.checkpoint_every=0",
                "train.checkpoint_every = 0 is out of range",
            ),
            (
                "train.device=\"tpu\"",
                "train.device = \"tpu\" is not one of",
            ),
            (
                "stages.adversarial.lr_t=-0.1",
                "stages.adversarial.lr_t = -0.1 is out of range",
            ),
            (
                "stages.adversarial.lambda=inf",
                "stages.adversarial.lambda = inf is out of range",
            ),
            (
                "stages.adversarial.dstep=0",
                "stages.adversarial.dstep = 0 is out of range",
            ),
            (
                "stages.enhance.sigma=0",
                "stages.enhance.sigma = 0 is out of range",
            ),
            (
                "stages.enhance.sigma=40",
                "stages.enhance.sigma = 40 is out of range",
            ),
            (
                "stages.enhance.betas=[1, -1, 0]",
                "stages.enhance.betas[1] = -1 is out of range",
            ),
        ] {
            let e = with(&[set]).unwrap_err().to_string();
            assert!(e.contains(want), "{set}: {e}");
        }
        // Unknown keys and wrong types are refused by name too.
        let e = with(&["model.widht=1"]).unwrap_err().to_string();
        assert!(e.contains("widht"), "{e}");
        let e = with(&["train.batch=\"x\""]).unwrap_err().to_string();
        assert!(e.contains("batch"), "{e}");
    }

    #[test]
    fn memory_is_estimated_before_allocating() {
        // Every key in range, the product not: refused with the keys that drive it.
        let e = with(&[
            "train.batch=4096",
            "model.image_size=2048",
            "model.width=16",
            "train.device=\"cpu\"",
        ])
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("needs at least") && e.contains("train.batch = 4096"),
            "{e}"
        );
        let small = with(&[]).unwrap();
        let est = small.memory_estimate();
        assert!(est > 1e6 && est < 2e9, "demo pipeline: {est} bytes");
    }
}
