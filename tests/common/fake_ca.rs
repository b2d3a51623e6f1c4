//! A FAKE ACME server, for what Debian's Pebble (2.4) predates: ACME Renewal Information
//! (RFC 9773) and certificate profiles. It is not a CA and checks nothing that matters: it
//! accepts every JWS without verifying it, creates orders already `ready` (no validation), and
//! signs every CSR with a throw-away CA made here. Its renewal information and directory follow
//! the examples of RFC 9773 and the profiles extension. Tests use it only for those features;
//! everything else is tested against the real Pebble.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use super::TempDir;

/// What the fake CA does, changed by tests while it runs, and what it saw.
#[derive(Debug, Clone)]
pub struct Behaviour {
    /// Offer `renewalInfo` in the directory.
    pub ari: bool,
    /// The suggested window, as offsets in seconds from now.
    pub window: (i64, i64),
    pub explanation: Option<String>,
    /// `Retry-After` of renewal information answers, in seconds.
    pub retry_after: u64,
    /// Refuse orders that carry `replaces` (as after the certificate was replaced already).
    pub refuse_replaces: bool,
    /// Profiles in the directory's meta.
    pub profiles: Vec<String>,
    /// Lifetime of issued certificates, in seconds.
    pub lifetime: i64,
    /// Every newOrder payload received.
    pub orders: Vec<Value>,
    /// How many renewal information requests came.
    pub renewal_info_requests: usize,
}

impl Default for Behaviour {
    fn default() -> Self {
        Behaviour {
            ari: true,
            window: (30 * 86_400, 31 * 86_400),
            explanation: None,
            retry_after: 21_600,
            refuse_replaces: false,
            profiles: vec!["classic".into(), "shortlived".into()],
            lifetime: 90 * 86_400,
            orders: Vec::new(),
            renewal_info_requests: 0,
        }
    }
}

pub struct FakeCa {
    pub directory_url: String,
    pub ca_bundle: PathBuf,
    pub behaviour: Arc<Mutex<Behaviour>>,
    _dir: TempDir,
    stop: Arc<AtomicBool>,
    addr: SocketAddr,
}

struct Issuer {
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
    pem: String,
}

impl FakeCa {
    pub fn start() -> FakeCa {
        let dir = TempDir::new("fake-ca");
        let ip = super::loopback();
        let (tls_ca, tls_cert, tls_key) = super::tls_certificate(ip);
        let ca_bundle = dir.path().join("ca.pem");
        std::fs::write(&ca_bundle, &tls_ca).unwrap();
        let certs: Vec<rustls_pki_types::CertificateDer<'static>> =
            vec![rustls_pki_types::CertificateDer::from(
                ::pem::parse(&tls_cert).unwrap().into_contents(),
            )];
        let key =
            rustls_pki_types::PrivateKeyDer::Pkcs8(rustls_pki_types::PrivatePkcs8KeyDer::from(
                ::pem::parse(&tls_key).unwrap().into_contents(),
            ));
        let config = Arc::new(
            rustls::ServerConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap(),
        );
        // The CA that signs what is ordered.
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Fake ARI Test CA");
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Arc::new(Issuer {
            pem: ca_cert.pem(),
            issuer: rcgen::Issuer::new(ca_params, ca_key),
        });

        let listener = TcpListener::bind((ip, 0)).unwrap();
        let addr = listener.local_addr().unwrap();
        let behaviour = Arc::new(Mutex::new(Behaviour::default()));
        let stop = Arc::new(AtomicBool::new(false));
        {
            let (behaviour, stop) = (behaviour.clone(), stop.clone());
            thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let (config, behaviour, issuer) =
                        (config.clone(), behaviour.clone(), issuer.clone());
                    thread::spawn(move || serve(stream, config, addr, &behaviour, &issuer));
                }
            });
        }
        FakeCa {
            directory_url: format!("https://{addr}/dir"),
            ca_bundle,
            behaviour,
            _dir: dir,
            stop,
            addr,
        }
    }

    pub fn set(&self, change: impl FnOnce(&mut Behaviour)) {
        change(&mut self.behaviour.lock().unwrap());
    }

    pub fn seen(&self) -> Behaviour {
        self.behaviour.lock().unwrap().clone()
    }
}

