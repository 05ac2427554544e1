//! Fuzz the broker's job-submission parser (`hedge_server::submit::parse`, the body of `POST /v1/jobs`):
//! any body gives a submission or a 4xx error naming a field, never a panic and never a 5xx.
//! `crates/hedge-server/src/submit.rs`'s test `fuzz_checks_over_seeds` runs the same checks on stable.
#![no_main]

use hedge_core::Accelerator;
use hedge_server::submit::parse;
use libfuzzer_sys::fuzz_target;
use std::collections::BTreeSet;
use std::sync::OnceLock;

fn known() -> &'static BTreeSet<Accelerator> {
    static KNOWN: OnceLock<BTreeSet<Accelerator>> = OnceLock::new();
    KNOWN.get_or_init(|| ["H100", "A100", "L4"].iter().map(|a| Accelerator::parse(a).unwrap()).collect())
}

include!("../../crates/hedge-server/src/submit/fuzz_check.rs");

fuzz_target!(|data: &[u8]| fuzz_check(data, known()));
