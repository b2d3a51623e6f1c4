//! The HTTPS side of ACME: one agent, the directory, the nonce pool, signed POSTs, polling.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::jws::{AccountKey, KeyError, KeyId};
use super::wire::{Directory, Problem, RenewalInfo};

/// Responses larger than this are refused: no ACME object or certificate chain comes near it.
pub const MAX_BODY: u64 = 1 << 20;
/// The longest pause between two polls of an order, unless the CA asks for more: the order
/// alone is polled, so a short one costs one request, however many names it has.
const MAX_POLL_WAIT: Duration = Duration::from_secs(2);
/// How many of the CA's quickest round trips a first look at an order waits at least, while
/// the CA validates (it has to reach the server or name server that proves each name, over
/// about the same distance) or signs: a CA on the same machine is done in milliseconds, one an
/// ocean away takes a second or more and should not be asked ten times in between.
const ROUND_TRIPS_BEFORE_A_LOOK: u32 = 8;
/// How many times one request is sent again after a `badNonce` answer.
const BAD_NONCE_RETRIES: usize = 10;
/// The longest a request waits for the nonce of another request's answer before it asks
/// `newNonce` for one of its own (see [`Nonces`]).
const NONCE_WAIT: Duration = Duration::from_millis(500);
/// The longest one request may take, from connecting to the last byte of the answer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(90);
/// The starting size of each connection's read and write buffers.
const IO_BUFFER: usize = 16 * 1024;
/// The longest a connection may take to open.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// What a deadline bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    /// One request, from connecting to the last byte of the answer.
    Request,
    /// One wait for the CA to validate or to sign.
    Wait,
}

/// `normal`. Only in a test build (cargo feature `failpoints`), which has no other way to
/// make the tests of stalled connections and stuck orders end in seconds,
/// `DESICCANT_FAILPOINT_DEADLINES=<request secs>,<wait secs>` shortens it; a release build
/// reads no such variable.
pub fn bound(which: Bound, normal: Duration) -> Duration {
    #[cfg(feature = "failpoints")]
    if let Some(short) = std::env::var("DESICCANT_FAILPOINT_DEADLINES")
        .ok()
        .and_then(|v| {
            let (request, wait) = v.split_once(',')?;
            let secs = if which == Bound::Request {
                request
            } else {
                wait
            };
            secs.trim().parse::<f64>().ok()
        })
        .and_then(|secs| Duration::try_from_secs_f64(secs).ok())
    {
        return short.min(normal);
    }
    let _ = which;
    normal
}

pub const JSON: &str = "application/json";
pub const PROBLEM_JSON: &str = "application/problem+json";
pub const PEM_CHAIN: &str = "application/pem-certificate-chain";

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

/// Which certificates the HTTPS client trusts. Verification itself is never switched off.
#[derive(Debug, Clone)]
pub enum Trust {
    /// The system's store: `SSL_CERT_FILE`, else the distribution's bundle, else Mozilla's roots.
    System,
    /// Exactly the certificates of this PEM bundle (a private CA, a test CA).
    Pem(Vec<u8>),
}

/// How to reach the CA.
#[derive(Debug, Clone)]
pub struct Transport {
    pub trust: Trust,
    pub user_agent: String,
    /// 4 or 6 to use only that IP version (dehydrated's `IP_VERSION`); None for both.
    pub ip_version: Option<u8>,
    /// Told one line per request and its answer (never a body, so never a secret).
    pub trace: Option<fn(&str)>,
    /// Asked before every request and during every wait: true ends them with
    /// [`Error::Stopped`].
    pub stopped: fn() -> bool,
}

/// A `Link` header entry (RFC 8288): `<url>;rel="alternate"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub rel: String,
    pub url: String,
}

