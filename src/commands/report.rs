//! How the certificates of a `--cron` run ended, and what is said about it: the error lines
//! with what to do next, `request_failure`, the `--json` report, and the record of the run in
//! `state/` and `METRICS_FILE`.

use std::sync::Arc;

use serde_json::{Value, json};

use super::session::{Broken, Entry, Facts};
use crate::config::{CertSpec, Config};
use crate::error::{Error, Result, Status};
use crate::hooks::{Hook, HookEvent};
use crate::renewal::{Decision, Hold, Reason, TooSlow};
use crate::state::{CertState, LastRun, RunState, StateDir};
use crate::{logging, metrics};

/// How one certificate of a `--cron` run ended.
#[derive(Debug)]
pub enum Outcome {
    /// A new certificate is live. `error` is what failed after it was signed (a
    /// `clean_challenge`): the certificate is in place, the run still fails.
    Issued {
        reason: Reason,
        not_after: i64,
        error: Option<Error>,
    },
    /// A set an interrupted run left was made live and deployed, without a new order.
    Resumed { not_after: Option<i64> },
    /// Nothing to do.
    Unchanged { not_after: Option<i64> },
    /// A `--dry-run` got a certificate from the CA and kept nothing. `decision` is what a real
    /// run decides now; `not_after` is the live certificate's.
    Tried {
        decision: Decision,
        not_after: Option<i64>,
    },
    /// Due, but left for the next run: ordering it would pass the account's order limit
    /// (`ORDER_LIMIT`). Not a failure: nothing is recorded against it.
    Left {
        reason: Reason,
        not_after: Option<i64>,
    },
    /// It failed, or was held back; `decision` is None when it failed before one was made.
    Failed {
        decision: Option<Decision>,
        /// Shared when one error stopped every due certificate (the CA unreachable).
        error: Arc<Error>,
    },
}

impl Outcome {
    /// The failure of one certificate, after `decision` (None when it failed before one was
    /// made). A config error here is that certificate's own ([`Error::of_one_cert`]): it fails
    /// the certificate, never the run.
    pub fn failed(decision: Option<Decision>, error: Error) -> Outcome {
        Outcome::Failed {
            decision,
            error: Arc::new(error.of_one_cert()),
        }
    }

    /// The status of the run as far as this certificate goes.
    pub fn status(&self) -> Status {
        match self {
            Outcome::Issued { error, .. } => error.as_ref().map_or(Status::Ok, Error::status),
            Outcome::Resumed { .. } | Outcome::Unchanged { .. } | Outcome::Tried { .. } => {
                Status::Ok
            }
            Outcome::Left { .. } => Status::Temporary,
            Outcome::Failed { error, .. } => error.status(),
        }
    }

    /// Whether a new certificate went live: what `POST_RENEW_HOOK` is run for.
    pub fn renewed(&self) -> bool {
        matches!(self, Outcome::Issued { .. } | Outcome::Resumed { .. })
    }

    pub fn error(&self) -> Option<&Error> {
        match self {
            Outcome::Issued { error, .. } => error.as_ref(),
            Outcome::Failed { error, .. } => Some(error.as_ref()),
            _ => None,
        }
    }

    /// One entry of the `--json` report.
    fn json(&self, entry: &Entry) -> Value {
        let (status, reason, decision, held, not_after) = match self {
            Outcome::Issued {
                reason, not_after, ..
            } => (
                "issued",
                Some(reason.to_string()),
                Some(reason.code()),
                None,
                Some(*not_after),
            ),
            Outcome::Resumed { not_after } => (
                "issued",
                Some("finished what an interrupted run left".to_string()),
                Some("keep"),
                None,
                *not_after,
            ),
            Outcome::Unchanged { not_after } => ("unchanged", None, Some("keep"), None, *not_after),
            Outcome::Left { reason, not_after } => (
                "left",
                Some(reason.to_string()),
                Some(reason.code()),
                None,
                *not_after,
            ),
            Outcome::Tried {
                decision,
                not_after,
            } => (
                "tested",
                decision.reason().map(|r| r.to_string()),
                Some(decision.code()),
                None,
                *not_after,
            ),
            Outcome::Failed { decision, .. } => (
                "failed",
                decision
                    .as_ref()
                    .and_then(Decision::reason)
                    .map(|r| r.to_string()),
                decision.as_ref().map(Decision::code),
                match decision {
                    Some(Decision::Hold { hold, .. }) => Some(hold.code()),
                    _ => None,
                },
                None,
            ),
        };
        json!({
            "name": entry.name(),
            "names": entry.names(),
            "status": status,
            "reason": reason,
            "decision": decision,
            "held_back": held,
            "not_after": not_after.map(logging::utc),
            "error": self.error().map(|e| e.to_string()),
        })
    }
}

