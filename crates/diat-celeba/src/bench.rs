//! `diat bench data`: annotation parsing and decode + crop + resize throughput, measured side by
//! side with the Pillow pipeline of `scripts/bench/pillow_crop.py` on the same files in one run.

use crate::annotations::{FileKind, read_table};
use crate::crop::{CropSpec, Cropper};
use crate::error::{Error, Result};
use crate::layout::{ImageReader, Layout};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::Instant;

/// Pillow's numbers (one core), as printed by the script.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PeerResult {
    pub decode_ips: f64,
    pub crop_resize_ips: f64,
    pub full_ips: f64,
    pub version: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    pub machine: String,
    pub images: usize,
    pub distinct_files: usize,
    pub threads: usize,
    pub attr_rows: Option<usize>,
    pub attr_parse_secs: Option<f64>,
    /// img/s on one thread.
    pub decode_ips: f64,
    pub crop_resize_ips: f64,
    pub full_ips: f64,
    /// img/s on all threads, and per thread.
    pub full_ips_parallel: f64,
    pub pillow: Option<PeerResult>,
}

/// Runs the benchmark on `n` images of the CelebA copy at `root` (cycling over what exists).
pub fn run(
    root: &Path,
    n: usize,
    threads: Option<usize>,
    python: Option<&Path>,
) -> Result<BenchReport> {
    let layout = Layout::detect(root)?;
    let t0 = Instant::now();
    let attrs = read_table(&layout.attributes, FileKind::Attributes)?;
    let attr_parse_secs = t0.elapsed().as_secs_f64();
    let loc = layout.images.as_ref().ok_or_else(|| Error::Layout {
        root: root.into(),
        msg: "no images".into(),
    })?;
    let mut reader = ImageReader::open(loc)?;
    let mut files = Vec::new();
    let mut buf = Vec::new();
    for id in &attrs.ids {
        if reader.read_into(id, &mut buf).is_ok() {
            files.push(buf.clone());
            if files.len() >= n {
                break;
            }
        }
    }
    if files.is_empty() {
        return Err(Error::Empty {
            what: "benchmark input".into(),
            why: "no readable image".into(),
        });
    }
    let spec = CropSpec::default();
    let mut c = Cropper::new(spec);
    let mut out = vec![0u8; spec.image_bytes()];
    let pick = |i: usize| &files[i % files.len()];
    // Warm-up.
    for i in 0..files.len().min(32) {
        c.process(pick(i), &mut out)
            .map_err(|e| Error::Config(e.to_string()))?;
    }
    let t = Instant::now();
    for i in 0..n {
        c.decode(pick(i))
            .map_err(|e| Error::Config(e.to_string()))?;
    }
    let decode_ips = n as f64 / t.elapsed().as_secs_f64();
    c.decode(pick(0))
        .map_err(|e| Error::Config(e.to_string()))?;
    let decoded = c.decoded().to_vec();
    let t = Instant::now();
    for _ in 0..n {
        c.process_rgb(&decoded, &mut out)
            .map_err(|e| Error::Config(e.to_string()))?;
    }
    let crop_resize_ips = n as f64 / t.elapsed().as_secs_f64();
    let t = Instant::now();
    for i in 0..n {
        c.process(pick(i), &mut out)
            .map_err(|e| Error::Config(e.to_string()))?;
    }
    let full_ips = n as f64 / t.elapsed().as_secs_f64();
    let threads = threads.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| Error::Config(e.to_string()))?;
    let t = Instant::now();
    pool.install(|| {
        (0..n).into_par_iter().for_each_init(
            || (Cropper::new(spec), vec![0u8; spec.image_bytes()]),
            |(c, out), i| {
                let _ = c.process(pick(i), out);
            },
        )
    });
    let full_ips_parallel = n as f64 / t.elapsed().as_secs_f64();
    let pillow = python.map(|py| run_pillow(py, root, n)).transpose()?;
    Ok(BenchReport {
        machine: diat_common::machine::cpu_summary(),
        images: n,
        distinct_files: files.len(),
        threads,
        attr_rows: Some(attrs.len()),
        attr_parse_secs: Some(attr_parse_secs),
        decode_ips,
        crop_resize_ips,
        full_ips,
        full_ips_parallel,
        pillow,
    })
}

fn run_pillow(python: &Path, root: &Path, n: usize) -> Result<PeerResult> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/bench/pillow_crop.py");
    let out = std::process::Command::new(python)
        .arg(&script)
        .arg(root)
        .arg("--images")
        .arg(n.to_string())
        .output()
        .map_err(|e| Error::io(python, e))?;
    if !out.status.success() {
        return Err(Error::Config(format!(
            "{}: {}",
            script.display(),
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    serde_json::from_slice(&out.stdout)
        .map_err(|e| Error::Config(format!("pillow script output: {e}")))
}

impl BenchReport {
    pub fn text(&self) -> String {
        let mut s = format!("machine: {}\n", self.machine);
        if let (Some(r), Some(t)) = (self.attr_rows, self.attr_parse_secs) {
            s.push_str(&format!("parse list_attr_celeba ({r} rows): {t:.3} s\n"));
        }
        s.push_str(&format!(
            "{} images ({} distinct files), one thread unless noted, img/s:\n",
            self.images, self.distinct_files
        ));
        s.push_str(&format!(
            "{:<28} {:>10} {:>10} {:>8}\n",
            "", "diat", "Pillow", "ratio"
        ));
        let row = |name: &str, ours: f64, peer: Option<f64>| match peer {
            Some(p) => format!("{name:<28} {ours:>10.0} {p:>10.0} {:>7.2}×\n", ours / p),
            None => format!("{name:<28} {ours:>10.0} {:>10} {:>8}\n", "-", "-"),
        };
        let p = self.pillow.as_ref();
        s.push_str(&row("decode", self.decode_ips, p.map(|p| p.decode_ips)));
        s.push_str(&row(
            "crop + resize",
            self.crop_resize_ips,
            p.map(|p| p.crop_resize_ips),
        ));
        s.push_str(&row(
            "decode + crop + resize",
            self.full_ips,
            p.map(|p| p.full_ips),
        ));
        s.push_str(&format!(
            "decode + crop + resize, {} threads: {:.0} img/s ({:.0} per thread)\n",
            self.threads,
            self.full_ips_parallel,
            self.full_ips_parallel / self.threads as f64
        ));
        if let Some(p) = p {
            s.push_str(&format!("peer: Pillow {}\n", p.version));
        }
        s
    }
}
