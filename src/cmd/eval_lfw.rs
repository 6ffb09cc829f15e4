//! `diat eval lfw`: the evaluator's path on LFW's whole photos (needs libtorch).

use anyhow::{Context, Result, bail};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct LfwArgs {
    /// The model: a zoo name or a local path (a run's final/ folder or a transform checkpoint).
    #[arg(long)]
    model: String,
    /// LFW: the folder holding `lfw-deepfunneled/` (or `lfw/`) and the pairs files, or the image
    /// folder itself.
    #[arg(long, value_name = "DIR", env = "DIAT_LFW")]
    lfw: PathBuf,
    /// The pairs file (default: `pairsDevTest.txt` in --lfw).
    #[arg(long, value_name = "FILE")]
    pairs: Option<PathBuf>,
    /// Evaluate only the first N pairs, half of them same-person and half different.
    #[arg(long)]
    limit: Option<usize>,
    /// The attribute the model edits (default: its task's).
    #[arg(long)]
    attr: Option<String>,
    /// add or remove (default: its task's).
    #[arg(long, value_enum)]
    direction: Option<super::eval_real::RealDirection>,
    /// Faces whose detected box is shorter than this many photo pixels are rejected.
    #[arg(long, default_value_t = 40.0)]
    min_face: f64,
    /// Write every pasted-back photo here as NAME_NNNN.png.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// The attribute classifier (default: the one the repository ships, zoo/eval/).
    #[arg(long, value_name = "PATH")]
    classifier: Option<PathBuf>,
    /// Write the JSON report here ("-": stdout, the table then goes to stderr).
    #[arg(long, value_name = "PATH")]
    json: Option<PathBuf>,
    /// Write a before/after sheet of eligible whole photos here.
    #[arg(long, value_name = "PNG")]
    sheet: Option<PathBuf>,
    /// Photos on the sheet.
    #[arg(long, default_value_t = 8)]
    sheet_photos: usize,
    /// Photos per forward pass.
    #[arg(long, default_value_t = 32)]
    batch: usize,
    /// libtorch threads (0: its default).
    #[arg(long, default_value_t = 0)]
    threads: i32,
    /// Where the networks run: auto, cpu or cuda.
    #[arg(long, default_value = "auto")]
    device: String,
}

pub fn lfw(a: LfwArgs) -> Result<ExitCode> {
    use diat_eval::lfw::{
        LfwEvalConfig, evaluate_lfw, images_dir, read_pairs, select_pairs, table,
    };
    use diat_eval::real::Direction;
    let device = super::parse_device(&a.device)?;
    if a.threads > 0 {
        tch::set_num_threads(a.threads);
    }
    if a.limit == Some(0) {
        bail!("--limit must be positive");
    }
    let pairs_file = a
        .pairs
        .clone()
        .unwrap_or_else(|| a.lfw.join("pairsDevTest.txt"));
    let images = images_dir(&a.lfw);
    if !images.is_dir() {
        bail!("--lfw {}: not a folder", a.lfw.display());
    }
    let pairs = select_pairs(&read_pairs(&pairs_file)?, a.limit);
    let resolved = diat_zoo::resolve_and_fetch(&a.model)?;
    let model = diat_train::model::Model::load(resolved.model_path(), device)
        .with_context(|| format!("loading model {}", a.model))?;
    let task = model
        .task
        .as_deref()
        .and_then(|t| diat_celeba::sets::paper_task_named(t).ok());
    let attribute = match (&a.attr, &task) {
        (Some(x), _) => diat_eval::faces::check_attributes(std::slice::from_ref(x))?.remove(0),
        (None, Some(t)) => t.attribute.clone(),
        (None, None) => bail!("the model names no paper task: give --attr and --direction"),
    };
    let direction = match (a.direction, &task) {
        (Some(d), _) => d.into(),
        (None, Some(t)) => Direction::of_task(t),
        (None, None) => bail!("the model names no paper task: give --attr and --direction"),
    };
    let classifier = match &a.classifier {
        Some(path) => diat_eval::classifier::Classifier::load(path, device)?,
        None => diat_eval::classifier::Classifier::load_default(device)?,
    };
    let descriptor = diat_nets::face_descriptor::FaceDescriptor::load_default(device)?;
    let detector = diat_eval::apply::load_detector(device, 20.0)?;
    let cfg = LfwEvalConfig {
        attribute,
        direction,
        min_face: a.min_face,
        batch: a.batch,
        out: a.out.clone(),
        sheet_photos: a.sheet_photos,
    };
    let (report, sheet) = evaluate_lfw(
        &model,
        &detector,
        &classifier,
        &descriptor,
        &images,
        &pairs_file,
        &pairs,
        &cfg,
    )?;
    super::output::emit(&table(&report), &report, a.json.as_deref())?;
    if let (Some(p), Some(img)) = (&a.sheet, &sheet) {
        diat_align::save_image(p, img)?;
        println!("sheet: {}", p.display());
    }
    if let Some(out) = &a.out {
        println!(
            "{} pasted-back photo(s) in {}",
            report.photos_edited,
            out.display()
        );
    }
    if report.photos_edited == 0 {
        eprintln!(
            "diat eval lfw: no photo edited ({} photo(s), {} rejected)",
            report.photos,
            report.rejected.len()
        );
    }
    Ok(super::outcome(
        report.photos_edited,
        report.rejected.len(),
        "photo(s) rejected",
    ))
}
