//! Building packed stores from a CelebA copy: parallel decode + crop + resize (+ masks), streamed
//! in bounded chunks so memory stays flat whatever the dataset size. Corrupt, missing or wrongly
//! sized images are skipped and listed in `rejects.csv`; more than a configured fraction fails the
//! run (nothing is left under the final name).

use crate::crop::{CropSpec, Cropper, Reject};
use crate::dataset::Annotations;
use crate::error::{Error, Result};
use crate::layout::ImageReader;
use crate::masks::{MaskSpec, Region, mask_5};
use crate::store::{Manifest, MetaRow, StoreWriter};
use diat_common::Progress;
use rayon::prelude::*;
use std::path::{Path, PathBuf};

/// How to build a store.
#[derive(Debug, Clone)]
pub struct BuildConfig {
    pub crop: CropSpec,
    pub mask: MaskSpec,
    /// Fail when more than this fraction of images is rejected.
    pub max_reject_fraction: f64,
    pub overwrite: bool,
    /// Images decoded per parallel chunk (bounds memory).
    pub chunk: usize,
    /// 68-point landmarks (iBUG order, aligned-image coordinates) by image id: masks use the
    /// paper's own hulls for the images listed (`masks::read_landmarks_68`).
    pub landmarks68: Option<std::sync::Arc<std::collections::HashMap<String, Vec<f32>>>>,
}

impl Default for BuildConfig {
    fn default() -> Self {
        Self {
            crop: CropSpec::default(),
            mask: MaskSpec::default(),
            max_reject_fraction: 0.01,
            overwrite: true,
            chunk: 512,
            landmarks68: None,
        }
    }
}

/// One rejected image.
#[derive(Debug, Clone)]
pub struct RejectRow {
    pub id: String,
    pub source: String,
    pub reason: String,
}

/// A finished store and its rejects.
#[derive(Debug, Clone)]
pub struct Built {
    pub dir: PathBuf,
    pub manifest: Manifest,
    pub rejects: Vec<RejectRow>,
}

fn rejects_csv(rows: &[RejectRow]) -> String {
    let mut s = String::from("id,source,reason\n");
    for r in rows {
        let q = |v: &str| format!("\"{}\"", v.replace('"', "\"\""));
        s.push_str(&format!("{},{},{}\n", q(&r.id), q(&r.source), q(&r.reason)));
    }
    s
}

/// Decodes, crops and packs `rows` of `ann` into a store at `dir`.
#[allow(clippy::too_many_arguments)]
pub fn build_store(
    reader: &ImageReader,
    ann: &Annotations,
    rows: &[usize],
    dir: &Path,
    role: &str,
    task: Option<&str>,
    region: Option<Region>,
    seed: u64,
    details: serde_json::Value,
    cfg: &BuildConfig,
) -> Result<Built> {
    cfg.crop.validate().map_err(Error::Config)?;
    if rows.is_empty() {
        return Err(Error::Empty {
            what: format!("{role} store"),
            why: "no images selected".into(),
        });
    }
    if region.is_some() && ann.landmarks.is_none() {
        return Err(Error::Config("masks need the aligned landmark file".into()));
    }
    let mut writer = StoreWriter::create(
        dir,
        role,
        task,
        cfg.crop,
        seed,
        region.is_some(),
        cfg.overwrite,
    )?;
    let label = match task {
        Some(t) => format!("{t}/{role}"),
        None => role.to_string(),
    };
    let progress = Progress::new(label, Some(rows.len() as u64));
    // Decoding (rayon, chunk after chunk) overlaps with hashing + writing on a writer thread.
    type Decoded = std::result::Result<(Vec<u8>, Option<Vec<u8>>, MetaRow), Reject>;
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<(usize, Decoded)>>(2);
    let (writer, rejects) = std::thread::scope(|scope| -> Result<(StoreWriter, Vec<RejectRow>)> {
        let progress = &progress;
        let handle = scope.spawn(move || -> Result<(StoreWriter, Vec<RejectRow>)> {
            let mut rejects = Vec::new();
            for results in rx {
                let n = results.len() as u64;
                for (i, r) in results {
                    match r {
                        Ok((img, mask, meta)) => writer.push(&img, mask.as_deref(), meta)?,
                        Err(why) => {
                            tracing::debug!("rejected {}: {why}", ann.ids[i]);
                            rejects.push(RejectRow {
                                id: ann.ids[i].clone(),
                                source: reader.describe(&ann.ids[i]),
                                reason: why.to_string(),
                            })
                        }
                    }
                }
                progress.inc(n);
                progress.set_message(format!("{} rejected", rejects.len()));
            }
            Ok((writer, rejects))
        });
        for chunk in rows.chunks(cfg.chunk.max(1)) {
            let results: Vec<(usize, Decoded)> = chunk
                .par_iter()
                .map_init(
                    || {
                        (
                            reader.clone(),
                            Cropper::new(cfg.crop),
                            Vec::with_capacity(64 << 10),
                        )
                    },
                    |(reader, cropper, buf), &i| {
                        (i, decode_one(reader, cropper, buf, ann, i, region, cfg))
                    },
                )
                .collect();
            if tx.send(results).is_err() {
                break; // the writer failed; its error is returned below
            }
        }
        drop(tx);
        handle
            .join()
            .map_err(|_| Error::Config("store writer thread panicked".into()))?
    })?;
    progress.finish();
    let frac = rejects.len() as f64 / rows.len() as f64;
    if frac > cfg.max_reject_fraction || writer.is_empty() {
        // The staged store is discarded; the report stays beside where it would have been.
        let report = dir.with_file_name(format!(
            "{}.rejects.csv",
            dir.file_name().unwrap_or_default().to_string_lossy()
        ));
        diat_common::write_atomic(&report, rejects_csv(&rejects).as_bytes())
            .map_err(|e| Error::io(&report, e))?;
        return Err(Error::TooManyRejects {
            rejected: rejects.len(),
            total: rows.len(),
            pct: 100.0 * frac,
            limit_pct: 100.0 * cfg.max_reject_fraction,
            report,
        });
    }
    let mut details = details;
    if let Some(obj) = details.as_object_mut() {
        obj.insert("rejected".into(), rejects.len().into());
        obj.insert("selected".into(), rows.len().into());
    }
    let report = writer.staging_dir().join("rejects.csv");
    diat_common::write_atomic(&report, rejects_csv(&rejects).as_bytes())
        .map_err(|e| Error::io(&report, e))?;
    let manifest = writer.finish(details)?;
    Ok(Built {
        dir: dir.to_path_buf(),
        manifest,
        rejects,
    })
}

