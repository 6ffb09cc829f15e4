//! `diat eval lfw`: the evaluator's path on whole photos that are not CelebA — LFW's
//! deep-funneled 250×250 photos of its View 1 pairs (`pairsDevTest.txt`).
//!
//! Every photo named by the evaluated pairs goes through the path a user runs (`diat apply
//! --align`): decoded, its face detected (MTCNN; of several faces the one nearest the photo's
//! centre, LFW's subject), aligned like CelebA (5 points), edited by the model at its resolution
//! and pasted back into the whole photo (only the edit, [`diat_align::PasteMode::Residual`]), optionally
//! written as PNG (lossless: the pixels scored are the pixels written). A photo that cannot be
//! used is listed with its reason (unreadable, no face found, face too small); none is skipped
//! silently, and a pair with such a photo is counted as not scored.
//!
//! Measures, all on the pasted-back photo as a user sees it:
//!
//! - **identity across photos**: for each pair, dlib's descriptor distance (150×150 chips cut
//!   from the whole photo with the detected landmarks) between the two photos before editing,
//!   and between the edited first photo and the unedited second; verification accuracy at
//!   dlib's threshold 0.6, the same-person pairs that still verify, and the ROC AUC. The same for
//!   the first photo under the blurred-input blur (pasted back the same way), a reference for
//!   what a loss of detail alone costs;
//! - **attributes**: the classifier (on the photo re-aligned with the same landmarks) picks the
//!   photos the edit applies to (without the attribute for `add`, with it for `remove`); on
//!   those, success after the edit beside the identity (no edit) and the blurred input; and how
//!   often the classifier's decision on every other attribute it knows stays unchanged (the
//!   paper's other attributes together, and each);
//! - **outside the region** (models with an attribute region): photo pixels changed outside the
//!   region (dilated by 2 model pixels for the paste's bilinear support) — 0 is the target;
//! - **speed**: seconds in each stage of the path (decode, detect, align, edit, paste back,
//!   write) and photos per second of the whole path, measured apart from the scoring.

use crate::batch::{describe, region_values, to_images, to_input};
use crate::classifier::{Classifier, window};
use crate::error::{EvalError, Result};
use crate::faces::{Rejected, without_source};
use crate::real::{Direction, check_task};
use crate::sheet::{SheetPair, pair_sheet};
use diat_align::image::RgbImage;
use diat_align::{AlignedFace, Detection, Landmarks, PasteOptions, align_face, crop_aligned};
use diat_common::Progress;
use diat_nets::face_descriptor::{FaceDescriptor, SAME_PERSON_THRESHOLD, distance};
use diat_nets::mtcnn::{FaceDetection, Mtcnn};
use diat_train::model::Model;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// One LFW photo: `NAME/NAME_NNNN.jpg`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PhotoRef {
    pub name: String,
    pub number: u32,
}

impl PhotoRef {
    /// `NAME_NNNN` (LFW's file stem).
    pub fn stem(&self) -> String {
        format!("{}_{:04}", self.name, self.number)
    }

    /// The photo's file under LFW's image folder.
    pub fn path(&self, images: &Path) -> PathBuf {
        images.join(&self.name).join(format!("{}.jpg", self.stem()))
    }
}

/// One pair of a pairs file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LfwPair {
    pub first: PhotoRef,
    pub second: PhotoRef,
    /// Same person.
    pub same: bool,
}

