//! `diat eval synth`: transfer quality against exact counterfactuals (issue 4).

use anyhow::{Context, Result, bail};
use diat_common::progress::Mode;
use diat_synth::dataset::{DEFAULT_QUALITY, Manifest, SynthConfig};
use diat_synth::eval::{Direction, EvalConfig, Transform, evaluate, table, write_inputs};
use diat_synth::judge::Frame;
use diat_synth::{Attr, Layout};
use std::path::{Path, PathBuf};
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
    /// beside the identity, a random other person, a blurred input and T(x) alone. Prints a
    /// table; --json writes the report, --sheet a contact sheet.
    Real(RealArgs),
}

#[derive(Debug, clap::Args)]
struct RealArgs {
    /// The attribute the model edits (a CelebA column name the classifier knows).
    #[arg(long)]
    attr: String,
    /// add: inputs without the attribute, success when the output has it; remove: the reverse.
    #[arg(long, value_enum)]
    direction: RealDirection,
    /// The model: a zoo name or a local path (a run's final/ folder or a transform checkpoint).
    #[arg(long)]
    model: String,
    /// Faces: a `diat align` output folder (faces.json + aligned/), a folder of photos, or a zip
    /// of photos (detected and aligned with MTCNN here).
    #[arg(long, value_name = "DIR|ZIP")]
    faces: PathBuf,
    /// CelebA annotations (Anno/list_attr_celeba.txt, Anno/identity_CelebA.txt) for the faces'
    /// labels and identities; photos not in them are selected by the classifier.
    #[arg(long, value_name = "DIR", env = "DIAT_CELEBA_ANNO")]
    celeba: Option<PathBuf>,
    /// Evaluate at most this many faces.
    #[arg(long, default_value_t = 200)]
    limit: usize,
    /// Identities to evaluate on: test, val, train or all (the identity division of
    /// `diat classifier train`; faces of unknown identity always count).
    #[arg(long, default_value = "test")]
    split: String,
    /// Seed of the identity division.
    #[arg(long, default_value_t = diat_celeba::split::DEFAULT_SEED)]
    split_seed: u64,
    /// Seed of the "other identity" choice.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// The attribute classifier (default: the one the repository ships, zoo/eval/).
    #[arg(long, value_name = "PATH")]
    classifier: Option<PathBuf>,
    /// Write the JSON report here ("-": stdout, the table then goes to stderr).
    #[arg(long, value_name = "PATH")]
    json: Option<PathBuf>,
    /// Write a contact sheet (input | output, probability and distance under each) here.
    #[arg(long, value_name = "PNG")]
    sheet: Option<PathBuf>,
    /// Faces on the contact sheet.
    #[arg(long, default_value_t = 16)]
    sheet_faces: usize,
    /// Where the networks run: auto, cpu or cuda.
    #[arg(long, default_value = "auto")]
    device: String,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum RealDirection {
    Add,
    Remove,
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
        Cmd::Real(a) => real(a),
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
    emit(&table(&report), &report, a.json.as_deref())?;
    Ok(ExitCode::SUCCESS)
}

fn real(a: RealArgs) -> Result<ExitCode> {
    use diat_eval::classifier::Classifier;
    use diat_eval::faces::{FaceSource, Labels};
    use diat_eval::real::{Direction as D, RealEvalConfig, evaluate_real, table};
    let device = super::parse_device(&a.device)?;
    let split = match a.split.as_str() {
        "all" => None,
        other => Some(
            diat_celeba::split::Split::parse(other)
                .with_context(|| format!("--split {other:?}: expected test, val, train or all"))?,
        ),
    };
    let attr = diat_eval::faces::check_attributes(std::slice::from_ref(&a.attr))?.remove(0);
    let source = FaceSource::open(&a.faces)?;
    let labels = a
        .celeba
        .as_deref()
        .map(Labels::load)
        .transpose()
        .context("reading CelebA's labels")?;
    let classifier = match &a.classifier {
        Some(path) => Classifier::load(path, device)?,
        None => Classifier::load_default(device)?,
    };
    let descriptor = diat_nets::face_descriptor::FaceDescriptor::load_default(device)?;
    let detector = match source {
        FaceSource::Aligned(_) => None,
        _ => Some(super::align::load_detector(device, 20.0)?),
    };
    let resolved = diat_zoo::resolve_and_fetch(&a.model)?;
    let model = diat_train::model::Model::load(resolved.model_path(), device)
        .with_context(|| format!("loading model {}", a.model))?;
    let cfg = RealEvalConfig {
        attribute: attr,
        direction: match a.direction {
            RealDirection::Add => D::Add,
            RealDirection::Remove => D::Remove,
        },
        limit: a.limit,
        split,
        split_seed: a.split_seed,
        seed: a.seed,
        sheet_faces: a.sheet_faces,
    };
    let (report, sheet) = evaluate_real(
        &model,
        &source,
        labels.as_ref(),
        &classifier,
        &descriptor,
        detector.as_ref(),
        &cfg,
    )?;
    emit(&table(&report), &report, a.json.as_deref())?;
    if let (Some(p), Some(img)) = (&a.sheet, &sheet) {
        diat_align::save_image(p, img)?;
        println!("contact sheet: {}", p.display());
    }
    if report.faces_evaluated == 0 {
        eprintln!(
            "diat eval real: no face evaluated ({} considered, {} not of the evaluated split or state, {} rejected)",
            report.faces_considered,
            report.not_selected,
            report.rejected.len()
        );
        return Ok(ExitCode::FAILURE);
    }
    Ok(super::outcome(
        report.faces_evaluated,
        report.rejected.len(),
        "face(s) rejected",
    ))
}

/// Prints a report's table and writes its JSON to `json` ("-": JSON on stdout, the table on
/// stderr).
fn emit(text: &str, report: &impl serde::Serialize, json: Option<&Path>) -> Result<()> {
    let body = serde_json::to_string_pretty(report)? + "\n";
    match json {
        Some(p) if p.as_os_str() == "-" => {
            eprint!("{text}");
            print!("{body}");
        }
        Some(p) => {
            print!("{text}");
            diat_common::write_atomic(p, body.as_bytes())
                .with_context(|| format!("writing {}", p.display()))?;
            println!("report: {}", p.display());
        }
        None => print!("{text}"),
    }
    Ok(())
}

/// `diat bench real`.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Batch sizes, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,32")]
    batches: Vec<usize>,
    /// Each measurement runs at least this long (seconds).
    #[arg(long, default_value_t = 2.0)]
    min_time: f64,
    /// libtorch threads (0: its default).
    #[arg(long, default_value_t = 0)]
    threads: i32,
    /// The classifier (default: the shipped one).
    #[arg(long, value_name = "FILE")]
    classifier: Option<PathBuf>,
    /// Run the peers afterwards with this Python (dlib-bin and torch; `make setup` installs both
    /// in its venv, `$DIAT_TORCH_PYTHON`).
    #[arg(long, value_name = "PYTHON")]
    compare_python: Option<PathBuf>,
    /// Where the networks run: auto, cpu or cuda.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Write the report as JSON here.
    #[arg(long, value_name = "PATH")]
    json: Option<PathBuf>,
}