/// Prints the `--json` report of a `--cron` run; `recorded` is what `state/` holds of each
/// certificate at its end.
pub fn print_json(
    entries: &[Entry],
    outcomes: &[Outcome],
    slow: &[Option<TooSlow>],
    recorded: &[CertState],
    status: Status,
) {
    let certificates: Vec<Value> = entries
        .iter()
        .zip(outcomes)
        .zip(slow)
        .zip(recorded)
        .map(|(((entry, o), slow), recorded)| {
            let mut json = o.json(entry);
            json["schedule"] = schedule_code(slow.as_ref()).into();
            json["last_attempt"] = json!(recorded.last_attempt);
            json
        })
        .collect();
    logging::data_line(format_args!(
        "{}",
        json!({ "exit_status": status.code(), "certificates": certificates })
    ));
}

/// Prints the `--json` report of a `--cron --dry-run` against the CA at `ca`.
pub fn print_dry_run_json(entries: &[Entry], outcomes: &[Outcome], ca: &str, status: Status) {
    let certificates: Vec<Value> = entries
        .iter()
        .zip(outcomes)
        .map(|(entry, o)| o.json(entry))
        .collect();
    logging::data_line(format_args!(
        "{}",
        json!({
            "dry_run": true,
            "ca": ca,
            "exit_status": status.code(),
            "certificates": certificates,
        })
    ));
}

/// What a real run decides now about a certificate a `--dry-run` tried, for its line: `renews
/// it now (<reason>)` or `keeps it until <time>`.
pub fn real_run(decision: &Decision) -> String {
    match decision {
        Decision::Renew(reason) => format!("a real run renews it now ({reason})"),
        Decision::Hold { reason, until, .. } => format!(
            "a real run would renew it ({reason}) but holds it back until {}",
            logging::utc(*until)
        ),
        Decision::Keep { renew_at } => format!(
            "a real run keeps it: not due before {}",
            logging::utc(*renew_at)
        ),
    }
}

/// The error that keeps a held-back certificate from being ordered in this run.
pub fn held_back(spec: &CertSpec, hold: Hold, until: i64) -> Error {
    match hold {
        Hold::RateLimited => Error::Deferred {
            subject: spec.name.clone(),
            msg: format!(
                "the CA's rate limit: not asked again before {} (its Retry-After); --force asks \
                 now",
                logging::utc(until)
            ),
        },
        Hold::BackedOff { failures } => Error::refused(
            &spec.name,
            format!(
                "not tried again before {} after {failures} failed validations in a row, so as \
                 not to spend the CA's failure limits; --force tries now",
                logging::utc(until)
            ),
        ),
    }
}

/// `too-slow` when the schedule cannot keep up with a certificate, else null: the `schedule` of
/// both `--json` reports.
pub fn schedule_code(slow: Option<&TooSlow>) -> Option<&'static str> {
    slow.map(|_| "too-slow")
}

/// What a run says of a schedule too slow for a certificate: the facts, and the lines that
/// give the user's own scheduler the runs it needs.
pub fn too_slow(slow: &TooSlow) -> String {
    let days = |s: i64| s as f64 / 86_400.0;
    let (cron, calendar) = match slow.every_hours {
        24 => ("23 4 * * *", "*-*-* 04:23:00"),
        12 => ("23 4,16 * * *", "*-*-* 04,16:23:00"),
        6 => ("23 */6 * * *", "*-*-* 00/6:23:00"),
        _ => ("23 * * * *", "hourly"),
    };
    format!(
        "runs come up to {:.1} days apart, but it is renewed {:.1} days before it expires, so \
         it can expire before a run renews it; run desiccant at least every {} hours: the \
         crontab line `{cron} desiccant --cron` (with your line's options), or \
         `OnCalendar={calendar}` in a systemd timer",
        days(slow.gap),
        days(slow.window),
        slow.every_hours
    )
}

/// A certificate stopped by a problem of its own before it was planned, as its outcome; logs
/// the problem with its fix.
pub fn broken(b: &Broken) -> Outcome {
    logging::error(format_args!(
        "{}: {}; {}",
        b.name,
        b.error,
        not_renewed(&b.name)
    ));
    Outcome::Failed {
        decision: None,
        error: Arc::clone(&b.error),
    }
}

/// The one line of a run that was asked to stop, when it stopped the work on a certificate:
/// how many of them were done, and that the next run finishes the rest.
/// Whether it said so.
pub fn stopped(outcomes: &[Outcome]) -> bool {
    let stopped = outcomes
        .iter()
        .filter(|o| o.error().is_some_and(Error::is_stop))
        .count();
    if stopped == 0 {
        return false;
    }
    logging::error(format_args!(
        "{}: {} of {} certificates done; what was in place is taken away, and the next run \
         finishes the rest",
        crate::stop::why(),
        outcomes.len() - stopped,
        outcomes.len()
    ));
    true
}

