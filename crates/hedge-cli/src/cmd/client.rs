//! The broker's client commands: `hedge submit`, `jobs`, `job`, `cancel`, `logs`. They talk to `HEDGE_URL`
//! with `HEDGE_TOKEN` and print a table (or `--format json`).

use super::Format;
use anyhow::Context;
use hedge_server::client::Client;
use serde_json::Value;
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
    fn client(&self) -> Client {
        Client::new(&self.url, self.token.clone())
    }
}

#[derive(clap::Args, Debug)]
#[command(about = "Submit a task YAML to the broker (top-level team, priority and deadline are Hedge's)")]
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

fn s(v: &Value) -> String {
    match v {
        Value::Null => "-".to_owned(),
        Value::String(s) => s.clone(),
        v => v.to_string(),
    }
}

pub fn submit(a: SubmitArgs) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&a.file).with_context(|| format!("reading {}", a.file.display()))?;
    let job = a.conn.client().submit(text).with_context(|| format!("submitting {}", a.file.display()))?;
    let mut out = super::stdout();
    match a.conn.format {
        Format::Json => super::write_json(&mut out, &job)?,
        Format::Table => {
            writeln!(out, "submitted job {} (team {}, {})", s(&job["id"]), s(&job["team"]), s(&job["state"]))?;
            for w in job["warnings"].as_array().into_iter().flatten() {
                writeln!(out, "warning: {}", s(w))?;
            }
        }
    }
    out.flush()?;
    Ok(())
}

pub fn jobs(a: JobsArgs) -> anyhow::Result<()> {
    let mut q = format!("limit={}", a.limit);
    if let Some(st) = &a.state {
        q.push_str(&format!("&state={st}"));
    }
    if let Some(t) = &a.team {
        q.push_str(&format!("&team={t}"));
    }
    let page = a.conn.client().jobs(&q).context("listing jobs")?;
    let mut out = super::stdout();
    match a.conn.format {
        Format::Json => super::write_json(&mut out, &page)?,
        Format::Table => {
            writeln!(out, "{:>6}  {:<12} {:<11} {:>4}  {:<20} WAITING", "ID", "TEAM", "STATE", "PRI", "NAME")?;
            for j in page["jobs"].as_array().into_iter().flatten() {
                writeln!(
                    out,
                    "{:>6}  {:<12} {:<11} {:>4}  {:<20} {}",
                    s(&j["id"]),
                    s(&j["team"]),
                    s(&j["state"]),
                    s(&j["priority"]),
                    s(&j["spec"]["name"]),
                    j["waiting"]["reason"].as_str().unwrap_or("")
                )?;
            }
        }
    }
    out.flush()?;
    Ok(())
}

pub fn job(a: JobArgs) -> anyhow::Result<()> {
    let c = a.conn.client();
    let job = c.job(a.id).with_context(|| format!("reading job {}", a.id))?;
    let events = c.events(a.id).with_context(|| format!("reading the events of job {}", a.id))?;
    let mut out = super::stdout();
    match a.conn.format {
        Format::Json => super::write_json(&mut out, &serde_json::json!({"job": job, "events": events["events"]}))?,
        Format::Table => {
            writeln!(out, "job {}  team {}  state {}  priority {}", s(&job["id"]), s(&job["team"]), s(&job["state"]), s(&job["priority"]))?;
            if let Some(w) = job["waiting"]["reason"].as_str() {
                writeln!(out, "waiting: {w}")?;
            }
            writeln!(out, "attempts:")?;
            for at in job["attempts"].as_array().into_iter().flatten() {
                writeln!(
                    out,
                    "  #{} {} {} {} GPUs {} {}{}",
                    s(&at["attempt_no"]),
                    s(&at["provider"]),
                    s(&at["market"]),
                    s(&at["gpus"]),
                    s(&at["offer"]),
                    s(&at["status"]),
                    at["detail"].as_str().map(|d| format!(" ({d})")).unwrap_or_default()
                )?;
            }
            writeln!(out, "events:")?;
            for e in events["events"].as_array().into_iter().flatten() {
                writeln!(out, "  {:>3} {:>11} -> {:<11} {}", s(&e["seq"]), s(&e["from"]), s(&e["to"]), s(&e["reason"]))?;
            }
        }
    }
    out.flush()?;
    Ok(())
}

pub fn cancel(a: CancelArgs) -> anyhow::Result<()> {
    let job = a.conn.client().cancel(a.id).with_context(|| format!("cancelling job {}", a.id))?;
    let mut out = super::stdout();
    match a.conn.format {
        Format::Json => super::write_json(&mut out, &job)?,
        Format::Table => writeln!(out, "job {} is {}", s(&job["id"]), s(&job["state"]))?,
    }
    out.flush()?;
    Ok(())
}

pub fn logs(a: LogsArgs) -> anyhow::Result<()> {
    let logs = a.conn.client().logs(a.id, a.tail_bytes).with_context(|| format!("reading the logs of job {}", a.id))?;
    let mut out = super::stdout();
    match a.conn.format {
        Format::Json => super::write_json(&mut out, &logs)?,
        Format::Table => {
            write!(out, "{}", logs["stdout"].as_str().unwrap_or(""))?;
            let err = logs["stderr"].as_str().unwrap_or("");
            if !err.is_empty() {
                writeln!(out, "--- stderr")?;
                write!(out, "{err}")?;
            }
        }
    }
    out.flush()?;
    Ok(())
}
