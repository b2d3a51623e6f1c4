//! Our own run state in `BASEDIR/state/`, beside dehydrated's layout: per certificate, what
//! it was issued under and how its validation failed, and when the last run was. Written
//! crash-safe; a missing or unreadable file is an empty state, never an error.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::acme::pace::OrderLimit;
use crate::acme::poll::Timings;
use crate::acme::text;
use crate::error::{Error, Result, Status};
use crate::keys::KeyAlgo;
use crate::store::{self, FileId, StateLayout};
use crate::x509::{CertFacts, Leaf};

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
    /// How the latest attempt to renew this certificate ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_attempt: Option<Attempt>,
    /// When a new certificate last went live (Unix seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_success: Option<i64>,
    /// When an attempt last failed (Unix seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_failure: Option<i64>,
    /// Attempts that failed for good (outcome `failed`) since the last success; `failures`
    /// stays the validation failures that drive the back-off.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub failed_attempts: u32,
    /// Attempts deferred by a temporary failure (outcome `deferred`: the CA unreachable, rate
    /// limited, the run stopped) since the last success.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub deferred_attempts: u32,
    /// The names of the CSR that the `generate_csr` hook gave the last `--cron` run that
    /// planned this certificate; None when it gave none. What is asked of a certificate whose
    /// key comes from such a CSR is its names and any key type: `--check`, which runs no hook,
    /// asks what that run asked (`Asked::of` in commands/session.rs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub csr_names: Option<Vec<String>>,
}

/// How one attempt to renew a certificate ended, as `state/` keeps it and `--check`, `--json`
/// and the metrics show it. Holds the CA's words, never a secret or a key authorization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    /// When it ended, Unix seconds.
    pub at: i64,
    /// "issued", "failed" or "deferred" (temporary: CA unreachable, rate limited, stopped).
    pub outcome: String,
    /// Where it failed: "account", "order", "validation", "finalize", "download", "write",
    /// "deploy", "hook <event>", "config", ... (None when issued).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    /// The CA's problem type (`urn:ietf:params:acme:error:...`), when the CA said one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem_type: Option<String>,
    /// The CA's detail, or our error's words, cleaned (acme/text.rs) and bounded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl Attempt {
    /// The attempt that ended at `at` with `result`: issued, or how and where it failed, in
    /// the CA's words when it gave them ([`Error::step`], [`Error::problem`]). The one place
    /// that turns an error into a record.
    pub fn of(at: i64, result: std::result::Result<(), &Error>) -> Attempt {
        let Err(e) = result else {
            return Attempt {
                at,
                outcome: "issued".into(),
                step: None,
                problem_type: None,
                detail: None,
            };
        };
        let problem = e.problem().filter(|p| !p.kind.is_empty());
        let words = match problem {
            Some(p) if !p.detail.is_empty() => p.detail.clone(),
            _ => e.to_string(),
        };
        Attempt {
            at,
            outcome: if e.status() == Status::Temporary {
                "deferred"
            } else {
                "failed"
            }
            .into(),
            step: Some(e.step()),
            problem_type: problem.map(|p| p.kind.clone()),
            detail: Some(text::without_key_authorizations(&text::shown(&words))),
        }
    }

    /// True when a new certificate went live.
    pub fn issued(&self) -> bool {
        self.outcome == "issued"
    }
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
    /// How long this CA took lately to validate and to sign: where polling starts.
    #[serde(default)]
    pub timings: Timings,
    /// The account `orders` were sent by (its URL).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub account: String,
    /// When the account's new orders of the last `ORDER_LIMIT` window were accepted (Unix
    /// seconds), oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub orders: Vec<i64>,
}

impl CaState {
    /// The record of the CA at `directory`: this one when it is about that CA, else an empty
    /// one (another CA's times and orders say nothing of this one).
    /// `directory` is kept as [`text::shown_url`] shows it, without a user or password.
    pub fn about(self, directory: &str) -> CaState {
        if self.is_about(directory) {
            self
        } else {
            CaState {
                directory: text::shown_url(directory).into_owned(),
                ..CaState::default()
            }
        }
    }

    /// Whether this is the record of the CA at `directory` (a user or password in the URL
    /// does not count: they are not kept).
    pub fn is_about(&self, directory: &str) -> bool {
        self.directory == text::shown_url(directory)
    }

    /// When `account` sent its new orders, as far as recorded.
    pub fn orders_of(&self, account: &str) -> &[i64] {
        if self.account == account {
            &self.orders
        } else {
            &[]
        }
    }