/// Parses one `Link` header value (RFC 8288 §3), which may hold several comma-separated
/// links: `<url>; rel="alternate"`. Commas and semicolons inside `<...>` or a quoted string
/// are part of it; a `rel` with several relation types (`rel="up alternate"`) gives a link
/// for each, lower-cased; links without `rel` are left out.
pub fn parse_links(value: &str) -> Vec<Link> {
    let mut links = Vec::new();
    let mut rest = value;
    while let Some(start) = rest.find('<') {
        let Some((url, after)) = rest[start + 1..].split_once('>') else {
            break;
        };
        let (params, next) = link_params(after);
        // RFC 8288 §3.3: a second rel is ignored.
        if let Some((_, rel)) = params.iter().find(|(name, _)| name == "rel") {
            for rel in rel.split_whitespace() {
                links.push(Link {
                    rel: rel.to_ascii_lowercase(),
                    url: url.to_string(),
                });
            }
        }
        rest = next;
    }
    links
}

/// The `; name=value` parameters after a link's `<url>`, values plain or quoted, names
/// lower-cased, up to the comma that ends the link; and what follows that comma.
fn link_params(mut s: &str) -> (Vec<(String, String)>, &str) {
    let mut params = Vec::new();
    loop {
        s = s.trim_start();
        let Some(param) = s.strip_prefix(';') else {
            // The comma that ends this link, or something that is no parameter: skip it.
            let next = s.split_once(',').map_or("", |(_, next)| next);
            return (params, next);
        };
        let param = param.trim_start();
        let end = param
            .find(|c: char| c == '=' || c == ';' || c == ',' || c.is_whitespace())
            .unwrap_or(param.len());
        let name = param[..end].to_ascii_lowercase();
        let mut value = String::new();
        s = param[end..].trim_start();
        if let Some(v) = s.strip_prefix('=') {
            let v = v.trim_start();
            if let Some(quoted) = v.strip_prefix('"') {
                let mut chars = quoted.char_indices();
                s = "";
                while let Some((i, c)) = chars.next() {
                    match c {
                        '"' => {
                            s = &quoted[i + 1..];
                            break;
                        }
                        '\\' => value.extend(chars.next().map(|(_, c)| c)),
                        c => value.push(c),
                    }
                }
            } else {
                let end = v
                    .find(|c: char| c == ';' || c == ',' || c.is_whitespace())
                    .unwrap_or(v.len());
                value.push_str(&v[..end]);
                s = &v[end..];
            }
        }
        params.push((name, value));
    }
}

/// A `Replay-Nonce` value: base64url without padding (RFC 8555 §6.5.1). None for anything
/// else, which the RFC says to ignore rather than send back.
pub fn parse_replay_nonce(value: &str) -> Option<&str> {
    let value = value.trim();
    let ok = !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    ok.then_some(value)
}

/// What a request returned, headers already read and the body capped at [`MAX_BODY`].
#[derive(Debug)]
pub struct Response {
    pub url: String,
    pub status: u16,
    pub location: Option<String>,
    pub retry_after: Option<Duration>,
    /// Every `Link` header (`alternate` chains, `up` issuers, `index`).
    pub links: Vec<Link>,
    pub content_type: String,
    pub body: Vec<u8>,
    /// The server's `Date` header, Unix seconds.
    pub date: Option<u64>,
}

impl Response {
    /// The body as `T`, after checking that it was sent as JSON.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T> {
        self.expect_type(JSON)?;
        serde_json::from_slice(&self.body).map_err(|e| Error::Protocol {
            url: self.url.clone(),
            msg: format!("JSON does not match RFC 8555: {e}"),
        })
    }

    /// Ok when the `Content-Type` (without parameters) is `wanted`.
    pub fn expect_type(&self, wanted: &str) -> Result<()> {
        if self.content_type.eq_ignore_ascii_case(wanted) {
            Ok(())
        } else {
            Err(Error::Protocol {
                url: self.url.clone(),
                msg: format!("content type is {:?}, not {wanted}", self.content_type),
            })
        }
    }

    /// The `Location` header, which RFC 8555 requires on this answer.
    pub fn location(&self) -> Result<&str> {
        self.location.as_deref().ok_or_else(|| Error::Protocol {
            url: self.url.clone(),
            msg: "no Location header".into(),
        })
    }
}

/// One CA: its directory, one HTTPS agent with kept-alive connections, one nonce pool.
/// Shared by every thread of a run.
pub struct Client {
    http: Http,
    pub directory_url: String,
    pub directory: Directory,
    /// The CA's clock (its `Date` header) minus ours, in seconds, when it sent one.
    pub clock_skew: Option<i64>,
}

