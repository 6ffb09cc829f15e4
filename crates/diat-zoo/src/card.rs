//! Model cards: the `card.md` that `diat zoo publish` writes beside a model's weights.
//!
//! A card says what a user needs to trust (or distrust) a checkpoint: the task and variant, the
//! training data (manifest hash, the pipeline's data setting, the publisher's notes on which
//! images and which split), the networks and the schedule of every stage with its training wall
//! time, the machine it ran on, and — when a `diat eval real --json` report is given — the
//! held-out figures next to the identity baseline (the same faces, unedited). Everything comes
//! from the run folder and the report; nothing is typed in by hand but the notes.

use crate::registry::ModelEntry;
use crate::report::human_bytes;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Training wall time per stage in seconds, from a run's `metrics.jsonl`: each logged line
/// covers the steps since the stage's previous line at its `step_per_s`. Lines a resumed run
/// recomputed were truncated by the trainer, so interruptions are counted once. Stages in the
/// order they first appear.
pub fn stage_seconds(metrics_jsonl: &str) -> Vec<(String, f64)> {
    let mut out: Vec<(String, f64)> = Vec::new();
    let mut last_step: BTreeMap<String, u64> = BTreeMap::new();
    for line in metrics_jsonl.lines().filter(|l| !l.trim().is_empty()) {
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let (Some(stage), Some(step), Some(rate)) = (
            v.get("stage").and_then(Value::as_str),
            v.get("step").and_then(Value::as_u64),
            v.get("step_per_s").and_then(Value::as_f64),
        ) else {
            continue;
        };
        let prev = last_step.insert(stage.to_string(), step).unwrap_or(0);
        let secs = if rate > 0.0 && step > prev {
            (step - prev) as f64 / rate
        } else {
            0.0
        };
        match out.iter_mut().find(|(s, _)| s == stage) {
            Some((_, t)) => *t += secs,
            None => out.push((stage.to_string(), secs)),
        }
    }
    out
}

/// `1 h 02 min`, `12 min 05 s`, `40 s`.
pub fn human_duration(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    match (s / 3600, (s % 3600) / 60, s % 60) {
        (0, 0, s) => format!("{s} s"),
        (0, m, s) => format!("{m} min {s:02} s"),
        (h, m, _) => format!("{h} h {m:02} min"),
    }
}

/// The numbers of a `diat eval real` report (`conditions` rows) that go into a registry entry's
/// `metrics`: `real_success`, `real_identity_kept` (the model), `real_success_identity`,
/// `real_identity_kept_identity` (the identity baseline), `real_t_only_success`, `real_faces`,
/// as fractions.
pub fn eval_metrics(report: &Value) -> BTreeMap<String, f64> {
    let mut m = BTreeMap::new();
    for (cond, suffix) in [
        ("model", ""),
        ("identity", "_identity"),
        ("T(x) only", "_t_only"),
    ] {
        if let Some(c) = condition(report, cond) {
            for (field, key) in [
                ("attribute_success", "real_success"),
                ("identity_kept", "real_identity_kept"),
            ] {
                if let Some(v) = c.get(field).and_then(Value::as_f64) {
                    m.insert(format!("{key}{suffix}"), v);
                }
            }
        }
    }
    if let Some(n) = report.get("faces_evaluated").and_then(Value::as_f64) {
        m.insert("real_faces".into(), n);
    }
    m
}

