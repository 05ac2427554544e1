//! The broker's client commands: `hedge submit`, `jobs`, `job`, `cancel`, `logs`. They talk to `HEDGE_URL`
//! with `HEDGE_TOKEN` and print a table (or `--format json`).

use super::Format;
use anyhow::Context;
use hedge_server::api_types::ListQuery;
use hedge_server::client::Client;
use std::io::Write;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Conn {
    /// The broker's URL.
    #[arg(long, env = "HEDGE_URL", default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// API token (a team's, or the admin's).
    #[arg(long, env = "HEDGE_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

impl Conn {
    pub fn client(&self) -> Client {
        Client::new(&self.url, self.token.clone())
    }
}

#[derive(clap::Args, Debug)]
#[command(
    about = "Submit a task YAML to the broker (top-level team, priority and deadline are Hedge's)"
)]
pub struct SubmitArgs {
    pub file: PathBuf,
    #[command(flatten)]
    pub conn: Conn,
}

#[derive(clap::Args, Debug)]
#[command(about = "List jobs on the broker")]
pub struct JobsArgs {
    /// Only these states, comma-separated (pending,running,...).
    #[arg(long)]
    pub state: Option<String>,
    /// Only this team's jobs (admin token).
    #[arg(long)]
    pub team: Option<String>,
    #[arg(long, default_value_t = 100)]
    pub limit: u32,
    #[command(flatten)]
    pub conn: Conn,
}

#[derive(clap::Args, Debug)]
#[command(about = "Show one job: state, attempts and every state change with its reason")]
pub struct JobArgs {
    pub id: u64,
    #[command(flatten)]
    pub conn: Conn,
}

#[derive(clap::Args, Debug)]
#[command(about = "Cancel a job")]
pub struct CancelArgs {
    pub id: u64,
    #[command(flatten)]
    pub conn: Conn,
}

#[derive(clap::Args, Debug)]
#[command(about = "Print a job's output (its latest attempt's stdout, then stderr)")]
pub struct LogsArgs {
    pub id: u64,
    /// At most this many bytes of each stream, from the end.
    #[arg(long, default_value_t = 65536)]
    pub tail_bytes: u64,
    #[command(flatten)]
    pub conn: Conn,
}

fn opt(v: Option<impl std::fmt::Display>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

pub fn submit(a: SubmitArgs) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&a.file)
        .with_context(|| format!("reading {}", a.file.display()))?;
    let job = a
        .conn
        .client()
        .submit(text)
        .with_context(|| format!("submitting {}", a.file.display()))?;
    let mut out = super::stdout();
    match a.conn.format {
        Format::Json => super::write_json(&mut out, &job)?,
        Format::Table => {
            writeln!(
                out,
                "submitted job {} (team {}, {})",
                job.job.id, job.job.team, job.job.state
            )?;
            for w in &job.warnings {
                writeln!(out, "warning: {w}")?;
            }
        }
    }
    out.flush()?;
    Ok(())
}

pub fn jobs(a: JobsArgs) -> anyhow::Result<()> {
    let q = ListQuery {
        team: a.team.clone(),
        state: a.state.clone(),
        limit: Some(a.limit),
        ..ListQuery::default()
    };
    let page = a.conn.client().jobs(&q).context("listing jobs")?;
    let mut out = super::stdout();
    match a.conn.format {
        Format::Json => super::write_json(&mut out, &page)?,
        Format::Table => {
            writeln!(
                out,
                "{:>6}  {:<12} {:<11} {:>4}  {:<20} WAITING",
                "ID", "TEAM", "STATE", "PRI", "NAME"
            )?;
            for j in &page.jobs {
                writeln!(
                    out,
                    "{:>6}  {:<12} {:<11} {:>4}  {:<20} {}",
                    j.id,
                    j.team,
                    j.state.to_string(),
                    j.priority,
                    opt(j.spec.name.as_deref()),
                    j.waiting.as_ref().map_or("", |w| w.reason.as_str())
                )?;
            }
        }
    }
    out.flush()?;
    Ok(())
}

pub fn job(a: JobArgs) -> anyhow::Result<()> {
    let c = a.conn.client();
    let job = c
        .job(a.id)
        .with_context(|| format!("reading job {}", a.id))?;
    let events = c
        .events(a.id)
        .with_context(|| format!("reading the events of job {}", a.id))?;
    let mut out = super::stdout();
    match a.conn.format {
        Format::Json => super::write_json(
            &mut out,
            &JobWithEvents {
                job: &job,
                events: &events.events,
            },
        )?,
        Format::Table => {
            let j = &job.job;
            writeln!(
                out,
                "job {}  team {}  state {}  priority {}",
                j.id, j.team, j.state, j.priority
            )?;
            if let Some(w) = &j.waiting {
                writeln!(out, "waiting: {}", w.reason)?;
            }
            writeln!(out, "attempts:")?;
            for at in &job.attempts {
                writeln!(
                    out,
                    "  #{} {} {} {} GPUs {} {}{}",
                    at.attempt_no,
                    at.provider,
                    serde_json::to_value(at.market)?.as_str().unwrap_or("?"),
                    at.gpus,
                    at.offer,
                    at.status,
                    at.detail
                        .as_deref()
                        .map(|d| format!(" ({d})"))
                        .unwrap_or_default()
                )?;
            }
            writeln!(out, "events:")?;
            for e in &events.events {
                writeln!(
                    out,
                    "  {:>3} {:>11} -> {:<11} {}",
                    e.seq,
                    opt(e.from),
                    e.to.to_string(),
                    e.reason
                )?;
            }
        }
    }
    out.flush()?;
    Ok(())
}

/// `hedge job --format json`: the job (with its attempts) and its events.
#[derive(serde::Serialize)]
struct JobWithEvents<'a> {
    job: &'a hedge_server::api_types::JobDetail,
    events: &'a [hedge_server::api_types::EventView],
}

pub fn cancel(a: CancelArgs) -> anyhow::Result<()> {
    let job = a
        .conn
        .client()
        .cancel(a.id)
        .with_context(|| format!("cancelling job {}", a.id))?;
    let mut out = super::stdout();
    match a.conn.format {
        Format::Json => super::write_json(&mut out, &job)?,
        Format::Table => writeln!(out, "job {} is {}", job.id, job.state)?,
    }
    out.flush()?;
    Ok(())
}

pub fn logs(a: LogsArgs) -> anyhow::Result<()> {
    let logs = a
        .conn
        .client()
        .logs(a.id, a.tail_bytes)
        .with_context(|| format!("reading the logs of job {}", a.id))?;
    let mut out = super::stdout();
    match a.conn.format {
        Format::Json => super::write_json(&mut out, &logs)?,
        Format::Table => {
            write!(out, "{}", logs.stdout)?;
            if !logs.stderr.is_empty() {
                writeln!(out, "--- stderr")?;
                write!(out, "{}", logs.stderr)?;
            }
        }
    }
    out.flush()?;
    Ok(())
}