/// The nonces the CA gave and has not seen back, and what may still bring more.
#[derive(Default)]
struct Nonces {
    pool: Vec<String>,
    /// Signed requests given a nonce (or getting one from `newNonce`) and not yet answered:
    /// each answer should bring one.
    in_flight: usize,
    /// Requests waiting for one of those.
    waiting: usize,
}

/// The transport under [`Client`]: the agent, the nonces every answer brings, a request count.
struct Http {
    agent: ureq::Agent,
    nonces: Mutex<Nonces>,
    /// Told when a nonce comes into the pool or an answer comes back without one.
    nonce_came: Condvar,
    requests: AtomicUsize,
    /// The quickest answer so far, in microseconds, from sending to its status line.
    quickest: AtomicU64,
    trace: Option<fn(&str)>,
    stopped: fn() -> bool,
}

impl Client {
    /// Fetches the directory at `directory_url`. This is the first request of every run that
    /// talks to the CA.
    pub fn connect(directory_url: &str, transport: &Transport) -> Result<Client> {
        let agent = agent(transport).map_err(|msg| Error::Transport {
            url: directory_url.to_string(),
            msg,
        })?;
        let http = Http {
            agent,
            nonces: Mutex::new(Nonces::default()),
            nonce_came: Condvar::new(),
            requests: AtomicUsize::new(0),
            quickest: AtomicU64::new(u64::MAX),
            trace: transport.trace,
            stopped: transport.stopped,
        };
        let response = http.send(directory_url, None)?;
        let directory = response.json()?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Ok(Client {
            http,
            directory_url: directory_url.to_string(),
            directory,
            clock_skew: response
                .date
                .map(|date| date.cast_signed().saturating_sub(now.cast_signed())),
        })
    }

    /// How many HTTP requests this client has sent.
    pub fn requests(&self) -> usize {
        self.http.requests.load(Ordering::Relaxed)
    }

    /// A signed POST (RFC 8555 §6.2). `payload` None is POST-as-GET. A `badNonce` answer is
    /// retried with the nonce it carries, a bounded number of times. Any non-2xx answer is an
    /// [`Error::Problem`].
    pub fn post(
        &self,
        key: &AccountKey,
        key_id: KeyId<'_>,
        url: &str,
        payload: Option<&Value>,
    ) -> Result<Response> {
        let mut tries = 0;
        loop {
            let nonce = self.nonce()?;
            let answer = key
                .jws(url, &nonce, key_id, payload)
                .map_err(Error::from)
                .and_then(|body| self.http.send(url, Some(body)));
            self.http.lock_nonces().in_flight -= 1;
            // Whoever waits for a nonce looks again: this answer brought one, or none will come.
            self.http.nonce_came.notify_all();
            match answer {
                Err(Error::Problem { problem, .. })
                    if problem.is("badNonce") && tries < BAD_NONCE_RETRIES =>
                {
                    tries += 1;
                }
                other => return other,
            }
        }
    }

    /// The quickest round trip to the CA so far: the network's share of every request, without
    /// most of the CA's own work. None before the first answer.
    pub fn round_trip(&self) -> Option<Duration> {
        match self.http.quickest.load(Ordering::Relaxed) {
            u64::MAX => None,
            micros => Some(Duration::from_micros(micros)),
        }
    }

    /// POST-as-GET `url` until `done` says yes. The first request goes out after `first_wait`
    /// or after [`first_look`] for this CA's round trip, whichever is longer; later ones after
    /// a wait that grows by half from there up to 2 s, or after the answer's `Retry-After` when
    /// that is longer (a `Retry-After` of 0 or in the past never makes it poll without pause).
    /// At `deadline` it gives up with the last status the CA reported.
    pub fn poll_until<T: DeserializeOwned>(
        &self,
        key: &AccountKey,
        key_id: KeyId<'_>,
        url: &str,
        first_wait: Duration,
        deadline: Instant,
        done: impl Fn(&T) -> bool,
    ) -> Result<T> {
        let first_wait = first_wait.max(first_look(self.round_trip()));
        let mut delay = first_wait.max(Duration::from_millis(10));
        let mut wait = first_wait;
        loop {
            // In slices, so that a stop is seen within one.
            let until =
                Instant::now() + wait.min(deadline.saturating_duration_since(Instant::now()));
            while Instant::now() < until && !(self.http.stopped)() {
                thread::sleep((until - Instant::now()).min(Duration::from_millis(50)));
            }
            let response = self.post(key, key_id, url, None)?;
            let value: T = response.json()?;
            if done(&value) {
                return Ok(value);
            }
            if Instant::now() >= deadline {
                let last = serde_json::from_slice::<Value>(&response.body)
                    .ok()
                    .and_then(|v| v.get("status").map(|s| s.to_string()))
                    .unwrap_or_else(|| "unknown".into());
                return Err(Error::Timeout {
                    url: url.to_string(),
                    last,
                });
            }
            wait = response.retry_after.unwrap_or(delay).max(delay);
            delay = (delay * 3 / 2).min(MAX_POLL_WAIT);
        }
    }

