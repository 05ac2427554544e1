//! The one rendering module of Hedge's reports (`hedge plan --format html`, `hedge simulate --format
//! html`): HTML escaping and a small writer of inline SVG charts. Pages are self-contained: no scripts, no
//! external assets, no network.
//!
//! Escaping is `html-escape`'s (`&`, `<`, `>`, `"`: safe in text and in double-quoted attributes). The
//! SVG is written by hand on purpose: the charts are a few lines, polygons and labels, the output must
//! be byte-stable for snapshot tests, elements carry `<title>` tooltips, and this keeps the crate free of
//! a plotting stack (see ARCHITECTURE.md).
//!
//! A [`Frame`] is a chart's geometry: the SVG's size, the left and bottom margins (the plot area ends 10
//! px from the top and the right), and the data ranges on each axis. Its methods map data to pixels and
//! write the common elements; reports compose their charts from them.

use std::fmt::Write;

/// Escapes text for HTML element content and double-quoted attribute values.
pub fn escape(s: &str) -> String {
    html_escape::encode_double_quoted_attribute(s).into_owned()
}

/// Series colours (the Tableau 10 palette), used in order and cycled.
pub const PALETTE: [&str; 10] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf",
];

/// The colour of series `i`.
pub fn colour(i: usize) -> &'static str {
    PALETTE[i % PALETTE.len()]
}

/// A compact number: `1.23B`, `4.56M`, `7.8k`, `12`.
pub fn short(x: f64) -> String {
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

/// Margin above and to the right of the plot area, px.
pub const PAD: f64 = 10.0;

/// A chart's geometry and data ranges.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Frame {
    pub w: f64,
    pub h: f64,
    pub left: f64,
    pub bottom: f64,
    /// Data range of the x axis (`x0` at the left edge of the plot area).
    pub x0: f64,
    pub x1: f64,
    /// Data range of the y axis (`y0` at the bottom).
    pub y0: f64,
    pub y1: f64,
}

impl Frame {
    /// The pixel column of data value `v`.
    pub fn x(&self, v: f64) -> f64 {
        self.left + (self.w - PAD - self.left) * (v - self.x0) / (self.x1 - self.x0)
    }
    /// The pixel row of data value `v`.
    pub fn y(&self, v: f64) -> f64 {
        self.base() - (self.base() - PAD) * (v - self.y0) / (self.y1 - self.y0)
    }
    /// The pixel row of the x axis.
    pub fn base(&self) -> f64 {
        self.h - self.bottom
    }
    /// The pixel column of the plot area's right edge.
    pub fn right(&self) -> f64 {
        self.w - PAD
    }

    /// Opens the `<svg>` element with a `<title>` (the accessible name) and `attrs` (e.g. font settings).
    pub fn open(&self, out: &mut String, title: &str, attrs: &str) {
        let (w, h) = (self.w, self.h);
        let _ = write!(
            out,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img"{attrs}><title>{}</title>"#,
            escape(title)
        );
    }

    /// The two axis lines.
    pub fn axes(&self, out: &mut String) {
        let (l, b, r) = (self.left, self.base(), self.right());
        let _ = write!(
            out,
            r##"<line x1="{l}" y1="{PAD}" x2="{l}" y2="{b}" stroke="#333"/><line x1="{l}" y1="{b}" x2="{r}" y2="{b}" stroke="#333"/>"##
        );
    }

    /// `n + 1` evenly spaced y ticks from `y0` to `y1`: a label left of the axis (`fmt(value)`) and a
    /// light grid line.
    pub fn y_ticks(&self, out: &mut String, n: usize, fmt: &dyn Fn(f64) -> String) {
        for i in 0..=n {
            let v = self.y0 + (self.y1 - self.y0) * i as f64 / n as f64;
            let y = self.y(v);
            let _ = write!(
                out,
                r##"<text x="{}" y="{:.1}" font-size="11" text-anchor="end">{}</text><line x1="{}" y1="{y:.1}" x2="{}" y2="{y:.1}" stroke="#ddd"/>"##,
                self.left - 4.0,
                y + 4.0,
                escape(&fmt(v)),
                self.left,
                self.right()
            );
        }
    }

