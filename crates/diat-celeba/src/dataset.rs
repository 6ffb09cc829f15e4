//! All annotation files of one CelebA copy, joined on the attribute file's image ids and checked
//! for consistency, as plain columns and as a polars `DataFrame` (the index of `diat data index`).

use crate::annotations::{ATTRIBUTE_NAMES, FileKind, LANDMARK_NAMES, Table, read_table};
use crate::error::{Error, Result};
use crate::layout::Layout;
use polars::prelude::*;
use serde::Serialize;
use std::collections::HashMap;

/// CelebA's aligned image size.
pub const ALIGNED_WIDTH: u32 = 178;
pub const ALIGNED_HEIGHT: u32 = 218;

/// The official split sizes (train / val / test).
pub const OFFICIAL_SPLITS: [usize; 3] = [162_770, 19_867, 19_962];

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    Train,
    Val,
    Test,
}

impl Split {
    pub fn from_code(c: i32) -> Self {
        match c {
            0 => Split::Train,
            1 => Split::Val,
            _ => Split::Test,
        }
    }
    /// CelebA's partition code (`list_eval_partition.txt`: 0 train, 1 val, 2 test).
    pub fn partition_code(self) -> u8 {
        match self {
            Split::Train => 0,
            Split::Val => 1,
            Split::Test => 2,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Val => "val",
            Split::Test => "test",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "train" => Some(Split::Train),
            "val" => Some(Split::Val),
            "test" => Some(Split::Test),
            _ => None,
        }
    }
}

/// The joined annotations, one entry per image of the attribute file, in its order.
#[derive(Debug, Clone)]
pub struct Annotations {
    pub ids: Vec<String>,
    /// `attrs[i][a]` is true when image `i` has attribute `a` (file value 1).
    pub attrs: Vec<[bool; 40]>,
    pub identity: Option<Vec<Option<u32>>>,
    pub split: Option<Vec<Option<Split>>>,
    pub landmarks: Option<Vec<Option<[i16; 10]>>>,
    /// Cluster id per image once clustered (see `cluster`).
    pub cluster: Option<Vec<Option<u32>>>,
    /// Inconsistencies that do not stop the work (missing rows in optional files...).
    pub warnings: Vec<String>,
}

fn align<T: Copy>(
    ids: &[String],
    pos: &HashMap<&str, usize>,
    table: &Table,
    warnings: &mut Vec<String>,
    f: impl Fn(&[i32]) -> T,
) -> Vec<Option<T>> {
    let mut out = vec![None; ids.len()];
    let mut extra = 0usize;
    let mut first_extra = None;
    for (r, id) in table.ids.iter().enumerate() {
        match pos.get(id.as_str()) {
            Some(&i) => out[i] = Some(f(table.row(r))),
            None => {
                extra += 1;
                first_extra.get_or_insert_with(|| table.locate(r));
            }
        }
    }
    let covered = out.iter().filter(|v| v.is_some()).count();
    if covered < ids.len() {
        warnings.push(format!(
            "{} covers {covered} of the {} images of the attribute file",
            table.path.display(),
            ids.len()
        ));
    }
    if extra > 0 {
        warnings.push(format!(
            "{} has {extra} image ids that the attribute file lacks (first at {})",
            table.path.display(),
            first_extra.unwrap_or_default()
        ));
    }
    out
}

impl Annotations {
    /// Parses every annotation file of `layout` (in parallel) and joins them.
    pub fn load(layout: &Layout) -> Result<Self> {
        let opt =
            |p: &Option<std::path::PathBuf>, k| p.as_deref().map(|p| read_table(p, k)).transpose();
        let ((attrs, landmarks), ((identity, partition), bbox)) = rayon::join(
            || {
                rayon::join(
                    || read_table(&layout.attributes, FileKind::Attributes),
                    || opt(&layout.landmarks, FileKind::Landmarks),
                )
            },
            || {
                rayon::join(
                    || {
                        rayon::join(
                            || opt(&layout.identity, FileKind::Identity),
                            || opt(&layout.partition, FileKind::Partition),
                        )
                    },
                    || opt(&layout.bbox, FileKind::BBox),
                )
            },
        );
        let (attrs, landmarks, identity, partition, bbox) =
            (attrs?, landmarks?, identity?, partition?, bbox?);
        Self::from_tables(
            &attrs,
            landmarks.as_ref(),
            identity.as_ref(),
            partition.as_ref(),
            bbox.as_ref(),
        )
    }