/// Reads an LFW pairs file: `pairsDevTrain.txt`/`pairsDevTest.txt` (header `N`: N same then N
/// different pairs) or `pairs.txt` (header `FOLDS N`: per fold N same then N different). Lines
/// are `name n1 n2` (same person) or `name1 n1 name2 n2`; errors name the file and line.
pub fn read_pairs(path: &Path) -> Result<Vec<LfwPair>> {
    let text = std::fs::read_to_string(path).map_err(|source| EvalError::Io {
        path: path.into(),
        source,
    })?;
    let bad = |line: usize, problem: String| EvalError::Input {
        path: PathBuf::from(format!("{}:{line}", path.display())),
        problem,
    };
    let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l.trim()));
    let (_, header) = lines.next().ok_or_else(|| {
        bad(
            1,
            "empty file, expected a header line (N or FOLDS N)".into(),
        )
    })?;
    let numbers: Vec<usize> = header
        .split_whitespace()
        .map(|w| w.parse::<usize>())
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| bad(1, format!("header {header:?}: expected N or FOLDS N")))?;
    let (folds, per) = match numbers[..] {
        [n] => (1, n),
        [f, n] => (f, n),
        _ => return Err(bad(1, format!("header {header:?}: expected N or FOLDS N"))),
    };
    let number = |line: usize, w: &str| {
        w.parse::<u32>()
            .ok()
            .filter(|&n| n > 0)
            .ok_or_else(|| bad(line, format!("{w:?} is not a photo number (1, 2, ...)")))
    };
    let mut pairs = Vec::with_capacity(2 * folds * per);
    for (line, l) in lines {
        if l.is_empty() {
            continue;
        }
        let w: Vec<&str> = l
            .split('\t')
            .flat_map(|c| c.split(' '))
            .filter(|c| !c.is_empty())
            .collect();
        let pair = match w[..] {
            [name, a, b] => LfwPair {
                first: PhotoRef {
                    name: name.into(),
                    number: number(line, a)?,
                },
                second: PhotoRef {
                    name: name.into(),
                    number: number(line, b)?,
                },
                same: true,
            },
            [n1, a, n2, b] => LfwPair {
                first: PhotoRef {
                    name: n1.into(),
                    number: number(line, a)?,
                },
                second: PhotoRef {
                    name: n2.into(),
                    number: number(line, b)?,
                },
                same: false,
            },
            _ => {
                return Err(bad(
                    line,
                    format!("{l:?}: expected `name n1 n2` or `name1 n1 name2 n2`"),
                ));
            }
        };
        if pair.first.name.contains(['/', '\\']) || pair.second.name.contains(['/', '\\']) {
            return Err(bad(
                line,
                format!("{l:?}: a name may not contain a path separator"),
            ));
        }
        // Same pairs come first in each block of 2N lines.
        let k = pairs.len() % (2 * per.max(1));
        if pair.same != (k < per) {
            return Err(bad(
                line,
                format!(
                    "{l:?}: expected a {} pair here (header {header:?})",
                    if k < per {
                        "same-person"
                    } else {
                        "different-person"
                    }
                ),
            ));
        }
        pairs.push(pair);
    }
    if pairs.len() != 2 * folds * per {
        return Err(bad(
            text.lines().count(),
            format!(
                "{} pairs, the header {header:?} announces {}",
                pairs.len(),
                2 * folds * per
            ),
        ));
    }
    Ok(pairs)
}

/// LFW's image folder under `root`: `root/lfw-deepfunneled` or `root/lfw` when present, else
/// `root` itself.
pub fn images_dir(root: &Path) -> PathBuf {
    ["lfw-deepfunneled", "lfw"]
        .iter()
        .map(|d| root.join(d))
        .find(|d| d.is_dir())
        .unwrap_or_else(|| root.to_path_buf())
}

/// The first `limit` pairs, half of them same-person (rounded up) and half different, in file
/// order; every pair without a limit.
pub fn select_pairs(pairs: &[LfwPair], limit: Option<usize>) -> Vec<LfwPair> {
    let Some(limit) = limit else {
        return pairs.to_vec();
    };
    let same = pairs.iter().filter(|p| p.same).take(limit.div_ceil(2));
    let diff = pairs.iter().filter(|p| !p.same).take(limit / 2);
    same.chain(diff).cloned().collect()
}

/// Settings of one LFW evaluation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LfwEvalConfig {
    /// The attribute the model edits (a CelebA name the classifier knows).
    pub attribute: String,
    pub direction: Direction,
    /// Faces whose detected box is shorter than this (photo pixels) are rejected as too small.
    pub min_face: f64,
    /// Photos per forward pass of the model.
    pub batch: usize,
    /// Write every pasted-back photo here as `NAME_NNNN.png`.
    pub out: Option<PathBuf>,
    /// Eligible photos shown on the contact sheet.
    pub sheet_photos: usize,
}

/// Verification over the scored pairs under one condition of the first photo.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Verification {
    pub condition: String,
    pub same_pairs: usize,
    pub different_pairs: usize,
    /// Pairs classified right at the threshold (same: distance < 0.6; different: ≥ 0.6).
    pub accuracy: f64,
    /// Same-person pairs with distance < 0.6.
    pub same_verified: f64,
    /// Different-person pairs with distance ≥ 0.6.
    pub different_rejected: f64,
    /// ROC AUC of −distance as the same-person score.
    pub auc: f64,
    pub mean_same_distance: f64,
    pub mean_different_distance: f64,
}

/// Attribute success on the eligible photos under one condition.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AttributeSuccess {
    pub condition: String,
    pub success: f64,
    pub mean_probability: f64,
}

/// How often one other attribute's decision stays what it was before the edit.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Unchanged {
    pub attribute: String,
    /// Whether it is one of the paper's attributes (counted in `all_paper_unchanged`).
    pub paper: bool,
    pub unchanged: f64,
}

/// Seconds spent in each stage of the path, and its speed.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StageTimes {
    pub decode: f64,
    pub detect: f64,
    pub align: f64,
    pub edit: f64,
    pub paste: f64,
    pub write: f64,
    /// Everything above.
    pub path: f64,
    /// Photos through the path (edited or rejected) per second of `path`.
    pub photos_per_second: f64,
    /// Scoring (classifier, descriptor, blurred condition), not part of the path.
    pub scoring: f64,
}