/// One decoded image: its crop's pixels, mask (masked sets) and metadata row.
type Decoded = (Vec<u8>, Option<Vec<u8>>, MetaRow);

/// Reads, decodes, crops one image and computes its landmarks and mask.
fn decode_one(
    reader: &mut ImageReader,
    cropper: &mut Cropper,
    buf: &mut Vec<u8>,
    ann: &Annotations,
    i: usize,
    region: Option<Region>,
    cfg: &BuildConfig,
) -> std::result::Result<Decoded, Reject> {
    let id = &ann.ids[i];
    let side = cfg.crop.size;
    reader
        .read_into(id, buf)
        .map_err(|e| Reject::Missing(e.to_string()))?;
    let mut img = vec![0u8; cfg.crop.image_bytes()];
    cropper.process(buf, &mut img)?;
    let lm = ann
        .landmarks
        .as_ref()
        .and_then(|l| l[i])
        .map(|l| cfg.crop.map_landmarks(&l));
    let lm68 = cfg.landmarks68.as_ref().and_then(|m| m.get(id));
    let mask = match (region, &lm) {
        (None, _) => None,
        (Some(r), _) if lm68.is_some() => {
            let pts = lm68.expect("checked");
            let mapped: Vec<f32> = pts
                .chunks_exact(2)
                .flat_map(|p| {
                    let (x, y) = cfg.crop.map_point(p[0], p[1]);
                    [x, y]
                })
                .collect();
            let (hull, margin) = crate::masks::region_points_68(&mapped, r, &cfg.mask);
            let mut m = vec![0u8; (side * side) as usize];
            crate::masks::rasterize(&hull, margin, side, &mut m);
            Some(m)
        }
        (Some(r), Some(lm)) => {
            let mut m = vec![0u8; (side * side) as usize];
            mask_5(lm, r, &cfg.mask, side, &mut m);
            Some(m)
        }
        (Some(_), None) => {
            return Err(Reject::Missing(
                "no landmarks for the attribute mask".into(),
            ));
        }
    };
    let meta = MetaRow {
        id: id.clone(),
        split: ann.split.as_ref().and_then(|s| s[i]),
        identity: ann.identity.as_ref().and_then(|s| s[i]),
        attrs: ann.attrs[i],
        landmarks: lm.unwrap_or([f32::NAN; 10]),
        cluster: ann.cluster.as_ref().and_then(|c| c[i]),
    };
    Ok((img, mask, meta))
}
