//! `diat data …`: CelebA ingestion (inspect, index, cluster, sets, prepare) and synthetic faces
//! (`data synth`, see `synth.rs`).

use anyhow::{Result, bail};
use diat_celeba::cluster::ExclusionFile;
use diat_celeba::crop::CropSpec;
use diat_celeba::layout::Layout;
use diat_celeba::pipeline::BuildConfig;
use diat_celeba::sets::{SelectConfig, TaskSpec};
use diat_celeba::workflow::{self, SetsOptions};
use std::process::ExitCode;

mod args;
pub use args::{Args, BenchArgs};
use args::{ClusterOpts, Cmd, SetsOpts};

fn load_exclusions(o: &ClusterOpts) -> Result<ExclusionFile> {
    Ok(workflow::load_exclusions(
        &o.exclusions,
        o.k,
        o.cluster_seed,
    )?)
}

fn tasks_of(o: &SetsOpts) -> Result<Vec<TaskSpec>> {
    Ok(workflow::tasks(o.task_file.as_deref(), &o.tasks)?)
}

fn sets_options(o: &SetsOpts) -> Result<SetsOptions> {
    let landmarks68 = o
        .landmarks68
        .as_deref()
        .map(diat_celeba::masks::read_landmarks_68)
        .transpose()?
        .map(std::sync::Arc::new);
    Ok(SetsOptions {
        select: SelectConfig {
            input_size: o.input_size,
            test_size: o.test_size,
            seed: o.seed,
            balance: !o.no_balance,
        },
        build: BuildConfig {
            crop: CropSpec::default().with_size(o.size),
            max_reject_fraction: o.max_rejects,
            landmarks68,
            ..Default::default()
        },
        pretrain: o.pretrain,
        pretrain_limit: o.pretrain_limit,
        allow_unclustered: o.no_cluster_filter,
    })
}

pub fn run(args: Args) -> Result<ExitCode> {
    match args.cmd {
        Cmd::Inspect { root, verify, json } => {
            let layout = Layout::detect(&root)?;
            let report = diat_celeba::inspect::inspect(&layout, verify)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", report.text());
            }
        }
        Cmd::Index { root, out, verify } => {
            let s = workflow::index(&root, &out, verify)?;
            println!(
                "indexed {} images ({} layout) into {}",
                s.images,
                s.layout,
                out.join("index.parquet").display()
            );
            for w in &s.warnings {
                println!("warning: {w}");
            }
        }
        Cmd::Cluster(a) => {
            let s = workflow::cluster(&a.opts.out, &load_exclusions(&a.opts)?, a.opts.sheet_size)?;
            print!("{}", s.text(&a.opts.out));
        }
        Cmd::Sets(a) => {
            let outs = workflow::sets(
                &a.out,
                a.root.as_deref(),
                &tasks_of(&a.opts)?,
                &sets_options(&a.opts)?,
            )?;
            return Ok(sets_outcome(&outs));
        }
        Cmd::Prepare {
            root,
            cluster,
            sets,
        } => {
            let out = cluster.out.clone();
            let s = workflow::index(&root, &out, false)?;
            println!("indexed {} images ({} layout)", s.images, s.layout);
            let c = workflow::cluster(&out, &load_exclusions(&cluster)?, cluster.sheet_size)?;
            print!("{}", c.text(&out));
            let mut opts = sets_options(&sets)?;
            opts.pretrain = true;
            let outs = workflow::sets(&out, Some(&root), &tasks_of(&sets)?, &opts)?;
            let code = sets_outcome(&outs);
            println!("pretraining store: {}", out.join("pretrain").display());
            return Ok(code);
        }
        Cmd::Synth(a) => return super::synth::run(a),
        Cmd::FromAligned {
            faces_json,
            celeba,
            out,
            min_coverage,
            seed,
            overwrite,
        } => {
            let r = diat_celeba::export::from_aligned(&diat_celeba::export::FromAligned {
                min_coverage,
                seed,
                overwrite,
                ..diat_celeba::export::FromAligned::new(faces_json, celeba, out)
            })?;
            print!("{}", r.text());
            return Ok(super::outcome(r.kept, r.left_out(), "face(s) left out"));
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn bench(args: BenchArgs) -> Result<ExitCode> {
    let r = diat_celeba::bench::run(
        &args.root,
        args.images,
        args.threads,
        args.python.as_deref(),
    )?;
    print!("{}", r.text());
    if r.images == 0 {
        bail!("no image was processed");
    }
    Ok(ExitCode::SUCCESS)
}

/// The exit code of `sets`/`prepare`: images written into the task stores against images
/// rejected (unreadable, wrong size).
fn sets_outcome(outs: &[workflow::TaskOutput]) -> ExitCode {
    for o in outs {
        eprintln!("{}:\n{}", o.task, o.report.table());
        println!(
            "{}: guided {} · input {} · test {} → {}",
            o.task,
            o.report.guided,
            o.report.input,
            o.report.test,
            o.dir.display()
        );
    }
    let written = outs.iter().map(|o| o.written()).sum();
    let rejected = outs.iter().map(|o| o.rejected).sum();
    super::outcome(written, rejected, "image(s) rejected")
}
