//! The two halves of `diat align` as library calls (paper §5.4): whole photos into CelebA's
//! frame ([`align_photos`]: find the faces, align each, write `aligned/`, `crop/` and
//! `faces.json`), and edited crops back into their photos ([`paste_back_photos`]).
//!
//! Faces come from a [`FaceFinder`]: a landmark file ([`LandmarkFile`] implements it, no
//! libtorch) or a detector (`diat_eval::apply::MtcnnFinder` wraps MTCNN).
//!
//! ```no_run
//! use diat_align::workflow::{AlignOptions, align_photos, collect_photos, paste_back_photos};
//! use diat_align::{LandmarkFile, PasteOptions};
//! use std::path::{Path, PathBuf};
//!
//! # fn main() -> diat_align::Result<()> {
//! let photos = collect_photos(&[PathBuf::from("photos/")])?;
//! let landmarks = LandmarkFile::read(Path::new("photos/landmarks.csv"))?;
//! let aligned = align_photos(&photos, &landmarks, &AlignOptions::new("aligned-out"))?;
//! println!("{} faces", aligned.doc.faces.len());
//! // … edit aligned-out/crop/*.png with a model (`diat apply`) into edited/ …
//! let back = paste_back_photos(
//!     &aligned.json_path,
//!     Path::new("edited"),
//!     Path::new("pasted"),
//!     &PasteOptions::default(),
//! )?;
//! println!("{} photos written", back.written.len());
//! # Ok(())
//! # }
//! ```

use crate::{
    AlignError, AlignedFace, CropWindow, FacesJson, LandmarkFile, Landmarks, PasteMode,
    PasteOptions, PhotoEntry, Result, align_face, crop_aligned, load_photo, paste_into, save_image,
};
use image::RgbImage;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// Where the faces of a photo come from.
pub trait FaceFinder {
    /// Recorded as `faces.json`'s `landmarks_from` ("mtcnn", or the landmark file).
    fn describe(&self) -> String;
    /// The faces of `photo` (read from `path`), aligned to `window`, largest first; only the
    /// largest with `largest`. An empty result means no face.
    fn find(
        &self,
        path: &Path,
        photo: &RgbImage,
        window: CropWindow,
        largest: bool,
    ) -> std::result::Result<Vec<AlignedFace>, Box<dyn std::error::Error + Send + Sync>>;
}

/// A face's extent for "largest first": eye-to-mouth distance plus eye distance.
fn extent(l: &Landmarks) -> f64 {
    let e = [(l[0][0] + l[1][0]) / 2.0, (l[0][1] + l[1][1]) / 2.0];
    let m = [(l[3][0] + l[4][0]) / 2.0, (l[3][1] + l[4][1]) / 2.0];
    (e[0] - m[0]).hypot(e[1] - m[1]) + (l[0][0] - l[1][0]).hypot(l[0][1] - l[1][1])
}

impl FaceFinder for LandmarkFile {
    fn describe(&self) -> String {
        self.path.display().to_string()
    }

    fn find(
        &self,
        path: &Path,
        photo: &RgbImage,
        window: CropWindow,
        largest: bool,
    ) -> std::result::Result<Vec<AlignedFace>, Box<dyn std::error::Error + Send + Sync>> {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut found = self.faces_of(&name);
        found.sort_by(|a, b| extent(b).total_cmp(&extent(a)));
        if largest {
            found.truncate(1);
        }
        Ok(found
            .iter()
            .map(|lm| align_face(photo, lm, window, None))
            .collect::<Result<_>>()?)
    }
}

/// What [`align_photos`] writes.
#[derive(Debug, Clone)]
pub struct AlignOptions {
    /// Output folder: `aligned/`, `crop/`, `faces.json`.
    pub out: PathBuf,
    /// The crop window (a model's training crop: `diat_eval::apply::crop_window(size)`).
    pub window: CropWindow,
    /// Only the largest face of each photo.
    pub largest: bool,
    /// Write the 178×218 aligned images.
    pub write_aligned: bool,
    /// Write the crops.
    pub write_crop: bool,
}

impl AlignOptions {
    /// Every face, both images, the 128 px training crop.
    pub fn new(out: impl Into<PathBuf>) -> Self {
        AlignOptions {
            out: out.into(),
            window: CropWindow::default(),
            largest: false,
            write_aligned: true,
            write_crop: true,
        }
    }
}

/// What [`align_photos`] did.
#[derive(Debug, Clone)]
pub struct AlignReport {
    /// The `faces.json` written (every photo is in `doc.photos`, with its status).
    pub doc: FacesJson,
    pub json_path: PathBuf,
    /// Photos without a face.
    pub faceless: usize,
    /// Photos that could not be read or aligned.
    pub failed: usize,
}

impl AlignReport {
    /// Photos skipped (no face, or failed).
    pub fn skipped(&self) -> usize {
        self.faceless + self.failed
    }
}

