//! One module per subcommand, plus the few helpers they share (output format, stdout, error kinds).

pub mod catalog;
pub mod client;
pub mod cost;
pub mod forecast;
pub mod offers;
pub mod place;
pub mod plan;
pub mod serve;
pub mod simulate;
pub mod version;

use anyhow::Context;
use std::io::{self, Write};
use std::path::Path;

/// `--format` of commands that print a report.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Format {
    /// Aligned text for people.
    #[default]
    Table,
    /// One JSON document for programs.
    Json,
}

/// Locked, buffered stdout. Write to it with `writeln!(out, ..)?` (never `println!`, which panics on a
/// closed pipe) and call `out.flush()?` at the end.
pub fn stdout() -> io::BufWriter<io::StdoutLock<'static>> {
    io::BufWriter::new(io::stdout().lock())
}

/// Writes `value` as pretty JSON followed by a newline.
pub fn write_json(out: &mut impl Write, value: &impl serde::Serialize) -> anyhow::Result<()> {
    serde_json::to_writer_pretty(&mut *out, value)?;
    writeln!(out)?;
    Ok(())
}

/// Whether an error (anywhere in its chain) is a broken pipe: the reader went away, which is not a failure.
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
            || c.downcast_ref::<serde_json::Error>()
                .and_then(|j| j.io_error_kind())
                .is_some_and(|k| k == io::ErrorKind::BrokenPipe)
    })
}

/// Loads `--catalog PATH` (a SkyPilot v8 directory, a `vms.csv`, or a native catalog), or the catalog shipped
/// with hedge when no path is given. Rows skipped as malformed are summarised on stderr.
pub fn load_catalog(path: Option<&Path>) -> anyhow::Result<hedge_catalog::Loaded> {
    let loaded = match path {
        Some(p) => {
            hedge_catalog::load(p).with_context(|| format!("loading catalog {}", p.display()))?
        }
        None => hedge_catalog::default_catalog().context("loading the default catalog")?,
    };
    let errors = loaded.count(hedge_catalog::Severity::Error);
    if errors > 0 {
        let shown = path.map_or("(default)".to_owned(), |p| p.display().to_string());
        eprintln!("warning: catalog {shown}: {errors} malformed row(s) skipped; see `hedge catalog check {shown}`");
    }
    Ok(loaded)
}

/// Reads and parses a SkyPilot task YAML file; warnings (unknown fields) go to stderr.
pub fn read_task(path: &Path) -> anyhow::Result<hedge_core::TaskSpec> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading task file {}", path.display()))?;
    let parsed = hedge_core::task_yaml::parse(&text)
        .with_context(|| format!("task file {}", path.display()))?;
    for w in &parsed.warnings {
        eprintln!("warning: {}: {w}", path.display());
    }
    Ok(parsed.task)
}

/// Writes rows under a header, columns left-aligned and padded to their widest cell.
pub fn write_table<const N: usize>(
    out: &mut impl Write,
    header: &[&str; N],
    rows: &[[String; N]],
) -> io::Result<()> {
    let mut width = header.map(str::len);
    for r in rows {
        for (w, c) in width.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |out: &mut dyn Write, cells: &mut dyn Iterator<Item = &str>| -> io::Result<()> {
        let mut s = String::new();
        for (i, c) in cells.enumerate() {
            if i + 1 < N {
                s.push_str(&format!("{c:<w$}  ", w = width[i]));
            } else {
                s.push_str(c);
            }
        }
        writeln!(out, "{}", s.trim_end())
    };
    line(out, &mut header.iter().copied())?;
    for r in rows {
        line(out, &mut r.iter().map(String::as_str))?;
    }
    Ok(())
}
