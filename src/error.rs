//! The error type of a run, and the exit-status table that systemd and cron act on.

use std::fmt;
use std::io;
use std::path::PathBuf;

use crate::acme;

/// How a run ends, ordered by precedence: merging two outcomes keeps the graver one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    /// Every certificate in scope is valid and outside its renewal window.
    Ok,
    /// Only temporary failures (CA unreachable, 5xx, timeouts, rate limits, lock busy).
    Temporary,
    /// At least one certificate failed for good.
    Failed,
    /// A problem of the whole run (the main config, domains.txt, the lock file, the account),
    /// found before any request; one certificate's own problem is [`Status::Failed`].
    Config,
    /// Bad command line.
    Usage,
}

impl Status {
    /// The exit code of DESIGN §9.
    pub fn code(self) -> u8 {
        match self {
            Status::Ok => 0,
            Status::Failed => 1,
            Status::Usage => 2,
            Status::Temporary => 75,
            Status::Config => 78,
        }
    }

    /// The status of a run whose parts ended as `self` and `other`.
    pub fn merge(self, other: Status) -> Status {
        self.max(other)
    }
}

/// The state `--check` reports, by the monitoring-plugin convention (Nagios, Icinga, Zabbix's
/// agent checks): ordered by precedence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum CheckStatus {
    /// Valid and outside the renewal window.
    Ok,
    /// Inside the renewal window: the next run renews it.
    Warning,
    /// Expired, missing, unreadable or not what domains.txt asks for.
    Critical,
    /// The check itself could not be made (bad config or domains.txt).
    Unknown,
}

impl CheckStatus {
    pub fn code(self) -> u8 {
        match self {
            CheckStatus::Ok => 0,
            CheckStatus::Warning => 1,
            CheckStatus::Critical => 2,
            CheckStatus::Unknown => 3,
        }
    }

    /// `OK`, `WARNING`, `CRITICAL` or `UNKNOWN`, as monitoring systems print them.
    pub fn label(self) -> &'static str {
        match self {
            CheckStatus::Ok => "OK",
            CheckStatus::Warning => "WARNING",
            CheckStatus::Critical => "CRITICAL",
            CheckStatus::Unknown => "UNKNOWN",
        }
    }
}

/// What a hook printed, kept with its error so that the log shows it.
#[derive(Debug, Clone, Default)]
pub struct HookOutput {
    pub stdout: String,
    pub stderr: String,
}

/// Everything that can stop a command or fail one certificate. Each message names its subject
/// first (a file and line, a domain, a path) and says what to do where we know it.
#[derive(Debug)]
pub enum Error {
    Usage(String),
    /// A config file, domains.txt, a path or a value that cannot work. Nothing was sent.
    Config(String),
    /// What one certificate alone is configured with cannot work (its own config file, hook,
    /// webroot or profile): that certificate fails, the others go on.
    CertConfig(String),
    /// Another run holds the lock.
    LockBusy {
        path: PathBuf,
        waited_secs: u64,
        /// Who holds it, when we know.
        holder: Option<String>,
    },
    /// A file or folder could not be read or written.
    Io {
        path: PathBuf,
        what: &'static str,
        err: io::Error,
    },
    /// A request to the CA failed; `subject` is the certificate or account it was for.
    Acme {
        subject: String,
        err: acme::Error,
    },
    /// The CA found the challenge for `name` invalid; `problem` holds its words.
    Invalid {
        name: String,
        /// `http-01`, `dns-01` or `tls-alpn-01`.
        kind: &'static str,
        problem: Box<acme::Problem>,
        /// The challenge as the CA last described it, as JSON (for `invalid_challenge`).
        response: String,
    },
    /// A hook exited non-zero, could not start, or ran past its time limit.
    Hook {
        hook: PathBuf,
        event: &'static str,
        what: String,
    },
    /// The CA's answer was refused by our own checks, or something else went wrong for good.
    Refused {
        subject: String,
        msg: String,
    },
    /// The run was asked to stop (a signal, `RUN_TIMEOUT`); the words say which.
    Stopped(String),
    /// Not tried in this run, for a reason that passes by itself (the CA's rate limit).
    Deferred {
        subject: String,
        msg: String,
    },
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// Whether this is the run being asked to stop (a signal, `RUN_TIMEOUT`), in a hook or
    /// before a request to the CA, rather than something that went wrong.
    pub fn is_stop(&self) -> bool {
        matches!(
            self,
            Error::Stopped(_)
                | Error::Acme {
                    err: crate::acme::Error::Stopped { .. },
                    ..
                }
        )
    }

    pub fn status(&self) -> Status {
        match self {
            Error::Usage(_) => Status::Usage,
            Error::Config(_) => Status::Config,
            Error::LockBusy { .. } | Error::Stopped(_) | Error::Deferred { .. } => {
                Status::Temporary
            }
            Error::Io { .. }
            | Error::CertConfig(_)
            | Error::Refused { .. }
            | Error::Invalid { .. }
            | Error::Hook { .. } => Status::Failed,
            Error::Acme { err, .. } if err.is_temporary() => Status::Temporary,
            // Only a changed setting mends it; retried as it is, it fails the same way.
            Error::Acme { err, .. } if err.is_setting() => Status::Config,
            Error::Acme { .. } => Status::Failed,
        }
    }