#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct PeerReport {
    rows: Vec<diat_eval::bench::BenchRow>,
}

pub fn bench(a: BenchArgs) -> Result<ExitCode> {
    use diat_eval::bench::{bench_classifier, bench_descriptor};
    let device = super::parse_device(&a.device)?;
    if a.threads > 0 {
        tch::set_num_threads(a.threads);
    }
    if a.batches.is_empty() || a.batches.contains(&0) {
        bail!("--batches must be positive");
    }
    // The peer reads the classifier from a file: the given one, or the built-in one written out.
    let scratch = tempfile::tempdir().context("creating a temporary folder")?;
    let classifier_path = match &a.classifier {
        Some(p) => p.clone(),
        None => {
            let p = scratch.path().join("attr_classifier_v1.safetensors");
            std::fs::write(&p, diat_eval::classifier::SHIPPED)?;
            p
        }
    };
    let classifier = diat_eval::classifier::Classifier::load(&classifier_path, device)?;
    let descriptor = diat_nets::face_descriptor::FaceDescriptor::load_default(device)?;
    println!(
        "diat bench real on {} ({} libtorch threads, {:?})",
        diat_common::machine::cpu_model(),
        tch::get_num_threads(),
        device
    );
    let mut rows = bench_descriptor(&descriptor, &a.batches, a.min_time)?;
    rows.extend(bench_classifier(&classifier, &a.batches, a.min_time)?);
    for r in &rows {
        println!(
            "{:<32} batch {:>4}: {:>10.1} img/s",
            r.network, r.batch, r.images_per_second
        );
    }
    let mut peers = Vec::new();
    if let Some(python) = &a.compare_python {
        let dat = diat_nets::face_descriptor::default_dir()
            .join("dlib_face_recognition_resnet_model_v1.dat");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/bench/bench_real.py");
        let batches: Vec<String> = a.batches.iter().map(|b| b.to_string()).collect();
        let peer: PeerReport = super::bench::run_python_peer(
            python,
            &script,
            &[
                ("--dat", dat.display().to_string()),
                ("--classifier", classifier_path.display().to_string()),
                ("--batches", batches.join(",")),
                ("--threads", tch::get_num_threads().to_string()),
                ("--min-time", a.min_time.to_string()),
            ],
        )?;
        println!(
            "\n| network | batch | diat img/s | peer | peer img/s | ratio |\n|---|---:|---:|---|---:|---:|"
        );
        for (ours, theirs) in rows.iter().zip(
            ["dlib descriptor", "attribute classifier"]
                .iter()
                .flat_map(|k| peer.rows.iter().filter(move |r| r.network.starts_with(k))),
        ) {
            println!(
                "| {} | {} | {:.1} | {} | {:.1} | {:.2} |",
                ours.network,
                ours.batch,
                ours.images_per_second,
                theirs.network,
                theirs.images_per_second,
                ours.images_per_second / theirs.images_per_second
            );
        }
        peers = peer.rows;
    }
    super::bench::write_report(
        a.json.as_deref(),
        &serde_json::json!({"cpu": diat_common::machine::cpu_model(), "threads": tch::get_num_threads(), "diat": rows, "peers": peers}),
    )?;
    Ok(ExitCode::SUCCESS)
}

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
