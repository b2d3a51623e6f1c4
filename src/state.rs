//! Our own run state in `BASEDIR/state/`, beside dehydrated's layout: per certificate, what
//! it was issued under and how its validation failed, and when the last run was. Written
//! crash-safe; a missing or unreadable file is an empty state, never an error.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::store::{self, StateLayout};

/// What we remember of one certificate between runs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertState {
    /// The `PREFERRED_CHAIN` the live certificate was issued under ("" for none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_chain: Option<String>,
    /// Validation failures in a row.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub failures: u32,
    /// Not to be tried again before this time (Unix seconds), after `failures`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff_until: Option<i64>,
    /// The `ACME_PROFILE` the live certificate was issued under ("" for none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// The CA's last renewal information for the live certificate (RFC 9773).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ari: Option<AriState>,
    /// The timestamp of a set that was written and checked, whose links were about to move and
    /// whose `deploy_cert` had not yet succeeded. A run that finds it finishes the job: moves
    /// the links when they are not there yet and runs `deploy_cert`, without a new order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<i64>,
    /// The directory URL of the CA that issued the live certificate: recorded at issuance and
    /// import (certbot's `server`), and for a certificate without a record once a run found
    /// another CA issued it. None for certificates of dehydrated and older versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<String>,
    /// SHA-256 of the `cert.pem` this program wrote (hex). A certificate file given to
    /// `CERT_OWNER` can be changed by that user; one that no longer matches is not trusted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_sha256: Option<String>,
    /// The CA refused an order with `rateLimited`: not asked again before this time (Unix
    /// seconds; its `Retry-After`, else an hour).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limited_until: Option<i64>,
    /// How the last attempt to issue it ended, with the CA's words when it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_attempt: Option<Attempt>,
}

/// The last attempt to issue a certificate: when, how it ended, and for a failure the step
/// and what the CA said.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    /// Unix seconds.
    pub at: i64,
    /// `issued`, `failed` or `deferred`.
    pub outcome: String,
    /// The step that failed: `validation`, `order`, `hook deploy_challenge`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    /// The CA's problem type (`urn:ietf:params:acme:error:...`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem_type: Option<String>,
    /// The CA's detail, cleaned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// A renewal information answer, kept until the CA's `Retry-After` says to ask again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AriState {
    /// The certID it is for; a new certificate needs a new answer.
    pub cert_id: String,
    /// The suggested window, Unix seconds.
    pub start: i64,
    pub end: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub explanation: Option<String>,
    /// When to ask again.
    pub next_check: i64,
}

/// What we learnt of the CA's directory, so that a run with nothing due need not ask.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CaState {
    /// The directory URL this is about.
    #[serde(default)]
    pub directory: String,
    /// It offers renewal information.
    #[serde(default)]
    pub renewal_info: bool,
    /// When the directory was read (Unix seconds).
    #[serde(default)]
    pub checked: i64,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// The first wait after a failed validation; each failure in a row doubles it.
const FIRST_BACKOFF: i64 = 30 * 60;
/// The longest wait: a failing name is still tried once a day.
const MAX_BACKOFF: i64 = 24 * 3600;

impl CertState {
    /// Records a failed validation at `now` and returns when the next try may be.
    pub fn failed(&mut self, now: i64) -> i64 {
        self.failures += 1;
        let wait = FIRST_BACKOFF
            .saturating_mul(1 << (self.failures - 1).min(16))
            .min(MAX_BACKOFF);
        let until = now + wait;
        self.backoff_until = Some(until);
        until
    }

    /// Forgets failures after a success.
    pub fn succeeded(&mut self) {
        self.failures = 0;
        self.backoff_until = None;
    }

    /// Some(until) while a failing name must not be tried.
    pub fn backed_off(&self, now: i64) -> Option<i64> {
        self.backoff_until.filter(|until| *until > now)
    }
}

/// What we remember of the runs themselves.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RunState {
    /// When the last `--cron` run started (Unix seconds).
    #[serde(default)]
    pub last_run: Option<i64>,
    /// When the latest runs of the schedule (`--cron` without `--domain`) started, oldest
    /// first, at most [`RECENT_RUNS`](crate::renewal::RECENT_RUNS).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub runs: Vec<i64>,
}

impl RunState {
    /// The start times the schedule is judged by: the recorded runs, or the last run for a
    /// state written before they were.
    pub fn recent(&self) -> Vec<i64> {
        if self.runs.is_empty() {
            self.last_run.into_iter().collect()
        } else {
            self.runs.clone()
        }
    }

    /// Records a run of the schedule that started at `now`.
    pub fn record(&mut self, now: i64) {
        let mut runs = self.recent();
        runs.push(now);
        let skip = runs.len().saturating_sub(crate::renewal::RECENT_RUNS);
        self.runs = runs.split_off(skip);
    }
}

/// `BASEDIR/state/`, read and written.
pub struct StateDir {
    layout: StateLayout,
}

impl StateDir {
    pub fn new(basedir: &Path) -> StateDir {
        StateDir {
            layout: StateLayout::new(basedir),
        }
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        &self.layout.dir
    }

    fn read<T: for<'de> Deserialize<'de> + Default>(&self, file: PathBuf) -> T {
        store::read_plain(&file)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default()
    }

    fn write<T: Serialize>(&self, file: PathBuf, value: &T) -> Result<()> {
        store::create_dir(&self.layout.dir, 0o700)?;
        let text = serde_json::to_string_pretty(value).unwrap_or_default() + "\n";
        store::write_file(&file, text.as_bytes(), 0o600)
    }

    pub fn cert(&self, name: &str) -> CertState {
        self.read(self.layout.cert(name))
    }

    /// Where the challenges of `name` are noted while they are in place.
    pub fn challenges(&self, name: &str) -> PathBuf {
        self.layout.challenges(name)
    }

    pub fn save_cert(&self, name: &str, state: &CertState) -> Result<()> {
        self.write(self.layout.cert(name), state)
    }

    pub fn ca(&self) -> CaState {
        self.read(self.layout.ca())
    }

    pub fn save_ca(&self, state: &CaState) -> Result<()> {
        self.write(self.layout.ca(), state)
    }

    pub fn run(&self) -> RunState {
        self.read(self.layout.run())
    }

    pub fn save_run(&self, state: &RunState) -> Result<()> {
        self.write(self.layout.run(), state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn back_off_doubles_from_half_an_hour_to_a_day() {
        let mut s = CertState::default();
        let waits: Vec<i64> = (0..8).map(|_| s.failed(1000) - 1000).collect();
        assert_eq!(waits, [1800, 3600, 7200, 14400, 28800, 57600, 86400, 86400]);
        assert_eq!(s.backed_off(1000 + 86399), Some(1000 + 86400));
        assert_eq!(s.backed_off(1000 + 86400), None);
        s.succeeded();
        assert_eq!(s, CertState::default());
    }

    #[test]
    fn state_survives_a_round_trip_and_junk_is_an_empty_state() {
        let base = std::env::temp_dir().join(format!("desiccant-state-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let dir = StateDir::new(&base);
        assert_eq!(dir.cert("a"), CertState::default());
        let mut s = CertState {
            preferred_chain: Some("ISRG Root X2".into()),
            ..CertState::default()
        };
        s.failed(5);
        dir.save_cert("a", &s).unwrap();
        assert_eq!(dir.cert("a"), s);
        std::fs::write(base.join("state/b.json"), "{ not json").unwrap();
        assert_eq!(dir.cert("b"), CertState::default());
        std::fs::remove_dir_all(&base).unwrap();
    }
}
