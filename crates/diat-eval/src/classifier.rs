//! Training and using the attribute classifier (`diat_nets::attr_classifier`) on real aligned
//! faces: data from a `diat align` folder with CelebA's labels, split by identity
//! (`diat_celeba::split`), positives weighted for rare attributes, the checkpoint with the best
//! mean balanced accuracy on the validation identities kept, and a model card with held-out
//! (test identities) accuracy and balanced accuracy per attribute.

use crate::error::{EvalError, Result};
use crate::faces::{Labels, Rejected, check_attributes, load_aligned, read_aligned_dir};
use crate::metrics::{AttributeScore, Counts};
use diat_align::CropWindow;
use diat_align::image::RgbImage;
use diat_celeba::split::Split;
use diat_common::Progress;
use diat_nets::attr_classifier::{
    ARCHITECTURE, AttrClassifier, AttrClassifierConfig, attr_classifier,
};
use diat_nets::checkpoint;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use tch::{Device, Kind, Reduction, Tensor, nn, nn::OptimizerConfig};

/// The training window of an aligned image at `size` (CelebA's 178×178 central window, as the
/// DIAT crops).
pub fn window(size: i64) -> CropWindow {
    CropWindow {
        size: size as u32,
        ..CropWindow::default()
    }
}

/// Labelled crops in memory.
#[derive(Debug)]
pub struct ClassifierData {
    pub size: i64,
    pub attributes: Vec<String>,
    pub ids: Vec<String>,
    pub identities: Vec<u32>,
    pub splits: Vec<Split>,
    /// `[N, S, S, 3]` uint8.
    pub pixels: Tensor,
    /// `[N, A]` in {0, 1}.
    pub labels: Tensor,
}

/// What went into [`ClassifierData`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DataReport {
    pub source: String,
    pub photos: usize,
    pub aligned_faces: usize,
    pub used: usize,
    /// Photos `diat align` found no face in, or could not read.
    pub not_aligned: usize,
    pub unlabelled: usize,
    pub below_coverage: usize,
    pub unreadable: usize,
    pub min_coverage: f32,
    pub split_seed: u64,
    /// Faces and identities per split.
    pub splits: BTreeMap<String, SplitCount>,
    /// Positives per attribute and split.
    pub positives: BTreeMap<String, BTreeMap<String, u64>>,
    #[serde(skip)]
    pub rejected: Vec<Rejected>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SplitCount {
    pub faces: usize,
    pub identities: usize,
}

/// Loads every labelled face of a `diat align` folder at `size`.
pub fn load_data(
    aligned_dir: &Path,
    labels: &Labels,
    attributes: &[String],
    size: i64,
    split_seed: u64,
    min_coverage: f32,
) -> Result<(ClassifierData, DataReport)> {
    let attributes = check_attributes(attributes)?;
    let (doc, keep, not_aligned) = read_aligned_dir(aligned_dir)?;
    let progress = Progress::new("loading aligned faces", Some(keep.len() as u64));
    let win = window(size);
    let loaded: Vec<std::result::Result<(String, RgbImage, f32), Rejected>> = keep
        .par_iter()
        .map(|&i| {
            let r = load_aligned(aligned_dir, &doc, i).and_then(|f| {
                let c = f.crop(win)?;
                Ok((f.id, c, f.coverage))
            });
            progress.inc(1);
            r.map_err(|e| Rejected {
                source: doc.faces[i].photo.clone(),
                reason: e.to_string(),
            })
        })
        .collect();
    progress.finish();
    let mut report = DataReport {
        source: aligned_dir.display().to_string(),
        photos: doc.photos.len(),
        aligned_faces: keep.len(),
        used: 0,
        not_aligned: not_aligned.len(),
        unlabelled: 0,
        below_coverage: 0,
        unreadable: 0,
        min_coverage,
        split_seed,
        splits: BTreeMap::new(),
        positives: BTreeMap::new(),
        rejected: not_aligned,
    };
    let a = attributes.len();
    let (mut ids, mut identities, mut splits) = (Vec::new(), Vec::new(), Vec::new());
    let (mut pixels, mut label_vals) = (Vec::new(), Vec::new());
    let mut idents: BTreeMap<Split, BTreeSet<u32>> = BTreeMap::new();
    for r in loaded {
        let (id, crop, coverage) = match r {
            Ok(v) => v,
            Err(rej) => {
                report.unreadable += 1;
                report.rejected.push(rej);
                continue;
            }
        };
        let (Some(identity), Some(split)) = (labels.identity(&id), labels.split(&id, split_seed))
        else {
            report.unlabelled += 1;
            report.rejected.push(Rejected {
                source: id,
                reason: "no CelebA identity/attributes for this id".into(),
            });
            continue;
        };
        if coverage < min_coverage {
            report.below_coverage += 1;
            continue;
        }
        let mut row = Vec::with_capacity(a);
        for name in &attributes {
            let v = labels.attribute(&id, name).unwrap_or(false);
            row.push(if v { 1f32 } else { 0f32 });
            if v {
                *report
                    .positives
                    .entry(name.clone())
                    .or_default()
                    .entry(split.name().into())
                    .or_default() += 1;
            }
        }
        idents.entry(split).or_default().insert(identity);
        let e = report.splits.entry(split.name().into()).or_default();
        e.faces += 1;
        ids.push(id);
        identities.push(identity);
        splits.push(split);
        pixels.extend_from_slice(crop.as_raw());
        label_vals.extend(row);
    }
    for (s, set) in idents {
        report.splits.entry(s.name().into()).or_default().identities = set.len();
    }
    report.used = ids.len();
    if ids.is_empty() {
        return Err(EvalError::Input {
            path: aligned_dir.into(),
            problem: "no labelled aligned face".into(),
        });
    }
    let n = ids.len() as i64;
    let data = ClassifierData {
        size,
        attributes,
        pixels: Tensor::from_slice(&pixels).view([n, size, size, 3]),
        labels: Tensor::from_slice(&label_vals).view([n, a as i64]),
        ids,
        identities,
        splits,
    };
    Ok((data, report))
}

