//! hedge-catalog integration tests: one binary, one module per subject.

mod csv_props;
mod default_catalog;
mod fuzz_seeds;
mod native;
mod quirks;
mod real_data;

use hedge_catalog::{Diagnostic, Loaded};
use hedge_core::Offer;
use std::fmt::Write as _;
use std::path::PathBuf;

/// `<repo>/../shared/data`, where the real public data sets live.
pub fn shared_data() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data")
}

/// `shared_data()/rel`, which must exist: a test whose data is missing fails and says what is missing and
/// where it is expected; it never passes silently.
pub fn require_data(rel: &str) -> PathBuf {
    let p = shared_data().join(rel);
    assert!(
        p.exists(),
        "missing test data: {rel} is expected at {} (the real public data sets live in ../shared/data beside the repository)",
        p.display()
    );
    p
}

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// One line per offer: provider, instance type, accelerator, location, prices.
pub fn render_offer(o: &Offer) -> String {
    let acc = o
        .accelerator
        .as_ref()
        .map_or("-".to_owned(), ToString::to_string);
    let p = |r: Option<hedge_core::Rate>| r.map_or("-".to_owned(), |r| r.hourly().to_string());
    let mut s = format!(
        "{} {} {} {} od={} spot={}",
        o.provider,
        o.instance_type,
        acc,
        o.location,
        p(o.prices.on_demand),
        p(o.prices.spot)
    );
    if let Some(v) = o.vcpus_milli {
        let _ = write!(s, " vcpus={}", v as f64 / 1000.0);
    }
    if let Some(m) = o.memory_mib {
        let _ = write!(s, " mem={m}MiB");
    }
    for c in &o.prices.committed {
        let _ = write!(s, " c{}={}", c.term_months, c.per_gpu_hour.hourly());
    }
    s
}

pub fn render(loaded: &Loaded) -> String {
    let mut s = String::new();
    for o in loaded.catalog.offers() {
        s.push_str(&render_offer(o));
        s.push('\n');
    }
    for d in &loaded.diagnostics {
        s.push_str(&render_diag(d));
        s.push('\n');
    }
    s
}

pub fn render_diag(d: &Diagnostic) -> String {
    d.to_string()
}
