//! Reports as text for people and as a self-contained HTML page with inline SVG charts drawn with
//! `hedge_render` (no scripts, no external assets). JSON is the `Serialize` form of [`Report`].

use crate::deadline::TraceStudy;
use crate::engine::Report;
use hedge_core::Money;
use hedge_render::{colour, escape as esc, legend, page, Frame};
use std::fmt::Write;

fn hours(s: u64) -> String {
    format!("{:.2}h", s as f64 / 3600.0)
}

/// Side-by-side table of one or more runs (one column per policy).
pub fn table(reports: &[Report]) -> String {
    let mut rows: Vec<(String, Vec<String>)> = Vec::new();
    let mut row = |name: &str, f: &dyn Fn(&Report) -> String| {
        rows.push((name.to_owned(), reports.iter().map(f).collect()))
    };
    row("policy", &|r| r.policy.clone());
    row("jobs submitted", &|r| r.jobs.submitted.to_string());
    row("  finished", &|r| r.jobs.finished.to_string());
    row("  failed", &|r| r.jobs.failed.to_string());
    row("  running / waiting", &|r| {
        format!("{} / {}", r.jobs.running, r.jobs.waiting)
    });
    row("total cost", &|r| r.total_cost.cents_grouped().to_string());
    let mut providers: Vec<&String> = reports
        .iter()
        .flat_map(|r| r.cost_by_provider.keys())
        .collect();
    providers.sort();
    providers.dedup();
    for p in providers {
        let p = p.clone();
        row(&format!("  {p}"), &move |r| {
            r.cost_by_provider
                .get(&p)
                .copied()
                .unwrap_or(Money::ZERO)
                .cents_grouped()
                .to_string()
        });
    }
    for m in ["committed", "on-demand", "spot"] {
        row(&format!("  {m}"), &move |r| {
            r.cost_by_market
                .get(m)
                .copied()
                .unwrap_or(Money::ZERO)
                .cents_grouped()
                .to_string()
        });
    }
    row("commitment utilization", &|r| {
        let (used, paid) = r.commitments.iter().fold((0.0, 0.0), |a, c| {
            (a.0 + c.used_gpu_hours, a.1 + c.paid_gpu_hours)
        });
        if paid > 0.0 {
            format!("{:.1}%", 100.0 * used / paid)
        } else {
            "-".into()
        }
    });
    row("commitment waste", &|r| {
        r.commitments
            .iter()
            .map(|c| c.waste)
            .sum::<Money>()
            .cents_grouped()
            .to_string()
    });
    row("JCT mean / p50 / p99", &|r| {
        format!(
            "{} / {} / {}",
            hours(r.jct.mean_s as u64),
            hours(r.jct.p50_s),
            hours(r.jct.p99_s)
        )
    });
    row("queueing mean / p99", &|r| {
        format!(
            "{} / {}",
            hours(r.queueing_delay.mean_s as u64),
            hours(r.queueing_delay.p99_s)
        )
    });
    row("deadline misses", &|r| {
        format!("{} of {}", r.deadline_misses, r.deadline_jobs)
    });
    row("lost GPU-hours", &|r| format!("{:.1}", r.lost_gpu_hours));
    row("preemptions / outage kills", &|r| {
        format!("{} / {}", r.preemptions, r.outage_kills)
    });
    row("failed launches", &|r| r.failed_launches.to_string());
    let n_out = reports.iter().map(|r| r.outages.len()).max().unwrap_or(0);
    for i in 0..n_out {
        let label = reports
            .iter()
            .find_map(|r| r.outages.get(i))
            .map(|o| format!("served during {} outage {}", o.provider, o.start))
            .unwrap_or_default();
        row(&label, &move |r| {
            r.outages
                .get(i)
                .map_or("-".into(), |o| format!("{:.1}%", 100.0 * o.served_fraction))
        });
    }
    row("events", &|r| r.events.to_string());
    let w0 = rows.iter().map(|r| r.0.chars().count()).max().unwrap_or(0);
    let widths: Vec<usize> = (0..reports.len())
        .map(|i| {
            rows.iter()
                .map(|r| r.1[i].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for (name, cells) in &rows {
        let _ = write!(out, "{name:<w0$}");
        for (c, w) in cells.iter().zip(&widths) {
            let _ = write!(out, "  {c:>w$}");
        }
        out.push('\n');
    }
    out
}

/// The Can't Be Late comparison as a table, one row per trace.
pub fn deadline_table(studies: &[TraceStudy]) -> String {
    let mut out = String::from(
        "trace  avail  starts  on-demand  greedy  uniform-progress  omniscient  UP closes\n",
    );
    for s in studies {
        let name = s
            .trace
            .rsplit('/')
            .take(2)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("/");
        let _ = write!(out, "{name}  {:.1}%  {}", 100.0 * s.availability, s.starts);
        for ((_, c), (_, sv)) in s.mean_cost.iter().zip(&s.savings) {
            let _ = write!(out, "  {c} ({:.1}%)", 100.0 * sv);
        }
        match s.up_gap_closed {
            Some(g) => {
                let _ = writeln!(out, "  {:.0}%", 100.0 * g);
            }
            None => out.push_str("  -\n"),
        }
    }
    out
}

/// A self-contained HTML report: the table, GPUs in use per provider over time for each policy (outages
/// shaded), and cumulative cost per policy. Charts are drawn with `hedge_render`.
pub fn html(reports: &[Report]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "<h1>hedge simulate</h1><p>trace <code>{}</code>, seed {}</p>",
        esc(reports.first().map_or("", |r| r.trace.as_str())),
        reports.first().map_or(0, |r| r.seed)
    );
    let _ = writeln!(out, "<pre>{}</pre>", esc(&table(reports)));
    let x_max = reports.iter().map(|r| r.end_s).max().unwrap_or(1).max(1) as f64;
    let chart = |h: f64, y_max: f64| Frame {
        w: 960.0,
        h,
        left: 70.0,
        bottom: 30.0,
        x0: 0.0,
        x1: x_max,
        y0: 0.0,
        y1: y_max,
    };
    let days = |f: &Frame, out: &mut String| {
        for i in 0..4 {
            let v = x_max * i as f64 / 4.0;
            f.x_label(out, v, &format!("day {:.0}", v / 86_400.0));
        }
        // The last label ends at the right edge rather than centred on it, so it is not clipped.
        f.text(
            out,
            f.right(),
            f.base() + 12.0,
            r#" font-size="10" text-anchor="end""#,
            &format!("day {:.0}", x_max / 86_400.0),
        );
    };
    for r in reports {
        let _ = writeln!(
            out,
            "<h2>GPUs in use per provider — {}</h2>",
            esc(&r.policy)
        );
        let y_max = r
            .series
            .gpus_by_provider
            .values()
            .flat_map(|v| v.iter())
            .copied()
            .max()
            .unwrap_or(1)
            .max(1) as f64
            * 1.05;
        let f = chart(280.0, y_max);
        f.open(
            &mut out,
            &format!("GPUs in use per provider, {}", r.policy),
            FONT,
        );
        f.axes(&mut out);
        f.y_ticks(&mut out, 4, &|v| format!("{v:.0}"));
        f.y_label(&mut out, "GPUs");
        days(&f, &mut out);
        for o in &r.outages {
            let (s, e) = (
                (o.start.unix() - r.origin.unix()) as f64,
                (o.end.unix() - r.origin.unix()) as f64,
            );
            f.band(
                &mut out,
                s,
                e.min(x_max),
                "outage",
                &format!("{} outage", o.provider),
            );
        }
        let names: Vec<String> = r.series.gpus_by_provider.keys().cloned().collect();
        for (i, (_, v)) in r.series.gpus_by_provider.iter().enumerate() {
            let pts: Vec<(f64, f64)> = r
                .series
                .t
                .iter()
                .zip(v)
                .map(|(t, g)| (*t as f64, *g as f64))
                .collect();
            f.polyline(&mut out, &pts, colour(i), 1.5);
        }
        f.close(&mut out);
        out.push('\n');
        out.push_str(&legend(&names));
    }
    out.push_str("<h2>Cumulative cost per policy</h2>\n");
    let y_max = reports
        .iter()
        .flat_map(|r| r.series.cumulative_cost.iter())
        .map(|m| m.to_usd_f64())
        .fold(1.0, f64::max)
        * 1.05;
    let f = chart(300.0, y_max);
    f.open(&mut out, "Cumulative cost per policy", FONT);
    f.axes(&mut out);
    f.y_ticks(&mut out, 4, &|v| {
        if v >= 1e6 {
            format!("${:.1}M", v / 1e6)
        } else {
            format!("${:.0}k", v / 1e3)
        }
    });
    f.y_label(&mut out, "USD");
    days(&f, &mut out);
    for (i, r) in reports.iter().enumerate() {
        let pts: Vec<(f64, f64)> = r
            .series
            .t
            .iter()
            .zip(&r.series.cumulative_cost)
            .map(|(t, m)| (*t as f64, m.to_usd_f64()))
            .collect();
        f.polyline(&mut out, &pts, colour(i), 1.5);
    }
    f.close(&mut out);
    out.push('\n');
    out.push_str(&legend(
        &reports.iter().map(|r| r.policy.clone()).collect::<Vec<_>>(),
    ));
    out.push('\n');
    page("hedge simulate", "body{font-family:sans-serif;margin:2em;max-width:1000px}pre{background:#f6f6f6;padding:1em;overflow:auto}.outage{fill:#d62728;fill-opacity:0.15}", &out)
}

const FONT: &str = r#" font-family="sans-serif""#;
