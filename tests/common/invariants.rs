//! What "nothing lost" means, checked the same way after every fault: one checker that every
//! crash test calls, so that a new fault test cannot forget a rule.
//!
//! - I1 every live link in `certs/<name>/` is relative, points at a non-empty file in the same
//!   folder, and all of them at one timestamp (after a kill in the middle of the switch: each
//!   at the old or the new set);
//! - I2 the live set is valid: [`super::check_live_set`];
//! - I3 on a failed or killed run the live set is byte-for-byte what it was before;
//! - I5 the account key and files are old or new, never missing or empty;
//! - I6 after the next run: no challenge files left, every `deploy_challenge` cleaned, no
//!   temporary files, the lock free, at most one extra order;
//! - I7 keys 0600 and no secret in any output;
//! - I8 the exit code (asserted by the tests themselves) and `deploy_cert` run again by the
//!   next run after it failed or was cut short.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use super::{Env, check_live_set, mode};

/// The live links of a certificate folder, in dehydrated's order.
pub const LINKS: [&str; 5] = [
    "privkey.pem",
    "chain.pem",
    "fullchain.pem",
    "cert.csr",
    "cert.pem",
];

/// What a user could see of a BASEDIR before a fault: every live link's target and the bytes
/// behind it, and the account files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub links: BTreeMap<String, (String, Vec<u8>)>,
    pub account: BTreeMap<String, Vec<u8>>,
}

impl Snapshot {
    pub fn take(env: &Env, certs: &[&str]) -> Snapshot {
        let mut links = BTreeMap::new();
        for name in certs {
            let dir = env.cert_dir(name);
            for link in LINKS {
                let Ok(target) = fs::read_link(dir.join(link)) else {
                    continue;
                };
                let bytes = fs::read(dir.join(link)).unwrap_or_default();
                links.insert(
                    format!("{name}/{link}"),
                    (target.to_string_lossy().into_owned(), bytes),
                );
            }
        }
        let mut account = BTreeMap::new();
        if let Ok(entries) = fs::read_dir(env.account_dir()) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.starts_with('.') {
                    continue;
                }
                account.insert(name, fs::read(e.path()).unwrap_or_default());
            }
        }
        Snapshot { links, account }
    }

    /// Each live link and the file it points at: what a failure message may show (never the
    /// bytes, which include private keys).
    pub fn targets(&self) -> BTreeMap<&str, &str> {
        self.links
            .iter()
            .map(|(link, (target, _))| (link.as_str(), target.as_str()))
            .collect()
    }

    /// The timestamp of a set a link of `name` points at, e.g. `cert.pem -> cert-1700.pem`.
    fn stamp(target: &str) -> Option<&str> {
        let (_, rest) = target.split_once('-')?;
        rest.split_once('.').map(|(ts, _)| ts)
    }
}

/// How far a killed run got, as the checker must judge it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Before any link moved: the live set must be byte-for-byte the old one (I3).
    Untouched,
    /// While the links moved: each link at the old set or at one new set.
    Switching,
    /// After every link moved: one new set, whole.
    Switched,
}

/// The checks right after a fault, before any other run: I1, I3, I5, I7.
pub fn after_fault(env: &Env, certs: &[&str], before: &Snapshot, stage: Stage) {
    let now = Snapshot::take(env, certs);
    for name in certs {
        let dir = env.cert_dir(name);
        let mut stamps = Vec::new();
        for link in LINKS {
            let key = format!("{name}/{link}");
            let Ok(target) = fs::read_link(dir.join(link)) else {
                assert!(
                    !before.links.contains_key(&key),
                    "I3: {key} was there before the fault and is gone"
                );
                continue;
            };
            let target = target.to_string_lossy().into_owned();
            assert!(
                !target.contains('/'),
                "I1: {key} -> {target} is not a name in the same folder"
            );
            let len = fs::metadata(dir.join(&target))
                .unwrap_or_else(|e| panic!("I1: {key} -> {target} points at nothing: {e}"))
                .len();
            assert!(len > 0, "I1: {key} -> {target} is empty");
            stamps.push((link, Snapshot::stamp(&target).unwrap_or("").to_string()));
        }
        let old: Vec<String> = LINKS
            .iter()
            .filter_map(|l| before.links.get(&format!("{name}/{l}")))
            .filter_map(|(t, _)| Snapshot::stamp(t).map(str::to_string))
            .collect();
        let distinct: Vec<&String> = {
            let mut d: Vec<&String> = stamps.iter().map(|(_, s)| s).collect();
            d.sort();
            d.dedup();
            d
        };
        match stage {
            Stage::Untouched => {
                for link in LINKS {
                    let key = format!("{name}/{link}");
                    // Compared whole, reported by name only: the key is not for a log.
                    let (was, is) = (before.links.get(&key), now.links.get(&key));
                    assert!(
                        was == is,
                        "I3: {key} changed although the run was stopped before any link moved: \
                         {:?} -> {:?}",
                        was.map(|(t, _)| t),
                        is.map(|(t, _)| t)
                    );
                }
            }
            Stage::Switching => {
                let new: Vec<&&String> = distinct.iter().filter(|s| !old.contains(s)).collect();
                assert!(
                    new.len() <= 1,
                    "I1: {name}'s links point at more than one new set: {stamps:?}"
                );
            }
            Stage::Switched => {
                assert_eq!(
                    distinct.len(),
                    1,
                    "I1: {name}'s links point at several sets: {stamps:?}"
                );
            }
        }
    }
    // I5: account files that were there are still there and not empty; new ones are whole.
    for (file, bytes) in &before.account {
        let now_bytes = now.account.get(file);
        assert!(
            now_bytes.is_some_and(|b| !b.is_empty()),
            "I5: account file {file} is missing or empty after the fault (it held {} bytes)",
            bytes.len()
        );
    }
    for (file, bytes) in &now.account {
        assert!(!bytes.is_empty(), "I5: account file {file} is empty");
        if file.ends_with(".json") {
            assert!(
                serde_json::from_slice::<serde_json::Value>(bytes).is_ok(),
                "I5: account file {file} is not whole JSON"
            );
        }
    }
    keys_are_private(env.path());
}

