//! `diat eval synth`: transfer quality against exact counterfactuals; `diat eval real` is in
//! [`super::eval_real`] (it needs libtorch).

use anyhow::{Context, Result, bail};
use diat_common::progress::Mode;
use diat_synth::dataset::{DEFAULT_QUALITY, Manifest, SynthConfig};
use diat_synth::eval::{Direction, EvalConfig, Transform, evaluate, table, write_inputs};
use diat_synth::judge::Frame;
use diat_synth::{Attr, Layout};
#[cfg(feature = "torch")]
use std::path::Path;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, clap::Subcommand)]
enum Cmd {
    /// Score a transform on held-out synthetic faces against their exact counterfactual twins:
    /// attribute success (a model-independent pixel-space judge) and identity preservation (PSNR
    /// and SSIM inside and outside the attribute mask). Prints a table; --json writes the report.
    Synth(SynthArgs),
    /// Score a model on real faces with networks that did not train it: attribute success by
    /// diat's attribute classifier, identity kept by dlib's face descriptor (distance < 0.6),
    /// beside the identity, a random other person, a blurred input, T(x) alone and the model's
    /// output blurred (an edit that survives the blur is not texture). Prints a
    /// table; --json writes the report, --sheet a contact sheet.
    #[cfg(feature = "torch")]
    Real(super::eval_real::RealArgs),
    #[cfg(not(feature = "torch"))]
    Real(super::NeedsTorch),
    /// The evaluator's path on LFW's whole photos: detect, align, edit, paste back (PNG), then
    /// identity across photos (descriptor verification of LFW's pairs before and after the edit,
    /// accuracy at 0.6 and ROC AUC), attribute success on the photos the classifier finds
    /// eligible, the other attributes kept, pixels changed outside a local model's region, and
    /// the path's speed per stage. Prints a report; --json, --sheet, --out write files.
    #[cfg(feature = "torch")]
    Lfw(super::eval_lfw::LfwArgs),
    #[cfg(not(feature = "torch"))]
    Lfw(super::NeedsTorch),
}

