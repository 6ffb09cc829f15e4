//! Real faces for evaluation and for the classifier: CelebA's labels (attributes, identities)
//! looked up by image id, and faces in CelebA's aligned frame, either read from a `diat align`
//! output folder (`faces.json` + `aligned/`) or detected and aligned here from photos (a folder
//! or a zip of JPEG/PNG files).

use crate::error::{EvalError, Result};
use diat_align::image::RgbImage;
use diat_align::{CropWindow, FacesJson, Landmarks, crop_aligned};
use diat_celeba::annotations::{ATTRIBUTE_NAMES, FileKind, Table, attribute_index, read_table};
use diat_celeba::split::{Split, identity_split};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// CelebA's attribute and identity files, indexed by image id (the file name without extension,
/// `000123`).
#[derive(Debug)]
pub struct Labels {
    attrs: Table,
    identities: Table,
    index: HashMap<String, (usize, Option<usize>)>,
}

/// The image id of a file name: its stem up to the first `_` (`diat align` names faces
/// `<stem>_<k>.png`).
pub fn image_id(name: &str) -> String {
    let stem = Path::new(name)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    stem.split('_').next().unwrap_or("").to_string()
}

impl Labels {
    /// Reads `ROOT/Anno/list_attr_celeba.txt` and `ROOT/Anno/identity_CelebA.txt` (or the same
    /// files directly in `ROOT`).
    pub fn load(root: &Path) -> Result<Self> {
        let find = |name: &str| {
            [root.join("Anno").join(name), root.join(name)]
                .into_iter()
                .find(|p| p.is_file())
                .ok_or_else(|| EvalError::Input {
                    path: root.into(),
                    problem: format!("no {name} (nor Anno/{name}) here"),
                })
        };
        let attrs = read_table(&find("list_attr_celeba.txt")?, FileKind::Attributes)?;
        let identities = read_table(&find("identity_CelebA.txt")?, FileKind::Identity)?;
        let ident_of: HashMap<String, usize> = identities
            .ids
            .iter()
            .enumerate()
            .map(|(i, id)| (image_id(id), i))
            .collect();
        let index = attrs
            .ids
            .iter()
            .enumerate()
            .map(|(i, id)| {
                let key = image_id(id);
                let ident = ident_of.get(&key).copied();
                (key, (i, ident))
            })
            .collect();
        Ok(Self {
            attrs,
            identities,
            index,
        })
    }

    /// Whether image `id` has attribute `name` (None: unknown image or attribute).
    pub fn attribute(&self, id: &str, name: &str) -> Option<bool> {
        let col = attribute_index(name)?;
        let &(row, _) = self.index.get(id)?;
        Some(self.attrs.row(row)[col] == 1)
    }

    /// The CelebA identity of image `id`.
    pub fn identity(&self, id: &str) -> Option<u32> {
        let &(_, ident) = self.index.get(id)?;
        Some(self.identities.row(ident?)[0] as u32)
    }

    /// The side of image `id` under the identity division with `seed`.
    pub fn split(&self, id: &str, seed: u64) -> Option<Split> {
        self.identity(id).map(|i| identity_split(i, seed))
    }
}

/// Checks attribute names against CelebA's 40 and returns them in CelebA's spelling.
pub fn check_attributes(names: &[String]) -> Result<Vec<String>> {
    names
        .iter()
        .map(|n| {
            attribute_index(n)
                .map(|i| ATTRIBUTE_NAMES[i].to_string())
                .ok_or_else(|| EvalError::Config(format!("unknown CelebA attribute {n:?}")))
        })
        .collect()
}

/// One face in CelebA's aligned 178×218 frame.
#[derive(Debug, Clone)]
pub struct AlignedPhoto {
    /// Image id (`000123`).
    pub id: String,
    /// Where it came from (photo path, zip entry, or aligned file).
    pub source: String,
    pub aligned: RgbImage,
    /// The 5 landmarks in the aligned frame (CelebA's order and convention).
    pub landmarks: Landmarks,
    /// Share of the training window inside the original photo.
    pub coverage: f32,
}

impl AlignedPhoto {
    /// The model / classifier input: the training window resized to `window.size`.
    pub fn crop(&self, window: CropWindow) -> Result<RgbImage> {
        Ok(crop_aligned(&self.aligned, window)?)
    }
}

/// A face that could not be used, and why.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Rejected {
    pub source: String,
    pub reason: String,
}

/// The entries of a `diat align` output folder: `(image id, faces.json record index)` for the
/// first face of each photo that has an aligned file, and the photos without one.
pub fn read_aligned_dir(dir: &Path) -> Result<(FacesJson, Vec<usize>, Vec<Rejected>)> {
    if !dir.join("faces.json").is_file() {
        return Err(EvalError::Input {
            path: dir.into(),
            problem: "not a `diat align` output folder (no faces.json): align the photos first, \
                      e.g. `diat align PHOTOS --out DIR --largest --aligned`"
                .into(),
        });
    }
    let doc = FacesJson::read(&dir.join("faces.json"))?;
    let mut keep = Vec::new();
    for (i, f) in doc.faces.iter().enumerate() {
        if f.index == 0 && f.aligned_file.is_some() {
            keep.push(i);
        }
    }
    let rejected = doc
        .photos
        .iter()
        .filter(|p| p.status != "ok")
        .map(|p| Rejected {
            source: p.photo.clone(),
            reason: p.status.clone(),
        })
        .collect();
    Ok((doc, keep, rejected))
}

