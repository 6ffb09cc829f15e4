//! Writes a complete synthetic CelebA dataset in the official layout:
//!
//! ```text
//! <out>/Img/img_align_celeba.zip          members img_align_celeba/000001.jpg … (178×218 JPEG, 4:2:0)
//! <out>/Anno/list_attr_celeba.txt         count, 40 names, rows "000001.jpg -1  1 …" (3-char fields)
//! <out>/Anno/list_landmarks_align_celeba.txt   count, 10 names, rows "000001.jpg    69  109 …"
//! <out>/Anno/identity_CelebA.txt          "000001.jpg 1"
//! <out>/Eval/list_eval_partition.txt      "000001.jpg 0"
//! <out>/diat_synth.json                   how it was generated (seed, count, …)
//! ```
//!
//! Text files use CRLF line endings like the originals. The folder is built under a temporary name
//! and renamed into place at the end ([`diat_common::StagedDir`]); the same settings always give
//! byte-identical files (the zip's timestamps are fixed).

use crate::attrs::{Attr, AttrRow};
use crate::face::{FaceSpec, HEIGHT, Landmarks, WIDTH};
use crate::image_io::{Img, encode_jpeg_into};
use crate::layout::{Layout, file_name};
use crate::render::Renderer;
use crate::{Error, Result};
use diat_common::{Progress, StagedDir};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::fs;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// Version of the renderer's output; bumped whenever the pixels or annotations for a given seed change.
pub const RENDER_VERSION: u32 = 1;

/// Name of the generation manifest at the dataset root.
pub const MANIFEST: &str = "diat_synth.json";

/// Default JPEG quality of the stored images.
pub const DEFAULT_QUALITY: u8 = 90;

/// Zip member folder, as in the official archive.
pub const ZIP_FOLDER: &str = "img_align_celeba";

pub use diat_common::LANDMARK_NAMES;

/// What to generate.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SynthConfig {
    pub layout: Layout,
    /// JPEG quality (1–100).
    pub quality: u8,
    /// Render every image's twin with this attribute flipped instead of the original.
    #[serde(with = "opt_attr")]
    pub counterfactual: Option<Attr>,
}

mod opt_attr {
    use crate::attrs::Attr;
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(a: &Option<Attr>, s: S) -> Result<S::Ok, S::Error> {
        match a {
            Some(a) => s.serialize_some(a.name()),
            None => s.serialize_none(),
        }
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Attr>, D::Error> {
        let v: Option<String> = Option::deserialize(d)?;
        v.map(|n| {
            Attr::from_name(&n)
                .ok_or_else(|| serde::de::Error::custom(format!("unknown attribute {n}")))
        })
        .transpose()
    }
}

impl SynthConfig {
    pub fn new(layout: Layout) -> Self {
        Self {
            layout,
            quality: DEFAULT_QUALITY,
            counterfactual: None,
        }
    }

    /// Checks sizes, quality and the counterfactual attribute.
    pub fn validate(&self) -> Result<()> {
        self.layout.validate()?;
        if !(1..=100).contains(&self.quality) {
            return Err(Error::Invalid(format!(
                "JPEG quality {} is not in 1..=100",
                self.quality
            )));
        }
        if let Some(a) = self.counterfactual.filter(|a| !a.is_flippable()) {
            return Err(crate::face::NotFlippable(a).into());
        }
        Ok(())
    }

    /// The spec actually rendered for image `index` (the counterfactual twin if configured).
    pub fn spec(&self, index: u32) -> FaceSpec {
        let spec = FaceSpec::for_image(&self.layout, index);
        match self.counterfactual {
            Some(a) => spec.flipped(a).expect("validated flippable"),
            None => spec,
        }
    }
}

/// The generation manifest written to `diat_synth.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    pub generator: String,
    pub render_version: u32,
    pub config: SynthConfig,
    pub identities: u32,
    /// Images per split (train, val, test).
    pub partitions: [u32; 3],
    /// Images with each attribute = 1, by name.
    pub positives: Vec<(String, u32)>,
    pub width: usize,
    pub height: usize,
}

impl Manifest {
    /// Reads `<root>/diat_synth.json`.
    pub fn read(root: &Path) -> Result<Manifest> {
        let p = root.join(MANIFEST);
        let text = fs::read_to_string(&p).map_err(|e| Error::io(&p, e))?;
        serde_json::from_str(&text).map_err(|e| Error::Invalid(format!("{}: {e}", p.display())))
    }
}

/// What was written.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub root: PathBuf,
    pub manifest: Manifest,
    pub seconds: f64,
    pub faces_per_s: f64,
    pub zip_bytes: u64,
}

