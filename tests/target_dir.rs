//! `scripts/target-dir.sh`: one cargo target dir per checkout path (a shared one handed a clone
//! the other clone's stale artifacts), `CARGO_TARGET_DIR` honoured.

use std::path::Path;
use std::process::Command;

fn target_dir(checkout: &Path, cache: &Path, explicit: Option<&str>) -> String {
    let mut cmd = Command::new("bash");
    cmd.arg(checkout.join("scripts/target-dir.sh"))
        .env("DIAT_CACHE", cache)
        .env_remove("CARGO_TARGET_DIR");
    if let Some(dir) = explicit {
        cmd.env("CARGO_TARGET_DIR", dir);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[test]
fn each_checkout_path_gets_its_own_target_dir() {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/target-dir.sh");
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    // Two clones with the same folder name under different parents, as two checkouts of diat.
    let (a, b) = (tmp.path().join("a/diat"), tmp.path().join("b/diat"));
    for clone in [&a, &b] {
        std::fs::create_dir_all(clone.join("scripts")).unwrap();
        std::fs::copy(&script, clone.join("scripts/target-dir.sh")).unwrap();
    }
    let (da, db) = (target_dir(&a, &cache, None), target_dir(&b, &cache, None));
    let prefix = format!("{}/targets/diat-", cache.display());
    assert!(
        da.starts_with(&prefix) && db.starts_with(&prefix),
        "{da} {db}"
    );
    assert_ne!(da, db, "two checkouts must not share a target dir");
    assert_eq!(da, target_dir(&a, &cache, None), "stable for one checkout");
    assert_eq!(target_dir(&a, &cache, Some("/elsewhere/t")), "/elsewhere/t");
}
