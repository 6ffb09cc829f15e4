//! `diat apply --model NAME[@VERSION]|PATH INPUT… --out DIR`: a trained transform (+ enhancement)
//! on CelebA-aligned faces — image files, folders or zips — batched, on the GPU when present.
//! Output files follow the input names (`<stem>.png`); a bad image is reported and skipped.

use anyhow::{Context, Result, bail};
use diat_celeba::crop::{CropSpec, Cropper};
use diat_celeba::dataset::{ALIGNED_HEIGHT, ALIGNED_WIDTH};
use diat_common::Progress;
use diat_train::data::images_to_device;
use diat_train::model::Model;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use tch::{Device, Tensor};

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
    /// The summary line goes to stderr (when another command's output owns stdout).
    #[arg(skip)]
    summary_to_stderr: bool,
}

/// `--paste`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Paste {
    Residual,
    Replace,
}

/// One input image: its output stem and bytes.
struct Item {
    /// Output file stem, unique among the inputs ([`diat_common::names::output_stems`]).
    stem: String,
    source: String,
    bytes: Vec<u8>,
}

fn is_image(p: &str) -> bool {
    let l = p.to_ascii_lowercase();
    l.ends_with(".jpg") || l.ends_with(".jpeg") || l.ends_with(".png")
}

fn stem_of(name: &str) -> String {
    diat_common::names::stem(name).to_string()
}

/// The input images; their output stems never collide (`face.jpg` and `face.png` give
/// `face.jpg.png` and `face.png.png`; the same file name in two folders is an error).
fn collect(inputs: &[PathBuf], keep_intermediate: bool) -> Result<Vec<Item>> {
    let mut items = collect_items(inputs)?;
    let names: Vec<&str> = items.iter().map(|it| it.source.as_str()).collect();
    let suffixes: &[&str] = if keep_intermediate {
        &[".transform", ".input"]
    } else {
        &[]
    };
    let stems = diat_common::names::output_stems(&names, suffixes).map_err(anyhow::Error::msg)?;
    for (it, s) in items.iter_mut().zip(stems) {
        it.stem = s;
    }
    Ok(items)
}

fn collect_items(inputs: &[PathBuf]) -> Result<Vec<Item>> {
    let mut items = Vec::new();
    for input in inputs {
        if input.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(input)
                .with_context(|| format!("reading {}", input.display()))?
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.is_file() && is_image(&p.to_string_lossy()))
                .collect();
            files.sort();
            for f in files {
                items.push(Item {
                    stem: stem_of(&f.to_string_lossy()),
                    source: f.display().to_string(),
                    bytes: std::fs::read(&f)?,
                });
            }
        } else if input
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("zip"))
        {
            diat_common::zipdir::check_unique(input)
                .with_context(|| format!("{} is not a usable zip", input.display()))?;
            let f = std::fs::File::open(input)
                .with_context(|| format!("opening {}", input.display()))?;
            let mut z = zip::ZipArchive::new(f)
                .with_context(|| format!("{} is not a readable zip", input.display()))?;
            for i in 0..z.len() {
                let mut m = z.by_index(i)?;
                let name = m.name().to_string();
                // Never trust member paths: only the file name is used for the output.
                if m.is_dir() || !is_image(&name) || m.enclosed_name().is_none() {
                    continue;
                }
                // The declared size is not trusted either (a zip bomb declares little).
                const MAX: u64 = 256 << 20;
                let mut bytes = Vec::with_capacity(m.size().min(MAX) as usize);
                (&mut m).take(MAX + 1).read_to_end(&mut bytes)?;
                if bytes.len() as u64 > MAX {
                    bail!("{}:{name}: larger than {} MB", input.display(), MAX >> 20);
                }
                items.push(Item {
                    stem: stem_of(&name),
                    source: format!("{}:{name}", input.display()),
                    bytes,
                });
            }
        } else if input.is_file() {
            items.push(Item {
                stem: stem_of(&input.to_string_lossy()),
                source: input.display().to_string(),
                bytes: std::fs::read(input)?,
            });
        } else {
            bail!("{}: no such file or folder", input.display());
        }
    }
    Ok(items)
}