impl Summary {
    /// What `diat data synth` prints: counts, size, speed on `threads`, splits and positives.
    pub fn text(&self, threads: usize, counterfactual: Option<crate::Attr>) -> String {
        let m = &self.manifest;
        let pos = |a: crate::Attr| {
            m.positives
                .iter()
                .find(|(n, _)| n == a.name())
                .map(|p| p.1)
                .unwrap_or(0)
        };
        let positives: Vec<String> = crate::FLIPPABLE
            .iter()
            .map(|a| format!("{} {}", a.name(), pos(*a)))
            .collect();
        let mut out = format!(
            "wrote {} images of {} identities to {} ({:.1} MB zip) in {:.1}s ({:.0} faces/s on {threads} threads)\n\
             splits: train {} / val {} / test {}\n\
             positives: {}\n",
            m.partitions.iter().sum::<u32>(),
            m.identities,
            self.root.display(),
            self.zip_bytes as f64 / 1e6,
            self.seconds,
            self.faces_per_s,
            m.partitions[0],
            m.partitions[1],
            m.partitions[2],
            positives.join(", ")
        );
        if let Some(a) = counterfactual {
            out += &format!("every image is the counterfactual twin with {a} flipped\n");
        }
        out
    }
}

/// One rendered image with its annotations.
struct Rendered {
    jpeg: Vec<u8>,
    attrs: AttrRow,
    landmarks: Landmarks,
}

fn render_one(cfg: &SynthConfig, index: u32, r: &mut Renderer, img: &mut Img) -> Result<Rendered> {
    let spec = cfg.spec(index);
    r.render_rgb8(&spec, &mut img.data);
    let mut jpeg = Vec::with_capacity(12 * 1024);
    encode_jpeg_into(img, cfg.quality, &mut jpeg)?;
    Ok(Rendered {
        jpeg,
        attrs: spec.attributes(),
        landmarks: spec.landmarks(),
    })
}

/// `list_attr_celeba.txt` header: count, then the 40 names each followed by a space.
pub fn attr_header(count: u32) -> String {
    let mut s = format!("{count}\r\n");
    for n in Attr::NAMES {
        s.push_str(n);
        s.push(' ');
    }
    s.push_str("\r\n");
    s
}

/// One `list_attr_celeba.txt` row: the name, then each value right-aligned in 3 characters.
pub fn attr_line(index: u32, row: &AttrRow) -> String {
    let mut s = file_name(index);
    for v in row.0 {
        let _ = write!(s, "{v:>3}");
    }
    s.push_str("\r\n");
    s
}

/// `list_landmarks_align_celeba.txt` header.
pub fn landmark_header(count: u32) -> String {
    format!("{count}\r\n{}\r\n", LANDMARK_NAMES.join(" "))
}

/// One landmark row: the name, a space, then each coordinate right-aligned in 5 characters.
pub fn landmark_line(index: u32, lm: &Landmarks) -> String {
    let mut s = file_name(index);
    s.push(' ');
    for v in lm.to_row() {
        let _ = write!(s, "{v:>5}");
    }
    s.push_str("\r\n");
    s
}

