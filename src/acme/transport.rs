//! HTTPS to the CA: one agent (TLS trust, user agent, time limits), size caps, answers read.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::de::DeserializeOwned;

use super::error::{Error, RawAnswer, Result};
use super::headers::{Link, parse_date, parse_links, parse_replay_nonce, parse_retry_after};
use super::nonce::NoncePool;
use super::pace::{Class, Limits, MAX_HOLD, MAX_JOBS, Pacer};
use super::text::{check_url, for_argument, shown, shown_url};
use super::wire::{Problem, Wire};

/// Responses larger than this are refused: no ACME object or certificate chain comes near it.
pub const MAX_BODY: u64 = 1 << 20;
/// The most of a failed answer's body, and of its headers, kept for the `request_failure`
/// hook: each is one argument of a program, which Linux limits to 128 KiB.
pub const MAX_RAW_ANSWER: usize = 64 * 1024;
/// The longest one request may take, from connecting to the last byte of the answer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(90);
/// The starting size of each connection's read and write buffers.
const IO_BUFFER: usize = 16 * 1024;
/// The longest a connection may take to open.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// Idle connections kept open for the next request: one for each job and a few for the main
/// thread. ureq keeps 3 by default, so a run of many jobs closed most connections after each
/// answer and paid a new TCP and TLS handshake (two round trips) for most requests.
const IDLE_CONNECTIONS: usize = MAX_JOBS + 4;

pub const JSON: &str = "application/json";
pub const PROBLEM_JSON: &str = "application/problem+json";
pub const PEM_CHAIN: &str = "application/pem-certificate-chain";

/// Which certificates the HTTPS client trusts. Verification itself is never switched off.
#[derive(Debug, Clone)]
pub enum Trust {
    /// The system's store as openssl finds it: `SSL_CERT_FILE` and `SSL_CERT_DIR` when set,
    /// else the distribution's bundle and certificate folder; Mozilla's roots built into the
    /// binary when neither holds a certificate.
    System,
    /// Exactly the certificates of this PEM bundle (a private CA, a test CA).
    Pem(Vec<u8>),
}

/// Shorter time limits than the built-in ones, which only tests of stalled connections and
/// stuck orders want (to end in seconds): each, when set, is used where it is the shorter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Deadlines {
    /// For one request, from connecting to the last byte of the answer.
    pub request: Option<Duration>,
    /// For one wait for the CA to validate or to sign.
    pub wait: Option<Duration>,
}

impl Deadlines {
    /// The limit for one request whose built-in limit is `normal`.
    pub fn request(&self, normal: Duration) -> Duration {
        self.request.map_or(normal, |short| short.min(normal))
    }

    /// The limit for one wait for the CA whose built-in limit is `normal`.
    pub fn wait(&self, normal: Duration) -> Duration {
        self.wait.map_or(normal, |short| short.min(normal))
    }
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
    /// The built-in time limits, or shorter ones for tests.
    pub deadlines: Deadlines,
    /// The CA's request limits per endpoint class, which every request is paced under.
    pub limits: Limits,
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
    /// The body as `T`, after checking that it was sent as JSON, and `T`'s own checks
    /// ([`Wire`]).
    pub fn json<T: Wire>(&self) -> Result<T> {
        let mut value: T = self.parse()?;
        value.check().map_err(|msg| self.refused(msg))?;
        Ok(value)
    }

    /// The body as `T`, after checking that it was sent as JSON, and nothing more: for the
    /// readers that check `T` themselves.
    pub(super) fn parse<T: DeserializeOwned>(&self) -> Result<T> {
        self.expect_type(JSON)?;
        serde_json::from_slice(&self.body).map_err(|e| Error::Protocol {
            url: self.url.clone(),
            msg: format!("JSON does not match RFC 8555: {}", shown(&e.to_string())),
        })
    }

    /// This answer refused, for the reason `msg`.
    pub(super) fn refused(&self, msg: String) -> Error {
        Error::Protocol {
            url: self.url.clone(),
            msg,
        }
    }

