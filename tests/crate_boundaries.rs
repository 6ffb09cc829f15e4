//! Only the crates that need libtorch depend on tch: ingestion, the shared plumbing (and later the
//! zoo's download layer) build and test on machines without libtorch.

mod common;

use std::process::Command;

fn deps_of(package: &str) -> String {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "tree",
            "--offline",
            "--prefix",
            "none",
            "--edges",
            "normal,build,dev",
            "-p",
            package,
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    common::assert_ok(&out, format!("cargo tree -p {package}"));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn libtorch_free_crates_do_not_depend_on_tch() {
    for package in ["diat-common", "diat-celeba", "diat-zoo", "diat-align"] {
        let tree = deps_of(package);
        assert!(
            tree.lines().count() > 3,
            "{package}: suspiciously small tree:\n{tree}"
        );
        for forbidden in ["torch-sys ", "tch "] {
            assert!(
                !tree.lines().any(|l| l.starts_with(forbidden)),
                "{package} depends on {forbidden}"
            );
        }
    }
    // The check itself sees tch where it is.
    assert!(
        deps_of("diat-nets")
            .lines()
            .any(|l| l.starts_with("torch-sys "))
    );
}

/// The binary without its `torch` feature (the curator's build) links no libtorch.
#[test]
fn the_curators_build_has_no_libtorch() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "tree",
            "--offline",
            "--prefix",
            "none",
            "--edges",
            "normal,build",
            "-p",
            "diat",
            "--no-default-features",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    let tree = common::assert_ok(&out, "cargo tree -p diat --no-default-features");
    assert!(
        tree.contains("diat-celeba") && tree.contains("diat-zoo"),
        "{tree}"
    );
    for forbidden in ["torch-sys ", "tch ", "diat-nets ", "diat-train "] {
        assert!(
            !tree.lines().any(|l| l.starts_with(forbidden)),
            "the curator's build depends on {forbidden}"
        );
    }
}

/// The binary stays thin: each `src/cmd` file parses arguments, calls into a crate and prints, in
/// at most ~250 lines (its unit tests not counted), and no command module reaches into another
/// in a circle (`super::x::` from y and `super::y::` from x, directly or through others).
#[test]
fn the_binary_is_thin_and_its_commands_form_no_circle() {
    use std::collections::{BTreeMap, BTreeSet};
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/cmd");
    let mut files = Vec::new();
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                files.push(p);
            }
        }
    }
    assert!(files.len() > 10, "{files:?}");
    // module name: the file's first component under src/cmd (zoo/args.rs belongs to zoo).
    let module = |p: &std::path::Path| {
        let rel = p.strip_prefix(&root).unwrap();
        let first = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy();
        first.trim_end_matches(".rs").to_string()
    };
    let modules: BTreeSet<String> = files.iter().map(|p| module(p)).collect();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut too_long = Vec::new();
    for p in &files {
        let text = std::fs::read_to_string(p).unwrap();
        let code = text.split("#[cfg(test)]\nmod tests").next().unwrap();
        let lines = code.lines().count();
        if lines > 280 {
            too_long.push(format!("{} ({lines} lines)", p.display()));
        }
        let from = module(p);
        let refs = code
            .match_indices("super::")
            .map(|(i, m)| i + m.len())
            .chain(code.match_indices("crate::cmd::").map(|(i, m)| i + m.len()));
        for i in refs {
            let rest = &code[i..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if modules.contains(&name) && name != from && from != "mod" {
                edges.entry(from.clone()).or_default().insert(name);
            }
        }
    }
    assert!(
        too_long.is_empty(),
        "logic belongs in the crates: {too_long:?}"
    );
    assert!(
        !edges.is_empty(),
        "no cross-command references found: the scan is broken"
    );
    // Depth-first search for a cycle.
    fn visit(
        n: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|p| p == n) {
            let mut cycle = path[i..].to_vec();
            cycle.push(n.to_string());
            return Some(cycle);
        }
        if done.contains(n) {
            return None;
        }
        path.push(n.to_string());
        for m in edges.get(n).into_iter().flatten() {
            if let Some(c) = visit(m, edges, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(n.to_string());
        None
    }
    let mut done = BTreeSet::new();
    for n in edges.keys() {
        if let Some(c) = visit(n, &edges, &mut Vec::new(), &mut done) {
            panic!("import circle in src/cmd: {}", c.join(" -> "));
        }
    }
}
