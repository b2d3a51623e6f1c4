//! A FAULT-INJECTING HTTPS PROXY between the desiccant binary and the real Pebble. It exists
//! because Pebble cannot misbehave on demand: it never sends HTML, truncated or 100 MB bodies,
//! hostile tokens, bad nonces on purpose, 5xx, rate limits, redirects, stalls or resets, or a
//! wrong certificate. Everything else (accounts, orders, validation, signing) is Pebble's own
//! work: every request goes to Pebble unless a rule says to answer locally.
//!
//! The proxy listens with TLS on a free loopback port, with the certificate the harness made
//! for Pebble (so the client verifies it with the same CA_BUNDLE), and opens a verified TLS
//! connection to Pebble per request. The client's `Host` header goes to Pebble unchanged: Pebble
//! checks the JWS `url` against it and builds its URLs from it, so they already point at the
//! proxy; any that still name Pebble's own address (in bodies, `Location` and `Link` headers)
//! are rewritten, so the client stays behind the proxy.
//!
//! A [`Rule`] matches by method, path (substring or prefix) and hit number, and changes the
//! answer: status, headers, body, or how it is delivered (truncated, cut off, inflated, late,
//! dripped, reset, never). Every request is logged ([`Proxy::count`]), so tests can assert for
//! example that finalize was POSTed exactly once.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};

/// How a rule picks among the requests it matches, counted from 1.
#[derive(Debug, Clone, Copy)]
pub enum Hits {
    All,
    /// Only the n-th.
    Nth(usize),
    /// The first n.
    First(usize),
    /// The n-th and every later one.
    From(usize),
}

impl Hits {
    fn includes(self, n: usize) -> bool {
        match self {
            Hits::All => true,
            Hits::Nth(k) => n == k,
            Hits::First(k) => n <= k,
            Hits::From(k) => n >= k,
        }
    }
}

/// How the answer travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// As a well-formed HTTP answer.
    Whole,
    /// Only the first n bytes of the body, with a matching Content-Length.
    Truncate(usize),
    /// The full Content-Length announced, n bytes of the body sent, then the connection closed.
    CutOff(usize),
    /// The body followed by spaces up to n bytes (still valid JSON), with a Content-Length.
    Inflate(u64),
    /// The same, in chunks with no length announced.
    InflateChunked(u64),
    /// The whole answer, `bytes` at a time with `every` between them.
    Drip { bytes: usize, every: Duration },
    /// No answer: the connection is reset (RST).
    Reset,
    /// No answer: the connection is closed (FIN).
    Close,
    /// No answer, and the connection held open until the client gives up (or the proxy stops).
    Hang,
}

type BodyMap = Arc<dyn Fn(&[u8], &[Seen]) -> Vec<u8> + Send + Sync>;

/// What to do with some requests. Built with [`Rule::post`], [`Rule::get`], [`Rule::any`] and
/// the methods that follow; without any change it passes the request through.
#[derive(Clone)]
pub struct Rule {
    method: Option<String>,
    path: String,
    prefix: bool,
    hits: Hits,
    /// Only once (true) or only until (false) a request with this in its path was seen.
    seen_first: Option<(String, bool)>,
    forward: bool,
    delay: Option<Duration>,
    status: Option<u16>,
    drop_headers: Vec<String>,
    set_headers: Vec<(String, String)>,
    body: Option<BodyMap>,
    delivery: Delivery,
}

impl Rule {
    /// Requests of any method whose path contains `path`.
    pub fn any(path: &str) -> Rule {
        Rule {
            method: None,
            path: path.to_string(),
            prefix: false,
            hits: Hits::All,
            seen_first: None,
            forward: true,
            delay: None,
            status: None,
            drop_headers: Vec::new(),
            set_headers: Vec::new(),
            body: None,
            delivery: Delivery::Whole,
        }
    }

    /// POSTs whose path contains `path`.
    pub fn post(path: &str) -> Rule {
        Rule {
            method: Some("POST".into()),
            ..Rule::any(path)
        }
    }

    /// GETs whose path contains `path`.
    pub fn get(path: &str) -> Rule {
        Rule {
            method: Some("GET".into()),
            ..Rule::any(path)
        }
    }

