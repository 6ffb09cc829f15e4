//! `diat eval synth`: transfer quality against exact counterfactuals (issue 4).

use anyhow::Result;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
    rest: Vec<String>,
}

pub fn run(_args: Args) -> Result<ExitCode> {
    super::pending("eval")
}
