//! ACME Renewal Information (RFC 9773): asking the CA when each certificate should be renewed,
//! at most as often as its `Retry-After` allows, with the answers kept in `state/`.

use std::time::Duration;

use crate::acme::Client;
use crate::error::Result;
use crate::state::{AriState, CaState, StateDir};
use crate::{logging, parallel};

/// How long a directory's answer to "do you offer renewal information" is believed.
const CA_RECHECK: i64 = 7 * 86_400;
/// When a renewal information answer carries no `Retry-After`.
const DEFAULT_RETRY: i64 = 6 * 3600;
/// The bounds put on a CA's `Retry-After`.
const MIN_RETRY: i64 = 60;
const MAX_RETRY: i64 = 7 * 86_400;

/// A certificate that local rules keep, for ARI to look at.
pub struct Candidate<'a> {
    pub name: &'a str,
    pub cert_id: String,
}

/// Asks the CA for the renewal information of every candidate whose answer in `state/` is
/// missing, for another certificate, or past its `Retry-After`, and keeps the answers there;
/// only when the CA is known, or not yet known not, to offer ARI. The client is made on first
/// need and left in `client` for the rest of the run. Returns the candidates with a new
/// answer (by index) and the answer, now also in `state/`.
/// Failures to ask are warnings: the answers kept, and local rules, still hold.
pub fn refresh(
    directory_url: &str,
    states: &StateDir,
    client: &mut Option<Client>,
    connect: &dyn Fn() -> Result<Client>,
    candidates: &[Candidate<'_>],
    workers: usize,
    now: i64,
) -> Vec<(usize, AriState)> {
    let ca = states.ca();
    let known = ca.is_about(directory_url) && now - ca.checked < CA_RECHECK;
    if known && !ca.renewal_info {
        return Vec::new();
    }
    let stale: Vec<usize> = (0..candidates.len())
        .filter(|&i| {
            let c = &candidates[i];
            states
                .cert(c.name)
                .ari
                .filter(|a| a.cert_id == c.cert_id)
                .is_none_or(|a| a.next_check <= now)
        })
        .collect();
    if known && stale.is_empty() {
        return Vec::new();
    }
    if client.is_none() {
        match connect() {
            Ok(c) => *client = Some(c),
            Err(e) => {
                logging::warn(format_args!("renewal information not asked for: {e}"));
                return Vec::new();
            }
        }
    }
    let Some(c) = client.as_ref() else {
        return Vec::new();
    };
    if !remember(states, c, now).renewal_info {
        return Vec::new();
    }
    let answers = parallel::map(&stale, workers, |&i| c.renewal_info(&candidates[i].cert_id));
    let mut fresh = Vec::new();
    for (&i, answer) in stale.iter().zip(answers) {
        let candidate = &candidates[i];
        match answer {
            Ok(Some((info, retry_after))) => {
                let window = (
                    crate::acme::wire::parse_rfc3339(&info.suggested_window.start),
                    crate::acme::wire::parse_rfc3339(&info.suggested_window.end),
                );
                let (Some(start), Some(end)) = window else {
                    logging::warn(format_args!(
                        "{}: the CA's renewal information has a window we cannot read",
                        candidate.name
                    ));
                    continue;
                };
                logging::debug(format_args!(
                    "{}: the CA suggests renewal from {} to {}",
                    candidate.name,
                    logging::utc(start),
                    logging::utc(end)
                ));
                let retry = retry_after
                    .map(|d: Duration| d.as_secs() as i64)
                    .unwrap_or(DEFAULT_RETRY)
                    .clamp(MIN_RETRY, MAX_RETRY);
                let ari = AriState {
                    cert_id: candidate.cert_id.clone(),
                    start,
                    end,
                    explanation: info.explanation_url,
                    next_check: now + retry,
                };
                let mut state = states.cert(candidate.name);
                state.ari = Some(ari.clone());
                if let Err(e) = states.save_cert(candidate.name, &state) {
                    logging::warn(e);
                }
                fresh.push((i, ari));
            }
            Ok(None) => {}
            // A stop is told once, by the run.
            Err(e) if e.is_temporary() && crate::stop::requested() => {}
            Err(e) => logging::warn(format_args!(
                "{}: renewal information not read: {e}",
                candidate.name
            )),
        }
    }
    fresh
}

/// Records what the directory of `client` says about renewal information, so that runs with
/// nothing due need not ask for a week. The record is written again only when it changed or is
/// a day old, not on every run that talks to the CA.
pub fn remember(states: &StateDir, client: &Client, now: i64) -> CaState {
    let known = states.ca();
    let ca = CaState {
        renewal_info: client.directory.renewal_info.is_some(),
        checked: now,
        ..known.clone().about(&client.directory_url)
    };
    let same = known.directory == ca.directory && known.renewal_info == ca.renewal_info;
    let fresh = same && (0..86_400).contains(&(now - known.checked));
    if !fresh && let Err(e) = states.save_ca(&ca) {
        logging::warn(e);
    }
    ca
}
