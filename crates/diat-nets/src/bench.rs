//! `diat bench nets` as a library call: throughput of the transform network's forward pass and
//! of a DIAT-A training iteration (D step + T step, Eq. 14), measured the way
//! `scripts/bench/bench_nets.py` measures the same in PyTorch, so the two reports compare row by
//! row ([`comparison_table`]).

use crate::diat_a::{DIAT_A_LEARNING_RATE, FlatAdam, StepOptimizer, diat_a_step};
use crate::layers::{bf16_supported, to_channels_last};
use crate::losses::DiatALossConfig;
use crate::timing::measure;
use crate::{
    Discriminator, DiscriminatorConfig, NetsError, TransformConfig, TransformNet, discriminator,
    transform_net,
};
use serde::{Deserialize, Serialize};
use tch::nn::{ModuleT, OptimizerConfig};
use tch::{Device, Kind, Tensor, nn};

/// What to measure, and how.
#[derive(Debug, Clone)]
pub struct NetsBench {
    pub transform: TransformConfig,
    pub discriminator: DiscriminatorConfig,
    /// Batch sizes of the forward measurement.
    pub batches: Vec<i64>,
    /// Precisions of the forward measurement: "fp32", "bf16" (skipped without native bf16).
    pub kinds: Vec<String>,
    /// Batch of the training step (0: skip it).
    pub step_batch: i64,
    /// Untimed iterations before each measurement.
    pub warmup: usize,
    /// Each measurement runs at least this long (seconds) and this many iterations.
    pub min_time: f64,
    pub min_iters: usize,
    /// The levers: BN folded into the convolutions for inference, cuDNN benchmark mode.
    pub levers: bool,
    /// Channels-last layout (with the levers).
    pub channels_last: bool,
    /// The flat Adam of `diat_a` instead of libtorch's (with the levers).
    pub flat_adam: bool,
}

/// One measurement.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BenchRow {
    /// "t_forward" or "diat_a_step".
    pub what: String,
    pub batch: i64,
    /// "fp32" or "bf16".
    pub kind: String,
    pub img_per_s: f64,
    pub ms_per_iter: f64,
    pub iters: usize,
}

impl std::fmt::Display for BenchRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = match self.what.as_str() {
            "t_forward" => "T forward  ",
            "diat_a_step" => "DIAT-A step",
            other => other,
        };
        write!(
            f,
            "{what} batch {:>4} {}: {:>10.1} img/s ({:.2} ms/iter, {} iters)",
            self.batch, self.kind, self.img_per_s, self.ms_per_iter, self.iters
        )
    }
}

/// A whole run, as written by `--json` here and by `bench_nets.py`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BenchReport {
    pub implementation: String,
    pub device: String,
    pub threads: i64,
    pub libtorch: String,
    pub settings: String,
    pub results: Vec<BenchRow>,
}

impl NetsBench {
    /// The settings line: sizes and levers.
    pub fn settings(&self) -> String {
        let t = &self.transform;
        let levers = if self.levers {
            format!(
                "levers: BN folded, {}cuDNN benchmark, {} Adam",
                if self.channels_last {
                    "channels-last, "
                } else {
                    ""
                },
                if self.flat_adam { "flat" } else { "libtorch" }
            )
        } else {
            "plain eager".to_string()
        };
        format!(
            "image {}px, width {}, {} res blocks, {levers}",
            t.image_size, t.width, t.res_blocks
        )
    }

    /// Runs every measurement on `device`, calling `on_row` as each finishes (or is skipped, with
    /// the reason). `device_name` and `libtorch` go into the report.
    pub fn run(
        &self,
        device: Device,
        device_name: &str,
        libtorch: &str,
        on_row: &mut dyn FnMut(Result<&BenchRow, String>),
    ) -> Result<BenchReport, NetsError> {
        self.transform.validate()?;
        self.discriminator.validate()?;
        if device.is_cuda() {
            tch::Cuda::cudnn_set_benchmark(self.levers);
        }
        tch::manual_seed(0);
        let mut rows = Vec::new();
        let s = self.transform.image_size;
        let tvs = nn::VarStore::new(device);
        let t = transform_net(&tvs.root(), &self.transform);
        for kind_name in &self.kinds {
            let kind = match kind_name.as_str() {
                "fp32" => Kind::Float,
                "bf16" => Kind::BFloat16,
                other => {
                    return Err(NetsError::Config(format!(
                        "unknown precision {other} (fp32, bf16)"
                    )));
                }
            };
            if kind == Kind::BFloat16 && !bf16_supported(device) {
                on_row(Err(format!(
                    "T forward {kind_name}: skipped (no native bf16 on this device)"
                )));
                continue;
            }
            let net = self.forward_net(&t, &tvs, kind, device)?;
            for &batch in &self.batches {
                let x = (Tensor::rand([batch, 3, s, s], (Kind::Float, device)) * 2.0 - 1.0)
                    .to_kind(kind);
                let x = if self.levers && self.channels_last {
                    to_channels_last(&x)
                } else {
                    x
                };
                let timed = measure(device, self.warmup, self.min_time, self.min_iters, || {
                    let _ = match &net {
                        Forward::Folded(f) => f.forward(&x),
                        Forward::Plain(n) => tch::no_grad(|| n.forward_t(&x, false)),
                    };
                });
                rows.push(row("t_forward", batch, kind_name, timed));
                on_row(Ok(rows.last().expect("just pushed")));
            }
        }
        if self.step_batch > 0 {
            let timed = self.time_step(device)?;
            rows.push(row("diat_a_step", self.step_batch, "fp32", timed));
            on_row(Ok(rows.last().expect("just pushed")));
        }
        Ok(BenchReport {
            implementation: format!("diat (tch {})", crate::checkpoint::TCH_VERSION),
            device: device_name.to_string(),
            threads: tch::get_num_threads() as i64,
            libtorch: libtorch.to_string(),
            settings: self.settings(),
            results: rows,
        })
    }