    /// RFC 9773 renewal information for `cert_id` (unauthenticated GET), with the answer's
    /// `Retry-After`. None when the CA offers none.
    pub fn renewal_info(&self, cert_id: &str) -> Result<Option<(RenewalInfo, Option<Duration>)>> {
        let Some(base) = &self.directory.renewal_info else {
            return Ok(None);
        };
        let url = format!("{}/{cert_id}", base.trim_end_matches('/'));
        let response = self.http.send(&url, None)?;
        Ok(Some((response.json()?, response.retry_after)))
    }

    /// Downloads `url` by POST-as-GET, expecting a PEM certificate chain.
    pub fn download_chain(
        &self,
        key: &AccountKey,
        key_id: KeyId<'_>,
        url: &str,
    ) -> Result<Response> {
        let response = self.post(key, key_id, url, None)?;
        response.expect_type(PEM_CHAIN)?;
        Ok(response)
    }

    /// A nonce for a signed request about to be sent. From then on the request counts as in
    /// flight (the caller uncounts it once answered), since its answer will bring a nonce.
    /// Taken from the pool; when that is empty, from an answer in flight, if there are more
    /// of those than requests already waiting for one (each answer serves one waiter, no later
    /// than a `newNonce` request would); else, or after [`NONCE_WAIT`], from `newNonce`. So a
    /// run of one order asks `newNonce` once, and the authorizations of an order are fetched
    /// side by side with a `newNonce` request for about every other one.
    fn nonce(&self) -> Result<String> {
        let mut nonces = self.http.lock_nonces();
        let give_up = Instant::now() + NONCE_WAIT;
        loop {
            if let Some(nonce) = nonces.pool.pop() {
                nonces.in_flight += 1;
                return Ok(nonce);
            }
            let left = give_up.saturating_duration_since(Instant::now());
            if nonces.in_flight <= nonces.waiting || left.is_zero() || (self.http.stopped)() {
                break;
            }
            nonces.waiting += 1;
            nonces = self
                .http
                .nonce_came
                .wait_timeout(nonces, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
            nonces.waiting -= 1;
        }
        // In flight from now on: the answer to the request this nonce is for comes no later
        // than one more newNonce request would.
        nonces.in_flight += 1;
        drop(nonces);
        self.new_nonce().inspect_err(|_| {
            self.http.lock_nonces().in_flight -= 1;
            self.http.nonce_came.notify_all();
        })
    }

    /// Puts a nonce from `newNonce` in the pool when it is empty, for a first signed request
    /// that is sure to come; a failure is left for that request to meet.
    pub fn stock_nonce(&self) {
        if !self.http.lock_nonces().pool.is_empty() {
            return;
        }
        if let Ok(nonce) = self.new_nonce() {
            self.http.lock_nonces().pool.push(nonce);
        }
    }

    /// A nonce from `newNonce` (a HEAD request).
    fn new_nonce(&self) -> Result<String> {
        let url = &self.directory.new_nonce;
        self.http.requests.fetch_add(1, Ordering::Relaxed);
        let sent = Instant::now();
        let response = self
            .http
            .agent
            .head(url)
            .call()
            .map_err(|e| transport(url, e))?;
        self.http.answered(sent);
        let status = response.status().as_u16();
        self.http.trace(&format!("HEAD {url} -> {status}"));
        if !(200..300).contains(&status) {
            // An error like any other (a 5xx is temporary), though a HEAD answer has no body.
            let answer = Response {
                url: url.clone(),
                status,
                location: header(&response, "location"),
                retry_after: None,
                date: None,
                links: Vec::new(),
                content_type: String::new(),
                body: Vec::new(),
            };
            let headers = response
                .headers()
                .iter()
                .map(|(k, v)| format!("{k}: {}\n", String::from_utf8_lossy(v.as_bytes())))
                .collect();
            return Err(problem_of(answer, "head", headers));
        }
        header(&response, "replay-nonce")
            .and_then(|v| parse_replay_nonce(&v).map(str::to_string))
            .filter(|_| status < 300)
            .ok_or_else(|| Error::Protocol {
                url: url.clone(),
                msg: format!("newNonce answered {status} without a valid Replay-Nonce"),
            })
    }
}

impl Http {
    /// Notes how long the request sent at `sent` took to be answered.
    fn answered(&self, sent: Instant) {
        let took = u64::try_from(sent.elapsed().as_micros()).unwrap_or(u64::MAX - 1);
        self.quickest.fetch_min(took, Ordering::Relaxed);
    }

