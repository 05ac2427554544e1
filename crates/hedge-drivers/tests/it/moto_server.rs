//! One moto server (PyPI `moto[server]`, a real EC2 API endpoint) on a free loopback port for a whole test
//! binary. Shared by the driver tests and the broker tests (`#[path]`-included there).

// A test finds moto through the environment and bounds its start by the wall clock.
#![allow(clippy::disallowed_methods)]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// One moto server on a free loopback port for the whole test binary (each test uses its own keys); a
/// watchdog shell ends it when this process exits.
pub struct Moto {
    pub url: String,
}

pub fn moto() -> &'static Moto {
    static MOTO: std::sync::OnceLock<Moto> = std::sync::OnceLock::new();
    MOTO.get_or_init(|| {
        let bin = std::env::var("HEDGE_MOTO_SERVER").unwrap_or_else(|_| "/var/tmp/hedge-moto-venv/bin/moto_server".into());
        if !std::path::Path::new(&bin).exists() {
            panic!(
                "moto_server not found at {bin}. Install it with\n\n    python3 -m venv /var/tmp/hedge-moto-venv && \
                 /var/tmp/hedge-moto-venv/bin/pip install 'moto[server]'\n\nor run bash scripts/test (or set HEDGE_MOTO_SERVER)."
            );
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let watchdog = format!(
            "\"$0\" -H 127.0.0.1 -p {port} >/dev/null 2>&1 & m=$!; while kill -0 {me} 2>/dev/null; do sleep 1; done; kill $m",
            me = std::process::id()
        );
        // The watchdog outlives nothing but this process, which never waits for it (it ends with us).
        #[allow(clippy::zombie_processes)]
        Command::new("sh").args(["-c", &watchdog, &bin]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("start moto_server");
        let t0 = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(t0.elapsed() < Duration::from_secs(60), "moto_server did not listen on {port} within 60 s");
            std::thread::sleep(Duration::from_millis(100));
        }
        Moto { url: format!("http://127.0.0.1:{port}") }
    })
}
