//! The test harness: a real Pebble ACME server and its DNS (pebble-challtestsrv) on free
//! loopback ports with a TLS certificate made here, a web server for the http-01 webroot, and
//! a BASEDIR in which to run the real desiccant binary. Every process is killed and reaped on
//! Drop, also when a test fails.

#![allow(dead_code)]

pub mod fake_ca;
pub mod invariants;
pub mod proxy;

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use x509_parser::prelude::*;

/// A folder removed on Drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("desiccant-test-{tag}-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_for_port(port: u16, what: &str, child: &mut Child, log: &Path) {
    if let Err(e) = try_wait_for_port(port, what, child, log) {
        panic!("{e}");
    }
}

/// Waits until `child` listens on `port`; an error when it exits first (its port was taken,
/// most likely) or takes longer than 20 s.
fn try_wait_for_port(port: u16, what: &str, child: &mut Child, log: &Path) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!(
                "{what} exited with {status} before listening on {port}:\n{}",
                fs::read_to_string(log).unwrap_or_default()
            ));
        }
        thread::sleep(Duration::from_millis(20));
    }
    Err(format!("{what} did not listen on port {port} within 20 s"))
}

/// Finds a program, or fails the test saying how to install it.
pub fn require(program: &str, package: &str) -> PathBuf {
    for dir in ["/usr/bin", "/usr/local/bin", "/usr/sbin", "/bin"] {
        let p = Path::new(dir).join(program);
        if p.exists() {
            return p;
        }
    }
    panic!(
        "{program} is not installed: run `apt-get install {package}` (tests/run.sh does this), \
         then run the tests again"
    );
}

/// The external account Pebble knows (from Debian's example config).
pub const EAB_KID: &str = "kid-1";
pub const EAB_HMAC_KEY: &str = "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W";

/// Options for [`Pebble::start_with`].
#[derive(Clone)]
pub struct PebbleOptions {
    /// PEBBLE_WFE_NONCEREJECT: the share of good nonces Pebble refuses, in percent.
    pub nonce_reject: u32,
    /// PEBBLE_AUTHZREUSE: the share of valid authorizations Pebble reuses, in percent.
    pub authz_reuse: u32,
    /// Answer http-01 from the webroot (true) or with 404s (false).
    pub serve_webroot: bool,
    /// Names (Host headers) the web server answers with 404 even when it serves the webroot.
    pub refuse_hosts: Vec<String>,
    /// How long the web server takes to answer each request: a slow validation.
    pub answer_after: Duration,
    /// Pebble refuses accounts without external account binding.
    pub eab_required: bool,
    /// Pebble resolves through this server instead of pebble-challtestsrv.
    pub dns: Option<std::net::SocketAddr>,
    /// The harness serves the webroot on Pebble's httpPort; false leaves the port to the test.
    pub web_server: bool,
    /// PEBBLE_ALTERNATE_ROOTS and PEBBLE_CHAIN_LENGTH, when set.
    pub alternate_roots: Option<u32>,
    pub chain_length: Option<u32>,
}

impl Default for PebbleOptions {
    fn default() -> Self {
        PebbleOptions {
            nonce_reject: 20,
            authz_reuse: 0,
            serve_webroot: true,
            refuse_hosts: Vec::new(),
            answer_after: Duration::ZERO,
            eab_required: false,
            dns: None,
            web_server: true,
            alternate_roots: None,
            chain_length: None,
        }
    }
}

/// A running Pebble with its DNS server and the http-01 web server.
pub struct Pebble {
    pub dir: TempDir,
    pub directory_url: String,
    pub ca_bundle: PathBuf,
    pub management_url: String,
    /// The folder served at /.well-known/acme-challenge/ on Pebble's httpPort.
    pub webroot: PathBuf,
    /// Every challenge path the web server was asked for.
    pub served: Arc<Mutex<Vec<String>>>,
    pub log: PathBuf,
    /// Pebble's httpPort, where the CA fetches http-01 tokens.
    pub http_port: u16,
    /// pebble-challtestsrv's DNS server, and its management URL (`/set-txt`, `/clear-txt`).
    pub dns_server: std::net::SocketAddr,
    pub dns_management: String,
    children: Vec<Child>,
    stop: Arc<AtomicBool>,
    server: Option<thread::JoinHandle<()>>,
}

