//! One module per subcommand, plus the few helpers they share (output format, stdout, error kinds).

pub mod version;

use std::io::{self, Write};

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
        c.downcast_ref::<io::Error>().is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
            || c.downcast_ref::<serde_json::Error>()
                .and_then(|j| j.io_error_kind())
                .is_some_and(|k| k == io::ErrorKind::BrokenPipe)
    })
}