impl ClassifierData {
    /// Row indices of `split`.
    pub fn indices(&self, split: Split) -> Vec<i64> {
        (0..self.ids.len() as i64)
            .filter(|&i| self.splits[i as usize] == split)
            .collect()
    }
}

/// uint8 `[N, S, S, 3]` → float `[N, 3, S, S]` in [-1, 1] on `device`.
pub fn to_input(pixels: &Tensor, device: Device) -> Tensor {
    pixels
        .to_device(device)
        .permute([0, 3, 1, 2])
        .to_kind(Kind::Float)
        / 127.5
        - 1.0
}

/// Training settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    pub epochs: usize,
    pub batch: usize,
    /// Peak learning rate of AdamW (cosine decay to 1 % over the run).
    pub lr: f64,
    pub weight_decay: f64,
    /// Weight of positives: (negatives / positives)^power among the training faces (0: none,
    /// 1: fully balanced, 0.5: the square root).
    pub positive_weight_power: f64,
    /// Largest random shift of the augmentation, in pixels at the input size.
    pub shift: i64,
    pub seed: u64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            epochs: 24,
            batch: 64,
            lr: 2e-3,
            weight_decay: 5e-4,
            positive_weight_power: 0.5,
            shift: 4,
            seed: 1,
        }
    }
}

/// One epoch's log line.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EpochLog {
    pub epoch: usize,
    pub loss: f64,
    pub lr: f64,
    pub val_mean_balanced_accuracy: f64,
    pub val_mean_accuracy: f64,
    pub seconds: f64,
}

/// What training produced.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainReport {
    pub best_epoch: usize,
    pub epochs: Vec<EpochLog>,
    pub val: Vec<AttributeScore>,
    pub test: Vec<AttributeScore>,
    pub train_faces: usize,
    pub wall_seconds: f64,
    pub train_images_per_second: f64,
    pub positive_weights: BTreeMap<String, f64>,
}

