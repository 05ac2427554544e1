//! The body of the `catalog_csv` fuzz target (`fuzz/fuzz_targets/catalog_csv.rs`), here so that a plain
//! test can run it over the seed corpus on stable Rust. Not part of the supported API.

use crate::{import_skypilot, native, pylit, CloudFile, Overrides};
use hedge_core::ProviderId;
use std::sync::OnceLock;

const PROVIDERS: [&str; 6] = ["aws", "gcp", "azure", "lambda", "nebius", "oci"];

/// Feeds `data` to every parser of outside input in this crate and checks what must hold for any input:
/// no panic; every loaded offer has a price, a non-empty instance type and region, and accelerator counts
/// of at least 1; every diagnostic that names a line names one inside the input.
///
/// The first byte picks the cloud (so the GCP join is fuzzed too); the rest is the `vms.csv`.
pub fn catalog_csv(data: &[u8]) {
    let Some((&first, csv)) = data.split_first() else {
        return;
    };
    let provider = ProviderId::parse(PROVIDERS[first as usize % PROVIDERS.len()]);
    static OVERRIDES: OnceLock<Overrides> = OnceLock::new();
    let overrides =
        OVERRIDES.get_or_init(|| Overrides::embedded().unwrap_or_else(|_| Overrides::none()));
    let files = [CloudFile {
        provider,
        label: "fuzz/vms.csv".into(),
        bytes: csv,
    }];
    let loaded = import_skypilot(&files, Some(csv), overrides);
    let lines = csv.iter().filter(|&&b| b == b'\n' || b == b'\r').count() as u64 + 1;
    for o in loaded.catalog.offers() {
        assert!(
            o.prices.on_demand.is_some() || o.prices.spot.is_some(),
            "offer without a price: {o:?}"
        );
        assert!(
            !o.location.region().as_str().is_empty(),
            "offer without a region: {o:?}"
        );
        assert!(
            o.accelerator.as_ref().is_none_or(|a| a.count >= 1),
            "zero accelerators: {o:?}"
        );
        assert!(
            !o.instance_type.is_empty(),
            "offer without an instance type: {o:?}"
        );
    }
    for d in &loaded.diagnostics {
        if let Some(l) = d.line {
            assert!(
                l <= lines,
                "diagnostic line {l} beyond the input's {lines} lines: {d}"
            );
        }
        let _ = d.to_string();
    }
    if let Ok(text) = std::str::from_utf8(csv) {
        let _ = pylit::parse(text);
        if let Ok((cat, meta, _)) = native::parse("fuzz.json", text) {
            // Whatever loads, writes and loads back to the same catalog.
            let again = native::write(&cat, &meta);
            let (back, _, diags) = native::parse("again.json", &again)
                .unwrap_or_else(|e| panic!("rewritten catalog unreadable: {e}"));
            assert!(diags.is_empty(), "{diags:?}");
            assert_eq!(back.offers(), cat.offers());
        }
    }
}