#[derive(Debug, clap::Args)]
struct SynthArgs {
    /// Attribute to transfer: Eyeglasses, Mouth_Slightly_Open, Smiling, Male or Young.
    #[arg(long)]
    attr: String,
    /// add: inputs without the attribute; remove: inputs with it; flip: all inputs.
    #[arg(long, value_enum, default_value_t = DirectionArg::Flip)]
    direction: DirectionArg,
    /// Baseline transforms to score (repeatable; default: both when no --outputs is given).
    #[arg(long, value_enum)]
    transform: Vec<TransformArg>,
    /// A folder of transformed images named like the inputs (000123.png or .jpg), 178×218 or
    /// 128×128 (repeatable).
    #[arg(long, value_name = "DIR")]
    outputs: Vec<PathBuf>,
    /// A trained model to score (zoo name or local path, e.g. a run's final/ folder): the
    /// evaluation inputs are transformed with it (as `diat apply`) and scored at 128×128.
    #[arg(long, value_name = "MODEL")]
    model: Option<String>,
    /// Write the evaluation inputs (the dataset's JPEGs) into this folder, for a model to transform.
    #[arg(long, value_name = "DIR")]
    write_inputs: Option<PathBuf>,
    /// A dataset written by `diat data synth` (reads its diat_synth.json for the layout).
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// Seed of the layout (without --data).
    #[arg(long, default_value_t = 1, conflicts_with = "data")]
    seed: u64,
    /// Images in the layout (without --data).
    #[arg(long, default_value_t = 10_000, conflicts_with = "data")]
    count: u32,
    /// Images per identity (without --data).
    #[arg(long, default_value_t = 10, conflicts_with = "data")]
    per_identity: u32,
    /// JPEG quality of the stored images (without --data).
    #[arg(long, default_value_t = DEFAULT_QUALITY, conflicts_with = "data")]
    quality: u8,
    /// Evaluate at most this many held-out inputs.
    #[arg(long, default_value_t = 200)]
    limit: usize,
    /// Frame of the baselines: 178x218 (aligned) or 128 (the training crop).
    #[arg(long, default_value = "178x218")]
    size: String,
    /// The training crop of 128×128 outputs: x0,y0,side of the square taken from the 178×218 image.
    #[arg(long, default_value = "0,20,178")]
    crop: String,
    /// Counterfactual pairs to calibrate the judge on.
    #[arg(long, default_value_t = 200)]
    calibration_pairs: usize,
    /// Write the JSON report here ("-" for stdout, then the table goes to stderr).
    #[arg(long, value_name = "PATH")]
    json: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum DirectionArg {
    Add,
    Remove,
    Flip,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum TransformArg {
    Identity,
    Counterfactual,
}

pub fn run(args: Args) -> Result<ExitCode> {
    match args.cmd {
        Cmd::Synth(a) => synth(a),
        #[cfg(feature = "torch")]
        Cmd::Real(a) => super::eval_real::real(a),
        #[cfg(not(feature = "torch"))]
        Cmd::Real(a) => a.refuse("eval real"),
        #[cfg(feature = "torch")]
        Cmd::Lfw(a) => super::eval_lfw::lfw(a),
        #[cfg(not(feature = "torch"))]
        Cmd::Lfw(a) => a.refuse("eval lfw"),
    }
}

fn parse_crop(s: &str) -> Result<Frame> {
    let v: Vec<usize> = s
        .split(',')
        .map(|p| p.trim().parse::<usize>())
        .collect::<Result<_, _>>()
        .with_context(|| format!("--crop {s:?}: expected x0,y0,side"))?;
    let [x0, y0, side] = v[..] else {
        bail!("--crop {s:?}: expected three numbers x0,y0,side")
    };
    if side == 0 || x0 + side > diat_synth::WIDTH || y0 + side > diat_synth::HEIGHT {
        bail!("--crop {s:?}: the square must lie inside the 178×218 image");
    }
    Ok(Frame::crop(x0, y0, side, 128))
}

fn synth(a: SynthArgs) -> Result<ExitCode> {
    let attr = Attr::from_name(&a.attr).with_context(|| {
        format!(
            "unknown attribute {:?} (expected a CelebA column name such as Eyeglasses)",
            a.attr
        )
    })?;
    if !attr.is_flippable() {
        bail!("{}", diat_synth::face::NotFlippable(attr));
    }
    let synth = match &a.data {
        Some(dir) => {
            let m = Manifest::read(dir).with_context(|| {
                format!(
                    "{} is not a dataset written by `diat data synth`",
                    dir.display()
                )
            })?;
            if m.render_version != diat_synth::dataset::RENDER_VERSION {
                eprintln!(
                    "warning: {} was rendered by renderer version {}, this is version {}; images may differ",
                    dir.display(),
                    m.render_version,
                    diat_synth::dataset::RENDER_VERSION
                );
            }
            SynthConfig {
                counterfactual: None,
                ..m.config
            }
        }
        None => SynthConfig {
            quality: a.quality,
            ..SynthConfig::new(Layout::new(a.seed, a.count, a.per_identity))
        },
    };
    let frame_128 = parse_crop(&a.crop)?;
    let baseline_frame = match a.size.as_str() {
        "178x218" | "full" => Frame::FULL,
        "128" | "128x128" => frame_128,
        other => bail!("--size {other:?}: expected 178x218 or 128"),
    };
    let cfg = EvalConfig {
        synth,
        attr,
        direction: match a.direction {
            DirectionArg::Add => Direction::Add,
            DirectionArg::Remove => Direction::Remove,
            DirectionArg::Flip => Direction::Flip,
        },
        limit: a.limit,
        baseline_frame,
        frame_128,
        calibration_pairs: a.calibration_pairs.max(10),
    };
    if let Some(dir) = &a.write_inputs {
        let n = write_inputs(&cfg, dir)?;
        println!("wrote {n} evaluation inputs to {}", dir.display());
        if a.transform.is_empty() && a.outputs.is_empty() {
            return Ok(ExitCode::SUCCESS);
        }
    }
    let mut transforms: Vec<Transform> = a
        .transform
        .iter()
        .map(|t| match t {
            TransformArg::Identity => Transform::Identity,
            TransformArg::Counterfactual => Transform::Counterfactual,
        })
        .collect();
    transforms.dedup();
    transforms.extend(a.outputs.iter().cloned().map(Transform::Outputs));
    // With --model: inputs → the model → 128×128 outputs in a scratch folder, scored like --outputs.
    // Rows: the model's output, its transform network alone (T(x), before enhancement), and,
    // for a model working below 128 px, the identity and the exact counterfactual sent through
    // its resolution and back: what "changing nothing" and "a perfect edit" score at that size
    // (the judge is calibrated on images that took the same path).
    let scratch = std::env::temp_dir().join(format!("diat-eval-{}", std::process::id()));
    #[cfg(not(feature = "torch"))]
    if a.model.is_some() {
        bail!("eval synth --model {}", super::NEEDS_TORCH);
    }
    #[cfg(feature = "torch")]
    if let Some(model) = &a.model {
        let (inputs, applied) = (scratch.join("inputs"), scratch.join("applied"));
        write_inputs(&cfg, &inputs)?;
        let px = super::apply::apply_dir(model, &inputs, &applied, Some(128), true)? as usize;
        let t_only = scratch.join("transform");
        split_intermediate(&applied, &t_only)?;
        let via = if px == 128 { 0 } else { px };
        transforms.push(Transform::Labelled(format!("model {model}"), applied, via));
        transforms.push(Transform::Labelled("  T(x) only".into(), t_only, via));
        if via > 0 {
            for b in [Transform::Identity, Transform::Counterfactual] {
                transforms.push(Transform::Resampled(Box::new(b), px));
            }
        }
    }
    if transforms.is_empty() {
        transforms = vec![Transform::Identity, Transform::Counterfactual];
    }
    let report = evaluate(&cfg, &transforms, Mode::auto());
    let _ = std::fs::remove_dir_all(&scratch);
    let report = report?;
    super::output::emit(&table(&report), &report, a.json.as_deref())?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(feature = "torch")]
/// Moves `<stem>.transform.png` (written by `diat apply --keep-intermediate`) out of `applied`
/// into `t_only` as `<stem>.png`, and drops the `<stem>.input.png` copies.
fn split_intermediate(applied: &Path, t_only: &Path) -> Result<()> {
    std::fs::create_dir_all(t_only)?;
    for e in std::fs::read_dir(applied)? {
        let p = e?.path();
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if let Some(stem) = name.strip_suffix(".transform.png") {
            let dest = t_only.join(format!("{stem}.png"));
            std::fs::rename(&p, &dest).with_context(|| format!("moving {}", p.display()))?;
        } else if name.ends_with(".input.png") {
            std::fs::remove_file(&p).with_context(|| format!("removing {}", p.display()))?;
        }
    }
    Ok(())
}
