//! `hedge-server CONFIG`: the broker on its own, with the same code path as `hedge serve --config CONFIG`.
//! Tests run this binary to kill and restart it. Prints `listening on ADDR` on stdout once it accepts
//! connections.

use hedge_server::{serve, Broker, ServerConfig, SystemClock};
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let [_, config] = &args[..] else {
        eprintln!("usage: hedge-server CONFIG.yaml");
        return ExitCode::from(2);
    };
    tracing_subscriber::fmt().with_writer(std::io::stderr).with_ansi(false).with_max_level(tracing::Level::INFO).init();
    match run(config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", hedge_server::chain(&*e));
            ExitCode::FAILURE
        }
    }
}

async fn run(config: &str) -> Result<(), Box<dyn std::error::Error>> {
    let config = ServerConfig::load(std::path::Path::new(config))?;
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    let broker = Broker::start(config, SystemClock::new()).await?;
    println!("listening on {}", listener.local_addr()?);
    serve(broker, listener, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}
