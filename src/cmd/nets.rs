//! `diat nets`: network utilities (`forward`, `import-vggface`) and `diat bench nets`.

use anyhow::{Context, Result, bail};
use diat_nets::diat_a::{DIAT_A_LEARNING_RATE, FlatAdam, StepOptimizer, diat_a_step};
use diat_nets::layers::{bf16_supported, to_channels_last};
use diat_nets::losses::DiatALossConfig;
use diat_nets::timing::measure;
use diat_nets::vggface::{self, ImportOptions};
use diat_nets::{DiscriminatorConfig, TransformConfig, discriminator, transform_net};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;
use tch::{Device, Kind, Tensor, nn, nn::ModuleT, nn::OptimizerConfig};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, clap::Subcommand)]
enum Cmd {
    /// A forward pass of a freshly initialised transform network T (Table 1) on a generated image:
    /// checks that libtorch runs here and reports the output shape and speed.
    Forward {
        /// Image side in pixels (multiple of 4).
        #[arg(long, default_value_t = 128)]
        size: i64,
        /// Batch size.
        #[arg(long, default_value_t = 4)]
        batch: i64,
        /// Use the GPU when available.
        #[arg(long)]
        cuda: bool,
    },
    /// Convert published VGG-Face weights (a PyTorch state dict: vgg_face_dag.pth, vgg-face.pytorch
    /// or torchvision-style; or safetensors) to the checkpoint the identity losses load.
    ImportVggface {
        /// The state dict (`torch.save` zip format, PyTorch >= 1.6, or .safetensors).
        input: PathBuf,
        /// Where to write the checkpoint [default: $DIAT_VGGFACE, else
        /// <DIAT_CACHE_DIR>/vggface/vgg_face.safetensors].
        #[arg(long, short)]
        output: Option<PathBuf>,
        /// The weights expect BGR input (raw Caffe ports): reverse conv1_1's input channels.
        #[arg(long)]
        bgr: bool,
    },
}

pub fn run(args: Args) -> Result<ExitCode> {
    match args.cmd {
        Cmd::Forward { size, batch, cuda } => forward(size, batch, cuda),
        Cmd::ImportVggface { input, output, bgr } => import(&input, output, bgr),
    }
}

