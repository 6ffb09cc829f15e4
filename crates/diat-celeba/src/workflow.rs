//! The curation steps end to end, as the `diat data` commands run them:
//! `index` → `cluster` → `sets` (and `prepare`, all three). Each step reads the previous step's
//! output folder and writes its own files atomically.
//!
//! Preparing one paper task's subset (what `diat data prepare ROOT --out DATA --task mouth_open`
//! does) from a CelebA download in any layout:
//!
//! ```no_run
//! use diat_celeba::workflow::{self, SetsOptions};
//! use std::path::Path;
//!
//! # fn main() -> diat_celeba::Result<()> {
//! let (root, out) = (Path::new("celeba"), Path::new("data"));
//! let index = workflow::index(root, out, false)?; // annotations → index.parquet
//! println!("{} images ({} layout)", index.images, index.layout);
//! // Landmark k-means; the curator reviews out/clusters/ and edits exclusions.toml.
//! let exclusions = workflow::load_exclusions(&out.join("exclusions.toml"), None, None)?;
//! print!("{}", workflow::cluster(out, &exclusions, 64)?.text(out));
//! // Guided, input and test sets of the task, cropped and packed for training.
//! let tasks = workflow::tasks(None, &["mouth_open".to_string()])?;
//! for t in workflow::sets(out, Some(root), &tasks, &SetsOptions::default())? {
//!     println!("{}: {} images written to {}", t.task, t.written(), t.dir.display());
//! }
//! # Ok(())
//! # }
//! ```

use crate::cluster::{ClusterStats, Decision, ExclusionFile, cluster_landmarks, decide};
use crate::crop::{CropSpec, Cropper};
use crate::dataset::{ALIGNED_HEIGHT, ALIGNED_WIDTH, Annotations, read_parquet, write_parquet};
use crate::error::{Error, Result};
use crate::layout::{ImageReader, Layout};
use crate::pipeline::{BuildConfig, build_store};
use crate::sets::{SelectConfig, Selection, TaskSpec, kept_rows, select};
use crate::sheets;
use crate::store::Store;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// `index.json` beside `index.parquet`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IndexSummary {
    pub root: PathBuf,
    pub layout: String,
    pub images: usize,
    pub split_sizes: Option<[usize; 3]>,
    pub with_landmarks: Option<usize>,
    pub warnings: Vec<String>,
    pub verified_md5: bool,
}

/// `diat data index`: parses (and optionally verifies) the annotations and writes the index.
pub fn index(root: &Path, out: &Path, verify: bool) -> Result<IndexSummary> {
    let layout = Layout::detect(root)?;
    if verify {
        for (_, p) in layout.annotation_files() {
            crate::verify::verify_file(p)?;
        }
        if let Some(crate::layout::ImageLocation::Zip { path }) = &layout.images {
            crate::verify::verify_file(path)?;
        }
    }
    let ann = Annotations::load(&layout)?;
    let mut df = ann.to_dataframe()?;
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    write_parquet(&mut df, &out.join("index.parquet"))?;
    let summary = IndexSummary {
        root: root.canonicalize().unwrap_or_else(|_| root.to_path_buf()),
        layout: layout.kind.to_string(),
        images: ann.len(),
        split_sizes: ann.split_sizes(),
        with_landmarks: ann.landmarks.as_ref().map(|l| l.iter().flatten().count()),
        warnings: ann.warnings.clone(),
        verified_md5: verify,
    };
    write_json(&out.join("index.json"), &summary)?;
    Ok(summary)
}

fn write_json<T: Serialize>(path: &Path, v: &T) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(v).map_err(|e| Error::invalid(path, e.to_string()))?;
    diat_common::write_atomic(path, &bytes).map_err(|e| Error::io(path, e))
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    serde_json::from_slice(&bytes).map_err(|e| Error::invalid(path, e.to_string()))
}

/// Loads `index.parquet` and `index.json` from an index folder.
pub fn load_index(dir: &Path) -> Result<(Annotations, IndexSummary)> {
    let p = dir.join("index.parquet");
    if !p.exists() {
        return Err(Error::Config(format!(
            "{} not found: run `diat data index ROOT --out {}` first",
            p.display(),
            dir.display()
        )));
    }
    Ok((
        Annotations::from_dataframe(&read_parquet(&p)?)?,
        read_json(&dir.join("index.json"))?,
    ))
}

/// `clusters/clusters.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClusterSummary {
    pub fingerprint: String,
    pub config: crate::cluster::ClusterConfig,
    pub stats: Vec<ClusterStats>,
    pub decisions: Vec<Decision>,
    pub excluded: Vec<u32>,
    pub kept_images: usize,
    pub excluded_images: usize,
}

