//! Output for people: stdout for what was done, stderr for problems, `<N>` priority prefixes
//! when systemd's journal reads us, and a copy to syslog for cron runs.

use std::fmt::Display;
use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

use syslog::{Formatter3164, Logger, LoggerBackend};

/// How much to say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Errors only (`--quiet`).
    Quiet = 0,
    /// Errors, warnings and one line per certificate acted on.
    Normal = 1,
    /// Also every step and every request (`--verbose`).
    Verbose = 2,
}

/// Where lines go besides stdout and stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sinks {
    /// Prefix lines with `<N>` syslog priorities, which systemd's journal turns into levels.
    pub journal: bool,
    /// Send a copy of every line to the local syslog (facility daemon).
    pub syslog: bool,
    /// stdout belongs to a JSON report: the lines of what was done are not printed there.
    pub json: bool,
    /// stderr is a terminal that a person watches: not systemd's (`JOURNAL_STREAM`,
    /// `INVOCATION_ID`), nor a run that logs to syslog or prints JSON. A batch shows its
    /// progress and a summary there.
    pub terminal: bool,
}

impl Sinks {
    /// The journal when systemd set `JOURNAL_STREAM`; syslog when asked, or when there is no
    /// terminal and no journal (cron), in addition to stdout and stderr, which cron mails.
    pub fn detect(syslog_flag: bool, json: bool) -> Sinks {
        let journal = std::env::var_os("JOURNAL_STREAM").is_some();
        let systemd = journal || std::env::var_os("INVOCATION_ID").is_some();
        let stderr = std::io::stderr().is_terminal();
        let terminal = stderr || std::io::stdin().is_terminal();
        let syslog = syslog_flag || (!terminal && !journal);
        Sinks {
            journal,
            syslog,
            json,
            terminal: stderr && !systemd && !syslog && !json,
        }
    }
}

static LEVEL: AtomicU8 = AtomicU8::new(Level::Normal as u8);
static JOURNAL: AtomicBool = AtomicBool::new(false);
static JSON: AtomicBool = AtomicBool::new(false);
static STDOUT_IS_DATA: AtomicBool = AtomicBool::new(false);
static SYSLOG: Mutex<Option<Logger<LoggerBackend, Formatter3164>>> = Mutex::new(None);
/// Whether a batch may show its progress and summary on stderr ([`Sinks::terminal`], not
/// `--quiet`).
static TERMINAL: AtomicBool = AtomicBool::new(false);
/// The progress line, while a batch shows one; every line written to the terminal takes this
/// lock, so that the progress line is erased before it and drawn again after.
static PROGRESS: Mutex<Option<Progress>> = Mutex::new(None);
/// Whether a progress line stands on the terminal now (for [`error_now`], which takes no lock).
static DRAWN: AtomicBool = AtomicBool::new(false);

/// Erases the line the cursor is on: carriage return, then clear to the end of the line.
const ERASE: &str = "\r\x1b[K";

/// A batch's progress: `[12/30] example.org: validating`.
struct Progress {
    done: usize,
    total: usize,
    /// What is being done now: the certificate and its step.
    now: String,
}

impl Progress {
    /// Draws the line, cut to the terminal's width so that it never wraps (a wrapped line
    /// cannot be erased with a carriage return).
    fn draw(&self, err: &mut impl Write) {
        let line = format!("[{}/{}] {}", self.done, self.total, self.now);
        let width = terminal_width().saturating_sub(1).max(10);
        let line: String = line.chars().take(width).collect();
        let _ = write!(err, "{ERASE}{line}");
        let _ = err.flush();
        DRAWN.store(true, Ordering::Relaxed);
    }
}

/// The width of the terminal on stderr; 80 when it cannot be told.
fn terminal_width() -> usize {
    // SAFETY: TIOCGWINSZ fills a winsize struct we own; on failure it is left zeroed.
    let mut size: libc::winsize = unsafe { std::mem::zeroed() };
    let ok = unsafe { libc::ioctl(libc::STDERR_FILENO, libc::TIOCGWINSZ, &mut size) } == 0;
    if ok && size.ws_col > 0 {
        usize::from(size.ws_col)
    } else {
        80
    }
}

/// stderr lines kept back until [`release_stderr`], while Some.
static HELD: Mutex<Option<Vec<String>>> = Mutex::new(None);

/// Keeps stderr lines back until [`release_stderr`]: a monitoring plugin's first line must be
/// the first of its output, and Icinga 2 reads stderr into the same output as stdout.
pub fn hold_stderr() {
    *HELD.lock().unwrap_or_else(|e| e.into_inner()) = Some(Vec::new());
}