/// The image of `item`, decoded as strictly as `diat data` and `diat align` do (a truncated JPEG
/// is an error); the error does not repeat the source's name.
fn decode(item: &Item) -> Result<image::RgbImage, String> {
    diat_align::decode_photo(Path::new(&item.source), &item.bytes).map_err(|e| {
        let msg = e.to_string();
        let prefix = format!("{}: ", item.source);
        format!(
            "not a readable image: {}",
            msg.strip_prefix(&prefix).unwrap_or(&msg)
        )
    })
}

/// A CelebA-aligned 178×218 image is cropped like the training data; an image already at the
/// model's size is used as is.
fn prepare(item: &Item, cropper: &mut Cropper, size: u32) -> Result<Vec<u8>, String> {
    let img = decode(item)?;
    let (w, h) = img.dimensions();
    if (w, h) == (size, size) {
        return Ok(img.into_raw());
    }
    // A square crop of another size (`diat align`'s 128 px crops for a 64 px model): the model
    // sees it at its own size, with the resizer `--paste-back` uses to take the edit there.
    if w == h {
        return diat_align::resize(&img, size, size)
            .map(|r| r.into_raw())
            .map_err(|e| e.to_string());
    }
    if (w, h) != (ALIGNED_WIDTH, ALIGNED_HEIGHT) {
        return Err(format!(
            "{w}x{h}: expected a CelebA-aligned {ALIGNED_WIDTH}x{ALIGNED_HEIGHT} face or a square crop (align photos with `diat align`)"
        ));
    }
    let mut out = vec![0u8; (size * size * 3) as usize];
    cropper
        .process_rgb(img.as_raw(), &mut out)
        .map_err(|e| e.to_string())?;
    Ok(out)
}

fn save(rgb: &[u8], size: u32, out_size: Option<u32>, path: &Path) -> Result<()> {
    let mut img = image::RgbImage::from_raw(size, size, rgb.to_vec()).context("image size")?;
    if let Some(o) = out_size.filter(|&o| o != size) {
        img = image::imageops::resize(&img, o, o, image::imageops::FilterType::Triangle);
    }
    let mut bytes = Vec::new();
    img.write_to(
        &mut std::io::Cursor::new(&mut bytes),
        image::ImageFormat::Png,
    )?;
    diat_common::write_atomic(path, &bytes).with_context(|| format!("writing {}", path.display()))
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
    let args = Args {
        model: model.to_string(),
        inputs: vec![input.to_path_buf()],
        out: out.to_path_buf(),
        batch: 32,
        cpu: false,
        keep_intermediate,
        out_size,
        align: false,
        largest: false,
        min_face: 20.0,
        paste: Paste::Residual,
        summary_to_stderr: true,
    };
    match run_sized(args)? {
        (c, size) if c == ExitCode::SUCCESS => Ok(size),
        _ => bail!("no image of {} could be transformed", input.display()),
    }
}

pub fn run(args: Args) -> Result<ExitCode> {
    run_sized(args).map(|(code, _)| code)
}

