//! Publishing a run, then resolving it back by name (over loopback HTTP and file://) and by
//! local path: what `diat apply` gets from `resolve_and_fetch`.

mod support;

use diat_zoo::resolve::RegistrySource;
use diat_zoo::{
    Cache, FetchOptions, PublishOptions, Registry, ResolveOptions, resolve_and_fetch_with,
};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;
use support::server::TestServer;

fn fetch_opts() -> FetchOptions {
    FetchOptions {
        read_timeout: Duration::from_secs(2),
        retries: 1,
        retry_delay: Duration::from_millis(10),
        progress: false,
        ..FetchOptions::default()
    }
}

/// A run folder as training writes it.
fn make_run(root: &Path) -> PathBuf {
    let run = root.join("run");
    fs::create_dir_all(run.join("checkpoints")).unwrap();
    fs::create_dir_all(run.join("samples")).unwrap();
    fs::write(
        run.join("checkpoints/transform_000100.safetensors"),
        b"old transform",
    )
    .unwrap();
    fs::write(
        run.join("checkpoints/transform_000200.safetensors"),
        b"new transform weights",
    )
    .unwrap();
    fs::write(
        run.join("checkpoints/enhance_000200.safetensors"),
        b"enhance weights",
    )
    .unwrap();
    fs::write(
        run.join("checkpoints/discriminator_000200.safetensors"),
        b"disc weights",
    )
    .unwrap();
    fs::write(
        run.join("config.toml"),
        "task = \"eyeglasses-add\"\n[architecture]\nbase = 64\nblocks = 6\n[preprocessing]\ncrop = { left = 0, top = 20, width = 178, height = 178 }\nsize = 64\nvalue_range = [-1.0, 1.0]\n",
    )
    .unwrap();
    fs::write(
        run.join("run.json"),
        r#"{"variant": "diat-a", "metrics": {"identity_cosine": 0.71, "note": "x"}}"#,
    )
    .unwrap();
    fs::write(
        run.join("metrics.jsonl"),
        "{\"step\": 100, \"loss_d\": 0.9}\n{\"step\": 200, \"loss_d\": 0.5, \"loss_t\": 1.5}\n",
    )
    .unwrap();
    fs::write(
        run.join("samples/sheet_000200.png"),
        b"\x89PNG\r\n\x1a\nfake",
    )
    .unwrap();
    run
}

fn publish_opts(run: &Path, out: &Path, base_url: &str, registry: &Path) -> PublishOptions {
    PublishOptions {
        run_dir: run.to_path_buf(),
        name: "eyeglasses".into(),
        version: "1.0.0".parse().unwrap(),
        base_url: base_url.into(),
        mirror_base_urls: vec![],
        out: out.to_path_buf(),
        registry: Some(registry.to_path_buf()),
        task: None,
        variant: None,
        license: "CC-BY-NC-4.0".into(),
        description: Some("test".into()),
        data_manifest_sha256: Some(diat_zoo::hash::sha256_bytes(b"manifest")),
        data_manifest: None,
        overwrite: false,
        eval_report: None,
        lfw_report: None,
        notes: None,
        no_samples: false,
    }
}

