//! The built-in http-01 responder (`HTTP_LISTEN`): for set-ups where a proxy forwards
//! `/.well-known/acme-challenge/` to us. It serves exactly the key authorizations of the
//! challenges in progress, for the duration of the run, and bounds what anyone else can make
//! it hold: [`MAX_HEAD`] bytes of request line and headers, [`MAX_HEADERS`] headers,
//! [`MAX_CONNECTIONS`] connections at once (a new one closes the oldest), [`CONNECTION_TIME`]
//! per connection. `GET` and `HEAD` of a current token get 200; other paths 404, other methods
//! 405, anything malformed or too large 400 or 431; every connection is closed after one answer.

use std::collections::{HashMap, VecDeque};
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

const PREFIX: &str = "/.well-known/acme-challenge/";

/// The most bytes of request line and headers read from one connection.
pub const MAX_HEAD: usize = 8 * 1024;
/// The most header lines one request may have.
pub const MAX_HEADERS: usize = 64;
/// The most connections served at once; one more closes the one open longest, so that idle
/// connections cannot keep the CA's validation out.
pub const MAX_CONNECTIONS: usize = 64;
/// How long one connection may take to send its request and take the answer.
pub const CONNECTION_TIME: Duration = Duration::from_secs(10);

type Tokens = Arc<Mutex<HashMap<String, String>>>;
/// The connections being served, oldest first, by a number of their own.
type Open = Arc<Mutex<VecDeque<(u64, TcpStream)>>>;

/// A listening responder; it stops when dropped.
pub struct Responder {
    tokens: Tokens,
    open: Open,
    stop: Arc<AtomicBool>,
    addr: SocketAddr,
    thread: Option<thread::JoinHandle<()>>,
}

