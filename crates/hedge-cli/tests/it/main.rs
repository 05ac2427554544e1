//! Integration tests: run the built `hedge` binary and snapshot its output.

mod broker;
mod cli;
mod place;

use std::path::PathBuf;
use std::process::{Command, Output};

/// Runs `hedge ARGS` from the repository root and returns its output.
pub fn hedge(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hedge"))
        .args(args)
        .current_dir(repo_root())
        .output()
        .expect("the hedge binary runs")
}

pub fn repo_root() -> PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The shared SkyPilot v8 catalog (real data), relative to the repository root as the binary sees it.
pub const SKY: &str = "../shared/data/skypilot-catalog/v8";

/// stdout, stderr and exit code as one text, for snapshots.
pub fn render(o: &Output) -> String {
    format!(
        "exit: {}\n--- stdout\n{}--- stderr\n{}",
        o.status
            .code()
            .map_or("signal".to_owned(), |c| c.to_string()),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Writes `text` to a fresh temporary file and returns its path.
pub fn temp_file(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hedge-cli-it-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}