/// Pebble and its DNS server, running.
struct Started {
    children: Vec<Child>,
    log: PathBuf,
    acme_port: u16,
    mgmt_port: u16,
    dns_port: u16,
    dns_mgmt_port: u16,
}

/// Starts pebble-challtestsrv and Pebble on fresh ports, Pebble checking http-01 at
/// `http_port`; an error, with everything stopped, when one of them did not come up.
fn start_processes(
    pebble: &Path,
    challtestsrv: &Path,
    dir: &Path,
    opts: &PebbleOptions,
    http_port: u16,
) -> Result<Started, String> {
    let (acme_port, mgmt_port, dns_port, dns_mgmt_port, tls_port) = (
        free_port(),
        free_port(),
        free_port(),
        free_port(),
        free_port(),
    );
    let config = serde_json::json!({
        "pebble": {
            "listenAddress": format!("127.0.0.1:{acme_port}"),
            "managementListenAddress": format!("127.0.0.1:{mgmt_port}"),
            "certificate": dir.join("cert.pem"),
            "privateKey": dir.join("key.pem"),
            "httpPort": http_port,
            "tlsPort": tls_port,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": opts.eab_required,
            "externalAccountMACKeys": { EAB_KID: EAB_HMAC_KEY }
        }
    });
    let config_path = dir.join("pebble-config.json");
    fs::write(&config_path, config.to_string()).unwrap();

    let dns_log = dir.join("challtestsrv.log");
    let mut dns = Command::new(challtestsrv)
        .args(["-dns01", &format!("127.0.0.1:{dns_port}")])
        .args(["-http01", "", "-https01", "", "-tlsalpn01", ""])
        .args(["-management", &format!("127.0.0.1:{dns_mgmt_port}")])
        .args(["-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""])
        .stdout(fs::File::create(&dns_log).unwrap())
        .stderr(Stdio::from(
            fs::File::create(dir.join("challtestsrv.err")).unwrap(),
        ))
        .spawn()
        .unwrap();
    if let Err(e) = try_wait_for_port(dns_mgmt_port, "pebble-challtestsrv", &mut dns, &dns_log) {
        let _ = dns.kill();
        let _ = dns.wait();
        return Err(e);
    }

    let log = dir.join("pebble.log");
    let log_file = fs::File::create(&log).unwrap();
    let mut ca = Command::new(pebble);
    if let Some(n) = opts.alternate_roots {
        ca.env("PEBBLE_ALTERNATE_ROOTS", n.to_string());
    }
    if let Some(n) = opts.chain_length {
        ca.env("PEBBLE_CHAIN_LENGTH", n.to_string());
    }
    let mut ca = ca
        .arg("-config")
        .arg(&config_path)
        .args([
            "-dnsserver",
            &opts
                .dns
                .map_or(format!("127.0.0.1:{dns_port}"), |a| a.to_string()),
        ])
        .env("PEBBLE_VA_NOSLEEP", "1")
        .env("PEBBLE_WFE_NONCEREJECT", opts.nonce_reject.to_string())
        .env("PEBBLE_AUTHZREUSE", opts.authz_reuse.to_string())
        .stdout(log_file.try_clone().unwrap())
        .stderr(log_file)
        .spawn()
        .unwrap();
    if let Err(e) = try_wait_for_port(acme_port, "pebble", &mut ca, &log) {
        for child in [&mut ca, &mut dns] {
            let _ = child.kill();
            let _ = child.wait();
        }
        return Err(e);
    }
    Ok(Started {
        children: vec![dns, ca],
        log,
        acme_port,
        mgmt_port,
        dns_port,
        dns_mgmt_port,
    })
}

impl Pebble {
    pub fn start() -> Pebble {
        Pebble::start_with(PebbleOptions::default())
    }

    /// Without refused nonces: for tests that count requests, or whose faults must be the
    /// only ones.
    pub fn start_without_refused_nonces() -> Pebble {
        Pebble::start_with(PebbleOptions {
            nonce_reject: 0,
            ..PebbleOptions::default()
        })
    }

    pub fn start_with(opts: PebbleOptions) -> Pebble {
        let pebble = require("pebble", "pebble");
        let challtestsrv = require("pebble-challtestsrv", "pebble");
        let dir = TempDir::new("pebble");
        let (ca_pem, cert_pem, key_pem) = tls_certificate();
        let ca_bundle = dir.path().join("ca.pem");
        fs::write(&ca_bundle, ca_pem).unwrap();
        fs::write(dir.path().join("cert.pem"), cert_pem).unwrap();
        fs::write(dir.path().join("key.pem"), key_pem).unwrap();
        let webroot = dir.path().join("webroot");
        fs::create_dir_all(&webroot).unwrap();

        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let http_port = listener.local_addr().unwrap().port();
        let listener = opts.web_server.then_some(listener);
        let stop = Arc::new(AtomicBool::new(false));
        let served = Arc::new(Mutex::new(Vec::new()));
        let server = {
            let (stop, served, webroot) = (stop.clone(), served.clone(), webroot.clone());
            let serve = opts.serve_webroot;
            let refuse = opts.refuse_hosts.clone();
            let after = opts.answer_after;
            thread::spawn(move || {
                if let Some(listener) = listener {
                    serve_webroot(listener, &webroot, &stop, &served, (serve, &refuse, after))
                }
            })
        };

        // The ports are free when chosen, but a test running beside this one may take one
        // before Pebble or its DNS server binds it: then both start again on other ports.
        let mut attempt = 0;
        let Started {
            children,
            log,
            acme_port,
            mgmt_port,
            dns_port,
            dns_mgmt_port,
        } = loop {
            attempt += 1;
            match start_processes(&pebble, &challtestsrv, dir.path(), &opts, http_port) {
                Ok(started) => break started,
                Err(e) if attempt < 3 => eprintln!("starting Pebble again: {e}"),
                Err(e) => panic!("{e}"),
            }
        };

        Pebble {
            http_port,
            dns_server: format!("127.0.0.1:{dns_port}").parse().unwrap(),
            dns_management: format!("http://127.0.0.1:{dns_mgmt_port}"),
            directory_url: format!("https://127.0.0.1:{acme_port}/dir"),
            management_url: format!("https://127.0.0.1:{mgmt_port}"),
            ca_bundle,
            webroot,
            served,
            log,
            dir,
            children,
            stop,
            server: Some(server),
        }
    }

    /// Stops Pebble and its DNS server now, as if the CA went away; the files stay until Drop.
    pub fn stop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Pebble's current root certificate, from its management interface.
    pub fn root_der(&self) -> Vec<u8> {
        self.root_der_of(0)
    }

    /// Root `i` (0 is the default chain's; more with PEBBLE_ALTERNATE_ROOTS).
    pub fn root_der_of(&self, i: usize) -> Vec<u8> {
        let pem = self.management_get(&format!("/roots/{i}"));
        x509_parser::pem::parse_x509_pem(&pem).unwrap().1.contents
    }

    pub fn management_get(&self, path: &str) -> Vec<u8> {
        let roots: Vec<ureq::tls::Certificate<'static>> =
            ureq::tls::parse_pem(&fs::read(&self.ca_bundle).unwrap())
                .filter_map(|i| match i {
                    Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
                    _ => None,
                })
                .collect();
        let tls = ureq::tls::TlsConfig::builder()
            .root_certs(ureq::tls::RootCerts::Specific(Arc::new(roots)))
            .build();
        let agent: ureq::Agent = ureq::Agent::config_builder().tls_config(tls).build().into();
        let url = format!("{}{path}", self.management_url);
        // Pebble opens its management port a moment after its ACME port, which is the one
        // waited for at the start.
        let mut tries = 0;
        loop {
            match agent.get(&url).call() {
                Ok(mut answer) => return answer.body_mut().read_to_vec().unwrap(),
                Err(e)
                    if tries < 50
                        && matches!(e, ureq::Error::Io(_) | ureq::Error::ConnectionFailed) =>
                {
                    tries += 1;
                    thread::sleep(Duration::from_millis(20));
                }
                Err(e) => panic!("{url}: {e}"),
            }
        }
    }

    /// The ACME requests Pebble logged after the first `since` ones ("GET /dir", "POST /order-plz").
    pub fn requests_after(&self, since: usize) -> Vec<String> {
        fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.ends_with("-> calling handler()"))
            .skip(since)
            .filter_map(|l| l.split("Pebble ").nth(1))
            .map(|l| {
                l.split_whitespace()
                    .skip(2)
                    .take(2)
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect()
    }

    /// How many ACME requests Pebble has logged so far.
    pub fn requests(&self) -> usize {
        fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.ends_with("-> calling handler()"))
            .count()
    }
}

impl Drop for Pebble {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.stop.store(true, Ordering::Relaxed);
        if let Some(server) = self.server.take() {
            let _ = server.join();
        }
    }
}

/// A CA and a certificate for 127.0.0.1 and localhost signed by it, as PEM (ca, cert, key).
pub fn tls_certificate() -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "desiccant test CA");
    let ca = CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let params =
        CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
    let cert = params.signed_by(&key, &ca).unwrap();
    (ca.pem(), cert.pem(), key.serialize_pem())
}

