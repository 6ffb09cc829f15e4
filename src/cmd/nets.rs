//! `diat nets`: network utilities.

use anyhow::{Result, bail};
use diat_nets::{TransformConfig, transform_net};
use std::process::ExitCode;
use std::time::Instant;
use tch::{Device, Kind, Tensor, nn, nn::ModuleT};

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
}

#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
    rest: Vec<String>,
}

pub fn bench(_args: BenchArgs) -> Result<ExitCode> {
    super::pending("bench nets")
}

pub fn run(args: Args) -> Result<ExitCode> {
    match args.cmd {
        Cmd::Forward { size, batch, cuda } => forward(size, batch, cuda),
    }
}

fn forward(size: i64, batch: i64, cuda: bool) -> Result<ExitCode> {
    if size % 4 != 0 || size < 8 {
        bail!("--size must be a multiple of 4 and at least 8, got {size}");
    }
    let device = if cuda { Device::cuda_if_available() } else { Device::Cpu };
    tch::manual_seed(0);
    let vs = nn::VarStore::new(device);
    let config = TransformConfig { image_size: size, ..Default::default() };
    let t = transform_net(&vs.root(), &config);
    // A generated image: smooth colour ramps, in [-1, 1].
    let ramp = Tensor::linspace(-1.0, 1.0, size, (Kind::Float, device));
    let img = Tensor::stack(
        &[ramp.view([1, size]).expand([size, size], false), ramp.view([size, 1]).expand([size, size], false), (ramp.view([1, size]) * ramp.view([size, 1]))],
        0,
    );
    let x = img.unsqueeze(0).repeat([batch, 1, 1, 1]);
    let params: i64 = vs.trainable_variables().iter().map(|v| v.numel() as i64).sum();
    let _ = tch::no_grad(|| t.forward_t(&x, false)); // warm-up
    let start = Instant::now();
    let y = tch::no_grad(|| t.forward_t(&x, false));
    let _ = y.sum(Kind::Float).double_value(&[]); // synchronise
    let secs = start.elapsed().as_secs_f64();
    let (lo, hi) = (y.min().double_value(&[]), y.max().double_value(&[]));
    println!("transform network T: {} residual blocks, {params} parameters, device {device:?}", config.res_blocks);
    println!("input {:?} -> output {:?}, values in [{lo:.3}, {hi:.3}]", x.size(), y.size());
    println!("forward: {:.1} ms for {batch} images ({:.1} img/s)", secs * 1e3, batch as f64 / secs);
    if y.size() != x.size() || !(lo.is_finite() && hi.is_finite()) || lo < -1.0 || hi > 1.0 {
        bail!("unexpected transform output");
    }
    Ok(ExitCode::SUCCESS)
}
