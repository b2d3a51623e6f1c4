//! How the certificates of a `--cron` run ended, and what is said about it: the error lines
//! with what to do next, `request_failure`, and the `--json` report.

use std::sync::Arc;

use serde_json::{Value, json};

use super::session::{Broken, Entry};
use crate::config::CertSpec;
use crate::error::{Error, Status};
use crate::hooks::{Hook, HookEvent};
use crate::logging;
use crate::renewal::{Decision, Hold, Reason, TooSlow};

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
            Outcome::Resumed { .. } | Outcome::Unchanged { .. } => Status::Ok,
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

/// Prints the `--json` report of a `--cron` run.
pub fn print_json(
    entries: &[Entry],
    outcomes: &[Outcome],
    slow: &[Option<TooSlow>],
    status: Status,
) {
    let certificates: Vec<Value> = entries
        .iter()
        .zip(outcomes)
        .zip(slow)
        .map(|((entry, o), slow)| {
            let mut json = o.json(entry);
            json["schedule"] = schedule_code(slow.as_ref()).into();
            json
        })
        .collect();
    logging::data_line(format_args!(
        "{}",
        json!({ "exit_status": status.code(), "certificates": certificates })
    ));
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

/// What a certificate's own config problem means for the run.
fn not_renewed(name: &str) -> String {
    format!("{name} is not renewed until this is fixed; the other certificates are")
}

/// Logs a certificate's error with what to do next, and tells its hook of a failed request.
pub fn failure(spec: &CertSpec, hook: Option<&Hook>, e: &Error) {
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
