//! hedge-sim's integration tests: loaders on the real files in `../shared/data`, whole-run properties.

mod deadline;
mod engine;
mod fixtures;
mod loaders;
mod providers;
mod render;

use std::path::PathBuf;

/// `<repo>/../shared/data`, where the real public data sets live. A test that needs them fails when they
/// are missing, saying where they are expected; it never passes silently.
pub fn data() -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data");
    assert!(p.is_dir(), "missing test data: the real public data sets are expected at {} (../shared/data beside the repository)", p.display());
    p
}
