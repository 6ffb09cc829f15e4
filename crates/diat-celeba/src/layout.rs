//! Finding CelebA on disk in whichever layout it was downloaded, and reading images in place.
//!
//! Recognised layouts:
//! - **official**: `Img/img_align_celeba.zip` (members read straight from the zip) or
//!   `Img/img_align_celeba/`, `Anno/list_attr_celeba.txt`, `Anno/list_landmarks_align_celeba.txt`,
//!   `Anno/identity_CelebA.txt`, `Anno/list_bbox_celeba.txt`, `Eval/list_eval_partition.txt`;
//! - **torchvision**: `ROOT/celeba/` (or `ROOT/`) holding the same files flat;
//! - **kaggle**: `list_*.csv` with headers and images under `img_align_celeba/img_align_celeba/`;
//! - **stargan**: `images/` and `list_attr_celeba.txt`.

use crate::error::{Error, Result, looks_like_html};
use serde::Serialize;
use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LayoutKind {
    Official,
    Torchvision,
    Kaggle,
    Stargan,
}

impl std::fmt::Display for LayoutKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LayoutKind::Official => "official",
            LayoutKind::Torchvision => "torchvision",
            LayoutKind::Kaggle => "kaggle",
            LayoutKind::Stargan => "stargan",
        })
    }
}

/// Where the aligned images are.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ImageLocation {
    Dir { path: PathBuf },
    Zip { path: PathBuf },
}

/// The files of one CelebA copy.
#[derive(Debug, Clone, Serialize)]
pub struct Layout {
    pub root: PathBuf,
    pub kind: LayoutKind,
    pub attributes: PathBuf,
    pub landmarks: Option<PathBuf>,
    pub identity: Option<PathBuf>,
    pub partition: Option<PathBuf>,
    pub bbox: Option<PathBuf>,
    pub images: Option<ImageLocation>,
}

fn first_existing(cands: &[PathBuf]) -> Option<PathBuf> {
    cands.iter().find(|p| p.exists()).cloned()
}

fn images_at(dir_cands: &[PathBuf], zip_cands: &[PathBuf]) -> Option<ImageLocation> {
    if let Some(d) = dir_cands.iter().find(|p| p.is_dir()) {
        return Some(ImageLocation::Dir { path: d.clone() });
    }
    zip_cands
        .iter()
        .find(|p| p.is_file())
        .map(|p| ImageLocation::Zip { path: p.clone() })
}

impl Layout {
    /// Detects the layout under `root`.
    pub fn detect(root: &Path) -> Result<Self> {
        if !root.is_dir() {
            return Err(Error::Layout {
                root: root.into(),
                msg: "not a directory".into(),
            });
        }
        let j = |p: &str| root.join(p);
        // Official.
        if j("Anno").is_dir() {
            let anno = j("Anno");
            let attributes = anno.join("list_attr_celeba.txt");
            if !attributes.exists() {
                return Err(Error::Layout {
                    root: root.into(),
                    msg: "Anno/ exists but Anno/list_attr_celeba.txt is missing".into(),
                });
            }
            return Ok(Layout {
                root: root.into(),
                kind: LayoutKind::Official,
                attributes,
                landmarks: first_existing(&[anno.join("list_landmarks_align_celeba.txt")]),
                identity: first_existing(&[anno.join("identity_CelebA.txt")]),
                partition: first_existing(&[
                    j("Eval/list_eval_partition.txt"),
                    anno.join("list_eval_partition.txt"),
                ]),
                bbox: first_existing(&[anno.join("list_bbox_celeba.txt")]),
                images: images_at(
                    &[j("Img/img_align_celeba"), j("img_align_celeba")],
                    &[j("Img/img_align_celeba.zip"), j("img_align_celeba.zip")],
                ),
            });
        }
        // Kaggle.
        if j("list_attr_celeba.csv").exists() {
            return Ok(Layout {
                root: root.into(),
                kind: LayoutKind::Kaggle,
                attributes: j("list_attr_celeba.csv"),
                landmarks: first_existing(&[j("list_landmarks_align_celeba.csv")]),
                identity: first_existing(&[j("identity_CelebA.csv"), j("identity_CelebA.txt")]),
                partition: first_existing(&[j("list_eval_partition.csv")]),
                bbox: first_existing(&[j("list_bbox_celeba.csv")]),
                images: images_at(
                    &[
                        j("img_align_celeba/img_align_celeba"),
                        j("img_align_celeba"),
                    ],
                    &[j("img_align_celeba.zip")],
                ),
            });
        }
        // StarGAN.
        if j("images").is_dir() && j("list_attr_celeba.txt").exists() {
            return Ok(Layout {
                root: root.into(),
                kind: LayoutKind::Stargan,
                attributes: j("list_attr_celeba.txt"),
                landmarks: first_existing(&[j("list_landmarks_align_celeba.txt")]),
                identity: first_existing(&[j("identity_CelebA.txt")]),
                partition: first_existing(&[j("list_eval_partition.txt")]),
                bbox: None,
                images: Some(ImageLocation::Dir { path: j("images") }),
            });
        }
        // torchvision: ROOT/celeba/ or ROOT itself, flat.
        for base in [j("celeba"), root.to_path_buf()] {
            let b = |p: &str| base.join(p);
            if b("list_attr_celeba.txt").exists() {
                return Ok(Layout {
                    root: root.into(),
                    kind: LayoutKind::Torchvision,
                    attributes: b("list_attr_celeba.txt"),
                    landmarks: first_existing(&[b("list_landmarks_align_celeba.txt")]),
                    identity: first_existing(&[b("identity_CelebA.txt")]),
                    partition: first_existing(&[b("list_eval_partition.txt")]),
                    bbox: first_existing(&[b("list_bbox_celeba.txt")]),
                    images: images_at(&[b("img_align_celeba")], &[b("img_align_celeba.zip")]),
                });
            }
        }
        Err(Error::Layout {
            root: root.into(),
            msg: "expected Anno/list_attr_celeba.txt (official), celeba/list_attr_celeba.txt (torchvision), \
                  list_attr_celeba.csv (kaggle) or images/ + list_attr_celeba.txt (stargan)"
                .into(),
        })
    }

