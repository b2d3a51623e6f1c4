//! `--check`: every certificate's state from the disk alone, for people and for monitoring.

use serde_json::{Value, json};

use crate::cli::Cli;
use crate::commands::{certificates, current, load_config, policy, unix_now};
use crate::config::CertSpec;
use crate::error::{CheckStatus, Result};
use crate::logging;
use crate::renewal::{self, Decision, Reason};
use crate::state::StateDir;
use crate::x509::CertFacts;

/// One line of the `--check` table.
struct CheckRow<'a> {
    spec: &'a CertSpec,
    state: CheckStatus,
    what: String,
    facts: Option<CertFacts>,
    renew_at: Option<i64>,
    /// The profile the live certificate was issued under, as we recorded it.
    profile: Option<String>,
}

/// `--check`: every certificate's state from disk alone: no lock, no request.
pub fn check(cli: &Cli) -> Result<CheckStatus> {
    let config = load_config(cli)?;
    let specs = certificates(cli, &config)?;
    let now = unix_now();
    let states = StateDir::new(&config.basedir);
    let rows: Vec<CheckRow<'_>> = specs
        .iter()
        .map(|spec| {
            let current = current(&config, spec);
            let decision = renewal::decide(
                current.as_ref(),
                &spec.names,
                Some(spec.settings.key_algo),
                policy(cli.force, spec),
                now,
            );
            let facts = current.and_then(|c| c.ok());
            let (state, mut what, renew_at) = match decision {
                Decision::Keep { renew_at } => {
                    (CheckStatus::Ok, "valid".to_string(), Some(renew_at))
                }
                Decision::Renew(Reason::Due { .. }) => (
                    CheckStatus::Warning,
                    "due for renewal".to_string(),
                    Some(now),
                ),
                Decision::Renew(reason) => (CheckStatus::Critical, reason.to_string(), None),
            };
            if state != CheckStatus::Ok
                && let Some(until) = states.cert(&spec.name).backed_off(now)
            {
                what.push_str(&format!(
                    "; validation failed, backed off until {}",
                    logging::utc(until)
                ));
            }
            CheckRow {
                spec,
                state,
                what,
                facts,
                renew_at,
                profile: states.cert(&spec.name).profile.filter(|p| !p.is_empty()),
            }
        })
        .collect();
    let status = rows
        .iter()
        .map(|r| r.state)
        .max()
        .unwrap_or(CheckStatus::Ok);
    if cli.json {
        let certificates: Vec<Value> = rows
            .iter()
            .map(|r| {
                json!({
                    "name": r.spec.name,
                    "names": r.spec.names,
                    "state": r.state.label(),
                    "detail": r.what,
                    "not_after": r.facts.as_ref().map(|f| logging::utc(f.not_after)),
                    "days_left": r.facts.as_ref().map(|f| (f.not_after - now).div_euclid(86_400)),
                    "renew_at": r.renew_at.map(logging::utc),
                    "profile": r.profile,
                })
            })
            .collect();
        logging::data_line(format_args!(
            "{}",
            json!({ "status": status.label(), "certificates": certificates })
        ));
        return Ok(status);
    }
    let count = |s: CheckStatus| rows.iter().filter(|r| r.state == s).count();
    logging::data_line(format_args!(
        "{}: {} certificates, {} due, {} critical",
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
            r.spec.name.clone(),
            r.state.label().into(),
            not_after.map_or("-".into(), logging::utc),
            not_after.map_or("-".into(), |t| (t - now).div_euclid(86_400).to_string()),
            match (r.state, r.renew_at) {
                (CheckStatus::Ok, Some(at)) => format!("after {}", &logging::utc(at)[..10]),
                _ => r.what.clone(),
            },
            r.profile.clone().unwrap_or_else(|| "-".into()),
            r.spec.names.join(" "),
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
    Ok(status)
}
