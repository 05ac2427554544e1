//! Builds Hedge's curated default catalog, `data/catalog.json`, from a SkyPilot v8 catalog directory and
//! `data/extras.yaml`, applying `data/overrides.yaml`.
//!
//! Usage (from the repository root):
//!     cargo run -p hedge-catalog --example build-default-catalog -- ../shared/data/skypilot-catalog/v8 data/
//!
//! Prints every diagnostic of the import, then the counts. A test (`default_catalog_is_reproducible`)
//! checks that the committed file equals this command's output.

use hedge_catalog::{curate, Overrides, SkyPilotDir};
use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [src, out] = args.as_slice() else {
        eprintln!("usage: build-default-catalog SKYPILOT_V8_DIR DATA_DIR");
        return ExitCode::from(2);
    };
    match run(PathBuf::from(src), PathBuf::from(out)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            let mut s = std::error::Error::source(&*e);
            while let Some(c) = s {
                eprintln!("  caused by: {c}");
                s = c.source();
            }
            ExitCode::FAILURE
        }
    }
}

fn run(src: PathBuf, data: PathBuf) -> Result<(), Box<dyn std::error::Error>> {
    let dir = SkyPilotDir::read(&src)?;
    let overrides = Overrides::parse(
        "data/overrides.yaml",
        &std::fs::read_to_string(data.join("overrides.yaml"))?,
    )?;
    let extras = curate::parse_extras(
        "data/extras.yaml",
        &std::fs::read_to_string(data.join("extras.yaml"))?,
    )?;
    let (json, loaded) = curate::build_json(
        &dir.files(),
        dir.accelerators.as_deref(),
        &overrides,
        &extras,
    );
    for d in &loaded.diagnostics {
        eprintln!("{d}");
    }
    let out = data.join("catalog.json");
    std::fs::write(&out, json)?;
    print!(
        "{}",
        hedge_catalog::CheckReport::new(&out.display().to_string(), &loaded)
    );
    Ok(())
}
