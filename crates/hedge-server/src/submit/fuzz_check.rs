// The checks of the submission fuzz target, shared through `include!` by `fuzz/fuzz_targets/submission.rs`
// and `submit.rs`'s test `fuzz_checks_over_seeds` (the fuzz crate is outside the workspace and the library
// has no test-only API); the includer has `parse` in scope. Any body gives a submission that upholds its
// invariants, or a 4xx error naming a field: never a panic, never a 5xx.
fn fuzz_check(body: &[u8], known: &std::collections::BTreeSet<hedge_core::Accelerator>) {
    match parse(body, known) {
        Ok(s) => {
            assert!(s.spec.run.as_deref().is_some_and(|r| !r.trim().is_empty()));
            assert!(s.spec.num_nodes >= 1);
            assert!(!s.spec.resources.is_empty());
            for r in &s.spec.resources {
                if let Some(a) = &r.accelerators {
                    assert!(a.count >= 1);
                    assert!(known.contains(&a.name));
                }
            }
            assert!(s.team.as_ref().is_none_or(|t| !t.as_str().trim().is_empty()));
        }
        Err(e) => {
            assert!(e.status.is_client_error(), "{e:?}");
            assert!(e.field.is_some(), "{e:?}");
        }
    }
}