/// Changes outside the model's attribute region.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OutsideRegion {
    /// Photos with any changed pixel outside the region.
    pub photos_changed: usize,
    /// Photo pixels changed outside the region, over all photos.
    pub pixels_changed: u64,
    /// Photo pixels changed anywhere, over all photos.
    pub pixels_changed_anywhere: u64,
}

/// One scored pair's descriptor distances.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PairScore {
    pub first: String,
    pub second: String,
    pub same: bool,
    /// First photo unedited, edited, blurred input; each against the unedited second photo.
    pub before: f64,
    pub after: f64,
    pub blurred: f64,
}

/// One photo's numbers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LfwPhotoScore {
    pub photo: String,
    /// Faces MTCNN found in the photo (the one nearest the centre is edited).
    pub faces_found: usize,
    /// The classifier's probability of each attribute (order of `LfwReport::attributes`) on the
    /// photo before the edit, after it, and with the blurred input.
    pub before: Vec<f64>,
    pub after: Vec<f64>,
    pub blurred: Vec<f64>,
    pub eligible: bool,
    /// Descriptor distance between the edited photo and the original.
    pub distance_to_original: f64,
}

/// The report of `diat eval lfw` (its `--json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LfwReport {
    pub model: String,
    pub task: Option<String>,
    pub enhancement: String,
    pub image_size: i64,
    pub attribute: String,
    pub direction: Direction,
    pub classifier: String,
    pub descriptor: String,
    pub same_person_threshold: f64,
    pub pairs_file: String,
    pub images: String,
    pub pairs: usize,
    pub pairs_scored: usize,
    pub photos: usize,
    pub photos_edited: usize,
    pub rejected: Vec<Rejected>,
    /// Rejected photos by reason (`unreadable`, `no face found`, `face too small`, `detection
    /// failed`, `alignment failed`).
    pub rejected_by_reason: BTreeMap<String, usize>,
    pub verification: Vec<Verification>,
    /// Edited photos whose descriptor stays within 0.6 of the unedited photo's.
    pub identity_kept: f64,
    /// The classifier's attributes, in the order of the per-photo probabilities.
    pub attributes: Vec<String>,
    pub eligibility: String,
    pub eligible: usize,
    pub attribute_success: Vec<AttributeSuccess>,
    /// Share of eligible edited photos whose decision on every other paper attribute is unchanged.
    pub all_paper_unchanged: f64,
    pub unchanged: Vec<Unchanged>,
    pub outside_region: Option<OutsideRegion>,
    pub times: StageTimes,
    pub photos_scored: Vec<LfwPhotoScore>,
    pub pairs_scored_detail: Vec<PairScore>,
}

/// The detection LFW is about: of several faces, the one whose box centre is nearest the photo's
/// centre (the deep-funneled photos centre their subject).
pub fn central_face(found: &[FaceDetection], width: u32, height: u32) -> Option<usize> {
    let (cx, cy) = (width as f32 / 2.0, height as f32 / 2.0);
    let d = |f: &FaceDetection| {
        let (x, y) = ((f.bbox[0] + f.bbox[2]) / 2.0, (f.bbox[1] + f.bbox[3]) / 2.0);
        (x - cx).powi(2) + (y - cy).powi(2)
    };
    (0..found.len()).min_by(|&a, &b| d(&found[a]).total_cmp(&d(&found[b])))
}

/// ROC AUC of `positive` against `negative` scores (ties count half): the probability that a
/// random positive scores above a random negative.
pub fn roc_auc(positive: &[f64], negative: &[f64]) -> f64 {
    if positive.is_empty() || negative.is_empty() {
        return f64::NAN;
    }
    let mut all: Vec<(f64, bool)> = positive
        .iter()
        .map(|&s| (s, true))
        .chain(negative.iter().map(|&s| (s, false)))
        .collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    // Mann–Whitney U with mid-ranks.
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < all.len() {
        let mut j = i;
        while j < all.len() && all[j].0 == all[i].0 {
            j += 1;
        }
        let mid = (i + j + 1) as f64 / 2.0; // ranks i+1..=j
        rank_sum += mid * all[i..j].iter().filter(|x| x.1).count() as f64;
        i = j;
    }
    let (p, n) = (positive.len() as f64, negative.len() as f64);
    (rank_sum - p * (p + 1.0) / 2.0) / (p * n)
}