/// Serves `GET /.well-known/acme-challenge/<token>` from `webroot` until `stop`.
fn serve_webroot(
    listener: TcpListener,
    webroot: &Path,
    stop: &AtomicBool,
    served: &Mutex<Vec<String>>,
    (serve, refuse_hosts, answer_after): (bool, &[String], Duration),
) {
    listener.set_nonblocking(true).unwrap();
    while !stop.load(Ordering::Relaxed) {
        let (stream, _) = match listener.accept() {
            Ok(s) => s,
            Err(_) => {
                thread::sleep(Duration::from_millis(5));
                continue;
            }
        };
        let _ = stream.set_nonblocking(false);
        let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
        let mut reader = BufReader::new(stream);
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).is_err() {
            continue;
        }
        let mut host = String::new();
        loop {
            let mut header = String::new();
            match reader.read_line(&mut header) {
                Ok(0) | Err(_) => break,
                Ok(_) if header == "\r\n" || header == "\n" => break,
                Ok(_) => {
                    if let Some((name, value)) = header.split_once(':')
                        && name.eq_ignore_ascii_case("host")
                    {
                        let value = value.trim();
                        host = value.rsplit_once(':').map_or(value, |(h, _)| h).to_string();
                    }
                }
            }
        }
        let serve = serve && !refuse_hosts.contains(&host);
        let path = request_line
            .split_whitespace()
            .nth(1)
            .unwrap_or("")
            .to_string();
        served.lock().unwrap().push(path.clone());
        let body = path
            .strip_prefix("/.well-known/acme-challenge/")
            .filter(|t| serve && !t.contains('/') && !t.starts_with('.'))
            .and_then(|t| fs::read(webroot.join(t)).ok());
        thread::sleep(answer_after);
        let mut stream = reader.into_inner();
        let response = match body {
            Some(body) => {
                let mut r = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n",
                    body.len()
                )
                .into_bytes();
                r.extend(body);
                r
            }
            None => {
                b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec()
            }
        };
        let _ = stream.write_all(&response);
    }
}

