//! Transfer quality against exact counterfactuals (`diat eval synth`).
//!
//! Inputs are held-out images: the test split (identities never in training) of a synthetic layout,
//! as the dataset stores them (JPEG). For each input, the exact ground truth is its counterfactual
//! twin with the attribute flipped, rendered losslessly. A transform's output is scored on
//!
//! * attribute success: the model-independent [`crate::judge`] detects the target value;
//! * identity preservation: PSNR and SSIM against the twin, over the whole image and inside and
//!   outside the attribute's [`crate::mask`] (local attributes only).
//!
//! Transforms: the identity (a lower bound: perfect outside the mask, no success), the rendered
//! counterfactual stored like the dataset (an upper bound: JPEG loss only), or a folder of outputs
//! named like the inputs (`000123.png`/`.jpg`), 178×218 or 128×128 (the [`Frame::celeba_128`] crop).

use crate::attrs::Attr;
use crate::dataset::{SynthConfig, write_images};
use crate::face::{FaceSpec, HEIGHT, WIDTH};
use crate::image_io::{Img, read};
use crate::judge::{Frame, Judge, as_stored};
use crate::layout::{Partition, file_name};
use crate::mask::attribute_mask;
use crate::metrics::{ImageQuality, compare};
use crate::render::Renderer;
use crate::{Error, Result};
use diat_common::Progress;
use diat_common::progress::Mode;
use rayon::prelude::*;
use serde::Serialize;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Which inputs, and the target value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Inputs without the attribute; target: with it.
    Add,
    /// Inputs with the attribute; target: without it.
    Remove,
    /// All inputs; target: the opposite value.
    Flip,
}

impl Direction {
    /// Whether image with value `v` is an input, and its target.
    pub fn target(self, v: bool) -> Option<bool> {
        match (self, v) {
            (Direction::Add, false) | (Direction::Remove, true) | (Direction::Flip, _) => Some(!v),
            _ => None,
        }
    }
}

/// A transform under evaluation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transform {
    /// The input unchanged.
    Identity,
    /// The exact counterfactual, stored like the dataset (JPEG).
    Counterfactual,
    /// A folder of outputs named like the inputs.
    Outputs(PathBuf),
    /// A folder of 128×128 outputs of a model working at `via` pixels (0: at 128), with a display
    /// name (e.g. a model's T(x) beside its enhanced output).
    Labelled(String, PathBuf, usize),
    /// A baseline (identity or counterfactual) sent through `px × px` pixels and back to the
    /// 128×128 frame: what a model working at that resolution is up against.
    Resampled(Box<Transform>, usize),
}

impl Transform {
    /// Display name.
    pub fn name(&self) -> String {
        match self {
            Transform::Identity => "identity".into(),
            Transform::Counterfactual => "counterfactual".into(),
            Transform::Outputs(p) => p.display().to_string(),
            Transform::Labelled(name, ..) => name.clone(),
            Transform::Resampled(t, px) => format!("{} @ {px} px", t.name()),
        }
    }
}

/// What to evaluate.
#[derive(Debug, Clone)]
pub struct EvalConfig {
    /// The dataset whose test split provides the inputs (its `counterfactual` must be `None`).
    pub synth: SynthConfig,
    pub attr: Attr,
    pub direction: Direction,
    /// At most this many inputs (the first ones of the test split that qualify).
    pub limit: usize,
    /// Frame in which the baselines are scored (outputs are scored in the frame their size implies).
    pub baseline_frame: Frame,
    /// Frame of 128×128 outputs.
    pub frame_128: Frame,
    /// Counterfactual pairs used to calibrate the judge per frame.
    pub calibration_pairs: usize,
}

impl EvalConfig {
    pub fn new(synth: SynthConfig, attr: Attr) -> Self {
        Self {
            synth,
            attr,
            direction: Direction::Flip,
            limit: 200,
            baseline_frame: Frame::FULL,
            frame_128: Frame::celeba_128(),
            calibration_pairs: 200,
        }
    }

    fn validate(&self) -> Result<()> {
        self.synth.validate()?;
        if self.synth.counterfactual.is_some() {
            return Err(Error::Invalid(
                "evaluation inputs come from the original dataset, not a counterfactual one".into(),
            ));
        }
        if !self.attr.is_flippable() {
            return Err(crate::face::NotFlippable(self.attr).into());
        }
        if self.limit == 0 {
            return Err(Error::Invalid("--limit must be at least 1".into()));
        }
        Ok(())
    }

