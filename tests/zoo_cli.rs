//! `diat zoo` end to end: publish a run, serve it on loopback, then list / info / pull / verify /
//! rm / gc through the binary, with concurrent pulls, offline mode, a corrupted cache and faults.

mod common;

#[path = "../crates/diat-zoo/tests/support/server.rs"]
mod server;

use serde_json::Value;
use server::{Fault, TestServer};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    fn registry(&self) -> PathBuf {
        self.dir.path().join("registry.toml")
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_diat"));
        c.args(args)
            .env("DIAT_HOME", self.home())
            .env("DIAT_PROGRESS", "none")
            .env_remove("DIAT_ZOO_DIR")
            .env_remove("DIAT_REGISTRY")
            .env_remove("DIAT_OFFLINE");
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    fn ok_json(&self, args: &[&str]) -> Value {
        let out = self.run(args);
        common::assert_ok(&out, format!("diat {args:?}"));
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "diat {args:?}: {e}: {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }

    fn blob_dir(&self) -> PathBuf {
        self.home().join("zoo/v1/blobs/sha256")
    }
}

fn make_run(root: &Path, weights: &[u8]) -> PathBuf {
    let run = root.join("run");
    fs::create_dir_all(run.join("checkpoints")).unwrap();
    fs::create_dir_all(run.join("samples")).unwrap();
    fs::write(run.join("checkpoints/transform.safetensors"), weights).unwrap();
    fs::write(
        run.join("checkpoints/enhance.safetensors"),
        b"enhance weights",
    )
    .unwrap();
    fs::write(run.join("config.toml"), "[architecture]\nbase = 64\n").unwrap();
    fs::write(
        run.join("run.json"),
        r#"{"task": "eyeglasses-add", "variant": "diat"}"#,
    )
    .unwrap();
    fs::write(
        run.join("metrics.jsonl"),
        "{\"step\": 1, \"loss_t\": 2.0}\n",
    )
    .unwrap();
    fs::write(run.join("samples/sheet.png"), b"\x89PNG fake").unwrap();
    run
}

/// Publishes a run under `base` and serves the files; returns the published entry (JSON).
fn publish_and_serve(env: &Env, server: &TestServer, weights: &[u8]) -> Value {
    let run = make_run(env.dir.path(), weights);
    let out = env.dir.path().join("out");
    let manifest = env.dir.path().join("manifest.json");
    fs::write(&manifest, b"{\"count\": 1}").unwrap();
    let p = env.ok_json(&[
        "zoo",
        "publish",
        run.to_str().unwrap(),
        "--name",
        "glasses",
        "--version",
        "1.0.0",
        "--base-url",
        &server.url("/zoo"),
        "--out",
        out.to_str().unwrap(),
        "--registry",
        env.registry().to_str().unwrap(),
        "--license",
        "MIT",
        "--data-manifest",
        manifest.to_str().unwrap(),
        "--json",
    ]);
    for f in p["entry"]["files"].as_array().unwrap() {
        let name = f["url"]
            .as_str()
            .unwrap()
            .rsplit('/')
            .next()
            .unwrap()
            .to_string();
        server.serve(
            &format!("/zoo/glasses/1.0.0/{name}"),
            fs::read(out.join("glasses/1.0.0").join(&name)).unwrap(),
        );
    }
    p
}

fn data(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7919 % 251) as u8).collect()
}