/// Writes the stderr lines kept back since [`hold_stderr`], and no longer keeps any.
pub fn release_stderr() {
    let held = HELD.lock().unwrap_or_else(|e| e.into_inner()).take();
    let mut err = std::io::stderr().lock();
    for line in held.unwrap_or_default() {
        let _ = writeln!(err, "{line}");
    }
}

/// Sets what is said and where. A syslog that cannot be reached is silently left out.
pub fn init(level: Level, sinks: Sinks) {
    let _ = START.set(std::time::Instant::now());
    LEVEL.store(level as u8, Ordering::Relaxed);
    JOURNAL.store(sinks.journal, Ordering::Relaxed);
    TERMINAL.store(sinks.terminal && level >= Level::Normal, Ordering::Relaxed);
    JSON.store(sinks.json, Ordering::Relaxed);
    if sinks.syslog {
        let formatter = Formatter3164 {
            facility: syslog::Facility::LOG_DAEMON,
            hostname: None,
            process: "desiccant".into(),
            pid: std::process::id(),
        };
        if let Ok(logger) = syslog::unix(formatter) {
            *SYSLOG.lock().unwrap_or_else(|e| e.into_inner()) = Some(logger);
        }
    }
}

fn enabled(level: Level) -> bool {
    LEVEL.load(Ordering::Relaxed) >= level as u8
}

#[derive(Clone, Copy)]
enum Priority {
    Err = 3,
    Warning = 4,
    Info = 6,
    Debug = 7,
}

fn emit(to_stdout: bool, priority: Priority, msg: &dyn Display) {
    let line = msg.to_string();
    let prefix = if JOURNAL.load(Ordering::Relaxed) {
        format!("<{}>", priority as u8)
    } else {
        String::new()
    };
    // The progress line is taken away for the line and drawn again under it.
    let progress = PROGRESS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(p) = progress.as_ref() {
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "{ERASE}");
        let _ = err.flush();
        DRAWN.store(false, Ordering::Relaxed);
        if to_stdout {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{prefix}{line}");
            let _ = out.flush();
        } else {
            let _ = writeln!(err, "{prefix}{line}");
        }
        p.draw(&mut err);
    } else if to_stdout {
        // A closed stdout or stderr (cron without a mailer) must not end the run.
        let _ = writeln!(std::io::stdout().lock(), "{prefix}{line}");
    } else {
        let mut held = HELD.lock().unwrap_or_else(|e| e.into_inner());
        match held.as_mut() {
            Some(lines) => lines.push(format!("{prefix}{line}")),
            None => {
                let _ = writeln!(std::io::stderr().lock(), "{prefix}{line}");
            }
        }
    }
    drop(progress);
    to_syslog(priority, &line);
}

/// Starts the progress line of a batch of `total` certificates, on a terminal only
/// ([`Sinks::terminal`]) and for more than one certificate.
pub fn progress_start(total: usize) {
    if !TERMINAL.load(Ordering::Relaxed) || total < 2 {
        return;
    }
    let progress = Progress {
        done: 0,
        total,
        now: "planning".into(),
    };
    progress.draw(&mut std::io::stderr().lock());
    *PROGRESS.lock().unwrap_or_else(|e| e.into_inner()) = Some(progress);
}

/// Says on the progress line what is being done now (`example.org: validating`); nothing
/// without one. Any thread may call it; the last call is shown.
pub fn progress(now: impl Display) {
    let mut guard = PROGRESS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(p) = guard.as_mut() {
        p.now = now.to_string();
        p.draw(&mut std::io::stderr().lock());
    }
}

/// Counts one more certificate as done on the progress line.
pub fn progress_done() {
    let mut guard = PROGRESS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(p) = guard.as_mut() {
        p.done = (p.done + 1).min(p.total);
        p.draw(&mut std::io::stderr().lock());
    }
}

/// Erases the progress line and ends it.
pub fn progress_end() {
    let mut guard = PROGRESS.lock().unwrap_or_else(|e| e.into_inner());
    if guard.take().is_some() {
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "{ERASE}");
        let _ = err.flush();
        DRAWN.store(false, Ordering::Relaxed);
    }
}

/// A closing line for the person at the terminal (the summary of a batch), on stderr; nothing
/// when stderr is not such a terminal ([`Sinks::terminal`]) or with `--quiet`, so that cron
/// and the journal get no line for a run where nothing happened.
pub fn summary(msg: impl Display) {
    if TERMINAL.load(Ordering::Relaxed) {
        progress_end();
        let _ = writeln!(std::io::stderr().lock(), "{msg}");
    }
}

fn to_syslog(priority: Priority, line: &str) {
    let mut guard = SYSLOG.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(logger) = guard.as_mut() {
        let _ = match priority {
            Priority::Err => logger.err(line),
            Priority::Warning => logger.warning(line),
            Priority::Info => logger.info(line),
            Priority::Debug => logger.debug(line),
        };
    }
}

