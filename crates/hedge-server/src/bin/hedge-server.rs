//! `hedge-server CONFIG [LOG-LEVEL]`: the broker on its own, the same code path as `hedge serve --config CONFIG`
//! ([`hedge_server::run_blocking`]). Tests run this binary to kill and restart it. Prints
//! `listening on ADDR` on stdout once it accepts connections.

use clap::Parser;
use hedge_server::{run_blocking, ServerConfig};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

/// The Hedge broker on its own (the same as `hedge serve --config CONFIG`).
#[derive(Parser, Debug)]
#[command(name = "hedge-server", version)]
struct Args {
    /// The server configuration (YAML or JSON).
    config: PathBuf,
    /// Log level.
    #[arg(value_parser = ["error", "warn", "info", "debug", "trace"], default_value = "info")]
    log_level: String,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let level: tracing::Level = args.log_level.parse().unwrap_or(tracing::Level::INFO);
    let r = ServerConfig::load(&args.config).and_then(|c| {
        run_blocking(c, level, |addr| {
            let mut out = std::io::stdout();
            let _ = writeln!(out, "listening on {addr}");
            let _ = out.flush();
        })
    });
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", hedge_server::chain(&e));
            ExitCode::FAILURE
        }
    }
}