#[test]
fn publish_list_info_pull_verify_rm_gc() {
    let env = Env::new();
    let server = TestServer::start();
    let weights = data(200_000);
    let p = publish_and_serve(&env, &server, &weights);
    assert_eq!(p["entry"]["task"], "eyeglasses-add");
    assert_eq!(p["entry"]["files"][0]["role"], "transform");
    let reg = env.registry();
    let reg = reg.to_str().unwrap();

    let list = env.ok_json(&["zoo", "list", "--registry", reg, "--json"]);
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["id"], "glasses@1.0.0");
    assert_eq!(list[0]["installed"], false);

    let info = env.ok_json(&["zoo", "info", "glasses", "--registry", reg, "--json"]);
    assert_eq!(info["entry"]["version"], "1.0.0");
    assert_eq!(info["files"][0]["cached"], false);
    let human = env.run(&["zoo", "info", "glasses@1.0.0", "--registry", reg]);
    let human = String::from_utf8_lossy(&human.stdout);
    assert!(
        human.contains("glasses@1.0.0")
            && human.contains("sha256")
            && human.contains("resize to 128x128"),
        "{human}"
    );

    // A proxy from the environment is never used for loopback hosts.
    let out = env
        .cmd(&["zoo", "pull", "glasses", "--registry", reg, "--json", "-q"])
        .env("HTTP_PROXY", "http://127.0.0.1:9")
        .env("http_proxy", "http://127.0.0.1:9")
        .env("ALL_PROXY", "http://127.0.0.1:9")
        .env_remove("NO_PROXY")
        .env_remove("no_proxy")
        .output()
        .unwrap();
    common::assert_ok(&out, "diat zoo pull");
    let pulled: Value = serde_json::from_slice(&out.stdout).unwrap();
    let transform = pulled[0]["files"]["transform"].as_str().unwrap();
    assert_eq!(fs::read(transform).unwrap(), weights);
    assert!(
        Path::new(pulled[0]["files"]["run"].as_str().unwrap())
            .join("samples/sheet.png")
            .is_file()
    );
    assert_eq!(
        server
            .requests("/zoo/glasses/1.0.0/transform.safetensors")
            .len(),
        1
    );
    let again = env.run(&["zoo", "pull", "glasses@1.0.0", "--registry", reg]);
    assert!(again.status.success());
    assert!(String::from_utf8_lossy(&again.stdout).contains("4 files verified (4 from the cache)"));
    assert_eq!(
        server
            .requests("/zoo/glasses/1.0.0/transform.safetensors")
            .len(),
        1
    );

    let installed = env.ok_json(&["zoo", "list", "--installed", "--json"]);
    assert_eq!(installed[0]["installed"], true);
    let v = env.ok_json(&["zoo", "verify", "--json"]);
    assert_eq!(v["ok"], true);
    assert_eq!(v["blobs"].as_array().unwrap().len(), 4);

    // Corrupt the transform blob: verify fails (exit 1) and says which; pull repairs it.
    let sha = p["entry"]["files"][0]["sha256"].as_str().unwrap();
    let blob = env.blob_dir().join(sha);
    let mut perm = fs::metadata(&blob).unwrap().permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    perm.set_readonly(false);
    fs::set_permissions(&blob, perm).unwrap();
    let mut bad = weights.clone();
    bad[100] ^= 1;
    fs::write(&blob, &bad).unwrap();
    let out = env.run(&["zoo", "verify", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], false);
    let damaged: Vec<&Value> = v["blobs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["status"] != "ok")
        .collect();
    assert_eq!(damaged.len(), 1);
    assert_eq!(damaged[0]["sha256"], sha);
    assert_eq!(damaged[0]["status"], "wrong-hash");
    assert_eq!(damaged[0]["used_by"][0], "glasses@1.0.0 transform");
    let human = env.run(&["zoo", "verify"]);
    assert!(String::from_utf8_lossy(&human.stdout).contains("DAMAGED"));
    env.ok_json(&["zoo", "pull", "glasses", "--registry", reg, "--json", "-q"]);
    assert_eq!(fs::read(&blob).unwrap(), weights);
    assert_eq!(
        server
            .requests("/zoo/glasses/1.0.0/transform.safetensors")
            .len(),
        2
    );
    assert_eq!(
        env.ok_json(&["zoo", "verify", "glasses", "--json"])["ok"],
        true
    );

    // rm drops the model and its blobs; gc then has nothing left but strays.
    fs::write(
        env.blob_dir().join(diat_zoo::hash::sha256_bytes(b"stray")),
        b"stray",
    )
    .unwrap();
    let rm = env.ok_json(&["zoo", "rm", "glasses", "--json"]);
    assert_eq!(rm["removed_models"][0], "glasses@1.0.0");
    assert_eq!(rm["removed_blobs"].as_array().unwrap().len(), 4);
    let gc = env.ok_json(&["zoo", "gc", "--keep-recent", "0", "--json"]);
    assert_eq!(gc["removed_blobs"].as_array().unwrap().len(), 1);
    assert_eq!(fs::read_dir(env.blob_dir()).unwrap().count(), 0);
    let rm_again = env.run(&["zoo", "rm", "glasses"]);
    assert!(!rm_again.status.success());
    assert!(String::from_utf8_lossy(&rm_again.stderr).contains("not in the cache"));
}

