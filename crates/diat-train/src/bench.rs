//! `diat bench loader` as a library call: what the adversarial stage's data loader delivers — the
//! very loader of `diat train` (worker threads gathering batches from the packed stores, pinned
//! for CUDA), each batch moved to the device and converted to floats in [-1, 1] as the training
//! loop does, with no training in between. `scripts/bench/bench_loader.py` measures PyTorch's
//! DataLoader on the same stores with the same batches per iteration.

use crate::config::MemoryFormat;
use crate::data::Source;
use crate::trainer::adversarial_loader;
use crate::{Result, TrainError};
use diat_nets::layers::synchronize;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Instant;
use tch::Device;

/// What to measure.
#[derive(Debug, Clone)]
pub struct LoaderBench {
    /// A prepared data directory (`diat data prepare` / `diat data sets` output).
    pub data: PathBuf,
    /// The task whose input and guided sets are read.
    pub task: String,
    pub batch: usize,
    /// D and T updates per iteration (each D update reads an input and a guided batch, each T
    /// update an input batch).
    pub dstep: u64,
    pub tstep: u64,
    /// Worker thread counts to measure.
    pub threads: Vec<usize>,
    /// Timed and untimed iterations per measurement.
    pub iters: u64,
    pub warmup: u64,
}

/// One measurement.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoaderRow {
    pub threads: usize,
    /// Delivered to the training loop, converted on the device (wall clock).
    pub img_per_s: f64,
    /// What the workers alone could sustain (images per second of worker time × workers);
    /// absent for PyTorch.
    #[serde(default)]
    pub worker_capacity_img_per_s: Option<f64>,
    pub iters: u64,
}

impl std::fmt::Display for LoaderRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "loader {:>2} worker thread(s): {:>10.0} img/s ({} iters",
            self.threads, self.img_per_s, self.iters
        )?;
        if let Some(c) = self.worker_capacity_img_per_s {
            write!(f, "; the workers alone could sustain {c:.0} img/s")?;
        }
        write!(f, ")")
    }
}

/// A whole run, as written by `--json` here and by `bench_loader.py`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoaderReport {
    pub implementation: String,
    pub device: String,
    pub settings: String,
    pub results: Vec<LoaderRow>,
}

/// Touches every page of a store so that both implementations read from the page cache.
fn warm_page_cache(src: &Source) -> u64 {
    src.store
        .images_raw()
        .iter()
        .step_by(4096)
        .map(|&b| u64::from(b))
        .sum()
}

impl LoaderBench {
    /// Opens the task's two sets and measures each thread count on `device`, calling `on_start`
    /// with the settings line and `on_row` as each row finishes.
    pub fn run(
        &self,
        device: Device,
        device_name: &str,
        on_start: &mut dyn FnMut(&str),
        on_row: &mut dyn FnMut(&LoaderRow),
    ) -> Result<LoaderReport> {
        if self.batch == 0 || self.iters == 0 || self.tstep == 0 || self.threads.contains(&0) {
            return Err(TrainError::Config(
                "batch, iters, tstep and every thread count must be at least 1".into(),
            ));
        }
        // The two sets the adversarial stage reads, at whatever size `data` holds them.
        let tdir = self.data.join("tasks").join(&self.task);
        let open = |role: &str| {
            Source::open(&tdir.join(role)).map_err(|e| {
                TrainError::Config(format!(
                    "opening the {} {role} set under {}: {e}",
                    self.task,
                    self.data.display()
                ))
            })
        };
        let (input, guided) = (open("input")?, open("guided")?);
        if input.size() != guided.size() {
            return Err(TrainError::Config(format!(
                "{}: input images are {} px but guided ones {} px",
                tdir.display(),
                input.size(),
                guided.size()
            )));
        }
        std::hint::black_box(warm_page_cache(&input) + warm_page_cache(&guided));
        let per_iter = self.batch as u64 * (2 * self.dstep + self.tstep);
        let settings = format!(
            "{} {}px, batch {}, dstep {} tstep {} ({} images per iteration: {} input + {} guided)",
            self.task,
            input.size(),
            self.batch,
            self.dstep,
            self.tstep,
            per_iter,
            self.dstep + self.tstep,
            self.dstep
        );
        on_start(&settings);
        // As `diat train` lays batches out by default (train.memory_format = "auto").
        let channels_last =
            MemoryFormat::Auto.channels_last(device, diat_nets::autocast::Precision::Fp32);
        let mut rows = Vec::new();
        for &threads in &self.threads {
            let total = self.warmup + self.iters;
            let mut loader = adversarial_loader(
                &input,
                &guided,
                (0, false),
                self.batch,
                (self.dstep, self.tstep),
                (0, total),
                threads,
                device,
            );
            let mut start = Instant::now();
            let mut sink = Vec::new();
            for i in 0..total {
                if i == self.warmup {
                    synchronize(device);
                    start = Instant::now();
                }
                let (xs, aas) = loader
                    .next_item()
                    .ok_or_else(|| TrainError::Config("the loader stopped early".into()))?;
                // What the training loop does with them: to the device, to floats in [-1, 1].
                sink = xs
                    .iter()
                    .chain(&aas)
                    .map(|r| r.to_device(device, channels_last).images)
                    .collect();
            }
            synchronize(device);
            let secs = start.elapsed().as_secs_f64();
            drop(sink);
            rows.push(LoaderRow {
                threads,
                img_per_s: (self.iters * per_iter) as f64 / secs,
                worker_capacity_img_per_s: Some(loader.capacity_ips()),
                iters: self.iters,
            });
            on_row(rows.last().expect("just pushed"));
        }
        Ok(LoaderReport {
            implementation: "diat (adversarial_loader)".into(),
            device: device_name.to_string(),
            settings,
            results: rows,
        })
    }
}

/// A Markdown table of `ours` beside `theirs` (PyTorch's DataLoader), by thread count.
pub fn comparison_table(ours: &LoaderReport, theirs: &LoaderReport) -> String {
    let mut out = "| worker threads | diat img/s | PyTorch DataLoader img/s | ratio |\n\
                   |---:|---:|---:|---:|\n"
        .to_string();
    for r in &ours.results {
        if let Some(p) = theirs.results.iter().find(|p| p.threads == r.threads) {
            out += &format!(
                "| {} | {:.0} | {:.0} | {:.2} |\n",
                r.threads,
                r.img_per_s,
                p.img_per_s,
                r.img_per_s / p.img_per_s
            );
        }
    }
    out
}
