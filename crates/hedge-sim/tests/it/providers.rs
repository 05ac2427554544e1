use crate::data;
use hedge_sim::outage::fit_incidents_file;
use hedge_sim::spot::{Convention, SpotTrace};

#[test]
fn outage_fit_on_the_real_incidents() {
    let f = data().join("llm-service-outages/data/clean/incident/2024-08-31/incident_stages.csv");
    let fits = fit_incidents_file(&f, 2).unwrap();
    let names: Vec<&str> = fits.iter().map(|f| f.provider.as_str()).collect();
    assert_eq!(names, ["anthropic", "character", "openai"]);
    for fit in &fits {
        eprintln!(
            "{}: {} incidents, MTBF {:.1} d, TTR lognormal mu {:.2} sigma {:.2} (mean {:.2} h, median {:.2} h)",
            fit.provider, fit.incidents, fit.mtbf_s / 86_400.0, fit.ttr_mu, fit.ttr_sigma, fit.ttr_mean_s / 3600.0, fit.ttr_median_s / 3600.0
        );
        // The data README's ranges: MTTR 2-4 h on average per service, MTBF 4-40 days.
        assert!((4.0..=40.0).contains(&(fit.mtbf_s / 86_400.0)), "{fit:?}");
        assert!(
            fit.ttr_mean_s / 3600.0 > 1.0 && fit.ttr_mean_s / 3600.0 < 4.0,
            "{fit:?}"
        );
        assert!(
            fit.ttr_median_s < fit.ttr_mean_s,
            "repair times are heavy-tailed"
        );
    }
    let all = fit_incidents_file(&f, 0).unwrap();
    assert_eq!(all.iter().map(|f| f.incidents).sum::<usize>(), 542);
}

#[test]
fn every_spot_trace_loads_with_its_convention() {
    let mut n = 0;
    let mut stack = vec![data().join("spot-traces"), data().join("h100-spot/conv")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "json") {
                let t = SpotTrace::load(&p).unwrap();
                let h100 = p.to_string_lossy().contains("h100-spot");
                assert_eq!(
                    t.convention,
                    if h100 {
                        Convention::Preempted
                    } else {
                        Convention::AvailableCount
                    },
                    "{}",
                    p.display()
                );
                assert!(t.gap_s >= 30, "{}", p.display());
                n += 1;
            }
        }
    }
    assert!(n > 200, "{n}");
    // The skynomad README: 76.7% of H100 zone-ticks available over the full probe set (at least one of 16 launched).
    let dir = data().join("h100-spot/conv/converted_multi_region_aligned_h100_16_merged");
    let (mut avail, mut ticks) = (0usize, 0usize);
    for e in std::fs::read_dir(dir).unwrap() {
        let zone = e.unwrap().path();
        if !zone.is_dir() {
            continue;
        }
        let t = SpotTrace::load(&zone.join("full.json")).unwrap();
        avail += t.available.iter().filter(|&&a| a > 0).count();
        ticks += t.available.len();
    }
    let share = avail as f64 / ticks as f64;
    assert!((share - 0.767).abs() < 0.01, "{share}");
    // spot-traces: a 16-node availability trace counts instances.
    let t = SpotTrace::load(
        &data().join("spot-traces/availability/16-node/aws-08-27-2023/us-west-2c_v100_1.json"),
    )
    .unwrap();
    assert!(t.available.iter().any(|&a| a > 1));
}