    fn trace(&self, line: &str) {
        if let Some(trace) = self.trace {
            trace(line);
        }
    }

    fn lock_nonces(&self) -> MutexGuard<'_, Nonces> {
        // A poisoned pool only means another thread panicked while counting or pushing a string.
        self.nonces.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sends a GET (`body` None) or a JOSE POST and reads the answer. Every `Replay-Nonce`
    /// goes into the pool.
    fn send(&self, url: &str, body: Option<String>) -> Result<Response> {
        if (self.stopped)() {
            return Err(Error::Stopped {
                url: url.to_string(),
            });
        }
        self.requests.fetch_add(1, Ordering::Relaxed);
        let method = if body.is_some() { "post" } else { "get" };
        let sent = Instant::now();
        let result = match body {
            None => self.agent.get(url).call(),
            Some(body) => self
                .agent
                .post(url)
                .content_type("application/jose+json")
                .send(body),
        };
        let mut response = result.map_err(|e| transport(url, e))?;
        self.answered(sent);
        if let Some(nonce) = header(&response, "replay-nonce")
            .as_deref()
            .and_then(parse_replay_nonce)
        {
            self.lock_nonces().pool.push(nonce.to_string());
            self.nonce_came.notify_one();
        }
        let status = response.status().as_u16();
        self.trace(&format!("{} {url} -> {status}", method.to_uppercase()));
        let raw_headers = if (200..300).contains(&status) {
            String::new()
        } else {
            response
                .headers()
                .iter()
                .map(|(k, v)| format!("{k}: {}\n", String::from_utf8_lossy(v.as_bytes())))
                .collect()
        };
        let content_type = header(&response, "content-type")
            .map(|v| {
                v.split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase()
            })
            .unwrap_or_default();
        let location = header(&response, "location");
        let links = response
            .headers()
            .get_all("link")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(parse_links)
            .collect();
        let retry_after =
            header(&response, "retry-after").and_then(|v| parse_retry_after(&v, SystemTime::now()));
        let date = header(&response, "date")
            .and_then(|v| parse_http_date(v.trim()))
            .and_then(|d| u64::try_from(d).ok());
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_BODY)
            .read_to_vec()
            .map_err(|e| match e {
                ureq::Error::BodyExceedsLimit(_) => Error::Protocol {
                    url: url.to_string(),
                    msg: format!("answer is larger than {MAX_BODY} bytes"),
                },
                e => transport(url, e),
            })?;
        let response = Response {
            url: url.to_string(),
            status,
            location,
            retry_after,
            links,
            content_type,
            body,
            date,
        };
        if (200..300).contains(&status) {
            Ok(response)
        } else {
            Err(problem_of(response, method, raw_headers))
        }
    }
}