    /// Records that `account` sent a new order at `at`, keeping only the orders still inside
    /// `limit`'s window then (none without a limit: nothing counts them).
    pub fn ordered(&mut self, account: &str, at: i64, limit: Option<OrderLimit>) {
        if self.account != account {
            self.account = account.to_string();
            self.orders.clear();
        }
        self.orders.push(at);
        self.orders = limit.map_or_else(Vec::new, |l| l.recent(&self.orders, at));
    }
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

    /// Records the attempt that ended at `at` with `result` ([`Attempt::of`]): the last
    /// attempt, the last success or failure, and the failed and deferred attempts since the
    /// last success.
    pub fn attempted(&mut self, at: i64, result: std::result::Result<(), &Error>) {
        let attempt = Attempt::of(at, result);
        if attempt.issued() {
            self.last_success = Some(at);
            self.failed_attempts = 0;
            self.deferred_attempts = 0;
        } else {
            self.last_failure = Some(at);
            let count = if attempt.outcome == "deferred" {
                &mut self.deferred_attempts
            } else {
                &mut self.failed_attempts
            };
            *count = count.saturating_add(1);
        }
        self.last_attempt = Some(attempt);
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
    /// How the last `--cron` run went, for the metrics and `--check`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last: Option<LastRun>,
}

/// How one `--cron` run went.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LastRun {
    /// When it started, Unix seconds.
    pub start: i64,
    /// How long it took, in seconds.
    pub duration: f64,
    /// Its exit status (DESIGN §9).
    pub exit_status: u8,
    /// Certificates that went live.
    pub renewed: usize,
    /// Certificates that failed, held back ones included.
    pub failed: usize,
    /// HTTP requests sent to the CA.
    pub requests: usize,
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

/// What was read of one live `cert.pem`, kept with the identity of the file it was read from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveRecord {
    pub file: FileId,
    /// SHA-256 of the file (hex), compared with [`CertState::cert_sha256`] as the file itself
    /// would be.
    pub sha256: String,
    pub names: Vec<String>,
    pub not_before: i64,
    pub not_after: i64,
    /// [`KeyAlgo`]'s `Display` (`rsa2048`, `prime256v1`, `secp384r1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
}

impl LiveRecord {
    pub fn new(file: FileId, sha256: String, leaf: &Leaf) -> LiveRecord {
        LiveRecord {
            file,
            sha256,
            names: leaf.facts.names.clone(),
            not_before: leaf.facts.not_before,
            not_after: leaf.facts.not_after,
            key: leaf.facts.key.map(|k| k.to_string()),
            cert_id: leaf.cert_id.clone(),
            issuer: leaf.issuer.clone(),
        }
    }

    /// What was read, as [`crate::x509::leaf`] returned it, and the file's SHA-256; None when
    /// the record holds a key type no version of ours writes.
    pub fn into_leaf(self) -> Option<(Leaf, String)> {
        let key = match self.key.as_deref() {
            None => None,
            Some("prime256v1") => Some(KeyAlgo::Prime256v1),
            Some("secp384r1") => Some(KeyAlgo::Secp384r1),
            Some(other) => Some(KeyAlgo::Rsa(other.strip_prefix("rsa")?.parse().ok()?)),
        };
        let leaf = Leaf {
            facts: CertFacts {
                names: self.names,
                not_before: self.not_before,
                not_after: self.not_after,
                key,
            },
            cert_id: self.cert_id,
            issuer: self.issuer,
        };
        Some((leaf, self.sha256))
    }
}

/// The cache of what was read of every live certificate (`state/.live.json`), by certificate
/// name: a record counts only for a file of the same [`FileId`], so a changed file is always
/// read again. A cache file this user did not write alone (another owner, writable by group or
/// others), or that cannot be read as one, is an empty cache; its absence costs nothing but the
/// reading of the certificates. A record leaves memory when it is taken (its data becomes the
/// certificate's facts): what a run holds does not double with the cache.
#[derive(Debug, Default)]
pub struct LiveCache {
    /// The file's records not taken yet.
    loaded: HashMap<String, LiveRecord>,
    /// The identity of each record taken, which the file holds.
    taken: HashMap<String, FileId>,
    /// What the file is to hold instead: a new record, or None for none.
    changes: HashMap<String, Option<LiveRecord>>,
    /// The certificate folders last found whole (no links left between two sets, no
    /// temporary file of a killed run), by certificate name, with their identity then.
    folders: HashMap<String, FileId>,
    /// Folders found whole in this run, for the file.
    folder_changes: HashMap<String, FileId>,
}

/// The cache file's contents.
#[derive(Debug, Default, Serialize, Deserialize)]
struct LiveFile {
    certs: HashMap<String, LiveRecord>,
    #[serde(default, skip_serializing_if = "HashMap::is_empty")]
    folders: HashMap<String, FileId>,
}

