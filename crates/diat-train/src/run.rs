//! The run directory: resolved config, `run.json` (commit, versions, device, seed),
//! `metrics.jsonl`, sample grids, the loss-curve PNG, per-stage checkpoints (temp + rename, keep
//! the last N) and per-stage final networks.
//!
//! ```text
//! RUN/resolved.toml  run.json  metrics.jsonl  loss_curve.png
//! RUN/samples/<stage>-step-000500.png          input | transformed | enhanced
//! RUN/checkpoints/<stage>/step-000500/         <net>.safetensors, opt_<net>.safetensors, state.json
//! RUN/stages/<stage>/                          final networks of the stage + done.json
//! RUN/final/                                   transform / enhance / discriminator for the zoo,
//!                                              renamed into place whole, with complete.json
//! ```

use crate::error::{Result, TrainError};
use diat_common::StagedDir;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct RunDir {
    pub root: PathBuf,
}

/// `state.json` of a checkpoint.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckpointState {
    pub stage: String,
    /// Steps completed.
    pub step: u64,
    pub seed: u64,
    /// The loader's position: batches are a pure function of (seed, stream, step), so the cursor
    /// is the step; recorded for readers.
    pub data_cursor: u64,
    /// The torch seed set before the networks were built (the only torch RNG use; data order
    /// and augmentation-free training need no other RNG state).
    pub torch_seed: i64,
    pub losses: serde_json::Map<String, Value>,
}

/// The commit the binary was built from (embedded by the build script; `None` outside a git
/// checkout), not the working directory's: a run started from another folder still names it.
fn git_commit() -> Option<String> {
    option_env!("DIAT_BUILD_COMMIT").map(str::to_string)
}

impl RunDir {
    /// Opens (resume) or creates a run directory; writes the resolved config and run.json.
    pub fn prepare(
        root: &Path,
        resolved_toml: &str,
        resume: bool,
        device: tch::Device,
        seed: u64,
    ) -> Result<Self> {
        let exists = root.join("resolved.toml").exists();
        if exists && !resume {
            return Err(TrainError::Config(format!(
                "{} already holds a run: pass --resume to continue it, or choose another --run-dir",
                root.display()
            )));
        }
        if exists {
            let old = std::fs::read_to_string(root.join("resolved.toml"))
                .map_err(|e| TrainError::io(root, e))?;
            if old != resolved_toml {
                return Err(TrainError::Config(format!(
                    "{} was started with another configuration (see its resolved.toml); resume needs the same",
                    root.display()
                )));
            }
        }
        for d in ["samples", "checkpoints", "stages"] {
            std::fs::create_dir_all(root.join(d)).map_err(|e| TrainError::io(root, e))?;
        }
        let w = |name: &str, bytes: &[u8]| {
            diat_common::write_atomic(&root.join(name), bytes)
                .map_err(|e| TrainError::io(root.join(name), e))
        };
        w("resolved.toml", resolved_toml.as_bytes())?;
        let cudnn = if device.is_cuda() && tch::Cuda::cudnn_is_available() {
            Some(tch::utils::version_cudnn())
        } else {
            None
        };
        let run = serde_json::json!({
            "git_commit": git_commit(),
            "diat_train": env!("CARGO_PKG_VERSION"),
            "tch": diat_nets::checkpoint::TCH_VERSION,
            "libtorch": diat_nets::checkpoint::libtorch_version(),
            "cudnn": cudnn,
            "device": format!("{device:?}"),
            "cpu": diat_common::machine::cpu_model(),
            "threads": tch::get_num_threads(),
            "seed": seed,
            "resumed": exists,
        });
        w(
            "run.json",
            serde_json::to_string_pretty(&run)
                .unwrap_or_default()
                .as_bytes(),
        )?;
        Ok(Self {
            root: root.to_path_buf(),
        })
    }

    pub fn stage_dir(&self, stage: &str) -> PathBuf {
        self.root.join("stages").join(stage)
    }

    pub fn stage_done(&self, stage: &str) -> bool {
        self.stage_dir(stage).join("done.json").exists()
    }

    fn ckpt_root(&self, stage: &str) -> PathBuf {
        self.root.join("checkpoints").join(stage)
    }

