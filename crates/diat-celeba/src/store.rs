//! Packed, memory-mappable image stores: what training reads instead of decoding JPEGs.
//!
//! A store is a folder:
//! - `images.u8`: `N × S × S × 3` uint8, row-major HWC RGB, image after image;
//! - `masks.u8` (local tasks): `N × S × S` uint8, 255 inside the attribute mask, 0 outside;
//! - `meta.parquet`: one row per image — `row`, `id`, `split`, `identity`, the 40 attributes,
//!   the 10 landmark coordinates transformed into the `S × S` crop (`lefteye_x` …, float), `cluster`;
//! - `manifest.json`: format, role, task, shape, crop, seed, counts and the sha256 of every file.
//!
//! The folder is written under a temporary name and renamed when complete.

use crate::annotations::{ATTRIBUTE_NAMES, LANDMARK_NAMES};
use crate::crop::CropSpec;
use crate::dataset::{Split, read_parquet, write_parquet};
use crate::error::{Error, Result};
use diat_common::StagedDir;
use polars::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};

pub const STORE_FORMAT: &str = "diat-store-v1";

/// One image's metadata row.
#[derive(Debug, Clone)]
pub struct MetaRow {
    pub id: String,
    pub split: Option<Split>,
    pub identity: Option<u32>,
    pub attrs: [bool; 40],
    /// Landmarks in crop coordinates (NaN when unknown).
    pub landmarks: [f32; 10],
    pub cluster: Option<u32>,
}

/// `manifest.json` of a store.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    /// guided | input | test | pretrain
    pub role: String,
    pub task: Option<String>,
    pub count: usize,
    /// [N, S, S, 3]
    pub shape: [usize; 4],
    pub layout: String,
    pub has_masks: bool,
    pub crop: CropSpec,
    pub seed: u64,
    /// sha256 (hex) of `images.u8`, `masks.u8` (if any) and `meta.parquet`.
    pub sha256: std::collections::BTreeMap<String, String>,
    pub created_by: String,
    /// Free-form provenance: source dataset, selection parameters, attribute proportions.
    #[serde(default)]
    pub details: serde_json::Value,
}

struct HashingWriter {
    w: std::io::BufWriter<std::fs::File>,
    h: Sha256,
}

impl HashingWriter {
    fn create(path: &Path) -> Result<Self> {
        let f = std::fs::File::create(path).map_err(|e| Error::io(path, e))?;
        Ok(Self {
            w: std::io::BufWriter::with_capacity(1 << 20, f),
            h: Sha256::new(),
        })
    }
    fn write(&mut self, path: &Path, b: &[u8]) -> Result<()> {
        self.h.update(b);
        self.w.write_all(b).map_err(|e| Error::io(path, e))
    }
    fn finish(self, path: &Path) -> Result<String> {
        let f = self
            .w
            .into_inner()
            .map_err(|e| Error::io(path, e.into_error()))?;
        f.sync_all().map_err(|e| Error::io(path, e))?;
        Ok(hex(&self.h.finalize()))
    }
}

pub(crate) use diat_common::machine::hex;

/// Streams images into a new store.
pub struct StoreWriter {
    staged: StagedDir,
    role: String,
    task: Option<String>,
    crop: CropSpec,
    seed: u64,
    images: HashingWriter,
    masks: Option<HashingWriter>,
    rows: Vec<MetaRow>,
}

impl std::fmt::Debug for StoreWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "StoreWriter({}, {} images)",
            self.staged.target().display(),
            self.rows.len()
        )
    }
}

impl StoreWriter {
    pub fn create(
        dir: &Path,
        role: &str,
        task: Option<&str>,
        crop: CropSpec,
        seed: u64,
        with_masks: bool,
        overwrite: bool,
    ) -> Result<Self> {
        let staged = StagedDir::new(dir, overwrite).map_err(|e| Error::io(dir, e))?;
        let images = HashingWriter::create(&staged.path().join("images.u8"))?;
        let masks = with_masks
            .then(|| HashingWriter::create(&staged.path().join("masks.u8")))
            .transpose()?;
        Ok(Self {
            staged,
            role: role.into(),
            task: task.map(Into::into),
            crop,
            seed,
            images,
            masks,
            rows: Vec::new(),
        })
    }

