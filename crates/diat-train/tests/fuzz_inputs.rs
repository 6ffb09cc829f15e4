//! Property tests (proptest, bounded for CI) over the two kinds of file a user hands to diat's
//! loaders: checkpoint headers (`Model::load` of a file and of a run's `final/`) and pipeline
//! files with `--set` overrides. For every generated input the loader returns `Ok` or an error —
//! never a panic — and no allocation beyond [`LIMIT`] is attempted: the test binary's global
//! allocator records the largest request, and the process's peak resident memory is checked at
//! the end (libtorch allocates outside Rust's allocator). A configuration that passes validation
//! is further required to fit the memory budget its estimate was checked against.

#![allow(unsafe_code)] // the counting allocator

use diat_nets::checkpoint;
use diat_train::config::PipelineConfig;
use diat_train::model::Model;
use proptest::prelude::*;
use std::alloc::{GlobalAlloc, Layout, System};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use tch::{Device, nn};

/// Largest single allocation any generated input may cause.
const LIMIT: usize = 256 << 20;

struct Counting;
static LARGEST: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LARGEST.fetch_max(l.size(), Ordering::Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        LARGEST.fetch_max(l.size(), Ordering::Relaxed);
        unsafe { System.alloc_zeroed(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        LARGEST.fetch_max(new, Ordering::Relaxed);
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn peak_rss_bytes() -> u64 {
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    u.ru_maxrss as u64 * 1024
}

/// Runs `f`, which must not panic nor allocate more than [`LIMIT`] at once.
fn bounded<T>(what: &str, f: impl FnOnce() -> T) -> T {
    LARGEST.store(0, Ordering::Relaxed);
    let r = catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|_| panic!("{what}: panicked"));
    let largest = LARGEST.load(Ordering::Relaxed);
    assert!(
        largest <= LIMIT,
        "{what}: allocated {largest} bytes at once"
    );
    r
}

/// A valid tiny run: `final/` with a transform and a local enhancement network, sealed.
fn reference(dir: &Path) -> PathBuf {
    let fin = dir.join("run/final");
    std::fs::create_dir_all(&fin).unwrap();
    std::fs::write(dir.join("run/resolved.toml"), "").unwrap();
    let t = diat_nets::TransformConfig::tiny(16);
    let vs = nn::VarStore::new(Device::Cpu);
    let _ = diat_nets::transform_net(&vs.root(), &t);
    checkpoint::save(&vs, &fin.join("transform.safetensors"), "transform", &t).unwrap();
    let e = diat_nets::LocalEnhanceConfig::tiny(16);
    let vs = nn::VarStore::new(Device::Cpu);
    let _ = diat_nets::local_enhance_net(&vs.root(), &e);
    checkpoint::save(&vs, &fin.join("enhance.safetensors"), "local_enhance", &e).unwrap();
    diat_common::complete::seal(&fin).unwrap();
    Model::load(&fin, Device::Cpu).expect("the reference loads");
    fin
}

/// JSON numbers of every awkward kind (JSON has no NaN: serde writes null for it).
fn json_number() -> impl Strategy<Value = serde_json::Value> {
    prop_oneof![
        any::<i64>().prop_map(serde_json::Value::from),
        (-64i64..2100).prop_map(serde_json::Value::from),
        any::<f64>().prop_map(serde_json::Value::from),
        (-2.0f64..20.0).prop_map(serde_json::Value::from),
        Just(serde_json::json!(1e300)),
        Just(serde_json::json!("7")),
        Just(serde_json::Value::Null),
    ]
}

/// A transform config as a checkpoint's metadata might carry it: any field any value, some
/// fields missing, some unknown.
fn transform_config_json() -> impl Strategy<Value = serde_json::Value> {
    (
        json_number(),
        json_number(),
        json_number(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(r, w, s, drop_one, extra)| {
            let mut m = serde_json::Map::new();
            m.insert("res_blocks".into(), r);
            m.insert("width".into(), w);
            if !drop_one {
                m.insert("image_size".into(), s);
            }
            if extra {
                m.insert("fc_hidden".into(), serde_json::json!(1e9));
            }
            serde_json::Value::Object(m)
        })
}

/// Byte edits of a file: (offset modulo a range, new byte).
fn edits() -> impl Strategy<Value = Vec<(usize, u8)>> {
    prop::collection::vec((any::<usize>(), any::<u8>()), 0..12)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 160, failure_persistence: None, ..ProptestConfig::default() })]

    /// Any config in the metadata of an otherwise valid checkpoint.
    #[test]
    fn checkpoint_metadata_never_panics_nor_overallocates(config in transform_config_json()) {
        let tmp = tempfile::tempdir().unwrap();
        let fin = reference(tmp.path());
        let src = fin.join("transform.safetensors");
        let (tensors, map) = checkpoint::read_tensors(&src).unwrap();
        let mut meta = checkpoint::meta_from_map(&src, map).unwrap();
        meta.config = config.clone();
        let p = tmp.path().join("t.safetensors");
        checkpoint::save_tensors(&p, &tensors, &meta).unwrap();
        let r = bounded(&format!("config {config}"), || Model::load(&p, Device::Cpu));
        // Only a config that describes these very weights loads.
        if r.is_ok() {
            let c: diat_nets::TransformConfig = serde_json::from_value(config).unwrap();
            prop_assert_eq!((c.res_blocks, c.width), (2, 0.25));
        }
    }

    /// Random byte edits of a checkpoint's header (its length prefix included) and random
    /// truncation, as a single file and inside a sealed run folder.
    #[test]
    fn corrupted_headers_never_panic_nor_overallocate(
        edits in edits(),
        cut in prop::option::of(any::<usize>()),
        header_len in prop::option::of(any::<u64>()),
    ) {
        let tmp = tempfile::tempdir().unwrap();
        let fin = reference(tmp.path());
        let path = fin.join("transform.safetensors");
        let mut bytes = std::fs::read(&path).unwrap();
        let original = bytes.clone();
        let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize + 8;
        for (at, b) in &edits {
            bytes[at % n] = *b;
        }
        if let Some(h) = header_len {
            bytes[..8].copy_from_slice(&h.to_le_bytes());
        }
        if let Some(c) = cut {
            bytes.truncate(c % (bytes.len() + 1));
        }
        let single = tmp.path().join("single.safetensors");
        std::fs::write(&single, &bytes).unwrap();
        let _ = bounded("a corrupted checkpoint file", || Model::load(&single, Device::Cpu));
        // In the run's final/: the record catches any change; resealed, the header itself is
        // what the loader must survive.
        std::fs::write(&path, &bytes).unwrap();
        let changed = bounded("a changed final/", || Model::load(&fin, Device::Cpu));
        prop_assert!(changed.is_err() || bytes == original);
        diat_common::complete::seal(&fin).unwrap();
        let _ = bounded("a resealed final/", || Model::load(&fin, Device::Cpu));
    }

    /// Random pipeline.toml text beside valid weights.
    #[test]
    fn pipeline_beside_weights_never_panics(text in "[a-z_.=\\[\\]\" 0-9e+-]{0,80}") {
        let tmp = tempfile::tempdir().unwrap();
        let fin = reference(tmp.path());
        std::fs::write(fin.join("pipeline.toml"), format!("[stages.enhance]\n{text}\n")).unwrap();
        diat_common::complete::seal(&fin).unwrap();
        let _ = bounded("a pipeline.toml", || Model::load(&fin, Device::Cpu));
    }
}

