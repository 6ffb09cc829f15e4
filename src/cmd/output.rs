//! How evaluation reports leave the binary (a table, and JSON to a file or stdout); shared by
//! `eval synth` and `eval real`.

use anyhow::{Context, Result};
use std::path::Path;

/// Prints a report's table and writes its JSON to `json` ("-": JSON on stdout, the table on
/// stderr).
pub(crate) fn emit(text: &str, report: &impl serde::Serialize, json: Option<&Path>) -> Result<()> {
    let body = serde_json::to_string_pretty(report)? + "\n";
    match json {
        Some(p) if p.as_os_str() == "-" => {
            eprint!("{text}");
            print!("{body}");
        }
        Some(p) => {
            print!("{text}");
            diat_common::write_atomic(p, body.as_bytes())
                .with_context(|| format!("writing {}", p.display()))?;
            println!("report: {}", p.display());
        }
        None => print!("{text}"),
    }
    Ok(())
}
