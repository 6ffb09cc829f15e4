//! `diat classifier`: the attribute classifier of `diat eval real` — train it on aligned real
//! faces (split by identity), score it.

use anyhow::{Context, Result};
use diat_eval::classifier::{
    Classifier, ModelCard, TrainConfig, load_data, score, score_table, train,
};
use diat_eval::faces::Labels;
use diat_nets::attr_classifier::{ARCHITECTURE, AttrClassifierConfig};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, clap::Subcommand)]
enum Cmd {
    /// Train on the faces of a `diat align` folder with CelebA's labels; writes the weights, a
    /// model card (JSON and Markdown) with held-out accuracy per attribute.
    Train(TrainArgs),
    /// Accuracy and balanced accuracy of a classifier on one side of the identity division.
    Score(ScoreArgs),
}

#[derive(Debug, clap::Args)]
struct DataArgs {
    /// A `diat align` output folder (faces.json + aligned/) of CelebA photos named by image id.
    #[arg(long, value_name = "DIR")]
    faces: PathBuf,
    /// CelebA annotations: a folder with Anno/list_attr_celeba.txt and Anno/identity_CelebA.txt.
    #[arg(long, value_name = "DIR", env = "DIAT_CELEBA_ANNO")]
    celeba: PathBuf,
    /// Seed of the identity division (80/10/10 % of identities).
    #[arg(long, default_value_t = diat_celeba::split::DEFAULT_SEED)]
    split_seed: u64,
    /// Leave out faces whose training window lies less than this share inside the photo.
    #[arg(long, default_value_t = 0.0)]
    min_coverage: f32,
    /// Where it runs: auto, cpu or cuda.
    #[arg(long, default_value = "auto")]
    device: String,
}

#[derive(Debug, clap::Args)]
struct TrainArgs {
    #[command(flatten)]
    data: DataArgs,
    /// The weights file to write (the card goes beside it as .json and .md).
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Attributes, comma-separated CelebA names.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "Eyeglasses,Mouth_Slightly_Open,Smiling,Male,Young"
    )]
    attrs: Vec<String>,
    /// Input side in pixels (a multiple of 8).
    #[arg(long, default_value_t = 64)]
    size: i64,
    /// Channels of the first layer.
    #[arg(long, default_value_t = 32)]
    width: i64,
    #[arg(long, default_value_t = TrainConfig::default().epochs)]
    epochs: usize,
    #[arg(long, default_value_t = TrainConfig::default().batch)]
    batch: usize,
    #[arg(long, default_value_t = TrainConfig::default().lr)]
    lr: f64,
    #[arg(long, default_value_t = TrainConfig::default().seed)]
    seed: u64,
    /// Name in the model card.
    #[arg(long, default_value = "attr_classifier_v1")]
    name: String,
}

#[derive(Debug, clap::Args)]
struct ScoreArgs {
    #[command(flatten)]
    data: DataArgs,
    /// The classifier (default: the one the repository ships).
    #[arg(long, value_name = "FILE")]
    classifier: Option<PathBuf>,
    /// test, val or train.
    #[arg(long, default_value = "test")]
    split: String,
}

pub fn run(args: Args) -> Result<ExitCode> {
    match args.cmd {
        Cmd::Train(a) => run_train(a),
        Cmd::Score(a) => run_score(a),
    }
}

fn run_train(a: TrainArgs) -> Result<ExitCode> {
    let device = super::parse_device(&a.data.device)?;
    let labels = Labels::load(&a.data.celeba).context("reading CelebA's labels")?;
    let net_cfg = AttrClassifierConfig {
        image_size: a.size,
        width: a.width,
        attributes: diat_eval::faces::check_attributes(&a.attrs)?,
        ..Default::default()
    };
    net_cfg.validate()?;
    let (data, data_report) = load_data(
        &a.data.faces,
        &labels,
        &net_cfg.attributes,
        a.size,
        a.data.split_seed,
        a.data.min_coverage,
    )?;
    eprintln!(
        "diat classifier: {} faces ({}), {} rejected",
        data_report.used,
        data_report
            .splits
            .iter()
            .map(|(k, v)| format!("{k} {} / {} identities", v.faces, v.identities))
            .collect::<Vec<_>>()
            .join(", "),
        data_report.rejected.len()
    );
    let cfg = TrainConfig {
        epochs: a.epochs,
        batch: a.batch,
        lr: a.lr,
        seed: a.seed,
        ..Default::default()
    };
    if let Some(dir) = a.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let report = train(&data, &net_cfg, &cfg, device, &a.out)?;
    let bytes = std::fs::metadata(&a.out)?.len();
    let card = ModelCard {
        name: a.name,
        file: a
            .out
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        sha256: diat_celeba::store::sha256_file(&a.out)?,
        bytes,
        architecture: ARCHITECTURE.into(),
        config: net_cfg,
        training: cfg,
        data: data_report,
        report,
        machine: diat_common::machine::cpu_summary(),
        diat_version: format!("diat {}", env!("CARGO_PKG_VERSION")),
    };
    let json = serde_json::to_string_pretty(&card)? + "\n";
    diat_common::write_atomic(&a.out.with_extension("json"), json.as_bytes())?;
    diat_common::write_atomic(&a.out.with_extension("md"), card.markdown().as_bytes())?;
    println!("held-out identities (test split):");
    print!("{}", score_table(&card.report.test));
    println!(
        "weights {} (sha256 {}), card {}",
        a.out.display(),
        card.sha256,
        a.out.with_extension("md").display()
    );
    Ok(ExitCode::SUCCESS)
}

fn run_score(a: ScoreArgs) -> Result<ExitCode> {
    let device = super::parse_device(&a.data.device)?;
    let split = diat_celeba::split::Split::parse(&a.split)
        .with_context(|| format!("--split {:?}: expected test, val or train", a.split))?;
    let classifier = match &a.classifier {
        Some(path) => Classifier::load(path, device)?,
        None => Classifier::load_default(device)?,
    };
    let path = classifier.source.clone();
    let labels = Labels::load(&a.data.celeba).context("reading CelebA's labels")?;
    let (data, report) = load_data(
        &a.data.faces,
        &labels,
        &classifier.config().attributes,
        classifier.config().image_size,
        a.data.split_seed,
        a.data.min_coverage,
    )?;
    let scores = score(&classifier, &data, split)?;
    println!(
        "{} on {} {} faces ({} loaded):",
        path.display(),
        scores.first().map(|s| s.faces).unwrap_or(0),
        split.name(),
        report.used
    );
    print!("{}", score_table(&scores));
    Ok(ExitCode::SUCCESS)
}
