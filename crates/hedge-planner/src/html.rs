//! The HTML report: one self-contained file, inline CSS and hand-written SVG charts (no scripts, no
//! network): committed GPUs over time per provider (stacked), cost per scenario, and the frontier when a
//! sweep was run.

use crate::plan::{SweepParam, SweepPoint};
use crate::report::{period_label, render_table, usd, PlanReport};
use crate::input::PlanningInput;
use std::fmt::Write;

const COLOURS: &[&str] = &["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];
const W: f64 = 720.0;
const H: f64 = 300.0;
const L: f64 = 80.0;
const B: f64 = 40.0;

pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn short(x: f64) -> String {
    let a = x.abs();
    if a >= 1e9 {
        format!("{:.2}B", x / 1e9)
    } else if a >= 1e6 {
        format!("{:.2}M", x / 1e6)
    } else if a >= 1e3 {
        format!("{:.1}k", x / 1e3)
    } else {
        format!("{x:.0}")
    }
}

fn axes(s: &mut String, ymin: f64, ymax: f64, title: &str) {
    let _ = write!(s, r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" role="img"><title>{}</title>"#, escape(title));
    let _ = write!(s, r##"<line x1="{L}" y1="10" x2="{L}" y2="{}" stroke="#333"/><line x1="{L}" y1="{}" x2="{}" y2="{}" stroke="#333"/>"##, H - B, H - B, W - 10.0, H - B);
    for i in 0..=4 {
        let v = ymin + (ymax - ymin) * i as f64 / 4.0;
        let y = (H - B) - (H - B - 10.0) * i as f64 / 4.0;
        let _ = write!(s, r##"<text x="{}" y="{}" font-size="11" text-anchor="end">{}</text><line x1="{L}" y1="{y}" x2="{}" y2="{y}" stroke="#ddd"/>"##, L - 4.0, y + 4.0, short(v), W - 10.0);
    }
}

/// Stacked areas of committed GPUs per provider and period.
pub fn commitments_chart(r: &PlanReport, input: &PlanningInput) -> String {
    let nt = r.horizon.periods.max(1);
    let totals: Vec<f64> = (0..nt).map(|t| r.committed_by_provider.iter().map(|(_, v)| v[t] as f64).sum()).collect();
    let ymax = totals.iter().copied().fold(1.0, f64::max);
    let mut s = String::new();
    axes(&mut s, 0.0, ymax, "Committed GPUs per provider over time");
    let x = |t: f64| L + (W - 10.0 - L) * t / nt as f64;
    let y = |v: f64| (H - B) - (H - B - 10.0) * v / ymax;
    let mut base = vec![0.0; nt];
    for (i, (name, v)) in r.committed_by_provider.iter().enumerate() {
        if v.iter().all(|g| *g == 0) {
            continue;
        }
        let mut pts = String::new();
        for (t, b) in base.iter().enumerate() {
            let top = b + v[t] as f64;
            let _ = write!(pts, "{:.1},{:.1} {:.1},{:.1} ", x(t as f64), y(top), x(t as f64 + 1.0), y(top));
        }
        for t in (0..nt).rev() {
            let _ = write!(pts, "{:.1},{:.1} {:.1},{:.1} ", x(t as f64 + 1.0), y(base[t]), x(t as f64), y(base[t]));
        }
        let c = COLOURS[i % COLOURS.len()];
        let _ = write!(s, r#"<polygon points="{}" fill="{c}" fill-opacity="0.8"><title>{}</title></polygon>"#, pts.trim_end(), escape(name));
        let _ = write!(s, r#"<rect x="{}" y="{}" width="10" height="10" fill="{c}"/><text x="{}" y="{}" font-size="11">{}</text>"#, L + 10.0 + 90.0 * i as f64, H - 14.0, L + 24.0 + 90.0 * i as f64, H - 5.0, escape(name));
        for (t, b) in base.iter_mut().enumerate() {
            *b += v[t] as f64;
        }
    }
    for t in (0..nt).step_by((nt / 6).max(1)) {
        let _ = write!(s, r#"<text x="{:.1}" y="{}" font-size="10" text-anchor="middle">{}</text>"#, x(t as f64), H - B + 12.0, period_label(&input.horizon, t));
    }
    s.push_str("</svg>");
    s
}

/// Bars of the total cost of each scenario, with the expected cost as a line.
pub fn scenario_chart(r: &PlanReport) -> String {
    let n = r.scenarios.len().max(1);
    // Headroom above the tallest bar or line, for the line labels.
    let ymax = 1.08 * r.scenarios.iter().map(|x| x.total_usd).fold(r.all_on_demand_cost_usd.max(1.0), f64::max);
    let mut s = String::new();
    axes(&mut s, 0.0, ymax, "Cost per scenario");
    let bw = (W - 10.0 - L) / n as f64;
    let y = |v: f64| (H - B) - (H - B - 10.0) * v / ymax;
    for (i, sc) in r.scenarios.iter().enumerate() {
        let x0 = L + bw * i as f64 + bw * 0.15;
        let _ = write!(s, r##"<rect x="{x0:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="#1f77b4"><title>{}: {}</title></rect>"##, y(sc.total_usd), bw * 0.7, (H - B) - y(sc.total_usd), escape(&sc.scenario), usd(sc.total_usd));
        let _ = write!(s, r#"<text x="{:.1}" y="{}" font-size="10" text-anchor="middle">{}</text>"#, x0 + bw * 0.35, H - B + 12.0, escape(&sc.scenario));
    }
    let ye = y(r.expected_cost_usd);
    let _ = write!(s, r##"<line x1="{L}" y1="{ye:.1}" x2="{}" y2="{ye:.1}" stroke="#d62728" stroke-dasharray="4 3"/><text x="{}" y="{:.1}" font-size="11" text-anchor="end" fill="#d62728">expected {}</text>"##, W - 10.0, W - 12.0, ye - 4.0, usd(r.expected_cost_usd));
    let yo = y(r.all_on_demand_cost_usd);
    let _ = write!(s, r##"<line x1="{L}" y1="{yo:.1}" x2="{}" y2="{yo:.1}" stroke="#7f7f7f" stroke-dasharray="2 2"/><text x="{}" y="{:.1}" font-size="11" text-anchor="end" fill="#555">all on-demand {}</text>"##, W - 10.0, W - 12.0, yo - 4.0, usd(r.all_on_demand_cost_usd));
    s.push_str("</svg>");
    s
}

/// The frontier: expected cost against the swept policy value.
pub fn frontier_chart(param: SweepParam, points: &[SweepPoint]) -> String {
    let ok: Vec<(f64, f64)> = points.iter().filter_map(|p| p.expected_cost_usd.map(|c| (p.value, c))).collect();
    // The cost axis spans the curve (with a margin), not zero to the top: the differences are the point.
    let hi = ok.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
    let lo = ok.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
    let (ymin, ymax) = if ok.is_empty() { (0.0, 1.0) } else {
        let m = ((hi - lo) * 0.1).max(hi.abs() * 1e-3).max(1.0);
        ((lo - m).max(0.0), hi + m)
    };
    let mut s = String::new();
    axes(&mut s, ymin, ymax, &format!("Expected cost against {}", param.as_str()));
    let x = |v: f64| L + (W - 10.0 - L) * v;
    let y = |v: f64| (H - B) - (H - B - 10.0) * (v - ymin) / (ymax - ymin);
    let pts: Vec<String> = ok.iter().map(|(v, c)| format!("{:.1},{:.1}", x(*v), y(*c))).collect();
    let _ = write!(s, r##"<polyline points="{}" fill="none" stroke="#1f77b4" stroke-width="2"/>"##, pts.join(" "));
    for (v, c) in &ok {
        let _ = write!(s, r##"<circle cx="{:.1}" cy="{:.1}" r="3" fill="#1f77b4"><title>{v:.2}: {}</title></circle>"##, x(*v), y(*c), usd(*c));
    }
    for p in points.iter().filter(|p| p.expected_cost_usd.is_none()) {
        let _ = write!(s, r##"<text x="{:.1}" y="{}" font-size="12" text-anchor="middle" fill="#d62728">×</text>"##, x(p.value), H - B - 4.0);
    }
    for i in 0..=10 {
        let v = i as f64 / 10.0;
        let _ = write!(s, r#"<text x="{:.1}" y="{}" font-size="10" text-anchor="middle">{v:.1}</text>"#, x(v), H - B + 12.0);
    }
    s.push_str("</svg>");
    s
}

/// The whole page.
pub fn render_html(r: &PlanReport, input: &PlanningInput, sweep: Option<(SweepParam, &[SweepPoint])>) -> String {
    let mut s = String::from("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Hedge plan</title>");
    s.push_str("<style>body{font-family:system-ui,sans-serif;max-width:780px;margin:2em auto;color:#222}pre{background:#f6f6f6;padding:1em;overflow-x:auto;font-size:12px}h2{margin-top:1.5em}</style></head><body>");
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
    s.push_str("</pre></body></html>\n");
    s
}