/// A BASEDIR with a config pointing at a Pebble, and a way to run desiccant in it.
pub struct Env {
    pub base: TempDir,
    pub directory_url: String,
    pub ca_bundle: PathBuf,
    pub webroot: PathBuf,
}

impl Env {
    /// A BASEDIR whose config has CA, CA_BUNDLE and WELLKNOWN for `pebble`, plus `extra` lines.
    pub fn new(pebble: &Pebble, extra: &str) -> Env {
        Env::for_ca(
            &pebble.directory_url,
            &pebble.ca_bundle,
            &pebble.webroot,
            extra,
        )
    }

    /// The same for any CA (the fake one).
    pub fn for_ca(directory_url: &str, ca_bundle: &Path, webroot: &Path, extra: &str) -> Env {
        let env = Env {
            base: TempDir::new("base"),
            directory_url: directory_url.to_string(),
            ca_bundle: ca_bundle.to_path_buf(),
            webroot: webroot.to_path_buf(),
        };
        env.write_config(extra);
        env
    }

    pub fn write_config(&self, extra: &str) {
        fs::write(
            self.base.path().join("config"),
            format!(
                "CA=\"{}\"\nCA_BUNDLE=\"{}\"\nWELLKNOWN=\"{}\"\nCONTACT_EMAIL=admin@example.org\n{extra}",
                self.directory_url,
                self.ca_bundle.display(),
                self.webroot.display()
            ),
        )
        .unwrap();
    }