/// Random flips, shifts (edge-replicating pad and crop), gain/offset jitter and, on a quarter of
/// the faces, a ×2 down-and-up resampling (generated faces are often softer than photos).
fn augment(x: &Tensor, shift: i64) -> Result<Tensor> {
    let s = x.size();
    let (b, size) = (s[0], s[2]);
    let opts = (Kind::Float, x.device());
    let flip = Tensor::rand([b, 1, 1, 1], opts).lt(0.5);
    let x = x.flip([3]).where_self(&flip, x);
    let x = if shift > 0 {
        let padded = x.replication_pad2d([shift, shift, shift, shift]);
        let offs = Vec::<i64>::try_from(Tensor::randint(
            2 * shift + 1,
            [b * 2],
            (Kind::Int64, Device::Cpu),
        ))?;
        let crops: Vec<Tensor> = (0..b as usize)
            .map(|i| {
                padded
                    .get(i as i64)
                    .narrow(1, offs[2 * i], size)
                    .narrow(2, offs[2 * i + 1], size)
            })
            .collect();
        Tensor::stack(&crops, 0)
    } else {
        x
    };
    let gain = Tensor::rand([b, 1, 1, 1], opts) * 0.4 + 0.8;
    let bias = Tensor::rand([b, 1, 1, 1], opts) * 0.2 - 0.1;
    let x = (x * gain + bias).clamp(-1.0, 1.0);
    let soft = x
        .avg_pool2d([2, 2], [2, 2], [0, 0], false, true, None::<i64>)
        .upsample_bilinear2d([size, size], false, None, None);
    let pick = Tensor::rand([b, 1, 1, 1], opts).lt(0.25);
    Ok(soft.where_self(&pick, &x))
}

/// Per-attribute confusion counts of `net` on rows `idx` (threshold 0.5).
pub fn evaluate(
    net: &AttrClassifier,
    data: &ClassifierData,
    idx: &[i64],
    device: Device,
) -> Result<Vec<AttributeScore>> {
    let a = data.attributes.len();
    let mut counts = vec![Counts::default(); a];
    for chunk in idx.chunks(256) {
        let i = Tensor::from_slice(chunk);
        let x = to_input(&data.pixels.index_select(0, &i), device);
        let p = Vec::<f32>::try_from(net.probabilities(&x).to_device(Device::Cpu).flatten(0, -1))?;
        let y = Vec::<f32>::try_from(data.labels.index_select(0, &i).flatten(0, -1))?;
        for (k, (pv, yv)) in p.iter().zip(&y).enumerate() {
            counts[k % a].add(*yv > 0.5, *pv > 0.5);
        }
    }
    Ok(data
        .attributes
        .iter()
        .zip(counts)
        .map(|(n, c)| AttributeScore::new(n, c))
        .collect())
}

fn mean(scores: &[AttributeScore], f: impl Fn(&AttributeScore) -> f64) -> f64 {
    scores.iter().map(f).sum::<f64>() / scores.len().max(1) as f64
}

