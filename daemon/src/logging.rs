//! A small `log` backend on stderr, which journald reads when systemd runs the daemon.
//!
//! Owns: the line format and the level, which `-v`/`-vv` set at start and the `verbosity`
//! command changes at run time. Must not touch: anything else; it never blocks on more than one
//! `write` of a line.

use log::{Level, LevelFilter, Log, Metadata, Record};
use std::io::Write;

struct StderrLogger {
    /// Under systemd (`JOURNAL_STREAM` set), lines carry a `<N>` syslog priority prefix that
    /// journald turns into the entry's priority; a terminal gets a plain level word instead.
    journald: bool,
}

static LOGGER: StderrLogger = StderrLogger { journald: false };
static JOURNALD_LOGGER: StderrLogger = StderrLogger { journald: true };

impl Log for StderrLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        // -v/-vv are about ferrocached's own connections and commands, not its libraries'
        // internals (mio traces every registration).
        metadata.level() <= log::max_level()
            && (metadata.level() <= Level::Info || metadata.target().starts_with("ferrocached"))
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let line = if self.journald {
            let priority = match record.level() {
                Level::Error => 3,
                Level::Warn => 4,
                Level::Info => 6,
                Level::Debug | Level::Trace => 7,
            };
            format!("<{priority}>{}\n", record.args())
        } else {
            format!("ferrocached {}: {}\n", record.level(), record.args())
        };
        // One write per line, so lines from several threads do not interleave.
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }

    fn flush(&self) {}
}

/// Installs the logger at the level `verbosity` names.
pub fn init(verbosity: u8) {
    let logger = if std::env::var_os("JOURNAL_STREAM").is_some() {
        &JOURNALD_LOGGER
    } else {
        &LOGGER
    };
    // Only fails if a logger is already set (tests that start twice): keep the first.
    let _ = log::set_logger(logger);
    set_verbosity(verbosity);
}

/// 0: start-up line, warnings and errors; 1 (`-v`): connections too; 2 (`-vv`): every command.
pub fn set_verbosity(verbosity: u8) {
    log::set_max_level(match verbosity {
        0 => LevelFilter::Info,
        1 => LevelFilter::Debug,
        _ => LevelFilter::Trace,
    });
}