impl Drop for FakeCa {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
    }
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// `2026-11-23T12:00:00Z`.
fn rfc3339(ts: i64) -> String {
    let days = ts.div_euclid(86_400);
    let secs = ts.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

static NEXT: AtomicU64 = AtomicU64::new(1);

fn serve(
    tcp: TcpStream,
    config: Arc<rustls::ServerConfig>,
    addr: SocketAddr,
    behaviour: &Mutex<Behaviour>,
    issuer: &Issuer,
) {
    let _ = tcp.set_read_timeout(Some(Duration::from_secs(10)));
    let Ok(conn) = rustls::ServerConnection::new(config) else {
        return;
    };
    let tls = rustls::StreamOwned::new(conn, tcp);
    let mut reader = BufReader::new(tls);
    let base = format!("https://{addr}");
    // Keep-alive: one request after the other until the client hangs up.
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let (method, path) = (
            parts.next().unwrap_or("").to_string(),
            parts.next().unwrap_or("").to_string(),
        );
        let mut length = 0;
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            if header.trim().is_empty() {
                break;
            }
            if let Some((k, v)) = header.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                length = v.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0u8; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let payload: Value = serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|jws| jws["payload"].as_str().map(str::to_string))
            .and_then(|p| URL_SAFE_NO_PAD.decode(p).ok())
            .and_then(|p| serde_json::from_slice(&p).ok())
            .unwrap_or(Value::Null);
        let (status, content_type, extra, text) =
            route(&method, &path, &payload, &base, behaviour, issuer);
        let response = format!(
            "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nReplay-Nonce: nonce{}\r\n{extra}\r\n{text}",
            text.len(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        if reader.get_mut().write_all(response.as_bytes()).is_err() {
            return;
        }
        let _ = reader.get_mut().flush();
    }
}

/// One request: (status line, content type, extra header lines, body).
fn route(
    method: &str,
    path: &str,
    payload: &Value,
    base: &str,
    behaviour: &Mutex<Behaviour>,
    issuer: &Issuer,
) -> (&'static str, &'static str, String, String) {
    let json_ok = |v: Value| ("200 OK", "application/json", String::new(), v.to_string());
    let mut b = behaviour.lock().unwrap();
    match (method, path) {
        ("GET", "/dir") => {
            let mut dir = json!({
                "newNonce": format!("{base}/nonce"),
                "newAccount": format!("{base}/account"),
                "newOrder": format!("{base}/order"),
                "revokeCert": format!("{base}/revoke"),
                "keyChange": format!("{base}/key-change"),
                "meta": { "termsOfService": "https://example.com/terms" }
            });
            if b.ari {
                dir["renewalInfo"] = json!(format!("{base}/renewal-info"));
            }
            if !b.profiles.is_empty() {
                let profiles: serde_json::Map<String, Value> = b
                    .profiles
                    .iter()
                    .map(|p| (p.clone(), json!(format!("the {p} profile"))))
                    .collect();
                dir["meta"]["profiles"] = Value::Object(profiles);
            }
            json_ok(dir)
        }
        ("HEAD", "/nonce") | ("GET", "/nonce") => ("200 OK", "text/plain", String::new(), String::new()),
        ("POST", "/account") => (
            "201 Created",
            "application/json",
            format!("Location: {base}/account/1\r\n"),
            json!({ "status": "valid", "contact": payload["contact"] }).to_string(),
        ),
        ("POST", "/order") => {
            b.orders.push(payload.clone());
            if b.refuse_replaces && payload.get("replaces").is_some() {
                return (
                    "409 Conflict",
                    "application/problem+json",
                    String::new(),
                    json!({ "type": "urn:ietf:params:acme:error:alreadyReplaced", "detail": "the certificate was replaced already", "status": 409 }).to_string(),
                );
            }
            if let Some(p) = payload["profile"].as_str()
                && !b.profiles.iter().any(|o| o == p)
            {
                return (
                    "400 Bad Request",
                    "application/problem+json",
                    String::new(),
                    json!({ "type": "urn:ietf:params:acme:error:invalidProfile", "detail": format!("no profile {p}") }).to_string(),
                );
            }
            let id = NEXT.fetch_add(1, Ordering::Relaxed);
            (
                "201 Created",
                "application/json",
                format!("Location: {base}/order/{id}\r\n"),
                json!({
                    "status": "ready",
                    "identifiers": payload["identifiers"],
                    "authorizations": [],
                    "finalize": format!("{base}/finalize/{id}")
                })
                .to_string(),
            )
        }
        ("POST", p) if p.starts_with("/finalize/") => {
            let id = &p["/finalize/".len()..];
            let csr_der = payload["csr"]
                .as_str()
                .and_then(|c| URL_SAFE_NO_PAD.decode(c).ok())
                .unwrap_or_default();
            let csr = rcgen::CertificateSigningRequestParams::from_der(&csr_der.into()).unwrap();
            let mut params = csr.params;
            let t = now();
            params.not_before = time_of(t - 60);
            params.not_after = time_of(t + b.lifetime);
            params.use_authority_key_identifier_extension = true;
            params.serial_number = Some(rcgen::SerialNumber::from_slice(&NEXT.fetch_add(1, Ordering::Relaxed).to_be_bytes()));
            params.distinguished_name = rcgen::DistinguishedName::new();
            let cert = params.signed_by(&csr.public_key, &issuer.issuer).unwrap();
            std::fs::write(std::env::temp_dir().join(format!("fake-ca-cert-{id}-{}", std::process::id())), cert.pem() + &issuer.pem).unwrap();
            json_ok(json!({
                "status": "valid",
                "identifiers": [],
                "authorizations": [],
                "finalize": format!("{base}/finalize/{id}"),
                "certificate": format!("{base}/cert/{id}")
            }))
        }
        ("POST", p) if p.starts_with("/cert/") => {
            let id = &p["/cert/".len()..];
            let file = std::env::temp_dir().join(format!("fake-ca-cert-{id}-{}", std::process::id()));
            let pem = std::fs::read_to_string(&file).unwrap_or_default();
            let _ = std::fs::remove_file(&file);
            ("200 OK", "application/pem-certificate-chain", String::new(), pem)
        }
        ("GET", p) if p.starts_with("/renewal-info/") => {
            b.renewal_info_requests += 1;
            let t = now();
            let mut info = json!({
                "suggestedWindow": { "start": rfc3339(t + b.window.0), "end": rfc3339(t + b.window.1) }
            });
            if let Some(url) = &b.explanation {
                info["explanationURL"] = json!(url);
            }
            ("200 OK", "application/json", format!("Retry-After: {}\r\n", b.retry_after), info.to_string())
        }
        _ => ("404 Not Found", "application/problem+json", String::new(), json!({"type": "urn:ietf:params:acme:error:malformed", "detail": format!("no {method} {path}")}).to_string()),
    }
}

fn time_of(ts: i64) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp(ts).unwrap()
}