/// Trains a classifier on the training identities of `data`; writes the best checkpoint (by mean
/// balanced accuracy over the validation identities) to `out` and returns the report with the
/// held-out (test identities) scores of that checkpoint.
pub fn train(
    data: &ClassifierData,
    net_cfg: &AttrClassifierConfig,
    cfg: &TrainConfig,
    device: Device,
    out: &Path,
) -> Result<TrainReport> {
    net_cfg.validate()?;
    if net_cfg.attributes != data.attributes || net_cfg.image_size != data.size {
        return Err(EvalError::Config(
            "classifier config and data disagree on attributes or size".into(),
        ));
    }
    if cfg.epochs == 0
        || cfg.batch == 0
        || cfg.lr.is_nan()
        || cfg.lr <= 0.0
        || !(0..=16).contains(&cfg.shift)
    {
        return Err(EvalError::Config(format!("training settings {cfg:?}")));
    }
    let train_idx = data.indices(Split::Train);
    let val_idx = data.indices(Split::Val);
    let test_idx = data.indices(Split::Test);
    if train_idx.is_empty() || val_idx.is_empty() {
        return Err(EvalError::Config(
            "no training or no validation identity among the faces".into(),
        ));
    }
    tch::manual_seed(cfg.seed as i64);
    let vs = nn::VarStore::new(device);
    let net = attr_classifier(&vs.root(), net_cfg);
    let mut opt = nn::AdamW::default()
        .wd(cfg.weight_decay)
        .build(&vs, cfg.lr)?;

    // Positive weights from the training faces.
    let ti = Tensor::from_slice(&train_idx);
    let pos = data
        .labels
        .index_select(0, &ti)
        .sum_dim_intlist(0, false, Kind::Float);
    let pos_v = Vec::<f32>::try_from(pos)?;
    let n_train = train_idx.len() as f64;
    let weights: Vec<f32> = pos_v
        .iter()
        .map(|&p| {
            let p = f64::from(p).max(1.0);
            ((n_train - p).max(1.0) / p).powf(cfg.positive_weight_power) as f32
        })
        .collect();
    let pos_weight = Tensor::from_slice(&weights).to_device(device);

    let steps_per_epoch = train_idx.len().div_ceil(cfg.batch);
    let total = (steps_per_epoch * cfg.epochs) as u64;
    let progress = Progress::new("classifier training", Some(total));
    let start = std::time::Instant::now();
    let tmp = out.with_extension("best.partial");
    let mut best = (f64::NEG_INFINITY, 0usize);
    let mut epochs = Vec::new();
    let mut step = 0u64;
    for epoch in 1..=cfg.epochs {
        let t0 = std::time::Instant::now();
        let perm = Vec::<i64>::try_from(Tensor::randperm(
            train_idx.len() as i64,
            (Kind::Int64, Device::Cpu),
        ))?;
        let (mut loss_sum, mut batches) = (0f64, 0usize);
        for chunk in perm.chunks(cfg.batch) {
            let rows: Vec<i64> = chunk.iter().map(|&k| train_idx[k as usize]).collect();
            let i = Tensor::from_slice(&rows);
            let x = augment(
                &to_input(&data.pixels.index_select(0, &i), device),
                cfg.shift,
            )?;
            let y = data.labels.index_select(0, &i).to_device(device);
            opt.set_lr(opt_lr(cfg, step, total));
            let logits = net.forward_t(&x, true);
            let loss = logits.binary_cross_entropy_with_logits(
                &y,
                None::<Tensor>,
                Some(pos_weight.shallow_clone()),
                Reduction::Mean,
            );
            opt.backward_step(&loss);
            loss_sum += loss.double_value(&[]);
            batches += 1;
            step += 1;
            progress.inc(1);
        }
        let val = evaluate(&net, data, &val_idx, device)?;
        let vb = mean(&val, |s| s.balanced_accuracy);
        let log = EpochLog {
            epoch,
            loss: loss_sum / batches.max(1) as f64,
            lr: opt_lr(cfg, step, total),
            val_mean_balanced_accuracy: vb,
            val_mean_accuracy: mean(&val, |s| s.accuracy),
            seconds: t0.elapsed().as_secs_f64(),
        };
        tracing::info!(
            "classifier epoch {epoch}/{}: loss {:.4}, val mean balanced accuracy {:.4}, accuracy {:.4}",
            cfg.epochs,
            log.loss,
            vb,
            log.val_mean_accuracy
        );
        progress.set_message(format!("epoch {epoch}: val bal. acc {:.3}", vb));
        epochs.push(log);
        if vb > best.0 {
            best = (vb, epoch);
            checkpoint::save(&vs, &tmp, ARCHITECTURE, net_cfg)?;
        }
    }
    progress.finish();
    let wall = start.elapsed().as_secs_f64();
    // The best epoch's weights, scored on validation and on the held-out identities.
    let mut best_vs = nn::VarStore::new(device);
    let best_net = attr_classifier(&best_vs.root(), net_cfg);
    checkpoint::load(&best_vs, &tmp, Some(ARCHITECTURE))?;
    best_vs.freeze();
    let val = evaluate(&best_net, data, &val_idx, device)?;
    let test = if test_idx.is_empty() {
        Vec::new()
    } else {
        evaluate(&best_net, data, &test_idx, device)?
    };
    std::fs::rename(&tmp, out).map_err(|source| EvalError::Io {
        path: out.into(),
        source,
    })?;
    Ok(TrainReport {
        best_epoch: best.1,
        epochs,
        val,
        test,
        train_faces: train_idx.len(),
        wall_seconds: wall,
        train_images_per_second: (train_idx.len() * cfg.epochs) as f64 / wall,
        positive_weights: data
            .attributes
            .iter()
            .cloned()
            .zip(weights.iter().map(|&w| f64::from(w)))
            .collect(),
    })
}

/// The rate at `step`: the training stages' cosine schedule (`diat_train::config::LrSchedule`).
fn opt_lr(cfg: &TrainConfig, step: u64, total: u64) -> f64 {
    diat_train::config::LrSchedule::Cosine.lr(cfg.lr, step, total)
}

