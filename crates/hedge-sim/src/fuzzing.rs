//! Bodies of the fuzz targets (`fuzz/fuzz_targets/trace_*.rs`), kept here so a stable test can run them
//! over seed inputs too. Every parser of outside input must return a value or an error, never panic, and
//! what it returns must uphold the types' invariants.

use crate::trace::{self, PhillyDist, TraceKind, TraceOptions};
use std::path::Path;

const KINDS: [TraceKind; 5] = [
    TraceKind::Alibaba2023,
    TraceKind::Gavel,
    TraceKind::Sia,
    TraceKind::Alibaba2025,
    TraceKind::Native,
];

/// Trace files of every kind. The first byte picks the kind and whether to skip bad lines.
pub fn trace_formats(data: &[u8]) {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let kind = KINDS[sel as usize % KINDS.len()];
    let opts = TraceOptions {
        skip_bad: sel & 0x80 != 0,
        durations_from: Some(PhillyDist::from_pairs(vec![(60, 1), (3600, 8)])),
        ..TraceOptions::default()
    };
    if let Ok(t) = trace::parse(kind, Path::new("fuzz"), text, &opts) {
        assert!(
            t.jobs.windows(2).all(|w| w[0].submit <= w[1].submit),
            "sorted by submit"
        );
        for j in &t.jobs {
            assert!(j.gpus >= 1 && j.duration_s >= 1 && j.num_nodes >= 1 && j.submit >= 0);
            assert!((j.accel.0 as usize) < t.accels.len() && (j.team.0 as usize) < t.teams.len());
        }
        assert!(t.skipped_count == 0 || opts.skip_bad);
        // Whatever was read survives a round trip through the native format.
        let back = trace::parse(
            TraceKind::Native,
            Path::new("fuzz"),
            &trace::native::write(&t),
            &TraceOptions::default(),
        )
        .expect("own output parses");
        assert_eq!(back.jobs.len(), t.jobs.len());
    }
    let _ = PhillyDist::parse(Path::new("fuzz"), text, sel & 1 == 0);
}

/// Spot traces, outage specs, portfolios and incident files.
pub fn trace_spot(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(t) = crate::spot::SpotTrace::parse(Path::new("fuzz"), text) {
        assert!(t.gap_s >= 1 && !t.available.is_empty());
        let _ = t.available_at(i64::MAX / 2);
        let ch = t.changes();
        assert!(ch.windows(2).all(|w| w[0].0 < w[1].0));
    }
    if let Ok(o) = text.parse::<crate::outage::OutageSpec>() {
        assert!(o.duration_s > 0);
    }
    if let Ok(cs) = crate::portfolio::parse(Path::new("fuzz"), text) {
        assert!(cs.iter().all(|c| c.end > c.start && c.gpus >= 1));
    }
    let _ = crate::outage::fit_incidents(Path::new("fuzz"), text, 0);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn seeds() {
        let alibaba = "\u{0}name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,creation_time,deletion_time,scheduled_time\np,1,1,2,1000,T4,LS,Running,5,10,6\n";
        trace_formats(alibaba.as_bytes());
        trace_formats(b"\x01A\tcmd\t-s\t1\t100\t3.0\t4\n");
        trace_formats(b"\x84{\"format\":\"hedge-trace\",\"version\":1}\n{\"submit_s\":1,\"duration_s\":2,\"gpus\":3}\nnope\n");
        trace_spot(br#"{"metadata":{"gap_seconds":60},"data":[0,1,1]}"#);
        trace_spot(b"aws@2027-01-01T00:00+1h");
    }

    proptest! {
        #[test]
        fn never_panics(data in proptest::collection::vec(any::<u8>(), 0..400)) {
            trace_formats(&data);
            trace_spot(&data);
        }
        #[test]
        fn never_panics_on_near_valid_csv(lines in proptest::collection::vec("[0-9a-zA-Z,.|\\t -]{0,60}", 0..8), sel in any::<u8>()) {
            let header = ["name,num_gpu,gpu_milli,creation_time,deletion_time,scheduled_time", "name,time,application,num_replicas,batch_size", "", "instance_sn,gpu_request,app_name,creation_time,scheduled_time,deletion_time", "{\"format\":\"hedge-trace\",\"version\":1}"][sel as usize % 5];
            let mut text = vec![sel];
            text.extend(format!("{header}\n{}", lines.join("\n")).into_bytes());
            trace_formats(&text);
        }
    }
}