#[test]
fn publish_then_pull_over_http_and_resolve_by_role() {
    let t = tempfile::tempdir().unwrap();
    let run = make_run(t.path());
    let out = t.path().join("out");
    let registry = t.path().join("registry.toml");
    let server = TestServer::start();
    let base = server.url("/zoo");
    let p = diat_zoo::publish(&publish_opts(&run, &out, &base, &registry)).unwrap();
    let e = &p.entry;
    assert_eq!(
        (e.task.as_str(), e.variant.as_str()),
        ("eyeglasses-add", "diat-a")
    );
    assert_eq!(e.preprocessing.size, 64);
    assert_eq!(
        e.architecture.get("blocks").and_then(|v| v.as_integer()),
        Some(6)
    );
    assert_eq!(e.metrics.get("identity_cosine"), Some(&0.71));
    assert_eq!(e.metrics.get("loss_t"), Some(&1.5));
    assert!(!e.metrics.contains_key("step"));
    let roles: Vec<&str> = e.files.iter().map(|f| f.role.as_str()).collect();
    assert_eq!(
        roles,
        ["transform", "discriminator", "enhance", "run", "card"]
    );
    // The card lists every other file with its hash, and says it was not evaluated.
    let card = fs::read_to_string(out.join("eyeglasses/1.0.0/card.md")).unwrap();
    assert!(
        card.starts_with("# eyeglasses@1.0.0 — model card"),
        "{card}"
    );
    assert!(
        card.contains(&e.files[0].sha256) && card.contains("Not evaluated"),
        "{card}"
    );
    // The paper's networks: no "beyond the paper" line.
    assert!(!card.contains("Beyond the paper"), "{card}");
    assert_eq!(
        e.files[0].url,
        format!("{base}/eyeglasses/1.0.0/transform.safetensors")
    );
    assert_eq!(
        fs::read(out.join("eyeglasses/1.0.0/transform.safetensors")).unwrap(),
        b"new transform weights"
    );
    let names = diat_zoo::archive::list_zip(&out.join("eyeglasses/1.0.0/run.zip")).unwrap();
    assert_eq!(
        names,
        [
            "config.toml",
            "run.json",
            "metrics.jsonl",
            "samples/sheet_000200.png"
        ]
    );
    // The registry file now lists it, and parses strictly.
    let reg = Registry::load(&registry).unwrap();
    assert_eq!(reg.models.len(), 1);
    assert_eq!(&reg.models[0], e);
    assert!(
        fs::read_to_string(out.join("eyeglasses/1.0.0/registry-stanza.toml"))
            .unwrap()
            .starts_with("[[model]]")
    );
    // Publishing the same version again is refused, and the output is not overwritten.
    let again = diat_zoo::publish(&publish_opts(
        &run,
        &t.path().join("out2"),
        &base,
        &registry,
    ))
    .unwrap_err();
    assert!(again.to_string().contains("already listed"), "{again}");
    assert!(!t.path().join("out2/eyeglasses").exists());

    // Serve the published tree and pull it by name.
    for f in &p.entry.files {
        let name = f.url.rsplit('/').next().unwrap();
        server.serve(
            &format!("/zoo/eyeglasses/1.0.0/{name}"),
            fs::read(out.join("eyeglasses/1.0.0").join(name)).unwrap(),
        );
    }
    let opts = ResolveOptions {
        registry: RegistrySource::File(registry.clone()),
        cache: Cache::new(t.path().join("home/zoo/v1")),
        fetch: fetch_opts(),
    };
    let r = resolve_and_fetch_with("eyeglasses", &opts).unwrap();
    assert_eq!(r.id, "eyeglasses@1.0.0");
    assert!(
        r.transform()
            .ends_with("refs/eyeglasses/1.0.0/transform.safetensors")
    );
    assert_eq!(fs::read(r.transform()).unwrap(), b"new transform weights");
    assert_eq!(
        fs::read(r.file("enhance").unwrap()).unwrap(),
        b"enhance weights"
    );
    assert!(
        r.file("run")
            .unwrap()
            .join("samples/sheet_000200.png")
            .is_file(),
        "zip files arrive extracted"
    );
    assert_eq!(r.fetched.iter().filter(|f| !f.cached).count(), 5);
    // Again: all from the cache; offline too, even when the registry is gone.
    let r2 = resolve_and_fetch_with("eyeglasses@1.0.0", &opts).unwrap();
    assert!(r2.fetched.iter().all(|f| f.cached));
    let offline = ResolveOptions {
        registry: RegistrySource::File(t.path().join("missing.toml")),
        fetch: FetchOptions {
            offline: true,
            ..fetch_opts()
        },
        ..opts.clone()
    };
    let r3 = resolve_and_fetch_with("eyeglasses@^1", &offline).unwrap();
    assert_eq!(r3.files, r.files);
    let e = resolve_and_fetch_with("nosuchmodel", &opts)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("no model named \"nosuchmodel\"") && e.contains("eyeglasses"),
        "{e}"
    );
}

