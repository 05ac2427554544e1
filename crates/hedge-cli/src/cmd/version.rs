//! `hedge version`: the program's version, as text or JSON.

use super::Format;
use std::io::Write;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let mut out = super::stdout();
    let version = env!("CARGO_PKG_VERSION");
    match args.format {
        Format::Table => writeln!(out, "hedge {version}")?,
        Format::Json => super::write_json(&mut out, &serde_json::json!({ "hedge": version }))?,
    }
    out.flush()?;
    Ok(())
}