/// A trained classifier, ready to score images.
#[derive(Debug)]
pub struct Classifier {
    pub net: AttrClassifier,
    _vs: nn::VarStore,
    pub device: Device,
    pub source: PathBuf,
}

/// The classifier the repository ships (`zoo/eval/attr_classifier_v1.safetensors`, its model
/// card beside it), built into the binary so `diat eval real` works offline anywhere.
pub const SHIPPED: &[u8] = include_bytes!("../../../zoo/eval/attr_classifier_v1.safetensors");
/// How the built-in classifier is named in reports.
pub const SHIPPED_NAME: &str = "attr_classifier_v1 (built in; zoo/eval/attr_classifier_v1.md)";

/// `$DIAT_CLASSIFIER` when set (a classifier file to use instead of the built-in one).
pub fn override_path() -> Option<PathBuf> {
    std::env::var_os("DIAT_CLASSIFIER")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

impl Classifier {
    /// Loads a classifier checkpoint file (strict names and shapes, architecture checked).
    pub fn load(path: &Path, device: Device) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|source| EvalError::Io {
            path: path.into(),
            source,
        })?;
        Self::from_bytes(path, &bytes, device)
    }

    /// The built-in classifier ([`SHIPPED`]).
    pub fn shipped(device: Device) -> Result<Self> {
        Self::from_bytes(Path::new(SHIPPED_NAME), SHIPPED, device)
    }

    /// `$DIAT_CLASSIFIER`, else the built-in one.
    pub fn load_default(device: Device) -> Result<Self> {
        match override_path() {
            Some(p) => Self::load(&p, device),
            None => Self::shipped(device),
        }
    }

    /// A classifier checkpoint in memory; `name` names it in errors and reports.
    pub fn from_bytes(name: &Path, bytes: &[u8], device: Device) -> Result<Self> {
        let (tensors, meta) = checkpoint::read_tensors_from_bytes(name, bytes)?;
        let meta = checkpoint::meta_from_map(name, meta)?;
        if meta.architecture != ARCHITECTURE {
            return Err(EvalError::Input {
                path: name.into(),
                problem: format!(
                    "holds a {} network, not an attribute classifier",
                    meta.architecture
                ),
            });
        }
        let cfg: AttrClassifierConfig = meta.config(name)?;
        cfg.validate()?;
        let mut vs = nn::VarStore::new(device);
        let net = attr_classifier(&vs.root(), &cfg);
        checkpoint::copy_into(&vs, name, tensors)?;
        vs.freeze();
        Ok(Self {
            net,
            _vs: vs,
            device,
            source: name.into(),
        })
    }

    pub fn config(&self) -> &AttrClassifierConfig {
        &self.net.config
    }

    /// Probability of attribute `name` for each image (any size: resized to the classifier's
    /// input with the training crops' resizer).
    pub fn probability(&self, images: &[RgbImage], name: &str) -> Result<Vec<f64>> {
        let k = self.config().index_of(name).ok_or_else(|| {
            EvalError::Config(format!(
                "the classifier knows {:?}, not {name}",
                self.config().attributes
            ))
        })?;
        let s = self.config().image_size as u32;
        let mut out = Vec::with_capacity(images.len());
        for chunk in images.chunks(128) {
            let mut bytes = Vec::with_capacity(chunk.len() * (s * s * 3) as usize);
            for img in chunk {
                bytes.extend_from_slice(diat_align::resize(img, s, s)?.as_raw());
            }
            let x = Tensor::from_slice(&bytes).view([chunk.len() as i64, s as i64, s as i64, 3]);
            let p = self
                .net
                .probabilities(&to_input(&x, self.device))
                .select(1, k as i64);
            out.extend(
                Vec::<f32>::try_from(p.to_device(Device::Cpu))?
                    .into_iter()
                    .map(f64::from),
            );
        }
        Ok(out)
    }
}

/// The model card of a trained classifier: what it was trained on, how, and how well it does on
/// identities it never saw.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelCard {
    pub name: String,
    pub file: String,
    pub sha256: String,
    pub bytes: u64,
    pub architecture: String,
    pub config: AttrClassifierConfig,
    pub training: TrainConfig,
    pub data: DataReport,
    pub report: TrainReport,
    pub machine: String,
    pub diat_version: String,
}