#[test]
fn published_files_pull_from_file_urls() {
    let t = tempfile::tempdir().unwrap();
    let run = make_run(t.path());
    let out = t.path().join("out");
    let registry = t.path().join("reg.toml");
    let base = format!("file://{}", out.display());
    diat_zoo::publish(&publish_opts(&run, &out, &base, &registry)).unwrap();
    let opts = ResolveOptions {
        registry: RegistrySource::File(registry),
        cache: Cache::new(t.path().join("cache")),
        fetch: fetch_opts(),
    };
    let r = resolve_and_fetch_with("eyeglasses@1.0.0", &opts).unwrap();
    assert_eq!(fs::read(r.transform()).unwrap(), b"new transform weights");
    assert!(opts.cache.verify(None).unwrap().ok());
}

/// Weights shipped beside the registry (as `zoo/models/` in the repository): relative urls
/// resolve against the registry's folder, go through the same size and sha256 checks into the
/// content-addressed cache, offline too; a damaged shipped file is refused by name.
#[test]
fn files_shipped_beside_the_registry_resolve_offline_and_verified() {
    let t = tempfile::tempdir().unwrap();
    let run = make_run(t.path());
    let zoo = t.path().join("repo/zoo");
    let registry = zoo.join("registry.toml");
    let eval = t.path().join("eval.json");
    fs::write(
        &eval,
        r#"{"attribute": "Eyeglasses", "direction": "remove", "faces_evaluated": 20,
            "conditions": [{"condition": "model", "attribute_success": 0.7, "identity_kept": 0.95},
                           {"condition": "identity", "attribute_success": 0.1, "identity_kept": 1.0}]}"#,
    )
    .unwrap();
    let notes = t.path().join("notes.md");
    fs::write(&notes, "Trained on the real test-split crops.").unwrap();
    // A run with the options beyond the paper: the card names them.
    let config = fs::read_to_string(run.join("config.toml")).unwrap();
    fs::write(
        run.join("config.toml"),
        format!("{config}[model]\nupsample = \"resize\"\nresidual = true\nresidual_blur = 1.0\n[stages.adversarial]\nr1 = 10.0\naugment = \"color,cutout\"\ntv = 30.0\n"),
    )
    .unwrap();
    let mut po = publish_opts(&run, &zoo.join("models"), "models", &registry);
    po.eval_report = Some(eval.clone());
    po.notes = Some(notes);
    po.no_samples = true;
    let p = diat_zoo::publish(&po).unwrap();
    let zip = diat_zoo::archive::list_zip(&zoo.join("models/eyeglasses/1.0.0/run.zip")).unwrap();
    assert!(zip.iter().all(|n| !n.starts_with("samples/")), "{zip:?}");
    assert_eq!(
        p.entry.files[0].url,
        "models/eyeglasses/1.0.0/transform.safetensors"
    );
    assert_eq!(p.entry.metrics["real_success"], 0.7);
    assert_eq!(p.entry.metrics["real_success_identity"], 0.1);
    let card = fs::read_to_string(zoo.join("models/eyeglasses/1.0.0/card.md")).unwrap();
    assert!(
        card.contains("| model | 70.0 % | 95.0 % |")
            && card.contains("+60.0 points")
            && card.contains("real test-split crops"),
        "{card}"
    );
    assert!(
        card.contains(
            "Beyond the paper (docs/networks.md): T up-samples by `resize`; T predicts a change of \
             its input (residual output); T's change blurred, σ = 1.0 px; R1 penalty on D, γ = \
             10.0; DiffAugment `color,cutout` on D's inputs; total variation of T's change in \
             T's objective, weight 30.0."
        ),
        "{card}"
    );
    // Relative as written, absolute file:// urls once loaded from its folder.
    let reg = Registry::load(&registry).unwrap();
    assert!(reg.models[0].files[0].url.starts_with("models/"));
    let resolved = Registry::load_resolved(&registry).unwrap();
    assert!(resolved.models[0].files[0].url.starts_with("file:///"));
    let opts = ResolveOptions {
        registry: RegistrySource::File(registry.clone()),
        cache: Cache::new(t.path().join("cache")),
        fetch: FetchOptions {
            offline: true,
            ..fetch_opts()
        },
    };
    let r = resolve_and_fetch_with("eyeglasses", &opts).unwrap();
    assert_eq!(fs::read(r.transform()).unwrap(), b"new transform weights");
    assert!(r.fetched.iter().all(|f| !f.cached));
    assert!(
        fs::read_to_string(r.file("card").unwrap())
            .unwrap()
            .contains("model card")
    );
    assert!(opts.cache.verify(None).unwrap().ok());
    // A damaged shipped file (same size, other bytes) never reaches the cache.
    let enhance = zoo.join("models/eyeglasses/1.0.0/enhance.safetensors");
    let mut bytes = fs::read(&enhance).unwrap();
    bytes[0] ^= 1;
    fs::write(&enhance, bytes).unwrap();
    let fresh = ResolveOptions {
        cache: Cache::new(t.path().join("cache2")),
        ..opts.clone()
    };
    let e = resolve_and_fetch_with("eyeglasses", &fresh)
        .unwrap_err()
        .to_string();
    assert!(e.contains("enhance") && e.contains("sha256"), "{e}");
    // A report that is not an eval report is refused before anything is written.
    let mut bad = publish_opts(
        &run,
        &t.path().join("o"),
        "models",
        &t.path().join("r.toml"),
    );
    bad.eval_report = Some(notes_path_of(&t));
    let e = diat_zoo::publish(&bad).unwrap_err().to_string();
    assert!(e.contains("eval report"), "{e}");
    assert!(!t.path().join("o/eyeglasses").exists());
}

