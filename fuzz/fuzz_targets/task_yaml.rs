//! Fuzz the SkyPilot task YAML parser: any input gives a task or an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(parsed) = hedge_core::task_yaml::parse(text) {
            // A parsed task upholds TaskSpec's invariants.
            assert!(parsed.task.num_nodes >= 1);
            assert!(!parsed.task.resources.is_empty());
            for r in &parsed.task.resources {
                assert!(r.accelerators.as_ref().is_none_or(|a| a.count >= 1));
            }
        }
    }
});
