//! ACME Renewal Information (RFC 9773): asking the CA when each certificate should be renewed,
//! at most as often as its `Retry-After` allows, with the answers kept in `state/`.

use std::time::Duration;

use crate::acme::Client;
use crate::error::Result;
use crate::state::{AriState, CaState, StateDir};
use crate::{logging, parallel, renewal};

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

/// For each candidate, whether the CA's renewal information says to renew now (with its
/// explanation URL, if any). Asks the CA only for answers that are missing or past their
/// `Retry-After`, and only when the CA is known, or not yet known not, to offer ARI; the
/// client is made on first need and left in `client` for the rest of the run. Failures to ask
/// are warnings: local rules still hold.
pub fn check(
    directory_url: &str,
    states: &StateDir,
    client: &mut Option<Client>,
    connect: &dyn Fn() -> Result<Client>,
    candidates: &[Candidate<'_>],
    workers: usize,
    now: i64,
) -> Vec<Option<Option<String>>> {
    let mut ca = states.ca();
    let known = ca.directory == directory_url && now - ca.checked < CA_RECHECK;
    if known && !ca.renewal_info {
        return candidates.iter().map(|_| None).collect();
    }
    let mut cached: Vec<Option<AriState>> = candidates
        .iter()
        .map(|c| states.cert(c.name).ari.filter(|a| a.cert_id == c.cert_id))
        .collect();
    let stale: Vec<usize> = (0..candidates.len())
        .filter(|&i| cached[i].as_ref().is_none_or(|a| a.next_check <= now))
        .collect();
    if !known || !stale.is_empty() {
        if client.is_none() {
            match connect() {
                Ok(c) => *client = Some(c),
                Err(e) => {
                    logging::warn(format_args!("renewal information not asked for: {e}"));
                    return decide(candidates, &cached, now);
                }
            }
        }
        let Some(c) = client.as_ref() else {
            return decide(candidates, &cached, now);
        };
        ca = remember(states, c, now);
        if !ca.renewal_info {
            return candidates.iter().map(|_| None).collect();
        }
        let answers = parallel::map(&stale, workers, |&i| c.renewal_info(&candidates[i].cert_id));
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
                    cached[i] = Some(ari);
                }
                Ok(None) => {}
                Err(e) => logging::warn(format_args!(
                    "{}: renewal information not read: {e}",
                    candidate.name
                )),
            }
        }
    }
    decide(candidates, &cached, now)
}

/// Records what the directory of `client` says about renewal information, so that runs with
/// nothing due need not ask for a week. The record is written again only when it changed or is
/// a day old, not on every run that talks to the CA.
pub fn remember(states: &StateDir, client: &Client, now: i64) -> CaState {
    let ca = CaState {
        directory: client.directory_url.clone(),
        renewal_info: client.directory.renewal_info.is_some(),
        checked: now,
    };
    let known = states.ca();
    let same = known.directory == ca.directory && known.renewal_info == ca.renewal_info;
    let fresh = same && (0..86_400).contains(&(now - known.checked));
    if !fresh && let Err(e) = states.save_ca(&ca) {
        logging::warn(e);
    }
    ca
}

fn decide(
    candidates: &[Candidate<'_>],
    answers: &[Option<AriState>],
    now: i64,
) -> Vec<Option<Option<String>>> {
    candidates
        .iter()
        .zip(answers)
        .map(|(c, ari)| {
            let ari = ari.as_ref()?;
            let point = renewal::ari_point(ari.start, ari.end, &c.cert_id);
            logging::debug(format_args!(
                "{}: the CA suggests renewal from {} to {}; ours is at {}",
                c.name,
                logging::utc(ari.start),
                logging::utc(ari.end),
                logging::utc(point)
            ));
            (now >= point).then(|| ari.explanation.clone())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(start: i64, end: i64) -> Option<AriState> {
        Some(AriState {
            cert_id: "aki.serial".into(),
            start,
            end,
            explanation: Some("https://ca.example/why".into()),
            next_check: 0,
        })
    }

    #[test]
    fn the_window_decides_with_an_injected_now() {
        let c = [Candidate {
            name: "a",
            cert_id: "aki.serial".into(),
        }];
        let point = renewal::ari_point(1000, 2000, "aki.serial");
        // (window, now, renew?)
        let table = [
            (answer(1000, 2000), 999, false),
            (answer(1000, 2000), point - 1, false),
            (answer(1000, 2000), point, true),
            (answer(1000, 2000), 2001, true),
            (answer(-5000, -4000), 0, true),
            (None, 1_000_000, false),
        ];
        for (i, (ari, now, renew)) in table.into_iter().enumerate() {
            let got = decide(&c, &[ari], now);
            assert_eq!(got[0].is_some(), renew, "row {i}");
            if renew {
                assert_eq!(
                    got[0].clone().unwrap().as_deref(),
                    Some("https://ca.example/why")
                );
            }
        }
    }
}