fn notes_path_of(t: &tempfile::TempDir) -> PathBuf {
    let p = t.path().join("not-a-report.json");
    fs::write(&p, r#"{"rows": []}"#).unwrap();
    p
}

#[test]
fn local_paths_work_in_place_of_zoo_names() {
    let t = tempfile::tempdir().unwrap();
    let run = make_run(t.path());
    let opts = ResolveOptions {
        registry: RegistrySource::File(t.path().join("never-read.toml")),
        cache: Cache::new(t.path().join("cache")),
        fetch: FetchOptions {
            offline: true,
            ..fetch_opts()
        },
    };
    // A run folder: the latest checkpoint of each role.
    let r = resolve_and_fetch_with(run.to_str().unwrap(), &opts).unwrap();
    assert!(r.entry.is_none());
    assert!(
        r.transform()
            .ends_with("checkpoints/transform_000200.safetensors")
    );
    assert_eq!(
        r.files.keys().collect::<Vec<_>>(),
        ["discriminator", "enhance", "transform"]
    );
    // One checkpoint file.
    let one = run.join("checkpoints/transform_000100.safetensors");
    let r = resolve_and_fetch_with(one.to_str().unwrap(), &opts).unwrap();
    assert_eq!(r.files.len(), 1);
    assert_eq!(r.transform(), one);
    assert_eq!(r.model_path(), one);
    let other = t.path().join("weights.safetensors");
    fs::write(&other, b"w").unwrap();
    assert_eq!(
        resolve_and_fetch_with(other.to_str().unwrap(), &opts)
            .unwrap()
            .transform(),
        other
    );
    // A published folder (as extracted from a bundle) and a zip of checkpoints.
    let z = t.path().join("bundle.zip");
    diat_zoo::archive::write_zip(
        &z,
        &[
            (
                "transform.safetensors".into(),
                run.join("checkpoints/transform_000200.safetensors"),
            ),
            (
                "enhance.safetensors".into(),
                run.join("checkpoints/enhance_000200.safetensors"),
            ),
        ],
    )
    .unwrap();
    let r = resolve_and_fetch_with(z.to_str().unwrap(), &opts).unwrap();
    assert_eq!(fs::read(r.transform()).unwrap(), b"new transform weights");
    assert!(r.transform().starts_with(t.path().join("cache/local")));
    // Errors name the path.
    let e = resolve_and_fetch_with(t.path().join("nope/x.safetensors").to_str().unwrap(), &opts)
        .unwrap_err();
    assert!(e.to_string().contains("no such file"), "{e}");
    let only_enhance = t.path().join("only");
    fs::create_dir_all(&only_enhance).unwrap();
    fs::write(only_enhance.join("enhance.safetensors"), b"e").unwrap();
    let e = resolve_and_fetch_with(only_enhance.to_str().unwrap(), &opts)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("no transform checkpoint") && e.contains("enhance"),
        "{e}"
    );
}