    /// The CA's problem document behind this error, when the CA sent one: a refused request or
    /// an invalid challenge.
    pub fn problem(&self) -> Option<&acme::Problem> {
        match self {
            Error::Invalid { problem, .. } => Some(problem),
            Error::Acme { err, .. } => err.problem(),
            _ => None,
        }
    }

    /// Where an attempt to renew a certificate stopped, as `state/` records it: `config`,
    /// `lock`, `write`, `validation`, `hook <event>`, `stopped`, `deferred`, or for a request
    /// to the CA the step its problem type or URL names (`account`, `order`, `validation`,
    /// `finalize`, `download`, `directory`).
    pub fn step(&self) -> String {
        match self {
            Error::Usage(_) | Error::Config(_) | Error::CertConfig(_) => "config".into(),
            Error::LockBusy { .. } => "lock".into(),
            Error::Io { .. } => "write".into(),
            Error::Invalid { .. } => "validation".into(),
            Error::Hook { event, .. } => format!("hook {event}"),
            Error::Stopped(_) => "stopped".into(),
            Error::Deferred { .. } => "deferred".into(),
            // The CA itself (no directory at its URL, `session::not_connected`), not an order.
            Error::Refused { subject, .. } if subject == "CA" => "directory".into(),
            Error::Refused { .. } => "order".into(),
            Error::Acme { err, .. } => acme_step(err).into(),
        }
    }

