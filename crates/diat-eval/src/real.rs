//! `diat eval real`: a DIAT model on real faces, scored by networks that did not train it.
//!
//! Faces (a `diat align` folder, a folder or zip of photos aligned here with MTCNN) are filtered
//! to the held-out identities (the test side of `diat_celeba::split`, when CelebA labels are
//! known) and to inputs the edit applies to (without the attribute for `add`, with it for
//! `remove`: CelebA's label, or the classifier's call for faces without one). Each input x is the
//! model's training crop; six conditions are scored against it:
//!
//! | condition | image |
//! |---|---|
//! | `model` | the model's output (with its enhancement network and attribute region) |
//! | `T(x) only` | the transform network alone |
//! | `identity` | x itself: changes nothing, the floor of attribute success |
//! | `other identity` | the crop of a random evaluated face of another person: the ceiling of identity loss |
//! | `blurred input` | x under a Gaussian blur of σ = 1.5 px per 64 px of crop |
//! | `model, blurred` | the model's output under the same blur: an edit that keeps its success here is a change of shape and colour, not high-frequency texture that only the classifier reads (compare with `blurred input`) |
//!
//! Measures per condition: attribute success (the classifier's probability on the condition's
//! image above 0.5 for `add`, below for `remove`), identity kept (dlib descriptor distance between
//! the condition's and x's 150×150 face chips below 0.6, both chips cut from the crop at the
//! model's resolution with the face's own landmarks), mean distance, and for models with an
//! attribute region (local tasks) the PSNR to x outside that region.

use crate::batch::{describe, region_values, to_images, to_input};
use crate::classifier::{Classifier, window};
use crate::error::{EvalError, Result};
use crate::faces::{
    AlignedPhoto, FaceSource, Labels, Rejected, decode_photo, detect_align, image_id, load_aligned,
    read_aligned_dir, without_source, zip_photo_names,
};
use crate::sheet::{SheetPair, pair_sheet};
use diat_align::image::RgbImage;
use diat_align::{CropWindow, Landmarks};
use diat_celeba::sets::paper_task_named;
use diat_celeba::split::Split;
use diat_common::Progress;
use diat_nets::face_descriptor::{FaceDescriptor, SAME_PERSON_THRESHOLD, distance};
use diat_nets::mtcnn::Mtcnn;
use diat_train::model::Model;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Which way the edit goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Inputs without the attribute; success when the output has it.
    Add,
    /// Inputs with the attribute; success when the output lacks it.
    Remove,
}

impl Direction {
    /// The direction of a paper task: `add` when its guided set has the attribute.
    pub fn of_task(spec: &diat_celeba::sets::TaskSpec) -> Self {
        if spec.guided_value {
            Direction::Add
        } else {
            Direction::Remove
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Direction::Add => "add",
            Direction::Remove => "remove",
        }
    }
    /// Whether an input with attribute value `has` is one this edit applies to.
    pub fn wants_input(self, has: bool) -> bool {
        match self {
            Direction::Add => !has,
            Direction::Remove => has,
        }
    }
    /// Whether probability `p` of the attribute counts as success.
    pub fn success(self, p: f64) -> bool {
        match self {
            Direction::Add => p > 0.5,
            Direction::Remove => p < 0.5,
        }
    }
}

/// Settings of one evaluation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RealEvalConfig {
    /// A CelebA attribute the classifier knows.
    pub attribute: String,
    pub direction: Direction,
    /// Faces to evaluate at most.
    pub limit: usize,
    /// Only faces of this side of the identity division (faces of unknown identity always pass);
    /// None: every face.
    pub split: Option<Split>,
    pub split_seed: u64,
    /// Seed of the choice of the "other identity" faces.
    pub seed: u64,
    /// Faces shown on the contact sheet.
    pub sheet_faces: usize,
}

/// One condition's figures.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConditionScore {
    pub condition: String,
    pub faces: usize,
    /// Share of faces whose image the classifier gives the target attribute state.
    pub attribute_success: f64,
    pub mean_probability: f64,
    /// Share of faces with descriptor distance to x below 0.6.
    pub identity_kept: f64,
    pub mean_distance: f64,
    /// Mean PSNR (dB) to x outside the model's attribute region (local models); None when the
    /// model has no region, or for images identical to x outside it.
    pub psnr_outside_region: Option<f64>,
}

/// One face's numbers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FaceScore {
    pub id: String,
    pub source: String,
    /// Probability of the attribute per condition (order of [`RealReport::conditions`]).
    pub probability: Vec<f64>,
    /// Descriptor distance to x per condition.
    pub distance: Vec<f64>,
}

