//! What `--check` prints: the plugin's first line (state, the worst certificates, performance
//! data), the long output (the table and the lines below it), the JSON report, and UNKNOWN.

use serde_json::{Value, json};

use super::super::report;
use super::{CheckRow, Limits, Removed};
use crate::acme::text::shown;
use crate::error::{CheckStatus, Error};
use crate::logging;
use crate::renewal::{Decision, Hold, Reason};
use crate::state::Attempt;
use crate::x509::CertFacts;

pub(super) const REMOVED: &str = "no longer in domains.txt; --cleanup archives it";

/// How many certificates the first line names; the rest are counted.
pub(super) const NAMED: usize = 5;

/// `2 d`, `36 h`, `25 min`: a span of `secs`, in whole days from two days up.
pub(super) fn span(secs: i64) -> String {
    let secs = secs.max(0);
    if secs >= 2 * 86_400 {
        format!("{} d", secs / 86_400)
    } else if secs >= 3600 {
        format!("{} h", secs / 3600)
    } else {
        format!("{} min", secs / 60)
    }
}

/// `expires in 2 d` or `expired 3 d ago`.
pub(super) fn expiry(not_after: i64, now: i64) -> String {
    if not_after > now {
        format!("expires in {}", span(not_after - now))
    } else {
        format!("expired {} ago", span(now - not_after))
    }
}

/// What the first line says of a certificate after its name: why it is not fine, when that is
/// not its expiry, then its expiry.
pub(super) fn brief(
    decision: Option<&Decision>,
    facts: Option<&CertFacts>,
    slow: bool,
    now: i64,
) -> String {
    let mut parts: Vec<String> = Vec::new();
    match decision.and_then(Decision::reason) {
        None if decision.is_none() => parts.push("config unusable".into()),
        Some(Reason::Missing) => parts.push("missing".into()),
        Some(Reason::Unreadable(_)) => parts.push("unreadable".into()),
        Some(Reason::NamesChanged { .. }) => parts.push("names differ from domains.txt".into()),
        Some(Reason::KeyChanged { .. }) => parts.push("key type differs from the config".into()),
        Some(Reason::CaChanged { .. }) => parts.push("issued by another CA".into()),
        Some(Reason::Ari { .. }) => parts.push("the CA asks to renew it".into()),
        Some(Reason::ChainChanged) => parts.push("preferred chain changed".into()),
        Some(Reason::ProfileChanged) => parts.push("profile changed".into()),
        _ => {}
    }
    if let Some(f) = facts {
        parts.push(expiry(f.not_after, now));
    }
    match decision {
        Some(Decision::Hold {
            hold: Hold::BackedOff { failures },
            ..
        }) => parts.push(format!("{failures} failed attempts")),
        Some(Decision::Hold {
            hold: Hold::RateLimited,
            ..
        }) => parts.push("rate-limited".into()),
        _ => {}
    }
    if slow {
        parts.push("schedule too slow".into());
    }
    parts.join(", ")
}

/// The days left of `facts` at `now` in whole hundredths, rounded down as the first line's
/// whole days are (1825.999 days is `1825.99`, not `1826`, beside "expires in 1825 d").
pub(super) fn hundredths(facts: Option<&CertFacts>, now: i64) -> Option<f64> {
    facts.map(|f| ((f.not_after - now) * 100).div_euclid(86_400) as f64 / 100.0)
}

/// `2`, `1.5`, `-0.25`: at most two decimals, no trailing zeros.
pub(super) fn number(value: f64) -> String {
    let text = format!("{value:.2}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    match text {
        "-0" => "0".to_string(),
        t => t.to_string(),
    }
}

/// One performance data item of a certificate, in the guidelines' syntax
/// `'label'=value[UOM];[warn];[crit]`: days left without a unit (`d` is no UOM they define),
/// `U` without a certificate, thresholds as ranges that alert below them (`30:`).
pub(super) fn perfdata(name: &str, days: Option<f64>, limits: Limits) -> String {
    let label: String = name
        .chars()
        .map(|c| match c {
            '\'' => "''".to_string(),
            '=' | '|' => "_".to_string(),
            c if c.is_control() => "_".to_string(),
            c => c.to_string(),
        })
        .collect();
    let range = |limit: Option<f64>| limit.map_or(String::new(), |l| format!("{}:", number(l)));
    let item = format!(
        "'{label} days left'={};{};{}",
        days.map_or("U".to_string(), number),
        range(limits.warning),
        range(limits.critical)
    );
    item.trim_end_matches(';').to_string()
}