    /// HEADs whose path contains `path`.
    pub fn head(path: &str) -> Rule {
        Rule {
            method: Some("HEAD".into()),
            ..Rule::any(path)
        }
    }

    /// Match the path as a prefix instead of a substring.
    pub fn prefix(mut self) -> Rule {
        self.prefix = true;
        self
    }

    /// Only the n-th matching request (from 1).
    pub fn nth(mut self, n: usize) -> Rule {
        self.hits = Hits::Nth(n);
        self
    }

    /// Only the first n matching requests.
    pub fn first(mut self, n: usize) -> Rule {
        self.hits = Hits::First(n);
        self
    }

    /// The n-th matching request and every later one.
    pub fn from(mut self, n: usize) -> Rule {
        self.hits = Hits::From(n);
        self
    }

    /// Only requests that come after one with `path` in its path (since [`Proxy::forget`]);
    /// hits are counted among those.
    pub fn after(mut self, path: &str) -> Rule {
        self.seen_first = Some((path.to_string(), true));
        self
    }

    /// Only requests that come before any with `path` in its path (since [`Proxy::forget`]).
    pub fn before(mut self, path: &str) -> Rule {
        self.seen_first = Some((path.to_string(), false));
        self
    }

    /// Answer here: Pebble never sees the request. The answer is 200 with no header and an
    /// empty body unless the rule sets them.
    pub fn local(mut self) -> Rule {
        self.forward = false;
        self
    }

    /// Wait this long before forwarding or answering.
    pub fn delay(mut self, d: Duration) -> Rule {
        self.delay = Some(d);
        self
    }

    pub fn status(mut self, status: u16) -> Rule {
        self.status = Some(status);
        self
    }

    /// Remove a header (any case) from the answer.
    pub fn drop_header(mut self, name: &str) -> Rule {
        self.drop_headers.push(name.to_ascii_lowercase());
        self
    }

    /// Set a header, replacing any of that name.
    pub fn header(mut self, name: &str, value: &str) -> Rule {
        self.drop_headers.push(name.to_ascii_lowercase());
        self.set_headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Replace the body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Rule {
        let body: Vec<u8> = body.into();
        self.body = Some(Arc::new(move |_, _| body.clone()));
        self
    }

    /// Replace the body with a problem document of `urn:ietf:params:acme:error:<kind>`, sent
    /// as application/problem+json.
    pub fn problem(self, kind: &str, detail: &str) -> Rule {
        let doc = serde_json::json!({
            "type": format!("urn:ietf:params:acme:error:{kind}"),
            "detail": detail,
        });
        self.header("Content-Type", "application/problem+json")
            .body(doc.to_string())
    }

    /// Change the body with `f`, which also sees every request logged so far.
    pub fn map_body(
        mut self,
        f: impl Fn(&[u8], &[Seen]) -> Vec<u8> + Send + Sync + 'static,
    ) -> Rule {
        self.body = Some(Arc::new(f));
        self
    }

    /// Change the body as JSON (left alone when it is not JSON).
    pub fn json(self, f: impl Fn(&mut serde_json::Value) + Send + Sync + 'static) -> Rule {
        self.map_body(move |body, _| match serde_json::from_slice(body) {
            Ok(mut v) => {
                f(&mut v);
                serde_json::to_vec(&v).unwrap()
            }
            Err(_) => body.to_vec(),
        })
    }

    pub fn deliver(mut self, delivery: Delivery) -> Rule {
        self.delivery = delivery;
        self
    }

    /// Answer `status` with `Location: to` and no body, without asking Pebble.
    pub fn redirect(self, status: u16, to: &str) -> Rule {
        self.local().status(status).header("Location", to)
    }

    fn matches(&self, method: &str, path: &str, seen: &[Seen]) -> bool {
        self.method.as_deref().is_none_or(|m| m == method)
            && if self.prefix {
                path.starts_with(&self.path)
            } else {
                path.contains(&self.path)
            }
            && self
                .seen_first
                .as_ref()
                .is_none_or(|(p, after)| seen.iter().any(|s| s.path.contains(p)) == *after)
    }
}

/// One request as the proxy saw it, and what became of it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub body: Vec<u8>,
    /// The status sent back; None when no answer went back (reset, closed, hung).
    pub status: Option<u16>,
    /// Whether a rule changed this exchange.
    pub faulted: bool,
    /// Bytes of answer body written to the client (for inflated answers: how much it took).
    pub body_sent: u64,
}