    /// Ok when the `Content-Type` (without parameters) is `wanted`.
    pub fn expect_type(&self, wanted: &str) -> Result<()> {
        if self.content_type.eq_ignore_ascii_case(wanted) {
            Ok(())
        } else {
            Err(Error::Protocol {
                url: self.url.clone(),
                msg: format!(
                    "content type is \"{}\", not {wanted}",
                    shown(&self.content_type)
                ),
            })
        }
    }

    /// The `Location` header, which RFC 8555 requires on this answer, when it is a URL.
    pub fn location(&self) -> Result<&str> {
        let location = self.location.as_deref().ok_or_else(|| Error::Protocol {
            url: self.url.clone(),
            msg: "no Location header".into(),
        })?;
        check_url(location).map_err(|msg| self.refused(format!("Location: {msg}")))?;
        Ok(location)
    }
}

/// Every HTTP request this process sent to a CA, whichever client sent it.
static SENT: AtomicUsize = AtomicUsize::new(0);

/// How many HTTP requests this process has sent to a CA so far, over all its clients: what a
/// run reports as its requests.
pub fn requests_sent() -> usize {
    SENT.load(Ordering::Relaxed)
}

/// The variables a proxy is read from, in the order ureq 3 (`Proxy::try_from_env`) tries
/// them: the first that holds a proxy URL wins, for every request (the CA's URLs are all
/// `https://`). `NO_PROXY` (or `no_proxy`) lists the hosts reached directly.
pub const PROXY_VARIABLES: [&str; 6] = [
    "ALL_PROXY",
    "all_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
];

/// The proxy the environment names, and the variable it came from.
#[derive(Clone)]
struct EnvProxy {
    proxy: ureq::Proxy,
    variable: &'static str,
}

impl EnvProxy {
    /// The proxy of the environment as ureq reads it; None when no variable holds a proxy URL.
    fn read() -> Option<EnvProxy> {
        let proxy = ureq::Proxy::try_from_env()?;
        let variable = PROXY_VARIABLES.into_iter().find(|name| {
            std::env::var(name)
                .ok()
                .is_some_and(|v| ureq::Proxy::new(&v).is_ok())
        })?;
        Some(EnvProxy { proxy, variable })
    }

    /// `scheme://host:port (VARIABLE)`: never the user name or password the URL may carry.
    fn shown(&self) -> String {
        let scheme = self.proxy.uri().scheme_str().unwrap_or("http");
        shown(&format!(
            "{scheme}://{}:{} ({})",
            self.proxy.host(),
            self.proxy.port(),
            self.variable
        ))
        .into_owned()
    }

    /// Whether a request to `url` goes through this proxy (its host is not in `NO_PROXY`).
    fn carries(&self, url: &str) -> bool {
        url.parse::<ureq::http::Uri>()
            .map_or(true, |uri| !self.proxy.is_no_proxy(&uri))
    }
}

/// The HTTPS side of a client: the agent, the nonces every answer brings, a request count.
pub struct Http {
    agent: ureq::Agent,
    /// The proxy requests go through, when the environment names one.
    proxy: Option<EnvProxy>,
    /// Whether the trusted roots are a `CA_BUNDLE` (else the system's store).
    bundle: bool,
    pub nonces: NoncePool,
    requests: AtomicUsize,
    /// The quickest answer so far, in microseconds, from sending to its status line.
    quickest: AtomicU64,
    trace: Option<fn(&str)>,
    pub stopped: fn() -> bool,
    pub deadlines: Deadlines,
    /// The request limits of the CA, shared by every thread.
    pub pace: Pacer,
    /// Told of each accepted `newOrder` as it is answered ([`Http::on_order`]).
    order_sink: Mutex<Option<OrderSink>>,
}

/// What is told, with its time in Unix seconds, of each `newOrder` the CA accepts.
pub type OrderSink = Box<dyn Fn(i64) + Send + Sync>;

/// True for an answer that says "not now, in a moment": a `503` whose `Retry-After` is at
/// most [`MAX_HOLD`] away. The request was not acted on (a load balancer's limit) and is sent
/// again once that time has passed.
pub fn is_brief_refusal(e: &Error) -> bool {
    matches!(e, Error::Problem { status: 503, .. })
        && e.retry_after().is_some_and(|wait| wait <= MAX_HOLD)
}