    /// A label under the x axis at data value `v`.
    pub fn x_label(&self, out: &mut String, v: f64, label: &str) {
        let _ = write!(
            out,
            r#"<text x="{:.1}" y="{}" font-size="10" text-anchor="middle">{}</text>"#,
            self.x(v),
            self.base() + 12.0,
            escape(label)
        );
    }

    /// A label along the y axis, rotated.
    pub fn y_label(&self, out: &mut String, label: &str) {
        let m = self.h / 2.0;
        let _ = write!(
            out,
            r#"<text x="12" y="{m}" font-size="11" transform="rotate(-90 12 {m})" text-anchor="middle">{}</text>"#,
            escape(label)
        );
    }

    /// A line through data points.
    pub fn polyline(&self, out: &mut String, pts: &[(f64, f64)], colour: &str, width: f64) {
        let _ = write!(
            out,
            r#"<polyline fill="none" stroke="{colour}" stroke-width="{width}" points=""#
        );
        for (i, (x, y)) in pts.iter().enumerate() {
            let sep = if i == 0 { "" } else { " " };
            let _ = write!(out, "{sep}{:.1},{:.1}", self.x(*x), self.y(*y));
        }
        out.push_str(r#""/>"#);
    }

    /// A filled polygon through data points, with a tooltip.
    pub fn polygon(&self, out: &mut String, pts: &[(f64, f64)], colour: &str, tip: &str) {
        let _ = write!(
            out,
            r#"<polygon fill="{colour}" fill-opacity="0.8" points=""#
        );
        for (i, (x, y)) in pts.iter().enumerate() {
            let sep = if i == 0 { "" } else { " " };
            let _ = write!(out, "{sep}{:.1},{:.1}", self.x(*x), self.y(*y));
        }
        let _ = write!(out, r#""><title>{}</title></polygon>"#, escape(tip));
    }

    /// A bar from `y0` up to `v`, between data columns `xa` and `xb`, with a tooltip.
    pub fn bar(&self, out: &mut String, xa: f64, xb: f64, v: f64, colour: &str, tip: &str) {
        let (x, top) = (self.x(xa), self.y(v));
        let _ = write!(
            out,
            r#"<rect x="{x:.1}" y="{top:.1}" width="{:.1}" height="{:.1}" fill="{colour}"><title>{}</title></rect>"#,
            self.x(xb) - x,
            self.y(self.y0) - top,
            escape(tip)
        );
    }

    /// A shaded band over the whole plot height between data columns `xa` and `xb` (at least 1 px wide).
    pub fn band(&self, out: &mut String, xa: f64, xb: f64, class: &str, tip: &str) {
        let x = self.x(xa);
        let _ = write!(
            out,
            r#"<rect class="{class}" x="{x:.1}" y="{PAD}" width="{:.1}" height="{:.1}"><title>{}</title></rect>"#,
            (self.x(xb) - x).max(1.0),
            self.base() - PAD,
            escape(tip)
        );
    }

    /// A dashed horizontal line at data value `v` with a label at its right end.
    pub fn hline(&self, out: &mut String, v: f64, colour: &str, dash: &str, label: &str) {
        let y = self.y(v);
        let _ = write!(
            out,
            r##"<line x1="{}" y1="{y:.1}" x2="{}" y2="{y:.1}" stroke="{colour}" stroke-dasharray="{dash}"/><text x="{}" y="{:.1}" font-size="11" text-anchor="end" fill="{colour}">{}</text>"##,
            self.left,
            self.right(),
            self.right() - 2.0,
            y - 4.0,
            escape(label)
        );
    }

    /// A dot at a data point, with a tooltip.
    pub fn dot(&self, out: &mut String, x: f64, y: f64, colour: &str, tip: &str) {
        let _ = write!(
            out,
            r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{colour}"><title>{}</title></circle>"#,
            self.x(x),
            self.y(y),
            escape(tip)
        );
    }

    /// A text label at pixel position (`px`, `py`).
    pub fn text(&self, out: &mut String, px: f64, py: f64, attrs: &str, label: &str) {
        let _ = write!(
            out,
            r#"<text x="{px:.1}" y="{py:.1}"{attrs}>{}</text>"#,
            escape(label)
        );
    }

    /// Closes the `<svg>` element.
    pub fn close(&self, out: &mut String) {
        out.push_str("</svg>");
    }
}

/// A legend: one coloured square and name per series, in series order, as an HTML paragraph.
pub fn legend(names: &[String]) -> String {
    let mut out = String::from("<p>");
    for (i, n) in names.iter().enumerate() {
        let _ = write!(
            out,
            r#"<span style="color:{}">&#9632; {}</span> &nbsp; "#,
            colour(i),
            escape(n)
        );
    }
    out.push_str("</p>");
    out
}

/// A whole self-contained page: `<!DOCTYPE html>`, a title, inline CSS and the body.
pub fn page(title: &str, css: &str, body: &str) -> String {
    format!("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>{css}</style></head><body>\n{body}</body></html>\n", escape(title))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame() -> Frame {
        Frame {
            w: 110.0,
            h: 60.0,
            left: 0.0,
            bottom: 0.0,
            x0: 0.0,
            x1: 100.0,
            y0: 0.0,
            y1: 50.0,
        }
    }

    #[test]
    fn escapes_text_and_attributes() {
        assert_eq!(
            escape(r#"<a href="x">&'"#),
            "&lt;a href=&quot;x&quot;&gt;&amp;'"
        );
        assert_eq!(escape("plain"), "plain");
    }

    #[test]
    fn maps_data_to_pixels() {
        let f = frame();
        assert_eq!((f.x(0.0), f.x(100.0), f.x(50.0)), (0.0, 100.0, 50.0));
        assert_eq!((f.y(0.0), f.y(50.0), f.y(25.0)), (60.0, 10.0, 35.0));
        let shifted = Frame { y0: 10.0, ..f };
        assert_eq!((shifted.y(10.0), shifted.y(50.0)), (60.0, 10.0));
    }

    #[test]
    fn writes_elements() {
        let f = frame();
        let mut s = String::new();
        f.open(&mut s, "a < b", "");
        f.polyline(&mut s, &[(0.0, 0.0), (100.0, 50.0)], "#000", 2.0);
        f.bar(&mut s, 10.0, 20.0, 25.0, "#111", "x&y");
        f.close(&mut s);
        assert_eq!(
            s,
            concat!(
                r#"<svg xmlns="http://www.w3.org/2000/svg" width="110" height="60" viewBox="0 0 110 60" role="img"><title>a &lt; b</title>"#,
                r##"<polyline fill="none" stroke="#000" stroke-width="2" points="0.0,60.0 100.0,10.0"/>"##,
                r##"<rect x="10.0" y="35.0" width="10.0" height="25.0" fill="#111"><title>x&amp;y</title></rect></svg>"##
            )
        );
        assert_eq!(
            legend(&["a<".into()]),
            r##"<p><span style="color:#1f77b4">&#9632; a&lt;</span> &nbsp; </p>"##
        );
        assert_eq!(colour(10), PALETTE[0]);
        assert_eq!(
            (short(1234.0), short(2.5e6), short(7.0)),
            ("1.2k".into(), "2.50M".into(), "7".into())
        );
    }

    #[test]
    fn pages_are_self_contained() {
        let p = page("t&t", "body{}", "<p>x</p>\n");
        assert!(
            p.starts_with("<!DOCTYPE html>\n")
                && p.contains("<title>t&amp;t</title>")
                && p.ends_with("</body></html>\n")
        );
        assert!(!p.contains("<script") && !p.contains("http"));
    }
}
