//! A CelebA-format dataset from real photos aligned by `diat align` (`diat data from-aligned`):
//! the official layout — `Img/img_align_celeba/*.jpg` (178×218), `Anno/list_attr_celeba.txt`,
//! `Anno/identity_CelebA.txt`, `Anno/list_landmarks_align_celeba.txt` (the detector's 5 points in
//! the aligned frame), `Eval/list_eval_partition.txt` — restricted to the faces kept, so that
//! `diat data inspect`/`prepare` and every CelebA tool read it unchanged.
//!
//! The photos must be named by CelebA image id (their attributes and identities are taken from
//! CelebA's files). The partition is made anew by identity ([`identity_split`], seeded): real
//! faces from one CelebA split must not share people between training and evaluation. Every face
//! left out is listed with its reason in `report.json` (no CelebA labels, crop window mostly
//! outside the photo, more than one face, not aligned).
//!
//! ```no_run
//! use diat_celeba::export::{FromAligned, from_aligned};
//! # fn main() -> diat_celeba::Result<()> {
//! let r = from_aligned(&FromAligned::new("aligned/faces.json", "celeba", "celeba-real"))?;
//! println!("{} images kept, {} left out", r.kept, r.left_out());
//! # Ok(())
//! # }
//! ```

use crate::annotations::{ATTRIBUTE_NAMES, FileKind, LANDMARK_NAMES, read_table};
use crate::error::{Error, Result};
use crate::layout::Layout;
use crate::split::{DEFAULT_SEED, identity_split};
use diat_align::FacesJson;
use rayon::prelude::*;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// What [`from_aligned`] reads and writes.
#[derive(Debug, Clone)]
pub struct FromAligned {
    /// `faces.json` of `diat align --aligned` (its folder holds `aligned/`).
    pub faces_json: PathBuf,
    /// A CelebA root whose attribute and identity files label the photos.
    pub celeba: PathBuf,
    /// The dataset root to create (must not exist, unless `overwrite`).
    pub out: PathBuf,
    /// Faces whose 178×178 training window lies less than this much inside the photo are left
    /// out (alignment fills the rest by repeating the photo's edge).
    pub min_coverage: f32,
    /// Seed of the identity division.
    pub seed: u64,
    /// JPEG quality of the aligned images.
    pub jpeg_quality: u8,
    pub overwrite: bool,
}

impl FromAligned {
    /// Coverage ≥ 0.75, the default identity seed, JPEG quality 95.
    pub fn new(
        faces_json: impl Into<PathBuf>,
        celeba: impl Into<PathBuf>,
        out: impl Into<PathBuf>,
    ) -> Self {
        FromAligned {
            faces_json: faces_json.into(),
            celeba: celeba.into(),
            out: out.into(),
            min_coverage: 0.75,
            seed: DEFAULT_SEED,
            jpeg_quality: 95,
            overwrite: false,
        }
    }
}

/// One side of the division.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SideCount {
    pub images: usize,
    pub identities: usize,
}

/// What [`from_aligned`] wrote (also `OUT/report.json`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct FromAlignedReport {
    pub root: PathBuf,
    pub faces_json: PathBuf,
    pub celeba: PathBuf,
    pub seed: u64,
    pub min_coverage: f32,
    /// Photos in faces.json, faces found in them.
    pub photos: usize,
    pub faces: usize,
    pub kept: usize,
    /// Image ids left out, by reason.
    pub left_out: BTreeMap<String, Vec<String>>,
    /// train, val, test.
    pub splits: [SideCount; 3],
}

impl FromAlignedReport {
    /// Faces and photos left out, all reasons.
    pub fn left_out(&self) -> usize {
        self.left_out.values().map(Vec::len).sum()
    }