/// How many times one request is sent again after a brief refusal ([`is_brief_refusal`]).
pub const BRIEF_REFUSAL_RETRIES: usize = 3;

impl Http {
    /// An agent for `transport`; Err says why (a CA bundle with no certificate in it).
    pub fn new(transport: &Transport) -> std::result::Result<Http, String> {
        let proxy = EnvProxy::read();
        if let (Some(trace), Some(p)) = (transport.trace, &proxy) {
            trace(&format!("through the proxy {}", p.shown()));
        }
        Ok(Http {
            agent: agent(transport, proxy.as_ref().map(|p| p.proxy.clone()))?,
            proxy,
            bundle: matches!(transport.trust, Trust::Pem(_)),
            nonces: NoncePool::default(),
            requests: AtomicUsize::new(0),
            quickest: AtomicU64::new(u64::MAX),
            trace: transport.trace,
            stopped: transport.stopped,
            deadlines: transport.deadlines,
            pace: Pacer::new(&transport.limits),
            order_sink: Mutex::new(None),
        })
    }

    /// Has `sink` told of every `newOrder` the CA accepts from now on, in the thread that sent
    /// it, before the answer goes back to the caller.
    pub fn on_order(&self, sink: OrderSink) {
        *self.order_sink.lock().unwrap_or_else(|e| e.into_inner()) = Some(sink);
    }

    /// Waits until a request to `url` fits the CA's limits (or the run is asked to stop);
    /// returns its class.
    fn paced(&self, url: &str) -> Result<Class> {
        let (class, until) = self.turn(url);
        // In slices, so that a stop is seen within one.
        while Instant::now() < until && !(self.stopped)() {
            std::thread::sleep((until - Instant::now()).min(Duration::from_millis(50)));
        }
        self.going_on(url)?;
        Ok(class)
    }

    /// The class of a request to `url` and the time it may be sent at, booked.
    fn turn(&self, url: &str) -> (Class, Instant) {
        let class = self.pace.class(url);
        let now = Instant::now();
        (class, now + self.pace.take(class, now))
    }

    /// Ok while the run goes on; [`Error::Stopped`] for `url` once it was asked to stop.
    fn going_on(&self, url: &str) -> Result<()> {
        if (self.stopped)() {
            Err(Error::Stopped {
                url: url.to_string(),
            })
        } else {
            Ok(())
        }
    }

