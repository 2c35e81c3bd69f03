//! A small `log` backend on stderr, which journald reads when systemd runs the daemon, and
//! memcached's `-vv` protocol lines beside it.
//!
//! Owns: the line format and the level, which `-v`/`-vv` set at start and the `verbosity`
//! command changes at run time; the `-vv` lines in memcached's own format (`<FD request line`,
//! `>FD reply`, `<FD new auto-negotiating client connection`, `<FD connection closed.`), written
//! without the logger's prefix so that they read as memcached's do. Must not touch: anything
//! else; it never blocks on more than one `write` of a line.

use log::{Level, LevelFilter, Log, Metadata, Record};
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

struct StderrLogger {
    /// Under systemd (`JOURNAL_STREAM` set), lines carry a `<N>` syslog priority prefix that
    /// journald turns into the entry's priority; a terminal gets a plain level word instead.
    journald: bool,
}

static LOGGER: StderrLogger = StderrLogger { journald: false };
static JOURNALD_LOGGER: StderrLogger = StderrLogger { journald: true };

/// Whether `-vv`'s protocol lines are written: one relaxed load per serving turn when off.
static PROTOCOL_TRACE: AtomicBool = AtomicBool::new(false);

/// Whether stderr goes to journald (protocol lines then carry the debug priority).
static JOURNALD: AtomicBool = AtomicBool::new(false);

/// Longest request line a `-vv` line repeats; a longer one is cut (its reply says why).
const TRACE_LINE_MAX: usize = 8 << 10;

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
    let journald = std::env::var_os("JOURNAL_STREAM").is_some();
    JOURNALD.store(journald, Ordering::Relaxed);
    let logger = if journald { &JOURNALD_LOGGER } else { &LOGGER };
    // Only fails if a logger is already set (tests that start twice): keep the first.
    let _ = log::set_logger(logger);
    set_verbosity(verbosity);
}

/// 0: start-up line, warnings and errors; 1 (`-v`): connections too; 2 (`-vv`) and more:
/// every request and reply, as memcached's `-vv` shows them.
pub fn set_verbosity(verbosity: u8) {
    log::set_max_level(match verbosity {
        0 => LevelFilter::Info,
        1 => LevelFilter::Debug,
        _ => LevelFilter::Trace,
    });
    PROTOCOL_TRACE.store(verbosity >= 2, Ordering::Relaxed);
}

/// Whether `-vv`'s protocol lines are on.
#[inline]
pub fn protocol_trace() -> bool {
    PROTOCOL_TRACE.load(Ordering::Relaxed)
}

/// `<FD line`: a request line as it arrived (without its line ending).
pub fn trace_request(fd: i32, line: &[u8]) {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    trace_line(b'<', fd, b"", &line[..line.len().min(TRACE_LINE_MAX)]);
}

/// `>FD reply`: a one-line reply (its `\r\n` dropped).
pub fn trace_reply(fd: i32, reply: &[u8]) {
    trace_line(b'>', fd, b"", reply.strip_suffix(b"\r\n").unwrap_or(reply));
}

/// `>FD NOREPLY reply`: the reply a `noreply` request did not send.
pub fn trace_noreply(fd: i32, reply: &[u8]) {
    trace_line(
        b'>',
        fd,
        b"NOREPLY ",
        reply.strip_suffix(b"\r\n").unwrap_or(reply),
    );
}

/// `>FD sending key KEY`: a hit of a `get`.
pub fn trace_sending_key(fd: i32, key: &[u8]) {
    trace_line(b'>', fd, b"sending key ", key);
}

/// `<FD what`: a connection or listener event (`new auto-negotiating client connection`,
/// `connection closed.`, `server listening (auto-negotiate)`).
pub fn trace_event(fd: i32, what: &str) {
    if protocol_trace() {
        trace_line(b'<', fd, b"", what.as_bytes());
    }
}

/// Any other line of memcached's `-vv` output (the slab classes at start), as it is.
pub fn trace_text(text: &str) {
    if protocol_trace() {
        write_raw(text.as_bytes());
    }
}

fn trace_line(direction: u8, fd: i32, prefix: &[u8], body: &[u8]) {
    let mut line = Vec::with_capacity(16 + prefix.len() + body.len());
    line.push(direction);
    line.extend_from_slice(itoa::Buffer::new().format(fd).as_bytes());
    line.push(b' ');
    line.extend_from_slice(prefix);
    line.extend_from_slice(body);
    write_raw(&line);
}

/// One write of one line, with journald's debug priority when it reads stderr.
fn write_raw(body: &[u8]) {
    let mut line = Vec::with_capacity(body.len() + 4);
    if JOURNALD.load(Ordering::Relaxed) {
        line.extend_from_slice(b"<7>");
    }
    line.extend_from_slice(body);
    line.push(b'\n');
    let _ = std::io::stderr().lock().write_all(&line);
}