#[test]
fn two_concurrent_cli_pulls_share_one_cache() {
    let env = Env::new();
    let server = TestServer::start();
    let weights = data(2_000_000);
    publish_and_serve(&env, &server, &weights);
    let slow = Fault::Trickle {
        chunk: 64 << 10,
        every: Duration::from_millis(10),
    };
    server.script(
        "/zoo/glasses/1.0.0/transform.safetensors",
        vec![slow.clone(), slow],
    );
    let reg = env.registry();
    let args = [
        "zoo",
        "pull",
        "glasses",
        "--registry",
        reg.to_str().unwrap(),
        "--json",
        "-q",
    ];
    let a = env
        .cmd(&args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let b = env
        .cmd(&args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    for child in [a, b] {
        let out = child.wait_with_output().unwrap();
        common::assert_ok(&out, "concurrent diat zoo pull");
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(
            fs::read(v[0]["files"]["transform"].as_str().unwrap()).unwrap(),
            weights
        );
    }
    let partials: Vec<String> = fs::read_dir(env.blob_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("partial"))
        .collect();
    assert!(partials.is_empty(), "{partials:?}");
    assert_eq!(env.ok_json(&["zoo", "verify", "--json"])["ok"], true);
}

#[test]
fn offline_never_touches_the_network_and_names_what_is_missing() {
    let env = Env::new();
    let server = TestServer::start();
    publish_and_serve(&env, &server, &data(10_000));
    let reg = env.registry();
    let reg = reg.to_str().unwrap();
    let out = env
        .cmd(&["zoo", "pull", "glasses", "--registry", reg])
        .env("DIAT_OFFLINE", "1")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("offline") && err.contains("glasses@1.0.0 transform"),
        "{err}"
    );
    assert!(
        err.contains(&env.blob_dir().display().to_string()),
        "names the cache path: {err}"
    );
    assert_eq!(server.total_requests(), 0);
    let out = env.run(&["zoo", "pull", "glasses", "--registry", reg, "--offline"]);
    assert!(!out.status.success());
    assert_eq!(server.total_requests(), 0);
    // Once pulled, offline works without the registry.
    env.ok_json(&["zoo", "pull", "glasses", "--registry", reg, "--json"]);
    let n = server.total_requests();
    let missing = env.dir.path().join("missing.toml");
    let out = env
        .cmd(&[
            "zoo",
            "pull",
            "glasses",
            "--registry",
            missing.to_str().unwrap(),
            "--json",
        ])
        .env("DIAT_OFFLINE", "1")
        .output()
        .unwrap();
    common::assert_ok(&out, "offline diat zoo pull");
    assert_eq!(server.total_requests(), n);
}

#[test]
fn faults_surface_as_clear_errors() {
    let env = Env::new();
    let server = TestServer::start();
    publish_and_serve(&env, &server, &data(50_000));
    let reg = env.registry();
    let reg = reg.to_str().unwrap();
    let path = "/zoo/glasses/1.0.0/transform.safetensors";
    let quick = [
        "--retries",
        "2",
        "--retry-delay-ms",
        "10",
        "--timeout",
        "1",
        "-q",
    ];
    let pull = |extra: &[&str]| {
        let mut a = vec!["zoo", "pull", "glasses", "--registry", reg];
        a.extend_from_slice(&quick);
        a.extend_from_slice(extra);
        env.run(&a)
    };
    server.script(path, vec![Fault::Status(404)]);
    let out = pull(&[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("HTTP 404"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    server.script(
        path,
        vec![Fault::Redirect("http://diat-zoo-test.invalid/w".into())],
    );
    let out = pull(&[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("plain http") && err.contains("--allow-http"),
        "{err}"
    );
    // A reset, then a 500: retried and resumed, and the pull succeeds.
    server.script(path, vec![Fault::ResetAfter(20_000), Fault::Status(500)]);
    let out = pull(&["--json"]);
    common::assert_ok(&out, "diat zoo pull after a reset and a 500");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v[0]["fetched"][0]["requests"], 3);
    // publish refuses a run without a transform.
    let run = env.dir.path().join("empty-run");
    fs::create_dir_all(run.join("checkpoints")).unwrap();
    fs::write(run.join("checkpoints/enhance.safetensors"), b"e").unwrap();
    let out = env.run(&[
        "zoo",
        "publish",
        run.to_str().unwrap(),
        "--name",
        "x",
        "--version",
        "1.0.0",
        "--base-url",
        "https://example.org/zoo",
        "--license",
        "MIT",
        "--task",
        "t",
        "--variant",
        "diat",
        "--data-manifest-sha256",
        &"0".repeat(64),
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no transform checkpoint"));
}
