//! Fuzz the spot-trace, outage-spec, portfolio and incident parsers; the body is
//! `hedge_sim::fuzzing::trace_spot`. Run: cargo +nightly fuzz run trace_spot
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    hedge_sim::fuzzing::trace_spot(data);
});