    /// Plain: the eager module with its var store cast to `kind`. Levers: BN folded into the
    /// convolutions, weights (and inputs) channels-last.
    fn forward_net(
        &self,
        t: &TransformNet,
        tvs: &nn::VarStore,
        kind: Kind,
        device: Device,
    ) -> Result<Forward, NetsError> {
        if self.levers {
            return Ok(Forward::Folded(t.fold(kind, self.channels_last)));
        }
        let mut vs = nn::VarStore::new(device);
        let net = transform_net(&vs.root(), &self.transform);
        vs.copy(tvs)?;
        if kind == Kind::BFloat16 {
            vs.bfloat16();
        }
        Ok(Forward::Plain(net))
    }

    /// One DIAT-A training iteration (D step + T step), fp32, timed.
    fn time_step(&self, device: Device) -> Result<(usize, f64), NetsError> {
        let (n, s) = (self.step_batch, self.transform.image_size);
        let svs = nn::VarStore::new(device);
        let t = transform_net(&svs.root(), &self.transform);
        let mut dvs = nn::VarStore::new(device);
        let d = discriminator(&dvs.root(), &self.discriminator);
        let x = Tensor::rand([n, 3, s, s], (Kind::Float, device)) * 2.0 - 1.0;
        let g = Tensor::rand([n, 3, s, s], (Kind::Float, device)) * 2.0 - 1.0;
        let channels_last = self.levers && self.channels_last;
        let nets = Step {
            t: &t,
            d: &d,
            cfg: DiatALossConfig::default(),
            x: &x,
            g: &g,
            channels_last,
        };
        Ok(if self.levers && self.flat_adam {
            let ot = FlatAdam::new(&svs, DIAT_A_LEARNING_RATE)?;
            let od = FlatAdam::new(&dvs, DIAT_A_LEARNING_RATE)?;
            self.time(device, &nets, &mut dvs, ot, od)
        } else {
            let ot = nn::Adam::default().build(&svs, DIAT_A_LEARNING_RATE)?;
            let od = nn::Adam::default().build(&dvs, DIAT_A_LEARNING_RATE)?;
            self.time(device, &nets, &mut dvs, ot, od)
        })
    }

    fn time(
        &self,
        device: Device,
        s: &Step<'_>,
        d_vs: &mut nn::VarStore,
        mut ot: impl StepOptimizer,
        mut od: impl StepOptimizer,
    ) -> (usize, f64) {
        measure(device, self.warmup, self.min_time, self.min_iters, || {
            let _ = diat_a_step(
                s.t,
                s.d,
                d_vs,
                &mut ot,
                &mut od,
                s.x,
                s.g,
                &s.cfg,
                s.channels_last,
            );
        })
    }
}

/// The networks and data of a timed training step.
struct Step<'a> {
    t: &'a TransformNet,
    d: &'a Discriminator,
    cfg: DiatALossConfig,
    x: &'a Tensor,
    g: &'a Tensor,
    channels_last: bool,
}

/// The network a forward measurement runs.
enum Forward {
    /// The eager module (its layers hold their weights; the var store may go).
    Plain(TransformNet),
    Folded(crate::FoldedTransform),
}

fn row(what: &str, batch: i64, kind: &str, (iters, secs): (usize, f64)) -> BenchRow {
    BenchRow {
        what: what.into(),
        batch,
        kind: kind.into(),
        img_per_s: (batch as f64 * iters as f64) / secs,
        ms_per_iter: secs * 1e3 / iters as f64,
        iters,
    }
}

/// A Markdown table of `ours` beside `theirs` (the PyTorch peer), row by matching row.
pub fn comparison_table(ours: &BenchReport, theirs: &BenchReport) -> String {
    let mut out = format!(
        "(diat: {}; PyTorch: plain eager)\n\n\
         | measurement | batch | precision | diat img/s | PyTorch eager img/s | ratio |\n\
         |---|---:|---|---:|---:|---:|\n",
        ours.settings
    );
    for r in &ours.results {
        let peer = theirs
            .results
            .iter()
            .find(|p| p.what == r.what && p.batch == r.batch && p.kind == r.kind);
        if let Some(p) = peer {
            out += &format!(
                "| {} | {} | {} | {:.1} | {:.1} | {:.2} |\n",
                r.what,
                r.batch,
                r.kind,
                r.img_per_s,
                p.img_per_s,
                r.img_per_s / p.img_per_s
            );
        }
    }
    out
}

