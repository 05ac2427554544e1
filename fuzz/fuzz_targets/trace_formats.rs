//! Fuzz every job-trace parser (Alibaba 2023/2025, Gavel, Sia, native JSONL, Philly distribution): any input
//! gives jobs or a located error, never a panic; the body is `hedge_sim::fuzzing::trace_formats`.
//! Run: cargo +nightly fuzz run trace_formats
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    hedge_sim::fuzzing::trace_formats(data);
});
