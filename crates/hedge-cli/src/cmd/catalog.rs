//! `hedge catalog ...`: inspect catalogs.

use super::Format;
use anyhow::Context;
use std::io::Write;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Load a catalog (SkyPilot v8 directory, vms.csv, or native file) and report counts and problems.
    /// Exits with 1 when rows had to be skipped.
    Check {
        path: PathBuf,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
}

pub fn run(args: Args) -> anyhow::Result<()> {
    match args.command {
        Command::Check { path, format } => check(path, format),
    }
}

fn check(path: PathBuf, format: Format) -> anyhow::Result<()> {
    let report = hedge_catalog::check(&path)
        .with_context(|| format!("checking catalog {}", path.display()))?;
    let mut out = super::stdout();
    match format {
        Format::Table => write!(out, "{report}")?,
        Format::Json => super::write_json(&mut out, &report)?,
    }
    out.flush()?;
    if !report.is_ok() {
        anyhow::bail!(
            "{}: {} malformed row(s) skipped",
            path.display(),
            report.errors
        );
    }
    Ok(())
}
