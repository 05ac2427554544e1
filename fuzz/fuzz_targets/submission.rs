//! Fuzz the broker's job-submission parser (`hedge_server::submit::parse`, the body of `POST /v1/jobs`):
//! any body gives a submission that upholds its invariants or a 4xx error naming a field, never a panic.
//! The body lives in `hedge_server::fuzzing::submission` so a stable test runs it over seeds too.
//! Run: cargo +nightly fuzz run submission
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    hedge_server::fuzzing::submission(data);
});