/// The closing line of a run on a terminal: `30 certificates: 2 renewed, 27 unchanged,
/// 1 failed in 4.2 s`.
pub fn summary(outcomes: &[Outcome]) {
    let count = |f: fn(&Outcome) -> bool| outcomes.iter().filter(|o| f(o)).count();
    let renewed = count(Outcome::renewed);
    let unchanged = count(|o| matches!(o, Outcome::Unchanged { .. }));
    let failed = count(|o| matches!(o, Outcome::Failed { .. }));
    let left = match count(|o| matches!(o, Outcome::Left { .. })) {
        0 => String::new(),
        n => format!(", {n} left for the next run"),
    };
    logging::summary(format_args!(
        "{} certificate{}: {renewed} renewed, {unchanged} unchanged, {failed} failed{left} in \
         {:.1} s",
        outcomes.len(),
        if outcomes.len() == 1 { "" } else { "s" },
        logging::elapsed().as_secs_f64()
    ));
}

/// The closing line of a dry run on a terminal: `3 certificates tried in a dry run: 2 passed,
/// 1 failed in 4.2 s`.
pub fn dry_run_summary(outcomes: &[Outcome]) {
    let passed = outcomes
        .iter()
        .filter(|o| matches!(o, Outcome::Tried { .. }))
        .count();
    logging::summary(format_args!(
        "{} certificate{} tried in a dry run: {passed} passed, {} failed in {:.1} s",
        outcomes.len(),
        if outcomes.len() == 1 { "" } else { "s" },
        outcomes.len() - passed,
        logging::elapsed().as_secs_f64()
    ));
}

/// What a certificate's own config problem means for the run.
fn not_renewed(name: &str) -> String {
    format!("{name} is not renewed until this is fixed; the other certificates are")
}

/// Logs a certificate's error with what to do next, and tells its hook of a failed request.
/// A stop says nothing here: the run says once that it was stopped ([`stopped`]).
pub fn failure(spec: &CertSpec, hook: Option<&Hook>, e: &Error) {
    if e.is_stop() {
        return;
    }
    let text = e.to_string();
    let hint = hint(e, Some(spec));
    if text.starts_with(&format!("{}:", spec.name)) {
        logging::error(format_args!("{text}{hint}"));
    } else {
        logging::error(format_args!("{}: {text}{hint}", spec.name));
    }
    if let Some(h) = hook {
        request_failure(h, e);
    }
}

/// dehydrated's `request_failure` for a request the CA answered with an error status.
pub fn request_failure(hook: &Hook, e: &Error) {
    let Error::Acme {
        err: crate::acme::Error::Problem { status, raw, .. },
        ..
    } = e
    else {
        return;
    };
    let event = HookEvent::RequestFailure {
        status: *status,
        reason: raw.body.clone(),
        req_type: raw.method.to_string(),
        headers: raw.headers.clone(),
    };
    if let Err(e) = hook.run(&event, &[]) {
        logging::error(e);
    }
}

/// What to do next about `e`, as `"; ..."`, or nothing when the message says it all.
pub fn hint(e: &Error, spec: Option<&CertSpec>) -> String {
    let next = match e {
        Error::Invalid {
            name,
            kind,
            problem,
            ..
        } => {
            let base = name.strip_prefix("*.").unwrap_or(name);
            if problem.is("caa") {
                format!("the CAA records of {base} do not allow this CA to issue")
            } else if problem.is("rejectedIdentifier") {
                format!("the CA will not issue for {name}")
            } else if *kind == "dns-01" {
                format!(
                    "check that the TXT record _acme-challenge.{base} holds the value the hook \
                     or the DNS update was given, on every name server of the zone"
                )
            } else if problem.is("dns") {
                format!("check that {base} has A or AAAA records that point at this server")
            } else if *kind == "tls-alpn-01" {
                format!(
                    "check that port 443 of {base} answers acme-tls/1 with the certificate in ALPNCERTDIR"
                )
            } else if spec.is_some_and(|s| s.settings.certbot.auth.is_some()) {
                format!(
                    "check that http://{base}/.well-known/acme-challenge/$CERTBOT_TOKEN serves \
                     $CERTBOT_VALIDATION once AUTH_HOOK has run"
                )
            } else {
                let dir = spec.map_or_else(
                    || "WELLKNOWN".to_string(),
                    |s| s.settings.wellknown.display().to_string(),
                );
                format!(
                    "check that http://{base}/.well-known/acme-challenge/ reaches this server \
                     and serves the files of {dir} (or HTTP_LISTEN)"
                )
            }
        }
        Error::Acme { err, .. } => match err.problem() {
            Some(p) if p.is("rateLimited") => {
                "the CA's rate limit was hit; a later run tries again".to_string()
            }
            Some(p) if p.is("accountDoesNotExist") => "the account key kept for this CA (the \
                 account_key.pem and account_id.json of its folder under accounts/) is not \
                 known to the CA: the account was deleted, or made for another CA; move that \
                 folder aside, then desiccant --register --accept-terms makes a new account"
                .to_string(),
            _ if err.is_temporary() => {
                "the CA could not be reached or had trouble; a later run tries again".to_string()
            }
            _ => return String::new(),
        },
        Error::Config(_) | Error::CertConfig(_) => match spec {
            Some(spec) => not_renewed(&spec.name),
            None => return String::new(),
        },
        Error::Hook {
            event: event @ ("deploy_cert" | "DEPLOY_HOOK"),
            ..
        } => format!("the new certificate is live; the next run runs {event} again (no new order)"),
        _ => return String::new(),
    };
    format!("; {next}")
}