/// The first line: the state, the certificates of that state (at most [`NAMED`]) with what is
/// wrong and their expiry, how many of all they are (for OK, the certificate that expires
/// first), the folders no longer in domains.txt, then every certificate's performance data.
pub(super) fn first_line(
    status: CheckStatus,
    rows: &[CheckRow<'_>],
    removed: usize,
    now: i64,
) -> String {
    let total = rows.len();
    let text = if status == CheckStatus::Ok {
        let soonest = rows
            .iter()
            .filter_map(|r| r.facts.as_ref().map(|f| (f.not_after, r)))
            .min_by_key(|(t, _)| *t);
        match (total, soonest) {
            (0, _) => "no certificates in domains.txt".to_string(),
            (1, Some((_, r))) => format!("{} {}", r.entry.name(), r.brief),
            (_, Some((t, r))) => format!(
                "{total} certificates valid; {} expires first, {}",
                r.entry.name(),
                expiry(t, now).trim_start_matches("expires ")
            ),
            (_, None) => format!("{total} certificates valid"),
        }
    } else {
        let worst: Vec<&CheckRow<'_>> = rows.iter().filter(|r| r.state == status).collect();
        let mut text = worst
            .iter()
            .take(NAMED)
            .map(|r| format!("{} {}", r.entry.name(), r.brief))
            .collect::<Vec<_>>()
            .join("; ");
        if worst.len() > NAMED {
            text.push_str(&format!("; and {} more", worst.len() - NAMED));
        }
        if total > worst.len() {
            let warnings = rows
                .iter()
                .filter(|r| r.state == CheckStatus::Warning)
                .count();
            let also = match status {
                CheckStatus::Critical if warnings > 0 => format!(", {warnings} warning"),
                _ => String::new(),
            };
            text.push_str(&format!(" ({} of {total} certificates{also})", worst.len()));
        }
        text
    };
    let text = match removed {
        0 => text,
        n => format!("{text}; {n} no longer in domains.txt"),
    };
    let perf: Vec<String> = rows
        .iter()
        .map(|r| perfdata(r.entry.name(), hundredths(r.facts.as_ref(), now), r.limits))
        .collect();
    let mut line = format!("{} - {}", status.label(), plain(&text));
    if !perf.is_empty() {
        line.push_str(" | ");
        line.push_str(&perf.join(" "));
    }
    line
}

/// Outside or free text made fit for a plugin output line: one line, and no `|`, which would
/// start performance data.
pub(super) fn plain(text: &str) -> String {
    shown(text).replace('|', "¦")
}

/// What `--check` prints when it cannot judge the certificates: UNKNOWN with the reason on
/// the first line (or in the JSON report), for the monitoring system to show.
pub fn unknown(error: &Error, json: bool) {
    logging::data_line(unknown_line(&error.to_string(), json));
}

/// The UNKNOWN line (or JSON report) for a check that could not be made for `reason`.
pub(super) fn unknown_line(reason: &str, json: bool) -> String {
    if json {
        json!({ "status": CheckStatus::Unknown.label(), "error": reason }).to_string()
    } else {
        format!("{} - {}", CheckStatus::Unknown.label(), plain(reason))
    }
}

pub(super) fn print_json(
    status: CheckStatus,
    rows: &[CheckRow<'_>],
    removed: &[Removed],
    now: i64,
) {
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
                "warning_days": r.limits.warning,
                "critical_days": r.limits.critical,
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
}

/// The first line, then the long output: a table of every certificate, then a line for each
/// one whose config cannot be used, whose schedule is too slow or whose last attempt failed.
pub(super) fn print_text(
    status: CheckStatus,
    rows: &[CheckRow<'_>],
    removed: &[Removed],
    now: i64,
) {
    logging::data_line(first_line(status, rows, removed.len(), now));
    let mut table: Vec<[String; 7]> = vec![[
        "NAME".to_string(),
        "STATE".into(),
        "NOT AFTER".into(),
        "DAYS LEFT".into(),
        "RENEWAL".into(),
        "PROFILE".into(),
        "NAMES".into(),
    ]];
    for r in rows {
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
    for r in removed {
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
        logging::data_line(format_args!("{}", line.replace('|', "¦")));
    }
    for r in rows {
        let name = plain(r.entry.name());
        if r.decision.is_none() {
            logging::data_line(format_args!("{name}: {}", plain(&r.what)));
        }
        if let Some(slow) = &r.slow {
            logging::data_line(format_args!("{name}: {}", report::too_slow(slow)));
        }
        if let Some(last) = r.last_attempt.as_ref().filter(|a| !a.issued()) {
            logging::data_line(format_args!("{name}: {}", attempt(last)));
        }
    }
}

/// `last attempt 2026-01-02 03:04:05 UTC failed at validation: <the CA's detail>
/// (urn:ietf:params:acme:error:unauthorized)`: an attempt that did not issue (`failed`, or
/// `deferred` by a temporary failure) as `state/` recorded it.
pub(super) fn attempt(a: &Attempt) -> String {
    let mut line = format!("last attempt {} {}", logging::utc(a.at), plain(&a.outcome));
    if let Some(step) = &a.step {
        line.push_str(&format!(" at {}", plain(step)));
    }
    match (&a.detail, &a.problem_type) {
        (Some(detail), Some(kind)) => {
            line.push_str(&format!(": {} ({})", plain(detail), plain(kind)))
        }
        (Some(detail), None) => line.push_str(&format!(": {}", plain(detail))),
        (None, Some(kind)) => line.push_str(&format!(": {}", plain(kind))),
        (None, None) => {}
    }
    line
}

/// What holds a due certificate back, as `--json` reports it: `rate-limited`, `backed-off`
/// or null.
pub(super) fn hold_code(decision: &Decision) -> Option<&'static str> {
    match decision {
        Decision::Hold { hold, .. } => Some(hold.code()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: i64 = 86_400;

    #[test]
    fn spans_and_numbers() {
        assert_eq!(expiry(2 * D + 100, 0), "expires in 2 d");
        assert_eq!(expiry(36 * 3600, 0), "expires in 36 h");
        assert_eq!(expiry(0, 3 * D + 5), "expired 3 d ago");
        assert_eq!(expiry(600, 0), "expires in 10 min");
        assert_eq!(number(2.0), "2");
        assert_eq!(number(1.5), "1.5");
        assert_eq!(number(2.104), "2.1");
        assert_eq!(number(-0.001), "0");
        // The performance data's days are rounded down as the first line's are.
        let facts = |not_after| CertFacts {
            names: Vec::new(),
            not_before: 0,
            not_after,
            key: None,
        };
        let left = 1826 * D - 60;
        assert_eq!(expiry(left, 0), "expires in 1825 d");
        assert_eq!(hundredths(Some(&facts(left)), 0), Some(1825.99));
        assert_eq!(hundredths(Some(&facts(-D / 2 - 1)), 0), Some(-0.51));
        assert_eq!(hundredths(None, 0), None);
    }

    #[test]
    fn unknown_is_one_plugin_line_or_a_json_report() {
        let reason = "RUN_TIMEOUT passed, and the run did not end within 5 s";
        assert_eq!(unknown_line(reason, false), format!("UNKNOWN - {reason}"));
        assert_eq!(unknown_line("a | b\nc", false), "UNKNOWN - a ¦ b\\nc");
        let report: Value = serde_json::from_str(&unknown_line(reason, true)).unwrap();
        assert_eq!(report, json!({ "status": "UNKNOWN", "error": reason }));
    }

    #[test]
    fn perfdata_follows_the_guidelines() {
        let limits = Limits {
            warning: Some(30.0),
            critical: Some(15.0),
        };
        assert_eq!(
            perfdata("a.example", Some(2.25), limits),
            "'a.example days left'=2.25;30:;15:"
        );
        let none = Limits {
            warning: None,
            critical: None,
        };
        assert_eq!(perfdata("it's=", None, none), "'it''s_ days left'=U");
    }
}
