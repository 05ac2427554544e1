//! The broker's benchmark driver (see bench/broker/run).
//!
//! * `hedge-broker-load submit URL TOKEN REQUESTS CONCURRENCY [PATH]`: POSTs REQUESTS task YAMLs to
//!   `URL/v1/jobs` (or GETs PATH, e.g. `/healthz`, as a baseline) from CONCURRENCY loopback connections and
//!   prints throughput and latency percentiles as one JSON line.
//! * `hedge-broker-load schedule JOBS`: one pure scheduling pass ([`hedge_server::schedule::schedule`]) over
//!   JOBS queued jobs of 20 teams and 6 request shapes, 2 providers, one commitment, quotas; prints its time.
//!
//! A benchmark reads the clock: it is allowed here and nowhere else in this crate but the clock module.

#![allow(clippy::disallowed_methods)]

use hedge_core::{
    AccelRequest, Accelerator, Commitment, CommitmentId, JobId, Money, ProviderId, Rate,
    ResourceRequest, TaskSpec, TeamId, Timestamp,
};
use hedge_placement::OwnedCapacity;
use hedge_server::schedule::{schedule, Decision, ProviderView, QueuedJob, Snapshot, TeamView};
use hedge_server::ProviderConfig;
use hedge_store::TeamQuota;
use std::collections::HashMap;
use std::time::{Duration, Instant};

#[derive(clap::Parser, Debug)]
#[command(
    name = "hedge-broker-load",
    about = "The broker's benchmark driver (see bench/broker/run)"
)]
enum Cmd {
    /// POST REQUESTS task YAMLs to URL/v1/jobs (or GET PATH) from CONCURRENCY connections; prints one JSON line.
    Submit {
        /// The broker, e.g. http://127.0.0.1:8080.
        url: String,
        /// A bearer token.
        token: String,
        /// Requests in all.
        requests: usize,
        /// Connections at once.
        concurrency: usize,
        /// GET this path (e.g. /healthz) instead of submitting, as a baseline.
        get_path: Option<String>,
    },
    /// One pure scheduling pass over JOBS queued jobs; prints its time.
    Schedule {
        /// Queued jobs.
        jobs: usize,
    },
}

fn main() {
    match <Cmd as clap::Parser>::parse() {
        Cmd::Submit {
            url,
            token,
            requests,
            concurrency,
            get_path,
        } => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(submit(url, token, requests, concurrency.max(1), get_path));
        }
        Cmd::Schedule { jobs } => sched(jobs),
    }
}

async fn submit(url: String, token: String, n: usize, c: usize, get_path: Option<String>) {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(c)
        .build()
        .unwrap();
    let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..c {
        let (http, url, token, next, get_path) = (
            http.clone(),
            url.clone(),
            token.clone(),
            next.clone(),
            get_path.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut errors = 0usize;
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= n {
                    break;
                }
                let t = Instant::now();
                let req = match &get_path {
                    Some(p) => http.get(format!("{url}{p}")),
                    None => http.post(format!("{url}/v1/jobs")).body(format!(
                        "name: bench-{i}\nteam: bench\npriority: {}\nresources: {{accelerators: H100:{}}}\nrun: echo {i}\n",
                        i % 3,
                        1 + i % 4
                    )),
                };
                match req.bearer_auth(&token).send().await {
                    Ok(r) if r.status().is_success() => {
                        let _ = r.bytes().await;
                        lat.push(t.elapsed());
                    }
                    _ => errors += 1,
                }
            }
            (lat, errors)
        }));
    }
    let mut lat = Vec::with_capacity(n);
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await.unwrap();
        lat.extend(l);
        errors += e;
    }
    let secs = started.elapsed().as_secs_f64();
    lat.sort();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    let ms = |d: Duration| (d.as_secs_f64() * 1e5).round() / 100.0;
    println!(
        "{}",
        serde_json::json!({
            "requests": n, "ok": lat.len(), "errors": errors, "concurrency": c, "seconds": (secs * 1000.0).round() / 1000.0,
            "per_second": (lat.len() as f64 / secs).round(), "p50_ms": ms(pct(0.50)), "p90_ms": ms(pct(0.90)),
            "p99_ms": ms(pct(0.99)), "max_ms": ms(lat.last().copied().unwrap_or_default()),
        })
    );
}

