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
//!
//! For `diat-train` it also embeds the commit the build was made from (`DIAT_BUILD_COMMIT`, read
//! from `.git` without running git; absent outside a git checkout): a run's `run.json` records it,
//! whatever the working directory of the run.

use std::path::PathBuf;

fn main() {
    if std::env::var("CARGO_PKG_NAME").as_deref() == Ok("diat-train") {
        build_commit();
    }
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

/// Emits `DIAT_BUILD_COMMIT` from the checkout's `.git` (HEAD, its branch ref or packed-refs) and
/// reruns when HEAD moves.
///
/// The watched files are named relative to the package (`../../.git/HEAD`), which cargo resolves
/// against the package being built: two checkouts sharing one target folder share this script's
/// last run, and absolute paths would keep watching the other checkout's `.git` — its commit would
/// then be embedded in a binary built from this one. (diat's default is one target folder per
/// checkout since that sharing was found to keep stale artifacts too: `scripts/target-dir.sh`.)
fn build_commit() {
    let root = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let Some((depth, git)) = root
        .ancestors()
        .enumerate()
        .map(|(i, d)| (i, d.join(".git")))
        .find(|(_, g)| g.is_dir())
    else {
        return;
    };
    let rel = |p: &str| format!("{}.git/{p}", "../".repeat(depth));
    let head_file = git.join("HEAD");
    println!("cargo:rerun-if-changed={}", rel("HEAD"));
    let Ok(head) = std::fs::read_to_string(&head_file) else {
        return;
    };
    let head = head.trim();
    let commit = match head.strip_prefix("ref: ") {
        None => Some(head.to_string()),
        Some(r) => {
            let ref_file = git.join(r);
            let packed = git.join("packed-refs");
            println!("cargo:rerun-if-changed={}", rel(r));
            // Watched only where it exists: cargo takes a missing watched file for a change and
            // would rerun this script (and rebuild the crate) on every build. A `git pack-refs`
            // that creates it removes the loose ref, which is watched.
            if packed.is_file() {
                println!("cargo:rerun-if-changed={}", rel("packed-refs"));
            }
            std::fs::read_to_string(&ref_file)
                .ok()
                .map(|c| c.trim().to_string())
                .or_else(|| {
                    std::fs::read_to_string(&packed).ok().and_then(|p| {
                        p.lines()
                            .find(|l| l.ends_with(&format!(" {r}")))
                            .and_then(|l| l.split(' ').next())
                            .map(str::to_string)
                    })
                })
        }
    };
    if let Some(c) = commit.filter(|c| c.len() == 40 && c.bytes().all(|b| b.is_ascii_hexdigit())) {
        println!("cargo:rustc-env=DIAT_BUILD_COMMIT={c}");
    }
}