struct Shared {
    rules: Mutex<Vec<(Rule, usize)>>,
    seen: Mutex<Vec<Seen>>,
    upstream: SocketAddr,
    upstream_tls: Arc<rustls::ClientConfig>,
    /// `<address>:<port>` of Pebble and of the proxy, for rewriting.
    upstream_host: String,
    proxy_host: String,
    stop: AtomicBool,
}

/// The running proxy; stopped on Drop (connections that hang are let go).
pub struct Proxy {
    /// Pebble's directory URL behind the proxy: what the client's `CA` is set to.
    pub directory_url: String,
    pub addr: SocketAddr,
    shared: Arc<Shared>,
}

impl Proxy {
    /// Starts a proxy in front of the Pebble whose directory is `directory_url` and whose TLS
    /// files the harness wrote into `pebble_dir` (ca.pem, cert.pem, key.pem).
    pub fn start(directory_url: &str, pebble_dir: &Path) -> Proxy {
        let read = |f: &str| std::fs::read(pebble_dir.join(f)).unwrap();
        let cert = CertificateDer::from(::pem::parse(read("cert.pem")).unwrap().into_contents());
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
            ::pem::parse(read("key.pem")).unwrap().into_contents(),
        ));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let server = Arc::new(
            rustls::ServerConfig::builder_with_provider(provider.clone())
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(vec![cert], key)
                .unwrap(),
        );
        let mut roots = rustls::RootCertStore::empty();
        for block in ::pem::parse_many(read("ca.pem")).unwrap() {
            roots
                .add(CertificateDer::from(block.into_contents()))
                .unwrap();
        }
        let client = Arc::new(
            rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(roots)
                .with_no_client_auth(),
        );

        let rest = directory_url.strip_prefix("https://").unwrap();
        let (upstream_host, dir_path) = rest.split_once('/').unwrap();
        let upstream: SocketAddr = upstream_host.parse().unwrap();
        // On Pebble's own loopback address, which its TLS certificate names; port 0 is free
        // there for certain, and the listener is kept.
        let listener = TcpListener::bind((upstream.ip(), 0)).unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            rules: Mutex::new(Vec::new()),
            seen: Mutex::new(Vec::new()),
            upstream,
            upstream_tls: client,
            upstream_host: upstream_host.to_string(),
            proxy_host: addr.to_string(),
            stop: AtomicBool::new(false),
        });
        {
            let shared = shared.clone();
            thread::spawn(move || {
                for stream in listener.incoming() {
                    if shared.stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let (shared, server) = (shared.clone(), server.clone());
                    thread::spawn(move || serve(stream, server, &shared));
                }
            });
        }
        Proxy {
            directory_url: format!("https://{addr}/{dir_path}"),
            addr,
            shared,
        }
    }

    /// Adds a rule after those already there; the first rule that matches a request and whose
    /// hit it is decides the answer.
    pub fn rule(&self, rule: Rule) -> &Proxy {
        self.shared.rules.lock().unwrap().push((rule, 0));
        self
    }

    /// Removes every rule: from now on requests pass through unchanged.
    pub fn clear(&self) {
        self.shared.rules.lock().unwrap().clear();
    }

    /// Every request so far, in order.
    pub fn seen(&self) -> Vec<Seen> {
        self.shared.seen.lock().unwrap().clone()
    }

    /// Empties the log.
    pub fn forget(&self) {
        self.shared.seen.lock().unwrap().clear();
    }

    /// How many requests of `method` (None: any) with `path` in their path were logged.
    pub fn count(&self, method: Option<&str>, path: &str) -> usize {
        count(&self.shared.seen.lock().unwrap(), method, path)
    }

    /// The log as `METHOD /path -> status` lines, for assertion messages.
    pub fn transcript(&self) -> String {
        self.seen()
            .iter()
            .map(|s| {
                format!(
                    "{} {} -> {}{}\n",
                    s.method,
                    s.path,
                    s.status.map_or("no answer".to_string(), |c| c.to_string()),
                    if s.faulted { " (fault)" } else { "" }
                )
            })
            .collect()
    }
}