/// Loads face `i` of a `diat align` folder.
pub fn load_aligned(dir: &Path, doc: &FacesJson, i: usize) -> Result<AlignedPhoto> {
    let f = &doc.faces[i];
    let rel = f.aligned_file.as_deref().ok_or_else(|| EvalError::Input {
        path: dir.join("faces.json"),
        problem: format!("face {i} has no aligned file"),
    })?;
    let path = dir.join(rel);
    let aligned = diat_align::load_photo(&path)?;
    if aligned.dimensions() != (diat_align::ALIGNED_WIDTH, diat_align::ALIGNED_HEIGHT) {
        return Err(EvalError::Input {
            path,
            problem: format!(
                "{}x{}, expected a 178×218 aligned image",
                aligned.width(),
                aligned.height()
            ),
        });
    }
    Ok(AlignedPhoto {
        id: image_id(&f.photo),
        source: f.photo.clone(),
        aligned,
        landmarks: f.aligned_landmarks(),
        coverage: f.coverage,
    })
}

/// Where real faces come from.
#[derive(Debug, Clone)]
pub enum FaceSource {
    /// A `diat align` output folder (faces.json + aligned/).
    Aligned(PathBuf),
    /// A folder of photos, detected and aligned here.
    Photos(Vec<PathBuf>),
    /// A zip of photos.
    Zip(PathBuf),
}

impl FaceSource {
    /// A folder with faces.json is a `diat align` output; another folder holds photos; a file
    /// ending in .zip is a zip of photos.
    pub fn open(path: &Path) -> Result<Self> {
        if path.is_dir() {
            if path.join("faces.json").is_file() {
                return Ok(Self::Aligned(path.into()));
            }
            let mut photos: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(|source| EvalError::Io {
                    path: path.into(),
                    source,
                })?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file() && diat_align::is_photo_name(p))
                .collect();
            photos.sort();
            if photos.is_empty() {
                return Err(EvalError::Input {
                    path: path.into(),
                    problem: "no JPEG or PNG photo and no faces.json here".into(),
                });
            }
            return Ok(Self::Photos(photos));
        }
        if path.is_file()
            && path
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("zip"))
        {
            return Ok(Self::Zip(path.into()));
        }
        Err(EvalError::Input {
            path: path.into(),
            problem: "not a folder of photos, a `diat align` output or a .zip".into(),
        })
    }
}

/// Photo bytes of a zip's image entries, by entry name (sorted), refusing unsafe names.
pub fn zip_photo_names(path: &Path) -> Result<Vec<String>> {
    diat_common::zipdir::check_unique(path).map_err(|e| EvalError::Input {
        path: path.into(),
        problem: e.to_string(),
    })?;
    let file = std::fs::File::open(path).map_err(|source| EvalError::Io {
        path: path.into(),
        source,
    })?;
    let zip = zip::ZipArchive::new(file).map_err(|e| EvalError::Input {
        path: path.into(),
        problem: format!("not a readable zip: {e}"),
    })?;
    let mut names: Vec<String> = zip
        .file_names()
        .filter(|n| diat_align::is_photo_name(n) && !n.ends_with('/'))
        .map(String::from)
        .collect();
    names.sort();
    Ok(names)
}

/// An error's text without the `source: ` it begins with (as often as it does: a wrapped error
/// may name the file twice), for reports that show the source beside the reason.
pub fn without_source(text: &str, source: &str) -> String {
    let prefix = format!("{source}: ");
    let mut rest = text;
    while let Some(r) = rest.strip_prefix(&prefix) {
        rest = r;
    }
    rest.to_string()
}

/// Decodes a photo from bytes (EXIF orientation applied; a truncated JPEG is an error), naming
/// `source` in errors.
pub fn decode_photo(source: &str, bytes: &[u8]) -> Result<RgbImage> {
    Ok(diat_align::decode_photo(Path::new(source), bytes)?)
}

/// Detects the largest face of `photo` with MTCNN and aligns it into CelebA's frame.
pub fn detect_align(
    detector: &diat_nets::mtcnn::Mtcnn,
    id: &str,
    source: &str,
    photo: &RgbImage,
) -> Result<Option<AlignedPhoto>> {
    let Some(face) =
        crate::apply::detect_and_align(detector, photo, CropWindow::default(), true)?.pop()
    else {
        return Ok(None);
    };
    Ok(Some(AlignedPhoto {
        id: id.into(),
        source: source.into(),
        landmarks: face.aligned_landmarks(),
        aligned: face.aligned,
        coverage: face.coverage,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_from_names() {
        assert_eq!(image_id("000123.jpg"), "000123");
        assert_eq!(image_id("aligned/000123_0.png"), "000123");
        assert_eq!(image_id("/x/y/182638.jpg"), "182638");
    }

    #[test]
    fn reasons_lose_their_source() {
        assert_eq!(
            without_source("a.jpg: a.jpg: truncated", "a.jpg"),
            "truncated"
        );
        assert_eq!(without_source("a.jpg: truncated", "a.jpg"), "truncated");
        assert_eq!(
            without_source("b.jpg: truncated", "a.jpg"),
            "b.jpg: truncated"
        );
    }

    #[test]
    fn attribute_names_checked() {
        assert_eq!(
            check_attributes(&["male".into(), "Eyeglasses".into()]).unwrap(),
            ["Male", "Eyeglasses"]
        );
        assert!(check_attributes(&["Bald_Eagle".into()]).is_err());
    }
}