    /// Notes what an answer of `class` means for the pacing: a `503` with a `Retry-After`
    /// holds the whole class until then; an accepted `newOrder` is counted.
    fn note(&self, class: Class, status: u16, retry_after: Option<Duration>) {
        match (status, retry_after) {
            (503, Some(wait)) if wait <= MAX_HOLD => {
                let now = Instant::now();
                self.pace.hold(class, now, now + wait);
            }
            (200..=299, _) if class == Class::NewOrder => {
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs().cast_signed());
                if let Some(sink) = &*self.order_sink.lock().unwrap_or_else(|e| e.into_inner()) {
                    sink(now);
                }
            }
            _ => {}
        }
    }

    /// How many HTTP requests were sent.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::Relaxed)
    }

    /// The quickest round trip so far; None before the first answer.
    pub fn quickest(&self) -> Option<Duration> {
        match self.quickest.load(Ordering::Relaxed) {
            u64::MAX => None,
            micros => Some(Duration::from_micros(micros)),
        }
    }

    /// Notes how long the request sent at `sent` took to be answered; a quicker round trip
    /// than any before paces the requests after it.
    fn answered(&self, sent: Instant) {
        let took = u64::try_from(sent.elapsed().as_micros()).unwrap_or(u64::MAX - 1);
        if self.quickest.fetch_min(took, Ordering::Relaxed) > took {
            self.pace.round_trip(Duration::from_micros(took));
        }
    }

    fn trace(&self, line: &str) {
        if let Some(trace) = self.trace {
            trace(line);
        }
    }

    /// A GET, sent again after a brief refusal ([`is_brief_refusal`]) a bounded number of
    /// times.
    pub fn get(&self, url: &str) -> Result<Response> {
        let mut tries = 0;
        loop {
            match self.send(url, None) {
                Err(e) if is_brief_refusal(&e) && tries < BRIEF_REFUSAL_RETRIES => tries += 1,
                other => return other,
            }
        }
    }

    /// Sends a GET (`body` None) or a JOSE POST, once, when the CA's limits allow, and reads
    /// the answer. Every `Replay-Nonce` goes into the pool.
    pub fn send(&self, url: &str, body: Option<String>) -> Result<Response> {
        let class = self.paced(url)?;
        self.requests.fetch_add(1, Ordering::Relaxed);
        SENT.fetch_add(1, Ordering::Relaxed);
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
        let mut response = result.map_err(|e| self.transport_error(url, e))?;
        self.answered(sent);
        if let Some(nonce) = header(&response, "replay-nonce")
            .as_deref()
            .and_then(parse_replay_nonce)
        {
            self.nonces.put(nonce.to_string());
        }
        let status = response.status().as_u16();
        self.trace(&format!(
            "{} {} -> {status}",
            method.to_uppercase(),
            shown_url(url)
        ));
        let raw_headers = if (200..300).contains(&status) {
            String::new()
        } else {
            all_headers(&response)
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
            // A link is a hint (another chain, an issuer): one that is no URL is left out.
            .filter(|link| check_url(&link.url).is_ok())
            .collect();
        let retry_after =
            header(&response, "retry-after").and_then(|v| parse_retry_after(&v, SystemTime::now()));
        let date = header(&response, "date").and_then(|v| parse_date(&v));
        self.note(class, status, retry_after);
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
                e => self.transport_error(url, e),
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

    /// A nonce from `url`, the CA's `newNonce` (a HEAD request), asked again after a brief
    /// refusal ([`is_brief_refusal`]) a bounded number of times.
    pub fn new_nonce(&self, url: &str) -> Result<String> {
        let mut tries = 0;
        loop {
            match self.new_nonce_once(url) {
                Err(e) if is_brief_refusal(&e) && tries < BRIEF_REFUSAL_RETRIES => tries += 1,
                other => return other,
            }
        }
    }

    fn new_nonce_once(&self, url: &str) -> Result<String> {
        // While the request waits for its turn under the CA's limit, a nonce that another
        // request's answer brings serves as well, and sooner: a batch's jobs starting side by
        // side ask `newNonce` far less than once each.
        let (class, turn) = self.turn(url);
        if let Some(nonce) = self.nonces.take_before(turn, self.stopped) {
            return Ok(nonce);
        }
        self.going_on(url)?;
        self.requests.fetch_add(1, Ordering::Relaxed);
        SENT.fetch_add(1, Ordering::Relaxed);
        let sent = Instant::now();
        let response = self
            .agent
            .head(url)
            .call()
            .map_err(|e| self.transport_error(url, e))?;
        self.answered(sent);
        let status = response.status().as_u16();
        self.trace(&format!("HEAD {} -> {status}", shown_url(url)));
        if !(200..300).contains(&status) {
            // An error like any other (a 5xx is temporary), though a HEAD answer has no body.
            let retry_after = header(&response, "retry-after")
                .and_then(|v| parse_retry_after(&v, SystemTime::now()));
            self.note(class, status, retry_after);
            let answer = Response {
                url: url.to_string(),
                status,
                location: header(&response, "location"),
                retry_after,
                date: None,
                links: Vec::new(),
                content_type: String::new(),
                body: Vec::new(),
            };
            return Err(problem_of(answer, "head", all_headers(&response)));
        }
        header(&response, "replay-nonce")
            .and_then(|v| parse_replay_nonce(&v).map(str::to_string))
            .filter(|_| status < 300)
            .ok_or_else(|| Error::Protocol {
                url: url.to_string(),
                msg: format!("newNonce answered {status} without a valid Replay-Nonce"),
            })
    }

    fn transport_error(&self, url: &str, e: ureq::Error) -> Error {
        use ureq::Timeout;
        let proxy = self.proxy.as_ref().filter(|p| p.carries(url));
        if let Some(why) = certificate_error(&e) {
            let roots = if self.bundle {
                "the given CA bundle"
            } else {
                "the system's certificate store"
            };
            // Through a tunnel the certificate is still the CA's, unless the proxy inspects
            // TLS: then it is the proxy's own, the usual cause behind a proxy.
            let through = proxy.map_or(String::new(), |p| {
                format!(
                    " (through the proxy {}: a proxy that inspects TLS shows a certificate of \
                     its own; put its root in CA_BUNDLE, or {} in NO_PROXY)",
                    p.shown(),
                    host_name_of(url)
                )
            });
            return Error::Untrusted {
                url: url.to_string(),
                msg: format!(
                    "the TLS certificate of {} is not trusted by {roots}: {why}{through}",
                    host_of(url)
                ),
            };
        }
        // With a proxy, the connection this side opens is to the proxy (the proxy resolves and
        // reaches the CA's host): a failure to look up or connect is the proxy's.
        let connecting = match &e {
            ureq::Error::Timeout(Timeout::Connect | Timeout::Resolve)
            | ureq::Error::HostNotFound => true,
            ureq::Error::Io(e) => {
                use std::io::ErrorKind::*;
                matches!(
                    e.kind(),
                    ConnectionRefused | HostUnreachable | NetworkUnreachable | AddrNotAvailable
                ) || is_lookup_error(e)
            }
            _ => false,
        };
        let msg = match e {
            ureq::Error::Timeout(Timeout::Connect | Timeout::Resolve) => format!(
                "timed out: no connection within {} s",
                self.deadlines.request(CONNECT_TIMEOUT).as_secs_f32()
            ),
            ureq::Error::Timeout(_) => format!(
                "timed out: no whole answer within {} s",
                self.deadlines.request(REQUEST_TIMEOUT).as_secs_f32()
            ),
            ureq::Error::ConnectProxyFailed(said) if proxy.is_some() => {
                let p = proxy.map(EnvProxy::shown).unwrap_or_default();
                return Error::Transport {
                    url: url.to_string(),
                    msg: format!("the proxy {p} refused the tunnel: {}", shown(&said)),
                };
            }
            ureq::Error::Io(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                "connection refused".to_string()
            }
            e => shown(&e.to_string()).into_owned(),
        };
        let msg = match proxy {
            Some(p) if connecting => format!("cannot connect to the proxy {}: {msg}", p.shown()),
            Some(p) => format!("{msg} (through the proxy {})", p.shown()),
            None => msg,
        };
        Error::Transport {
            url: url.to_string(),
            msg,
        }
    }
}

/// What is wrong with the certificate the server presented, when that is why `e` happened.
fn certificate_error(e: &ureq::Error) -> Option<String> {
    let rustls = match e {
        ureq::Error::Rustls(e) => e,
        ureq::Error::Io(e) => e.get_ref()?.downcast_ref::<rustls::Error>()?,
        _ => return None,
    };
    match rustls {
        rustls::Error::InvalidCertificate(why) => Some(match why {
            rustls::CertificateError::UnknownIssuer => "its issuer is not known".to_string(),
            rustls::CertificateError::NotValidForName
            | rustls::CertificateError::NotValidForNameContext { .. } => {
                "it is made out to another name".to_string()
            }
            rustls::CertificateError::Expired | rustls::CertificateError::ExpiredContext { .. } => {
                "it has expired, or this machine's clock is wrong".to_string()
            }
            other => shown(&format!("{other:?}")).into_owned(),
        }),
        _ => None,
    }
}

/// True for the standard library's failure to look a host name up (getaddrinfo), which has
/// no `ErrorKind` of its own: only its text says what it is.
fn is_lookup_error(e: &std::io::Error) -> bool {
    e.to_string()
        .starts_with("failed to lookup address information")
}

/// The host of `url` without its port, for `NO_PROXY`: never a user or password.
fn host_name_of(url: &str) -> String {
    let host = url
        .parse::<ureq::http::Uri>()
        .ok()
        .and_then(|u| u.host().map(str::to_string));
    shown(host.as_deref().unwrap_or("the CA's host")).into_owned()
}

/// The host (and port, when it has one) of `url`, for messages: never a user or password.
fn host_of(url: &str) -> String {
    let host = url.parse::<ureq::http::Uri>().ok().and_then(|u| {
        u.authority().map(|a| match a.port_u16() {
            Some(port) => format!("{}:{port}", a.host()),
            None => a.host().to_string(),
        })
    });
    shown(host.as_deref().unwrap_or("the CA")).into_owned()
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
    problem.clean();
    // Redirects are never followed: a signed request is valid for its own URL only.
    if let (300..=399, Some(to)) = (response.status, &response.location) {
        let said = std::mem::take(&mut problem.detail);
        problem.detail = format!("a redirect to {}, which is not followed", shown(to));
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
            headers: for_argument(&headers, MAX_RAW_ANSWER),
            body: for_argument(&String::from_utf8_lossy(&response.body), MAX_RAW_ANSWER),
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

/// Every header, one `Name: value` line each, for dehydrated's `request_failure` hook.
fn all_headers<B>(response: &ureq::http::Response<B>) -> String {
    response
        .headers()
        .iter()
        .map(|(k, v)| format!("{k}: {}\n", String::from_utf8_lossy(v.as_bytes())))
        .collect()
}

fn agent(
    transport: &Transport,
    proxy: Option<ureq::Proxy>,
) -> std::result::Result<ureq::Agent, String> {
    use ureq::config::IpFamily;
    use ureq::tls::{Certificate, PemItem, RootCerts, TlsConfig};
    let roots = match &transport.trust {
        Trust::Pem(pem) => {
            let certs: Vec<Certificate<'static>> = ureq::tls::parse_pem(pem)
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
        Trust::System => match system_roots() {
            Some(certs) => RootCerts::Specific(Arc::new(certs)),
            None => RootCerts::WebPki,
        },
    };
    let tls = TlsConfig::builder().root_certs(roots).build();
    let deadlines = transport.deadlines;
    let config = ureq::Agent::config_builder()
        .tls_config(tls)
        // Set here, though ureq reads the same by default, so that errors name this one.
        .proxy(proxy)
        .http_status_as_error(false)
        .https_only(true)
        .ip_family(match transport.ip_version {
            Some(4) => IpFamily::Ipv4Only,
            Some(6) => IpFamily::Ipv6Only,
            _ => IpFamily::Any,
        })
        .user_agent(transport.user_agent.as_str())
        .accept_encoding("identity")
        .timeout_connect(Some(deadlines.request(CONNECT_TIMEOUT)))
        .timeout_global(Some(deadlines.request(REQUEST_TIMEOUT)))
        .max_redirects(0)
        // ACME messages are a few KiB; ureq's 128 KiB buffers, per connection and direction,
        // were most of the memory of a run with ten connections (they grow when needed).
        .input_buffer_size(IO_BUFFER)
        .output_buffer_size(IO_BUFFER)
        .max_idle_connections(IDLE_CONNECTIONS)
        .max_idle_connections_per_host(IDLE_CONNECTIONS)
        .build();
    Ok(config.into())
}

/// The system's trust store, read by rustls-native-certs the way openssl reads it:
/// `SSL_CERT_FILE` and `SSL_CERT_DIR` when set, else the bundle and folder where the
/// distribution keeps them. Files it cannot read are left out; None when no certificate was
/// found at all.
fn system_roots() -> Option<Vec<ureq::tls::Certificate<'static>>> {
    let found = rustls_native_certs::load_native_certs();
    let certs: Vec<_> = found
        .certs
        .iter()
        .map(|der| ureq::tls::Certificate::from_der(der.as_ref()).to_owned())
        .collect();
    (!certs.is_empty()).then_some(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!(text.ends_with(r"\u{1b}[2J <0>forged"), "{text:?}");
    }

    #[test]
    fn shorter_deadlines_apply_only_where_shorter() {
        let normal = Deadlines::default();
        assert_eq!(normal.request(REQUEST_TIMEOUT), REQUEST_TIMEOUT);
        assert_eq!(
            normal.wait(Duration::from_secs(60)),
            Duration::from_secs(60)
        );
        let short = Deadlines {
            request: Some(Duration::from_secs(2)),
            wait: Some(Duration::from_secs(120)),
        };
        assert_eq!(short.request(REQUEST_TIMEOUT), Duration::from_secs(2));
        assert_eq!(short.wait(Duration::from_secs(60)), Duration::from_secs(60));
    }
}