/// [`run`], also returning the model's image side.
fn run_sized(args: Args) -> Result<(ExitCode, u32)> {
    let device = if args.cpu {
        Device::Cpu
    } else {
        Device::cuda_if_available()
    };
    let resolved = diat_zoo::resolve_and_fetch(&args.model)?;
    let model = Model::load(resolved.model_path(), device)?;
    let size = model.image_size as u32;
    let items = collect(&args.inputs, args.keep_intermediate && !args.align)?;
    if items.is_empty() {
        bail!("no input image found");
    }
    std::fs::create_dir_all(&args.out)?;
    if args.align {
        return Ok((apply_aligned(&args, &model, &items, device)?, size));
    }
    let mut cropper = Cropper::new(CropSpec::default().with_size(size));
    let progress = Progress::new("apply", Some(items.len() as u64));
    let (mut done, mut bad) = (0usize, 0usize);
    for chunk in items.chunks(args.batch.max(1)) {
        let mut ok = Vec::new();
        let mut pixels = Vec::new();
        for it in chunk {
            match prepare(it, &mut cropper, size) {
                Ok(px) => {
                    pixels.extend_from_slice(&px);
                    ok.push(it);
                }
                Err(why) => {
                    bad += 1;
                    eprintln!("skipped {}: {why}", it.source);
                }
            }
        }
        if !ok.is_empty() {
            let n = ok.len() as i64;
            let s = size as i64;
            let x = images_to_device(&Tensor::from_slice(&pixels).view([n, s, s, 3]), device);
            let (tx, out) = model.apply(&x);
            let outs = diat_train::images::to_rgb(&out);
            let txs = args
                .keep_intermediate
                .then(|| diat_train::images::to_rgb(&tx));
            for (k, it) in ok.iter().enumerate() {
                save(
                    &outs[k],
                    size,
                    args.out_size,
                    &args.out.join(format!("{}.png", it.stem)),
                )?;
                if let Some(txs) = &txs {
                    save(
                        &txs[k],
                        size,
                        args.out_size,
                        &args.out.join(format!("{}.transform.png", it.stem)),
                    )?;
                    save(
                        &pixels[k * (s * s * 3) as usize..(k + 1) * (s * s * 3) as usize],
                        size,
                        args.out_size,
                        &args.out.join(format!("{}.input.png", it.stem)),
                    )?;
                }
                done += 1;
            }
        }
        progress.inc(chunk.len() as u64);
    }
    progress.finish();
    let summary = format!(
        "{done} image(s) written to {} ({} enhancement), {bad} skipped",
        args.out.display(),
        model.enhancement()
    );
    if args.summary_to_stderr {
        eprintln!("{summary}");
    } else {
        println!("{summary}");
    }
    Ok((super::outcome(done, bad, "image(s) skipped"), size))
}

/// `--align`: every face of every photo edited in place.
fn apply_aligned(args: &Args, model: &Model, items: &[Item], device: Device) -> Result<ExitCode> {
    let size = model.image_size as u32;
    let detector = super::align::load_detector(device, args.min_face)?;
    let window = super::align::crop_window(size);
    let progress = Progress::new("apply --align", Some(items.len() as u64));
    let (mut photos, mut faces_done, mut skipped) = (0usize, 0usize, 0usize);
    for it in items {
        let photo = match decode(it) {
            Ok(p) => p,
            Err(e) => {
                skipped += 1;
                eprintln!("skipped {}: {e}", it.source);
                progress.inc(1);
                continue;
            }
        };
        let faces = super::align::detect_and_align(&detector, &photo, window, args.largest)?;
        if faces.is_empty() {
            skipped += 1;
            eprintln!("skipped {}: no face found", it.source);
            progress.inc(1);
            continue;
        }
        let s = size as i64;
        let mut pixels = Vec::with_capacity(faces.len() * (size * size * 3) as usize);
        for f in &faces {
            pixels.extend_from_slice(f.crop.as_raw());
        }
        let n = faces.len() as i64;
        let x = images_to_device(&Tensor::from_slice(&pixels).view([n, s, s, 3]), device);
        let (_, out) = model.apply(&x);
        let mut result = photo;
        let opts = diat_align::PasteOptions {
            mode: match args.paste {
                Paste::Residual => diat_align::PasteMode::Residual,
                Paste::Replace => diat_align::PasteMode::Replace,
            },
            ..Default::default()
        };
        for (f, rgb) in faces.iter().zip(diat_train::images::to_rgb(&out)) {
            let edited = image::RgbImage::from_raw(size, size, rgb).context("edited crop size")?;
            // f.crop is the model's input at the model's size: the residual is taken there.
            result = diat_align::paste_back_with(&result, f, &edited, &opts)?;
            faces_done += 1;
        }
        let mut bytes = Vec::new();
        result.write_to(
            &mut std::io::Cursor::new(&mut bytes),
            image::ImageFormat::Png,
        )?;
        let path = args.out.join(format!("{}.png", it.stem));
        diat_common::write_atomic(&path, &bytes)
            .with_context(|| format!("writing {}", path.display()))?;
        photos += 1;
        progress.inc(1);
    }
    progress.finish();
    println!(
        "{photos} photo(s) with {faces_done} edited face(s) written to {}, {skipped} skipped",
        args.out.display()
    );
    Ok(super::outcome(photos, skipped, "photo(s) skipped"))
}