/// Verification figures from per-pair distances.
pub fn verification(condition: &str, distances: &[(f64, bool)]) -> Verification {
    let same: Vec<f64> = distances.iter().filter(|d| d.1).map(|d| d.0).collect();
    let diff: Vec<f64> = distances.iter().filter(|d| !d.1).map(|d| d.0).collect();
    let share = |v: &[f64], f: &dyn Fn(f64) -> bool| {
        v.iter().filter(|&&d| f(d)).count() as f64 / v.len().max(1) as f64
    };
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let right = same.iter().filter(|&&d| d < SAME_PERSON_THRESHOLD).count()
        + diff.iter().filter(|&&d| d >= SAME_PERSON_THRESHOLD).count();
    let neg = |v: &[f64]| v.iter().map(|d| -d).collect::<Vec<_>>();
    Verification {
        condition: condition.into(),
        same_pairs: same.len(),
        different_pairs: diff.len(),
        accuracy: right as f64 / distances.len().max(1) as f64,
        same_verified: share(&same, &|d| d < SAME_PERSON_THRESHOLD),
        different_rejected: share(&diff, &|d| d >= SAME_PERSON_THRESHOLD),
        auc: roc_auc(&neg(&same), &neg(&diff)),
        mean_same_distance: mean(&same),
        mean_different_distance: mean(&diff),
    }
}

/// Photo pixels that differ between `photo` and `edited` outside `region` (S×S in [0, 1], the
/// model's crop): (changed outside, changed anywhere). The region is dilated by 2 crop pixels.
pub fn changes_outside_region(
    photo: &RgbImage,
    edited: &RgbImage,
    face: &AlignedFace,
    region: &[f32],
    size: u32,
) -> (u64, u64) {
    let s = size as i64;
    let inside = |c: [f64; 2]| {
        let (cx, cy) = (c[0].round() as i64, c[1].round() as i64);
        (cy - 2..=cy + 2).any(|y| {
            (cx - 2..=cx + 2).any(|x| {
                (0..s).contains(&x) && (0..s).contains(&y) && region[(y * s + x) as usize] >= 0.01
            })
        })
    };
    let (mut outside, mut anywhere) = (0, 0);
    for (x, y, p) in edited.enumerate_pixels() {
        if p == photo.get_pixel(x, y) {
            continue;
        }
        anywhere += 1;
        let c = face
            .window
            .to_crop(face.transform.apply([x as f64, y as f64]));
        let c = [
            (c[0] + 0.5) * size as f64 / face.window.size as f64 - 0.5,
            (c[1] + 0.5) * size as f64 / face.window.size as f64 - 0.5,
        ];
        if !inside(c) {
            outside += 1;
        }
    }
    (outside, anywhere)
}

/// A photo through the path, before the edit.
struct Aligned {
    photo: RgbImage,
    face: AlignedFace,
    faces_found: usize,
}

/// A photo's scores: descriptor and classifier probabilities (per attribute) of the photo before
/// the edit, after it, and with the blurred input.
struct Scored {
    faces_found: usize,
    descs: [[f32; 128]; 3],
    probs: [Vec<f64>; 3],
}