#[test]
fn publish_refuses_runs_without_a_transform_or_metadata() {
    let t = tempfile::tempdir().unwrap();
    let run = make_run(t.path());
    let registry = t.path().join("r.toml");
    for f in fs::read_dir(run.join("checkpoints")).unwrap() {
        let p = f.unwrap().path();
        if p.file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("transform")
        {
            fs::remove_file(p).unwrap();
        }
    }
    let e = diat_zoo::publish(&publish_opts(
        &run,
        &t.path().join("o"),
        "https://example.org/zoo",
        &registry,
    ))
    .unwrap_err();
    assert!(e.to_string().contains("no transform checkpoint"), "{e}");
    assert!(!registry.exists());
    let empty = t.path().join("empty");
    fs::create_dir_all(&empty).unwrap();
    let e = diat_zoo::publish(&publish_opts(
        &empty,
        &t.path().join("o"),
        "https://example.org/zoo",
        &registry,
    ))
    .unwrap_err();
    assert!(
        e.to_string().contains("neither final/ nor checkpoints/"),
        "{e}"
    );
    // Without a data manifest hash anywhere: a clear error.
    let run = make_run(&t.path().join("second"));
    let mut o = publish_opts(
        &run,
        &t.path().join("o"),
        "https://example.org/zoo",
        &registry,
    );
    o.data_manifest_sha256 = None;
    let e = diat_zoo::publish(&o).unwrap_err();
    assert!(e.to_string().contains("--data-manifest"), "{e}");
    // ... which a manifest file provides.
    fs::write(t.path().join("manifest.json"), b"{}").unwrap();
    o.data_manifest = Some(t.path().join("manifest.json"));
    let p = diat_zoo::publish(&o).unwrap();
    assert_eq!(
        p.entry.data_manifest_sha256,
        diat_zoo::hash::sha256_bytes(b"{}")
    );
}

/// The layout `diat train` writes (crates/diat-train/src/run.rs).
fn make_train_run(root: &Path) -> PathBuf {
    let run = root.join("eyeglasses_remove-diat-a");
    for d in [
        "final",
        "samples",
        "checkpoints/adversarial/step-000500",
        "stages/adversarial",
    ] {
        fs::create_dir_all(run.join(d)).unwrap();
    }
    fs::write(run.join("final/transform.safetensors"), b"final T").unwrap();
    fs::write(run.join("final/discriminator.safetensors"), b"final D").unwrap();
    fs::write(run.join("final/enhance.safetensors"), b"final E").unwrap();
    fs::write(
        run.join("final/pipeline.toml"),
        "[task]\nname = \"eyeglasses_remove\"\n",
    )
    .unwrap();
    fs::write(
        run.join("checkpoints/adversarial/step-000500/transform.safetensors"),
        b"mid",
    )
    .unwrap();
    fs::write(
        run.join("resolved.toml"),
        "[task]\nname = \"eyeglasses_remove\"\ndata = \"celeba\"\nvariant = \"diat-a\"\nenhancement = \"local\"\n\n[model]\nwidth = 1.0\nres_blocks = 5\nimage_size = 96\n",
    )
    .unwrap();
    fs::write(
        run.join("run.json"),
        r#"{"git_commit": "abc", "seed": 0, "threads": 2}"#,
    )
    .unwrap();
    fs::write(
        run.join("metrics.jsonl"),
        "{\"stage\": \"adversarial\", \"step\": 500, \"loss_t\": 0.25}\n",
    )
    .unwrap();
    fs::write(run.join("loss_curve.png"), b"\x89PNG curve").unwrap();
    // Only each stage's last sheet goes into the run zip.
    for name in [
        "adversarial-step-000250.png",
        "adversarial-step-000500.png",
        "pretrain_t-step-000100.png",
    ] {
        fs::write(run.join("samples").join(name), b"\x89PNG grid").unwrap();
    }
    // What `diat train` does last: seal final/.
    diat_common::complete::seal(&run.join("final")).unwrap();
    run
}