    /// Joins parsed tables on the attribute table's ids.
    pub fn from_tables(
        attrs: &Table,
        landmarks: Option<&Table>,
        identity: Option<&Table>,
        partition: Option<&Table>,
        bbox: Option<&Table>,
    ) -> Result<Self> {
        let ids = attrs.ids.clone();
        let pos = attrs.positions();
        let attr_rows = (0..attrs.len())
            .map(|i| {
                let r = attrs.row(i);
                std::array::from_fn(|a| r[a] == 1)
            })
            .collect();
        let mut warnings = Vec::new();
        if let Some(t) = landmarks {
            for r in 0..t.len() {
                let v = t.row(r);
                for (c, &val) in v.iter().enumerate() {
                    let limit = if c % 2 == 0 {
                        ALIGNED_WIDTH
                    } else {
                        ALIGNED_HEIGHT
                    } as i32;
                    if val >= limit {
                        return Err(Error::parse(
                            &t.path,
                            t.lines[r] as usize,
                            format!(
                                "landmark {} = {val} lies outside the {ALIGNED_WIDTH}x{ALIGNED_HEIGHT} aligned image",
                                LANDMARK_NAMES[c]
                            ),
                        ));
                    }
                }
            }
        }
        if let Some(t) = bbox {
            // Only validated: the in-the-wild boxes are not used by the aligned pipeline.
            let _ = align(&ids, &pos, t, &mut warnings, |_| ());
        }
        let landmarks = landmarks.map(|t| {
            align(&ids, &pos, t, &mut warnings, |r| {
                std::array::from_fn(|c| r[c] as i16)
            })
        });
        let identity = identity.map(|t| align(&ids, &pos, t, &mut warnings, |r| r[0] as u32));
        let split =
            partition.map(|t| align(&ids, &pos, t, &mut warnings, |r| Split::from_code(r[0])));
        if let Some(split) = &split {
            let counts = split_counts(split);
            if ids.len() == OFFICIAL_SPLITS.iter().sum::<usize>() && counts != OFFICIAL_SPLITS {
                warnings.push(format!(
                    "split sizes {counts:?} differ from the official {OFFICIAL_SPLITS:?} (train/val/test)"
                ));
            }
        }
        Ok(Self {
            ids,
            attrs: attr_rows,
            identity,
            split,
            landmarks,
            cluster: None,
            warnings,
        })
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Number of images with attribute `a` set.
    pub fn count_attr(&self, a: usize) -> usize {
        self.attrs.iter().filter(|r| r[a]).count()
    }

    /// Split sizes (train, val, test) when a partition file exists.
    pub fn split_sizes(&self) -> Option<[usize; 3]> {
        self.split.as_ref().map(|s| split_counts(s))
    }

    /// The index table: id, split, identity, 40 boolean attributes, 10 landmark coordinates and
    /// the cluster id (null until clustered).
    pub fn to_dataframe(&self) -> Result<DataFrame> {
        let n = self.len();
        let mut cols: Vec<Column> = Vec::with_capacity(54);
        cols.push(Column::new(
            "id".into(),
            self.ids.iter().map(String::as_str).collect::<Vec<_>>(),
        ));
        let split: Vec<Option<&str>> = match &self.split {
            Some(s) => s.iter().map(|v| v.map(Split::name)).collect(),
            None => vec![None; n],
        };
        cols.push(Column::new("split".into(), split));
        let identity: Vec<Option<u32>> = self.identity.clone().unwrap_or_else(|| vec![None; n]);
        cols.push(Column::new("identity".into(), identity));
        for (a, name) in ATTRIBUTE_NAMES.iter().enumerate() {
            cols.push(Column::new(
                (*name).into(),
                self.attrs.iter().map(|r| r[a]).collect::<Vec<bool>>(),
            ));
        }
        for (c, name) in LANDMARK_NAMES.iter().enumerate() {
            let v: Vec<Option<i16>> = match &self.landmarks {
                Some(l) => l.iter().map(|r| r.map(|r| r[c])).collect(),
                None => vec![None; n],
            };
            cols.push(Column::new((*name).into(), v));
        }
        let cluster: Vec<Option<u32>> = self.cluster.clone().unwrap_or_else(|| vec![None; n]);
        cols.push(Column::new("cluster".into(), cluster));
        Ok(DataFrame::new(n, cols)?)
    }

    /// Rebuilds annotations from an index table written by [`Self::to_dataframe`].
    pub fn from_dataframe(df: &DataFrame) -> Result<Self> {
        let n = df.height();
        let ids: Vec<String> = df
            .column("id")?
            .str()?
            .iter()
            .map(|s| s.unwrap_or_default().to_string())
            .collect();
        let mut attrs = vec![[false; 40]; n];
        for (a, name) in ATTRIBUTE_NAMES.iter().enumerate() {
            for (i, v) in df.column(name)?.bool()?.iter().enumerate() {
                attrs[i][a] = v.unwrap_or(false);
            }
        }
        let split: Vec<Option<Split>> = df
            .column("split")?
            .str()?
            .iter()
            .map(|s| s.and_then(Split::parse))
            .collect();
        let identity: Vec<Option<u32>> = df.column("identity")?.u32()?.iter().collect();
        let mut lm = vec![[0i16; 10]; n];
        let mut has_lm = vec![true; n];
        for (c, name) in LANDMARK_NAMES.iter().enumerate() {
            for (i, v) in df.column(name)?.i16()?.iter().enumerate() {
                match v {
                    Some(v) => lm[i][c] = v,
                    None => has_lm[i] = false,
                }
            }
        }
        let cluster: Vec<Option<u32>> = df.column("cluster")?.u32()?.iter().collect();
        let any = |v: &[Option<_>]| v.iter().any(Option::is_some);
        Ok(Self {
            ids,
            attrs,
            identity: any(&identity).then_some(identity),
            split: split.iter().any(Option::is_some).then_some(split),
            landmarks: has_lm.iter().any(|&h| h).then(|| {
                lm.into_iter()
                    .zip(has_lm)
                    .map(|(l, h)| h.then_some(l))
                    .collect()
            }),
            cluster: cluster.iter().any(Option::is_some).then_some(cluster),
            warnings: Vec::new(),
        })
    }
}

fn split_counts(split: &[Option<Split>]) -> [usize; 3] {
    let mut c = [0; 3];
    for s in split.iter().flatten() {
        c[*s as usize] += 1;
    }
    c
}

/// Writes a DataFrame as parquet atomically (temp name, rename).
pub fn write_parquet(df: &mut DataFrame, path: &std::path::Path) -> Result<()> {
    let mut result = Ok(());
    diat_common::atomic::write_atomic_with(path, |w| {
        result = ParquetWriter::new(w)
            .with_compression(ParquetCompression::Zstd(None))
            .finish(df)
            .map(|_| ());
        result
            .as_ref()
            .map_err(|e| std::io::Error::other(e.to_string()))
            .map(|_| ())
    })
    .map_err(|e| Error::io(path, e))?;
    Ok(result?)
}

/// Reads a parquet file into a DataFrame.
pub fn read_parquet(path: &std::path::Path) -> Result<DataFrame> {
    let f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    Ok(ParquetReader::new(f).finish()?)
}