pub fn error(msg: impl Display) {
    emit(false, Priority::Err, &format_args!("error: {msg}"));
}

/// An error line on stderr and to syslog that never waits: for the way out of a run that may
/// be stuck writing to an output nobody reads. It takes none of std's output locks nor waits
/// for the syslog lock, and writes to stderr only when that can be done at once; what cannot
/// is lost.
pub fn error_now(msg: &str) {
    let prefix = if JOURNAL.load(Ordering::Relaxed) {
        "<3>"
    } else {
        ""
    };
    // A progress line on the terminal is erased first (best effort: no lock is taken).
    let erase = if DRAWN.load(Ordering::Relaxed) {
        ERASE
    } else {
        ""
    };
    write_now(
        libc::STDERR_FILENO,
        &format!("{erase}{prefix}error: {msg}\n"),
    );
    if let Ok(mut guard) = SYSLOG.try_lock()
        && let Some(logger) = guard.as_mut()
    {
        let _ = logger.err(format!("error: {msg}"));
    }
}

/// A line of data on stdout that never waits, as [`error_now`] writes its line: for the last
/// word of a run ended by the watchdog (`--check`'s UNKNOWN).
pub fn data_now(line: &str) {
    write_now(libc::STDOUT_FILENO, &format!("{line}\n"));
}

/// Writes `text` to `fd` when that can be done at once, bypassing std's locks and buffers;
/// what cannot is lost.
fn write_now(fd: libc::c_int, text: &str) {
    let mut poll = libc::pollfd {
        fd,
        events: libc::POLLOUT,
        revents: 0,
    };
    // SAFETY: poll(2) on one valid pollfd without waiting, then write(2) of a buffer we own;
    // a short line to a pipe with room is written without blocking.
    unsafe {
        if libc::poll(&mut poll, 1, 0) == 1 && poll.revents & libc::POLLOUT != 0 {
            libc::write(fd, text.as_ptr().cast(), text.len());
        }
    }
}

pub fn warn(msg: impl Display) {
    if enabled(Level::Normal) {
        emit(false, Priority::Warning, &format_args!("warning: {msg}"));
    }
}

/// Data on stdout (a table, a report, a certificate): a reader that went away (`| head`)
/// ends nothing but the output.
pub fn data(text: impl Display) {
    let _ = write!(std::io::stdout().lock(), "{text}");
}

/// [`data`] and a line break.
pub fn data_line(text: impl Display) {
    let _ = writeln!(std::io::stdout().lock(), "{text}");
}

/// From now on stdout carries data (a certificate for `--signcsr`): what was done goes to
/// stderr instead.
pub fn stdout_is_data() {
    STDOUT_IS_DATA.store(true, Ordering::Relaxed);
}

/// One line of what was done, on stdout (only to syslog when stdout holds a JSON report, on
/// stderr when it holds other data).
pub fn info(msg: impl Display) {
    if !enabled(Level::Normal) {
        return;
    }
    if JSON.load(Ordering::Relaxed) {
        to_syslog(Priority::Info, &msg.to_string());
    } else {
        emit(
            !STDOUT_IS_DATA.load(Ordering::Relaxed),
            Priority::Info,
            &msg,
        );
    }
}

/// A step, with `--verbose` only.
pub fn debug(msg: impl Display) {
    if enabled(Level::Verbose) {
        let since = START
            .get()
            .map_or(0.0, |s| s.elapsed().as_secs_f64() * 1000.0);
        emit(
            false,
            Priority::Debug,
            &format_args!("[{since:7.1} ms] {msg}"),
        );
    }
}

/// The time since logging started (the start of the run).
pub fn elapsed() -> std::time::Duration {
    START.get().map_or_else(Default::default, |s| s.elapsed())
}

/// When logging started: `--verbose` lines say how long after it they were written.
static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();

/// A line a hook printed, shown as it is, like any line of what was done.
pub fn hook_line(line: &str) {
    info(line);
}

/// For the ACME client's request trace.
pub fn trace(msg: &str) {
    debug(msg);
}

/// `2026-11-23 14:05:09 UTC` for Unix seconds; a time outside the years -9999 to 9999 as
/// `<ts> s after 1970-01-01 00:00:00 UTC`.
pub fn utc(ts: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp(ts) {
        Ok(t) => format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        ),
        Err(_) => format!("{ts} s after 1970-01-01 00:00:00 UTC"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn utc_dates() {
        assert_eq!(super::utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(super::utc(784_111_777), "1994-11-06 08:49:37 UTC");
        assert_eq!(super::utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(super::utc(1_795_392_000), "2026-11-23 00:00:00 UTC");
        assert_eq!(super::utc(253_402_300_799), "9999-12-31 23:59:59 UTC");
        assert_eq!(super::utc(-1), "1969-12-31 23:59:59 UTC");
    }
}
