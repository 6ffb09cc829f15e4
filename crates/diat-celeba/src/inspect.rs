//! `diat data inspect`: what was found under a CelebA root, the counts and split sizes, and what
//! is missing or inconsistent.

use crate::dataset::{Annotations, OFFICIAL_SPLITS};
use crate::error::Result;
use crate::layout::{ImageLocation, ImageReader, Layout};
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct FileReport {
    pub role: String,
    pub path: String,
    /// md5 check: "ok", "skipped" (not an official file name) or absent when not asked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub md5: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct InspectReport {
    pub layout: Layout,
    pub files: Vec<FileReport>,
    pub missing_files: Vec<String>,
    pub images_annotated: usize,
    pub images_found: Option<usize>,
    pub images_missing: usize,
    pub first_missing: Vec<String>,
    pub split_sizes: Option<[usize; 3]>,
    pub official_split_sizes: [usize; 3],
    pub identities: Option<usize>,
    pub with_landmarks: Option<usize>,
    /// Attribute name → images with it.
    pub attribute_counts: Vec<(String, usize)>,
    pub problems: Vec<String>,
}

/// Inspects `layout`, optionally verifying md5 sums (slow for the image zip).
pub fn inspect(layout: &Layout, verify: bool) -> Result<InspectReport> {
    let ann = Annotations::load(layout)?;
    let mut problems = ann.warnings.clone();
    let mut files = Vec::new();
    for (role, p) in layout.annotation_files() {
        let md5 = if verify {
            Some(match crate::verify::verify_file(p)? {
                Some(_) => "ok".to_string(),
                None => "skipped (not an official file name)".to_string(),
            })
        } else {
            None
        };
        files.push(FileReport {
            role: role.into(),
            path: p.display().to_string(),
            md5,
        });
    }
    let mut missing_files = Vec::new();
    for (name, p) in [
        ("landmarks", &layout.landmarks),
        ("identity", &layout.identity),
        ("partition", &layout.partition),
        ("bbox", &layout.bbox),
    ] {
        if p.is_none() {
            missing_files.push(name.to_string());
        }
    }
    let (mut images_found, mut images_missing, mut first_missing) = (None, 0, Vec::new());
    match &layout.images {
        None => missing_files.push("images (img_align_celeba/ or img_align_celeba.zip)".into()),
        Some(loc) => {
            if let ImageLocation::Zip { path } = loc {
                let md5 = if verify {
                    crate::verify::verify_file(path)?;
                    Some("ok".to_string())
                } else {
                    None
                };
                files.push(FileReport {
                    role: "images".into(),
                    path: path.display().to_string(),
                    md5,
                });
            }
            let reader = ImageReader::open(loc)?;
            images_found = match loc {
                ImageLocation::Zip { .. } => reader.zip_len(),
                ImageLocation::Dir { path } => Some(
                    std::fs::read_dir(path)
                        .map_err(|e| crate::error::Error::io(path, e))?
                        .flatten()
                        .filter(|e| e.path().is_file())
                        .count(),
                ),
            };
            for id in &ann.ids {
                if !reader.contains(id) {
                    images_missing += 1;
                    if first_missing.len() < 5 {
                        first_missing.push(id.clone());
                    }
                }
            }
            if images_missing > 0 {
                problems.push(format!(
                    "{images_missing} annotated images are missing (first: {})",
                    first_missing.join(", ")
                ));
            }
        }
    }
    let attribute_counts = crate::annotations::ATTRIBUTE_NAMES
        .iter()
        .enumerate()
        .map(|(a, n)| (n.to_string(), ann.count_attr(a)))
        .collect();
    Ok(InspectReport {
        layout: layout.clone(),
        files,
        missing_files,
        images_annotated: ann.len(),
        images_found,
        images_missing,
        first_missing,
        split_sizes: ann.split_sizes(),
        official_split_sizes: OFFICIAL_SPLITS,
        identities: ann.identity.as_ref().map(|v| {
            v.iter()
                .flatten()
                .collect::<std::collections::HashSet<_>>()
                .len()
        }),
        with_landmarks: ann
            .landmarks
            .as_ref()
            .map(|v| v.iter().filter(|l| l.is_some()).count()),
        attribute_counts,
        problems,
    })
}

impl InspectReport {
    /// Human-readable summary.
    pub fn text(&self) -> String {
        let mut s = format!(
            "layout: {} at {}\n",
            self.layout.kind,
            self.layout.root.display()
        );
        for f in &self.files {
            s.push_str(&format!(
                "  {:<10} {}{}\n",
                f.role,
                f.path,
                f.md5
                    .as_ref()
                    .map(|m| format!("  md5 {m}"))
                    .unwrap_or_default()
            ));
        }
        if !self.missing_files.is_empty() {
            s.push_str(&format!("  missing: {}\n", self.missing_files.join(", ")));
        }
        s.push_str(&format!("images annotated: {}\n", self.images_annotated));
        if let Some(n) = self.images_found {
            s.push_str(&format!(
                "images found: {n} ({} annotated ones missing)\n",
                self.images_missing
            ));
        }
        if let Some([a, b, c]) = self.split_sizes {
            let [oa, ob, oc] = self.official_split_sizes;
            s.push_str(&format!(
                "splits train/val/test: {a} / {b} / {c} (official: {oa} / {ob} / {oc})\n"
            ));
        }
        if let Some(n) = self.identities {
            s.push_str(&format!("identities: {n}\n"));
        }
        if let Some(n) = self.with_landmarks {
            s.push_str(&format!("images with aligned landmarks: {n}\n"));
        }
        if self.problems.is_empty() {
            s.push_str("no inconsistencies found\n");
        } else {
            for p in &self.problems {
                s.push_str(&format!("problem: {p}\n"));
            }
        }
        s
    }
}