    pub fn path(&self) -> &Path {
        self.base.path()
    }

    pub fn domains(&self, text: &str) {
        fs::write(self.path().join("domains.txt"), text).unwrap();
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_desiccant"));
        cmd.arg("--config")
            .arg(self.path().join("config"))
            .args(args);
        cmd.env_remove("JOURNAL_STREAM");
        cmd
    }

    /// Runs desiccant with `--config BASEDIR/config` and `args`.
    pub fn run(&self, args: &[&str]) -> Run {
        let output = self.command(args).output().unwrap();
        Run {
            args: args.iter().map(|s| s.to_string()).collect(),
            output,
        }
    }

    /// Runs desiccant as [`Env::run`] does, with the clock `offset` away (faketime's `-f`
    /// syntax, such as `+1400d`).
    pub fn run_at(&self, offset: &str, args: &[&str]) -> Run {
        let output = Command::new(require("faketime", "faketime"))
            .args(["-f", offset, env!("CARGO_BIN_EXE_desiccant"), "--config"])
            .arg(self.path().join("config"))
            .args(args)
            .env_remove("JOURNAL_STREAM")
            .output()
            .unwrap();
        Run {
            args: args.iter().map(|s| s.to_string()).collect(),
            output,
        }
    }

    pub fn cert_dir(&self, name: &str) -> PathBuf {
        self.path().join("certs").join(name)
    }

    pub fn account_dir(&self) -> PathBuf {
        use base64::Engine;
        let hash = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(format!("{}\n", self.directory_url));
        self.path().join("accounts").join(hash)
    }
}

/// What a run of the binary did; its Debug shows the command, exit code and both outputs.
pub struct Run {
    pub args: Vec<String>,
    pub output: Output,
}

impl Run {
    pub fn code(&self) -> i32 {
        self.output.status.code().unwrap_or(-1)
    }
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    /// Panics with everything a reader needs unless the exit code is `code`.
    pub fn expect(&self, code: i32) -> &Run {
        assert_eq!(self.code(), code, "{self:?}");
        self
    }
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "\n$ desiccant {}\nexit {}\n--- stdout\n{}--- stderr\n{}",
            self.args.join(" "),
            self.code(),
            self.stdout(),
            self.stderr()
        )
    }
}

/// The DER of every certificate in a PEM file.
pub fn pem_certs(path: &Path) -> Vec<Vec<u8>> {
    let bytes = fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    ::pem::parse_many(bytes)
        .unwrap()
        .into_iter()
        .filter(|p| p.tag() == "CERTIFICATE")
        .map(|p| p.into_contents())
        .collect()
}