/// What [`forward_check`] found: `diat nets forward`'s report.
#[derive(Debug, Clone)]
pub struct ForwardCheck {
    pub res_blocks: usize,
    pub parameters: i64,
    pub device: Device,
    pub input: Vec<i64>,
    pub output: Vec<i64>,
    /// The output's smallest and largest value.
    pub range: (f64, f64),
    pub seconds: f64,
}

impl std::fmt::Display for ForwardCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (lo, hi) = self.range;
        let batch = self.input[0];
        writeln!(
            f,
            "transform network T: {} residual blocks, {} parameters, device {:?}",
            self.res_blocks, self.parameters, self.device
        )?;
        writeln!(
            f,
            "input {:?} -> output {:?}, values in [{lo:.3}, {hi:.3}]",
            self.input, self.output
        )?;
        writeln!(
            f,
            "forward: {:.1} ms for {batch} images ({:.1} img/s)",
            self.seconds * 1e3,
            batch as f64 / self.seconds
        )
    }
}

/// A freshly initialised T (default width, `size` px) on a batch of generated images (smooth
/// colour ramps in [-1, 1]): the output must have the input's shape and lie in [-1, 1].
pub fn forward_check(size: i64, batch: i64, device: Device) -> Result<ForwardCheck, NetsError> {
    if size % 4 != 0 || size < 8 || batch < 1 {
        return Err(NetsError::Config(format!(
            "size must be a multiple of 4 and at least 8, batch at least 1; got {size}, {batch}"
        )));
    }
    tch::manual_seed(0);
    let vs = nn::VarStore::new(device);
    let config = TransformConfig {
        image_size: size,
        ..Default::default()
    };
    let t = transform_net(&vs.root(), &config);
    let ramp = Tensor::linspace(-1.0, 1.0, size, (Kind::Float, device));
    let img = Tensor::stack(
        &[
            ramp.view([1, size]).expand([size, size], false),
            ramp.view([size, 1]).expand([size, size], false),
            (ramp.view([1, size]) * ramp.view([size, 1])),
        ],
        0,
    );
    let x = img.unsqueeze(0).repeat([batch, 1, 1, 1]);
    let parameters = vs
        .trainable_variables()
        .iter()
        .map(|v| v.numel() as i64)
        .sum();
    let _ = tch::no_grad(|| t.forward_t(&x, false)); // warm-up
    let start = std::time::Instant::now();
    let y = tch::no_grad(|| t.forward_t(&x, false));
    let _ = y.sum(Kind::Float).double_value(&[]); // synchronise
    let seconds = start.elapsed().as_secs_f64();
    let range = (y.min().double_value(&[]), y.max().double_value(&[]));
    let check = ForwardCheck {
        res_blocks: config.res_blocks,
        parameters,
        device,
        input: x.size(),
        output: y.size(),
        range,
        seconds,
    };
    let (lo, hi) = range;
    if y.size() != x.size() || !(lo.is_finite() && hi.is_finite()) || lo < -1.0 || hi > 1.0 {
        return Err(NetsError::Config(format!(
            "unexpected transform output:\n{check}"
        )));
    }
    Ok(check)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tiny_run_measures_every_row_and_compares() {
        let bench = NetsBench {
            transform: TransformConfig {
                res_blocks: 1,
                width: 0.125,
                image_size: 16,
            },
            discriminator: DiscriminatorConfig {
                width: 0.125,
                image_size: 16,
                ..Default::default()
            },
            batches: vec![1, 2],
            kinds: vec!["fp32".into()],
            step_batch: 2,
            warmup: 0,
            min_time: 0.0,
            min_iters: 1,
            levers: true,
            channels_last: true,
            flat_adam: true,
        };
        let mut seen = 0;
        let r = bench
            .run(Device::Cpu, "cpu", "test", &mut |_| seen += 1)
            .unwrap();
        assert_eq!(seen, 3);
        let what: Vec<_> = r
            .results
            .iter()
            .map(|r| (r.what.as_str(), r.batch))
            .collect();
        assert_eq!(
            what,
            [("t_forward", 1), ("t_forward", 2), ("diat_a_step", 2)]
        );
        assert!(r.results.iter().all(|r| r.img_per_s > 0.0 && r.iters >= 1));
        let table = comparison_table(&r, &r);
        assert_eq!(table.matches("| 1.00 |").count(), 3, "{table}");
        let bad = NetsBench {
            kinds: vec!["fp8".into()],
            ..bench
        };
        assert!(bad.run(Device::Cpu, "cpu", "test", &mut |_| ()).is_err());
    }

    #[test]
    fn forward_check_keeps_the_shape_and_range() {
        let c = forward_check(16, 2, Device::Cpu).unwrap();
        assert_eq!(
            (c.input.clone(), c.output.clone()),
            (vec![2, 3, 16, 16], vec![2, 3, 16, 16])
        );
        assert!(c.parameters > 0 && c.to_string().contains("2 images"));
        assert!(forward_check(10, 1, Device::Cpu).is_err());
    }
}
