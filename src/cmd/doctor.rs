//! `diat doctor`: what this machine offers diat — tch and libtorch versions, CUDA and cuDNN,
//! threads, and the directories diat would use (and whether each is writable).

use anyhow::Result;
use diat_common::{Dirs, dirs::writable};
use serde::Serialize;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Machine-readable JSON on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub diat_version: &'static str,
    /// "default", or "curator (no libtorch)" for a build without the `torch` feature.
    pub build: &'static str,
    pub tch_version: &'static str,
    pub libtorch: Libtorch,
    pub cuda: Cuda,
    pub threads: Threads,
    pub dirs: Vec<DirReport>,
}

#[derive(Debug, Serialize)]
pub struct Libtorch {
    /// e.g. "2.11.0+cu130", read from the loaded library's `version.py`.
    pub version: Option<String>,
    /// The directory the running process loaded libtorch from.
    pub lib_dir: Option<PathBuf>,
    pub mkl: bool,
    pub openmp: bool,
}

#[derive(Debug, Serialize)]
pub struct Cuda {
    pub available: bool,
    pub device_count: i64,
    pub devices: Vec<String>,
    pub cudnn_available: bool,
    pub cudnn_version: Option<i64>,
    pub cudart_version: Option<i64>,
}

#[derive(Debug, Serialize)]
pub struct Threads {
    pub cpus: usize,
    pub torch_intra_op: i32,
    pub torch_inter_op: i32,
}

#[derive(Debug, Serialize)]
pub struct DirReport {
    pub name: &'static str,
    pub path: PathBuf,
    pub exists: bool,
    pub writable: bool,
}

/// GPU model names from the NVIDIA driver's procfs (empty without a driver).
fn nvidia_device_names() -> Vec<String> {
    let Ok(entries) = std::fs::read_dir("/proc/driver/nvidia/gpus") else {
        return vec![];
    };
    let mut names: Vec<(String, String)> = entries
        .flatten()
        .filter_map(|e| {
            let info = std::fs::read_to_string(e.path().join("information")).ok()?;
            let model = info
                .lines()
                .find_map(|l| l.strip_prefix("Model:"))?
                .trim()
                .to_string();
            Some((e.file_name().to_string_lossy().into_owned(), model))
        })
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|(bus, model)| format!("{model} ({bus})"))
        .collect()
}

/// libtorch, CUDA and libtorch's thread pools, as the loaded library reports them.
#[cfg(feature = "torch")]
fn torch_report() -> (Libtorch, Cuda, i32, i32) {
    let available = tch::Cuda::is_available();
    let device_count = if available {
        tch::Cuda::device_count()
    } else {
        0
    };
    let libtorch = Libtorch {
        version: diat_nets::checkpoint::libtorch_version(),
        lib_dir: diat_nets::checkpoint::libtorch_lib_dir(),
        mkl: tch::utils::has_mkl(),
        openmp: tch::utils::has_openmp(),
    };
    let cuda = Cuda {
        available,
        device_count,
        devices: if available {
            nvidia_device_names()
        } else {
            vec![]
        },
        cudnn_available: available && tch::Cuda::cudnn_is_available(),
        cudnn_version: (available && tch::Cuda::cudnn_is_available())
            .then(tch::utils::version_cudnn),
        cudart_version: available.then(tch::utils::version_cudart),
    };
    (
        libtorch,
        cuda,
        tch::get_num_threads(),
        tch::utils::get_num_interop_threads(),
    )
}

/// The curator's build links no libtorch.
#[cfg(not(feature = "torch"))]
fn torch_report() -> (Libtorch, Cuda, i32, i32) {
    let _ = nvidia_device_names;
    (
        Libtorch {
            version: None,
            lib_dir: None,
            mkl: false,
            openmp: false,
        },
        Cuda {
            available: false,
            device_count: 0,
            devices: vec![],
            cudnn_available: false,
            cudnn_version: None,
            cudart_version: None,
        },
        0,
        0,
    )
}

pub fn report() -> Report {
    let (libtorch, cuda, intra, inter) = torch_report();
    let dirs = Dirs::from_env();
    Report {
        diat_version: env!("CARGO_PKG_VERSION"),
        build: if cfg!(feature = "torch") {
            "default"
        } else {
            "curator (no libtorch)"
        },
        tch_version: "0.24.0",
        libtorch,
        cuda,
        threads: Threads {
            cpus: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            torch_intra_op: intra,
            torch_inter_op: inter,
        },
        dirs: dirs
            .entries()
            .into_iter()
            .map(|(name, path)| DirReport {
                name,
                path: path.to_path_buf(),
                exists: path.exists(),
                writable: writable(path),
            })
            .collect(),
    }
}

pub fn run(args: Args) -> Result<ExitCode> {
    let r = report();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
        return Ok(ExitCode::SUCCESS);
    }
    let opt = |o: &Option<String>| o.clone().unwrap_or_else(|| "unknown".into());
    println!("diat {} ({} build)", r.diat_version, r.build);
    if !cfg!(feature = "torch") {
        println!(
            "libtorch: not in this build (train, apply, align, nets, eval real need the default build)"
        );
        for d in &r.dirs {
            println!("{:>6}: {}", d.name, d.path.display());
        }
        return Ok(ExitCode::SUCCESS);
    }
    println!("tch {}", r.tch_version);
    println!(
        "libtorch {} from {}",
        opt(&r.libtorch.version),
        r.libtorch
            .lib_dir
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "?".into())
    );
    println!("  mkl {}  openmp {}", r.libtorch.mkl, r.libtorch.openmp);
    if r.cuda.available {
        println!("cuda available: {} device(s)", r.cuda.device_count);
        for d in &r.cuda.devices {
            println!("  {d}");
        }
        println!(
            "  cudnn {} (version {})  cudart {}",
            r.cuda.cudnn_available,
            r.cuda
                .cudnn_version
                .map(|v| v.to_string())
                .unwrap_or_else(|| "-".into()),
            r.cuda
                .cudart_version
                .map(|v| v.to_string())
                .unwrap_or_else(|| "-".into())
        );
    } else {
        println!("cuda not available: training and apply run on the CPU");
    }
    println!(
        "threads: {} cpus, torch intra-op {}, inter-op {}",
        r.threads.cpus, r.threads.torch_intra_op, r.threads.torch_inter_op
    );
    for d in &r.dirs {
        let state = match (d.exists, d.writable) {
            (true, true) => "writable",
            (false, true) => "will be created",
            (true, false) => "NOT WRITABLE",
            (false, false) => "CANNOT BE CREATED",
        };
        println!("{:>6}: {} ({state})", d.name, d.path.display());
    }
    Ok(ExitCode::SUCCESS)
}