/// The report of `diat eval real` (its `--json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RealReport {
    pub model: String,
    pub task: Option<String>,
    pub enhancement: String,
    pub image_size: i64,
    pub attribute: String,
    pub direction: Direction,
    pub split: Option<Split>,
    pub split_seed: u64,
    pub classifier: String,
    pub descriptor: String,
    pub same_person_threshold: f64,
    pub faces_considered: usize,
    pub faces_evaluated: usize,
    /// Inputs skipped because they are not of the evaluated split or already in the target state.
    pub not_selected: usize,
    pub rejected: Vec<Rejected>,
    pub conditions: Vec<ConditionScore>,
    pub faces: Vec<FaceScore>,
}

/// Checks that `model` was trained for this attribute and direction (when its task is known).
pub fn check_task(model: &Model, attribute: &str, direction: Direction) -> Result<()> {
    let Some(task) = &model.task else {
        tracing::warn!(
            "{}: no pipeline.toml naming its task; cannot check it edits {attribute} ({})",
            model.source.display(),
            direction.name()
        );
        return Ok(());
    };
    let Ok(spec) = paper_task_named(task) else {
        tracing::warn!("model task {task:?} is not a paper task; not checked");
        return Ok(());
    };
    let dir = Direction::of_task(&spec);
    if !spec.attribute.eq_ignore_ascii_case(attribute) || dir != direction {
        return Err(EvalError::Config(format!(
            "{} was trained for task {task} ({} {}), not for {attribute} {}",
            model.source.display(),
            spec.attribute,
            dir.name(),
            direction.name()
        )));
    }
    Ok(())
}

/// Faces to evaluate, read in order from `source` until `limit` are accepted.
struct Gathered {
    faces: Vec<AlignedPhoto>,
    identities: Vec<Option<u32>>,
    considered: usize,
    not_selected: usize,
    rejected: Vec<Rejected>,
}

fn selected_by_labels(labels: Option<&Labels>, id: &str, cfg: &RealEvalConfig) -> Option<bool> {
    let labels = labels?;
    let has = labels.attribute(id, &cfg.attribute)?;
    let split_ok = match (cfg.split, labels.split(id, cfg.split_seed)) {
        (Some(want), Some(got)) => want == got,
        _ => true,
    };
    Some(split_ok && cfg.direction.wants_input(has))
}