/// Input photos: files as given, folders' JPEG/PNG images sorted by name.
pub fn collect_photos(inputs: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for input in inputs {
        if input.is_dir() {
            let io = |source| AlignError::Io {
                path: input.clone(),
                source,
            };
            let mut found: Vec<PathBuf> = std::fs::read_dir(input)
                .map_err(io)?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file() && crate::is_photo_name(p))
                .collect();
            found.sort();
            out.extend(found);
        } else if input.is_file() {
            out.push(input.clone());
        } else {
            return Err(AlignError::Invalid(format!(
                "{}: no such file or folder",
                input.display()
            )));
        }
    }
    Ok(out)
}

/// A file stem not used yet (photos of the same name in different folders get `-2`, `-3`, …).
fn unique_stem(path: &Path, used: &mut HashSet<String>) -> String {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "photo".into());
    let mut candidate = stem.clone();
    let mut n = 2;
    while !used.insert(candidate.clone()) {
        candidate = format!("{stem}-{n}");
        n += 1;
    }
    candidate
}

/// Aligns every face of `photos` into `opts.out` (`aligned/NAME_K.png`, `crop/NAME_K.png`) and
/// writes `faces.json` (atomically) recording each photo (with its status: "ok", "no face" or
/// the error) and each face (box, score, landmarks, transform). A photo that cannot be read or
/// aligned is reported and skipped; an output that cannot be written is an error.
pub fn align_photos(
    photos: &[PathBuf],
    finder: &dyn FaceFinder,
    opts: &AlignOptions,
) -> Result<AlignReport> {
    opts.window.validate().map_err(AlignError::Invalid)?;
    if photos.is_empty() {
        return Err(AlignError::Invalid(
            "no photo found (JPEG or PNG)".to_string(),
        ));
    }
    std::fs::create_dir_all(&opts.out).map_err(|source| AlignError::Io {
        path: opts.out.clone(),
        source,
    })?;
    let mut doc = FacesJson {
        version: 1,
        landmarks_from: finder.describe(),
        template: crate::CELEBA_TEMPLATE,
        aligned_size: [crate::ALIGNED_WIDTH, crate::ALIGNED_HEIGHT],
        photos: Vec::new(),
        faces: Vec::new(),
    };
    let mut used = HashSet::new();
    let (mut failed, mut faceless) = (0usize, 0usize);
    for path in photos {
        let shown = path.display().to_string();
        let entry = |size, faces, status: String| PhotoEntry {
            photo: shown.clone(),
            size,
            faces,
            status,
        };
        let photo = match load_photo(path) {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!("{e}: skipped");
                failed += 1;
                doc.photos.push(entry(None, 0, e.to_string()));
                continue;
            }
        };
        let size = [photo.width(), photo.height()];
        let faces = match finder.find(path, &photo, opts.window, opts.largest) {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!("{shown}: {e}: skipped");
                failed += 1;
                doc.photos.push(entry(Some(size), 0, e.to_string()));
                continue;
            }
        };
        if faces.is_empty() {
            tracing::warn!("{shown}: no face found, skipped");
            faceless += 1;
            doc.photos.push(entry(Some(size), 0, "no face".into()));
            continue;
        }
        let stem = unique_stem(path, &mut used);
        for (k, face) in faces.iter().enumerate() {
            let name = format!("{stem}_{k}.png");
            let mut rec = face.record(&shown, size, k);
            if opts.write_aligned {
                let rel = format!("aligned/{name}");
                save_image(&opts.out.join(&rel), &face.aligned)?;
                rec.aligned_file = Some(rel);
            }
            if opts.write_crop {
                let rel = format!("crop/{name}");
                save_image(&opts.out.join(&rel), &face.crop)?;
                rec.crop_file = Some(rel);
            }
            if face.coverage < 0.9 {
                tracing::warn!(
                    "{shown} face {k}: only {:.0}% of the crop lies inside the photo (the rest repeats its edge)",
                    100.0 * face.coverage
                );
            }
            doc.faces.push(rec);
        }
        tracing::info!("{shown}: {} face(s)", faces.len());
        doc.photos.push(entry(Some(size), faces.len(), "ok".into()));
    }
    let json_path = opts.out.join("faces.json");
    let text =
        serde_json::to_string_pretty(&doc).map_err(|e| AlignError::Invalid(e.to_string()))?;
    diat_common::write_atomic(&json_path, text.as_bytes()).map_err(|source| AlignError::Io {
        path: json_path.clone(),
        source,
    })?;
    Ok(AlignReport {
        doc,
        json_path,
        faceless,
        failed,
    })
}

