//! `diat nets import-vggface` and `diat bench nets` as a user runs them.

#![cfg(feature = "torch")] // needs libtorch: not part of the curator's build's tests

mod common;

use std::process::Command;
use tch::{Device, Kind, Tensor};

fn diat(args: &[&str], home: &std::path::Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_diat"))
        .args(args)
        .env("DIAT_HOME", home)
        .output()
        .unwrap()
}

#[test]
fn import_vggface_writes_the_default_checkpoint_and_rejects_other_files() {
    let home = tempfile::tempdir().unwrap();
    // A random VGG-Face at width 1/8 under the vgg-face.pytorch names, plus a classifier layer.
    let (names, chans) = (
        [
            "1_1", "1_2", "2_1", "2_2", "3_1", "3_2", "3_3", "4_1", "4_2", "4_3", "5_1", "5_2",
            "5_3",
        ],
        [8i64, 8, 16, 16, 32, 32, 32, 64, 64, 64, 64, 64, 64],
    );
    let mut tensors = Vec::new();
    let mut cin = 3;
    for (n, c) in names.iter().zip(chans) {
        tensors.push((
            format!("conv_{n}.weight"),
            Tensor::randn([c, cin, 3, 3], (Kind::Float, Device::Cpu)),
        ));
        tensors.push((
            format!("conv_{n}.bias"),
            Tensor::randn([c], (Kind::Float, Device::Cpu)),
        ));
        cin = c;
    }
    tensors.push((
        "fc8.weight".into(),
        Tensor::randn([4, 8], (Kind::Float, Device::Cpu)),
    ));
    let input = home.path().join("vgg_face_random.safetensors");
    Tensor::write_safetensors(&tensors, &input).unwrap();

    let out = diat(
        &["nets", "import-vggface", input.to_str().unwrap()],
        home.path(),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    common::assert_ok(&out, "diat nets import-vggface");
    assert!(
        stdout.contains("vgg-face.pytorch layout, width 0.125") && stdout.contains("fc8.weight"),
        "{stdout}"
    );
    let dst = home.path().join("cache/vggface/vgg_face.safetensors");
    let meta = diat_nets::checkpoint::read_meta(&dst).unwrap();
    assert_eq!(
        (meta.architecture.as_str(), meta.config["width"].as_f64()),
        ("vggface", Some(0.125))
    );

    let junk = home.path().join("notes.pth");
    std::fs::write(&junk, b"not weights").unwrap();
    let out = diat(
        &[
            "nets",
            "import-vggface",
            junk.to_str().unwrap(),
            "-o",
            "x.safetensors",
        ],
        home.path(),
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("neither a PyTorch state dict") && stderr.contains("notes.pth"),
        "{stderr}"
    );
}

#[test]
fn bench_nets_measures_forward_and_a_training_step() {
    let home = tempfile::tempdir().unwrap();
    let json = home.path().join("bench.json");
    let args = [
        "bench",
        "nets",
        "--device",
        "cpu",
        "--width",
        "0.125",
        "--image-size",
        "32",
        "--res-blocks",
        "1",
        "--batches",
        "1,2",
        "--kinds",
        "fp32",
        "--step-batch",
        "2",
        "--step-kinds",
        "fp32",
        "--step-layouts",
        "nchw,channels_last",
        "--warmup",
        "1",
        "--min-time",
        "0",
        "--min-iters",
        "1",
        "--json",
        json.to_str().unwrap(),
    ];
    let out = diat(&args, home.path());
    common::assert_ok(&out, "diat bench nets");
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let rows = v["results"].as_array().unwrap();
    let what: Vec<(&str, i64, &str)> = rows
        .iter()
        .map(|r| {
            (
                r["what"].as_str().unwrap(),
                r["batch"].as_i64().unwrap(),
                r["layout"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        what,
        [
            ("t_forward", 1, "channels_last"),
            ("t_forward", 2, "channels_last"),
            ("diat_a_step", 2, "nchw"),
            ("diat_a_step", 2, "channels_last")
        ]
    );
    for r in rows {
        assert!(
            r["img_per_s"].as_f64().unwrap() > 0.0 && r["iters"].as_u64().unwrap() >= 1,
            "{r}"
        );
    }
    assert!(v["libtorch"].as_str().unwrap().starts_with("2.11"));

    // --compare-python: the PyTorch script measures the same rows, then the ratio table.
    let python = std::env::var("DIAT_TORCH_PYTHON").expect("DIAT_TORCH_PYTHON (make setup)");
    let script = common::repo("scripts/bench/bench_nets.py");
    let mut with_peer: Vec<&str> = args.to_vec();
    with_peer.extend([
        "--compare-python",
        &python,
        "--python-script",
        script.to_str().unwrap(),
    ]);
    let out = diat(&with_peer, home.path());
    let stdout = common::assert_ok(&out, "diat bench nets --compare-python");
    for row in [
        "| t_forward | 1 | fp32 |",
        "| t_forward | 2 | fp32 |",
        "| diat_a_step | 2 | fp32 | nchw |",
        "| diat_a_step | 2 | fp32 | channels_last |",
    ] {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(row))
            .unwrap_or_else(|| panic!("no {row} ratio row:\n{stdout}"));
        let ratio: f64 = line
            .trim_end_matches('|')
            .rsplit('|')
            .next()
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert!(ratio > 0.0, "{line}");
    }
    // The fastest step of each side, and the share of the machine's peak (FLOPs counted and the
    // peak measured by the PyTorch peer).
    assert!(stdout.contains("fastest DIAT-A step: diat "), "{stdout}");
    assert!(
        stdout.contains("GFLOP per image: diat reaches "),
        "{stdout}"
    );
    assert!(stdout.contains("cpu flags:"), "{stdout}");
}
