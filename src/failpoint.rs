//! Named points in a run where a test build can kill the process, to prove that a crash at any
//! moment leaves the old certificate in use and the next run repairs what is half done.
//!
//! Compiled in only with the cargo feature `failpoints` (the test suite builds with it); in a
//! normal build [`hit`] is an empty function the optimiser removes. With the feature:
//! - `DESICCANT_FAILPOINT=<name>` kills the process with SIGKILL when it reaches `<name>`;
//!   `<name>#<n>` at its n-th hit (counted from 1);
//! - `DESICCANT_FAILPOINT_LOG=<file>` appends the name of every point reached, one a line, so
//!   a test can learn every point a clean run passes;
//! - `DESICCANT_FAILPOINT_DEADLINES=<request secs>,<wait secs>` shortens the time limits of
//!   one request and of one wait for the CA (see [`deadlines`]), so that the tests of stalled
//!   connections and stuck orders end in seconds.

use crate::acme::Deadlines;

/// Marks the point `name`; see the module documentation.
#[cfg(feature = "failpoints")]
pub fn hit(name: &str) {
    use std::collections::HashMap;
    use std::io::Write;
    use std::sync::Mutex;

    static HITS: Mutex<Option<HashMap<String, u32>>> = Mutex::new(None);
    let n = {
        let mut hits = HITS.lock().unwrap_or_else(|e| e.into_inner());
        let count = hits
            .get_or_insert_with(HashMap::new)
            .entry(name.to_owned())
            .or_insert(0);
        *count += 1;
        *count
    };
    if let Some(log) = std::env::var_os("DESICCANT_FAILPOINT_LOG")
        && let Ok(mut f) = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(log)
    {
        // One write of the whole line: an O_APPEND write is not split, so the lines of two
        // threads passing kill points at once never run into each other.
        let _ = f.write_all(format!("{name}\n").as_bytes());
    }
    let Ok(want) = std::env::var("DESICCANT_FAILPOINT") else {
        return;
    };
    let (want_name, want_n) = match want.split_once('#') {
        Some((w, k)) => (w, k.parse().unwrap_or(1)),
        None => (want.as_str(), 1),
    };
    if want_name == name && want_n == n {
        // SAFETY: kill(2) on our own pid has no memory effects.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
    }
}

/// Marks the point `name`: nothing in a build without the `failpoints` feature.
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn hit(_name: &str) {}

/// The time limits the ACME client is to keep: the built-in ones, or in a test build
/// `DESICCANT_FAILPOINT_DEADLINES=<request secs>,<wait secs>` (each part read alone, fractions
/// allowed; one that does not read leaves its limit as it is).
#[cfg(feature = "failpoints")]
pub fn deadlines() -> Deadlines {
    let Ok(value) = std::env::var("DESICCANT_FAILPOINT_DEADLINES") else {
        return Deadlines::default();
    };
    let secs = |text: Option<&str>| {
        text.and_then(|t| t.trim().parse::<f64>().ok())
            .and_then(|s| std::time::Duration::try_from_secs_f64(s).ok())
    };
    let (request, wait) = value
        .split_once(',')
        .map_or((None, None), |(r, w)| (Some(r), Some(w)));
    Deadlines {
        request: secs(request),
        wait: secs(wait),
    }
}

/// The built-in time limits: a build without the `failpoints` feature reads no variable.
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn deadlines() -> Deadlines {
    Deadlines::default()
}
