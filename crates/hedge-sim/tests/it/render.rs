use crate::fixtures::{commitment, three_clouds};
use expect_test::{expect, Expect};
use hedge_core::Accelerator;
use hedge_sim::outage::Outage;
use hedge_sim::{render, simulate, JobSpec, SimConfig};

fn reports(policies: &[&str]) -> Vec<hedge_sim::Report> {
    let catalog = three_clouds();
    // Twelve 8-GPU jobs of 10 hours, one an hour, checkpointing every 30 min; aws down for hours 3 to 9.
    let jobs: Vec<JobSpec> = (0..12)
        .map(|i| {
            let mut j = JobSpec::batch(i, i as i64 * 3600, 36_000, 8);
            j.checkpoint_interval_s = Some(1800);
            j
        })
        .collect();
    let reports: Vec<_> = policies
        .iter()
        .map(|p| {
            let mut cfg = SimConfig::new(
                p.parse().unwrap(),
                vec![Accelerator::parse("H100").unwrap()],
            );
            cfg.commitments = vec![commitment("aws", 32, 2.0)];
            cfg.outages = vec![Outage {
                provider: "aws".into(),
                start: 3 * 3600,
                end: 9 * 3600,
            }];
            cfg.horizon = Some(2 * 86_400);
            simulate(&catalog, jobs.clone(), &cfg).unwrap()
        })
        .collect();
    reports
}

fn check(policies: &[&str], expect: Expect) {
    expect.assert_eq(&render::table(&reports(policies)));
}

#[test]
fn html_is_one_self_contained_page_with_a_chart_per_policy_and_the_cost_chart() {
    let html = render::html(&reports(&["lock-in", "hedge"]));
    assert!(html.starts_with("<!DOCTYPE html>\n") && html.ends_with("</body></html>\n"));
    assert_eq!(
        html.matches("<svg ").count(),
        3,
        "GPUs per provider for each policy, then cumulative cost"
    );
    assert_eq!(
        html.matches("<svg ").count(),
        html.matches("</svg>").count()
    );
    assert_eq!(
        html.matches(r#"<rect class="outage""#).count(),
        2,
        "the aws outage is shaded in both GPU charts"
    );
    assert!(
        !html.contains("<script") && !html.contains("src=") && !html.contains("href="),
        "no external assets"
    );
    assert!(html.contains("<title>GPUs in use per provider, lock-in</title>"));
}

#[test]
fn side_by_side_table() {
    check(
        &["lock-in", "cheapest-failover", "hedge"],
        expect![[r#"
        policy                                                          lock-in         cheapest-failover                   hedge
        jobs submitted                                                       12                        12                      12
          finished                                                           12                        12                      12
          failed                                                              0                         0                       0
          running / waiting                                               0 / 0                     0 / 0                   0 / 0
        total cost                                                    $5,632.00                 $5,088.00               $5,088.00
          aws                                                         $5,632.00                 $3,072.00               $3,072.00
          lambda                                                          $0.00                 $2,016.00               $2,016.00
          committed                                                   $3,072.00                 $3,072.00               $3,072.00
          on-demand                                                   $2,560.00                 $2,016.00               $2,016.00
          spot                                                            $0.00                     $0.00                   $0.00
        commitment utilization                                            20.8%                     18.8%                   18.8%
        commitment waste                                              $2,432.00                 $2,496.00               $2,496.00
        JCT mean / p50 / p99                           13.25h / 12.91h / 15.90h  10.12h / 10.16h / 10.16h  10.00h / 9.96h / 9.96h
        queueing mean / p99                                       1.75h / 6.00h             0.08h / 0.17h           0.00h / 0.00h
        deadline misses                                                  0 of 0                    0 of 0                  0 of 0
        lost GPU-hours                                                      0.0                       0.0                     0.0
        preemptions / outage kills                                        0 / 3                     0 / 3                   0 / 3
        failed launches                                                       0                         9                       0
        served during aws outage 2027-01-01T03:00:00Z                      0.0%                     96.2%                  100.0%
        events                                                               79                        88                      79
    "#]],
    );
}