/// Turns a non-2xx answer into [`Error::Problem`]; a body that is no problem document becomes
/// the detail, shortened, so a proxy's HTML error page still says something.
pub(crate) fn problem_of(response: Response, method: &'static str, headers: String) -> Error {
    let parsed = if response.content_type == PROBLEM_JSON || response.content_type == JSON {
        serde_json::from_slice::<Problem>(&response.body).ok()
    } else {
        None
    };
    let mut problem = parsed.unwrap_or_else(|| {
        let text = String::from_utf8_lossy(&response.body);
        let mut detail: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
        if detail.len() > 200 {
            let mut cut = 200;
            while !detail.is_char_boundary(cut) {
                cut -= 1;
            }
            detail.truncate(cut);
            detail.push_str("...");
        }
        Problem {
            detail,
            ..Problem::default()
        }
    });
    // Redirects are never followed: a signed request is valid for its own URL only.
    if let (300..=399, Some(to)) = (response.status, &response.location) {
        let said = std::mem::take(&mut problem.detail);
        problem.detail = format!("a redirect to {to}, which is not followed");
        if !said.is_empty() {
            problem.detail = format!("{}: {said}", problem.detail);
        }
    }
    Error::Problem {
        url: response.url,
        status: response.status,
        problem: Box::new(problem),
        raw: Box::new(RawAnswer {
            method,
            headers,
            body: String::from_utf8_lossy(&response.body).into_owned(),
            retry_after: response.retry_after,
        }),
    }
}

fn header<B>(response: &ureq::http::Response<B>, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_string())
}

fn transport(url: &str, e: ureq::Error) -> Error {
    use ureq::Timeout;
    let msg = match e {
        ureq::Error::Timeout(Timeout::Connect | Timeout::Resolve) => format!(
            "timed out: no connection within {} s",
            bound(Bound::Request, CONNECT_TIMEOUT).as_secs_f32()
        ),
        ureq::Error::Timeout(_) => format!(
            "timed out: no whole answer within {} s",
            bound(Bound::Request, REQUEST_TIMEOUT).as_secs_f32()
        ),
        e => e.to_string(),
    };
    Error::Transport {
        url: url.to_string(),
        msg,
    }
}

fn agent(transport: &Transport) -> std::result::Result<ureq::Agent, String> {
    use ureq::config::IpFamily;
    use ureq::tls::{Certificate, PemItem, RootCerts, TlsConfig};
    let pem = match &transport.trust {
        Trust::Pem(pem) => Some(pem.clone()),
        Trust::System => system_bundle(),
    };
    let roots = match pem {
        None => RootCerts::WebPki,
        Some(pem) => {
            let certs: Vec<Certificate<'static>> = ureq::tls::parse_pem(&pem)
                .filter_map(|item| match item {
                    Ok(PemItem::Certificate(c)) => Some(c),
                    _ => None,
                })
                .collect();
            if certs.is_empty() {
                return Err("the CA bundle holds no certificate".into());
            }
            RootCerts::Specific(Arc::new(certs))
        }
    };
    let tls = TlsConfig::builder().root_certs(roots).build();
    let config = ureq::Agent::config_builder()
        .tls_config(tls)
        .http_status_as_error(false)
        .https_only(true)
        .ip_family(match transport.ip_version {
            Some(4) => IpFamily::Ipv4Only,
            Some(6) => IpFamily::Ipv6Only,
            _ => IpFamily::Any,
        })
        .user_agent(transport.user_agent.as_str())
        .accept_encoding("identity")
        .timeout_connect(Some(bound(Bound::Request, CONNECT_TIMEOUT)))
        .timeout_global(Some(bound(Bound::Request, REQUEST_TIMEOUT)))
        .max_redirects(0)
        // ACME messages are a few KiB; ureq's 128 KiB buffers, per connection and direction,
        // were most of the memory of a run with ten connections (they grow when needed).
        .input_buffer_size(IO_BUFFER)
        .output_buffer_size(IO_BUFFER)
        .build();
    Ok(config.into())
}

/// The system's CA bundle: `SSL_CERT_FILE`, else the first bundle found where Debian, Fedora,
/// openSUSE and Alpine keep theirs. None means use Mozilla's roots built into the binary.
fn system_bundle() -> Option<Vec<u8>> {
    let env = std::env::var_os("SSL_CERT_FILE").map(std::path::PathBuf::from);
    let known = [
        "/etc/ssl/certs/ca-certificates.crt",
        "/etc/pki/tls/certs/ca-bundle.crt",
        "/etc/ssl/ca-bundle.pem",
        "/etc/ssl/cert.pem",
    ];
    env.into_iter()
        .chain(known.iter().map(std::path::PathBuf::from))
        .find_map(|p| std::fs::read(p).ok())
}

