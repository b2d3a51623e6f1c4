//! Why a request to the CA did not give what was asked: [`Error`], with the CA's words inside.

use std::fmt;
use std::time::Duration;

use super::jws::KeyError;
use super::text::shown_url;
use super::wire::Problem;

/// Why a request to the CA did not give what was asked.
#[derive(Debug)]
pub enum Error {
    /// No answer: connection refused, TLS failure, timeout.
    Transport {
        url: String,
        msg: String,
    },
    /// The CA answered with an error status; `problem` holds its own words.
    Problem {
        url: String,
        status: u16,
        problem: Box<Problem>,
        /// The answer as it came, for dehydrated's `request_failure` hook.
        raw: Box<RawAnswer>,
    },
    /// The CA's TLS certificate failed verification (an unknown issuer, another name):
    /// a setting to fix (`CA_BUNDLE`, the system's store, the CA URL), not a passing fault.
    /// `msg` names the host, the roots it was checked against and what was wrong.
    Untrusted {
        url: String,
        msg: String,
    },
    /// A 2xx answer that is not what RFC 8555 says it should be.
    Protocol {
        url: String,
        msg: String,
    },
    /// Polling reached its deadline; `last` is the status the CA reported last.
    Timeout {
        url: String,
        last: String,
    },
    Key(KeyError),
    /// Not sent: the run was asked to stop.
    Stopped {
        url: String,
    },
}

impl Error {
    /// True for failures that a later run can expect to pass without anyone changing anything:
    /// no connection, a 5xx, rate limits, nonces exhausted, a deadline.
    pub fn is_temporary(&self) -> bool {
        match self {
            Error::Transport { .. } | Error::Timeout { .. } | Error::Stopped { .. } => true,
            Error::Problem {
                status, problem, ..
            } => *status >= 500 || problem.is("rateLimited") || problem.is("badNonce"),
            Error::Protocol { .. } | Error::Key(_) | Error::Untrusted { .. } => false,
        }
    }

    /// True for failures that only a change of setting mends (the CA's TLS certificate not
    /// trusted): retrying as things are would fail the same way.
    pub fn is_setting(&self) -> bool {
        matches!(self, Error::Untrusted { .. })
    }

    /// When a `rateLimited` (or 503) answer said to ask again.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::Problem { raw, .. } => raw.retry_after,
            _ => None,
        }
    }

    /// The problem document, when the CA sent one.
    pub fn problem(&self) -> Option<&Problem> {
        match self {
            Error::Problem { problem, .. } => Some(problem),
            _ => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let url = |url: &String| shown_url(url).into_owned();
        match self {
            Error::Transport { url: u, msg } => write!(f, "cannot reach {}: {msg}", url(u)),
            Error::Problem {
                url: u,
                status,
                problem,
                ..
            } => write!(f, "{} answered {status}: {problem}", url(u)),
            Error::Untrusted { url: u, msg } => write!(f, "cannot reach {}: {msg}", url(u)),
            Error::Protocol { url: u, msg } => write!(f, "bad answer from {}: {msg}", url(u)),
            Error::Timeout { url: u, last } => {
                write!(
                    f,
                    "gave up waiting on {}: its status is still {last}",
                    url(u)
                )
            }
            Error::Key(e) => write!(f, "account key: {e}"),
            Error::Stopped { url: u } => {
                write!(f, "{}: not sent, the run was asked to stop", url(u))
            }
        }
    }
}

impl From<KeyError> for Error {
    fn from(e: KeyError) -> Self {
        Error::Key(e)
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// A failed request's method and the CA's answer, headers and body as sent, each fit to be a
/// program's argument (see `text::for_argument`): no NUL, at most 64 KiB.
#[derive(Debug, Clone, Default)]
pub struct RawAnswer {
    /// `get`, `post` or `head`, as dehydrated names them.
    pub method: &'static str,
    /// One `Name: value` line per header.
    pub headers: String,
    pub body: String,
    /// Its `Retry-After`, when it had one (a `rateLimited` answer usually has).
    pub retry_after: Option<Duration>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn which_errors_are_temporary() {
        let problem = |status, kind: &str| Error::Problem {
            url: "u".into(),
            raw: Box::default(),
            status,
            problem: Box::new(Problem {
                kind: kind.into(),
                ..Problem::default()
            }),
        };
        assert!(problem(429, "urn:ietf:params:acme:error:rateLimited").is_temporary());
        assert!(problem(503, "").is_temporary());
        assert!(!problem(403, "urn:ietf:params:acme:error:unauthorized").is_temporary());
        assert!(!problem(400, "urn:ietf:params:acme:error:malformed").is_temporary());
    }
}
