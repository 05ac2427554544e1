//! The `hedge` command.
//!
//! Each subcommand lives in its own module under `src/cmd/` with an `Args` struct (clap derive) and a
//! `run(Args) -> anyhow::Result<()>` function. To add one: a `pub mod NAME;` line in `src/cmd/mod.rs`, one
//! variant in [`Command`] and one arm in [`run`]. Errors travel up as `anyhow::Error` with context; [`main`]
//! is the one place that reports them and picks the exit code.

mod cmd;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(
    name = "hedge",
    version,
    about = "Plan, place and run AI compute across clouds",
    propagate_version = true
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Place a SkyPilot task YAML: the cheapest feasible offer, alternatives, and why others were rejected.
    Place(cmd::place::Args),
    /// List and filter the catalog's offers.
    Offers(cmd::offers::Args),
    /// Inspect catalogs (`hedge catalog check PATH`).
    Catalog(cmd::catalog::Args),
    /// Print the version of hedge.
    Version(cmd::version::Args),
    /// Replay a job or spot trace through the placement engine with a portfolio, outages and preemptions.
    Simulate(Box<cmd::simulate::Args>),
    /// Plan commitments across providers: optimal portfolio, baselines, frontier, break-even rates.
    Plan(cmd::plan::Args),
    /// Usage history (CSV) to the demand scenarios of a plan file.
    Forecast(cmd::forecast::Args),
    Serve(cmd::serve::Args),
    Submit(cmd::client::SubmitArgs),
    Jobs(cmd::client::JobsArgs),
    Job(cmd::client::JobArgs),
    Cancel(cmd::client::CancelArgs),
    Logs(cmd::client::LogsArgs),
    Cost(cmd::cost::Args),
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Place(a) => cmd::place::run(a),
        Command::Offers(a) => cmd::offers::run(a),
        Command::Catalog(a) => cmd::catalog::run(a),
        Command::Version(a) => cmd::version::run(a),
        Command::Simulate(a) => cmd::simulate::run(*a),
        Command::Plan(a) => cmd::plan::run(a),
        Command::Forecast(a) => cmd::forecast::run(a),
        Command::Serve(a) => cmd::serve::run(a),
        Command::Submit(a) => cmd::client::submit(a),
        Command::Jobs(a) => cmd::client::jobs(a),
        Command::Job(a) => cmd::client::job(a),
        Command::Cancel(a) => cmd::client::cancel(a),
        Command::Logs(a) => cmd::client::logs(a),
        Command::Cost(a) => cmd::cost::run(a),
    }
}

/// Exit codes: 0 success (also when stdout is closed early, e.g. `hedge offers | head`), 1 any error,
/// 2 bad command-line usage (clap's own code).
fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if cmd::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
