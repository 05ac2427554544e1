//! `hedge cost`: the broker's ledger. `hedge cost` (spend per team), `hedge cost commitments` (coverage,
//! utilization, waste, savings and burn-down), `hedge cost export` (FOCUS CSV, streamed to stdout or a file).
//! Windows are `--from` / `--to` in Hedge's date grammar (`2026-11-01`, `2026-11-01T12:00Z`); without them,
//! the current month.

use super::client::Conn;
use super::Format;
use anyhow::Context;
use hedge_core::{Money, Timestamp};
use hedge_server::api_types::{CostQuery, ExportQuery, WindowQuery};
use std::io::Write;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
#[command(about = "Spend from the broker's ledger: per team, commitment metrics, FOCUS export")]
pub struct Args {
    #[command(subcommand)]
    pub what: Option<What>,
    #[command(flatten)]
    pub window: Window,
    /// Only this team (a team token sees only its own).
    #[arg(long)]
    pub team: Option<String>,
    #[command(flatten)]
    pub conn: Conn,
}

#[derive(clap::Args, Debug, Clone)]
pub struct Window {
    /// Start of the window (inclusive): YYYY-MM-DD[THH:MM[:SS]][Z], UTC.
    #[arg(long, value_parser = parse_time)]
    pub from: Option<Timestamp>,
    /// End of the window (exclusive).
    #[arg(long, value_parser = parse_time)]
    pub to: Option<Timestamp>,
}

fn parse_time(s: &str) -> Result<Timestamp, String> {
    Timestamp::parse_civil(s).map_err(|e| e.to_string())
}

impl Window {
    fn strings(&self) -> (Option<String>, Option<String>) {
        (
            self.from.map(|t| t.to_string()),
            self.to.map(|t| t.to_string()),
        )
    }
}

#[derive(clap::Subcommand, Debug)]
pub enum What {
    /// Commitment coverage, utilization, waste, effective savings rate and burn-down.
    Commitments {
        #[command(flatten)]
        window: Window,
        #[command(flatten)]
        conn: Conn,
    },
    /// A FOCUS export of the window as CSV (every mandatory column; Hedge's own are x_team, x_job,
    /// x_attempt), streamed.
    Export {
        #[command(flatten)]
        window: Window,
        /// FOCUS version: 1.0 or 1.2.
        #[arg(long, default_value = "1.0", value_parser = ["1.0", "1.2"])]
        focus_version: String,
        /// Write here instead of stdout.
        #[arg(long, short)]
        output: Option<PathBuf>,
        #[command(flatten)]
        conn: Conn,
    },
}

pub fn run(a: Args) -> anyhow::Result<()> {
    match a.what {
        None => spend(&a.window, a.team, &a.conn),
        Some(What::Commitments { window, conn }) => commitments(&window, &conn),
        Some(What::Export {
            window,
            focus_version,
            output,
            conn,
        }) => export(&window, focus_version, output, &conn),
    }
}

fn usd(micros: i64) -> String {
    Money::from_micros(micros).to_string()
}

fn spend(w: &Window, team: Option<String>, conn: &Conn) -> anyhow::Result<()> {
    let (from, to) = w.strings();
    let r = conn
        .client()
        .spend(&CostQuery { from, to, team })
        .context("reading spend")?;
    let mut out = super::stdout();
    match conn.format {
        Format::Json => super::write_json(&mut out, &r)?,
        Format::Table => {
            writeln!(out, "spend {} .. {}", Timestamp(r.from), Timestamp(r.to))?;
            let mut rows: Vec<[String; 2]> = r
                .teams
                .iter()
                .map(|t| {
                    [
                        t.team
                            .clone()
                            .unwrap_or_else(|| "(no team: unused commitments)".into()),
                        usd(t.spend),
                    ]
                })
                .collect();
            rows.push(["total".into(), usd(r.total)]);
            super::write_table(&mut out, &["TEAM", "SPEND"], &rows)?;
        }
    }
    out.flush()?;
    Ok(())
}

fn commitments(w: &Window, conn: &Conn) -> anyhow::Result<()> {
    let (from, to) = w.strings();
    let r = conn
        .client()
        .commitment_metrics(&WindowQuery { from, to })
        .context("reading commitment metrics")?;
    let mut out = super::stdout();
    match conn.format {
        Format::Json => super::write_json(&mut out, &r)?,
        Format::Table => {
            writeln!(
                out,
                "commitments {} .. {} (burn-down as of {})",
                Timestamp(r.from),
                Timestamp(r.to),
                Timestamp(r.now)
            )?;
            let pct = |x: f64| format!("{:.1}%", x * 100.0);
            let rows: Vec<[String; 9]> = r
                .commitments
                .iter()
                .chain(&r.groups)
                .map(|m| {
                    [
                        m.id.clone(),
                        pct(m.utilization),
                        pct(m.coverage),
                        usd(m.fee),
                        usd(m.waste),
                        pct(m.effective_savings_rate),
                        usd(m.remaining_fee),
                        format!("{:.1}", m.remaining_gpu_hours),
                        format!("{:.1}", m.projected_unused_gpu_hours),
                    ]
                })
                .collect();
            super::write_table(
                &mut out,
                &[
                    "COMMITMENT",
                    "UTIL",
                    "COVERAGE",
                    "FEE",
                    "WASTE",
                    "SAVINGS",
                    "FEE LEFT",
                    "GPU-H LEFT",
                    "PROJ. UNUSED GPU-H",
                ],
                &rows,
            )?;
            for t in &r.fee_by_team {
                writeln!(
                    out,
                    "fee charged to {}: {}",
                    t.team.as_deref().unwrap_or("(no team)"),
                    usd(t.spend)
                )?;
            }
        }
    }
    out.flush()?;
    Ok(())
}

fn export(w: &Window, version: String, output: Option<PathBuf>, conn: &Conn) -> anyhow::Result<()> {
    let (from, to) = w.strings();
    let q = ExportQuery {
        from,
        to,
        focus_version: Some(version),
    };
    let client = conn.client();
    match output {
        Some(path) => {
            let f = std::fs::File::create(&path)
                .with_context(|| format!("creating {}", path.display()))?;
            let mut f = std::io::BufWriter::new(f);
            client.export(&q, &mut f).context("exporting FOCUS CSV")?;
            f.flush()
                .with_context(|| format!("writing {}", path.display()))?;
        }
        None => {
            let mut out = super::stdout();
            client.export(&q, &mut out).context("exporting FOCUS CSV")?;
            out.flush()?;
        }
    }
    Ok(())
}