/// `diat data cluster`: k-means on the landmarks, decisions, contact sheets.
pub fn cluster(
    dir: &Path,
    exclusions: &ExclusionFile,
    sheet_size: usize,
) -> Result<ClusterSummary> {
    let (mut ann, summary) = load_index(dir)?;
    let crop = CropSpec::default();
    let clustering = cluster_landmarks(&ann, &exclusions.clustering, &crop)?;
    let decisions = decide(&clustering, exclusions)?;
    let excluded: Vec<u32> = decisions
        .iter()
        .filter(|d| !d.keep)
        .map(|d| d.cluster)
        .collect();
    ann.cluster = Some(clustering.assignments.clone());
    write_parquet(&mut ann.to_dataframe()?, &dir.join("index.parquet"))?;
    let kept = kept_rows(&ann, &excluded).len();
    let out = ClusterSummary {
        fingerprint: clustering.fingerprint.clone(),
        config: clustering.config.clone(),
        stats: clustering.stats.clone(),
        decisions: decisions.clone(),
        excluded: excluded.clone(),
        kept_images: kept,
        excluded_images: ann
            .landmarks
            .as_ref()
            .map_or(0, |l| l.iter().flatten().count())
            - kept,
    };
    let cdir = dir.join("clusters");
    std::fs::create_dir_all(&cdir).map_err(|e| Error::io(&cdir, e))?;
    write_json(&cdir.join("clusters.json"), &out)?;
    let mut csv = String::from(
        "cluster,size,keep,source,reason,eye_distance,roll_deg,yaw,border_px,spread\n",
    );
    for (s, d) in clustering.stats.iter().zip(&decisions) {
        csv.push_str(&format!(
            "{},{},{},{},\"{}\",{:.2},{:.2},{:.3},{:.1},{:.2}\n",
            s.cluster,
            s.size,
            d.keep,
            d.source,
            d.reason.replace('"', "'"),
            s.eye_distance,
            s.roll_deg,
            s.yaw,
            s.border_px,
            s.spread
        ));
    }
    diat_common::write_atomic(&cdir.join("clusters.csv"), csv.as_bytes())
        .map_err(|e| Error::io(&cdir, e))?;
    if sheet_size > 0 {
        let layout = Layout::detect(&summary.root)?;
        if let Some(loc) = &layout.images {
            let reader = ImageReader::open(loc)?;
            contact_sheets(
                &ann,
                &clustering.stats,
                &decisions,
                &reader,
                sheet_size,
                &cdir,
            )?;
        } else {
            tracing::warn!(
                "no images under {}: contact sheets skipped",
                summary.root.display()
            );
        }
    }
    Ok(out)
}

/// One PNG per cluster: the `n` members nearest its centroid, half size, landmarks marked.
fn contact_sheets(
    ann: &Annotations,
    stats: &[ClusterStats],
    decisions: &[Decision],
    reader: &ImageReader,
    n: usize,
    cdir: &Path,
) -> Result<()> {
    use rayon::prelude::*;
    let lms = ann.landmarks.as_ref().expect("clustered");
    let clusters = ann.cluster.as_ref().expect("clustered");
    let progress = diat_common::Progress::new("contact sheets", Some(stats.len() as u64));
    let (w, h) = (ALIGNED_WIDTH / 2, ALIGNED_HEIGHT / 2);
    stats
        .par_iter()
        .zip(decisions)
        .try_for_each(|(s, d)| -> Result<()> {
            let mut members: Vec<(f32, usize)> = (0..ann.len())
                .filter(|&i| clusters[i] == Some(s.cluster))
                .map(|i| {
                    let l = lms[i].expect("clustered rows have landmarks");
                    let dist: f32 = (0..10).map(|c| (l[c] as f32 - s.centroid[c]).powi(2)).sum();
                    (dist, i)
                })
                .collect();
            members.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            let mut reader = reader.clone();
            let mut cropper = Cropper::new(CropSpec {
                left: 0,
                top: 0,
                width: ALIGNED_WIDTH,
                height: ALIGNED_HEIGHT,
                size: w,
            });
            let mut buf = Vec::new();
            let mut tiles = Vec::new();
            for &(_, i) in members.iter().take(n) {
                if reader.read_into(&ann.ids[i], &mut buf).is_err() {
                    continue;
                }
                // A half-size tile of the whole aligned image (non-square: resize by hand).
                let Ok((iw, ih)) = cropper.decode(&buf) else {
                    continue;
                };
                let mut tile = half(cropper.decoded(), iw, ih);
                let l = lms[i].expect("landmarks");
                let half_lm: [f32; 10] = std::array::from_fn(|c| l[c] as f32 / 2.0);
                sheets::mark_landmarks(&mut tile, w, h, &half_lm);
                tiles.push(tile);
            }
            let sheet = sheets::grid(&tiles, w, h, 6);
            let name = format!(
                "cluster_{:02}_{}.png",
                s.cluster,
                if d.keep { "kept" } else { "excluded" }
            );
            // Remove a stale sheet of the other decision.
            let other = format!(
                "cluster_{:02}_{}.png",
                s.cluster,
                if d.keep { "excluded" } else { "kept" }
            );
            let _ = std::fs::remove_file(cdir.join(other));
            sheets::save_png(&sheet, &cdir.join(name))?;
            progress.inc(1);
            Ok(())
        })?;
    progress.finish();
    Ok(())
}

