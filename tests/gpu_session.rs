//! `scripts/bench/gpu-session.sh` is the one run a borrowed GPU machine gets: it must work the
//! first time. This runs it with `QUICK=1` (tiny sizes) on whatever device this machine has,
//! against the built binary and the project's PyTorch, and checks that every step succeeded and
//! that the summary carries every number the README's GPU tables need. Also checks
//! `diat bench loader` and its PyTorch DataLoader counterpart measure the same thing.

#![cfg(feature = "torch")] // needs libtorch: not part of the curator's build's tests

mod common;

use std::path::Path;
use std::process::Command;

fn python() -> String {
    std::env::var("DIAT_TORCH_PYTHON").unwrap_or_else(|_| {
        panic!("DIAT_TORCH_PYTHON is not set: run `make setup` (it writes .cargo/config.toml)")
    })
}

#[test]
fn gpu_session_script_runs_every_step_and_summarises() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("session");
    let o = Command::new("bash")
        .arg(common::repo("scripts/bench/gpu-session.sh"))
        .env("QUICK", "1")
        .env("OUT", &out)
        .env("WORK", tmp.path().join("work"))
        .env("DIAT", env!("CARGO_BIN_EXE_diat"))
        .env("PY", python())
        .env("DIAT_PROGRESS", "none")
        .output()
        .expect("running gpu-session.sh");
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "gpu-session.sh failed:\n{stdout}");
    let log = std::fs::read_to_string(out.join("session.log")).unwrap();
    let steps = [
        "doctor",
        "nets-diat",
        "nets-diat-plain",
        "nets-torch",
        "nets-torch-levers",
        "synth",
        "prepare",
        "loader-diat",
        "loader-torch",
        "train",
    ];
    for s in steps {
        assert!(
            log.contains(&format!("   {s}: rc=0 ")),
            "step {s} did not succeed:\n{log}\n{}",
            std::fs::read_to_string(out.join(format!("{s}.txt"))).unwrap_or_default()
        );
    }
    let summary = std::fs::read_to_string(out.join("summary.md")).unwrap();
    // Every cell of the networks table is a number (each implementation measured each row).
    for row in ["| t_forward | 16 | fp32 |", "| diat_a_step | 16 | fp32 |"] {
        let line = summary
            .lines()
            .find(|l| l.starts_with(row))
            .unwrap_or_else(|| panic!("no {row} row in:\n{summary}"));
        let cells: Vec<&str> = line[row.len()..]
            .split('|')
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .collect();
        assert_eq!(cells.len(), 4, "{line}");
        for c in cells {
            let v: f64 = c.replace(',', "").parse().unwrap_or(0.0);
            assert!(v > 0.0, "empty cell in {line}");
        }
    }
    for workers in 1..=4 {
        if workers == 3 {
            continue;
        }
        let line = summary
            .lines()
            .find(|l| l.starts_with(&format!("| {workers} | ")))
            .unwrap_or_else(|| panic!("no loader row for {workers} workers:\n{summary}"));
        assert!(
            !line.contains('—'),
            "a loader measurement is missing: {line}"
        );
    }
    let train = summary
        .lines()
        .find(|l| l.contains("steps/s ="))
        .unwrap_or_else(|| panic!("no training line in:\n{summary}"));
    assert!(train.contains("input img/s at batch 16"), "{train}");
    assert!(
        !out.join("work").exists() && tmp.path().join("work/prepared").exists(),
        "data stays out of the reports folder"
    );
    for f in [
        "metrics.jsonl",
        "run.json",
        "resolved.toml",
        "doctor.txt",
        "adversarial-samples.png",
    ] {
        assert!(Path::new(&out.join(f)).exists(), "{f} not kept");
    }
}

/// The two loader benchmarks read the same images per iteration and report in the same JSON.
#[test]
fn loader_bench_measures_the_training_loader_and_pytorch_alike() {
    let tmp = tempfile::tempdir().unwrap();
    let synth = tmp.path().join("synth");
    let prepared = tmp.path().join("prepared");
    common::ok(&[
        "data",
        "synth",
        "--count",
        "600",
        "--out",
        common::p(&synth),
    ]);
    common::ok(&[
        "data",
        "prepare",
        common::p(&synth),
        "--out",
        common::p(&prepared),
        "--task",
        "mouth_open",
        "--k",
        "4",
        "--size",
        "32",
        "--input-size",
        "200",
        "--test-size",
        "20",
    ]);
    let json = tmp.path().join("loader.json");
    let stdout = common::ok(&[
        "bench",
        "loader",
        "--data",
        common::p(&prepared),
        "--batch",
        "8",
        "--dstep",
        "2",
        "--tstep",
        "1",
        "--threads",
        "1,2",
        "--iters",
        "30",
        "--warmup",
        "2",
        "--device",
        "cpu",
        "--json",
        common::p(&json),
        "--compare-python",
        &python(),
        "--python-script",
        common::p(&common::repo("scripts/bench/bench_loader.py")),
    ]);
    // 2 D updates + 1 T update: 3 input batches and 2 guided batches of 8.
    assert!(
        stdout.contains("40 images per iteration: 3 input + 2 guided"),
        "{stdout}"
    );
    assert!(stdout.contains("| 2 | "), "no ratio table:\n{stdout}");
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let rows = report["results"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    for r in rows {
        assert!(r["img_per_s"].as_f64().unwrap() > 0.0);
        assert!(r["worker_capacity_img_per_s"].as_f64().unwrap() > 0.0);
        assert_eq!(r["iters"], 30);
    }
    // Bad input: a folder that is no prepared data names what is missing.
    common::fails(
        &[
            "bench",
            "loader",
            "--data",
            common::p(tmp.path()),
            "--device",
            "cpu",
        ],
        "mouth_open input set",
    );
}