/// The numbers of a `diat eval lfw` report that go into a registry entry's `metrics`, as
/// fractions: `lfw_accuracy_before`, `lfw_accuracy_after` (verification of LFW's pairs at the
/// descriptor's threshold), `lfw_same_verified_before`, `lfw_same_verified_after`, `lfw_auc_before`,
/// `lfw_auc_after`, `lfw_success`, `lfw_success_identity` (on the eligible photos),
/// `lfw_all_paper_unchanged`, `lfw_eligible`, `lfw_pairs_scored`, and for a model with a region
/// `lfw_pixels_changed_outside_region`.
pub fn lfw_metrics(report: &Value) -> BTreeMap<String, f64> {
    let mut m = BTreeMap::new();
    let rows = |k: &str| {
        report
            .get(k)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
    };
    let f = |v: &Value, k: &str| v.get(k).and_then(Value::as_f64);
    for v in rows("verification") {
        let when = match v.get("condition").and_then(Value::as_str) {
            Some("before") => "before",
            Some("after edit") => "after",
            _ => continue,
        };
        for k in ["accuracy", "same_verified", "auc"] {
            if let Some(x) = f(v, k) {
                m.insert(format!("lfw_{k}_{when}"), x);
            }
        }
    }
    for c in rows("attribute_success") {
        let key = match c.get("condition").and_then(Value::as_str) {
            Some("model") => "lfw_success",
            Some("identity") => "lfw_success_identity",
            _ => continue,
        };
        if let Some(x) = f(c, "success") {
            m.insert(key.into(), x);
        }
    }
    for (k, key) in [
        ("all_paper_unchanged", "lfw_all_paper_unchanged"),
        ("eligible", "lfw_eligible"),
        ("pairs_scored", "lfw_pairs_scored"),
    ] {
        if let Some(x) = f(report, k) {
            m.insert(key.into(), x);
        }
    }
    if let Some(x) = report
        .get("outside_region")
        .and_then(|o| f(o, "pixels_changed"))
    {
        m.insert("lfw_pixels_changed_outside_region".into(), x);
    }
    m
}

/// The card's LFW section: verification before/after, attributes, what stays unchanged, each
/// beside the issue's target (issue 20) and whether it is met.
fn write_lfw(s: &mut String, r: &Value) {
    let m = lfw_metrics(r);
    let pct = |k: &str| {
        m.get(k)
            .map(|v| format!("{:.1} %", 100.0 * v))
            .unwrap_or_else(|| "—".into())
    };
    let local = r.get("outside_region").is_some_and(|o| !o.is_null());
    let met = |ok: Option<bool>| match ok {
        Some(true) => "met",
        Some(false) => "**not met**",
        None => "—",
    };
    let get = |k: &str| m.get(k).copied();
    let text = |k: &str| field_text(r, k);
    let _ = writeln!(s, "## On LFW's whole photos (`diat eval lfw`)\n");
    let _ = writeln!(
        s,
        "{} pairs of `{}` scored ({} photos, {} edited, {} rejected): every photo detected (MTCNN), aligned, edited and pasted back, scored as written (PNG). Eligible photos ({}): {}.\n",
        text("pairs_scored"),
        std::path::Path::new(&text("pairs_file"))
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default(),
        text("photos"),
        text("photos_edited"),
        r.get("rejected")
            .and_then(Value::as_array)
            .map_or(0, Vec::len),
        text("eligibility"),
        text("eligible"),
    );
    let _ = writeln!(s, "| measure | figure | target | |\n|---|---:|---|---|");
    let _ = writeln!(
        s,
        "| verification accuracy before the edit (descriptor check) | {} | ≥ 99.0 % | {} |",
        pct("lfw_accuracy_before"),
        met(get("lfw_accuracy_before").map(|v| v >= 0.99))
    );
    // (The before-edit row is the same for every model: it checks the descriptor and the
    // alignment, not the edit; docs/real-photos.md sets it beside dlib's own pipeline.)
    let _ = writeln!(
        s,
        "| verification accuracy, edited first photo | {} | — | |",
        pct("lfw_accuracy_after")
    );
    let kept = match (
        get("lfw_same_verified_after"),
        get("lfw_same_verified_before"),
    ) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    };
    let _ = writeln!(
        s,
        "| same-person pairs verified, before → after | {} → {} ({} of before) | {} | {} |",
        pct("lfw_same_verified_before"),
        pct("lfw_same_verified_after"),
        kept.map_or("—".into(), |k| format!("{:.1} %", 100.0 * k)),
        if local { "≥ 95 % of before" } else { "—" },
        if local {
            met(kept.map(|k| k >= 0.95))
        } else {
            ""
        }
    );
    let _ = writeln!(
        s,
        "| ROC AUC before → after | {} → {} | — | |",
        get("lfw_auc_before").map_or("—".into(), |v| format!("{v:.4}")),
        get("lfw_auc_after").map_or("—".into(), |v| format!("{v:.4}"))
    );
    let _ = writeln!(
        s,
        "| attribute success on eligible photos (identity baseline) | {} ({}) | — | |",
        pct("lfw_success"),
        pct("lfw_success_identity")
    );
    let _ = writeln!(
        s,
        "| other paper attributes all unchanged | {} | {} | {} |",
        pct("lfw_all_paper_unchanged"),
        if local { "≥ 90 %" } else { "—" },
        if local {
            met(get("lfw_all_paper_unchanged").map(|v| v >= 0.9))
        } else {
            ""
        }
    );
    if local {
        let px = get("lfw_pixels_changed_outside_region");
        let _ = writeln!(
            s,
            "| photo pixels changed outside the attribute region | {} | 0 | {} |",
            px.map_or("—".into(), |v| format!("{v:.0}")),
            met(px.map(|v| v == 0.0))
        );
    }
    let _ = writeln!(
        s,
        "\nThe first row checks the descriptor and the alignment, not this model (it is the same for every model; docs/real-photos.md sets it beside dlib's own pipeline on the same pairs).\n"
    );
}