/// What a `--cron` run leaves for `state/.run.json` and `METRICS_FILE`, filled in as it goes.
#[derive(Default)]
pub struct Tally {
    /// The runs of the schedule with this one, once the batch got that far.
    pub history: Option<RunState>,
    pub renewed: usize,
    pub failed: usize,
    /// Every certificate's figures, when `METRICS_FILE` is set and the batch got that far.
    pub certs: Option<Vec<metrics::Cert>>,
    /// The run was limited to `--domain`: the other certificates have no figures.
    pub scoped: bool,
    /// The run took the lock: before, it changed nothing, and `state/` does not record it.
    pub locked: bool,
}

/// The metrics' figures of every certificate in `entries`, with the attempts `recorded` holds:
/// those `planned` made from the facts the run read, else (a certificate that failed before
/// its decision) its live certificate's dates.
pub fn figures(
    config: &Config,
    entries: &[Entry],
    planned: Vec<Option<metrics::Cert>>,
    recorded: &[CertState],
    now: i64,
) -> Vec<metrics::Cert> {
    entries
        .iter()
        .zip(planned)
        .zip(recorded)
        .map(|((entry, planned), recorded)| match planned {
            Some(cert) => cert.with_attempts(recorded),
            None => {
                let facts = Facts::read_named(config, entry.name(), recorded.clone());
                let live = facts.readable().map(|l| &l.facts);
                match entry {
                    Entry::Broken(_) => {
                        metrics::Cert::decided(entry.name(), live, None, recorded, now)
                    }
                    Entry::Ready(_) => metrics::Cert::undecided(entry.name(), live, recorded),
                }
            }
        })
        .collect()
}

/// Records how a `--cron` run that started at `started` (Unix seconds, and the instant) ended
/// in `state/.run.json` (once it took the lock: a config error found before changes nothing),
/// then writes `METRICS_FILE` when it is set: with the figures `tally`
/// holds, and the dates alone of the live certificates it has none of (a run that stopped
/// before it decided, or the others of a `--domain` run).
pub fn finish(
    config: &Config,
    tally: Tally,
    result: &Result<Status>,
    started: (i64, std::time::Instant),
) {
    let states = StateDir::new(&config.basedir);
    let mut history = tally.history.unwrap_or_else(|| states.run());
    history.last = Some(LastRun {
        start: started.0,
        duration: started.1.elapsed().as_secs_f64(),
        exit_status: match result {
            Ok(status) => status.code(),
            Err(e) => e.status().code(),
        },
        renewed: tally.renewed,
        failed: tally.failed,
        requests: crate::acme::transport::requests_sent(),
    });
    if tally.locked
        && let Err(e) = states.save_run(&history)
    {
        logging::warn(e);
    }
    // The one place a --cron run writes the metrics file.
    if let Some(path) = &config.metrics_file {
        let whole = tally.certs.is_some() && !tally.scoped;
        let mut certs = tally.certs.unwrap_or_default();
        let others = if whole {
            Vec::new()
        } else {
            crate::store::live_cert_names(&config.certdir)
        };
        for name in others {
            if !certs.iter().any(|c| c.name == name) {
                let facts = Facts::read_named(config, &name, states.cert(&name));
                let live = facts.readable().map(|l| &l.facts);
                certs.push(metrics::Cert::undecided(&name, live, &facts.recorded));
            }
        }
        let report = metrics::Report {
            certs: &certs,
            run: history.last.as_ref(),
            checked: None,
        };
        if let Err(e) = metrics::write(path, &report) {
            logging::error(e);
        }
    }
}
