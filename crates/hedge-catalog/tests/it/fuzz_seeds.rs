//! Runs the `catalog_csv` fuzz target's body over its seed corpus (and mutations of it), so the target's
//! invariants are checked on stable Rust in every test run. The long runs use cargo-fuzz on nightly:
//! `cargo +nightly fuzz run catalog_csv fuzz/corpus/catalog_csv crates/hedge-catalog/tests/fuzz-seeds`.

use hedge_catalog::fuzzing::catalog_csv;
use proptest::prelude::*;
use std::path::PathBuf;

fn seeds() -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-seeds");
    let mut v: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn seed_corpus_upholds_the_invariants() {
    let s = seeds();
    assert!(s.len() >= 7);
    for (name, bytes) in &s {
        eprintln!("seed {name}");
        catalog_csv(bytes);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    /// Arbitrary bytes, and seeds with arbitrary byte edits (which keep the CSV shape mostly intact and so
    /// reach deeper than random bytes do).
    #[test]
    fn arbitrary_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..600)) {
        catalog_csv(&data);
    }

    #[test]
    fn mutated_seeds_never_panic(which in 0usize..7, edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..12)) {
        let mut bytes = seeds()[which].1.clone();
        for (at, b) in edits {
            let i = at.index(bytes.len());
            bytes[i] = b;
        }
        catalog_csv(&bytes);
    }
}