    /// The summary `diat data from-aligned` prints.
    pub fn text(&self) -> String {
        let mut s = format!(
            "{} images in CelebA's layout at {} ({} photos, {} faces)\n",
            self.kept,
            self.root.display(),
            self.photos,
            self.faces
        );
        for (i, name) in ["train", "val", "test"].iter().enumerate() {
            let c = &self.splits[i];
            let _ = writeln!(
                s,
                "  {name}: {} images, {} identities",
                c.images, c.identities
            );
        }
        for (why, ids) in &self.left_out {
            let _ = writeln!(s, "  left out, {why}: {}", ids.len());
        }
        let _ = writeln!(
            s,
            "  division by identity, seed {}; report.json lists every image left out",
            self.seed
        );
        s
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |e| Error::io(path, e)
}

/// Builds the dataset (see the module documentation); the root is written under a temporary
/// name and renamed when complete.
pub fn from_aligned(opts: &FromAligned) -> Result<FromAlignedReport> {
    let doc = FacesJson::read(&opts.faces_json).map_err(|e| Error::Config(e.to_string()))?;
    let base = opts.faces_json.parent().unwrap_or(Path::new("."));
    let layout = Layout::detect(&opts.celeba)?;
    let attrs = read_table(&layout.attributes, FileKind::Attributes)?;
    let identity_path = layout.identity.clone().ok_or_else(|| Error::Layout {
        root: opts.celeba.clone(),
        msg: "no identity file (Anno/identity_CelebA.txt): the division is by identity".into(),
    })?;
    let ids = read_table(&identity_path, FileKind::Identity)?;
    let (attr_row, id_row) = (attrs.positions(), ids.positions());

    let mut report = FromAlignedReport {
        root: opts.out.clone(),
        faces_json: opts.faces_json.clone(),
        celeba: opts.celeba.clone(),
        seed: opts.seed,
        min_coverage: opts.min_coverage,
        photos: doc.photos.len(),
        faces: doc.faces.len(),
        ..Default::default()
    };
    let mut leave =
        |why: &str, id: String| report.left_out.entry(why.to_string()).or_default().push(id);
    for p in doc.photos.iter().filter(|p| p.faces == 0) {
        leave(&format!("not aligned ({})", p.status), image_id(&p.photo));
    }
    let mut faces_of: HashMap<&str, usize> = HashMap::new();
    for f in &doc.faces {
        *faces_of.entry(f.photo.as_str()).or_default() += 1;
    }
    // (image id, aligned file, landmarks in the aligned frame, identity)
    let mut kept: Vec<(String, PathBuf, [i32; 10], u32)> = Vec::new();
    for f in &doc.faces {
        let id = image_id(&f.photo);
        if faces_of[f.photo.as_str()] > 1 {
            if f.index == 0 {
                leave("more than one face (align with --largest)", id);
            }
            continue;
        }
        let Some(file) = &f.aligned_file else {
            leave("no aligned image (align without --crop)", id);
            continue;
        };
        let (Some(_), Some(&ir)) = (attr_row.get(id.as_str()), id_row.get(id.as_str())) else {
            leave("not in CelebA's attribute or identity file", id);
            continue;
        };
        if f.coverage < opts.min_coverage {
            leave("training window mostly outside the photo", id);
            continue;
        }
        let mut lm = [0i32; 10];
        for (k, q) in f.aligned_landmarks().iter().enumerate() {
            lm[2 * k] = q[0].round() as i32;
            lm[2 * k + 1] = q[1].round() as i32;
        }
        kept.push((id, base.join(file), lm, ids.row(ir)[0] as u32));
    }
    kept.sort_by(|a, b| a.0.cmp(&b.0));
    if let Some(w) = kept.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(Error::Config(format!(
            "{}: image id {} appears twice (two photos of one name)",
            opts.faces_json.display(),
            w[0].0
        )));
    }
    if kept.is_empty() {
        return Err(Error::Config(format!(
            "{}: no face to keep ({} left out)",
            opts.faces_json.display(),
            report.left_out()
        )));
    }
    report.kept = kept.len();

    let staged = diat_common::StagedDir::new(&opts.out, opts.overwrite).map_err(io(&opts.out))?;
    let root = staged.path().to_path_buf();
    let img_dir = root.join("Img/img_align_celeba");
    for d in [&img_dir, &root.join("Anno"), &root.join("Eval")] {
        std::fs::create_dir_all(d).map_err(io(d))?;
    }
    // Images: the aligned PNGs as JPEGs, in parallel.
    kept.par_iter()
        .try_for_each(|(id, src, _, _)| -> Result<()> {
            let img = diat_align::load_photo(src).map_err(|e| Error::Config(e.to_string()))?;
            if img.dimensions() != (diat_align::ALIGNED_WIDTH, diat_align::ALIGNED_HEIGHT) {
                return Err(Error::invalid(
                    src,
                    "not a 178×218 aligned image".to_string(),
                ));
            }
            let dest = img_dir.join(id);
            let mut bytes = Vec::new();
            image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, opts.jpeg_quality)
                .encode_image(&img)
                .map_err(|e| Error::invalid(&dest, e.to_string()))?;
            std::fs::write(&dest, bytes).map_err(io(&dest))
        })?;

    // Annotation files in the official text format.
    let n = kept.len();
    let mut attr_txt = format!("{n}\n{}\n", ATTRIBUTE_NAMES.join(" "));
    let mut lm_txt = format!("{n}\n{}\n", LANDMARK_NAMES.join(" "));
    let (mut id_txt, mut part_txt) = (String::new(), String::new());
    let mut people: [std::collections::BTreeSet<u32>; 3] = Default::default();
    for (id, _, lm, person) in &kept {
        let row = attrs.row(attr_row[id.as_str()]);
        let _ = write!(attr_txt, "{id}");
        for v in row {
            let _ = write!(attr_txt, " {v:>2}");
        }
        attr_txt.push('\n');
        let _ = write!(lm_txt, "{id}");
        for v in lm {
            let _ = write!(lm_txt, " {v:>4}");
        }
        lm_txt.push('\n');
        let _ = writeln!(id_txt, "{id} {person}");
        let code = identity_split(*person, opts.seed).partition_code();
        let _ = writeln!(part_txt, "{id} {code}");
        let code = usize::from(code);
        report.splits[code].images += 1;
        people[code].insert(*person);
    }
    for (c, p) in report.splits.iter_mut().zip(&people) {
        c.identities = p.len();
    }
    let json = serde_json::to_string_pretty(&report).map_err(|e| Error::Config(e.to_string()))?;
    for (rel, text) in [
        ("Anno/list_attr_celeba.txt", attr_txt.as_str()),
        ("Anno/list_landmarks_align_celeba.txt", lm_txt.as_str()),
        ("Anno/identity_CelebA.txt", id_txt.as_str()),
        ("Eval/list_eval_partition.txt", part_txt.as_str()),
        ("report.json", json.as_str()),
    ] {
        let p = root.join(rel);
        diat_common::write_atomic(&p, text.as_bytes()).map_err(io(&p))?;
    }
    staged.commit().map_err(io(&opts.out))?;
    Ok(report)
}

/// The CelebA image id of a photo path: its file name (`…/000123.jpg` → `000123.jpg`), with a
/// `.png` or `.jpeg` name mapped to `.jpg`.
fn image_id(photo: &str) -> String {
    let stem = Path::new(photo)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!("{stem}.jpg")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_from_photo_names() {
        assert_eq!(image_id("/a/b/000123.jpg"), "000123.jpg");
        assert_eq!(image_id("000123.png"), "000123.jpg");
    }
}