/// 2×2 box downscale of an RGB image.
fn half(rgb: &[u8], w: u32, h: u32) -> Vec<u8> {
    let (hw, hh) = (w / 2, h / 2);
    let mut out = vec![0u8; (hw * hh * 3) as usize];
    for y in 0..hh {
        for x in 0..hw {
            for c in 0..3 {
                let p = |dx: u32, dy: u32| {
                    rgb[(((2 * y + dy) * w + 2 * x + dx) * 3 + c) as usize] as u16
                };
                out[((y * hw + x) * 3 + c) as usize] =
                    ((p(0, 0) + p(1, 0) + p(0, 1) + p(1, 1) + 2) / 4) as u8;
            }
        }
    }
    out
}

/// Options of `diat data sets`.
#[derive(Debug, Clone)]
pub struct SetsOptions {
    pub select: SelectConfig,
    pub build: BuildConfig,
    /// Also build the pretraining store of all kept training images (Algorithm 1 steps 2–3).
    pub pretrain: bool,
    /// Cap on the pretraining store (None: all kept training images, as the paper).
    pub pretrain_limit: Option<usize>,
    /// Use every image even when no clustering was run.
    pub allow_unclustered: bool,
}

impl Default for SetsOptions {
    /// The paper's selection, the 128 px training crop, no pretraining store.
    fn default() -> Self {
        SetsOptions {
            select: SelectConfig::default(),
            build: BuildConfig::default(),
            pretrain: false,
            pretrain_limit: None,
            allow_unclustered: false,
        }
    }
}

/// What `sets` produced for one task.
#[derive(Debug, Clone, Serialize)]
pub struct TaskOutput {
    pub task: String,
    pub dir: PathBuf,
    pub report: crate::sets::SetReport,
    pub rejected: usize,
}

