//! Shared build script for every package that links libtorch through tch.
//!
//! Two problems with a plain `tch` dependency, measured on our machines:
//! (a) rustc links with `--as-needed`, so `libtorch_cuda.so` (no symbol of it is used directly) is
//!     dropped and CUDA is reported unavailable even on a GPU machine;
//! (b) torch-sys's link search path does not become an rpath, so test binaries fail with
//!     "libtorch_cpu.so: cannot open shared object file".
//! This script links torch_cuda with `--no-as-needed` when it exists and embeds an rpath (RUNPATH,
//! so `LD_LIBRARY_PATH` still wins and a built binary can be pointed at another libtorch).
//! Packages use it with `build = "../../build-support/link_libtorch.rs"` and a direct dependency
//! on `torch-sys`, which exports its library directory as `DEP_TCH_LIBTORCH_LIB`.

use std::path::PathBuf;

fn main() {
    // The `diat` binary without its `torch` feature (the curator's build) links no libtorch.
    if std::env::var("CARGO_PKG_NAME").as_deref() == Ok("diat")
        && std::env::var_os("CARGO_FEATURE_TORCH").is_none()
    {
        return;
    }
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    let lib = std::env::var_os("DEP_TCH_LIBTORCH_LIB")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("LIBTORCH").map(|p| PathBuf::from(p).join("lib")));
    let Some(lib) = lib else {
        println!("cargo:warning=libtorch location unknown: no rpath embedded (run `make setup`)");
        return;
    };
    println!("cargo:rustc-link-search=native={}", lib.display());
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
    if lib.join("libtorch_cuda.so").exists() {
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
        println!("cargo:rustc-link-arg=-ltorch_cuda");
        println!("cargo:rustc-link-arg=-ltorch");
        println!("cargo:rustc-link-arg=-Wl,--as-needed");
    }
}