impl Responder {
    /// Listens on `addr`. Errors say why the address cannot be used.
    pub fn start(addr: SocketAddr) -> Result<Responder, String> {
        let listener = TcpListener::bind(addr).map_err(|e| format!("HTTP_LISTEN {addr}: {e}"))?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let tokens: Tokens = Arc::default();
        let open: Open = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (tokens, open, stop) = (tokens.clone(), open.clone(), stop.clone());
            thread::spawn(move || accept(&listener, &tokens, &open, &stop))
        };
        Ok(Responder {
            tokens,
            open,
            stop,
            addr,
            thread: Some(thread),
        })
    }

    pub fn insert(&self, token: &str, key_authorization: &str) {
        lock(&self.tokens).insert(token.to_string(), key_authorization.to_string());
    }

    pub fn remove(&self, token: &str) {
        lock(&self.tokens).remove(token);
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the blocking accept so that the thread sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        for (_, stream) in lock(&self.open).drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Accepts connections until `stop`, each served on a thread of its own, at most
/// [`MAX_CONNECTIONS`] at once: a new one closes the one open longest.
fn accept(listener: &TcpListener, tokens: &Tokens, open: &Open, stop: &AtomicBool) {
    let mut next: u64 = 0;
    for stream in listener.incoming() {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let Ok(stream) = stream else { continue };
        let Ok(handle) = stream.try_clone() else {
            continue;
        };
        next += 1;
        let id = next;
        {
            let mut open = lock(open);
            while open.len() >= MAX_CONNECTIONS {
                if let Some((_, oldest)) = open.pop_front() {
                    // Its thread's read returns at once and the thread ends.
                    let _ = oldest.shutdown(Shutdown::Both);
                }
            }
            open.push_back((id, handle));
        }
        let (tokens, still_open) = (tokens.clone(), open.clone());
        let spawned = thread::Builder::new()
            .name("responder".into())
            .spawn(move || {
                serve(stream, &tokens);
                lock(&still_open).retain(|(i, _)| *i != id);
            });
        if spawned.is_err() {
            lock(open).retain(|(i, _)| *i != id);
        }
    }
}

/// Answers one request and closes the connection.
fn serve(mut stream: TcpStream, tokens: &Mutex<HashMap<String, String>>) {
    let deadline = Instant::now() + CONNECTION_TIME;
    let response = match read_head(&mut stream, deadline) {
        Ok(head) => answer(&head, tokens),
        Err(Some(status)) => status.to_string(),
        // Closed or out of time: nobody to answer.
        Err(None) => return,
    };
    let left = deadline.saturating_duration_since(Instant::now());
    if !left.is_zero() {
        let _ = stream.set_write_timeout(Some(left));
        let _ = stream.write_all(response.as_bytes());
    }
    let _ = stream.shutdown(Shutdown::Both);
}

const BAD_REQUEST: &str =
    "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
const TOO_LARGE: &str = "HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\n\
                         Connection: close\r\n\r\n";
const NOT_ALLOWED: &str = "HTTP/1.1 405 Method Not Allowed\r\nAllow: GET, HEAD\r\n\
                           Content-Length: 0\r\nConnection: close\r\n\r\n";
const NOT_FOUND: &str = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

/// The request line and headers, up to the blank line: at most [`MAX_HEAD`] bytes, read
/// before `deadline`. Err(Some(answer)) for a request too large; Err(None) when the client
/// closed or ran out of time.
fn read_head(stream: &mut TcpStream, deadline: Instant) -> Result<String, Option<&'static str>> {
    let mut buf = vec![0u8; MAX_HEAD];
    let mut len = 0;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            return Err(None);
        }
        let n = match stream.read(&mut buf[len..]) {
            Ok(0) | Err(_) => return Err(None),
            Ok(n) => n,
        };
        // Only the bytes new since the last read (and the three before) can end the head.
        let from = len.saturating_sub(3);
        len += n;
        let window = &buf[from..len];
        let end = find(window, b"\r\n\r\n")
            .map(|i| from + i)
            .or_else(|| find(window, b"\n\n").map(|i| from + i));
        if let Some(end) = end {
            return String::from_utf8(buf[..end].to_vec()).map_err(|_| Some(BAD_REQUEST));
        }
        if len == MAX_HEAD {
            return Err(Some(TOO_LARGE));
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The answer to a complete request head.
fn answer(head: &str, tokens: &Mutex<HashMap<String, String>>) -> String {
    let mut lines = head.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let request = lines.next().unwrap_or("");
    if lines.count() > MAX_HEADERS {
        return TOO_LARGE.into();
    }
    let parts: Vec<&str> = request.split(' ').collect();
    let [method, path, version] = parts[..] else {
        return BAD_REQUEST.into();
    };
    if !version.starts_with("HTTP/1.") {
        return BAD_REQUEST.into();
    }
    if method != "GET" && method != "HEAD" {
        return NOT_ALLOWED.into();
    }
    let body = path
        .strip_prefix(PREFIX)
        .and_then(|token| lock(tokens).get(token).cloned());
    match body {
        Some(body) => format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
            body.len(),
            if method == "HEAD" { "" } else { &body }
        ),
        None => NOT_FOUND.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn send(addr: SocketAddr, request: &[u8]) -> String {
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(request).unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    fn get(addr: SocketAddr, path: &str) -> String {
        send(
            addr,
            format!("GET {path} HTTP/1.1\r\nHost: example.org\r\n\r\n").as_bytes(),
        )
    }

    #[test]
    fn serves_exactly_the_current_tokens() {
        let r = Responder::start("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = r.addr;
        assert!(get(addr, "/.well-known/acme-challenge/tok").starts_with("HTTP/1.1 404"));
        r.insert("tok", "tok.thumb");
        let ok = get(addr, "/.well-known/acme-challenge/tok");
        assert!(ok.starts_with("HTTP/1.1 200 OK"), "{ok}");
        assert!(ok.ends_with("\r\n\r\ntok.thumb"), "{ok}");
        let head = send(addr, b"HEAD /.well-known/acme-challenge/tok HTTP/1.0\n\n");
        assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
        assert!(head.ends_with("\r\n\r\n"), "{head}");
        assert!(get(addr, "/.well-known/acme-challenge/other").starts_with("HTTP/1.1 404"));
        assert!(get(addr, "/").starts_with("HTTP/1.1 404"));
        r.remove("tok");
        assert!(get(addr, "/.well-known/acme-challenge/tok").starts_with("HTTP/1.1 404"));
        drop(r);
        assert!(
            TcpStream::connect(addr).is_err(),
            "still listening after drop"
        );
    }

    #[test]
    fn other_methods_malformed_and_oversized_requests_are_refused() {
        let r = Responder::start("127.0.0.1:0".parse().unwrap()).unwrap();
        r.insert("tok", "tok.thumb");
        let addr = r.addr;
        let path = "/.well-known/acme-challenge/tok";
        for method in ["POST", "PUT", "DELETE", "OPTIONS", "get"] {
            let got = send(addr, format!("{method} {path} HTTP/1.1\r\n\r\n").as_bytes());
            assert!(got.starts_with("HTTP/1.1 405"), "{method}: {got}");
        }
        for bad in [
            format!("GET {path}\r\n\r\n"),
            format!("GET  {path} HTTP/1.1\r\n\r\n"),
            format!("GET {path} SPDY/3\r\n\r\n"),
            format!("GET {path} HTTP/1.1 x\r\n\r\n"),
        ] {
            let got = send(addr, bad.as_bytes());
            assert!(got.starts_with("HTTP/1.1 400"), "{bad:?}: {got}");
        }
        let invalid = send(addr, b"GET /\xff HTTP/1.1\r\n\r\n");
        assert!(invalid.starts_with("HTTP/1.1 400"), "{invalid}");
        let headers = "X: y\r\n".repeat(MAX_HEADERS + 1);
        let got = send(
            addr,
            format!("GET {path} HTTP/1.1\r\n{headers}\r\n").as_bytes(),
        );
        assert!(got.starts_with("HTTP/1.1 431"), "{got}");
        // Exactly MAX_HEAD bytes without an end: read in full, then refused.
        let long = format!("GET {path}{}", "a".repeat(MAX_HEAD - 4 - path.len()));
        let got = send(addr, long.as_bytes());
        assert!(got.starts_with("HTTP/1.1 431"), "{got}");
        // Exactly at the bound is still read.
        let filler = "X: y\r\n".repeat(40);
        let fits = format!("GET {path} HTTP/1.1\r\n{filler}\r\n");
        assert!(fits.len() < MAX_HEAD);
        assert!(send(addr, fits.as_bytes()).starts_with("HTTP/1.1 200"));
    }

    #[test]
    fn a_new_connection_closes_the_oldest_when_all_are_taken() {
        let r = Responder::start("127.0.0.1:0".parse().unwrap()).unwrap();
        r.insert("tok", "tok.thumb");
        let idle: Vec<TcpStream> = (0..MAX_CONNECTIONS + 8)
            .map(|_| {
                let mut s = TcpStream::connect(r.addr).unwrap();
                s.write_all(b"GET /").unwrap();
                s
            })
            .collect();
        let ok = get(r.addr, "/.well-known/acme-challenge/tok");
        assert!(ok.starts_with("HTTP/1.1 200 OK"), "{ok}");
        // The first idle connections were closed without an answer.
        let mut first = &idle[0];
        first.set_read_timeout(Some(CONNECTION_TIME)).unwrap();
        let mut out = Vec::new();
        assert_eq!(first.read_to_end(&mut out).map(|_| out.len()).ok(), Some(0));
        assert!(lock(&r.open).len() <= MAX_CONNECTIONS);
    }
}