fn sched(jobs: usize) {
    let h100 = Accelerator::parse("H100").unwrap();
    let providers_cfg = vec![
        ProviderConfig::local(
            "a",
            64,
            h100.clone(),
            Rate::from_usd_per_hour_f64(2.0).unwrap(),
        ),
        {
            let mut b = ProviderConfig::local(
                "b",
                64,
                h100.clone(),
                Rate::from_usd_per_hour_f64(2.5).unwrap(),
            );
            if let hedge_server::Sells::Owned {
                spot_per_gpu_hour, ..
            } = &mut b.sells
            {
                *spot_per_gpu_hour = Some(Rate::from_usd_per_hour_f64(1.0).unwrap());
            }
            b
        },
    ];
    let catalog = hedge_server::local_catalog(&providers_cfg);
    let commitment = Commitment {
        id: CommitmentId::new("c1"),
        provider: ProviderId::parse("b"),
        accelerator: h100.clone(),
        region: None,
        gpus: 16,
        per_gpu_hour: Rate::from_usd_per_hour_f64(1.5).unwrap(),
        start: Timestamp::from_unix(0),
        end: Timestamp::from_unix(i64::MAX / 2),
    };
    let owned = vec![OwnedCapacity {
        commitment: commitment.id.clone(),
        provider: commitment.provider.clone(),
        accelerator: h100.clone(),
        region: None,
        free_gpus: commitment.gpus,
        marginal_per_gpu_hour: Rate::ZERO,
    }];
    let teams: HashMap<TeamId, TeamView> = (0..20)
        .map(|t| {
            let quotas = if t % 2 == 0 {
                vec![TeamQuota {
                    provider: None,
                    accelerator: Some(h100.clone()),
                    max_gpus: 16,
                }]
            } else {
                vec![]
            };
            let view = TeamView {
                quotas,
                monthly_budget: Some(Money::from_usd(10_000)),
                spent: Money::ZERO,
                allow_preemption: t % 3 == 0,
            };
            (TeamId::new(format!("team-{t}")), view)
        })
        .collect();
    let queue: Vec<QueuedJob> = (0..jobs)
        .map(|i| {
            let mut r = ResourceRequest {
                accelerators: Some(AccelRequest::new(h100.clone(), [1, 2, 4, 8][i % 4])),
                ..Default::default()
            };
            if i % 6 == 5 {
                r.spot = hedge_core::SpotPref::Allowed;
            }
            let mut spec = TaskSpec::single(r);
            spec.name = Some(format!("job-{i}"));
            spec.run = Some("true".into());
            QueuedJob {
                id: JobId(i as u64 + 1),
                team: TeamId::new(format!("team-{}", i % 20)),
                priority: (i % 5) as i32,
                deadline: None,
                spec: spec.into(),
            }
        })
        .collect();
    let providers: Vec<ProviderView> = providers_cfg
        .iter()
        .map(|p| ProviderView {
            id: p.name.clone(),
            accelerator: p.accelerator().cloned(),
            gpus_total: p.gpus(),
            max_nodes: (1, None),
            gpus_in_use: 0,
            unusable: None,
        })
        .collect();
    let snap = Snapshot {
        catalog: &catalog,
        providers,
        owned,
        teams,
        running: vec![],
        queue,
        reserved: vec![],
        reserve_seconds: 3600,
    };
    let mut best = Duration::MAX;
    let mut launched = 0;
    for _ in 0..5 {
        let t = Instant::now();
        let d = schedule(&snap);
        best = best.min(t.elapsed());
        launched = d
            .iter()
            .filter(|d| matches!(d, Decision::Launch { .. }))
            .count();
    }
    println!(
        "{}",
        serde_json::json!({"queued_jobs": jobs, "launched": launched, "best_of_5_ms": (best.as_secs_f64() * 1e5).round() / 100.0})
    );
}