    /// The evaluation inputs (image indices) and their targets.
    pub fn inputs(&self) -> Vec<(u32, bool)> {
        self.synth
            .layout
            .indices_in(Partition::Test)
            .filter_map(|i| {
                let spec = FaceSpec::for_image(&self.synth.layout, i);
                let v = spec.drawn.get(self.attr).expect("flippable");
                self.direction.target(v).map(|t| (i, t))
            })
            .take(self.limit)
            .collect()
    }
}

/// Means over the evaluated images.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    pub psnr: f64,
    pub ssim: f64,
}

/// The result of one transform.
#[derive(Debug, Clone, Serialize)]
pub struct TransformResult {
    pub transform: String,
    /// Frame the outputs were scored in (`178x218` or `128x128`).
    pub frame: String,
    pub evaluated: usize,
    /// Inputs without an output file (folders only).
    pub missing: usize,
    /// Fraction of outputs the judge sees with the target value.
    pub attribute_success: f64,
    pub whole: Summary,
    /// Inside / outside the attribute mask; `None` for global attributes.
    pub inside_mask: Option<Summary>,
    pub outside_mask: Option<Summary>,
}

/// The evaluation report.
#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    pub attr: String,
    pub direction: Direction,
    pub seed: u64,
    pub dataset_images: u32,
    pub jpeg_quality: u8,
    /// Number of held-out inputs (test split).
    pub inputs: usize,
    /// Fraction of inputs the judge sees with their source value (a sanity check of the judge).
    pub judge_agrees_on_inputs: f64,
    pub mask: Option<String>,
    pub judges: Vec<Judge>,
    pub results: Vec<TransformResult>,
}

fn frame_name(f: &Frame) -> String {
    match f.via {
        0 => format!("{}x{}", f.w, f.h),
        px => format!("{}x{}/{px}", f.w, f.h),
    }
}

/// Finds `dir/000123.{png,jpg,jpeg,PNG,JPG}`.
fn find_output(dir: &Path, index: u32) -> Option<PathBuf> {
    let stem = format!("{:06}", index + 1);
    ["png", "jpg", "jpeg", "PNG", "JPG", "JPEG"]
        .iter()
        .map(|e| dir.join(format!("{stem}.{e}")))
        .find(|p| p.is_file())
}

/// The frame of an output image by its size.
fn frame_of(img: &Img, path: &Path, frame_128: Frame) -> Result<Frame> {
    match (img.w, img.h) {
        (WIDTH, HEIGHT) => Ok(Frame::FULL),
        (w, h) if w == frame_128.w && h == frame_128.h => Ok(frame_128),
        (w, h) => Err(Error::Image {
            path: path.to_path_buf(),
            msg: format!(
                "{w}×{h}: outputs must be 178×218 (aligned) or {}×{} (training crop)",
                frame_128.w, frame_128.h
            ),
        }),
    }
}

struct Scored {
    quality: ImageQuality,
    success: bool,
}

/// Writes the evaluation inputs (JPEG bytes identical to the dataset's) into `dir`; returns how many.
pub fn write_inputs(cfg: &EvalConfig, dir: &Path) -> Result<usize> {
    cfg.validate()?;
    let idx: Vec<u32> = cfg.inputs().into_iter().map(|(i, _)| i).collect();
    Ok(write_images(&cfg.synth, &idx, dir)?.len())
}

