//! `diat eval real` and `diat bench real`: real-face evaluation (needs libtorch).

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct RealArgs {
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
pub(crate) enum RealDirection {
    Add,
    Remove,
}

impl From<RealDirection> for diat_eval::real::Direction {
    fn from(d: RealDirection) -> Self {
        match d {
            RealDirection::Add => Self::Add,
            RealDirection::Remove => Self::Remove,
        }
    }
}

pub fn real(a: RealArgs) -> Result<ExitCode> {
    use diat_eval::classifier::Classifier;
    use diat_eval::faces::{FaceSource, Labels};
    use diat_eval::real::{RealEvalConfig, evaluate_real, table};
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
        _ => Some(diat_eval::apply::load_detector(device, 20.0)?),
    };
    let resolved = diat_zoo::resolve_and_fetch(&a.model)?;
    let model = diat_train::model::Model::load(resolved.model_path(), device)
        .with_context(|| format!("loading model {}", a.model))?;
    let cfg = RealEvalConfig {
        attribute: attr,
        direction: a.direction.into(),
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
    super::output::emit(&table(&report), &report, a.json.as_deref())?;
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
        let peer: PeerReport = super::peer::run_python_peer(
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
    super::peer::write_report(
        a.json.as_deref(),
        &serde_json::json!({"cpu": diat_common::machine::cpu_model(), "threads": tch::get_num_threads(), "diat": rows, "peers": peers}),
    )?;
    Ok(ExitCode::SUCCESS)
}