/// How many of `seen` are requests of `method` (None: any) with `path` in their path.
pub fn count(seen: &[Seen], method: Option<&str>, path: &str) -> usize {
    seen.iter()
        .filter(|s| method.is_none_or(|m| m == s.method) && s.path.contains(path))
        .count()
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
    }
}

type Tls = rustls::StreamOwned<rustls::ServerConnection, TcpStream>;

/// An HTTP/1.1 message head and body.
struct Message {
    /// The request line or the status line.
    start: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Message {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Reads one message; None at a clean end of the connection. `body` says whether one follows
/// (not for answers to HEAD).
fn read_message(r: &mut impl BufRead, body: bool, is_answer: bool) -> Option<Message> {
    let mut start = String::new();
    if r.read_line(&mut start).ok()? == 0 {
        return None;
    }
    let start = start.trim_end().to_string();
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (k, v) = line.split_once(':')?;
        headers.push((k.trim().to_string(), v.trim().to_string()));
    }
    let mut m = Message {
        start,
        headers,
        body: Vec::new(),
    };
    if !body {
        return Some(m);
    }
    if m.header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        loop {
            let mut size = String::new();
            r.read_line(&mut size).ok()?;
            let size = usize::from_str_radix(size.trim().split(';').next()?, 16).ok()?;
            let mut chunk = vec![0; size + 2];
            r.read_exact(&mut chunk).ok()?;
            if size == 0 {
                break;
            }
            m.body.extend_from_slice(&chunk[..size]);
        }
    } else if let Some(len) = m.header("content-length") {
        let mut body = vec![0; len.parse().ok()?];
        r.read_exact(&mut body).ok()?;
        m.body = body;
    } else if is_answer {
        r.read_to_end(&mut m.body).ok()?;
    }
    Some(m)
}

/// Sends `request` to Pebble on a new TLS connection and reads its answer.
fn forward(shared: &Shared, method: &str, request: &Message) -> Result<Message, String> {
    let tcp = TcpStream::connect_timeout(&shared.upstream, Duration::from_secs(5))
        .map_err(|e| format!("connect to Pebble: {e}"))?;
    tcp.set_read_timeout(Some(Duration::from_secs(30))).ok();
    let name = ServerName::try_from(shared.upstream.ip().to_string()).unwrap();
    let conn = rustls::ClientConnection::new(shared.upstream_tls.clone(), name)
        .map_err(|e| e.to_string())?;
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let mut out = format!("{}\r\n", request.start).into_bytes();
    for (k, v) in &request.headers {
        let lower = k.to_ascii_lowercase();
        if lower == "connection" || lower == "transfer-encoding" || lower == "content-length" {
            continue;
        }
        out.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
    }
    out.extend_from_slice(
        format!(
            "Content-Length: {}\r\nConnection: close\r\n\r\n",
            request.body.len()
        )
        .as_bytes(),
    );
    out.extend_from_slice(&request.body);
    tls.write_all(&out)
        .map_err(|e| format!("send to Pebble: {e}"))?;
    tls.flush().map_err(|e| e.to_string())?;
    let mut reader = BufReader::new(tls);
    read_message(&mut reader, method != "HEAD", true).ok_or("no answer from Pebble".to_string())
}

/// Replaces Pebble's address by the proxy's.
fn rewrite(shared: &Shared, text: &[u8]) -> Vec<u8> {
    let from = shared.upstream_host.as_bytes();
    let to = shared.proxy_host.as_bytes();
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        if text[i..].starts_with(from) {
            out.extend_from_slice(to);
            i += from.len();
        } else {
            out.push(text[i]);
            i += 1;
        }
    }
    out
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

