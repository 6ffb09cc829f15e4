//! `diat bench nets` as a library call: throughput of the transform network's forward pass and
//! of a DIAT-A training iteration (D step + T step, Eq. 14), measured the way
//! `scripts/bench/bench_nets.py` measures the same in PyTorch, so the two reports compare row by
//! row ([`comparison_table`]).

use crate::autocast::Precision;
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
    /// The training step's configurations: precision and channels-last (bf16 is skipped without
    /// native bf16).
    pub step_configs: Vec<(Precision, bool)>,
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
    /// "fp32" or "bf16" (for the step: autocast to bf16).
    pub kind: String,
    /// "nchw" or "channels_last".
    #[serde(default)]
    pub layout: String,
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
            "{what} batch {:>4} {} {:<13}: {:>10.1} img/s ({:.2} ms/iter, {} iters)",
            self.batch, self.kind, self.layout, self.img_per_s, self.ms_per_iter, self.iters
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
    /// FLOPs of one DIAT-A iteration per image (forward and backward; counted by the PyTorch
    /// peer with `torch.utils.flop_counter`).
    #[serde(default)]
    pub step_flops_per_image: Option<f64>,
    /// The machine's attainable peak by precision (FLOP/s of a large matrix product; measured by
    /// the PyTorch peer).
    #[serde(default)]
    pub peak_flops: std::collections::BTreeMap<String, f64>,
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
            let kind = Precision::from_name(kind_name)
                .ok_or_else(|| {
                    NetsError::Config(format!("unknown precision {kind_name} (fp32, bf16)"))
                })?
                .kind();
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
                let layout = layout_name(self.levers && self.channels_last);
                rows.push(row("t_forward", batch, kind_name, layout, timed));
                on_row(Ok(rows.last().expect("just pushed")));
            }
        }
        if self.step_batch > 0 {
            for &(precision, channels_last) in &self.step_configs {
                let layout = layout_name(channels_last);
                if precision == Precision::Bf16 && !bf16_supported(device) {
                    on_row(Err(format!(
                        "DIAT-A step bf16 {layout}: skipped (no native bf16 on this device)"
                    )));
                    continue;
                }
                let timed = self.time_step(device, precision, channels_last)?;
                let kind = precision.name();
                rows.push(row("diat_a_step", self.step_batch, kind, layout, timed));
                on_row(Ok(rows.last().expect("just pushed")));
            }
        }
        Ok(BenchReport {
            implementation: format!("diat (tch {})", crate::checkpoint::TCH_VERSION),
            device: device_name.to_string(),
            threads: tch::get_num_threads() as i64,
            libtorch: libtorch.to_string(),
            settings: self.settings(),
            results: rows,
            step_flops_per_image: None,
            peak_flops: Default::default(),
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

    /// One DIAT-A training iteration (D step + T step), timed.
    fn time_step(
        &self,
        device: Device,
        precision: Precision,
        channels_last: bool,
    ) -> Result<(usize, f64), NetsError> {
        tch::manual_seed(0);
        let (n, s) = (self.step_batch, self.transform.image_size);
        let svs = nn::VarStore::new(device);
        let t = transform_net(&svs.root(), &self.transform);
        let mut dvs = nn::VarStore::new(device);
        let d = discriminator(&dvs.root(), &self.discriminator);
        let x = Tensor::rand([n, 3, s, s], (Kind::Float, device)) * 2.0 - 1.0;
        let g = Tensor::rand([n, 3, s, s], (Kind::Float, device)) * 2.0 - 1.0;
        let nets = Step {
            t: &t,
            d: &d,
            cfg: DiatALossConfig::default(),
            x: &x,
            g: &g,
            channels_last,
            precision,
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
                s.precision,
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
    precision: Precision,
}

/// The network a forward measurement runs.
enum Forward {
    /// The eager module (its layers hold their weights; the var store may go).
    Plain(TransformNet),
    Folded(crate::FoldedTransform),
}

fn layout_name(channels_last: bool) -> &'static str {
    if channels_last {
        "channels_last"
    } else {
        "nchw"
    }
}

fn row(what: &str, batch: i64, kind: &str, layout: &str, (iters, secs): (usize, f64)) -> BenchRow {
    BenchRow {
        what: what.into(),
        batch,
        kind: kind.into(),
        layout: layout.into(),
        img_per_s: (batch as f64 * iters as f64) / secs,
        ms_per_iter: secs * 1e3 / iters as f64,
        iters,
    }
}

/// The fastest DIAT-A step row of a report.
pub fn best_step(r: &BenchReport) -> Option<&BenchRow> {
    r.results
        .iter()
        .filter(|r| r.what == "diat_a_step")
        .max_by(|a, b| a.img_per_s.total_cmp(&b.img_per_s))
}

/// A Markdown table of `ours` beside `theirs` (the PyTorch peer), row by matching row (what,
/// batch, precision, layout), then the fastest training step of each side against the other.
pub fn comparison_table(ours: &BenchReport, theirs: &BenchReport) -> String {
    let mut out = format!(
        "(diat: {}; PyTorch: {})\n\n\
         | measurement | batch | precision | layout | diat img/s | PyTorch img/s | ratio |\n\
         |---|---:|---|---|---:|---:|---:|\n",
        ours.settings, theirs.implementation
    );
    for r in &ours.results {
        // Training steps compare layout for layout; forward rows compare diat's levers
        // (channels-last included) with the peer as it was run.
        let peer = theirs.results.iter().find(|p| {
            p.what == r.what
                && p.batch == r.batch
                && p.kind == r.kind
                && (p.layout == r.layout || r.what != "diat_a_step")
        });
        if let Some(p) = peer {
            out += &format!(
                "| {} | {} | {} | {} | {:.1} | {:.1} | {:.2} |\n",
                r.what,
                r.batch,
                r.kind,
                r.layout,
                r.img_per_s,
                p.img_per_s,
                r.img_per_s / p.img_per_s
            );
        }
    }
    if let (Some(a), Some(b)) = (best_step(ours), best_step(theirs)) {
        let fp32 = |rep: &BenchReport| {
            rep.results
                .iter()
                .find(|r| r.what == "diat_a_step" && r.kind == "fp32" && r.layout == "nchw")
                .map(|r| r.img_per_s)
        };
        out += &format!(
            "\nfastest DIAT-A step: diat {:.1} img/s ({} {}) vs PyTorch's best {:.1} img/s ({} {}): {:.2}×",
            a.img_per_s,
            a.kind,
            a.layout,
            b.img_per_s,
            b.kind,
            b.layout,
            a.img_per_s / b.img_per_s
        );
        if let Some(f) = fp32(ours) {
            out += &format!("; {:.2}× diat's fp32 NCHW step", a.img_per_s / f);
        }
        out += "\n";
        // The share of the machine's attainable peak (a large matrix product in the step's
        // precision) each fastest step reaches.
        if let Some(flops) = theirs.step_flops_per_image {
            let share = |r: &BenchRow| {
                theirs
                    .peak_flops
                    .get(&r.kind)
                    .map(|peak| 100.0 * r.img_per_s * flops / peak)
            };
            if let (Some(x), Some(y)) = (share(a), share(b)) {
                out += &format!(
                    "{:.2} GFLOP per image: diat reaches {x:.0} % of the {} peak, PyTorch {y:.0} % \
                     of the {} peak (a 2048² matrix product)\n",
                    flops / 1e9,
                    a.kind,
                    b.kind
                );
            }
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
                ..Default::default()
            },
            discriminator: DiscriminatorConfig {
                width: 0.125,
                image_size: 16,
                ..Default::default()
            },
            batches: vec![1, 2],
            kinds: vec!["fp32".into()],
            step_batch: 2,
            step_configs: vec![(Precision::Fp32, false), (Precision::Bf16, true)],
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
        // The bf16 step is measured where the CPU has native bf16, and reported as skipped elsewhere.
        assert_eq!(seen, 4);
        let what: Vec<_> = r
            .results
            .iter()
            .map(|r| (r.what.as_str(), r.kind.as_str(), r.layout.as_str()))
            .collect();
        let mut want = vec![
            ("t_forward", "fp32", "channels_last"),
            ("t_forward", "fp32", "channels_last"),
            ("diat_a_step", "fp32", "nchw"),
        ];
        if bf16_supported(Device::Cpu) {
            want.push(("diat_a_step", "bf16", "channels_last"));
        }
        assert_eq!(what, want);
        assert!(r.results.iter().all(|r| r.img_per_s > 0.0 && r.iters >= 1));
        let mut peer = r.clone();
        peer.step_flops_per_image = Some(1e9);
        peer.peak_flops = [("fp32".to_string(), 1e12), ("bf16".to_string(), 2e12)].into();
        assert!(comparison_table(&r, &peer).contains("GFLOP per image"));
        let table = comparison_table(&r, &r);
        assert_eq!(table.matches("| 1.00 |").count(), want.len(), "{table}");
        assert!(
            table.contains("fastest DIAT-A step") && table.contains(": 1.00×"),
            "{table}"
        );
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