    /// Complete checkpoints of a stage, oldest first.
    pub fn checkpoints(&self, stage: &str) -> Vec<(u64, PathBuf)> {
        let mut v: Vec<(u64, PathBuf)> = std::fs::read_dir(self.ckpt_root(stage))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                let step = name.strip_prefix("step-")?.parse().ok()?;
                e.path()
                    .join("state.json")
                    .exists()
                    .then_some((step, e.path()))
            })
            .collect();
        v.sort();
        v
    }

    /// Writes a checkpoint atomically (fill the staging folder, then rename) and keeps the last `keep`.
    pub fn write_checkpoint(
        &self,
        state: &CheckpointState,
        keep: usize,
        fill: impl FnOnce(&Path) -> Result<()>,
    ) -> Result<PathBuf> {
        let dir = self
            .ckpt_root(&state.stage)
            .join(format!("step-{:08}", state.step));
        let staged = StagedDir::new(&dir, true).map_err(|e| TrainError::io(&dir, e))?;
        fill(staged.path())?;
        let json = serde_json::to_vec_pretty(state).unwrap_or_default();
        diat_common::write_atomic(&staged.path().join("state.json"), &json)
            .map_err(|e| TrainError::io(&dir, e))?;
        staged.commit().map_err(|e| TrainError::io(&dir, e))?;
        let all = self.checkpoints(&state.stage);
        for (_, old) in all.iter().take(all.len().saturating_sub(keep)) {
            let _ = std::fs::remove_dir_all(old);
        }
        Ok(dir)
    }

    /// Appends one metrics line (flushed).
    pub fn log_metrics(&self, line: &Value) -> Result<()> {
        let p = self.root.join("metrics.jsonl");
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&p)
            .map_err(|e| TrainError::io(&p, e))?;
        writeln!(f, "{line}").map_err(|e| TrainError::io(&p, e))
    }

    /// Drops metric lines of `stage` beyond `step` (they are recomputed after a resume), and any
    /// line torn by a kill in the middle of a write.
    pub fn truncate_metrics(&self, stage: &str, step: u64) -> Result<()> {
        let p = self.root.join("metrics.jsonl");
        let Ok(text) = std::fs::read_to_string(&p) else {
            return Ok(());
        };
        let kept: Vec<&str> = text
            .lines()
            .filter(|l| {
                let Ok(v) = serde_json::from_str::<Value>(l) else {
                    return false;
                };
                !(v["stage"] == stage && v["step"].as_u64().is_some_and(|s| s > step))
            })
            .collect();
        if kept.len() == text.lines().count() && text.ends_with('\n') {
            return Ok(());
        }
        let mut out = kept.join("\n");
        if !out.is_empty() {
            out.push('\n');
        }
        diat_common::write_atomic(&p, out.as_bytes()).map_err(|e| TrainError::io(&p, e))
    }

    /// All metric lines.
    pub fn metrics(&self) -> Vec<Value> {
        std::fs::read_to_string(self.root.join("metrics.jsonl"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_are_trimmed_to_the_resumed_step() {
        let tmp = tempfile::tempdir().unwrap();
        let run = RunDir {
            root: tmp.path().to_path_buf(),
        };
        let line = |stage: &str, step: u64| serde_json::json!({"stage": stage, "step": step});
        for s in 1..=10 {
            run.log_metrics(&line("pretrain_t", s)).unwrap();
        }
        // Killed after logging steps 1..3 of a stage but before its first checkpoint, and
        // mid-way through writing a line.
        for s in 1..=3 {
            run.log_metrics(&line("adversarial", s)).unwrap();
        }
        let p = tmp.path().join("metrics.jsonl");
        let mut text = std::fs::read_to_string(&p).unwrap();
        text.push_str("{\"stage\": \"adversa");
        std::fs::write(&p, &text).unwrap();
        // Resuming from nothing: the stage's lines go, the finished stage's stay.
        run.truncate_metrics("adversarial", 0).unwrap();
        let m = run.metrics();
        assert_eq!(m.len(), 10);
        assert!(m.iter().all(|v| v["stage"] == "pretrain_t"));
        assert!(std::fs::read_to_string(&p).unwrap().ends_with("}\n"));
        // Resuming after a checkpoint at step 2.
        for s in 1..=5 {
            run.log_metrics(&line("adversarial", s)).unwrap();
        }
        run.truncate_metrics("adversarial", 2).unwrap();
        let steps: Vec<u64> = run
            .metrics()
            .iter()
            .filter(|v| v["stage"] == "adversarial")
            .map(|v| v["step"].as_u64().unwrap())
            .collect();
        assert_eq!(steps, [1, 2]);
    }
}
