//! Output for people: stdout for what was done, stderr for problems, `<N>` priority prefixes
//! when systemd's journal reads us.

use std::fmt::Display;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

/// How much to say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Errors only (`--quiet`).
    Quiet = 0,
    /// Errors, warnings and one line per certificate acted on.
    Normal = 1,
    /// Also every step (`--verbose`).
    Verbose = 2,
}

static LEVEL: AtomicU8 = AtomicU8::new(Level::Normal as u8);
static JOURNAL: AtomicBool = AtomicBool::new(false);

/// Sets the level; `journal` adds syslog priority prefixes (`<3>` error ... `<7>` debug), which
/// systemd's journal turns into priorities.
pub fn init(level: Level, journal: bool) {
    LEVEL.store(level as u8, Ordering::Relaxed);
    JOURNAL.store(journal, Ordering::Relaxed);
}

/// True when systemd connected our stderr to the journal.
pub fn under_journal() -> bool {
    std::env::var_os("JOURNAL_STREAM").is_some()
}

fn enabled(level: Level) -> bool {
    LEVEL.load(Ordering::Relaxed) >= level as u8
}

fn emit(to_stdout: bool, priority: u8, msg: &dyn Display) {
    let prefix = if JOURNAL.load(Ordering::Relaxed) {
        format!("<{priority}>")
    } else {
        String::new()
    };
    // A closed stdout or stderr (cron without a mailer) must not end the run.
    if to_stdout {
        let _ = writeln!(std::io::stdout().lock(), "{prefix}{msg}");
    } else {
        let _ = writeln!(std::io::stderr().lock(), "{prefix}{msg}");
    }
}

pub fn error(msg: impl Display) {
    emit(false, 3, &format_args!("error: {msg}"));
}

pub fn warn(msg: impl Display) {
    if enabled(Level::Normal) {
        emit(false, 4, &format_args!("warning: {msg}"));
    }
}

/// One line of what was done, on stdout.
pub fn info(msg: impl Display) {
    if enabled(Level::Normal) {
        emit(true, 6, &msg);
    }
}

/// A step, with `--verbose` only.
pub fn debug(msg: impl Display) {
    if enabled(Level::Verbose) {
        emit(false, 7, &msg);
    }
}

/// `2026-11-23 14:05:09 UTC` for Unix seconds.
pub fn utc(ts: i64) -> String {
    let days = ts.div_euclid(86_400);
    let secs = ts.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn utc_dates() {
        assert_eq!(super::utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(super::utc(784_111_777), "1994-11-06 08:49:37 UTC");
        assert_eq!(super::utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(super::utc(1_795_392_000), "2026-11-23 00:00:00 UTC");
    }
}