/// The cluster decisions of `path` (a reviewed `exclusions.toml`), or the default clustering and
/// heuristic when the file does not exist yet (logged); `k` and `seed` override its clustering.
pub fn load_exclusions(path: &Path, k: Option<usize>, seed: Option<u64>) -> Result<ExclusionFile> {
    let mut f = if path.exists() {
        ExclusionFile::load(path)?
    } else {
        tracing::warn!(
            "{} not found: default clustering and heuristic",
            path.display()
        );
        ExclusionFile::default()
    };
    if let Some(k) = k {
        f.clustering.k = k;
    }
    if let Some(s) = seed {
        f.clustering.seed = s;
    }
    Ok(f)
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TaskFile {
    task: Vec<TaskSpec>,
}

/// The tasks of `task_file` (TOML, `[[task]]` tables of [`TaskSpec`]) followed by the paper
/// tasks `names`; every paper task when both are empty.
pub fn tasks(task_file: Option<&Path>, names: &[String]) -> Result<Vec<TaskSpec>> {
    let mut tasks = Vec::new();
    if let Some(p) = task_file {
        let text = std::fs::read_to_string(p).map_err(|e| Error::io(p, e))?;
        let f: TaskFile = toml::from_str(&text).map_err(|e| Error::invalid(p, e.to_string()))?;
        tasks.extend(f.task);
    }
    for t in names {
        tasks.push(crate::sets::paper_task_named(t)?);
    }
    if tasks.is_empty() {
        tasks = crate::sets::paper_tasks();
    }
    Ok(tasks)
}

impl ClusterSummary {
    /// The summary `diat data cluster` prints; `out` is the index folder.
    pub fn text(&self, out: &Path) -> String {
        format!(
            "{} clusters (fingerprint {}), {} excluded: {:?}; {} images kept, {} excluded\n\
             review: {}/clusters/ (clusters.csv, cluster_NN_*.png)\n",
            self.stats.len(),
            self.fingerprint,
            self.excluded.len(),
            self.excluded,
            self.kept_images,
            self.excluded_images,
            out.display()
        )
    }
}

impl TaskOutput {
    /// Images written into the task's stores (selected minus rejected).
    pub fn written(&self) -> usize {
        let r = &self.report;
        (r.guided + r.input + r.test).saturating_sub(self.rejected)
    }
}

/// The excluded clusters, or None when every image is used (`--no-cluster-filter`).
fn excluded_clusters(
    dir: &Path,
    ann: &Annotations,
    allow_unclustered: bool,
) -> Result<Option<Vec<u32>>> {
    if allow_unclustered {
        return Ok(None);
    }
    let p = dir.join("clusters/clusters.json");
    if ann.cluster.is_none() || !p.exists() {
        return Err(Error::Config(format!(
            "{} has no landmark clustering: run `diat data cluster --out {}` first (or pass --no-cluster-filter)",
            dir.display(),
            dir.display()
        )));
    }
    Ok(Some(read_json::<ClusterSummary>(&p)?.excluded))
}

/// `diat data sets`: selection, balancing, stores, masks and reports for each task.
pub fn sets(
    dir: &Path,
    root: Option<&Path>,
    tasks: &[TaskSpec],
    opts: &SetsOptions,
) -> Result<Vec<TaskOutput>> {
    let (ann, summary) = load_index(dir)?;
    let root = root.map(Path::to_path_buf).unwrap_or(summary.root.clone());
    let layout = Layout::detect(&root)?;
    let loc = layout.images.as_ref().ok_or_else(|| Error::Layout {
        root: root.clone(),
        msg: "no images found".into(),
    })?;
    let reader = ImageReader::open(loc)?;
    let excluded = excluded_clusters(dir, &ann, opts.allow_unclustered)?;
    let kept = match &excluded {
        Some(ex) => kept_rows(&ann, ex),
        None => (0..ann.len()).collect(),
    };
    let source = serde_json::json!({ "root": root, "layout": summary.layout, "excluded_clusters": excluded });
    let mut outs = Vec::new();
    for task in tasks {
        let sel: Selection = select(&ann, &kept, task, &opts.select)?;
        tracing::debug!("{}: selection\n{}", task.name, sel.report.table());
        let tdir = dir.join("tasks").join(&task.name);
        let mut rejected = 0;
        for (role, rows) in [
            ("guided", &sel.guided),
            ("input", &sel.input),
            ("test", &sel.test),
        ] {
            if rows.is_empty() {
                continue;
            }
            let details = serde_json::json!({
                "source": source, "task": task, "select": opts.select, "report": sel.report,
            });
            let built = build_store(
                &reader,
                &ann,
                rows,
                &tdir.join(role),
                role,
                Some(&task.name),
                task.region,
                opts.select.seed,
                details,
                &opts.build,
            )?;
            rejected += built.rejects.len();
            if role == "input" && task.region.is_some() {
                mask_preview(&tdir.join(role), &tdir.join("mask_preview.png"))?;
            }
        }
        write_json(&tdir.join("report.json"), &sel.report)?;
        diat_common::write_atomic(&tdir.join("report.txt"), sel.report.table().as_bytes())
            .map_err(|e| Error::io(&tdir, e))?;
        outs.push(TaskOutput {
            task: task.name.clone(),
            dir: tdir,
            report: sel.report,
            rejected,
        });
    }
    if opts.pretrain {
        let mut rows: Vec<usize> = kept
            .iter()
            .copied()
            .filter(|&i| {
                ann.split
                    .as_ref()
                    .is_none_or(|s| s[i] == Some(crate::dataset::Split::Train))
            })
            .collect();
        if let Some(limit) = opts.pretrain_limit {
            rows.truncate(limit);
        }
        let details = serde_json::json!({ "source": source, "purpose": "pre-training of T (Eq. 8) and D (Eq. 9)" });
        build_store(
            &reader,
            &ann,
            &rows,
            &dir.join("pretrain"),
            "pretrain",
            None,
            None,
            opts.select.seed,
            details,
            &opts.build,
        )?;
    }
    Ok(outs)
}

/// Overlay preview of the first 16 masks of a store.
pub fn mask_preview(store_dir: &Path, png: &Path) -> Result<()> {
    let s = Store::open(store_dir)?;
    let n = s.len().min(16);
    let tiles: Vec<Vec<u8>> = (0..n)
        .map(|i| sheets::overlay(s.image(i), s.mask(i).unwrap_or(&[])))
        .collect();
    let side = s.size() as u32;
    sheets::save_png(&sheets::grid(&tiles, side, side, 8), png)
}