/// Evaluates the transforms, showing progress in `mode` once the judge is calibrated.
pub fn evaluate(cfg: &EvalConfig, transforms: &[Transform], mode: Mode) -> Result<EvalReport> {
    cfg.validate()?;
    if transforms.is_empty() {
        return Err(Error::Invalid(
            "nothing to evaluate: give a transform or an outputs folder".into(),
        ));
    }
    let inputs = cfg.inputs();
    if inputs.is_empty() {
        return Err(Error::Invalid(format!(
            "no held-out inputs: the test split of this layout ({} images, {} per identity) has no image with {} {}",
            cfg.synth.layout.count,
            cfg.synth.layout.per_identity,
            cfg.attr,
            match cfg.direction {
                Direction::Add => "absent",
                Direction::Remove => "present",
                Direction::Flip => "either way",
            }
        )));
    }
    // The frame of each transform; folders are checked up front (sizes, presence).
    let mut frames = Vec::new();
    for t in transforms {
        let f = match t {
            Transform::Resampled(_, px) => cfg.frame_128.through(*px),
            Transform::Outputs(dir) | Transform::Labelled(_, dir, _) => {
                if !dir.is_dir() {
                    return Err(Error::Invalid(format!(
                        "outputs folder {} does not exist",
                        dir.display()
                    )));
                }
                let first = inputs.iter().find_map(|(i, _)| find_output(dir, *i)).ok_or_else(|| {
                    Error::Invalid(format!(
                        "no outputs for the {} evaluation inputs in {} (expected names like {})",
                        inputs.len(),
                        dir.display(),
                        file_name(inputs[0].0).replace(".jpg", ".png")
                    ))
                })?;
                let img = read(&first)?;
                let f = frame_of(&img, &first, cfg.frame_128)?;
                match t {
                    Transform::Labelled(_, _, via) if *via > 0 => f.through(*via),
                    _ => f,
                }
            }
            _ => cfg.baseline_frame,
        };
        frames.push(f);
    }
    let mut judges: Vec<Judge> = Vec::new();
    for f in frames.iter().chain(std::iter::once(&Frame::FULL)) {
        if !judges.iter().any(|j| j.frame == *f) {
            tracing::info!(
                "calibrating the {} judge at {}x{} on {} counterfactual pairs",
                cfg.attr,
                f.w,
                f.h,
                cfg.calibration_pairs
            );
            judges.push(Judge::calibrate_only(
                *f,
                cfg.synth.quality,
                cfg.calibration_pairs,
                &[cfg.attr],
            ));
        }
    }
    let progress = Progress::with_mode("eval synth", Some(inputs.len() as u64), mode);
    let progress = &progress;
    let judge_for = |f: &Frame| judges.iter().find(|j| j.frame == *f).expect("calibrated");
    let attr = cfg.attr;
    let q = cfg.synth.quality;

    // Per input: input agreement, then per transform Option<Scored> (None = missing).
    let per_input: Vec<Result<(bool, Vec<Option<Scored>>)>> = inputs
        .par_iter()
        .map_init(Renderer::new, |r, &(i, target)| {
            let spec = FaceSpec::for_image(&cfg.synth.layout, i);
            let twin = spec.with(attr, target).expect("flippable");
            let lm = spec.landmarks();
            let input = as_stored(r, &spec, q);
            let agrees = judge_for(&Frame::FULL).detect(attr, &input, &lm) == Some(!target);
            let mut reference_full = Img::new(WIDTH, HEIGHT, vec![0; WIDTH * HEIGHT * 3]);
            r.render_rgb8(&twin, &mut reference_full.data);
            let stored_twin = as_stored(r, &twin, q);
            let mut scored = Vec::with_capacity(transforms.len());
            for (t, f) in transforms.iter().zip(&frames) {
                let out = match t {
                    Transform::Identity => f.apply(&input),
                    Transform::Counterfactual => f.apply(&stored_twin),
                    Transform::Resampled(b, _) => match **b {
                        Transform::Counterfactual => f.apply(&stored_twin),
                        _ => f.apply(&input),
                    },
                    Transform::Outputs(dir) | Transform::Labelled(_, dir, _) => {
                        match find_output(dir, i) {
                            None => {
                                scored.push(None);
                                continue;
                            }
                            Some(p) => {
                                let img = read(&p)?;
                                let g = frame_of(&img, &p, cfg.frame_128)?;
                                if g != f.direct() {
                                    return Err(Error::Image {
                                        path: p,
                                        msg: format!(
                                            "{}×{}, but other outputs in this folder are {}",
                                            img.w,
                                            img.h,
                                            frame_name(f)
                                        ),
                                    });
                                }
                                img
                            }
                        }
                    }
                };
                // The exact counterfactual, in the frame without any detour.
                let reference = f.direct().apply(&reference_full);
                let mask =
                    attribute_mask(attr, &lm).map(|m| m.map(f.x0, f.y0, f.scale).bitmap(f.w, f.h));
                let quality = compare(&out, &reference, mask.as_deref());
                let success = judge_for(f).detect(attr, &out, &lm) == Some(target);
                scored.push(Some(Scored { quality, success }));
            }
            progress.inc(1);
            Ok((agrees, scored))
        })
        .collect();
    progress.finish();
    let per_input: Vec<(bool, Vec<Option<Scored>>)> =
        per_input.into_iter().collect::<Result<_>>()?;

    let n = per_input.len();
    let agree = per_input.iter().filter(|(a, _)| *a).count() as f64 / n as f64;
    let results = transforms
        .iter()
        .enumerate()
        .map(|(k, t)| {
            let got: Vec<&Scored> = per_input
                .iter()
                .filter_map(|(_, s)| s[k].as_ref())
                .collect();
            let m = got.len().max(1) as f64;
            let mean = |f: &dyn Fn(&ImageQuality) -> Option<(f64, f64)>| -> Option<Summary> {
                let vals: Vec<(f64, f64)> = got.iter().filter_map(|s| f(&s.quality)).collect();
                (!vals.is_empty()).then(|| Summary {
                    psnr: vals.iter().map(|v| v.0).sum::<f64>() / vals.len() as f64,
                    ssim: vals.iter().map(|v| v.1).sum::<f64>() / vals.len() as f64,
                })
            };
            TransformResult {
                transform: t.name(),
                frame: frame_name(&frames[k]),
                evaluated: got.len(),
                missing: n - got.len(),
                attribute_success: got.iter().filter(|s| s.success).count() as f64 / m,
                whole: mean(&|q| Some((q.whole.psnr, q.whole.ssim))).unwrap_or_default(),
                inside_mask: mean(&|q| q.inside.map(|x| (x.psnr, x.ssim))),
                outside_mask: mean(&|q| q.outside.map(|x| (x.psnr, x.ssim))),
            }
        })
        .collect();
    Ok(EvalReport {
        attr: attr.name().to_string(),
        direction: cfg.direction,
        seed: cfg.synth.layout.seed,
        dataset_images: cfg.synth.layout.count,
        jpeg_quality: q,
        inputs: n,
        judge_agrees_on_inputs: agree,
        mask: mask_description(attr),
        judges,
        results,
    })
}