/// Serves one client connection, request after request, until it closes.
fn serve(tcp: TcpStream, config: Arc<rustls::ServerConfig>, shared: &Shared) {
    let _ = tcp.set_read_timeout(Some(Duration::from_secs(60)));
    let _ = tcp.set_nodelay(true);
    let Ok(conn) = rustls::ServerConnection::new(config) else {
        return;
    };
    let mut reader = BufReader::new(rustls::StreamOwned::new(conn, tcp));
    while let Some(request) = read_message(&mut reader, true, false) {
        let mut parts = request.start.split_whitespace();
        let method = parts.next().unwrap_or("").to_string();
        let path = parts.next().unwrap_or("").to_string();
        let rule = {
            let mut rules = shared.rules.lock().unwrap();
            let seen = shared.seen.lock().unwrap();
            let mut chosen = None;
            for (rule, hits) in rules.iter_mut() {
                if rule.matches(&method, &path, &seen) {
                    *hits += 1;
                    if chosen.is_none() && rule.hits.includes(*hits) {
                        chosen = Some(rule.clone());
                    }
                }
            }
            chosen
        };
        let index = {
            let mut seen = shared.seen.lock().unwrap();
            seen.push(Seen {
                method: method.clone(),
                path: path.clone(),
                body: request.body.clone(),
                status: None,
                faulted: rule.is_some(),
                body_sent: 0,
            });
            seen.len() - 1
        };
        if !exchange(&mut reader, shared, &method, &request, rule, index) {
            return;
        }
    }
}

