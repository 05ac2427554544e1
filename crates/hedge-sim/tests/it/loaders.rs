use crate::data;
use hedge_sim::trace::{self, PhillyDist, TraceKind, TraceOptions, TraceSpec};

fn opts() -> TraceOptions {
    TraceOptions {
        durations_from: Some(
            PhillyDist::load(
                &data().join("philly-derived/philly_job_distribution.csv"),
                false,
            )
            .unwrap(),
        ),
        ..TraceOptions::default()
    }
}

#[test]
fn alibaba_2023_pod_lists() {
    for (f, jobs) in [
        ("openb_pod_list_default.csv", 6000usize),
        ("openb_pod_list_gpuspec33.csv", 6000),
    ] {
        let spec = TraceSpec {
            kind: TraceKind::Alibaba2023,
            path: data().join("alibaba-gpu-v2023/csv").join(f),
        };
        let t = trace::load(&spec, &TraceOptions::default()).unwrap();
        let excluded: u64 = t.excluded.values().sum();
        assert_eq!(
            t.jobs.len() as u64 + excluded,
            8152,
            "{f}: every pod is a job or counted"
        );
        assert!(t.jobs.len() > jobs, "{f}: {}", t.jobs.len());
        assert!(t.jobs.windows(2).all(|w| w[0].submit <= w[1].submit));
        if f.contains("gpuspec") {
            assert!(
                t.accels.iter().any(|a| a.as_str() == "T4"),
                "{:?}",
                t.accels
            );
        }
    }
    // The multigpu50 sample has no time columns: an error naming the column.
    let spec = TraceSpec {
        kind: TraceKind::Alibaba2023,
        path: data().join("alibaba-gpu-v2023/csv/openb_pod_list_multigpu50.csv"),
    };
    let e = trace::load(&spec, &TraceOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("missing column \"creation_time\""), "{e}");
}

#[test]
fn gavel_traces_and_philly_distribution() {
    let dist = PhillyDist::load(
        &data().join("philly-derived/philly_job_distribution.csv"),
        false,
    )
    .unwrap();
    assert_eq!(dist.pairs.len(), 33_192);
    let mut total = 0;
    for e in std::fs::read_dir(data().join("philly-derived/traces/seed=0")).unwrap() {
        let p = e.unwrap().path();
        let t = trace::load(
            &TraceSpec {
                kind: TraceKind::Gavel,
                path: p.clone(),
            },
            &opts(),
        )
        .unwrap();
        let lines = std::fs::read_to_string(&p)
            .unwrap()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .count();
        assert_eq!(t.jobs.len(), lines, "{}", p.display());
        assert!(t.jobs.iter().all(|j| (1..=64).contains(&j.gpus)));
        total += t.jobs.len();
    }
    assert_eq!(total, 15_264);
}

#[test]
fn sia_workloads() {
    for sub in ["philly", "saturn"] {
        for e in std::fs::read_dir(data().join("sia-workloads").join(sub)).unwrap() {
            let p = e.unwrap().path();
            let t = trace::load(
                &TraceSpec {
                    kind: TraceKind::Sia,
                    path: p.clone(),
                },
                &opts(),
            )
            .unwrap();
            assert_eq!(t.jobs.len(), 160, "{}", p.display());
            assert!(t.teams.len() > 2);
        }
    }
    let e = trace::load(
        &TraceSpec {
            kind: TraceKind::Sia,
            path: data().join("sia-workloads/philly/workload-1.csv"),
        },
        &TraceOptions::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("carry no job durations"), "{e}");
}

#[test]
fn alibaba_2025_serving() {
    let spec = TraceSpec {
        kind: TraceKind::Alibaba2025,
        path: data().join("alibaba-gpu-v2025-dlrm/disaggregated_DLRM_trace.csv"),
    };
    let t = trace::load(&spec, &TraceOptions::default()).unwrap();
    assert_eq!(t.jobs.len(), 7_386);
    assert_eq!(t.excluded["cpu-only instance"], 16_485);
    assert!(t.jobs.iter().all(|j| j.kind == hedge_sim::JobKind::Service));
    assert!(t.teams.len() > 50, "{}", t.teams.len());
}

#[test]
fn native_round_trip_of_a_real_trace() {
    let spec = TraceSpec {
        kind: TraceKind::Alibaba2023,
        path: data().join("alibaba-gpu-v2023/csv/openb_pod_list_gpuspec33.csv"),
    };
    let t = trace::load(&spec, &TraceOptions::default()).unwrap();
    let text = trace::native::write(&t);
    let back = trace::parse(
        TraceKind::Native,
        std::path::Path::new("x.jsonl"),
        &text,
        &TraceOptions::default(),
    )
    .unwrap();
    assert_eq!(back.jobs, t.jobs);
}

#[test]
fn synthetic_philly_shaped() {
    let mut o = opts();
    o.synthetic.jobs = 200_000;
    let dist = o.durations_from.clone().unwrap();
    let jobs: Vec<_> = trace::Synthetic::new(dist.clone(), &o).collect();
    assert_eq!(jobs.len(), 200_000);
    // The GPU-count mix matches the data's within 1 percentage point.
    let share = |v: &mut dyn Iterator<Item = u32>, n: usize| {
        v.filter(|&g| g == 1).count() as f64 / n as f64
    };
    let data_share = share(&mut dist.pairs.iter().map(|p| p.1), dist.pairs.len());
    let gen_share = share(&mut jobs.iter().map(|j| j.gpus), jobs.len());
    assert!(
        (data_share - gen_share).abs() < 0.01,
        "{data_share} vs {gen_share}"
    );
}
