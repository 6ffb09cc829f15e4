//! Five-point landmark files in CelebA's column order, for users who bring their own detector:
//!
//! ```text
//! image_id,lefteye_x,lefteye_y,righteye_x,righteye_y,nose_x,nose_y,leftmouth_x,leftmouth_y,rightmouth_x,rightmouth_y
//! photo1.jpg,412.5,380.0,520.1,377.2,466.0,440.3,425.0,505.5,512.4,503.9
//! ```
//!
//! Comma- or whitespace-separated; an optional count line (CelebA's `list_landmarks_*.txt` begin
//! with the number of rows) and an optional header line; `#` comments and blank lines are
//! ignored. Several rows with the same `image_id` are several faces of that photo. Coordinates are
//! taken as CelebA writes them (the frame of [`crate::CELEBA_TEMPLATE`]); a constant offset for
//! another convention can be added with [`LandmarkFile::shifted`].

use crate::error::{AlignError, Result};
use std::path::{Path, PathBuf};

/// Left eye, right eye, nose, left mouth corner, right mouth corner: `[x, y]` each.
pub type Landmarks = [[f64; 2]; 5];

/// The CSV header: `image_id` and CelebA's landmark columns, in order.
pub fn header() -> String {
    format!("image_id,{}", diat_common::LANDMARK_NAMES.join(","))
}

/// The rows of a landmark file, in file order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LandmarkFile {
    pub path: PathBuf,
    pub rows: Vec<(String, Landmarks)>,
}

impl LandmarkFile {
    /// Reads and parses `path`.
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| AlignError::Io {
            path: path.into(),
            source,
        })?;
        Self::parse(path, &text)
    }

    /// Parses the text of a landmark file (`path` is for messages).
    pub fn parse(path: &Path, text: &str) -> Result<Self> {
        let err = |line: usize, problem: String| AlignError::Landmarks {
            path: path.into(),
            line,
            problem,
        };
        let mut rows = Vec::new();
        let mut preamble = true;
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let fields: Vec<&str> = line
                .split(|c: char| c == ',' || c.is_whitespace())
                .filter(|f| !f.is_empty())
                .collect();
            let numeric = |f: &str| f.parse::<f64>().is_ok();
            if preamble {
                // CelebA's count line, then its header (10 names, or 11 with image_id).
                if fields.len() == 1 && fields[0].parse::<u64>().is_ok() {
                    continue;
                }
                if (fields.len() == 10 || fields.len() == 11) && !fields.iter().any(|f| numeric(f))
                {
                    continue;
                }
            }
            preamble = false;
            if fields.len() != 11 {
                return Err(err(
                    i + 1,
                    format!("expected 11 fields ({}), found {}", header(), fields.len()),
                ));
            }
            let mut lm = [[0.0; 2]; 5];
            for (k, f) in fields[1..].iter().enumerate() {
                let v: f64 = f
                    .parse()
                    .ok()
                    .filter(|v: &f64| v.is_finite())
                    .ok_or_else(|| {
                        err(
                            i + 1,
                            format!("{}: {f:?} is not a number", diat_common::LANDMARK_NAMES[k]),
                        )
                    })?;
                lm[k / 2][k % 2] = v;
            }
            rows.push((fields[0].to_string(), lm));
        }
        Ok(Self {
            path: path.into(),
            rows,
        })
    }

    /// The faces of the photo named `image_id` (matched on the file name, without folders).
    pub fn faces_of(&self, image_id: &str) -> Vec<Landmarks> {
        let name = Path::new(image_id)
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or(image_id);
        self.rows
            .iter()
            .filter(|(id, _)| id == image_id || id == name)
            .map(|(_, lm)| *lm)
            .collect()
    }

    /// Every coordinate plus `offset` (e.g. +1 for 0-based pixel indices when CelebA-style 1-based
    /// numbers are wanted).
    pub fn shifted(mut self, offset: f64) -> Self {
        for (_, lm) in &mut self.rows {
            for p in lm.iter_mut() {
                p[0] += offset;
                p[1] += offset;
            }
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_and_celeba_layouts() {
        let csv = "image_id,lefteye_x,lefteye_y,righteye_x,righteye_y,nose_x,nose_y,leftmouth_x,\
                   leftmouth_y,rightmouth_x,rightmouth_y\n\
                   a.jpg,1,2,3,4,5,6,7,8,9,10.5\n# comment\n\na.jpg,11,12,13,14,15,16,17,18,19,20\n";
        let f = LandmarkFile::parse(Path::new("x.csv"), csv).unwrap();
        assert_eq!(f.rows.len(), 2);
        assert_eq!(f.faces_of("dir/a.jpg").len(), 2);
        assert_eq!(f.rows[0].1[4], [9.0, 10.5]);
        let celeba = "2\nlefteye_x lefteye_y righteye_x righteye_y nose_x nose_y leftmouth_x \
                      leftmouth_y rightmouth_x rightmouth_y\n000001.jpg    69  109  106  113   77  142   73  152  108  154\n\
                      000002.jpg 69 110 107 112 81 135 70 151 108 153\n";
        let f = LandmarkFile::parse(Path::new("l.txt"), celeba)
            .unwrap()
            .shifted(-1.0);
        assert_eq!(
            f.faces_of("000002.jpg"),
            vec![[
                [68.0, 109.0],
                [106.0, 111.0],
                [80.0, 134.0],
                [69.0, 150.0],
                [107.0, 152.0]
            ]]
        );
        assert!(f.faces_of("000003.jpg").is_empty());
    }

    #[test]
    fn malformed_rows_name_their_line() {
        let e = LandmarkFile::parse(Path::new("x.csv"), "a.jpg,1,2,3\n")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("x.csv:1: expected 11 fields"), "{e}");
        let e = LandmarkFile::parse(
            Path::new("x.csv"),
            "a.jpg,1,2,3,4,5,6,7,8,9,10\nb.jpg,1,2,3,4,5,x,7,8,9,10\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("x.csv:2: nose_y: \"x\" is not a number"), "{e}");
    }
}