/// Runs the evaluation on `pairs` (already selected) with photos under `images`.
#[allow(clippy::too_many_arguments)]
pub fn evaluate_lfw(
    model: &Model,
    detector: &Mtcnn,
    classifier: &Classifier,
    descriptor: &FaceDescriptor,
    images: &Path,
    pairs_file: &Path,
    pairs: &[LfwPair],
    cfg: &LfwEvalConfig,
) -> Result<(LfwReport, Option<RgbImage>)> {
    let attributes = classifier.config().attributes.clone();
    let target = classifier
        .config()
        .index_of(&cfg.attribute)
        .ok_or_else(|| {
            EvalError::Config(format!(
                "the classifier ({}) knows {:?}, not {}",
                classifier.source.display(),
                attributes,
                cfg.attribute
            ))
        })?;
    check_task(model, &cfg.attribute, cfg.direction)?;
    if let Some(out) = &cfg.out {
        std::fs::create_dir_all(out).map_err(|source| EvalError::Io {
            path: out.clone(),
            source,
        })?;
    }
    // Every photo once, in the order the pairs name them.
    let mut order: Vec<PhotoRef> = Vec::new();
    let mut index: HashMap<PhotoRef, usize> = HashMap::new();
    for p in pairs {
        for r in [&p.first, &p.second] {
            if !index.contains_key(r) {
                index.insert(r.clone(), order.len());
                order.push(r.clone());
            }
        }
    }
    let size = model.image_size as u32;
    let win = crate::apply::crop_window(size);
    let cls_win = window(classifier.config().image_size);
    let sigma = 1.5 * size as f64 / 64.0;
    let paste = PasteOptions::default();
    let region = region_values(model)?;
    let mut times = StageTimes::default();
    let mut rejected = Vec::new();
    let mut done: Vec<Option<Scored>> = (0..order.len()).map(|_| None).collect();
    // (photo index, before, after) of the first eligible photos, for the sheet.
    let mut for_sheet: Vec<(usize, RgbImage, RgbImage)> = Vec::new();
    let progress = Progress::new("eval lfw", Some(order.len() as u64));
    let mut outside = OutsideRegion {
        photos_changed: 0,
        pixels_changed: 0,
        pixels_changed_anywhere: 0,
    };
    let chunk = cfg.batch.max(1);
    for start in (0..order.len()).step_by(chunk) {
        let mut batch: Vec<(usize, Aligned)> = Vec::new();
        let end = (start + chunk).min(order.len());
        for (i, r) in order.iter().enumerate().take(end).skip(start) {
            progress.inc(1);
            let path = r.path(images);
            let shown = path.display().to_string();
            let mut reject = |reason: String| {
                rejected.push(Rejected {
                    source: shown.clone(),
                    reason,
                })
            };
            let t = Instant::now();
            let photo = std::fs::read(&path)
                .map_err(|e| e.to_string())
                .and_then(|b| {
                    diat_align::decode_photo(&path, &b)
                        .map_err(|e| without_source(&e.to_string(), &shown))
                });
            times.decode += t.elapsed().as_secs_f64();
            let photo = match photo {
                Ok(p) => p,
                Err(why) => {
                    reject(format!("unreadable: {why}"));
                    continue;
                }
            };
            let t = Instant::now();
            // A photo the detector or the alignment cannot take is rejected with the reason;
            // the other photos go on.
            let found = match detector.detect(photo.as_raw(), photo.width(), photo.height()) {
                Ok(f) => f,
                Err(e) => {
                    times.detect += t.elapsed().as_secs_f64();
                    reject(format!("detection failed: {e}"));
                    continue;
                }
            };
            times.detect += t.elapsed().as_secs_f64();
            let Some(k) = central_face(&found, photo.width(), photo.height()) else {
                reject("no face found".into());
                continue;
            };
            let d = &found[k];
            let side = (d.bbox[2] - d.bbox[0]).min(d.bbox[3] - d.bbox[1]) as f64;
            if side < cfg.min_face {
                reject(format!(
                    "face too small: {side:.0} px, --min-face {}",
                    cfg.min_face
                ));
                continue;
            }
            let t = Instant::now();
            let lm: Landmarks = d.celeba_landmarks().map(|p| p.map(f64::from));
            let det = Detection {
                bbox: d.bbox,
                score: d.score,
            };
            let face = match align_face(&photo, &lm, win, Some(det)) {
                Ok(f) => f,
                Err(e) => {
                    times.align += t.elapsed().as_secs_f64();
                    reject(format!("alignment failed: {e}"));
                    continue;
                }
            };
            times.align += t.elapsed().as_secs_f64();
            batch.push((
                i,
                Aligned {
                    photo,
                    face,
                    faces_found: found.len(),
                },
            ));
        }
        if batch.is_empty() {
            continue;
        }
        let t = Instant::now();
        let crops: Vec<&RgbImage> = batch.iter().map(|(_, a)| &a.face.crop).collect();
        let x = to_input(&crops, model.device);
        let (_, y) = model.apply(&x);
        let outs = to_images(&y)?;
        times.edit += t.elapsed().as_secs_f64();
        let t = Instant::now();
        let blurs = to_images(&tch::no_grad(|| diat_nets::blur::gaussian_blur(&x, sigma)))?;
        times.scoring += t.elapsed().as_secs_f64();
        // The three versions of each photo, scored together below.
        let mut versions: Vec<[RgbImage; 2]> = Vec::with_capacity(batch.len());
        for ((i, a), (out, blur)) in batch.iter().zip(outs.iter().zip(&blurs)) {
            let t = Instant::now();
            let edited = diat_align::paste_back_with(&a.photo, &a.face, out, &paste)?;
            times.paste += t.elapsed().as_secs_f64();
            if let Some(dir) = &cfg.out {
                let t = Instant::now();
                diat_align::save_image(&dir.join(format!("{}.png", order[*i].stem())), &edited)?;
                times.write += t.elapsed().as_secs_f64();
            }
            let t = Instant::now();
            let blurred = diat_align::paste_back_with(&a.photo, &a.face, blur, &paste)?;
            if let Some(r) = &region {
                let (o, n) = changes_outside_region(&a.photo, &edited, &a.face, r, size);
                outside.photos_changed += usize::from(o > 0);
                outside.pixels_changed += o;
                outside.pixels_changed_anywhere += n;
            }
            times.scoring += t.elapsed().as_secs_f64();
            versions.push([edited, blurred]);
        }
        // Scoring: dlib chips and classifier crops of the photo, the edited and the blurred one,
        // all cut with the landmarks detected on the photo.
        let t = Instant::now();
        let mut faces = Vec::with_capacity(3 * batch.len());
        let mut cls: [Vec<RgbImage>; 3] = Default::default();
        for ((_, a), [edited, blurred]) in batch.iter().zip(&versions) {
            let lm = &a.face.landmarks;
            for img in [&a.photo, edited, blurred] {
                faces.push((img, lm));
            }
            // The photo is already aligned (the model's input came from it); the edited and
            // blurred photos are aligned anew with the same landmarks, hence the same transform.
            cls[0].push(crop_aligned(&a.face.aligned, cls_win)?);
            cls[1].push(align_face(edited, lm, cls_win, None)?.crop);
            cls[2].push(align_face(blurred, lm, cls_win, None)?.crop);
        }
        let descs = describe(descriptor, &faces)?;
        // probs[version][attribute][photo of the batch]
        let mut probs: Vec<Vec<Vec<f64>>> = Vec::with_capacity(3);
        for version in &cls {
            probs.push(
                attributes
                    .iter()
                    .map(|a| classifier.probability(version, a))
                    .collect::<Result<_>>()?,
            );
        }
        times.scoring += t.elapsed().as_secs_f64();
        for (j, ((i, a), [edited, _])) in batch.into_iter().zip(versions).enumerate() {
            let at = |v: usize| (0..attributes.len()).map(|k| probs[v][k][j]).collect();
            let scored = Scored {
                faces_found: a.faces_found,
                descs: [descs[3 * j], descs[3 * j + 1], descs[3 * j + 2]],
                probs: [at(0), at(1), at(2)],
            };
            let eligible = cfg.direction.wants_input(scored.probs[0][target] > 0.5);
            if eligible && for_sheet.len() < cfg.sheet_photos {
                for_sheet.push((i, a.photo, edited));
            }
            done[i] = Some(scored);
        }
    }
    progress.finish();
    times.path = times.decode + times.detect + times.align + times.edit + times.paste + times.write;
    times.photos_per_second = order.len() as f64 / times.path.max(1e-9);
    let desc = |i: usize, version: usize| done[i].as_ref().map(|s| &s.descs[version]);

    // Verification per pair.
    let mut conds: [Vec<(f64, bool)>; 3] = Default::default();
    let mut pair_detail = Vec::new();
    for p in pairs {
        let (a, b) = (index[&p.first], index[&p.second]);
        let (Some(b0), Some(_)) = (desc(b, 0), desc(a, 0)) else {
            continue;
        };
        let mut d = [0.0; 3];
        for (version, list) in conds.iter_mut().enumerate() {
            let av = desc(a, version).expect("scored");
            d[version] = distance(av, b0);
            list.push((d[version], p.same));
        }
        pair_detail.push(PairScore {
            first: p.first.stem(),
            second: p.second.stem(),
            same: p.same,
            before: d[0],
            after: d[1],
            blurred: d[2],
        });
    }
    let pairs_scored = conds[0].len();
    let verification_rows = vec![
        verification("before", &conds[0]),
        verification("after edit", &conds[1]),
        verification("blurred input", &conds[2]),
    ];

    // Attributes on the eligible photos.
    let scores: Vec<LfwPhotoScore> = done
        .iter()
        .enumerate()
        .filter_map(|(i, s)| {
            let s = s.as_ref()?;
            Some(LfwPhotoScore {
                photo: order[i].stem(),
                faces_found: s.faces_found,
                eligible: cfg.direction.wants_input(s.probs[0][target] > 0.5),
                before: s.probs[0].clone(),
                after: s.probs[1].clone(),
                blurred: s.probs[2].clone(),
                distance_to_original: distance(&s.descs[1], &s.descs[0]),
            })
        })
        .collect();
    let photos_edited = scores.len();
    let eligible: Vec<&LfwPhotoScore> = scores.iter().filter(|s| s.eligible).collect();
    let m = eligible.len().max(1) as f64;
    let attribute_success = [("identity", 0), ("blurred input", 2), ("model", 1)]
        .iter()
        .map(|&(name, v)| {
            let p = |s: &LfwPhotoScore| match v {
                0 => s.before[target],
                1 => s.after[target],
                _ => s.blurred[target],
            };
            AttributeSuccess {
                condition: name.into(),
                success: eligible
                    .iter()
                    .filter(|s| cfg.direction.success(p(s)))
                    .count() as f64
                    / m,
                mean_probability: eligible.iter().map(|s| p(s)).sum::<f64>() / m,
            }
        })
        .collect();
    let paper: Vec<String> = diat_celeba::sets::paper_tasks()
        .into_iter()
        .map(|t| t.attribute)
        .collect();
    let same_call = |s: &LfwPhotoScore, a: usize| (s.before[a] > 0.5) == (s.after[a] > 0.5);
    let others: Vec<usize> = (0..attributes.len()).filter(|&a| a != target).collect();
    let unchanged = others
        .iter()
        .map(|&a| Unchanged {
            attribute: attributes[a].clone(),
            paper: paper.contains(&attributes[a]),
            unchanged: eligible.iter().filter(|s| same_call(s, a)).count() as f64 / m,
        })
        .collect();
    let all_paper_unchanged = eligible
        .iter()
        .filter(|s| {
            others
                .iter()
                .filter(|&&a| paper.contains(&attributes[a]))
                .all(|&a| same_call(s, a))
        })
        .count() as f64
        / m;
    let mut rejected_by_reason = BTreeMap::new();
    for r in &rejected {
        let kind = r.reason.split(':').next().unwrap_or(&r.reason).to_string();
        *rejected_by_reason.entry(kind).or_insert(0) += 1;
    }
    let identity_kept = scores
        .iter()
        .filter(|s| s.distance_to_original < SAME_PERSON_THRESHOLD)
        .count() as f64
        / scores.len().max(1) as f64;
    // The sheet: the first eligible photos, before | after.
    let by_stem: HashMap<String, &LfwPhotoScore> =
        scores.iter().map(|s| (s.photo.clone(), s)).collect();
    let sheet_pairs: Vec<SheetPair<'_>> = for_sheet
        .iter()
        .map(|(i, before, after)| {
            let s = by_stem[&order[*i].stem()];
            SheetPair {
                before,
                after,
                before_caption: format!("p={:.2}", s.before[target]),
                after_caption: format!("p={:.2} d={:.2}", s.after[target], s.distance_to_original),
                ok: cfg.direction.success(s.after[target])
                    && s.distance_to_original < SAME_PERSON_THRESHOLD,
            }
        })
        .collect();
    let sheet = pair_sheet(&sheet_pairs);
    let report = LfwReport {
        model: model.source.display().to_string(),
        task: model.task.clone(),
        enhancement: model.enhancement().into(),
        image_size: model.image_size,
        attribute: cfg.attribute.clone(),
        direction: cfg.direction,
        classifier: classifier.source.display().to_string(),
        descriptor: "dlib_face_recognition_resnet_model_v1 (diat port)".into(),
        same_person_threshold: SAME_PERSON_THRESHOLD,
        pairs_file: pairs_file.display().to_string(),
        images: images.display().to_string(),
        pairs: pairs.len(),
        pairs_scored,
        photos: order.len(),
        photos_edited,
        rejected,
        rejected_by_reason,
        verification: verification_rows,
        identity_kept,
        attributes,
        eligibility: format!(
            "classifier: P({}) {} 0.5 before the edit",
            cfg.attribute,
            match cfg.direction {
                Direction::Add => "≤",
                Direction::Remove => ">",
            }
        ),
        eligible: eligible.len(),
        attribute_success,
        all_paper_unchanged,
        unchanged,
        outside_region: region.is_some().then_some(outside),
        times,
        photos_scored: scores,
        pairs_scored_detail: pair_detail,
    };
    Ok((report, sheet))
}