    /// Appends one image (and its mask for a masked store).
    pub fn push(&mut self, image: &[u8], mask: Option<&[u8]>, meta: MetaRow) -> Result<()> {
        let dir = self.staged.path().to_path_buf();
        if image.len() != self.crop.image_bytes() {
            return Err(Error::invalid(
                &dir,
                format!(
                    "image of {} bytes, expected {}",
                    image.len(),
                    self.crop.image_bytes()
                ),
            ));
        }
        self.images.write(&dir.join("images.u8"), image)?;
        match (&mut self.masks, mask) {
            (Some(w), Some(m)) if m.len() == (self.crop.size * self.crop.size) as usize => {
                w.write(&dir.join("masks.u8"), m)?
            }
            (None, None) => {}
            _ => {
                return Err(Error::invalid(
                    &dir,
                    "mask missing, unexpected or of the wrong size",
                ));
            }
        }
        self.rows.push(meta);
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The temporary folder being filled (extra files such as reports may be added there).
    pub fn staging_dir(&self) -> &Path {
        self.staged.path()
    }

    /// Writes the sidecar and manifest and moves the store into place.
    pub fn finish(self, details: serde_json::Value) -> Result<Manifest> {
        let dir = self.staged.path().to_path_buf();
        let mut sha = std::collections::BTreeMap::new();
        sha.insert(
            "images.u8".to_string(),
            self.images.finish(&dir.join("images.u8"))?,
        );
        if let Some(m) = self.masks {
            sha.insert("masks.u8".to_string(), m.finish(&dir.join("masks.u8"))?);
        }
        let mut df = meta_frame(&self.rows)?;
        let meta_path = dir.join("meta.parquet");
        write_parquet(&mut df, &meta_path)?;
        sha.insert("meta.parquet".to_string(), sha256_file(&meta_path)?);
        let s = self.crop.size as usize;
        let manifest = Manifest {
            format: STORE_FORMAT.into(),
            role: self.role,
            task: self.task,
            count: self.rows.len(),
            shape: [self.rows.len(), s, s, 3],
            layout: "NHWC uint8 RGB".into(),
            has_masks: sha.contains_key("masks.u8"),
            crop: self.crop,
            seed: self.seed,
            sha256: sha,
            created_by: format!("diat-celeba {}", env!("CARGO_PKG_VERSION")),
            details,
        };
        let json = serde_json::to_vec_pretty(&manifest)
            .map_err(|e| Error::invalid(&dir, e.to_string()))?;
        diat_common::write_atomic(&dir.join("manifest.json"), &json)
            .map_err(|e| Error::io(&dir, e))?;
        self.staged.commit().map_err(|e| Error::io(&dir, e))?;
        Ok(manifest)
    }
}

fn meta_frame(rows: &[MetaRow]) -> Result<DataFrame> {
    let n = rows.len();
    let mut cols = vec![
        Column::new("row".into(), (0..n as u32).collect::<Vec<_>>()),
        Column::new(
            "id".into(),
            rows.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        ),
        Column::new(
            "split".into(),
            rows.iter()
                .map(|r| r.split.map(Split::name))
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "identity".into(),
            rows.iter().map(|r| r.identity).collect::<Vec<_>>(),
        ),
    ];
    for (a, name) in ATTRIBUTE_NAMES.iter().enumerate() {
        cols.push(Column::new(
            (*name).into(),
            rows.iter().map(|r| r.attrs[a]).collect::<Vec<_>>(),
        ));
    }
    for (c, name) in LANDMARK_NAMES.iter().enumerate() {
        cols.push(Column::new(
            (*name).into(),
            rows.iter().map(|r| r.landmarks[c]).collect::<Vec<_>>(),
        ));
    }
    cols.push(Column::new(
        "cluster".into(),
        rows.iter().map(|r| r.cluster).collect::<Vec<_>>(),
    ));
    Ok(DataFrame::new(n, cols)?)
}

/// sha256 (hex) of a file, streamed.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut h = Sha256::new();
    std::io::copy(&mut f, &mut h).map_err(|e| Error::io(path, e))?;
    Ok(hex(&h.finalize()))
}

/// A finished store, memory-mapped.
pub struct Store {
    pub dir: PathBuf,
    pub manifest: Manifest,
    images: memmap2::Mmap,
    masks: Option<memmap2::Mmap>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Store({}, {} × {:?})",
            self.dir.display(),
            self.manifest.count,
            &self.manifest.shape[1..]
        )
    }
}

