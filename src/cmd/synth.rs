//! `diat data synth` and `diat bench synth`: synthetic CelebA-format faces (issue 4).

use anyhow::{Context, Result, bail};
use diat_common::Progress;
use diat_synth::dataset::{DEFAULT_QUALITY, SynthConfig, write_dataset, write_images};
use diat_synth::{Attr, Layout};
use std::path::PathBuf;
use std::process::ExitCode;

/// Render a synthetic CelebA dataset in the official layout (the embedded default data).
///
/// Writes Img/img_align_celeba.zip, Anno/list_attr_celeba.txt, Anno/list_landmarks_align_celeba.txt,
/// Anno/identity_CelebA.txt, Eval/list_eval_partition.txt (and diat_synth.json) under --out.
/// Everything is a function of the seed and the image number, so the same arguments give the same
/// bytes and any image (or its counterfactual twin) can be re-rendered alone with --images.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Dataset root to create [default: <DIAT_DATA_DIR>/celeba-synth].
    #[arg(long, short)]
    out: Option<PathBuf>,
    /// Number of images.
    #[arg(long, short = 'n', default_value_t = 10_000)]
    count: u32,
    /// Images per identity (several poses, scales and lightings of the same person).
    #[arg(long, default_value_t = 10)]
    per_identity: u32,
    /// Master seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// JPEG quality of the stored images (4:2:0 like CelebA).
    #[arg(long, default_value_t = DEFAULT_QUALITY)]
    quality: u8,
    /// Render every image's twin with this attribute flipped (same identity, pose and lighting):
    /// Eyeglasses, Mouth_Slightly_Open, Smiling, Male or Young.
    #[arg(long, value_name = "ATTR")]
    counterfactual: Option<String>,
    /// Only render these images (1-based numbers as in the file names: 17,20-25) as loose JPEGs
    /// into --out, instead of a whole dataset.
    #[arg(long, value_name = "LIST")]
    images: Option<String>,
    /// Also write a contact sheet PNG: 12 faces, then 6 counterfactual pairs.
    #[arg(long, value_name = "PNG")]
    sheet: Option<PathBuf>,
    /// Only write the contact sheet (no dataset).
    #[arg(long, requires = "sheet")]
    sheet_only: bool,
    /// Replace an existing dataset at --out.
    #[arg(long)]
    overwrite: bool,
    /// Rendering threads [default: all cores].
    #[arg(long)]
    threads: Option<usize>,
}

/// Measure rendering throughput: render only and render + JPEG encode, on one thread and on all.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Faces per measurement.
    #[arg(long, default_value_t = 4000)]
    faces: usize,
    /// JPEG quality.
    #[arg(long, default_value_t = DEFAULT_QUALITY)]
    quality: u8,
    /// Threads for the all-cores measurement [default: all cores].
    #[arg(long)]
    threads: Option<usize>,
    /// Also write the report as JSON here ("-" for stdout).
    #[arg(long, value_name = "PATH")]
    json: Option<PathBuf>,
}

fn parse_attr(name: &str) -> Result<Attr> {
    let a = Attr::from_name(name).with_context(|| {
        format!("unknown attribute {name:?} (expected a CelebA column name such as Eyeglasses)")
    })?;
    if !a.is_flippable() {
        bail!("{}", diat_synth::face::NotFlippable(a));
    }
    Ok(a)
}

/// Parses "17,20-25" (1-based) into 0-based indices.
fn parse_list(s: &str, count: u32) -> Result<Vec<u32>> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (a.trim(), b.trim()),
            None => (part, part),
        };
        let a: u32 = a
            .parse()
            .with_context(|| format!("bad image number {a:?} in --images"))?;
        let b: u32 = b
            .parse()
            .with_context(|| format!("bad image number {b:?} in --images"))?;
        if a == 0 || b < a {
            bail!("bad range {part:?} in --images (numbers start at 1, as in 000001.jpg)");
        }
        if b > count {
            bail!("image {b} is beyond --count {count}");
        }
        out.extend(a - 1..b);
    }
    if out.is_empty() {
        bail!("--images lists no image");
    }
    Ok(out)
}

pub fn run(args: Args) -> Result<ExitCode> {
    let layout = Layout::new(args.seed, args.count, args.per_identity);
    let mut cfg = SynthConfig::new(layout);
    cfg.quality = args.quality;
    cfg.counterfactual = args.counterfactual.as_deref().map(parse_attr).transpose()?;
    cfg.validate()?;
    if let Some(sheet) = &args.sheet {
        let img = diat_synth::sheet::sample_sheet(&layout, true);
        diat_synth::image_io::write_png(sheet, &img)?;
        println!(
            "wrote sample sheet {} ({}×{})",
            sheet.display(),
            img.w,
            img.h
        );
        if args.sheet_only {
            return Ok(ExitCode::SUCCESS);
        }
    }
    let out = args
        .out
        .unwrap_or_else(|| diat_common::Dirs::from_env().data.join("celeba-synth"));
    if let Some(list) = &args.images {
        let idx = parse_list(list, args.count)?;
        let (paths, _) = diat_synth::with_threads(args.threads, || write_images(&cfg, &idx, &out))?;
        let paths = paths?;
        println!("wrote {} image(s) to {}", paths.len(), out.display());
        return Ok(ExitCode::SUCCESS);
    }
    let progress = Progress::new("synth", Some(args.count as u64));
    let (summary, threads) = diat_synth::with_threads(args.threads, || {
        write_dataset(&cfg, &out, args.overwrite, &progress)
    })?;
    let summary =
        summary.with_context(|| format!("writing the synthetic dataset to {}", out.display()))?;
    print!("{}", summary.text(threads, cfg.counterfactual));
    Ok(ExitCode::SUCCESS)
}

pub fn bench(args: BenchArgs) -> Result<ExitCode> {
    if args.faces == 0 {
        bail!("--faces must be at least 1");
    }
    if !(1..=100).contains(&args.quality) {
        bail!("--quality must be in 1..=100");
    }
    let (r, _) = diat_synth::with_threads(args.threads, || {
        diat_synth::bench::run(args.faces, args.quality)
    })?;
    print!("{r}");
    if let Some(p) = &args.json {
        let json = serde_json::to_string_pretty(&r)? + "\n";
        if p.as_os_str() == "-" {
            print!("{json}");
        } else {
            diat_common::write_atomic(p, json.as_bytes())
                .with_context(|| format!("writing {}", p.display()))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_lists() {
        assert_eq!(parse_list("1,3-5", 10).unwrap(), vec![0, 2, 3, 4]);
        assert!(parse_list("0", 10).is_err());
        assert!(parse_list("5-3", 10).is_err());
        assert!(parse_list("11", 10).is_err());
        assert!(parse_list("x", 10).is_err());
    }
}