fn gather(
    source: &FaceSource,
    labels: Option<&Labels>,
    detector: Option<&Mtcnn>,
    classifier: &Classifier,
    cfg: &RealEvalConfig,
) -> Result<Gathered> {
    let mut g = Gathered {
        faces: Vec::new(),
        identities: Vec::new(),
        considered: 0,
        not_selected: 0,
        rejected: Vec::new(),
    };
    // (id, how to load it)
    enum Item<'a> {
        Aligned(usize),
        File(&'a Path),
        Entry(String),
    }
    type Items<'a> = Vec<(String, String, Item<'a>)>;
    let (aligned_doc, items): (
        Option<(std::path::PathBuf, diat_align::FacesJson)>,
        Items<'_>,
    ) = match source {
        FaceSource::Aligned(dir) => {
            let (doc, keep, not_aligned) = read_aligned_dir(dir)?;
            g.rejected.extend(not_aligned);
            let mut items: Vec<_> = keep
                .into_iter()
                .map(|i| {
                    let f = &doc.faces[i];
                    (image_id(&f.photo), f.photo.clone(), Item::Aligned(i))
                })
                .collect();
            items.sort_by(|a, b| a.0.cmp(&b.0));
            (Some((dir.clone(), doc)), items)
        }
        FaceSource::Photos(files) => (
            None,
            files
                .iter()
                .map(|p| {
                    let s = p.display().to_string();
                    (image_id(&s), s, Item::File(p.as_path()))
                })
                .collect(),
        ),
        FaceSource::Zip(path) => (
            None,
            zip_photo_names(path)?
                .into_iter()
                .map(|n| {
                    (
                        image_id(&n),
                        format!("{}:{n}", path.display()),
                        Item::Entry(n),
                    )
                })
                .collect(),
        ),
    };
    let mut zip = match source {
        FaceSource::Zip(path) => Some({
            diat_common::zipdir::check_unique(path).map_err(|e| EvalError::Input {
                path: path.clone(),
                problem: e.to_string(),
            })?;
            zip::ZipArchive::new(std::fs::File::open(path).map_err(|source| EvalError::Io {
                path: path.clone(),
                source,
            })?)
            .map_err(|e| EvalError::Input {
                path: path.clone(),
                problem: format!("not a readable zip: {e}"),
            })?
        }),
        _ => None,
    };
    let cls_window = window(classifier.config().image_size);
    for (id, shown, item) in items {
        if g.faces.len() >= cfg.limit {
            break;
        }
        g.considered += 1;
        let by_label = selected_by_labels(labels, &id, cfg);
        if by_label == Some(false) {
            g.not_selected += 1;
            continue;
        }
        let loaded: Result<Option<AlignedPhoto>> = match item {
            Item::Aligned(i) => {
                let (dir, doc) = aligned_doc.as_ref().expect("aligned source");
                load_aligned(dir, doc, i).map(Some)
            }
            Item::File(p) => std::fs::read(p)
                .map_err(|source| EvalError::Io {
                    path: p.into(),
                    source,
                })
                .and_then(|b| decode_photo(&shown, &b))
                .and_then(|photo| {
                    let det = detector.ok_or_else(|| {
                        EvalError::Config("photos need the MTCNN detector".into())
                    })?;
                    detect_align(det, &id, &shown, &photo)
                }),
            Item::Entry(name) => {
                let z = zip.as_mut().expect("zip source");
                let mut bytes = Vec::new();
                let read = z
                    .by_name(&name)
                    .map_err(|e| e.to_string())
                    .and_then(|mut f| {
                        if f.size() > 64 << 20 {
                            return Err(format!("{} bytes: too large for a photo", f.size()));
                        }
                        std::io::Read::read_to_end(&mut f, &mut bytes).map_err(|e| e.to_string())
                    });
                match read {
                    Err(problem) => Err(EvalError::Input {
                        path: shown.clone().into(),
                        problem,
                    }),
                    Ok(_) => decode_photo(&shown, &bytes).and_then(|photo| {
                        let det = detector.ok_or_else(|| {
                            EvalError::Config("photos need the MTCNN detector".into())
                        })?;
                        detect_align(det, &id, &shown, &photo)
                    }),
                }
            }
        };
        let face = match loaded {
            Ok(Some(f)) => f,
            Ok(None) => {
                g.rejected.push(Rejected {
                    source: shown,
                    reason: "no face found".into(),
                });
                continue;
            }
            Err(e @ EvalError::Config(_)) => return Err(e),
            Err(e) => {
                // Errors name the file; the report has it as `source` already.
                let reason = without_source(&e.to_string(), &shown);
                g.rejected.push(Rejected {
                    source: shown,
                    reason,
                });
                continue;
            }
        };
        if by_label.is_none() {
            // No CelebA label: the classifier decides whether the edit applies.
            let p = classifier.probability(&[face.crop(cls_window)?], &cfg.attribute)?[0];
            if !cfg.direction.wants_input(p > 0.5) {
                g.not_selected += 1;
                continue;
            }
        }
        g.identities.push(labels.and_then(|l| l.identity(&face.id)));
        g.faces.push(face);
    }
    Ok(g)
}

/// The landmarks of an aligned face in the coordinates of its crop.
fn crop_landmarks(lm: &Landmarks, win: CropWindow) -> Landmarks {
    lm.map(|p| win.to_crop(p))
}

/// The "other identity" partner of each face: a seeded random face of another person (another
/// image id when identities are unknown); None when every face is the same person.
fn partners(ids: &[String], identities: &[Option<u32>], seed: u64) -> Vec<Option<usize>> {
    let n = ids.len();
    let mut state = seed ^ 0x5DEE_CE66_D1CE_4E5B;
    let mut next = || {
        let r = diat_celeba::split::splitmix64(state);
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        r
    };
    (0..n)
        .map(|i| {
            let differs = |j: usize| match (identities[i], identities[j]) {
                (Some(a), Some(b)) => a != b,
                _ => ids[i] != ids[j],
            };
            let candidates: Vec<usize> = (0..n).filter(|&j| j != i && differs(j)).collect();
            (!candidates.is_empty())
                .then(|| candidates[(next() % candidates.len() as u64) as usize])
        })
        .collect()
}