/// Every key a pipeline has, plus two it does not.
const KEYS: &[&str] = &[
    "train.seed",
    "train.batch",
    "train.device",
    "train.log_every",
    "train.sample_every",
    "train.checkpoint_every",
    "train.keep_checkpoints",
    "train.sample_images",
    "train.loader_threads",
    "train.memory_format",
    "model.width",
    "model.res_blocks",
    "model.image_size",
    "model.d_fc_hidden",
    "model.d_width",
    "model.enhance_width",
    "stages.pretrain_t.steps",
    "stages.pretrain_t.lr",
    "stages.pretrain_d.lr",
    "stages.adversarial.steps",
    "stages.adversarial.lr_t",
    "stages.adversarial.dstep",
    "stages.adversarial.tstep",
    "stages.adversarial.lambda",
    "stages.adversarial.gamma",
    "stages.enhance.sigma",
    "stages.enhance.betas",
    "task.variant",
    "model.unknown",
    "model",
];

fn toml_value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|v| v.to_string()),
        (-8i64..5000).prop_map(|v| v.to_string()),
        any::<f64>().prop_map(|v| format!("{v:e}")),
        (0.0f64..20.0).prop_map(|v| v.to_string()),
        Just("nan".to_string()),
        Just("-inf".to_string()),
        Just("1e308".to_string()),
        Just("\"x\"".to_string()),
        Just("[1, -1, 1e400]".to_string()),
        Just("true".to_string()),
        Just("{ a = 1 }".to_string()),
    ]
}

fn smoke_pipeline() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../pipelines/smoke/mouth_open.toml")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, failure_persistence: None, ..ProptestConfig::default() })]

    /// `--set` overrides of any key with any value: a clean error, or a configuration whose
    /// memory estimate fits the budget it was checked against.
    #[test]
    fn overrides_never_panic_and_accepted_configs_fit(
        sets in prop::collection::vec((0..KEYS.len(), toml_value()), 1..5)
    ) {
        let sets: Vec<String> = sets.iter().map(|(k, v)| format!("{}={v}", KEYS[*k])).collect();
        let r = bounded(&format!("{sets:?}"), || {
            PipelineConfig::load_with_overrides(&smoke_pipeline(), &sets)
        });
        match r {
            Ok(cfg) => {
                let budget = diat_nets::limits::memory_budget().unwrap_or(f64::INFINITY);
                prop_assert!(cfg.memory_estimate() <= budget, "{sets:?}");
            }
            Err(e) => {
                let msg = e.to_string();
                prop_assert!(!msg.is_empty());
            }
        }
    }

    /// Arbitrary text as a pipeline file (and as the file it inherits from).
    #[test]
    fn pipeline_text_never_panics(text in "(inherit = \"p.toml\"\n)?[a-z_.=\\[\\]\" 0-9\n-]{0,120}") {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("p.toml");
        std::fs::write(&p, &text).unwrap();
        let _ = bounded("a pipeline file", || PipelineConfig::load(&p));
    }
}

#[test]
fn peak_memory_stays_bounded() {
    // Runs after (or beside) the properties in this binary; a loader that allocated a network
    // from an unchecked config would have pushed the peak far beyond this.
    let _ = bounded("reference", || {
        reference(tempfile::tempdir().unwrap().path())
    });
    let peak = peak_rss_bytes();
    assert!(peak < 4 << 30, "peak resident memory {peak} bytes");
}
