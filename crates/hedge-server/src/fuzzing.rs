//! The body of the `submission` fuzz target (`fuzz/fuzz_targets/submission.rs`), here so that a plain test
//! (`submit::tests::fuzz_checks_over_seeds`) runs it on stable Rust too. Not part of the supported API.

use crate::submit::parse;
use hedge_core::Accelerator;
use std::collections::BTreeSet;
use std::sync::OnceLock;

/// The accelerators the fuzzed broker knows.
fn known() -> &'static BTreeSet<Accelerator> {
    static KNOWN: OnceLock<BTreeSet<Accelerator>> = OnceLock::new();
    KNOWN.get_or_init(|| {
        ["H100", "A100", "L4"]
            .iter()
            .filter_map(|a| Accelerator::parse(a).ok())
            .collect()
    })
}

/// Feeds `body` to the job-submission parser and checks what must hold for any body: no panic; an accepted
/// submission has a run command, a non-blank team if any, at least one resource choice, known accelerators
/// and counts of at least 1; a refused one is a 4xx error naming a field (never a 5xx).
pub fn submission(body: &[u8]) {
    let known = known();
    match parse(body, known) {
        Ok(s) => {
            assert!(
                s.spec.run.as_deref().is_some_and(|r| !r.trim().is_empty()),
                "no run command: {s:?}"
            );
            assert!(s.spec.num_nodes >= 1, "{s:?}");
            assert!(!s.spec.resources.is_empty(), "{s:?}");
            for r in &s.spec.resources {
                if let Some(a) = &r.accelerators {
                    assert!(a.count >= 1, "zero accelerators: {s:?}");
                    assert!(
                        known.contains(&a.name),
                        "unknown accelerator accepted: {s:?}"
                    );
                }
            }
            assert!(
                s.team
                    .as_ref()
                    .is_none_or(|t| !t.as_str().trim().is_empty()),
                "blank team: {s:?}"
            );
        }
        Err(e) => {
            assert!(e.status.is_client_error(), "{e:?}");
            assert!(e.field.is_some(), "{e:?}");
        }
    }
}