/// Answers one request as `rule` says (None: passed through). False when the connection is
/// done with.
fn exchange(
    reader: &mut BufReader<Tls>,
    shared: &Shared,
    method: &str,
    request: &Message,
    rule: Option<Rule>,
    index: usize,
) -> bool {
    let rule = rule.unwrap_or_else(|| Rule::any(""));
    if let Some(d) = rule.delay {
        sleep_unless_stopped(shared, d);
    }
    let mut answer = if rule.forward {
        match forward(shared, method, request) {
            Ok(m) => m,
            Err(e) => Message {
                start: "HTTP/1.1 502 Bad Gateway".into(),
                headers: vec![("Content-Type".into(), "text/plain".into())],
                body: format!("proxy: {e}").into_bytes(),
            },
        }
    } else {
        Message {
            start: "HTTP/1.1 200 OK".into(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    };
    match rule.delivery {
        Delivery::Reset => {
            reset(reader.get_ref());
            return false;
        }
        Delivery::Close => {
            let _ = reader.get_ref().sock.shutdown(Shutdown::Both);
            return false;
        }
        Delivery::Hang => {
            hang(shared, reader.get_ref());
            return false;
        }
        _ => {}
    }

    let mut status: u16 = answer
        .start
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(502);
    if let Some(s) = rule.status {
        status = s;
    }
    answer.body = rewrite(shared, &answer.body);
    if let Some(f) = &rule.body {
        let seen = shared.seen.lock().unwrap().clone();
        answer.body = f(&answer.body, &seen);
    }
    let mut headers: Vec<(String, String)> = answer
        .headers
        .into_iter()
        .filter(|(k, _)| {
            let lower = k.to_ascii_lowercase();
            !matches!(
                lower.as_str(),
                "content-length" | "transfer-encoding" | "connection"
            ) && !rule.drop_headers.contains(&lower)
        })
        .map(|(k, v)| {
            let v = String::from_utf8(rewrite(shared, v.as_bytes())).unwrap();
            (k, v)
        })
        .collect();
    headers.extend(rule.set_headers.iter().cloned());

    let body = if method == "HEAD" {
        Vec::new()
    } else {
        answer.body
    };
    let mut head = format!("HTTP/1.1 {status} {}\r\n", reason(status));
    for (k, v) in &headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    // A connection of an earlier run may end after the log was forgotten: then it is not noted.
    if let Some(seen) = shared.seen.lock().unwrap().get_mut(index) {
        seen.status = Some(status);
    }
    let stream = reader.get_mut();
    let (ok, sent) = send(stream, shared, head, &body, rule.delivery);
    if let Some(seen) = shared.seen.lock().unwrap().get_mut(index) {
        seen.body_sent = sent;
    }
    if matches!(rule.delivery, Delivery::CutOff(_)) {
        stream.conn.send_close_notify();
        let _ = stream.flush();
        let _ = stream.sock.shutdown(Shutdown::Both);
        return false;
    }
    ok
}

/// Writes an answer whose `head` lacks only its length header and the blank line, delivered
/// as `delivery` says. Returns whether the connection is still good, and how many bytes of
/// body went out.
fn send(
    stream: &mut Tls,
    shared: &Shared,
    mut head: String,
    body: &[u8],
    delivery: Delivery,
) -> (bool, u64) {
    let (length, body): (Option<u64>, &[u8]) = match delivery {
        Delivery::Truncate(n) => (Some(n.min(body.len()) as u64), &body[..n.min(body.len())]),
        Delivery::CutOff(n) => (Some(body.len() as u64), &body[..n.min(body.len())]),
        Delivery::Inflate(total) => (Some(total.max(body.len() as u64)), body),
        Delivery::InflateChunked(_) => (None, body),
        _ => (Some(body.len() as u64), body),
    };
    match length {
        Some(n) => head.push_str(&format!("Content-Length: {n}\r\n\r\n")),
        None => head.push_str("Transfer-Encoding: chunked\r\n\r\n"),
    }
    let stopped = || shared.stop.load(Ordering::Relaxed);
    match delivery {
        Delivery::Drip { bytes, every } => {
            let mut all = head.into_bytes();
            all.extend_from_slice(body);
            for piece in all.chunks(bytes.max(1)) {
                if stopped()
                    || stream
                        .write_all(piece)
                        .and_then(|()| stream.flush())
                        .is_err()
                {
                    return (false, 0);
                }
                thread::sleep(every);
            }
            (true, body.len() as u64)
        }
        Delivery::Inflate(total) | Delivery::InflateChunked(total) => {
            let chunked = length.is_none();
            let write = |data: &[u8], stream: &mut Tls| -> bool {
                if data.is_empty() {
                    // An empty chunk would end the body.
                    true
                } else if chunked {
                    stream
                        .write_all(format!("{:x}\r\n", data.len()).as_bytes())
                        .and_then(|()| stream.write_all(data))
                        .and_then(|()| stream.write_all(b"\r\n"))
                        .is_ok()
                } else {
                    stream.write_all(data).is_ok()
                }
            };
            if stream.write_all(head.as_bytes()).is_err() || !write(body, stream) {
                return (false, 0);
            }
            let mut sent = body.len() as u64;
            let filler = vec![b' '; 64 * 1024];
            while sent < total && !stopped() {
                let n = filler.len().min((total - sent) as usize);
                if !write(&filler[..n], stream) {
                    return (false, sent);
                }
                sent += n as u64;
            }
            let ok = (!chunked || stream.write_all(b"0\r\n\r\n").is_ok()) && stream.flush().is_ok();
            (ok, sent)
        }
        _ => {
            let mut all = head.into_bytes();
            all.extend_from_slice(body);
            let ok = stream.write_all(&all).and_then(|()| stream.flush()).is_ok();
            (ok, body.len() as u64)
        }
    }
}

fn sleep_unless_stopped(shared: &Shared, d: Duration) {
    let until = Instant::now() + d;
    while Instant::now() < until && !shared.stop.load(Ordering::Relaxed) {
        thread::sleep(Duration::from_millis(20).min(until - Instant::now()));
    }
}

/// Closes with a TCP reset (SO_LINGER 0), as a crashed middlebox does.
fn reset(stream: &Tls) {
    use std::os::fd::AsRawFd;
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt on a socket we own, with a value of the size we pass.
    unsafe {
        libc::setsockopt(
            stream.sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
    let _ = stream.sock.shutdown(Shutdown::Both);
}

/// Holds the connection without a word until the client closes it or the proxy stops.
fn hang(shared: &Shared, stream: &Tls) {
    let mut sock = &stream.sock;
    let _ = sock.set_read_timeout(Some(Duration::from_millis(50)));
    let mut buf = [0u8; 4096];
    while !shared.stop.load(Ordering::Relaxed) {
        match sock.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return,
        }
    }
}
