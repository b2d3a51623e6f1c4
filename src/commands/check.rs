//! `--check`: every certificate's state from the disk alone, for people and for monitoring:
//! the same decision `--cron` acts on, read as a monitoring-plugin state.

use serde_json::{Value, json};

use super::report;
use super::session::{Asked, Entry, Facts, Rules, Session, decide, schedule, unix_now};
use crate::error::{CheckStatus, Result};
use crate::logging;
use crate::metrics;
use crate::renewal::{self, Decision, Hold, Reason, TooSlow};
use crate::state::{Attempt, StateDir};
use crate::x509::CertFacts;

/// One line of the `--check` table.
struct CheckRow<'a> {
    entry: &'a Entry,
    state: CheckStatus,
    /// None for a certificate whose own config cannot be used.
    decision: Option<Decision>,
    what: String,
    facts: Option<CertFacts>,
    renew_at: Option<i64>,
    /// The profile the live certificate was issued under, as we recorded it.
    profile: Option<String>,
    /// The schedule cannot keep up with it.
    slow: Option<TooSlow>,
    /// How the latest attempt to renew it ended, as `state/` recorded it.
    last_attempt: Option<Attempt>,
    /// Its figures for `METRICS_FILE`.
    metrics: metrics::Cert,
}

/// A certificate folder that domains.txt no longer names: listed, without changing the
/// status, until `--cleanup` archives it.
struct Removed {
    name: String,
    not_after: Option<i64>,
}

/// A row's note when the schedule cannot keep up with it; the lines below the table say more.
const SLOW: &str = "schedule too slow (below)";

const REMOVED: &str = "no longer in domains.txt; --cleanup archives it";

/// How grave a reason to renew is for monitoring: WARNING when the next run simply renews a
/// certificate that still serves, CRITICAL when what is served is wrong or gone.
fn severity(reason: &Reason) -> CheckStatus {
    match reason {
        Reason::Due { .. } | Reason::Ari { .. } | Reason::ChainChanged | Reason::ProfileChanged => {
            CheckStatus::Warning
        }
        Reason::Forced
        | Reason::Missing
        | Reason::Unreadable(_)
        | Reason::NamesChanged { .. }
        | Reason::KeyChanged { .. }
        | Reason::CaChanged { .. }
        | Reason::Expired => CheckStatus::Critical,
    }
}

/// `renew_at` of a certificate to renew: now when it is inside its renewal window, else none.
fn due_now(reason: &Reason, now: i64) -> Option<i64> {
    matches!(reason, Reason::Due { .. }).then_some(now)
}

/// What a row says of a decision to renew.
fn describe(reason: &Reason) -> String {
    match reason {
        Reason::Due { .. } => "due for renewal".to_string(),
        other => other.to_string(),
    }
}

