//! `hedge serve`: run the broker (the `/v1` API, the job queue, the reconciler, the local providers).

use anyhow::Context;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
#[command(
    about = "Run the broker: the /v1 API, the persistent job queue, the reconciler and the local providers"
)]
pub struct Args {
    /// Server configuration (YAML): providers, teams, health settings. See examples/broker/hedge.yaml.
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// Address to listen on (overrides the configuration), e.g. 127.0.0.1:8080.
    #[arg(long)]
    pub listen: Option<String>,
    /// Data directory: SQLite file, local providers' attempts, admin token (overrides the configuration).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// postgres://... to use PostgreSQL instead of the SQLite file.
    #[arg(long, env = "HEDGE_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// error, warn, info, debug or trace.
    #[arg(long, default_value = "info")]
    pub log_level: tracing_level::Level,
}

/// `--log-level` values (clap parses them; the server takes the tracing level).
pub mod tracing_level {
    #[derive(clap::ValueEnum, Clone, Copy, Debug)]
    pub enum Level {
        Error,
        Warn,
        Info,
        Debug,
        Trace,
    }
}

pub fn run(args: Args) -> anyhow::Result<()> {
    use hedge_server::ServerConfig;
    let mut config = match (&args.config, &args.data_dir) {
        (Some(path), _) => ServerConfig::load(path).context("loading the server configuration")?,
        (None, Some(dir)) => ServerConfig::new(dir),
        (None, None) => {
            anyhow::bail!("give --config FILE (see examples/broker/hedge.yaml) or --data-dir DIR")
        }
    };
    if let Some(dir) = args.data_dir {
        config.data_dir = dir;
    }
    if let Some(l) = args.listen {
        config.listen = l
            .parse()
            .with_context(|| format!("--listen {l:?} is not an address like 127.0.0.1:8080"))?;
    }
    if let Some(u) = args.database_url {
        config.database_url = Some(u);
    }
    let level = match args.log_level {
        tracing_level::Level::Error => hedge_server::LogLevel::ERROR,
        tracing_level::Level::Warn => hedge_server::LogLevel::WARN,
        tracing_level::Level::Info => hedge_server::LogLevel::INFO,
        tracing_level::Level::Debug => hedge_server::LogLevel::DEBUG,
        tracing_level::Level::Trace => hedge_server::LogLevel::TRACE,
    };
    let data_dir = config.data_dir.clone();
    hedge_server::run_blocking(config, level, |addr| {
        eprintln!(
            "hedge serve: listening on http://{addr} (admin token in {})",
            data_dir.join("admin.token").display()
        );
    })
    .context("hedge serve")?;
    Ok(())
}
