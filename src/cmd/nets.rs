//! `diat nets`: network utilities (`forward`, `import-vggface`) and `diat bench nets`; the work
//! is `diat_nets::bench` and `diat_nets::vggface`.

use anyhow::{Context, Result};
use diat_nets::autocast::Precision;
use diat_nets::bench::{BenchReport, NetsBench, comparison_table, forward_check};
use diat_nets::vggface::{self, ImportOptions};
use diat_nets::{DiscriminatorConfig, TransformConfig};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use tch::Device;

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
        Cmd::Forward { size, batch, cuda } => {
            let device = if cuda {
                Device::cuda_if_available()
            } else {
                Device::Cpu
            };
            print!("{}", forward_check(size, batch, device)?);
            Ok(ExitCode::SUCCESS)
        }
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
    /// Precisions of the training step: fp32, bf16 (autocast, as `torch.autocast`; skipped
    /// without native bf16).
    #[arg(long, value_delimiter = ',', default_value = "fp32,bf16")]
    step_kinds: Vec<String>,
    /// Layouts of the training step: nchw, channels_last (with --plain: nchw only).
    #[arg(long, value_delimiter = ',', default_value = "nchw,channels_last")]
    step_layouts: Vec<String>,
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

pub fn bench(a: BenchArgs) -> Result<ExitCode> {
    let device = super::parse_device(&a.device)?;
    if a.threads > 0 {
        tch::set_num_threads(a.threads);
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
    let mut step_configs = Vec::new();
    for kind in &a.step_kinds {
        let Some(precision) = Precision::from_name(kind) else {
            anyhow::bail!("--step-kinds: unknown precision {kind} (fp32, bf16)");
        };
        for layout in &a.step_layouts {
            let channels_last = match layout.as_str() {
                "nchw" => false,
                "channels_last" if !a.plain => true,
                "channels_last" => continue,
                other => anyhow::bail!("--step-layouts: unknown layout {other}"),
            };
            step_configs.push((precision, channels_last));
        }
    }
    let bench = NetsBench {
        transform: TransformConfig {
            res_blocks: a.res_blocks,
            width: a.width,
            image_size: a.image_size,
            ..Default::default()
        },
        discriminator: DiscriminatorConfig {
            width: a.width,
            image_size: a.image_size,
            ..Default::default()
        },
        batches: a.batches.clone(),
        kinds: a.kinds.clone(),
        step_batch: a.step_batch,
        step_configs,
        warmup: a.warmup,
        min_time: a.min_time,
        min_iters: a.min_iters,
        levers: !a.plain,
        channels_last: !a.plain && !a.no_channels_last,
        flat_adam: !a.plain && !a.libtorch_adam,
    };
    println!("diat bench nets on {device_name}: {}", bench.settings());
    if !device.is_cuda() {
        println!("cpu flags: {}", diat_common::machine::cpu_flags().join(" "));
    }
    let libtorch = doctor.libtorch.version.unwrap_or_else(|| "unknown".into());
    let report = bench.run(device, &device_name, &libtorch, &mut |row| match row {
        Ok(r) => println!("{r}"),
        Err(skipped) => println!("{skipped}"),
    })?;
    super::peer::write_report(a.json.as_deref(), &report)?;
    if let Some(python) = &a.compare_python {
        compare_with_pytorch(&a, python, &report)?;
    }
    Ok(ExitCode::SUCCESS)
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
            ("--step-kinds", list(&a.step_kinds)),
            ("--step-layouts", list(&a.step_layouts)),
            ("--warmup", a.warmup.to_string()),
            ("--min-time", a.min_time.to_string()),
            ("--min-iters", a.min_iters.to_string()),
            ("--threads", a.threads.to_string()),
        ],
    )?;
    println!("\n{}", comparison_table(ours, &theirs));
    Ok(())
}
