//! The built-in http-01 responder (`HTTP_LISTEN`): for set-ups where a proxy forwards
//! `/.well-known/acme-challenge/` to us. It serves exactly the key authorizations of the
//! challenges in progress, and 404 for everything else, for the duration of the run.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

const PREFIX: &str = "/.well-known/acme-challenge/";

type Tokens = Arc<Mutex<HashMap<String, String>>>;

/// A listening responder; it stops when dropped.
pub struct Responder {
    tokens: Tokens,
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
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (tokens, stop) = (tokens.clone(), stop.clone());
            thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    if let Ok(stream) = stream {
                        let tokens = tokens.clone();
                        thread::spawn(move || serve(stream, &tokens));
                    }
                }
            })
        };
        Ok(Responder {
            tokens,
            stop,
            addr,
            thread: Some(thread),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        self.tokens.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn insert(&self, token: &str, key_authorization: &str) {
        self.lock()
            .insert(token.to_string(), key_authorization.to_string());
    }

    pub fn remove(&self, token: &str) {
        self.lock().remove(token);
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
    }
}

fn serve(stream: TcpStream, tokens: &Mutex<HashMap<String, String>>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut reader = BufReader::new(stream);
    let mut request = String::new();
    if reader.read_line(&mut request).is_err() {
        return;
    }
    // Read the headers away; their content does not matter.
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) if line.trim().is_empty() => break,
            Ok(_) => {}
        }
    }
    let mut parts = request.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let body = path
        .strip_prefix(PREFIX)
        .filter(|_| method == "GET" || method == "HEAD")
        .and_then(|token| {
            tokens
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(token)
                .cloned()
        });
    let response = match body {
        Some(body) => format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
            body.len(),
            if method == "HEAD" { "" } else { &body }
        ),
        None => "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".into(),
    };
    let _ = reader.into_inner().write_all(response.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn get(addr: SocketAddr, path: &str) -> String {
        let mut s = TcpStream::connect(addr).unwrap();
        write!(s, "GET {path} HTTP/1.1\r\nHost: example.org\r\n\r\n").unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
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
}