/// Writes the dataset to `out` (which must not exist unless `overwrite`), rendering on the current
/// rayon pool and reporting progress.
pub fn write_dataset(
    cfg: &SynthConfig,
    out: &Path,
    overwrite: bool,
    progress: &Progress,
) -> Result<Summary> {
    cfg.validate()?;
    let start = std::time::Instant::now();
    let staged = StagedDir::new(out, overwrite).map_err(|e| Error::io(out, e))?;
    let root = staged.path().to_path_buf();
    let (img_dir, anno_dir, eval_dir) = (root.join("Img"), root.join("Anno"), root.join("Eval"));
    for d in [&img_dir, &anno_dir, &eval_dir] {
        fs::create_dir_all(d).map_err(|e| Error::io(d, e))?;
    }
    let layout = cfg.layout;
    let count = layout.count;
    let zip_path = img_dir.join("img_align_celeba.zip");
    let file = fs::File::create(&zip_path).map_err(|e| Error::io(&zip_path, e))?;
    let mut zip = zip::ZipWriter::new(BufWriter::with_capacity(1 << 20, file));
    let time = zip::DateTime::from_date_and_time(2015, 9, 28, 0, 0, 0)
        .map_err(|e| Error::Zip(e.to_string()))?;
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .last_modified_time(time)
        .unix_permissions(0o644);
    zip.add_directory(format!("{ZIP_FOLDER}/"), opts.unix_permissions(0o755))
        .map_err(|e| Error::Zip(e.to_string()))?;

    let mut attr_txt = String::with_capacity(count as usize * 132 + 600);
    attr_txt.push_str(&attr_header(count));
    let mut lm_txt = String::with_capacity(count as usize * 64 + 200);
    lm_txt.push_str(&landmark_header(count));
    let mut id_txt = String::with_capacity(count as usize * 18);
    let mut part_txt = String::with_capacity(count as usize * 14);
    let mut positives = [0u32; 40];
    let mut partitions = [0u32; 3];

    const CHUNK: u32 = 1024;
    let mut next = 0u32;
    while next < count {
        let end = (next + CHUNK).min(count);
        let batch: Vec<Result<Rendered>> = (next..end)
            .into_par_iter()
            .map_init(
                || {
                    (
                        Renderer::new(),
                        Img::new(WIDTH, HEIGHT, vec![0; WIDTH * HEIGHT * 3]),
                    )
                },
                |(r, img), i| render_one(cfg, i, r, img),
            )
            .collect();
        for (k, item) in batch.into_iter().enumerate() {
            let i = next + k as u32;
            let item = item?;
            let name = file_name(i);
            zip.start_file(format!("{ZIP_FOLDER}/{name}"), opts)
                .map_err(|e| Error::Zip(e.to_string()))?;
            zip.write_all(&item.jpeg)
                .map_err(|e| Error::io(&zip_path, e))?;
            attr_txt.push_str(&attr_line(i, &item.attrs));
            lm_txt.push_str(&landmark_line(i, &item.landmarks));
            let _ = write!(id_txt, "{name} {}\r\n", layout.identity_of(i) + 1);
            let p = layout.partition_of(i);
            let _ = write!(part_txt, "{name} {}\r\n", p as u8);
            partitions[p as usize] += 1;
            for (c, v) in item.attrs.0.iter().enumerate() {
                if *v > 0 {
                    positives[c] += 1;
                }
            }
        }
        progress.inc((end - next) as u64);
        next = end;
    }
    let w = zip.finish().map_err(|e| Error::Zip(e.to_string()))?;
    let f = w
        .into_inner()
        .map_err(|e| Error::io(&zip_path, e.into_error()))?;
    f.sync_all().map_err(|e| Error::io(&zip_path, e))?;
    let zip_bytes = f.metadata().map(|m| m.len()).unwrap_or(0);

    let write =
        |p: PathBuf, text: &str| fs::write(&p, text.as_bytes()).map_err(|e| Error::io(&p, e));
    write(anno_dir.join("list_attr_celeba.txt"), &attr_txt)?;
    write(anno_dir.join("list_landmarks_align_celeba.txt"), &lm_txt)?;
    write(anno_dir.join("identity_CelebA.txt"), &id_txt)?;
    write(eval_dir.join("list_eval_partition.txt"), &part_txt)?;
    let manifest = Manifest {
        generator: format!("diat-synth {}", env!("CARGO_PKG_VERSION")),
        render_version: RENDER_VERSION,
        config: cfg.clone(),
        identities: layout.identities(),
        partitions,
        positives: Attr::ALL
            .iter()
            .map(|a| (a.name().to_string(), positives[a.index()]))
            .collect(),
        width: WIDTH,
        height: HEIGHT,
    };
    let json =
        serde_json::to_string_pretty(&manifest).map_err(|e| Error::Invalid(e.to_string()))?;
    write(root.join(MANIFEST), &(json + "\n"))?;
    let root = staged.commit().map_err(|e| Error::io(out, e))?;
    progress.finish();
    let seconds = start.elapsed().as_secs_f64();
    Ok(Summary {
        root,
        manifest,
        seconds,
        faces_per_s: count as f64 / seconds.max(1e-9),
        zip_bytes,
    })
}

/// Renders selected images (and optionally their counterfactual twins) to loose files in `dir`
/// named like the dataset (`000123.jpg`, JPEG bytes identical to the dataset's), returning the paths.
pub fn write_images(cfg: &SynthConfig, indices: &[u32], dir: &Path) -> Result<Vec<PathBuf>> {
    cfg.validate()?;
    fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    indices
        .par_iter()
        .map_init(
            || {
                (
                    Renderer::new(),
                    Img::new(WIDTH, HEIGHT, vec![0; WIDTH * HEIGHT * 3]),
                )
            },
            |(r, img), &i| {
                if i >= cfg.layout.count {
                    return Err(Error::Invalid(format!(
                        "image {} is outside the dataset (count {})",
                        i + 1,
                        cfg.layout.count
                    )));
                }
                let item = render_one(cfg, i, r, img)?;
                let p = dir.join(file_name(i));
                diat_common::write_atomic(&p, &item.jpeg).map_err(|e| Error::io(&p, e))?;
                Ok(p)
            },
        )
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_match_the_official_format() {
        let mut row = AttrRow::none();
        row.set(Attr::ArchedEyebrows, true);
        let line = attr_line(0, &row);
        assert!(line.starts_with("000001.jpg -1  1 -1"), "{line:?}");
        assert!(line.ends_with(" -1\r\n"));
        assert_eq!(line.len(), 10 + 40 * 3 + 2);
        let lm = Landmarks::from_row([69, 109, 106, 113, 77, 142, 73, 152, 108, 154]);
        assert_eq!(
            landmark_line(0, &lm),
            "000001.jpg    69  109  106  113   77  142   73  152  108  154\r\n"
        );
        assert!(attr_header(3).starts_with("3\r\n5_o_Clock_Shadow Arched_Eyebrows "));
        assert!(attr_header(3).ends_with("Young \r\n"));
        assert_eq!(
            landmark_header(2),
            format!("2\r\n{}\r\n", LANDMARK_NAMES.join(" "))
        );
    }
}
