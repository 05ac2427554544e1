//! Fuzz the catalog parsers (SkyPilot v8 `vms.csv` import with the GCP join and overrides, Python-literal
//! `GpuInfo`, the native JSON format): any input gives offers and located diagnostics, never a panic.
//! The body lives in `hedge_catalog::fuzzing::catalog_csv` so a stable test runs it over the seeds too.
//! Run: cargo +nightly fuzz run catalog_csv fuzz/corpus/catalog_csv crates/hedge-catalog/tests/fuzz-seeds
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    hedge_catalog::fuzzing::catalog_csv(data);
});