/// An edited file for `rel` (e.g. `crop/x_0.png`) in `dir`: the same name, or the same stem as
/// .png/.jpg/.jpeg.
fn find_edited(dir: &Path, rel: &str) -> Option<PathBuf> {
    let name = Path::new(rel);
    let stem = name.file_stem()?.to_string_lossy().into_owned();
    let direct = dir.join(name.file_name()?);
    if direct.is_file() {
        return Some(direct);
    }
    ["png", "jpg", "jpeg"]
        .iter()
        .map(|e| dir.join(format!("{stem}.{e}")))
        .find(|p| p.is_file())
}

/// What [`paste_back_photos`] did.
#[derive(Debug, Clone, Default)]
pub struct PasteBackReport {
    /// The photos written.
    pub written: Vec<PathBuf>,
    /// Faces of `faces.json` without an edited image (left as they were).
    pub missing: usize,
}

/// Pastes the edited crops (or aligned images) in `edited_dir`, named like `faces.json`'s
/// `crop/`/`aligned/` files (any of .png/.jpg/.jpeg), back into their photos, written to `out`
/// as `STEM.jpg`/`STEM.png` (the photo's own format). The edit may have any square size (a
/// model's own resolution). [`PasteMode::Residual`] adds only the edit to the photo; the
/// unedited crop is recomputed from the photo exactly as [`align_photos`] made it.
pub fn paste_back_photos(
    faces_json: &Path,
    edited_dir: &Path,
    out: &Path,
    opts: &PasteOptions,
) -> Result<PasteBackReport> {
    let doc = FacesJson::read(faces_json)?;
    std::fs::create_dir_all(out).map_err(|source| AlignError::Io {
        path: out.to_path_buf(),
        source,
    })?;
    let mut used = HashSet::new();
    let mut report = PasteBackReport::default();
    let mut photos: Vec<&str> = Vec::new();
    for f in &doc.faces {
        if !photos.contains(&f.photo.as_str()) {
            photos.push(&f.photo);
        }
    }
    for photo_path in photos {
        let pristine = load_photo(Path::new(photo_path))?;
        let mut photo = pristine.clone();
        let mut pasted = 0;
        for rec in doc.faces.iter().filter(|f| f.photo == photo_path) {
            if [photo.width(), photo.height()] != rec.photo_size {
                return Err(AlignError::Invalid(format!(
                    "{photo_path}: now {}x{}, faces.json says {:?}",
                    photo.width(),
                    photo.height(),
                    rec.photo_size
                )));
            }
            let Some(edited_path) = [&rec.crop_file, &rec.aligned_file]
                .into_iter()
                .flatten()
                .find_map(|rel| find_edited(edited_dir, rel))
            else {
                tracing::warn!(
                    "{photo_path} face {}: no edited image in {}, left as is",
                    rec.index,
                    edited_dir.display()
                );
                report.missing += 1;
                continue;
            };
            let mut edited = load_photo(&edited_path)?;
            let window = rec.crop_window;
            if edited.dimensions() == (crate::ALIGNED_WIDTH, crate::ALIGNED_HEIGHT) {
                edited = crop_aligned(&edited, window)?;
            }
            let original = match opts.mode {
                PasteMode::Residual => {
                    Some(align_face(&pristine, &rec.landmarks, window, rec.detection)?.crop)
                }
                PasteMode::Replace => None,
            };
            paste_into(
                &mut photo,
                &rec.similarity(),
                window,
                &edited,
                original.as_ref(),
                opts,
            )
            .map_err(|e| AlignError::Invalid(format!("{}: {e}", edited_path.display())))?;
            pasted += 1;
        }
        if pasted > 0 {
            let src = Path::new(photo_path);
            let stem = unique_stem(src, &mut used);
            let ext = match src
                .extension()
                .and_then(|e| e.to_str())
                .map(|e| e.to_ascii_lowercase())
                .as_deref()
            {
                Some("jpg" | "jpeg") => "jpg",
                _ => "png",
            };
            let path = out.join(format!("{stem}.{ext}"));
            save_image(&path, &photo)?;
            tracing::info!(
                "{photo_path}: {pasted} face(s) pasted back into {}",
                path.display()
            );
            report.written.push(path);
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_stems_and_edited_lookup() {
        let mut used = HashSet::new();
        assert_eq!(unique_stem(Path::new("a/x.jpg"), &mut used), "x");
        assert_eq!(unique_stem(Path::new("b/x.png"), &mut used), "x-2");
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("x_0.jpg"), b"").unwrap();
        assert_eq!(
            find_edited(dir.path(), "crop/x_0.png"),
            Some(dir.path().join("x_0.jpg"))
        );
        assert_eq!(find_edited(dir.path(), "crop/x_1.png"), None);
    }

    #[test]
    fn largest_first_by_extent() {
        let small: Landmarks = [[10., 10.], [20., 10.], [15., 15.], [12., 20.], [18., 20.]];
        let big = small.map(|p| [p[0] * 3.0, p[1] * 3.0]);
        assert!(extent(&big) > extent(&small));
    }
}