pub fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Checks what an admin would check of `certs/<name>/` after an issuance, and returns the
/// timestamp the live set points at:
/// - the five symlinks are relative and point at files of one timestamp in the same folder;
/// - `cert.pem` holds one certificate with exactly `names`, signed by the first of `chain.pem`,
///   whose last certificate is signed by Pebble's root;
/// - `fullchain.pem` is `cert.pem` followed by `chain.pem`;
/// - `privkey.pem` is mode 0600 and holds the key of `cert.pem`;
/// - `cert.csr` asks for the same names and key.
pub fn check_live_set(dir: &Path, names: &[&str], root_der: &[u8]) -> String {
    let mut ts = None;
    for (link, prefix, ext) in [
        ("privkey.pem", "privkey-", ".pem"),
        ("cert.pem", "cert-", ".pem"),
        ("chain.pem", "chain-", ".pem"),
        ("fullchain.pem", "fullchain-", ".pem"),
        ("cert.csr", "cert-", ".csr"),
    ] {
        let target = fs::read_link(dir.join(link))
            .unwrap_or_else(|e| panic!("{}/{link} is not a symlink: {e}", dir.display()));
        let target = target.to_str().unwrap().to_string();
        assert!(
            !target.contains('/'),
            "{link} -> {target} is not a relative name in the folder"
        );
        let stamp = target
            .strip_prefix(prefix)
            .and_then(|t| t.strip_suffix(ext))
            .unwrap_or_else(|| panic!("{link} -> {target}"));
        assert!(stamp.parse::<u64>().is_ok(), "{link} -> {target}");
        match &ts {
            None => ts = Some(stamp.to_string()),
            Some(t) => assert_eq!(t, stamp, "{link} points at another set"),
        }
        assert!(
            fs::metadata(dir.join(&target)).unwrap().len() > 0,
            "{target} is empty"
        );
    }
    let cert = pem_certs(&dir.join("cert.pem"));
    assert_eq!(cert.len(), 1, "cert.pem must hold exactly one certificate");
    let chain = pem_certs(&dir.join("chain.pem"));
    assert!(!chain.is_empty(), "chain.pem holds no certificate");
    let full = pem_certs(&dir.join("fullchain.pem"));
    let mut expected = cert.clone();
    expected.extend(chain.clone());
    assert_eq!(full, expected, "fullchain.pem is not cert.pem + chain.pem");
    assert_eq!(
        fs::read_to_string(dir.join("fullchain.pem")).unwrap(),
        fs::read_to_string(dir.join("cert.pem")).unwrap()
            + &fs::read_to_string(dir.join("chain.pem")).unwrap()
    );

    let (_, leaf) = X509Certificate::from_der(&cert[0]).unwrap();
    let mut got: Vec<String> = leaf
        .subject_alternative_name()
        .unwrap()
        .unwrap()
        .value
        .general_names
        .iter()
        .filter_map(|n| match n {
            GeneralName::DNSName(d) => Some(d.to_string()),
            _ => None,
        })
        .collect();
    got.sort();
    let mut want: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(got, want, "names in cert.pem");
    let (_, issuer) = X509Certificate::from_der(&chain[0]).unwrap();
    leaf.verify_signature(Some(issuer.public_key()))
        .expect("cert.pem is not signed by the first certificate of chain.pem");
    for pair in chain.windows(2) {
        let (_, child) = X509Certificate::from_der(&pair[0]).unwrap();
        let (_, parent) = X509Certificate::from_der(&pair[1]).unwrap();
        child
            .verify_signature(Some(parent.public_key()))
            .expect("chain.pem is not a chain");
    }
    let (_, last) = X509Certificate::from_der(chain.last().unwrap()).unwrap();
    let (_, root) = X509Certificate::from_der(root_der).unwrap();
    last.verify_signature(Some(root.public_key()))
        .expect("chain.pem does not lead to Pebble's root");

    assert_eq!(mode(&dir.join("privkey.pem")), 0o600, "privkey.pem mode");
    let key = public_key_of(&dir.join("privkey.pem"));
    assert_eq!(
        leaf.public_key().subject_public_key.data.as_ref(),
        key.as_slice(),
        "privkey.pem does not match cert.pem"
    );
    let csr_pem = fs::read(dir.join("cert.csr")).unwrap();
    let (_, block) = x509_parser::pem::parse_x509_pem(&csr_pem).unwrap();
    let (_, csr) = X509CertificationRequest::from_der(&block.contents).unwrap();
    assert_eq!(
        csr.certification_request_info
            .subject_pki
            .subject_public_key
            .data
            .as_ref(),
        key.as_slice(),
        "cert.csr is for another key"
    );
    ts.unwrap()
}

/// The public key bits of a PEM private key: PKCS#8 as desiccant writes it, or whatever
/// `openssl pkey` reads (dehydrated's SEC1 keys from `openssl ecparam`).
pub fn public_key_of(path: &Path) -> Vec<u8> {
    let text = fs::read_to_string(path).unwrap();
    if let Ok(key) = rcgen::KeyPair::from_pem(&text) {
        use rcgen::PublicKeyData;
        return key.der_bytes().to_vec();
    }
    let out = Command::new(require("openssl", "openssl"))
        .args(["pkey", "-pubout", "-outform", "DER", "-in"])
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}: not a key openssl reads",
        path.display()
    );
    let (_, spki) = x509_parser::x509::SubjectPublicKeyInfo::from_der(&out.stdout).unwrap();
    spki.subject_public_key.data.to_vec()
}