#[test]
fn a_diat_train_run_publishes_and_pulls_like_its_final_folder() {
    let t = tempfile::tempdir().unwrap();
    let run = make_train_run(t.path());
    let out = t.path().join("out");
    let registry = t.path().join("registry.toml");
    let mut o = publish_opts(&run, &out, &format!("file://{}", out.display()), &registry);
    o.name = "eyeglasses-remove".into();
    // An unsealed or altered final/ is not published.
    fs::rename(run.join("final/complete.json"), t.path().join("c.json")).unwrap();
    let e = diat_zoo::publish(&o).unwrap_err().to_string();
    assert!(e.contains("no complete.json"), "{e}");
    fs::rename(t.path().join("c.json"), run.join("final/complete.json")).unwrap();
    let pipeline = fs::read(run.join("final/pipeline.toml")).unwrap();
    fs::write(run.join("final/pipeline.toml"), b"[task]\n").unwrap();
    let e = diat_zoo::publish(&o).unwrap_err().to_string();
    assert!(e.contains("pipeline.toml has"), "{e}");
    fs::write(run.join("final/pipeline.toml"), pipeline).unwrap();
    assert!(!out.exists(), "nothing written by a refused publish");
    let p = diat_zoo::publish(&o).unwrap();
    let e = &p.entry;
    assert_eq!(
        (e.task.as_str(), e.variant.as_str()),
        ("eyeglasses_remove", "diat-a")
    );
    assert_eq!(e.preprocessing.size, 96);
    assert_eq!(
        e.architecture
            .get("res_blocks")
            .and_then(|v| v.as_integer()),
        Some(5)
    );
    assert_eq!(
        e.architecture.get("enhancement").and_then(|v| v.as_str()),
        Some("local")
    );
    assert_eq!(e.metrics.get("loss_t"), Some(&0.25));
    let roles: Vec<&str> = e.files.iter().map(|f| f.role.as_str()).collect();
    assert_eq!(
        roles,
        [
            "transform",
            "discriminator",
            "enhance",
            "pipeline",
            "run",
            "card"
        ]
    );
    let zip = diat_zoo::archive::list_zip(&p.dir.join("run.zip")).unwrap();
    assert_eq!(
        zip,
        [
            "resolved.toml",
            "run.json",
            "metrics.jsonl",
            "loss_curve.png",
            "samples/adversarial-step-000500.png",
            "samples/pretrain_t-step-000100.png"
        ]
    );
    // Pulled, the model folder looks like final/: what loads one loads the other.
    let opts = ResolveOptions {
        registry: RegistrySource::File(registry),
        cache: Cache::new(t.path().join("cache")),
        fetch: fetch_opts(),
    };
    let r = resolve_and_fetch_with("eyeglasses-remove", &opts).unwrap();
    for (name, bytes) in [
        ("transform.safetensors", &b"final T"[..]),
        ("enhance.safetensors", b"final E"),
    ] {
        assert_eq!(fs::read(r.dir.join(name)).unwrap(), bytes);
    }
    assert!(r.dir.join("pipeline.toml").is_file());
    assert_eq!(r.file("pipeline").unwrap(), r.dir.join("pipeline.toml"));
    // The run folder itself resolves to final/.
    let local = resolve_and_fetch_with(run.to_str().unwrap(), &opts).unwrap();
    assert_eq!(local.transform(), run.join("final/transform.safetensors"));
    assert_eq!(
        local.file("pipeline").unwrap(),
        run.join("final/pipeline.toml")
    );
    assert_eq!(local.model_path(), run.join("final"));
    assert_eq!(r.model_path(), r.dir);
}
