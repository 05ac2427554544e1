//! The HTML report: one self-contained file, inline CSS and SVG charts drawn with `hedge_render` (no
//! scripts, no network): committed GPUs over time per provider (stacked), cost per scenario, and the frontier when a
//! sweep was run.

use crate::input::PlanningInput;
use crate::plan::{SweepParam, SweepPoint};
use crate::report::{period_label, render_table, usd, PlanReport};
use hedge_render::{colour, short, Frame};
use std::fmt::Write;

const W: f64 = 720.0;
const H: f64 = 300.0;
const L: f64 = 80.0;
const B: f64 = 40.0;

/// Escapes text for HTML (the shared `hedge_render::escape`).
pub fn escape(s: &str) -> String {
    hedge_render::escape(s)
}

fn frame(x1: f64, y0: f64, y1: f64, title: &str, s: &mut String) -> Frame {
    let f = Frame {
        w: W,
        h: H,
        left: L,
        bottom: B,
        x0: 0.0,
        x1,
        y0,
        y1,
    };
    f.open(s, title, "");
    f.axes(s);
    f.y_ticks(s, 4, &short);
    f
}

/// Stacked areas of committed GPUs per provider and period.
pub fn commitments_chart(r: &PlanReport, input: &PlanningInput) -> String {
    let nt = r.horizon.periods.max(1);
    let totals: Vec<f64> = (0..nt)
        .map(|t| {
            r.committed_by_provider
                .iter()
                .map(|(_, v)| v[t] as f64)
                .sum()
        })
        .collect();
    let ymax = totals.iter().copied().fold(1.0, f64::max);
    let mut s = String::new();
    let f = frame(
        nt as f64,
        0.0,
        ymax,
        "Committed GPUs per provider over time",
        &mut s,
    );
    let mut base = vec![0.0; nt];
    for (i, (name, v)) in r.committed_by_provider.iter().enumerate() {
        if v.iter().all(|g| *g == 0) {
            continue;
        }
        let mut pts = Vec::with_capacity(4 * nt);
        for (t, b) in base.iter().enumerate() {
            let top = b + v[t] as f64;
            pts.extend([(t as f64, top), (t as f64 + 1.0, top)]);
        }
        for t in (0..nt).rev() {
            pts.extend([(t as f64 + 1.0, base[t]), (t as f64, base[t])]);
        }
        let c = colour(i);
        f.polygon(&mut s, &pts, c, name);
        let _ = write!(
            s,
            r#"<rect x="{}" y="{}" width="10" height="10" fill="{c}"/>"#,
            L + 10.0 + 90.0 * i as f64,
            H - 14.0
        );
        f.text(
            &mut s,
            L + 24.0 + 90.0 * i as f64,
            H - 5.0,
            r#" font-size="11""#,
            name,
        );
        for (t, b) in base.iter_mut().enumerate() {
            *b += v[t] as f64;
        }
    }
    for t in (0..nt).step_by((nt / 6).max(1)) {
        f.x_label(&mut s, t as f64, &period_label(&input.horizon, t));
    }
    f.close(&mut s);
    s
}

/// Bars of the total cost of each scenario, with the expected cost as a line.
pub fn scenario_chart(r: &PlanReport) -> String {
    let n = r.scenarios.len().max(1);
    // Headroom above the tallest bar or line, for the line labels.
    let ymax = 1.08
        * r.scenarios
            .iter()
            .map(|x| x.total_usd)
            .fold(r.all_on_demand_cost_usd.max(1.0), f64::max);
    let mut s = String::new();
    let f = frame(n as f64, 0.0, ymax, "Cost per scenario", &mut s);
    for (i, sc) in r.scenarios.iter().enumerate() {
        f.bar(
            &mut s,
            i as f64 + 0.15,
            i as f64 + 0.85,
            sc.total_usd,
            colour(0),
            &format!("{}: {}", sc.scenario, usd(sc.total_usd)),
        );
        f.x_label(&mut s, i as f64 + 0.5, &sc.scenario);
    }
    f.hline(
        &mut s,
        r.expected_cost_usd,
        colour(3),
        "4 3",
        &format!("expected {}", usd(r.expected_cost_usd)),
    );
    f.hline(
        &mut s,
        r.all_on_demand_cost_usd,
        colour(7),
        "2 2",
        &format!("all on-demand {}", usd(r.all_on_demand_cost_usd)),
    );
    f.close(&mut s);
    s
}

/// The frontier: expected cost against the swept policy value.
pub fn frontier_chart(param: SweepParam, points: &[SweepPoint]) -> String {
    let ok: Vec<(f64, f64)> = points
        .iter()
        .filter_map(|p| p.expected_cost_usd.map(|c| (p.value, c)))
        .collect();
    // The cost axis spans the curve (with a margin), not zero to the top: the differences are the point.
    let hi = ok.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
    let lo = ok.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
    let (ymin, ymax) = if ok.is_empty() {
        (0.0, 1.0)
    } else {
        let m = ((hi - lo) * 0.1).max(hi.abs() * 1e-3).max(1.0);
        ((lo - m).max(0.0), hi + m)
    };
    let mut s = String::new();
    let f = frame(
        1.0,
        ymin,
        ymax,
        &format!("Expected cost against {}", param.as_str()),
        &mut s,
    );
    f.polyline(&mut s, &ok, colour(0), 2.0);
    for (v, c) in &ok {
        f.dot(&mut s, *v, *c, colour(0), &format!("{v:.2}: {}", usd(*c)));
    }
    for p in points.iter().filter(|p| p.expected_cost_usd.is_none()) {
        f.text(
            &mut s,
            f.x(p.value),
            H - B - 4.0,
            &format!(
                r#" font-size="12" text-anchor="middle" fill="{}""#,
                colour(3)
            ),
            "×",
        );
    }
    for i in 0..=10 {
        let v = i as f64 / 10.0;
        f.x_label(&mut s, v, &format!("{v:.1}"));
    }
    f.close(&mut s);
    s
}

/// The whole page.
pub fn render_html(
    r: &PlanReport,
    input: &PlanningInput,
    sweep: Option<(SweepParam, &[SweepPoint])>,
) -> String {
    let mut s = String::new();
    let _ = write!(s, "<h1>Hedge plan from {}</h1>", escape(&r.horizon.start));
    let _ = write!(
        s,
        "<p>Expected cost <b>{}</b> (CVaR{:.0} {}), against {} all on-demand: savings <b>{:.1}%</b>.</p>",
        usd(r.expected_cost_usd),
        r.cvar_alpha * 100.0,
        usd(r.cvar_usd),
        usd(r.all_on_demand_cost_usd),
        r.savings_rate * 100.0
    );
    s.push_str("<h2>Commitments over time</h2>");
    s.push_str(&commitments_chart(r, input));
    s.push_str("<h2>Cost per scenario</h2>");
    s.push_str(&scenario_chart(r));
    if let Some((param, points)) = sweep {
        s.push_str("<h2>Frontier</h2>");
        s.push_str(&frontier_chart(param, points));
    }
    s.push_str("<h2>Report</h2><pre>");
    s.push_str(&escape(&render_table(r, input)));
    s.push_str("</pre>\n");
    hedge_render::page("Hedge plan", "body{font-family:system-ui,sans-serif;max-width:780px;margin:2em auto;color:#222}pre{background:#f6f6f6;padding:1em;overflow-x:auto;font-size:12px}h2{margin-top:1.5em}", &s)
}