/// The shortest wait before a first look at an order the CA is working on:
/// [`ROUND_TRIPS_BEFORE_A_LOOK`] of its quickest round trips, at most [`MAX_POLL_WAIT`].
fn first_look(round_trip: Option<Duration>) -> Duration {
    round_trip.map_or(Duration::ZERO, |rtt| {
        (rtt * ROUND_TRIPS_BEFORE_A_LOOK).min(MAX_POLL_WAIT)
    })
}

/// `Retry-After` as delta-seconds or as an IMF-fixdate (RFC 9110 §10.2.3), relative to `now`.
/// A date in the past is zero; anything else unreadable is None. Capped at one day.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let cap = Duration::from_secs(86_400);
    if let Ok(secs) = value.trim().parse::<u64>() {
        return Some(Duration::from_secs(secs).min(cap));
    }
    let at = parse_http_date(value.trim())?;
    let now = now.duration_since(UNIX_EPOCH).ok()?.as_secs();
    let at = u64::try_from(at).unwrap_or(0);
    Some(Duration::from_secs(at.saturating_sub(now)).min(cap))
}

/// `Sun, 06 Nov 1994 08:49:37 GMT` to Unix seconds (negative before 1970).
fn parse_http_date(s: &str) -> Option<i64> {
    let mut it = s.split_whitespace();
    let _weekday = it.next()?;
    let day: i64 = it.next()?.parse().ok()?;
    let month = it.next()?;
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|m| *m == month)? as i64
        + 1;
    let year = it.next()?;
    if year.len() != 4 || !year.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let year: i64 = year.parse().ok()?;
    let mut hms = it.next()?.split(':').map(|p| p.parse::<i64>().ok());
    let (h, m, sec) = (hms.next()??, hms.next()??, hms.next()??);
    let bad = |v: i64, max: i64| !(0..=max).contains(&v);
    if it.next()? != "GMT" || !(1..=31).contains(&day) || bad(h, 23) || bad(m, 59) || bad(sec, 60) {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + h * 3600 + m * 60 + sec)
}