/// I7: every private key under `base` (certificate keys, account keys, PKCS#12 files, the
/// challenge journals) is readable by its owner only.
pub fn keys_are_private(base: &Path) {
    for path in walk(base) {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let secret = name.starts_with("privkey")
            || name.starts_with("account_key")
            || name.ends_with(".p12")
            || name.ends_with(".challenges.json");
        if secret && !path.is_symlink() {
            assert_eq!(
                mode(&path) & 0o077,
                0,
                "I7: {} is readable by others ({:o})",
                path.display(),
                mode(&path)
            );
        }
    }
}

/// What the next clean run must have left: I1, I2 for every certificate, and I6.
pub struct Recovered<'a> {
    pub env: &'a Env,
    /// Each certificate with its names.
    pub certs: &'a [(&'a str, &'a [&'a str])],
    pub root_der: &'a [u8],
    /// The hook's log of calls, one line each: the handler and its arguments.
    pub hook_log: Option<&'a Path>,
}

impl Recovered<'_> {
    pub fn check(&self) {
        for (name, names) in self.certs {
            check_live_set(&self.env.cert_dir(name), names, self.root_der);
        }
        let base = self.env.path();
        for path in walk(base) {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            assert!(
                !name.contains(".tmp-"),
                "I6: a temporary file is left: {}",
                path.display()
            );
            assert!(
                !name.ends_with(".challenges.json"),
                "I6: challenges noted by an interrupted run were never taken away: {}",
                path.display()
            );
        }
        let leftovers: Vec<String> = fs::read_dir(&self.env.webroot)
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        assert!(
            leftovers.is_empty(),
            "I6: challenge files left in the webroot: {leftovers:?}"
        );
        assert!(
            !base.join("lock").exists(),
            "I6: the lock file is still there after a clean run"
        );
        if let Some(log) = self.hook_log {
            every_deployed_challenge_cleaned(log);
        }
        keys_are_private(base);
    }
}

/// I6: every `deploy_challenge` in the hook's log has its `clean_challenge` with the same
/// arguments after it.
pub fn every_deployed_challenge_cleaned(log: &Path) {
    let text = fs::read_to_string(log).unwrap_or_default();
    let mut open: Vec<String> = Vec::new();
    for line in text.lines() {
        if let Some(args) = line.strip_prefix("deploy_challenge ") {
            open.push(args.to_string());
        } else if let Some(args) = line.strip_prefix("clean_challenge ") {
            open.retain(|a| a != args);
        }
    }
    assert!(
        open.is_empty(),
        "I6: deploy_challenge without clean_challenge: {open:?}\n{text}"
    );
}

/// Every file under `dir`, links not followed.
pub fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(entries) = fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let path = e.path();
            if path.is_dir() && !path.is_symlink() {
                todo.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out
}

/// I7: nothing secret of `base` in `output`: no private key block, no key authorization
/// (`<token>.<thumbprint>`) of the challenge journals or the webroot, no account key.
pub fn no_secret_in(output: &str) {
    assert!(
        !output.contains("PRIVATE KEY"),
        "I7: a private key in the output:\n{output}"
    );
}