    /// An [`Error::Io`] for `path`; `what` is the action, such as "cannot write".
    pub fn io(what: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> Error {
        let path = path.into();
        move |err| Error::Io { path, what, err }
    }

    /// An [`Error::Acme`] about `subject`.
    pub fn acme(subject: impl Into<String>) -> impl FnOnce(acme::Error) -> Error {
        let subject = subject.into();
        move |err| Error::Acme { subject, err }
    }

    /// This error as the failure of one certificate: a config error becomes
    /// [`Error::CertConfig`], which fails that certificate (1) instead of the run (78).
    pub fn of_one_cert(self) -> Error {
        match self {
            Error::Config(msg) => Error::CertConfig(msg),
            other => other,
        }
    }

    pub fn refused(subject: impl Into<String>, msg: impl Into<String>) -> Error {
        Error::Refused {
            subject: subject.into(),
            msg: msg.into(),
        }
    }
}

/// The step of a request to the CA that failed: by its problem type where that belongs to one
/// step, else by the words of its URL (Boulder's, Pebble's and step-ca's paths alike), else
/// `order`.
fn acme_step(err: &acme::Error) -> &'static str {
    const ACCOUNT: &[&str] = &[
        "accountDoesNotExist",
        "externalAccountRequired",
        "invalidContact",
        "unsupportedContact",
        "userActionRequired",
        "badPublicKey",
    ];
    const VALIDATION: &[&str] = &["caa", "dns", "connection", "incorrectResponse", "tls"];
    if let Some(p) = err.problem() {
        if ACCOUNT.iter().any(|t| p.is(t)) {
            return "account";
        }
        if p.is("badCSR") || p.is("orderNotReady") {
            return "finalize";
        }
        if VALIDATION.iter().any(|t| p.is(t)) {
            return "validation";
        }
    }
    let url = match err {
        acme::Error::Transport { url, .. }
        | acme::Error::Problem { url, .. }
        | acme::Error::Protocol { url, .. }
        | acme::Error::Timeout { url, .. }
        | acme::Error::Stopped { url } => url.to_ascii_lowercase(),
        acme::Error::Untrusted { .. } => return "directory",
        acme::Error::Key(_) => return "account",
    };
    let path = url.split_once("://").map_or(url.as_str(), |(_, rest)| {
        rest.split_once('/').map_or("", |(_, path)| path)
    });
    let words: [(&[&str], &str); 6] = [
        (&["finalize"], "finalize"),
        (&["authz", "chal"], "validation"),
        (&["cert"], "download"),
        (&["acct", "account", "sign-me-up", "key-change"], "account"),
        (&["order"], "order"),
        (&["dir"], "directory"),
    ];
    words
        .iter()
        .find(|(keys, _)| keys.iter().any(|k| path.contains(k)))
        .map_or("order", |(_, step)| step)
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Usage(msg) | Error::Config(msg) | Error::CertConfig(msg) => f.write_str(msg),
            Error::LockBusy {
                path,
                waited_secs,
                holder,
            } => {
                let who = holder.as_deref().unwrap_or("another run");
                write!(
                    f,
                    "{}: {who} holds the lock (waited {waited_secs} s); try again later or give \
                     --lock-wait SECS",
                    path.display()
                )?;
                // A dehydrated process that runs says so; this text means none was seen, or
                // the file was not one to take over.
                if who.starts_with("dehydrated") && !who.starts_with("dehydrated (process") {
                    write!(f, "; if no dehydrated runs, it crashed: delete the file")?;
                }
                Ok(())
            }
            Error::Io { path, what, err } => {
                write!(f, "{}: {what}: {err}", path.display())?;
                if err.kind() == io::ErrorKind::PermissionDenied
                    && let Some(advice) = crate::store::not_permitted_advice(path)
                {
                    write!(f, "; {advice}")?;
                }
                Ok(())
            }
            Error::Acme { subject, err } => write!(f, "{subject}: {err}"),
            Error::Invalid {
                name,
                kind,
                problem,
                ..
            } => write!(f, "{name}: {kind} challenge invalid: {problem}"),
            Error::Hook {
                hook, event, what, ..
            } => write!(f, "{}: {event} failed: {what}", hook.display()),
            Error::Refused { subject, msg } | Error::Deferred { subject, msg } => {
                write!(f, "{subject}: {msg}")
            }
            Error::Stopped(why) => write!(
                f,
                "{why}: what was in place is taken away; the next run goes on from here"
            ),
        }
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_the_design_table() {
        let codes: Vec<u8> = [
            Status::Ok,
            Status::Failed,
            Status::Usage,
            Status::Temporary,
            Status::Config,
        ]
        .iter()
        .map(|s| s.code())
        .collect();
        assert_eq!(codes, [0, 1, 2, 75, 78]);
    }

    #[test]
    fn a_failure_outweighs_a_temporary_one_which_outweighs_success() {
        use Status::*;
        assert_eq!(Ok.merge(Ok), Ok);
        assert_eq!(Ok.merge(Temporary), Temporary);
        assert_eq!(Temporary.merge(Ok), Temporary);
        assert_eq!(Temporary.merge(Failed), Failed);
        assert_eq!(Failed.merge(Temporary), Failed);
        assert_eq!(
            [Ok, Temporary, Ok].into_iter().fold(Ok, Status::merge),
            Temporary
        );
    }

    #[test]
    fn check_codes_follow_the_monitoring_plugin_convention() {
        use CheckStatus::*;
        let codes: Vec<u8> = [Ok, Warning, Critical, Unknown]
            .iter()
            .map(|s| s.code())
            .collect();
        assert_eq!(codes, [0, 1, 2, 3]);
        assert_eq!([Ok, Warning, Ok].into_iter().max(), Some(Warning));
        assert_eq!([Warning, Critical, Ok].into_iter().max(), Some(Critical));
    }

    #[test]
    fn errors_map_to_statuses() {
        let unreachable = Error::Acme {
            subject: "example.org".into(),
            err: acme::Error::Transport {
                url: "https://ca/dir".into(),
                msg: "connection refused".into(),
            },
        };
        assert_eq!(unreachable.status(), Status::Temporary);
        assert_eq!(
            unreachable.to_string(),
            "example.org: cannot reach https://ca/dir: connection refused"
        );
        let busy = Error::LockBusy {
            path: "/etc/dehydrated/lock".into(),
            waited_secs: 0,
            holder: None,
        };
        assert_eq!(busy.status(), Status::Temporary);
        assert_eq!(Error::Config("x".into()).status(), Status::Config);
        let own = Error::Config("x".into()).of_one_cert();
        assert_eq!(
            (own.status(), own.to_string()),
            (Status::Failed, "x".into())
        );
        assert_eq!(Error::refused("a", "b").status(), Status::Failed);
    }

    #[test]
    fn a_failed_request_names_its_step() {
        let at = |url: &str, kind: &str| Error::Acme {
            subject: "a.example".into(),
            err: acme::Error::Problem {
                url: url.into(),
                status: 400,
                problem: Box::new(acme::Problem {
                    kind: kind.into(),
                    ..acme::Problem::default()
                }),
                raw: Box::default(),
            },
        };
        let malformed = "urn:ietf:params:acme:error:malformed";
        let steps: Vec<String> = [
            // Boulder's paths, then Pebble's, then step-ca's.
            at("https://ca/acme/new-acct", malformed),
            at("https://ca/acme/new-order", malformed),
            at("https://ca/acme/chall/1/2/x", malformed),
            at("https://ca/acme/finalize/1/2", malformed),
            at("https://ca/acme/cert/ab", malformed),
            at("https://ca:14000/sign-me-up", malformed),
            at("https://ca:14000/authZ/x", malformed),
            at("https://ca/acme/p/order/1/finalize", malformed),
            at("https://ca/dir", malformed),
            // The problem type wins over the URL.
            at(
                "https://ca/acme/new-order",
                "urn:ietf:params:acme:error:accountDoesNotExist",
            ),
            at("https://ca/acme/x", "urn:ietf:params:acme:error:badCSR"),
        ]
        .iter()
        .map(Error::step)
        .collect();
        assert_eq!(
            steps,
            [
                "account",
                "order",
                "validation",
                "finalize",
                "download",
                "account",
                "validation",
                "finalize",
                "directory",
                "account",
                "finalize"
            ]
        );
        let hook = Error::Hook {
            hook: "/h".into(),
            event: "deploy_cert",
            what: "exited 1".into(),
        };
        assert_eq!(hook.step(), "hook deploy_cert");
        assert_eq!(Error::Config("x".into()).of_one_cert().step(), "config");
    }
}
