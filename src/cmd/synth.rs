//! `diat data synth` and `diat bench synth`: synthetic CelebA-format faces (issue 4).

use anyhow::Result;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
    rest: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
    rest: Vec<String>,
}

pub fn run(_args: Args) -> Result<ExitCode> {
    super::pending("data synth")
}

pub fn bench(_args: BenchArgs) -> Result<ExitCode> {
    super::pending("bench synth")
}