fn import(input: &Path, output: Option<PathBuf>, bgr: bool) -> Result<ExitCode> {
    let output =
        output.unwrap_or_else(|| vggface::default_weights_path(&diat_common::Dirs::from_env()));
    let report = vggface::import_vggface(input, &output, &ImportOptions { bgr })
        .with_context(|| format!("importing VGG-Face weights from {}", input.display()))?;
    println!(
        "imported {} ({} layout, width {}{}) -> {}",
        input.display(),
        report.scheme,
        report.width,
        if report.bgr_to_rgb { ", BGR->RGB" } else { "" },
        output.display()
    );
    if !report.dropped.is_empty() {
        println!(
            "left out {} classifier tensors: {}",
            report.dropped.len(),
            report.dropped.join(", ")
        );
    }
    if report.width != 1.0 {
        println!(
            "note: width {} is not the published network (random/test weights?)",
            report.width
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn forward(size: i64, batch: i64, cuda: bool) -> Result<ExitCode> {
    if size % 4 != 0 || size < 8 {
        bail!("--size must be a multiple of 4 and at least 8, got {size}");
    }
    let device = if cuda {
        Device::cuda_if_available()
    } else {
        Device::Cpu
    };
    tch::manual_seed(0);
    let vs = nn::VarStore::new(device);
    let config = TransformConfig {
        image_size: size,
        ..Default::default()
    };
    let t = transform_net(&vs.root(), &config);
    // A generated image: smooth colour ramps, in [-1, 1].
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
    let params: i64 = vs
        .trainable_variables()
        .iter()
        .map(|v| v.numel() as i64)
        .sum();
    let _ = tch::no_grad(|| t.forward_t(&x, false)); // warm-up
    let start = Instant::now();
    let y = tch::no_grad(|| t.forward_t(&x, false));
    let _ = y.sum(Kind::Float).double_value(&[]); // synchronise
    let secs = start.elapsed().as_secs_f64();
    let (lo, hi) = (y.min().double_value(&[]), y.max().double_value(&[]));
    println!(
        "transform network T: {} residual blocks, {params} parameters, device {device:?}",
        config.res_blocks
    );
    println!(
        "input {:?} -> output {:?}, values in [{lo:.3}, {hi:.3}]",
        x.size(),
        y.size()
    );
    println!(
        "forward: {:.1} ms for {batch} images ({:.1} img/s)",
        secs * 1e3,
        batch as f64 / secs
    );
    if y.size() != x.size() || !(lo.is_finite() && hi.is_finite()) || lo < -1.0 || hi > 1.0 {
        bail!("unexpected transform output");
    }
    Ok(ExitCode::SUCCESS)
}

/// `diat bench nets`: throughput of the transform network's forward pass and of a DIAT-A
/// training step. `scripts/bench/bench_nets.py` measures the same in PyTorch with the same flags.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// cpu, cuda, or auto (CUDA when available).
    #[arg(long, default_value = "auto")]
    device: String,
    /// Image side (paper: 128).
    #[arg(long, default_value_t = 128)]
    image_size: i64,
    /// Channel multiplier of T and D (paper: 1).
    #[arg(long, default_value_t = 1.0)]
    width: f64,
    /// Residual blocks of T.
    #[arg(long, default_value_t = 5)]
    res_blocks: usize,
    /// Batch sizes of the forward benchmark.
    #[arg(long, value_delimiter = ',', default_value = "1,64,256")]
    batches: Vec<i64>,
    /// Precisions of the forward benchmark (bf16 is skipped where not supported natively).
    #[arg(long, value_delimiter = ',', default_value = "fp32,bf16")]
    kinds: Vec<String>,
    /// Batch of the DIAT-A training step (0: skip it).
    #[arg(long, default_value_t = 64)]
    step_batch: i64,
    /// Untimed iterations before each measurement.
    #[arg(long, default_value_t = 3)]
    warmup: usize,
    /// Each measurement runs at least this long (seconds)...
    #[arg(long, default_value_t = 2.0)]
    min_time: f64,
    /// ...and at least this many iterations.
    #[arg(long, default_value_t = 3)]
    min_iters: usize,
    /// Plain eager execution: no BN folding, no channels-last, no cuDNN benchmark mode, libtorch's
    /// Adam (what PyTorch eager does without flags).
    #[arg(long)]
    plain: bool,
    /// With the levers, keep the NCHW layout (channels-last off).
    #[arg(long)]
    no_channels_last: bool,
    /// With the levers, use libtorch's Adam instead of the flat one in the training step.
    #[arg(long)]
    libtorch_adam: bool,
    /// libtorch intra-op threads (0: libtorch's default, one per core).
    #[arg(long, default_value_t = 0)]
    threads: i32,
    /// Write the results as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Then run scripts/bench/bench_nets.py with the same settings through this python (e.g.
    /// $DIAT_TORCH_PYTHON) and print the ratios.
    #[arg(long)]
    compare_python: Option<PathBuf>,
    /// The PyTorch benchmark script for --compare-python.
    #[arg(long, default_value = "scripts/bench/bench_nets.py")]
    python_script: PathBuf,
}

/// The network a forward measurement runs.
enum Forward {
    /// The eager module (its layers hold their weights; the var store may go).
    Plain(diat_nets::TransformNet),
    Folded(diat_nets::FoldedTransform),
}

#[derive(Debug, Serialize, serde::Deserialize)]
struct BenchRow {
    what: String,
    batch: i64,
    kind: String,
    img_per_s: f64,
    ms_per_iter: f64,
    iters: usize,
}

#[derive(Debug, Serialize, serde::Deserialize)]
struct BenchReport {
    implementation: String,
    device: String,
    threads: i64,
    libtorch: String,
    settings: String,
    results: Vec<BenchRow>,
}

pub fn bench(a: BenchArgs) -> Result<ExitCode> {
    let device = super::parse_device(&a.device)?;
    let levers = !a.plain;
    let channels_last = levers && !a.no_channels_last;
    let flat_adam = levers && !a.libtorch_adam;
    if a.threads > 0 {
        tch::set_num_threads(a.threads);
    }
    if device.is_cuda() {
        tch::Cuda::cudnn_set_benchmark(levers);
    }
    let doctor = super::doctor::report();
    let device_name = match device {
        Device::Cuda(i) => doctor
            .cuda
            .devices
            .get(i)
            .cloned()
            .unwrap_or_else(|| format!("cuda:{i}")),
        _ => format!(
            "{} (CPU, {} threads)",
            diat_common::machine::cpu_model(),
            tch::get_num_threads()
        ),
    };
    let tcfg = TransformConfig {
        res_blocks: a.res_blocks,
        width: a.width,
        image_size: a.image_size,
    };
    tcfg.validate()?;
    let dcfg = DiscriminatorConfig {
        width: a.width,
        image_size: a.image_size,
        ..Default::default()
    };
    dcfg.validate()?;
    let settings = format!(
        "image {}px, width {}, {} res blocks, {}",
        a.image_size,
        a.width,
        a.res_blocks,
        if levers {
            format!(
                "levers: BN folded, {}cuDNN benchmark, {} Adam",
                if channels_last { "channels-last, " } else { "" },
                if flat_adam { "flat" } else { "libtorch" }
            )
        } else {
            "plain eager".to_string()
        }
    );
    println!("diat bench nets on {device_name}: {settings}");
    tch::manual_seed(0);
    let mut rows = Vec::new();
    let s = a.image_size;

    // Transform network forward (inference).
    let tvs = nn::VarStore::new(device);
    let t = transform_net(&tvs.root(), &tcfg);
    for kind_name in &a.kinds {
        let kind = match kind_name.as_str() {
            "fp32" => Kind::Float,
            "bf16" => Kind::BFloat16,
            other => bail!("--kinds: unknown precision {other} (fp32, bf16)"),
        };
        if kind == Kind::BFloat16 && !bf16_supported(device) {
            println!("T forward {kind_name}: skipped (no native bf16 on this device)");
            continue;
        }
        // Plain: the eager module with its var store cast to the kind. Levers: BN folded into the
        // convolutions, weights and input channels-last.
        let net = if levers {
            Forward::Folded(t.fold(kind, channels_last))
        } else {
            let mut vs = nn::VarStore::new(device);
            let net = transform_net(&vs.root(), &tcfg);
            vs.copy(&tvs)?;
            if kind == Kind::BFloat16 {
                vs.bfloat16();
            }
            Forward::Plain(net)
        };
        for &batch in &a.batches {
            let x =
                (Tensor::rand([batch, 3, s, s], (Kind::Float, device)) * 2.0 - 1.0).to_kind(kind);
            let x = if channels_last {
                to_channels_last(&x)
            } else {
                x
            };
            let (iters, secs) = measure(device, a.warmup, a.min_time, a.min_iters, || {
                let _ = match &net {
                    Forward::Folded(f) => f.forward(&x),
                    Forward::Plain(n) => tch::no_grad(|| n.forward_t(&x, false)),
                };
            });
            let row = BenchRow {
                what: "t_forward".into(),
                batch,
                kind: kind_name.clone(),
                img_per_s: (batch as f64 * iters as f64) / secs,
                ms_per_iter: secs * 1e3 / iters as f64,
                iters,
            };
            println!(
                "T forward   batch {batch:>4} {kind_name}: {:>10.1} img/s ({:.2} ms/iter, {iters} iters)",
                row.img_per_s, row.ms_per_iter
            );
            rows.push(row);
        }
    }

    // One DIAT-A training iteration (D step + T step), fp32.
    if a.step_batch > 0 {
        let n = a.step_batch;
        let svs = nn::VarStore::new(device);
        let st = transform_net(&svs.root(), &tcfg);
        let mut dvs = nn::VarStore::new(device);
        let d = discriminator(&dvs.root(), &dcfg);
        let x = Tensor::rand([n, 3, s, s], (Kind::Float, device)) * 2.0 - 1.0;
        let g = Tensor::rand([n, 3, s, s], (Kind::Float, device)) * 2.0 - 1.0;
        let cfg = DiatALossConfig::default();
        let nets = (&st, &d, &mut dvs);
        let (x, g) = (&x, &g);
        let (iters, secs) = if flat_adam {
            let ot = FlatAdam::new(&svs, DIAT_A_LEARNING_RATE)?;
            let od = FlatAdam::new(nets.2, DIAT_A_LEARNING_RATE)?;
            time_diat_a_steps(&a, device, nets, (ot, od), (x, g), &cfg, channels_last)
        } else {
            let ot = nn::Adam::default().build(&svs, DIAT_A_LEARNING_RATE)?;
            let od = nn::Adam::default().build(nets.2, DIAT_A_LEARNING_RATE)?;
            time_diat_a_steps(&a, device, nets, (ot, od), (x, g), &cfg, channels_last)
        };
        let row = BenchRow {
            what: "diat_a_step".into(),
            batch: n,
            kind: "fp32".into(),
            img_per_s: (n as f64 * iters as f64) / secs,
            ms_per_iter: secs * 1e3 / iters as f64,
            iters,
        };
        println!(
            "DIAT-A step batch {n:>4} fp32: {:>10.1} img/s ({:.2} ms/iter, {iters} iters)",
            row.img_per_s, row.ms_per_iter
        );
        rows.push(row);
    }

    let report = BenchReport {
        implementation: format!("diat (tch {})", diat_nets::checkpoint::TCH_VERSION),
        device: device_name,
        threads: tch::get_num_threads() as i64,
        libtorch: doctor.libtorch.version.unwrap_or_else(|| "unknown".into()),
        settings,
        results: rows,
    };
    super::peer::write_report(a.json.as_deref(), &report)?;
    if let Some(python) = &a.compare_python {
        compare_with_pytorch(&a, python, &report)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// [`measure`]s DIAT-A iterations (D step + T step) with the optimizers `opts` (T's, D's).
fn time_diat_a_steps(
    a: &BenchArgs,
    device: Device,
    (t, d, d_vs): (
        &diat_nets::TransformNet,
        &diat_nets::Discriminator,
        &mut nn::VarStore,
    ),
    (mut ot, mut od): (impl StepOptimizer, impl StepOptimizer),
    (x, g): (&Tensor, &Tensor),
    cfg: &DiatALossConfig,
    channels_last: bool,
) -> (usize, f64) {
    measure(device, a.warmup, a.min_time, a.min_iters, || {
        let _ = diat_a_step(t, d, d_vs, &mut ot, &mut od, x, g, cfg, channels_last);
    })
}

/// Runs the PyTorch benchmark with the same settings and prints diat / PyTorch per row.
fn compare_with_pytorch(a: &BenchArgs, python: &Path, ours: &BenchReport) -> Result<()> {
    let list = |v: &[String]| v.join(",");
    let batches: Vec<String> = a.batches.iter().map(|b| b.to_string()).collect();
    let theirs: BenchReport = super::peer::run_python_peer(
        python,
        &a.python_script,
        &[
            ("--device", a.device.clone()),
            ("--image-size", a.image_size.to_string()),
            ("--width", a.width.to_string()),
            ("--res-blocks", a.res_blocks.to_string()),
            ("--batches", list(&batches)),
            ("--kinds", list(&a.kinds)),
            ("--step-batch", a.step_batch.to_string()),
            ("--warmup", a.warmup.to_string()),
            ("--min-time", a.min_time.to_string()),
            ("--min-iters", a.min_iters.to_string()),
            ("--threads", a.threads.to_string()),
        ],
    )?;
    println!("\n(diat: {}; PyTorch: plain eager)", ours.settings);
    println!("\n| measurement | batch | precision | diat img/s | PyTorch eager img/s | ratio |");
    println!("|---|---:|---|---:|---:|---:|");
    for r in &ours.results {
        if let Some(p) = theirs
            .results
            .iter()
            .find(|p| p.what == r.what && p.batch == r.batch && p.kind == r.kind)
        {
            println!(
                "| {} | {} | {} | {:.1} | {:.1} | {:.2} |",
                r.what,
                r.batch,
                r.kind,
                r.img_per_s,
                p.img_per_s,
                r.img_per_s / p.img_per_s
            );
        }
    }
    Ok(())
}