/// Reads a file to a string, empty when missing.
pub fn read(path: &Path) -> String {
    let mut s = String::new();
    if let Ok(mut f) = fs::File::open(path) {
        let _ = f.read_to_string(&mut s);
    }
    s
}

/// A real BIND `named`, primary for one zone that accepts updates signed with a TSIG key.
pub struct Named {
    pub dir: TempDir,
    pub addr: std::net::SocketAddr,
    pub zone: String,
    /// BIND's key file, as `nsupdate -k` reads it.
    pub key_file: PathBuf,
    child: Child,
}

impl Named {
    /// Starts named on 127.0.0.1:`port` (a free port when None) for `zone`, whose name server
    /// `ns.<zone>` is 127.0.0.1 and whose names all point at 127.0.0.1.
    pub fn start(zone: &str, port: Option<u16>) -> Named {
        let named = require("named", "bind9");
        let dir = TempDir::new("named");
        let port = port.unwrap_or_else(free_port);
        let key_file = dir.path().join("key.conf");
        fs::write(
            &key_file,
            "key \"acme-update\" {\n\talgorithm hmac-sha256;\n\tsecret \"ZGVzaWNjYW50IHRlc3Qga2V5IGZvciBuYW1lZCAhISE=\";\n};\n",
        )
        .unwrap();
        let d = dir.path().display();
        fs::write(
            dir.path().join("named.conf"),
            format!(
                "options {{ directory \"{d}\"; listen-on port {port} {{ 127.0.0.1; }}; listen-on-v6 {{ none; }};
  pid-file \"{d}/named.pid\"; recursion no; dnssec-validation no; notify no; }};
include \"{d}/key.conf\";
controls {{ }};
zone \"{zone}\" {{ type primary; file \"{d}/zone.db\"; allow-update {{ key \"acme-update\"; }}; }};
"
            ),
        )
        .unwrap();
        fs::write(
            dir.path().join("zone.db"),
            format!(
                "$TTL 60\n@ IN SOA ns.{zone}. admin.{zone}. 1 60 60 600 60\n@ IN NS ns.{zone}.\nns IN A 127.0.0.1\n@ IN A 127.0.0.1\n* IN A 127.0.0.1\n"
            ),
        )
        .unwrap();
        // named -g logs to stderr.
        let log = dir.path().join("named.log");
        let log_file = fs::File::create(&log).unwrap();
        let child = Command::new(named)
            .args(["-g", "-c"])
            .arg(dir.path().join("named.conf"))
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file)
            .spawn()
            .unwrap();
        // From here on Drop kills named, also when it does not come up.
        let mut named = Named {
            addr: format!("127.0.0.1:{port}").parse().unwrap(),
            zone: zone.to_string(),
            key_file,
            dir,
            child,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while !fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("running")
        {
            if let Ok(Some(status)) = named.child.try_wait() {
                panic!(
                    "named exited with {status} (is port {port} free?):\n{}",
                    fs::read_to_string(&log).unwrap_or_default()
                );
            }
            assert!(
                Instant::now() < deadline,
                "named did not start:\n{}",
                fs::read_to_string(&log).unwrap_or_default()
            );
            thread::sleep(Duration::from_millis(20));
        }
        named
    }
    /// The TXT values of `name` as named answers them now (with dig).
    pub fn txt(&self, name: &str) -> Vec<String> {
        let dig = require("dig", "bind9-dnsutils");
        let out = Command::new(dig)
            .args([
                "+short",
                "+norecurse",
                "-p",
                &self.addr.port().to_string(),
                "@127.0.0.1",
                "TXT",
                name,
            ])
            .output()
            .unwrap();
        let mut values: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| l.trim_matches('"').to_string())
            .filter(|l| !l.is_empty())
            .collect();
        values.sort();
        values
    }
}

impl Drop for Named {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Writes an executable `sh` script.
pub fn script(path: &Path, body: &str) {
    fs::write(path, format!("#!/bin/sh\n{body}\n")).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
}
