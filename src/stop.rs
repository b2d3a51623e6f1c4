//! Stopping a run before its end: SIGTERM (`systemctl stop`, `docker stop`), SIGINT (Ctrl-C),
//! SIGHUP (a closed terminal), and `RUN_TIMEOUT`.
//!
//! A stop is cooperative: the signal only sets a flag. Every loop that can wait long (requests
//! and polls to the CA, hooks, the DNS wait, the lock) looks at it and ends its step with
//! [`Error::Stopped`]; what was put in place is taken away on the way out as after any other
//! failure (challenge files, DNS records, `clean_challenge`), `exit_hook` runs, the lock is
//! released, and the exit status is 75, so that systemd or the next cron run tries again.
//! A hook running when the stop comes is killed with everything it started, unless it is
//! cleaning up. A run that has not ended [`GRACE`] after the stop (a request that hangs, a
//! write to an output nobody reads) exits at once, taking no lock on the way out; a second
//! signal exits at once too. Either way the next run finishes what is half
//! done (see `cron::recover`).

use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::logging;

/// How long a stopped run may take to tidy up before it exits regardless.
pub const GRACE: Duration = Duration::from_secs(5);

/// 0 while running; the signal number once a signal asked to stop; [`DEADLINE`] when
/// `RUN_TIMEOUT` passed.
static STOP: AtomicI32 = AtomicI32::new(0);
const DEADLINE: i32 = -1;
/// When `RUN_TIMEOUT` passes.
static DEADLINE_AT: Mutex<Option<Instant>> = Mutex::new(None);

/// The exit status of a run stopped early: temporary, the next run goes on.
const EXIT_STOPPED: i32 = 75;
/// The status the watchdog and a second signal exit with: [`EXIT_STOPPED`] unless the command
/// set its own ([`exit_status`]).
static EXIT: AtomicI32 = AtomicI32::new(EXIT_STOPPED);

extern "C" fn on_signal(signal: libc::c_int) {
    if STOP.swap(signal, Ordering::SeqCst) != 0 {
        // SAFETY: _exit is async-signal-safe; a second signal means "now".
        unsafe { libc::_exit(EXIT.load(Ordering::SeqCst)) };
    }
}

/// Catches SIGTERM, SIGINT and SIGHUP, and starts the watchdog that ends a run that does not
/// stop within [`GRACE`], and stops one that passes its [`deadline`].
pub fn install() {
    for signal in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
        // SAFETY: the handler only swaps an atomic integer or calls _exit, both allowed in a
        // signal handler; the sigaction struct is zeroed then filled.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
            action.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(signal, &action, std::ptr::null_mut());
        }
    }
    let _ = thread::Builder::new().name("watchdog".into()).spawn(watch);
}

/// A folder the watchdog removes before it ends a run that did not stop in time: a
/// `--dry-run`'s temporary folder, which the run itself removes on any other way out.
static REMOVE_AT_EXIT: Mutex<Option<PathBuf>> = Mutex::new(None);

/// Has the watchdog remove `dir` (None: nothing) if it must end the run.
pub fn remove_at_exit(dir: Option<PathBuf>) {
    *REMOVE_AT_EXIT.lock().unwrap_or_else(|e| e.into_inner()) = dir;
}

/// The status to exit with when a stop cannot wait for the run to end (`--check` says
/// UNKNOWN, 3, as monitoring expects).
pub fn exit_status(code: i32) {
    EXIT.store(code, Ordering::SeqCst);
}

/// What makes the line on stdout of a run the watchdog ends, from the reason in words.
type LastLine = Box<dyn Fn(&str) -> String + Send>;

/// The line the watchdog writes on stdout before it ends a run that did not stop in time.
static LAST_LINE: Mutex<Option<LastLine>> = Mutex::new(None);

/// Has the watchdog write `line(reason)` on stdout if it must end the run (`--check`'s
/// UNKNOWN, which a monitoring system reads there); None: nothing, once the output is out.
pub fn last_line(line: Option<LastLine>) {
    *LAST_LINE.lock().unwrap_or_else(|e| e.into_inner()) = line;
}

/// Stops the run `timeout` from now (`RUN_TIMEOUT`); None: never.
pub fn deadline(timeout: Option<Duration>) {
    *DEADLINE_AT.lock().unwrap_or_else(|e| e.into_inner()) = timeout.map(|t| Instant::now() + t);
}

fn watch() {
    loop {
        thread::sleep(Duration::from_millis(100));
        let deadline = *DEADLINE_AT.lock().unwrap_or_else(|e| e.into_inner());
        if deadline.is_some_and(|d| Instant::now() >= d) {
            let _ = STOP.compare_exchange(0, DEADLINE, Ordering::SeqCst, Ordering::SeqCst);
        }
        if STOP.load(Ordering::SeqCst) != 0 {
            break;
        }
    }
    thread::sleep(GRACE);
    let message = format!(
        "{}, and the run did not end within {} s: exiting now; the next run finishes what \
         is half done",
        why(),
        GRACE.as_secs()
    );
    let line = LAST_LINE.try_lock().ok().and_then(|guard| {
        guard.as_ref().map(|line| {
            line(&format!(
                "{}, and the run did not end within {} s",
                why(),
                GRACE.as_secs()
            ))
        })
    });
    // The run may be stuck in a write to an output nobody reads, holding std's lock on it:
    // the last word takes no such lock and is given a moment at most.
    let (said, heard) = std::sync::mpsc::channel();
    let _ = thread::Builder::new()
        .name("last word".into())
        .spawn(move || {
            if let Some(line) = &line {
                logging::data_now(line);
            }
            logging::error_now(&message);
            let _ = said.send(());
        });
    let _ = heard.recv_timeout(LAST_WORD);
    if let Ok(guard) = REMOVE_AT_EXIT.try_lock()
        && let Some(dir) = guard.as_ref()
    {
        let _ = std::fs::remove_dir_all(dir);
    }
    // SAFETY: _exit ends the process at once; unlike process::exit it runs no exit handlers,
    // which would flush stdout through the lock a blocked writer holds.
    unsafe { libc::_exit(EXIT.load(Ordering::SeqCst)) };
}

/// How long the watchdog's last message may take before the process exits without it.
const LAST_WORD: Duration = Duration::from_secs(1);

/// Whether the run was asked to stop.
pub fn requested() -> bool {
    STOP.load(Ordering::Relaxed) != 0
}

/// Ok while the run goes on; [`Error::Stopped`] once it was asked to stop.
pub fn check() -> Result<()> {
    if requested() {
        Err(Error::Stopped(why()))
    } else {
        Ok(())
    }
}

/// What stopped the run, in words.
pub fn why() -> String {
    match STOP.load(Ordering::Relaxed) {
        0 => "not stopped".into(),
        DEADLINE => "RUN_TIMEOUT passed".into(),
        libc::SIGTERM => "stopped by SIGTERM".into(),
        libc::SIGINT => "stopped by SIGINT (Ctrl-C)".into(),
        libc::SIGHUP => "stopped by SIGHUP".into(),
        n => format!("stopped by signal {n}"),
    }
}

/// Sleeps `wait`, or less when the run is asked to stop.
pub fn sleep(wait: Duration) {
    let end = Instant::now() + wait;
    loop {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() || requested() {
            return;
        }
        thread::sleep(left.min(Duration::from_millis(50)));
    }
}