    /// Every annotation file present, with its name for reports.
    pub fn annotation_files(&self) -> Vec<(&'static str, &Path)> {
        let mut v = vec![("attributes", self.attributes.as_path())];
        for (name, p) in [
            ("landmarks", &self.landmarks),
            ("identity", &self.identity),
            ("partition", &self.partition),
            ("bbox", &self.bbox),
        ] {
            if let Some(p) = p {
                v.push((name, p.as_path()));
            }
        }
        v
    }
}

#[derive(Clone)]
struct SharedBytes(Arc<memmap2::Mmap>);

impl AsRef<[u8]> for SharedBytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// Reads image bytes by id from a folder or straight from a zip. Clone one per thread: clones
/// share the zip's mapping and central directory.
#[derive(Clone)]
pub struct ImageReader {
    inner: ReaderInner,
}

#[derive(Clone)]
enum ReaderInner {
    Dir(PathBuf),
    Zip {
        path: PathBuf,
        archive: zip::ZipArchive<std::io::Cursor<SharedBytes>>,
        members: Arc<HashMap<String, usize>>,
    },
}

impl std::fmt::Debug for ImageReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.inner {
            ReaderInner::Dir(p) => write!(f, "ImageReader(dir {})", p.display()),
            ReaderInner::Zip { path, members, .. } => write!(
                f,
                "ImageReader(zip {}, {} images)",
                path.display(),
                members.len()
            ),
        }
    }
}

impl ImageReader {
    pub fn open(loc: &ImageLocation) -> Result<Self> {
        match loc {
            ImageLocation::Dir { path } => Ok(Self {
                inner: ReaderInner::Dir(path.clone()),
            }),
            ImageLocation::Zip { path } => {
                let f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
                // SAFETY: the file is opened read-only; a concurrent writer would only yield bad
                // image bytes, which decoding reports as a rejected image.
                #[allow(unsafe_code)]
                let map = unsafe { memmap2::Mmap::map(&f) }.map_err(|e| Error::io(path, e))?;
                if looks_like_html(&map) {
                    return Err(Error::Html { path: path.clone() });
                }
                if !map.starts_with(b"PK") {
                    return Err(Error::invalid(path, "not a zip file (no PK signature)"));
                }
                diat_common::zipdir::check_unique(path)
                    .map_err(|e| Error::invalid(path, e.to_string()))?;
                let archive =
                    zip::ZipArchive::new(std::io::Cursor::new(SharedBytes(Arc::new(map))))
                        .map_err(|source| Error::Zip {
                            path: path.clone(),
                            source,
                        })?;
                let mut members = HashMap::with_capacity(archive.len());
                for i in 0..archive.len() {
                    let name = archive.name_for_index(i).unwrap_or_default();
                    if name.ends_with('/') {
                        continue;
                    }
                    let base = name.rsplit('/').next().unwrap_or(name);
                    if let Some(j) = members.insert(base.to_string(), i) {
                        return Err(Error::invalid(
                            path,
                            format!(
                                "two images named {base}: {} and {name}",
                                archive.name_for_index(j).unwrap_or_default()
                            ),
                        ));
                    }
                }
                Ok(Self {
                    inner: ReaderInner::Zip {
                        path: path.clone(),
                        archive,
                        members: Arc::new(members),
                    },
                })
            }
        }
    }

    /// Number of images available (zip members; files are counted lazily by [`Self::contains`]).
    pub fn zip_len(&self) -> Option<usize> {
        match &self.inner {
            ReaderInner::Zip { members, .. } => Some(members.len()),
            ReaderInner::Dir(_) => None,
        }
    }

    pub fn contains(&self, id: &str) -> bool {
        match &self.inner {
            ReaderInner::Dir(d) => d.join(id).is_file(),
            ReaderInner::Zip { members, .. } => members.contains_key(id),
        }
    }

    /// The path an error about `id` should name.
    pub fn describe(&self, id: &str) -> String {
        match &self.inner {
            ReaderInner::Dir(d) => d.join(id).display().to_string(),
            ReaderInner::Zip { path, .. } => format!("{}:{id}", path.display()),
        }
    }

    /// The bytes of image `id`, appended to `buf` (cleared first).
    pub fn read_into(&mut self, id: &str, buf: &mut Vec<u8>) -> std::io::Result<()> {
        buf.clear();
        match &mut self.inner {
            ReaderInner::Dir(d) => {
                let mut f = std::fs::File::open(d.join(id))?;
                f.read_to_end(buf)?;
            }
            ReaderInner::Zip {
                archive, members, ..
            } => {
                let i = *members.get(id).ok_or_else(|| {
                    std::io::Error::new(std::io::ErrorKind::NotFound, "not in the zip")
                })?;
                let mut m = archive.by_index(i).map_err(std::io::Error::other)?;
                buf.reserve(m.size() as usize);
                m.read_to_end(buf)?;
            }
        }
        Ok(())
    }
}
