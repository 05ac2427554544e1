//! hedge-sim's integration tests: loaders on the real files in `../shared/data`, whole-run properties.

mod engine;
mod fixtures;
mod loaders;
mod providers;
mod render;

use std::path::PathBuf;

/// `<repo>/../shared/data`, where the real public data sets live.
pub fn data() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data")
}
