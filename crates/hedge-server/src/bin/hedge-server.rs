//! `hedge-server CONFIG [LOG-LEVEL]`: the broker on its own, the same code path as `hedge serve --config CONFIG`
//! ([`hedge_server::run_blocking`]). Tests run this binary to kill and restart it. Prints
//! `listening on ADDR` on stdout once it accepts connections.

use hedge_server::{run_blocking, ServerConfig};
use std::io::Write;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let (config, level) = match &args[..] {
        [_, c] => (c, tracing::Level::INFO),
        [_, c, l] => match l.parse::<tracing::Level>() {
            Ok(l) => (c, l),
            Err(_) => {
                eprintln!("usage: hedge-server CONFIG.yaml [error|warn|info|debug|trace]");
                return ExitCode::from(2);
            }
        },
        _ => {
            eprintln!("usage: hedge-server CONFIG.yaml [error|warn|info|debug|trace]");
            return ExitCode::from(2);
        }
    };
    let r = ServerConfig::load(std::path::Path::new(config)).and_then(|c| {
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