fn condition<'a>(report: &'a Value, name: &str) -> Option<&'a Value> {
    report
        .get("conditions")?
        .as_array()?
        .iter()
        .find(|c| c.get("condition").and_then(Value::as_str) == Some(name))
}

/// What a card is written from: the run's configuration (`resolved.toml`), its `run.json`, the
/// training time per stage ([`stage_seconds`] of its `metrics.jsonl`), the held-out report and
/// the publisher's notes — each as `publish` already read it.
pub struct CardInputs<'a> {
    pub config: Option<&'a toml::Table>,
    pub run_json: Option<&'a Value>,
    pub stage_seconds: &'a [(String, f64)],
    pub eval: Option<&'a Value>,
    /// A `diat eval lfw --json` report (LFW's whole photos).
    pub lfw: Option<&'a Value>,
    pub notes: Option<&'a str>,
}

/// Writes the card of `entry`.
pub fn model_card(entry: &ModelEntry, inputs: &CardInputs<'_>) -> String {
    let empty = toml::Table::new();
    let config = inputs.config.unwrap_or(&empty);
    let run_json = inputs.run_json.unwrap_or(&Value::Null);
    let (times, eval, notes) = (inputs.stage_seconds, inputs.eval, inputs.notes);
    let get = |path: &[&str]| -> Option<String> {
        let mut v = config.get(path[0])?;
        for k in &path[1..] {
            v = v.get(*k)?;
        }
        Some(match v {
            toml::Value::String(s) => s.clone(),
            other => other.to_string(),
        })
    };
    let na = || "—".to_string();
    let mut s = String::new();
    let _ = writeln!(s, "# {} — model card\n", entry.id());
    let _ = writeln!(
        s,
        "Task `{}` · variant `{}` · enhancement `{}` · license {}{}\n",
        entry.task,
        entry.variant,
        get(&["task", "enhancement"]).unwrap_or_else(na),
        entry.license,
        entry
            .description
            .as_deref()
            .map(|d| format!("\n\n{d}"))
            .unwrap_or_default()
    );
    let _ = writeln!(s, "## Training data\n");
    let _ = writeln!(
        s,
        "- prepared set: `{}` (the pipeline's `task.data`), manifest sha256 `{}`",
        get(&["task", "data"]).unwrap_or_else(na),
        entry.data_manifest_sha256
    );
    let _ = writeln!(
        s,
        "- input crop: {}×{} at ({}, {}) of the 178×218 aligned image, resized to {} px, values in [{}, {}]\n",
        entry.preprocessing.crop.width,
        entry.preprocessing.crop.height,
        entry.preprocessing.crop.left,
        entry.preprocessing.crop.top,
        entry.preprocessing.size,
        entry.preprocessing.value_range[0],
        entry.preprocessing.value_range[1]
    );
    let _ = writeln!(s, "## Networks and schedule\n");
    let _ = writeln!(
        s,
        "Image size {} px; T width {} with {} residual blocks; D width {} (fc {}); E width {}; batch {}; precision `{}`; seed {}.\n",
        get(&["model", "image_size"]).unwrap_or_else(na),
        get(&["model", "width"]).unwrap_or_else(na),
        get(&["model", "res_blocks"]).unwrap_or_else(na),
        get(&["model", "d_width"]).unwrap_or_else(na),
        get(&["model", "d_fc_hidden"]).unwrap_or_else(na),
        get(&["model", "enhance_width"]).unwrap_or_else(na),
        get(&["train", "batch"]).unwrap_or_else(na),
        get(&["train", "precision"]).unwrap_or_else(na),
        get(&["train", "seed"]).unwrap_or_else(na),
    );
    // Options beyond the paper, named only when a run sets them (diat-nets' `transform` module,
    // `losses::r1_penalty`).
    let beyond: Vec<String> = [
        get(&["model", "upsample"]).map(|u| format!("T up-samples by `{u}`")),
        get(&["model", "residual"])
            .filter(|r| r == "true")
            .map(|_| "T predicts a change of its input (residual output)".to_string()),
        get(&["model", "residual_blur"]).map(|b| format!("T's change blurred, σ = {b} px")),
        get(&["stages", "adversarial", "r1"]).map(|g| format!("R1 penalty on D, γ = {g}")),
        get(&["stages", "adversarial", "augment"])
            .map(|a| format!("DiffAugment `{a}` on D's inputs")),
        get(&["stages", "adversarial", "tv"])
            .map(|w| format!("total variation of T's change in T's objective, weight {w}")),
        get(&["stages", "adversarial", "ema"])
            .map(|b| format!("T is the moving average of its weights, β = {b}")),
    ]
    .into_iter()
    .flatten()
    .collect();
    if !beyond.is_empty() {
        let _ = writeln!(
            s,
            "Beyond the paper (docs/networks.md): {}.\n",
            beyond.join("; ")
        );
    }
    let _ = writeln!(s, "| stage | steps | learning rate | λ | training time |");
    let _ = writeln!(s, "|---|---:|---|---:|---:|");
    let mut total = 0.0;
    for (stage, secs) in times {
        total += secs;
        let lr = get(&["stages", stage, "lr"]).or_else(|| {
            Some(format!(
                "T {} / D {}",
                get(&["stages", stage, "lr_t"])?,
                get(&["stages", stage, "lr_d"])?
            ))
        });
        let lambda = if stage == "adversarial" {
            get(&["stages", stage, "lambda"])
        } else {
            None
        };
        let _ = writeln!(
            s,
            "| {stage} | {} | {} | {} | {} |",
            get(&["stages", stage, "steps"]).unwrap_or_else(na),
            lr.unwrap_or_else(na),
            lambda.unwrap_or_else(na),
            human_duration(*secs)
        );
    }
    let rs = |k: &str| {
        run_json
            .get(k)
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| v.to_string())
            })
            .unwrap_or_else(na)
    };
    let _ = writeln!(
        s,
        "\nTraining time {} (the stages' logged steps; checkpoints and sample sheets add a little) on {} ({} thread(s), device {}), libtorch {}, diat commit `{}`.\n",
        human_duration(total),
        rs("cpu"),
        rs("threads"),
        rs("device"),
        rs("libtorch"),
        rs("git_commit")
    );
    let _ = writeln!(s, "## Held-out evaluation (`diat eval real`)\n");
    match eval {
        None => {
            let _ = writeln!(s, "Not evaluated on real faces when published.\n");
        }
        Some(r) => write_eval(&mut s, r),
    }
    if let Some(r) = inputs.lfw {
        write_lfw(&mut s, r);
    }
    if let Some(n) = notes.map(str::trim).filter(|n| !n.is_empty()) {
        let _ = writeln!(s, "## Notes\n\n{n}\n");
    }
    let _ = writeln!(s, "## Files\n\n| role | size | sha256 |\n|---|---:|---|");
    for f in &entry.files {
        let _ = writeln!(
            s,
            "| {} | {} | `{}` |",
            f.role,
            human_bytes(f.size),
            f.sha256
        );
    }
    s
}