impl LiveCache {
    /// The record of `name`, when it was read from the file `file` is; a record of another
    /// file is dropped.
    pub fn take(&mut self, name: &str, file: &FileId) -> Option<LiveRecord> {
        if let Some(Some(made)) = self.changes.get(name) {
            return (made.file == *file).then(|| made.clone());
        }
        let record = self.loaded.remove(name).filter(|r| r.file == *file)?;
        self.taken.insert(name.to_string(), record.file);
        Some(record)
    }

    /// Keeps `record` as what `name`'s live certificate says.
    pub fn put(&mut self, name: &str, record: LiveRecord) {
        if self.taken.get(name) != Some(&record.file) {
            self.changes.insert(name.to_string(), Some(record));
        }
    }

    /// Whether the folder of `name` is the one last found whole: the same identity, so
    /// nothing in it was made, renamed or removed since.
    pub fn folder_whole(&self, name: &str, folder: &FileId) -> bool {
        self.folders.get(name) == Some(folder)
    }

    /// Notes that the folder of `name`, of identity `folder`, was found whole.
    pub fn folder_found_whole(&mut self, name: &str, folder: FileId) {
        if self.folders.get(name) != Some(&folder) {
            self.folder_changes.insert(name.to_string(), folder);
        }
    }

    /// Forgets `name` (it has no readable live certificate).
    pub fn forget(&mut self, name: &str) {
        let held = self.loaded.remove(name).is_some() | self.taken.remove(name).is_some();
        if held || self.changes.contains_key(name) {
            self.changes.insert(name.to_string(), None);
        }
    }
}

/// `BASEDIR/state/`, read and written.
pub struct StateDir {
    layout: StateLayout,
}

/// `state/` as it was before a dry run (see [`StateDir::untouched`]): whether it existed, and
/// its times.
pub struct Untouched {
    dir: PathBuf,
    times: Option<(Option<SystemTime>, Option<SystemTime>)>,
}

impl Untouched {
    /// Puts the folder back as it was, once what a dry run wrote in it (its challenge
    /// journals) is gone: removed when it did not exist and is empty, else given back its
    /// access and change times. Best effort: nothing else in it is touched.
    pub fn restore(self) {
        match self.times {
            None => {
                let _ = fs::remove_dir(&self.dir);
            }
            Some((accessed, modified)) => {
                let mut times = fs::FileTimes::new();
                if let Some(t) = accessed {
                    times = times.set_accessed(t);
                }
                if let Some(t) = modified {
                    times = times.set_modified(t);
                }
                if let Ok(dir) = store::open_dir(&self.dir) {
                    let _ = dir.set_times(times);
                }
            }
        }
    }
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