/// The report as text.
pub fn table(r: &LfwReport) -> String {
    let pct = |v: f64| format!("{:.1}%", 100.0 * v);
    let mut t = format!(
        "{} ({} {}) on LFW: {} pair(s) of {}, {} photo(s), {} edited, {} rejected{}\n",
        r.model,
        r.attribute,
        r.direction.name(),
        r.pairs,
        r.pairs_file,
        r.photos,
        r.photos_edited,
        r.rejected.len(),
        if r.rejected_by_reason.is_empty() {
            String::new()
        } else {
            format!(
                " ({})",
                r.rejected_by_reason
                    .iter()
                    .map(|(k, n)| format!("{k}: {n}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
    );
    t.push_str(&format!(
        "\nidentity across photos ({} pairs scored; dlib distance, same person < {}):\n",
        r.pairs_scored, r.same_person_threshold
    ));
    t.push_str(&format!(
        "{:<14} {:>9} {:>14} {:>18} {:>7} {:>10} {:>10}\n",
        "first photo", "accuracy", "same verified", "different apart", "AUC", "d same", "d diff"
    ));
    for v in &r.verification {
        t.push_str(&format!(
            "{:<14} {:>9} {:>14} {:>18} {:>7.4} {:>10.3} {:>10.3}\n",
            v.condition,
            pct(v.accuracy),
            pct(v.same_verified),
            pct(v.different_rejected),
            v.auc,
            v.mean_same_distance,
            v.mean_different_distance
        ));
    }
    if let [before, after, ..] = &r.verification[..]
        && before.same_verified > 0.0
    {
        t.push_str(&format!(
            "same-person pairs still verified after the edit: {} of the before-edit rate\n",
            pct(after.same_verified / before.same_verified)
        ));
    }
    t.push_str(&format!(
        "edited photo vs its original: identity kept on {}\n",
        pct(r.identity_kept)
    ));
    t.push_str(&format!(
        "\n{} eligible photo(s) ({}):\n",
        r.eligible, r.eligibility
    ));
    for s in &r.attribute_success {
        t.push_str(&format!(
            "  {:<14} success {:>7}  mean p {:.3}\n",
            s.condition,
            pct(s.success),
            s.mean_probability
        ));
    }
    t.push_str(&format!(
        "  other paper attributes all unchanged: {}\n",
        pct(r.all_paper_unchanged)
    ));
    for u in &r.unchanged {
        t.push_str(&format!(
            "    {:<20} unchanged {:>7}{}\n",
            u.attribute,
            pct(u.unchanged),
            if u.paper {
                ""
            } else {
                "  (not a paper attribute)"
            }
        ));
    }
    if let Some(o) = &r.outside_region {
        t.push_str(&format!(
            "\noutside the attribute region: {} pixel(s) changed in {} photo(s) ({} changed in all)\n",
            o.pixels_changed, o.photos_changed, o.pixels_changed_anywhere
        ));
    }
    let s = &r.times;
    t.push_str(&format!(
        "\npath: {:.2} photos/s ({:.1} s: decode {:.1}, detect {:.1}, align {:.1}, edit {:.1}, paste back {:.1}, write {:.1}); scoring {:.1} s\n",
        s.photos_per_second, s.path, s.decode, s.detect, s.align, s.edit, s.paste, s.write, s.scoring
    ));
    if !r.rejected.is_empty() {
        t.push_str(&format!("{} photo(s) rejected:\n", r.rejected.len()));
        for x in r.rejected.iter().take(10) {
            t.push_str(&format!("  {}: {}\n", x.source, x.reason));
        }
        if r.rejected.len() > 10 {
            t.push_str(&format!("  … {} more in --json\n", r.rejected.len() - 10));
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn pairs_files_are_read_and_checked() {
        let d = tempfile::tempdir().unwrap();
        let ok = write(
            d.path(),
            "dev.txt",
            "2\nA_B\t1\t2\nC\t1\t3\nA_B\t1\tC\t2\nD 4 E 5\n",
        );
        let p = read_pairs(&ok).unwrap();
        assert_eq!(p.len(), 4);
        assert!(p[0].same && p[1].same && !p[2].same && !p[3].same);
        assert_eq!(p[0].first.stem(), "A_B_0001");
        assert_eq!(
            p[3].second.path(Path::new("/l")),
            Path::new("/l/E/E_0005.jpg")
        );
        let folds = write(d.path(), "v2.txt", "2 1\nA 1 2\nA 1 B 1\nC 1 2\nC 2 D 3\n");
        assert_eq!(read_pairs(&folds).unwrap().len(), 4);
        for (text, want) in [
            ("", "empty file"),
            ("x\n", "header"),
            ("2\nA 1 2\n", "1 pairs, the header"),
            ("1\nA 1 B 2\nA 1 2\n", ":2"),
            ("1\nA 1 2 3 4 5\nA 1 B 2\n", "expected `name n1 n2`"),
            ("1\nA 0 2\nA 1 B 2\n", "not a photo number"),
            ("1\n../x 1 2\nA 1 B 2\n", "path separator"),
        ] {
            let f = write(d.path(), "bad.txt", text);
            let e = read_pairs(&f).unwrap_err().to_string();
            assert!(e.contains(want) && e.contains("bad.txt"), "{text:?}: {e}");
        }
        let all = read_pairs(&ok).unwrap();
        let three = select_pairs(&all, Some(3));
        assert_eq!(three.iter().filter(|p| p.same).count(), 2);
        assert_eq!(three.len(), 3);
        assert_eq!(select_pairs(&all, None).len(), 4);
    }

    #[test]
    fn auc_and_verification() {
        assert_eq!(roc_auc(&[3.0, 4.0], &[1.0, 2.0]), 1.0);
        assert_eq!(roc_auc(&[1.0, 2.0], &[3.0, 4.0]), 0.0);
        assert_eq!(roc_auc(&[1.0], &[1.0]), 0.5);
        assert!((roc_auc(&[2.0, 4.0], &[1.0, 3.0]) - 0.75).abs() < 1e-12);
        assert!(roc_auc(&[], &[1.0]).is_nan());
        let v = verification("x", &[(0.3, true), (0.7, true), (0.8, false), (0.5, false)]);
        assert_eq!((v.same_pairs, v.different_pairs), (2, 2));
        assert_eq!(v.accuracy, 0.5);
        assert_eq!(v.same_verified, 0.5);
        assert_eq!(v.different_rejected, 0.5);
        assert!((v.auc - 0.75).abs() < 1e-12);
    }

    #[test]
    fn the_central_face_is_chosen() {
        let det = |x: f32, y: f32, s: f32| FaceDetection {
            bbox: [x, y, x + s, y + s],
            score: 0.99,
            landmarks: [[0.0; 2]; 5],
        };
        // A large face at the edge and a smaller one in the middle: the middle one.
        let found = [det(0.0, 0.0, 120.0), det(90.0, 90.0, 70.0)];
        assert_eq!(central_face(&found, 250, 250), Some(1));
        assert_eq!(central_face(&[], 250, 250), None);
    }
}
