//! Integration tests: run the built `hedge` binary and snapshot its output.

mod cli;

use std::process::{Command, Output};

/// Runs `hedge ARGS` from the repository root and returns its output.
pub fn hedge(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hedge"))
        .args(args)
        .current_dir(repo_root())
        .output()
        .expect("the hedge binary runs")
}

pub fn repo_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// stdout, stderr and exit code as one text, for snapshots.
pub fn render(o: &Output) -> String {
    format!(
        "exit: {}\n--- stdout\n{}--- stderr\n{}",
        o.status.code().map_or("signal".to_owned(), |c| c.to_string()),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}