/// `--check`: every certificate's state from disk alone: no lock, no request. It ends within
/// `RUN_TIMEOUT` too, as UNKNOWN.
pub fn check(session: &Session) -> Result<CheckStatus> {
    let config = &session.config;
    crate::stop::exit_status(CheckStatus::Unknown.code().into());
    crate::stop::deadline(config.run_timeout);
    let entries = session.specs()?;
    crate::stop::check()?;
    let now = unix_now();
    let states = StateDir::new(&config.basedir);
    let rules = Rules::new(config, session.opts.force, &states);
    let runs = states.run();
    let gap = renewal::run_gap(&runs.recent());
    let rows: Vec<CheckRow<'_>> = entries
        .iter()
        .map(|entry| match entry {
            Entry::Ready(spec) => {
                let asked = Asked {
                    names: &spec.names,
                    key: Some(spec.settings.key_algo),
                };
                let facts = Facts::read(config, spec, states.cert(&spec.name));
                let decision = decide(config, &rules, spec, asked, &facts, now);
                let (mut state, mut what, renew_at) = judge(&decision, now);
                let slow = schedule(spec, &facts, gap);
                if slow.is_some() {
                    state = state.max(CheckStatus::Warning);
                    what = format!("{what}; {SLOW}");
                }
                let live = facts.readable().map(|l| &l.facts);
                let metrics =
                    metrics::Cert::decided(&spec.name, live, Some(&decision), &facts.recorded, now);
                CheckRow {
                    last_attempt: facts.recorded.last_attempt.clone(),
                    metrics,
                    entry,
                    slow,
                    state,
                    decision: Some(decision),
                    what,
                    facts: facts.readable().map(|l| l.facts.clone()),
                    profile: facts.recorded.profile.filter(|p| !p.is_empty()),
                    renew_at,
                }
            }
            // Nothing renews it until its config is fixed: as grave as a missing certificate.
            Entry::Broken(b) => {
                let facts = Facts::read_named(config, &b.name, states.cert(&b.name));
                let live = facts.readable().map(|l| &l.facts);
                CheckRow {
                    entry,
                    slow: None,
                    state: CheckStatus::Critical,
                    decision: None,
                    what: format!("not renewed: {}", b.error),
                    facts: live.cloned(),
                    profile: None,
                    renew_at: None,
                    last_attempt: facts.recorded.last_attempt.clone(),
                    metrics: metrics::Cert::decided(&b.name, live, None, &facts.recorded, now),
                }
            }
        })
        .collect();
    let removed: Vec<Removed> = session
        .removed(&entries)
        .into_iter()
        .map(|name| {
            let facts = Facts::read_named(config, &name, states.cert(&name));
            Removed {
                not_after: facts.readable().map(|l| l.facts.not_after),
                name,
            }
        })
        .collect();
    crate::stop::check()?;
    // The one place --check writes the metrics file.
    if let Some(path) = &config.metrics_file {
        let certs: Vec<metrics::Cert> = rows.iter().map(|r| r.metrics.clone()).collect();
        let report = metrics::Report {
            certs: &certs,
            run: runs.last.as_ref(),
            checked: Some(now),
        };
        if let Err(e) = metrics::write(path, &report) {
            logging::error(e);
        }
    }
    let status = rows
        .iter()
        .map(|r| r.state)
        .max()
        .unwrap_or(CheckStatus::Ok);
    if session.opts.json {
        let certificates: Vec<Value> = rows
            .iter()
            .map(|r| {
                json!({
                    "name": r.entry.name(),
                    "names": r.entry.names(),
                    "state": r.state.label(),
                    "detail": r.what,
                    "decision": r.decision.as_ref().map(Decision::code),
                    "held_back": r.decision.as_ref().and_then(hold_code),
                    "not_after": r.facts.as_ref().map(|f| logging::utc(f.not_after)),
                    "days_left": r.facts.as_ref().map(|f| (f.not_after - now).div_euclid(86_400)),
                    "renew_at": r.renew_at.map(logging::utc),
                    "profile": r.profile,
                    "schedule": report::schedule_code(r.slow.as_ref()),
                    "schedule_detail": r.slow.as_ref().map(report::too_slow),
                    "last_attempt": r.last_attempt,
                })
            })
            .collect();
        let removed: Vec<Value> = removed
            .iter()
            .map(|r| {
                json!({
                    "name": r.name,
                    "detail": REMOVED,
                    "not_after": r.not_after.map(logging::utc),
                    "days_left": r.not_after.map(|t| (t - now).div_euclid(86_400)),
                })
            })
            .collect();
        logging::data_line(format_args!(
            "{}",
            json!({ "status": status.label(), "certificates": certificates, "removed": removed })
        ));
        return Ok(status);
    }
    let count = |s: CheckStatus| rows.iter().filter(|r| r.state == s).count();
    let gone = match removed.len() {
        0 => String::new(),
        n => format!(", {n} no longer in domains.txt"),
    };
    logging::data_line(format_args!(
        "{}: {} certificates, {} due, {} critical{gone}",
        status.label(),
        rows.len(),
        count(CheckStatus::Warning),
        count(CheckStatus::Critical)
    ));
    let mut table: Vec<[String; 7]> = vec![[
        "NAME".to_string(),
        "STATE".into(),
        "NOT AFTER".into(),
        "DAYS LEFT".into(),
        "RENEWAL".into(),
        "PROFILE".into(),
        "NAMES".into(),
    ]];
    for r in &rows {
        let not_after = r.facts.as_ref().map(|f| f.not_after);
        table.push([
            r.entry.name().to_string(),
            r.state.label().into(),
            not_after.map_or("-".into(), logging::utc),
            not_after.map_or("-".into(), |t| (t - now).div_euclid(86_400).to_string()),
            match (r.state, r.renew_at, r.decision.is_some()) {
                (_, _, false) => "not renewed: its config (below)".to_string(),
                (CheckStatus::Ok, Some(at), _) => format!("after {}", &logging::utc(at)[..10]),
                _ => r.what.clone(),
            },
            r.profile.clone().unwrap_or_else(|| "-".into()),
            r.entry.names().join(" "),
        ]);
    }
    for r in &removed {
        table.push([
            r.name.clone(),
            "REMOVED".into(),
            r.not_after.map_or("-".into(), logging::utc),
            r.not_after
                .map_or("-".into(), |t| (t - now).div_euclid(86_400).to_string()),
            REMOVED.into(),
            "-".into(),
            "-".into(),
        ]);
    }
    let widths: Vec<usize> = (0..6)
        .map(|c| table.iter().map(|row| row[c].len()).max().unwrap_or(0))
        .collect();
    for row in &table {
        let mut line = String::new();
        for (c, width) in widths.iter().enumerate() {
            line.push_str(&format!("{:<width$}  ", row[c]));
        }
        line.push_str(&row[6]);
        logging::data_line(format_args!("{line}"));
    }
    for r in &rows {
        if r.decision.is_none() {
            logging::data_line(format_args!("{}: {}", r.entry.name(), r.what));
        }
        if let Some(slow) = &r.slow {
            logging::data_line(format_args!(
                "{}: {}",
                r.entry.name(),
                report::too_slow(slow)
            ));
        }
    }
    Ok(status)
}

/// The state, the words and the renewal time of a decision, as a row shows them.
fn judge(decision: &Decision, now: i64) -> (CheckStatus, String, Option<i64>) {
    match decision {
        Decision::Keep { renew_at } => (CheckStatus::Ok, "valid".to_string(), Some(*renew_at)),
        Decision::Renew(reason) => (severity(reason), describe(reason), due_now(reason, now)),
        Decision::Hold {
            reason,
            hold,
            until,
        } => {
            let why = match hold {
                Hold::RateLimited => {
                    format!("rate-limited by the CA until {}", logging::utc(*until))
                }
                Hold::BackedOff { .. } => format!(
                    "validation failed, backed off until {}",
                    logging::utc(*until)
                ),
            };
            (
                severity(reason),
                format!("{}; {why}", describe(reason)),
                due_now(reason, now),
            )
        }
    }
}

/// What holds a due certificate back, as `--json` reports it: `rate-limited`, `backed-off`
/// or null.
fn hold_code(decision: &Decision) -> Option<&'static str> {
    match decision {
        Decision::Hold { hold, .. } => Some(hold.code()),
        _ => None,
    }
}
