//! `diat apply --model NAME[@VERSION]|PATH INPUT… --out DIR`: a trained transform (+ enhancement)
//! on CelebA-aligned faces or crops — image files, folders or zips — or, with `--align`, on whole
//! photos; the work is [`diat_eval::apply`].

use anyhow::{Result, bail};
use diat_eval::apply::{ApplyOptions, ApplyReport, apply_images, apply_photos, collect};
use diat_train::model::Model;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use tch::Device;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A zoo model (NAME or NAME@VERSION, pulled and verified into the cache when missing), or a
    /// local checkpoint: a run's final/ folder, a transform .safetensors file or a published zip.
    #[arg(long)]
    model: String,
    /// Images (JPEG/PNG), folders of them, or zips.
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    #[arg(long)]
    out: PathBuf,
    #[arg(long, default_value_t = 32)]
    batch: usize,
    /// Run on the CPU even when a GPU is present.
    #[arg(long)]
    cpu: bool,
    /// Also write the input crop and T(x) beside the result (<stem>.input.png, <stem>.transform.png).
    #[arg(long)]
    keep_intermediate: bool,
    /// Resize the written images to this side (bilinear), e.g. 128 for a model trained at 64 px.
    #[arg(long)]
    out_size: Option<u32>,
    /// Inputs are real photos: detect faces (MTCNN), align each to the CelebA crop, edit it and
    /// paste it back into the photo (§5.4). The output is the whole photo.
    #[arg(long)]
    align: bool,
    /// With --align: only the largest face of each photo.
    #[arg(long)]
    largest: bool,
    /// With --align: smallest face side in pixels to detect.
    #[arg(long, default_value_t = 20.0)]
    min_face: f64,
    /// With --align: how the edit enters the photo. `residual` (default) adds only what the
    /// model changed, computed at the model's own resolution (its output minus its input) and
    /// upsampled: the photo keeps its own detail, and outside a local model's region it stays
    /// bit-identical. `replace` puts the model's upsampled output over the face.
    #[arg(long, value_enum, default_value_t = Paste::Residual)]
    paste: Paste,
}

/// `--paste`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Paste {
    Residual,
    Replace,
}

/// Applies `model` (zoo name or local path) to the images of `input` and writes them to `out`
/// at `out_size` (used by `diat eval synth --model`); returns the model's image side.
pub fn apply_dir(
    model: &str,
    input: &Path,
    out: &Path,
    out_size: Option<u32>,
    keep_intermediate: bool,
) -> Result<u32> {
    let model = load(model, Device::cuda_if_available())?;
    let items = collect(&[input.to_path_buf()], keep_intermediate)?;
    let opts = ApplyOptions {
        keep_intermediate,
        out_size,
        ..Default::default()
    };
    let r = apply_images(&model, &items, out, &opts)?;
    if r.written == 0 {
        bail!("no image of {} could be transformed", input.display());
    }
    Ok(model.image_size as u32)
}

fn load(model: &str, device: Device) -> Result<Model> {
    let resolved = diat_zoo::resolve_and_fetch(model)?;
    Ok(Model::load(resolved.model_path(), device)?)
}

pub fn run(args: Args) -> Result<ExitCode> {
    let device = if args.cpu {
        Device::Cpu
    } else {
        Device::cuda_if_available()
    };
    let model = load(&args.model, device)?;
    let items = collect(&args.inputs, args.keep_intermediate && !args.align)?;
    if items.is_empty() {
        bail!("no input image found");
    }
    let opts = ApplyOptions {
        batch: args.batch,
        keep_intermediate: args.keep_intermediate,
        out_size: args.out_size,
        paste: match args.paste {
            Paste::Residual => diat_align::PasteMode::Residual,
            Paste::Replace => diat_align::PasteMode::Replace,
        },
        largest: args.largest,
        ..Default::default()
    };
    let report: ApplyReport = if args.align {
        let detector = diat_eval::apply::load_detector(device, args.min_face)?;
        apply_photos(&model, &detector, &items, &args.out, &opts)?
    } else {
        apply_images(&model, &items, &args.out, &opts)?
    };
    for (source, why) in &report.skipped {
        eprintln!("skipped {source}: {why}");
    }
    let skipped = report.skipped.len();
    if args.align {
        println!(
            "{} photo(s) with {} edited face(s) written to {}, {skipped} skipped",
            report.written,
            report.faces,
            args.out.display()
        );
        Ok(super::outcome(report.written, skipped, "photo(s) skipped"))
    } else {
        println!(
            "{} image(s) written to {} ({} enhancement), {skipped} skipped",
            report.written,
            args.out.display(),
            model.enhancement()
        );
        Ok(super::outcome(report.written, skipped, "image(s) skipped"))
    }
}