fn mask_description(attr: Attr) -> Option<String> {
    use crate::mask::{EYE_MARGIN, MOUTH_MARGIN};
    match attr {
        Attr::Eyeglasses => Some(format!(
            "eyes: segment between the eye centres expanded by {EYE_MARGIN} x eye-to-mouth distance"
        )),
        Attr::MouthSlightlyOpen | Attr::Smiling => Some(format!(
            "mouth: segment between the mouth corners expanded by {MOUTH_MARGIN} x eye-to-mouth distance"
        )),
        _ => None,
    }
}

/// A human-readable table of a report.
pub fn table(r: &EvalReport) -> String {
    let mut s = String::new();
    let dir = match r.direction {
        Direction::Add => "add (inputs without it)",
        Direction::Remove => "remove (inputs with it)",
        Direction::Flip => "flip (all inputs)",
    };
    let _ = writeln!(
        s,
        "{}: {dir}; {} held-out test images (seed {}, {} images, JPEG q{})",
        r.attr, r.inputs, r.seed, r.dataset_images, r.jpeg_quality
    );
    let _ = writeln!(
        s,
        "mask: {}",
        r.mask
            .as_deref()
            .unwrap_or("none (global attribute): whole image only")
    );
    for j in &r.judges {
        if let Some(t) = j.threshold(Attr::from_name(&r.attr).expect("known")) {
            let _ = writeln!(
                s,
                "judge {}: threshold {:.3}, {:.1}% on {} calibration pairs",
                frame_name(&j.frame),
                t.threshold,
                100.0 * t.calibration_accuracy,
                t.calibration_pairs
            );
        }
    }
    let _ = writeln!(
        s,
        "judge agrees with the inputs' own value: {:.1}%",
        100.0 * r.judge_agrees_on_inputs
    );
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "{:<16} {:>8} {:>5} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}",
        "transform",
        "frame",
        "n",
        "success",
        "PSNR",
        "SSIM",
        "PSNR in",
        "SSIM in",
        "PSNR out",
        "SSIM out"
    );
    let f = |x: Option<&Summary>, psnr: bool| match x {
        Some(v) if psnr => format!("{:.2}", v.psnr),
        Some(v) => format!("{:.4}", v.ssim),
        None => "-".into(),
    };
    for t in &r.results {
        let name = if t.transform.chars().count() > 16 {
            format!(
                "…{}",
                t.transform
                    .chars()
                    .rev()
                    .take(15)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect::<String>()
            )
        } else {
            t.transform.clone()
        };
        let _ = writeln!(
            s,
            "{:<16} {:>8} {:>5} {:>7.1}% {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}",
            name,
            t.frame,
            t.evaluated,
            100.0 * t.attribute_success,
            f(Some(&t.whole), true),
            f(Some(&t.whole), false),
            f(t.inside_mask.as_ref(), true),
            f(t.inside_mask.as_ref(), false),
            f(t.outside_mask.as_ref(), true),
            f(t.outside_mask.as_ref(), false),
        );
        if t.missing > 0 {
            let _ = writeln!(s, "  ({} inputs had no output file)", t.missing);
        }
    }
    s
}