impl ModelCard {
    /// The card as Markdown (the committed `*.md` beside the weights).
    pub fn markdown(&self) -> String {
        let mut m = format!(
            "# {}\n\nAttribute classifier of `diat eval real` (`diat_nets::attr_classifier`): a {}-layer CNN, \
             width {}, on the {}×{} training crop of CelebA's aligned frame (the 178×178 central window), \
             one sigmoid output per attribute.\n\n\
             - file: `{}` ({} bytes), sha256 `{}`\n\
             - trained by `diat classifier train` ({}) on {} in {:.1} min ({:.0} training images/s), \
             best epoch {} of {} by mean balanced accuracy on the validation identities\n\
             - data: `{}`: {} photos, {} aligned by `diat align --largest`, {} without a face, {} unreadable, \
             {} without CelebA labels, {} below coverage {}; {} used\n\
             - split by identity (`diat_celeba::split`, seed {}): ",
            self.name,
            7,
            self.config.width,
            self.config.image_size,
            self.config.image_size,
            self.file,
            self.bytes,
            self.sha256,
            self.diat_version,
            self.machine,
            self.report.wall_seconds / 60.0,
            self.report.train_images_per_second,
            self.report.best_epoch,
            self.training.epochs,
            self.data.source,
            self.data.photos,
            self.data.aligned_faces,
            self.data.not_aligned,
            self.data.unreadable,
            self.data.unlabelled,
            self.data.below_coverage,
            self.data.min_coverage,
            self.data.used,
            self.data.split_seed,
        );
        let parts: Vec<String> = self
            .data
            .splits
            .iter()
            .map(|(k, v)| format!("{k} {} faces / {} identities", v.faces, v.identities))
            .collect();
        m.push_str(&parts.join(", "));
        m.push_str(&format!(
            "\n- training: AdamW lr {} (cosine), weight decay {}, batch {}, {} epochs, positives weighted \
             (negatives/positives)^{}, flips, shifts ±{} px, gain/offset jitter, ×2 resampling on a quarter\n\n\
             ## Held-out identities (test split)\n\n\
             | attribute | faces | positives | accuracy | balanced accuracy |\n|---|---:|---:|---:|---:|\n",
            self.training.lr,
            self.training.weight_decay,
            self.training.batch,
            self.training.epochs,
            self.training.positive_weight_power,
            self.training.shift
        ));
        m.push_str(&markdown_rows(&self.report.test));
        m.push_str(
            "\n## Validation identities\n\n| attribute | faces | positives | accuracy | balanced accuracy |\n|---|---:|---:|---:|---:|\n",
        );
        m.push_str(&markdown_rows(&self.report.val));
        m.push_str(
            "\nCelebA's images and labels are for non-commercial research use only; these weights were \
             trained on them.\n",
        );
        m
    }
}

/// Table rows `| attribute | faces | positives | accuracy | balanced accuracy |`.
fn markdown_rows(scores: &[AttributeScore]) -> String {
    let pct = |v: f64| format!("{:.1} %", 100.0 * v);
    scores
        .iter()
        .map(|s| {
            format!(
                "| {} | {} | {} | {} | {} |\n",
                s.attribute,
                s.faces,
                s.positives,
                pct(s.accuracy),
                pct(s.balanced_accuracy)
            )
        })
        .collect()
}

/// Scores a saved classifier on one side of the identity division of `data`.
pub fn score(
    classifier: &Classifier,
    data: &ClassifierData,
    split: Split,
) -> Result<Vec<AttributeScore>> {
    if classifier.config().attributes != data.attributes
        || classifier.config().image_size != data.size
    {
        return Err(EvalError::Config(
            "the data were loaded for other attributes or another size than the classifier's"
                .into(),
        ));
    }
    evaluate(
        &classifier.net,
        data,
        &data.indices(split),
        classifier.device,
    )
}

/// A score table.
pub fn score_table(scores: &[AttributeScore]) -> String {
    let mut t = format!(
        "{:<22} {:>6} {:>9} {:>9} {:>10}\n",
        "attribute", "faces", "positive", "accuracy", "balanced"
    );
    for s in scores {
        t.push_str(&format!(
            "{:<22} {:>6} {:>9} {:>8.1}% {:>9.1}%\n",
            s.attribute,
            s.faces,
            s.positives,
            100.0 * s.accuracy,
            100.0 * s.balanced_accuracy
        ));
    }
    t
}
