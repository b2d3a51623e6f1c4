//! Why a request to the CA did not give what was asked: [`Error`], and the CA's [`Problem`].

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::jws::KeyError;
use super::wire::Identifier;

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
            Error::Protocol { .. } | Error::Key(_) => false,
        }
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
        match self {
            Error::Transport { url, msg } => write!(f, "cannot reach {url}: {msg}"),
            Error::Problem {
                url,
                status,
                problem,
                ..
            } => write!(f, "{url} answered {status}: {problem}"),
            Error::Protocol { url, msg } => write!(f, "bad answer from {url}: {msg}"),
            Error::Timeout { url, last } => {
                write!(f, "gave up waiting on {url}: its status is still {last}")
            }
            Error::Key(e) => write!(f, "account key: {e}"),
            Error::Stopped { url } => write!(f, "{url}: not sent, the run was asked to stop"),
        }
    }
}

impl From<KeyError> for Error {
    fn from(e: KeyError) -> Self {
        Error::Key(e)
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// A failed request's method and the CA's answer, headers and body as sent.
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

/// A problem document (RFC 7807, RFC 8555 §6.7). Its `Display` is one log line.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Problem {
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub detail: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identifier: Option<Identifier>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subproblems: Vec<Problem>,
}

pub const ERROR_PREFIX: &str = "urn:ietf:params:acme:error:";

impl Problem {
    /// True when the problem's type is `urn:ietf:params:acme:error:<name>`.
    pub fn is(&self, name: &str) -> bool {
        self.kind
            .strip_prefix(ERROR_PREFIX)
            .is_some_and(|rest| rest == name)
    }
}

/// `text` with each control character (line break, escape, NUL) as a space: what a CA writes
/// stays on one log line, cannot forge another (or its journal priority) and cannot steer a
/// terminal.
fn one_line(text: &str) -> std::borrow::Cow<'_, str> {
    if text.contains(char::is_control) {
        text.chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect::<String>()
            .into()
    } else {
        text.into()
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let detail = if self.detail.is_empty() {
            "no detail given"
        } else {
            &self.detail
        };
        write!(f, "{}", one_line(detail))?;
        if !self.kind.is_empty() {
            write!(f, " ({})", one_line(&self.kind))?;
        }
        for sub in &self.subproblems {
            write!(f, "; ")?;
            if let Some(id) = &sub.identifier {
                write!(f, "{}: ", one_line(&id.value))?;
            }
            write!(f, "{sub}")?;
        }
        Ok(())
    }
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

    #[test]
    fn problem_prints_detail_type_and_subproblems_on_one_line() {
        let p: Problem = serde_json::from_str(
            r#"{"type":"urn:ietf:params:acme:error:rejectedIdentifier","detail":"some names were refused",
               "subproblems":[{"type":"urn:ietf:params:acme:error:caa","detail":"CAA forbids",
               "identifier":{"type":"dns","value":"b.example"}}]}"#,
        )
        .unwrap();
        assert!(p.is("rejectedIdentifier"));
        assert!(!p.is("caa"));
        assert_eq!(
            p.to_string(),
            "some names were refused (urn:ietf:params:acme:error:rejectedIdentifier); \
             b.example: CAA forbids (urn:ietf:params:acme:error:caa)"
        );
    }

    #[test]
    fn a_problem_is_shown_on_one_line_whatever_the_ca_wrote() {
        // Found by fuzzing: control characters went into the line as they came, so a CA could
        // start a new log line (with its own <N> journal priority) or send terminal escapes.
        let p: Problem = serde_json::from_str(
            r#"{"type":"urn:ietf:params:acme:error:malformed\u0000","detail":"bad\n<0>forged\r\u001b[2J",
               "subproblems":[{"detail":"x\u0085y","identifier":{"type":"dns","value":"a\nb"}}]}"#,
        )
        .unwrap();
        assert_eq!(
            p.to_string(),
            "bad <0>forged  [2J (urn:ietf:params:acme:error:malformed ); a b: x y"
        );
    }
}