    /// What the folder looks like now, for [`Untouched::restore`] to put back once a dry run
    /// took away the challenge journals it wrote.
    pub fn untouched(&self) -> Untouched {
        let times = fs::symlink_metadata(&self.layout.dir)
            .ok()
            .filter(fs::Metadata::is_dir)
            .map(|m| (m.accessed().ok(), m.modified().ok()));
        Untouched {
            dir: self.layout.dir.clone(),
            times,
        }
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

    /// The certificates whose challenges an interrupted run may have left in place, from one
    /// listing of the folder; None when it cannot be listed (then each is looked for).
    pub fn challenges_left(&self) -> Option<std::collections::HashSet<String>> {
        self.layout.challenges_left()
    }

    pub fn save_cert(&self, name: &str, state: &CertState) -> Result<()> {
        self.write(self.layout.cert(name), state)
    }

    /// Records that an attempt to renew `name` ended at `at` with `result`
    /// ([`CertState::attempted`]); a state that cannot be written is a warning.
    pub fn attempted(&self, name: &str, at: i64, result: std::result::Result<(), &Error>) {
        let mut state = self.cert(name);
        state.attempted(at, result);
        if let Err(e) = self.save_cert(name, &state) {
            crate::logging::warn(e);
        }
    }

    pub fn ca(&self) -> CaState {
        self.read(self.layout.ca())
    }

    pub fn save_ca(&self, state: &CaState) -> Result<()> {
        self.write(self.layout.ca(), state)
    }

    /// Writes `state` as [`StateDir::save_ca`] does, atomically, but without waiting for the
    /// disk: what a run notes as it goes (each new order) survives the process being killed at
    /// once, and the run's last [`StateDir::save_ca`] makes it survive a power loss too. Costs
    /// no fsync in the middle of a batch.
    pub fn note_ca(&self, state: &CaState) -> Result<()> {
        store::create_dir(&self.layout.dir, 0o700)?;
        let text = serde_json::to_string_pretty(state).unwrap_or_default() + "\n";
        store::write_ephemeral(&self.layout.ca(), text.as_bytes(), 0o600)
    }

    /// The cache of live certificates' facts ([`LiveCache`]): empty when there is none, when it
    /// is not this user's alone, or when it cannot be read.
    pub fn live_cache(&self) -> LiveCache {
        let file = self.live_file();
        LiveCache {
            loaded: file.certs,
            folders: file.folders,
            ..LiveCache::default()
        }
    }

    fn live_file(&self) -> LiveFile {
        // Read as it is parsed: the file of ten thousand certificates is some megabytes.
        store::open_own(&self.layout.live_cache())
            .ok()
            .flatten()
            .and_then(|file| serde_json::from_reader(std::io::BufReader::new(file)).ok())
            .unwrap_or_default()
    }

    /// Writes what `cache` learnt, when it learnt anything, keeping only the certificates of
    /// `scope` when it is given (the whole of domains.txt). It is a cache: written atomically
    /// but not fsynced, and a failure to write it is no error of the run (the certificates
    /// are read again).
    pub fn save_live_cache(
        &self,
        cache: &mut LiveCache,
        scope: Option<&std::collections::HashSet<&str>>,
    ) {
        let out_of_scope =
            |name: &String| scope.is_some_and(|names| !names.contains(name.as_str()));
        if cache.changes.is_empty()
            && cache.folder_changes.is_empty()
            && !cache.loaded.keys().any(out_of_scope)
            && !cache.folders.keys().any(out_of_scope)
        {
            return;
        }
        let mut file = self.live_file();
        for (name, change) in cache.changes.drain() {
            match change {
                Some(record) => file.certs.insert(name, record),
                None => file.certs.remove(&name),
            };
        }
        for (name, folder) in cache.folder_changes.drain() {
            cache.folders.insert(name.clone(), folder);
            file.folders.insert(name, folder);
        }
        file.certs.retain(|name, _| !out_of_scope(name));
        file.folders.retain(|name, _| !out_of_scope(name));
        cache.folders.retain(|name, _| !out_of_scope(name));
        cache.loaded.retain(|name, _| !out_of_scope(name));
        let Ok(text) = serde_json::to_vec(&file) else {
            return;
        };
        if store::create_dir(&self.layout.dir, 0o700).is_ok() {
            let _ = store::write_ephemeral(&self.layout.live_cache(), &text, 0o600);
        }
    }

    /// Whether this user can read what the folder holds: it can list it and open the record
    /// of the runs, or they do not exist yet. False for a monitoring user let into BASEDIR
    /// but not into `state/`, to whom every record reads as empty.
    pub fn readable(&self) -> bool {
        let fine = |r: std::io::Result<()>| match r {
            Ok(()) => true,
            Err(e) => e.kind() == std::io::ErrorKind::NotFound,
        };
        fine(std::fs::read_dir(&self.layout.dir).map(|_| ()))
            && fine(std::fs::File::open(self.layout.run()).map(|_| ()))
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

    #[test]
    fn attempts_count_failures_in_a_row_until_a_success() {
        let mut s = CertState::default();
        let invalid = Error::Invalid {
            name: "a.example".into(),
            kind: "http-01",
            problem: Box::new(crate::acme::Problem {
                kind: "urn:ietf:params:acme:error:unauthorized".into(),
                detail: "the key authorization file did not match \"tokentokentokentoken.\
                         0123456789012345678901234567890123456789012\""
                    .into(),
                ..Default::default()
            }),
            response: String::new(),
        };
        s.attempted(10, Err(&invalid));
        let unreachable = Error::Stopped("SIGTERM".into());
        s.attempted(20, Err(&unreachable));
        // A stop is deferred, not failed: counted apart.
        assert_eq!((s.failed_attempts, s.deferred_attempts), (1, 1));
        assert_eq!((s.last_failure, s.last_success), (Some(20), None));
        let last = s.last_attempt.clone().unwrap();
        assert_eq!(
            (last.outcome.as_str(), last.step.as_deref()),
            ("deferred", Some("stopped"))
        );
        s.attempted(15, Err(&invalid));
        let last = s.last_attempt.clone().unwrap();
        assert_eq!(last.step.as_deref(), Some("validation"));
        assert_eq!(
            last.problem_type.as_deref(),
            Some("urn:ietf:params:acme:error:unauthorized")
        );
        assert_eq!(
            last.detail.as_deref(),
            Some("the key authorization file did not match \"<key authorization>\"")
        );
        assert_eq!((s.failed_attempts, s.deferred_attempts), (2, 1));
        s.attempted(30, Ok(()));
        assert_eq!((s.failed_attempts, s.deferred_attempts), (0, 0));
        assert_eq!((s.last_failure, s.last_success), (Some(15), Some(30)));
        assert_eq!(
            s.last_attempt,
            Some(Attempt {
                at: 30,
                outcome: "issued".into(),
                step: None,
                problem_type: None,
                detail: None,
            })
        );
    }
}
