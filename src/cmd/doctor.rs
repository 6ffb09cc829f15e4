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

/// The directory of the libtorch_cpu.so mapped into this process.
fn loaded_libtorch_dir() -> Option<PathBuf> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    maps.lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .find(|p| p.ends_with("/libtorch_cpu.so"))
        .and_then(|p| PathBuf::from(p).parent().map(PathBuf::from))
}

/// `__version__ = '2.11.0+cu130'` from the `version.py` beside a pip-installed torch's lib/.
fn libtorch_version(lib_dir: &std::path::Path) -> Option<String> {
    let root = lib_dir.parent()?;
    if let Ok(text) = std::fs::read_to_string(root.join("version.py")) {
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("__version__") {
                let v = rest.trim_start_matches([' ', '=', ':']).trim().trim_matches(['\'', '"']);
                return Some(v.to_string());
            }
        }
    }
    // A plain libtorch download ships build-version instead.
    std::fs::read_to_string(root.join("build-version")).ok().map(|s| s.trim().to_string())
}

/// GPU model names from the NVIDIA driver's procfs (empty without a driver).
fn nvidia_device_names() -> Vec<String> {
    let Ok(entries) = std::fs::read_dir("/proc/driver/nvidia/gpus") else { return vec![] };
    let mut names: Vec<(String, String)> = entries
        .flatten()
        .filter_map(|e| {
            let info = std::fs::read_to_string(e.path().join("information")).ok()?;
            let model = info.lines().find_map(|l| l.strip_prefix("Model:"))?.trim().to_string();
            Some((e.file_name().to_string_lossy().into_owned(), model))
        })
        .collect();
    names.sort();
    names.into_iter().map(|(bus, model)| format!("{model} ({bus})")).collect()
}

pub fn report() -> Report {
    let available = tch::Cuda::is_available();
    let device_count = if available { tch::Cuda::device_count() } else { 0 };
    let lib_dir = loaded_libtorch_dir();
    let dirs = Dirs::from_env();
    Report {
        diat_version: env!("CARGO_PKG_VERSION"),
        tch_version: "0.24.0",
        libtorch: Libtorch {
            version: lib_dir.as_deref().and_then(libtorch_version),
            lib_dir,
            mkl: tch::utils::has_mkl(),
            openmp: tch::utils::has_openmp(),
        },
        cuda: Cuda {
            available,
            device_count,
            devices: if available { nvidia_device_names() } else { vec![] },
            cudnn_available: available && tch::Cuda::cudnn_is_available(),
            cudnn_version: (available && tch::Cuda::cudnn_is_available()).then(tch::utils::version_cudnn),
            cudart_version: available.then(tch::utils::version_cudart),
        },
        threads: Threads {
            cpus: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            torch_intra_op: tch::get_num_threads(),
            torch_inter_op: tch::utils::get_num_interop_threads(),
        },
        dirs: dirs
            .entries()
            .into_iter()
            .map(|(name, path)| DirReport { name, path: path.to_path_buf(), exists: path.exists(), writable: writable(path) })
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
    println!("diat {}", r.diat_version);
    println!("tch {}", r.tch_version);
    println!(
        "libtorch {} from {}",
        opt(&r.libtorch.version),
        r.libtorch.lib_dir.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "?".into())
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
            r.cuda.cudnn_version.map(|v| v.to_string()).unwrap_or_else(|| "-".into()),
            r.cuda.cudart_version.map(|v| v.to_string()).unwrap_or_else(|| "-".into())
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