/// Runs the evaluation. `detector` is needed for photo folders and zips.
pub fn evaluate_real(
    model: &Model,
    source: &FaceSource,
    labels: Option<&Labels>,
    classifier: &Classifier,
    descriptor: &FaceDescriptor,
    detector: Option<&Mtcnn>,
    cfg: &RealEvalConfig,
) -> Result<(RealReport, Option<RgbImage>)> {
    if classifier.config().index_of(&cfg.attribute).is_none() {
        return Err(EvalError::Config(format!(
            "the classifier ({}) knows {:?}, not {}",
            classifier.source.display(),
            classifier.config().attributes,
            cfg.attribute
        )));
    }
    check_task(model, &cfg.attribute, cfg.direction)?;
    let g = gather(source, labels, detector, classifier, cfg)?;
    let n = g.faces.len();
    let s = model.image_size;
    let win = window(s);
    let mut report = RealReport {
        model: model.source.display().to_string(),
        task: model.task.clone(),
        enhancement: model.enhancement().into(),
        image_size: s,
        attribute: cfg.attribute.clone(),
        direction: cfg.direction,
        split: cfg.split,
        split_seed: cfg.split_seed,
        classifier: classifier.source.display().to_string(),
        descriptor: "dlib_face_recognition_resnet_model_v1 (diat port)".into(),
        same_person_threshold: SAME_PERSON_THRESHOLD,
        faces_considered: g.considered,
        faces_evaluated: n,
        not_selected: g.not_selected,
        rejected: g.rejected,
        conditions: Vec::new(),
        faces: Vec::new(),
    };
    if n == 0 {
        return Ok((report, None));
    }
    let progress = Progress::new("eval real", Some(n as u64));
    let xs: Vec<RgbImage> = g.faces.iter().map(|f| f.crop(win)).collect::<Result<_>>()?;
    let lms: Vec<Landmarks> = g
        .faces
        .iter()
        .map(|f| crop_landmarks(&f.landmarks, win))
        .collect();
    let (mut outs, mut txs, mut blurs) = (Vec::new(), Vec::new(), Vec::new());
    let mut out_blurs = Vec::new();
    let sigma = 1.5 * s as f64 / 64.0;
    for chunk in xs.chunks(32) {
        let x = to_input(&chunk.iter().collect::<Vec<_>>(), model.device);
        let (tx, out) = model.apply(&x);
        outs.extend(to_images(&out)?);
        txs.extend(to_images(&tx)?);
        blurs.extend(to_images(&tch::no_grad(|| {
            diat_nets::blur::gaussian_blur(&x, sigma)
        }))?);
        out_blurs.extend(to_images(&tch::no_grad(|| {
            diat_nets::blur::gaussian_blur(&out, sigma)
        }))?);
        progress.inc(chunk.len() as u64);
    }
    progress.finish();
    let ids: Vec<String> = g.faces.iter().map(|f| f.id.clone()).collect();
    let partner = partners(&ids, &g.identities, cfg.seed);
    // (name, images, landmarks of each image)
    let other_idx: Vec<usize> = partner
        .iter()
        .enumerate()
        .map(|(i, p)| p.unwrap_or(i))
        .collect();
    let others: Vec<RgbImage> = other_idx.iter().map(|&j| xs[j].clone()).collect();
    let other_lms: Vec<Landmarks> = other_idx.iter().map(|&j| lms[j]).collect();
    let conditions: Vec<(&str, &[RgbImage], &[Landmarks])> = vec![
        ("model", &outs, &lms),
        ("T(x) only", &txs, &lms),
        ("identity", &xs, &lms),
        ("other identity", &others, &other_lms),
        ("blurred input", &blurs, &lms),
        ("model, blurred", &out_blurs, &lms),
    ];
    let chips_of = |imgs: &[RgbImage], lms: &[Landmarks]| {
        describe(descriptor, &imgs.iter().zip(lms).collect::<Vec<_>>())
    };
    let reference = chips_of(&xs, &lms)?;
    let region = region_values(model)?;
    report.faces = g
        .faces
        .iter()
        .map(|f| FaceScore {
            id: f.id.clone(),
            source: f.source.clone(),
            probability: Vec::new(),
            distance: Vec::new(),
        })
        .collect();
    for (name, imgs, lm) in conditions {
        let probs = classifier.probability(imgs, &cfg.attribute)?;
        // x's own chips are the reference; the other person's are the reference reordered.
        let descs = match name {
            "identity" => reference.clone(),
            "other identity" => other_idx.iter().map(|&j| reference[j]).collect(),
            _ => chips_of(imgs, lm)?,
        };
        let dists: Vec<f64> = descs
            .iter()
            .zip(&reference)
            .map(|(a, b)| distance(a, b))
            .collect();
        let psnr = region.as_ref().map(|r| {
            let outside = |x: u32, y: u32| r[(y as i64 * s + x as i64) as usize] < 0.01;
            let vals: Vec<f64> = imgs
                .iter()
                .zip(&xs)
                .map(|(a, b)| diat_align::psnr(a, b, Some(&outside)))
                .filter(|v| v.is_finite())
                .collect();
            (!vals.is_empty()).then(|| vals.iter().sum::<f64>() / vals.len() as f64)
        });
        let is_other = name == "other identity";
        let valid: Vec<usize> = (0..n)
            .filter(|&i| !is_other || partner[i].is_some())
            .collect();
        let m = valid.len().max(1) as f64;
        report.conditions.push(ConditionScore {
            condition: name.into(),
            faces: valid.len(),
            attribute_success: valid
                .iter()
                .filter(|&&i| cfg.direction.success(probs[i]))
                .count() as f64
                / m,
            mean_probability: valid.iter().map(|&i| probs[i]).sum::<f64>() / m,
            identity_kept: valid
                .iter()
                .filter(|&&i| dists[i] < SAME_PERSON_THRESHOLD)
                .count() as f64
                / m,
            mean_distance: valid.iter().map(|&i| dists[i]).sum::<f64>() / m,
            psnr_outside_region: psnr.flatten(),
        });
        for (i, f) in report.faces.iter_mut().enumerate() {
            f.probability.push(probs[i]);
            f.distance.push(dists[i]);
        }
    }
    let sheet = contact_sheet(&xs, &outs, &report, cfg.sheet_faces);
    Ok((report, sheet))
}