/// Days since 1970-01-01 (negative before) of a proleptic Gregorian date with a four-digit
/// year, a month of 1 to 12 and a day of 1 to 31 (Howard Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_first_look_waits_eight_round_trips_of_the_ca_at_most_two_seconds() {
        assert_eq!(first_look(None), Duration::ZERO);
        let ms = Duration::from_millis;
        // Loopback: the caller's own floor decides.
        assert_eq!(
            first_look(Some(Duration::from_micros(300))),
            Duration::from_micros(2400)
        );
        // Across a continent, across an ocean, and a CA that takes its time.
        assert_eq!(first_look(Some(ms(30))), ms(240));
        assert_eq!(first_look(Some(ms(150))), ms(1200));
        assert_eq!(first_look(Some(ms(900))), MAX_POLL_WAIT);
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        let now = UNIX_EPOCH + Duration::from_secs(784_111_777); // Sun, 06 Nov 1994 08:49:37 GMT
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:51:37 GMT", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(
            parse_retry_after("9999999", now),
            Some(Duration::from_secs(86_400))
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(
            parse_retry_after("Sun, 06 Foo 1994 08:51:37 GMT", now),
            None
        );
    }

    #[test]
    fn retry_after_dates_before_1970_are_past_and_odd_years_unreadable() {
        // Found by fuzzing: a year before 1970 overflowed the day count.
        let now = UNIX_EPOCH + Duration::from_secs(784_111_777);
        for past in [
            "Sun, 06 Nov 1676 08:49:37 GMT",
            "Sat, 01 Jan 0000 00:00:00 GMT",
            "Wed, 31 Dec 1969 23:59:59 GMT",
        ] {
            assert_eq!(parse_retry_after(past, now), Some(Duration::ZERO), "{past}");
        }
        for odd in [
            "Sun, 06 Nov 99999999999999 08:49:37 GMT",
            "Sun, 06 Nov 94 08:49:37 GMT",
            "Sun, 06 Nov +994 08:49:37 GMT",
            "Sun, 06 Nov 1994 -8:49:37 GMT",
        ] {
            assert_eq!(parse_retry_after(odd, now), None, "{odd}");
        }
    }

    #[test]
    fn links_with_several_rels() {
        let links = parse_links(
            r#"<https://ca/dir>;rel="index", <https://ca/cert/1/alt/1>; rel="alternate""#,
        );
        assert_eq!(
            links,
            vec![
                Link {
                    rel: "index".into(),
                    url: "https://ca/dir".into()
                },
                Link {
                    rel: "alternate".into(),
                    url: "https://ca/cert/1/alt/1".into()
                },
            ]
        );
    }

    #[test]
    fn links_keep_commas_and_quotes_where_rfc_8288_puts_them() {
        let link = |rel: &str, url: &str| Link {
            rel: rel.into(),
            url: url.into(),
        };
        // Found by fuzzing: the rest of the parameter after a quoted rel became part of the
        // relation type, quote and all.
        assert_eq!(
            parse_links(
                "<https://127.0.5.1:14950/dib>;rel=\"inde<https:am\0_ttps://exax\"p_//example.com/"
            ),
            [link(
                "inde<https:am\0_ttps://exax",
                "https://127.0.5.1:14950/dib"
            )]
        );
        assert_eq!(
            parse_links(r#"<https://ca/cert/1,2>;rel="alternate""#),
            [link("alternate", "https://ca/cert/1,2")]
        );
        assert_eq!(
            parse_links(
                r#"<https://ca/a>; title="x, <y>; rel=no"; REL="UP alternate"; rel=index, <https://ca/b>;rel=index"#
            ),
            [
                link("up", "https://ca/a"),
                link("alternate", "https://ca/a"),
                link("index", "https://ca/b")
            ]
        );
        assert_eq!(
            parse_links(r#"<https://ca/q>; rel="a\"b""#),
            [link("a\"b", "https://ca/q")]
        );
        assert_eq!(
            parse_links("<https://ca/none>, garbage, <https://ca/c>;rel=up"),
            [link("up", "https://ca/c")]
        );
    }

    #[test]
    fn replay_nonces_are_base64url_or_ignored() {
        assert_eq!(
            parse_replay_nonce(" oFvnlFP1wIhRlYS2jTaXbA "),
            Some("oFvnlFP1wIhRlYS2jTaXbA")
        );
        assert_eq!(parse_replay_nonce("a-b_C9"), Some("a-b_C9"));
        for bad in ["", " ", "abc=", "a b", "a+b/c", "\"nonce\"", "nonce,nonce"] {
            assert_eq!(parse_replay_nonce(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn html_error_pages_become_short_problems() {
        let body = format!("<html>\n<body>{}</body></html>", "Bad gateway ".repeat(40));
        let err = problem_of(
            Response {
                url: "https://ca/x".into(),
                status: 502,
                location: None,
                retry_after: None,
                links: vec![],
                content_type: "text/html".into(),
                body: body.into_bytes(),
                date: None,
            },
            "post",
            "Content-Type: text/html\n".into(),
        );
        assert!(err.is_temporary());
        let text = err.to_string();
        assert!(text.starts_with("https://ca/x answered 502: <html> <body>Bad gateway"));
        assert!(text.len() < 300, "{text}");
    }

    #[test]
    fn an_error_page_with_control_characters_is_one_clean_line() {
        // Found by fuzzing: NUL bytes of a body that is not JSON went into the message.
        let mut body = br#"{"type": "urn:ietf:params:acme:error:malformed"#.to_vec();
        body.extend([0; 50]);
        body.extend(br#"", "detail": "x", "status": 400}"#);
        body.extend(b"\x1b[2J\r<0>forged");
        let err = problem_of(
            Response {
                url: "https://ca/x".into(),
                status: 400,
                location: None,
                retry_after: None,
                links: vec![],
                content_type: PROBLEM_JSON.into(),
                body,
                date: None,
            },
            "post",
            String::new(),
        );
        let text = err.to_string();
        assert!(!text.contains(char::is_control), "{text:?}");
        assert!(text.ends_with(" [2J <0>forged"), "{text:?}");
    }

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