/// A report's field `k` as text: a string as it is, any other value as JSON, "—" when absent.
fn field_text(r: &Value, k: &str) -> String {
    r.get(k)
        .map(|v| {
            v.as_str()
                .map(str::to_string)
                .unwrap_or_else(|| v.to_string())
        })
        .unwrap_or_else(|| "—".into())
}

fn write_eval(s: &mut String, r: &Value) {
    let txt = |k: &str| field_text(r, k);
    let _ = writeln!(
        s,
        "Attribute `{}` ({}), {} faces of held-out identities (split `{}`, identity split seed {}); attribute success by `{}`, identity kept by `{}` (same person below distance {}).\n",
        txt("attribute"),
        txt("direction"),
        txt("faces_evaluated"),
        txt("split"),
        txt("split_seed"),
        txt("classifier"),
        txt("descriptor"),
        txt("same_person_threshold"),
    );
    let _ = writeln!(
        s,
        "| condition | attribute success | identity kept | PSNR outside region |\n|---|---:|---:|---:|"
    );
    let pct = |c: &Value, k: &str| {
        c.get(k)
            .and_then(Value::as_f64)
            .map(|v| format!("{:.1} %", 100.0 * v))
            .unwrap_or_else(|| "—".into())
    };
    let conditions = r.get("conditions").and_then(Value::as_array);
    // As `diat eval real` prints it: no figure for an image identical to x outside the region
    // (∞) when any condition has one, else the model has no region (—).
    let has_region = conditions
        .into_iter()
        .flatten()
        .any(|c| c.get("psnr_outside_region").is_some_and(Value::is_f64));
    for c in conditions.into_iter().flatten() {
        let psnr = match c.get("psnr_outside_region").and_then(Value::as_f64) {
            Some(v) => format!("{v:.2} dB"),
            None if has_region => "∞".into(),
            None => "—".into(),
        };
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} |",
            c.get("condition").and_then(Value::as_str).unwrap_or("?"),
            pct(c, "attribute_success"),
            pct(c, "identity_kept"),
            psnr
        );
    }
    let m = eval_metrics(r);
    if let (Some(a), Some(b)) = (m.get("real_success"), m.get("real_success_identity")) {
        let _ = writeln!(
            s,
            "\nAttribute success {:+.1} points over the identity baseline.\n",
            100.0 * (a - b)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stage_time_counts_each_window_once() {
        let m = r#"{"stage":"a","step":10,"step_per_s":2.0}
{"stage":"a","step":20,"step_per_s":5.0}
{"stage":"b","step":4,"step_per_s":1.0}
not json
{"stage":"b","step":4,"step_per_s":1.0}"#;
        let t = stage_seconds(m);
        assert_eq!(t.len(), 2);
        assert_eq!(t[0].0, "a");
        assert!((t[0].1 - 7.0).abs() < 1e-9, "{t:?}");
        assert!((t[1].1 - 4.0).abs() < 1e-9, "{t:?}");
        assert_eq!(human_duration(3725.0), "1 h 02 min");
        assert_eq!(human_duration(65.0), "1 min 05 s");
    }

    #[test]
    fn lfw_figures_become_metrics_and_a_card_section_with_targets() {
        let r: Value = serde_json::json!({
            "pairs_file": "/x/pairsDevTest.txt", "pairs_scored": 1000, "photos": 1549,
            "photos_edited": 1549, "rejected": [], "eligible": 718,
            "eligibility": "classifier: P(Mouth_Slightly_Open) ≤ 0.5 before the edit",
            "verification": [
                {"condition": "before", "accuracy": 0.989, "same_verified": 0.984, "auc": 0.9982},
                {"condition": "after edit", "accuracy": 0.981, "same_verified": 0.972, "auc": 0.9972},
                {"condition": "blurred input", "accuracy": 0.978, "same_verified": 0.96, "auc": 0.997}
            ],
            "attribute_success": [
                {"condition": "identity", "success": 0.0},
                {"condition": "blurred input", "success": 0.013},
                {"condition": "model", "success": 0.719}
            ],
            "all_paper_unchanged": 0.905,
            "outside_region": {"pixels_changed": 0, "photos_changed": 0, "pixels_changed_anywhere": 5}
        });
        let m = lfw_metrics(&r);
        assert_eq!(m["lfw_accuracy_before"], 0.989);
        assert_eq!(m["lfw_same_verified_after"], 0.972);
        assert_eq!(m["lfw_success"], 0.719);
        assert_eq!(m["lfw_success_identity"], 0.0);
        assert_eq!(m["lfw_pixels_changed_outside_region"], 0.0);
        assert!(!m.contains_key("lfw_accuracy_blurred"));
        let mut s = String::new();
        write_lfw(&mut s, &r);
        assert!(s.contains("pairsDevTest.txt"), "{s}");
        // 98.9 % misses the 99.0 % descriptor target; the local targets are met.
        assert!(s.contains("| 98.9 % | ≥ 99.0 % | **not met** |"), "{s}");
        assert!(
            s.contains("(98.8 % of before) | ≥ 95 % of before | met |"),
            "{s}"
        );
        assert!(s.contains("| 90.5 % | ≥ 90 % | met |"), "{s}");
        assert!(s.contains("attribute region | 0 | 0 | met |"), "{s}");
        // A global model (no region) has no local targets.
        let mut g = r.clone();
        g["outside_region"] = Value::Null;
        let mut s = String::new();
        write_lfw(&mut s, &g);
        assert!(
            !s.contains("attribute region") && !s.contains("≥ 95 %"),
            "{s}"
        );
    }

    #[test]
    fn eval_figures_become_metrics() {
        let r = serde_json::json!({"faces_evaluated": 200, "conditions": [
            {"condition": "model", "attribute_success": 0.61, "identity_kept": 0.93},
            {"condition": "identity", "attribute_success": 0.05, "identity_kept": 1.0}]});
        let m = eval_metrics(&r);
        assert_eq!(m["real_success"], 0.61);
        assert_eq!(m["real_success_identity"], 0.05);
        assert_eq!(m["real_identity_kept"], 0.93);
        assert_eq!(m["real_faces"], 200.0);
        let mut s = String::new();
        write_eval(&mut s, &r);
        assert!(s.contains("| model | 61.0 % | 93.0 % | — |"), "{s}");
        assert!(s.contains("+56.0 points"), "{s}");
        let r = serde_json::json!({"conditions": [
            {"condition": "model", "attribute_success": 0.5, "identity_kept": 1.0, "psnr_outside_region": null},
            {"condition": "blurred input", "attribute_success": 0.1, "identity_kept": 0.9, "psnr_outside_region": 26.0}]});
        let mut s = String::new();
        write_eval(&mut s, &r);
        assert!(
            s.contains("| model | 50.0 % | 100.0 % | ∞ |") && s.contains("26.00 dB"),
            "{s}"
        );
    }
}