/// The report as a table.
pub fn table(r: &RealReport) -> String {
    let mut t = format!(
        "{} {} on {} face(s) ({}; classifier: attribute state; dlib distance to the input, same person < {}):\n",
        r.attribute,
        r.direction.name(),
        r.faces_evaluated,
        match r.split {
            Some(s) => format!("{} identities", s.name()),
            None => "all identities".into(),
        },
        r.same_person_threshold
    );
    t.push_str(&format!(
        "{:<16} {:>8} {:>10} {:>14} {:>14} {:>14}\n",
        "condition", "success", "mean p", "identity kept", "mean distance", "PSNR outside"
    ));
    for c in &r.conditions {
        t.push_str(&format!(
            "{:<16} {:>7.1}% {:>10.3} {:>13.1}% {:>14.3} {:>14}\n",
            c.condition,
            100.0 * c.attribute_success,
            c.mean_probability,
            100.0 * c.identity_kept,
            c.mean_distance,
            match c.psnr_outside_region {
                Some(v) => format!("{v:.2} dB"),
                None if r.conditions.iter().any(|c| c.psnr_outside_region.is_some()) => "∞".into(),
                None => "-".into(),
            }
        ));
    }
    if !r.rejected.is_empty() {
        t.push_str(&format!("{} input(s) rejected:\n", r.rejected.len()));
        for x in r.rejected.iter().take(10) {
            t.push_str(&format!("  {}: {}\n", x.source, x.reason));
        }
        if r.rejected.len() > 10 {
            t.push_str(&format!("  … {} more in --json\n", r.rejected.len() - 10));
        }
    }
    t
}

/// input | output pairs, 4 per row, with the classifier's probability under each and the
/// descriptor distance under the output.
fn contact_sheet(
    xs: &[RgbImage],
    outs: &[RgbImage],
    r: &RealReport,
    faces: usize,
) -> Option<RgbImage> {
    let position = |name: &str| {
        r.conditions
            .iter()
            .position(|c| c.condition == name)
            .unwrap_or(0)
    };
    let (model_i, ident_i) = (position("model"), position("identity"));
    let pairs: Vec<SheetPair<'_>> = (0..faces.min(xs.len()))
        .map(|i| {
            let f = &r.faces[i];
            SheetPair {
                before: &xs[i],
                after: &outs[i],
                before_caption: format!("p={:.2}", f.probability[ident_i]),
                after_caption: format!(
                    "p={:.2} d={:.2}",
                    f.probability[model_i], f.distance[model_i]
                ),
                ok: r.direction.success(f.probability[model_i])
                    && f.distance[model_i] < SAME_PERSON_THRESHOLD,
            }
        })
        .collect();
    pair_sheet(&pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partners_are_other_people() {
        let ids: Vec<String> = (0..6).map(|i| format!("{i:06}")).collect();
        let idents = vec![Some(1), Some(1), Some(2), Some(2), Some(3), None];
        let p = partners(&ids, &idents, 7);
        for (i, j) in p.iter().enumerate() {
            let j = j.unwrap();
            assert_ne!(i, j);
            if let (Some(a), Some(b)) = (idents[i], idents[j]) {
                assert_ne!(a, b);
            }
        }
        assert_eq!(p, partners(&ids, &idents, 7));
        let same = partners(&ids[..2], &idents[..2], 7);
        assert_eq!(same, vec![None, None]);
    }

    #[test]
    fn directions() {
        assert!(Direction::Add.wants_input(false) && !Direction::Add.wants_input(true));
        assert!(Direction::Remove.success(0.2) && !Direction::Remove.success(0.7));
    }
}