fn map(path: &Path, expected: usize) -> Result<memmap2::Mmap> {
    let f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let len = f.metadata().map_err(|e| Error::io(path, e))?.len() as usize;
    if len != expected {
        return Err(Error::invalid(
            path,
            format!("{len} bytes, the manifest implies {expected} (truncated or foreign file)"),
        ));
    }
    // SAFETY: stores are written once (temp + rename) and only read afterwards.
    #[allow(unsafe_code)]
    unsafe { memmap2::Mmap::map(&f) }.map_err(|e| Error::io(path, e))
}

impl Store {
    /// Opens a store, checking its manifest and file sizes (not the hashes: see [`Self::verify`]).
    pub fn open(dir: &Path) -> Result<Self> {
        let mpath = dir.join("manifest.json");
        let bytes = std::fs::read(&mpath).map_err(|e| Error::io(&mpath, e))?;
        let manifest: Manifest =
            serde_json::from_slice(&bytes).map_err(|e| Error::invalid(&mpath, e.to_string()))?;
        if manifest.format != STORE_FORMAT {
            return Err(Error::invalid(
                &mpath,
                format!("format {}, expected {STORE_FORMAT}", manifest.format),
            ));
        }
        let [n, h, w, c] = manifest.shape;
        let images = map(&dir.join("images.u8"), n * h * w * c)?;
        let masks = manifest
            .has_masks
            .then(|| map(&dir.join("masks.u8"), n * h * w))
            .transpose()?;
        Ok(Self {
            dir: dir.into(),
            manifest,
            images,
            masks,
        })
    }

    pub fn len(&self) -> usize {
        self.manifest.count
    }
    pub fn is_empty(&self) -> bool {
        self.manifest.count == 0
    }
    /// Image side.
    pub fn size(&self) -> usize {
        self.manifest.shape[1]
    }
    /// Image `i` as HWC RGB bytes.
    pub fn image(&self, i: usize) -> &[u8] {
        let b = self.size() * self.size() * 3;
        &self.images[i * b..(i + 1) * b]
    }
    /// Mask `i` (255 inside the attribute region), for masked stores.
    pub fn mask(&self, i: usize) -> Option<&[u8]> {
        let b = self.size() * self.size();
        self.masks.as_ref().map(|m| &m[i * b..(i + 1) * b])
    }
    /// The whole image array (N·S·S·3 bytes).
    pub fn images_raw(&self) -> &[u8] {
        &self.images
    }
    /// The metadata table.
    pub fn meta(&self) -> Result<DataFrame> {
        read_parquet(&self.dir.join("meta.parquet"))
    }
    /// Recomputes every file's sha256 against the manifest.
    pub fn verify(&self) -> Result<()> {
        for (file, expected) in &self.manifest.sha256 {
            let p = self.dir.join(file);
            let actual = sha256_file(&p)?;
            if &actual != expected {
                return Err(Error::invalid(
                    &p,
                    format!("sha256 {actual} does not match the manifest's {expected}"),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_open_verify_roundtrip() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("guided");
        let crop = CropSpec::default().with_size(8);
        let mut w = StoreWriter::create(&dir, "guided", Some("x"), crop, 3, true, false).unwrap();
        for i in 0..3u8 {
            let meta = MetaRow {
                id: format!("{i:06}.jpg"),
                split: Some(Split::Train),
                identity: Some(i as u32 + 1),
                attrs: [i == 1; 40],
                landmarks: [1.5; 10],
                cluster: None,
            };
            w.push(&[i; 8 * 8 * 3], Some(&[255 * (i % 2); 64]), meta)
                .unwrap();
        }
        assert!(!dir.exists(), "nothing under the final name before finish");
        let m = w.finish(serde_json::json!({"note": 1})).unwrap();
        assert_eq!(m.shape, [3, 8, 8, 3]);
        let s = Store::open(&dir).unwrap();
        assert_eq!(s.image(2)[0], 2);
        assert_eq!(s.mask(1).unwrap()[0], 255);
        s.verify().unwrap();
        let meta = s.meta().unwrap();
        assert_eq!(meta.height(), 3);
        assert_eq!(
            meta.column("Eyeglasses").unwrap().bool().unwrap().get(1),
            Some(true)
        );
        // Corruption is detected.
        let mut bytes = std::fs::read(dir.join("images.u8")).unwrap();
        bytes[5] ^= 1;
        std::fs::write(dir.join("images.u8"), &bytes).unwrap();
        assert!(Store::open(&dir).unwrap().verify().is_err());
        std::fs::write(dir.join("images.u8"), &bytes[..10]).unwrap();
        assert!(
            Store::open(&dir)
                .unwrap_err()
                .to_string()
                .contains("truncated")
        );
    }
}
