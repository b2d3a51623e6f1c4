//! The test harness: a real Pebble ACME server and its DNS (pebble-challtestsrv) with a TLS
//! certificate made here, a web server for the http-01 webroot, and a BASEDIR in which to run
//! the real desiccant binary. Every process is killed and reaped on Drop, also when a test
//! fails.
//!
//! Every server gets a loopback address of its own ([`loopback`]): no test, of this process or
//! of another one running beside it, ever binds that address, so the fixed ports used on it
//! are free without a race, and a stopped server's address stays unreachable.

#![allow(dead_code)]

pub mod a2c;
pub mod invariants;
pub mod proxy;
pub mod user;

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
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

/// A loopback address no other server of any test uses: `127.<block>.<n>` where the block
/// (1 to 254) is held by this process alone for its lifetime, through an abstract Unix socket
/// named after it that the kernel frees when the process ends, and `n` counts the addresses
/// this process handed out (never one twice). The whole of 127.0.0.0/8 is loopback on Linux;
/// 127.0.0.0/16, where 127.0.0.1 and systemd-resolved's 127.0.0.53 live, is never handed out.
pub fn loopback() -> Ipv4Addr {
    static N: AtomicUsize = AtomicUsize::new(0);
    let block = loopback_block();
    let n = N.fetch_add(1, Ordering::Relaxed);
    assert!(n < 254 * 256, "this process used up its loopback block");
    Ipv4Addr::new(127, block, (n / 254) as u8, (n % 254 + 1) as u8)
}

/// The block of loopback addresses this process holds (see [`loopback`]).
fn loopback_block() -> u8 {
    use std::os::linux::net::SocketAddrExt;
    static BLOCK: OnceLock<(u8, UnixListener)> = OnceLock::new();
    BLOCK
        .get_or_init(|| {
            let first = std::process::id() as usize;
            for i in 0..254 {
                let block = ((first + i) % 254 + 1) as u8;
                let name = format!("desiccant-test-loopback-{block}");
                let addr =
                    std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
                if let Ok(held) = UnixListener::bind_addr(&addr) {
                    return (block, held);
                }
            }
            panic!("all 254 loopback blocks are held by other test processes");
        })
        .0
}

/// An address on 127.0.0.1 for a server that cannot listen on [`loopback`]'s addresses: a
/// port of the 64 that belong to this process's loopback block (10000 and up, below 32768 so
/// that no port-0 bind on the machine takes them), never one twice.
pub fn loopback_port() -> SocketAddr {
    static N: AtomicUsize = AtomicUsize::new(0);
    let block = loopback_block();
    let n = N.fetch_add(1, Ordering::Relaxed);
    assert!(n < 64, "this process used up its ports on 127.0.0.1");
    SocketAddr::from((
        Ipv4Addr::LOCALHOST,
        10_000 + (u16::from(block) - 1) * 64 + n as u16,
    ))
}

/// The ports used on a server's own loopback address (Pebble's and pebble-challtestsrv's
/// defaults). Below 32768, so that no port-0 bind of any process on the machine takes them.
pub const ACME_PORT: u16 = 14000;
pub const MANAGEMENT_PORT: u16 = 15000;
pub const HTTP_PORT: u16 = 5002;
pub const TLS_PORT: u16 = 5001;
pub const DNS_PORT: u16 = 8053;
pub const DNS_MANAGEMENT_PORT: u16 = 8055;

/// Waits until the file at `path` exists, which a hook of `child` makes when the run reaches
/// the step a test acts at; fails when the run ends first or after 30 s.
pub fn wait_for_file(path: &Path, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before {}",
            path.display()
        );
        thread::sleep(Duration::from_millis(10));
    }
}

pub fn wait_for_port(addr: SocketAddr, what: &str, child: &mut Child, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(addr).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "{what} exited with {status} before listening on {addr}:\n{}",
                fs::read_to_string(log).unwrap_or_default()
            );
        }
        assert!(
            Instant::now() < deadline,
            "{what} did not listen on {addr} within 20 s:\n{}",
            fs::read_to_string(log).unwrap_or_default()
        );
        thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until a DNS server answers a question over UDP at `addr` (any answer will do).
pub fn wait_for_dns(addr: SocketAddr, what: &str, child: &mut Child, log: &Path) {
    // A query for `probe.invalid. A`, id 0x7e57, recursion desired.
    let query =
        b"\x7e\x57\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x05probe\x07invalid\x00\x00\x01\x00\x01";
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut answer = [0u8; 512];
    loop {
        let _ = socket.send_to(query, addr);
        if let Ok((n, from)) = socket.recv_from(&mut answer)
            && from == addr
            && n >= 2
            && answer[..2] == query[..2]
        {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "{what} exited with {status} before answering DNS on {addr}:\n{}",
                fs::read_to_string(log).unwrap_or_default()
            );
        }
        assert!(
            Instant::now() < deadline,
            "{what} did not answer DNS on {addr} within 20 s:\n{}",
            fs::read_to_string(log).unwrap_or_default()
        );
        thread::sleep(Duration::from_millis(20));
    }
}

/// A child process killed and reaped on Drop, also when the test fails before it is stopped.
/// Only for processes that start none of their own that could outlive them.
pub struct Process(pub Child);

impl Process {
    /// Kills and reaps the process now.
    pub fn stop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.stop();
    }
}

/// nginx listening on `listen`, with a page of its own at `/` and the server directives
/// `server` (locations): one process (`master_process off`), so that stopping it leaves no
/// worker. With `user` (uid, gid) it runs as that user, so that what it serves must be
/// readable by others than root.
pub fn nginx(listen: SocketAddr, server: &str, user: Option<(u32, u32)>) -> (TempDir, Process) {
    let nginx = require("nginx", "nginx");
    let dir = TempDir::new("nginx");
    let d = dir.path().display();
    fs::create_dir_all(dir.path().join("html")).unwrap();
    fs::write(dir.path().join("html/index.html"), "the site\n").unwrap();
    fs::write(
        dir.path().join("nginx.conf"),
        format!(
            "pid {d}/nginx.pid; error_log {d}/error.log; daemon off; master_process off;
events {{ worker_connections 64; }}
http {{
  access_log {d}/access.log;
  client_body_temp_path {d}; proxy_temp_path {d}; fastcgi_temp_path {d}; uwsgi_temp_path {d}; scgi_temp_path {d};
  server {{
    listen {listen};
    root {d}/html;
    {server}
  }}
}}
"
        ),
    )
    .unwrap();
    let mut command = match user {
        Some((uid, gid)) => {
            reachable_by_others(dir.path());
            for entry in [dir.path().to_path_buf(), dir.path().join("html")] {
                std::os::unix::fs::chown(&entry, Some(uid), Some(gid)).unwrap();
                fs::set_permissions(&entry, fs::Permissions::from_mode(0o755)).unwrap();
            }
            let mut c = Command::new("setpriv");
            c.arg(format!("--reuid={uid}"))
                .arg(format!("--regid={gid}"))
                .arg("--clear-groups")
                .arg(&nginx);
            c
        }
        None => Command::new(&nginx),
    };
    let mut child = Process(
        command
            .args(["-e", &format!("{d}/error.log"), "-p", &d.to_string(), "-c"])
            .arg(dir.path().join("nginx.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(listen).is_err() {
        let log = || fs::read_to_string(dir.path().join("error.log")).unwrap_or_default();
        if let Some(status) = child.0.try_wait().unwrap() {
            panic!("nginx exited with {status}: {}", log());
        }
        assert!(Instant::now() < deadline, "nginx did not start: {}", log());
        thread::sleep(Duration::from_millis(20));
    }
    (dir, child)
}

/// Lets other users search (not list) the folders down to `dir`, as they can reach
/// `/etc/dehydrated` on a real machine: `tests/run.sh` keeps its temporary files in a folder
/// of root's alone.
pub fn reachable_by_others(dir: &Path) {
    use std::os::unix::fs::MetadataExt;
    for folder in dir.ancestors() {
        let meta = fs::metadata(folder).unwrap();
        if meta.uid() == 0 && meta.mode() & 0o001 == 0 {
            let mode = meta.mode() & 0o7777 | 0o001;
            fs::set_permissions(folder, fs::Permissions::from_mode(mode)).unwrap();
        }
    }
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
    /// The lifetime of the certificates it issues (its config's `certificateValidityPeriod`),
    /// when not Pebble's five years; with the newest Pebble, its `default` profile's (90 days
    /// when not given).
    pub validity: Option<Duration>,
    /// Which Pebble runs: Debian's package, or the newest one built from source.
    pub build: PebbleBuild,
}

/// The Pebble a test runs against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PebbleBuild {
    /// Debian's `pebble` package (2.4): no renewal information, profiles, IP identifiers or
    /// the newer challenges.
    Debian,
    /// Pebble built from its newest source by `../shared/pebble/build.sh`, found in the folder
    /// [`PEBBLE_HEAD_VAR`] names (tests/run.sh sets it): renewal information with `replaces`
    /// and `/set-renewal-info/`, the profiles `default` and `shortlived`, IP identifiers,
    /// dns-account-01 and dns-persist-01.
    Head,
}

/// The environment variable that names the folder of the newest Pebble's binaries.
pub const PEBBLE_HEAD_VAR: &str = "DESICCANT_PEBBLE_HEAD";

/// The lifetime of the newest Pebble's `shortlived` profile (Let's Encrypt's: six days).
pub const SHORTLIVED: Duration = Duration::from_secs(6 * 86_400);

impl PebbleBuild {
    /// `pebble` and `pebble-challtestsrv` of this build, or a failure that says how to get
    /// them.
    fn programs(self) -> (PathBuf, PathBuf) {
        match self {
            PebbleBuild::Debian => (
                require("pebble", "pebble"),
                require("pebble-challtestsrv", "pebble"),
            ),
            PebbleBuild::Head => {
                let how = "run tests/run.sh, which builds it, or \
                           `export DESICCANT_PEBBLE_HEAD=$(../shared/pebble/build.sh)`";
                let dir = std::env::var_os(PEBBLE_HEAD_VAR).unwrap_or_else(|| {
                    panic!("{PEBBLE_HEAD_VAR} is not set, so the newest Pebble is not found: {how}")
                });
                let dir = PathBuf::from(dir);
                let programs = (dir.join("pebble"), dir.join("pebble-challtestsrv"));
                for p in [&programs.0, &programs.1] {
                    assert!(p.is_file(), "{} is missing: {how}", p.display());
                }
                programs
            }
        }
    }
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
            validity: None,
            build: PebbleBuild::Debian,
        }
    }
}

/// A running Pebble with its DNS server and the http-01 web server, all on one loopback
/// address of their own.
pub struct Pebble {
    pub dir: TempDir,
    /// The loopback address Pebble, its DNS server and the web server listen on.
    pub ip: Ipv4Addr,
    pub directory_url: String,
    pub ca_bundle: PathBuf,
    pub management_url: String,
    /// The folder served at /.well-known/acme-challenge/ on Pebble's httpPort.
    pub webroot: PathBuf,
    /// Every challenge path the web server was asked for.
    pub served: Arc<Mutex<Vec<String>>>,
    pub log: PathBuf,
    /// Pebble's httpPort, where the CA fetches http-01 tokens (on `ip`, which
    /// pebble-challtestsrv gives as the address of every name).
    pub http_port: u16,
    /// pebble-challtestsrv's DNS server, and its management URL (`/set-txt`, `/clear-txt`).
    pub dns_server: SocketAddr,
    pub dns_management: String,
    children: Vec<Child>,
    stop: Arc<AtomicBool>,
    server: Option<thread::JoinHandle<()>>,
}

/// Starts pebble-challtestsrv and Pebble on `ip`; the children are pushed to `children` as
/// they start, so that the caller kills them also when this panics.
fn start_processes(
    (pebble, challtestsrv): (&Path, &Path),
    dir: &Path,
    opts: &PebbleOptions,
    ip: Ipv4Addr,
    children: &mut Vec<Child>,
) {
    let at = |port: u16| SocketAddr::from((ip, port));
    let mut config = serde_json::json!({
        "pebble": {
            "listenAddress": at(ACME_PORT).to_string(),
            "managementListenAddress": at(MANAGEMENT_PORT).to_string(),
            "certificate": dir.join("cert.pem"),
            "privateKey": dir.join("key.pem"),
            "httpPort": HTTP_PORT,
            "tlsPort": TLS_PORT,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": opts.eab_required,
            "externalAccountMACKeys": { EAB_KID: EAB_HMAC_KEY }
        }
    });
    match opts.build {
        PebbleBuild::Debian => {
            if let Some(validity) = opts.validity {
                config["pebble"]["certificateValidityPeriod"] = validity.as_secs().into();
            }
        }
        PebbleBuild::Head => {
            let default = opts.validity.unwrap_or(Duration::from_secs(90 * 86_400));
            config["pebble"]["profiles"] = serde_json::json!({
                "default": {
                    "description": "the profile of the tests",
                    "validityPeriod": default.as_secs()
                },
                "shortlived": {
                    "description": "six days",
                    "validityPeriod": SHORTLIVED.as_secs()
                }
            });
        }
    }
    let config_path = dir.join("pebble-config.json");
    fs::write(&config_path, config.to_string()).unwrap();

    let dns_log = dir.join("challtestsrv.log");
    // The newest pebble-challtestsrv calls -dns01 -dnsserver and serves DNS over HTTPS too.
    let mut dns = Command::new(challtestsrv);
    match opts.build {
        PebbleBuild::Debian => dns.args(["-dns01", &at(DNS_PORT).to_string()]),
        PebbleBuild::Head => dns.args(["-dnsserver", &at(DNS_PORT).to_string(), "-doh", ""]),
    };
    children.push(
        dns.args(["-http01", "", "-https01", "", "-tlsalpn01", ""])
            .args(["-management", &at(DNS_MANAGEMENT_PORT).to_string()])
            .args(["-defaultIPv4", &ip.to_string(), "-defaultIPv6", ""])
            .stdout(fs::File::create(&dns_log).unwrap())
            .stderr(Stdio::from(
                fs::File::create(dir.join("challtestsrv.err")).unwrap(),
            ))
            .spawn()
            .unwrap(),
    );
    let dns = children.last_mut().unwrap();
    wait_for_port(
        at(DNS_MANAGEMENT_PORT),
        "pebble-challtestsrv",
        dns,
        &dns_log,
    );
    wait_for_dns(at(DNS_PORT), "pebble-challtestsrv", dns, &dns_log);

    let log = dir.join("pebble.log");
    let log_file = fs::File::create(&log).unwrap();
    let mut ca = Command::new(pebble);
    if let Some(n) = opts.alternate_roots {
        ca.env("PEBBLE_ALTERNATE_ROOTS", n.to_string());
    }
    if let Some(n) = opts.chain_length {
        ca.env("PEBBLE_CHAIN_LENGTH", n.to_string());
    }
    children.push(
        ca.arg("-config")
            .arg(&config_path)
            .args(["-dnsserver", &opts.dns.unwrap_or(at(DNS_PORT)).to_string()])
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", opts.nonce_reject.to_string())
            .env("PEBBLE_AUTHZREUSE", opts.authz_reuse.to_string())
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file)
            .spawn()
            .unwrap(),
    );
    let ca = children.last_mut().unwrap();
    // Pebble opens its management port a moment after its ACME port.
    wait_for_port(at(ACME_PORT), "pebble", ca, &log);
    wait_for_port(at(MANAGEMENT_PORT), "pebble", ca, &log);
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

    /// The newest Pebble ([`PebbleBuild::Head`]) with the other options at their defaults.
    pub fn start_head() -> Pebble {
        Pebble::start_with(PebbleOptions {
            build: PebbleBuild::Head,
            ..PebbleOptions::default()
        })
    }

    pub fn start_with(opts: PebbleOptions) -> Pebble {
        let programs = opts.build.programs();
        let ip = loopback();
        let dir = TempDir::new("pebble");
        let (ca_pem, cert_pem, key_pem) = tls_certificate(ip);
        let ca_bundle = dir.path().join("ca.pem");
        fs::write(&ca_bundle, ca_pem).unwrap();
        fs::write(dir.path().join("cert.pem"), cert_pem).unwrap();
        fs::write(dir.path().join("key.pem"), key_pem).unwrap();
        let webroot = dir.path().join("webroot");
        fs::create_dir_all(&webroot).unwrap();

        let listener = opts
            .web_server
            .then(|| TcpListener::bind((ip, HTTP_PORT)).unwrap());
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
        let at = |port: u16| SocketAddr::from((ip, port));
        // From here on Drop stops everything, also when a process does not come up.
        let mut pebble = Pebble {
            ip,
            http_port: HTTP_PORT,
            dns_server: at(DNS_PORT),
            dns_management: format!("http://{}", at(DNS_MANAGEMENT_PORT)),
            directory_url: format!("https://{}/dir", at(ACME_PORT)),
            management_url: format!("https://{}", at(MANAGEMENT_PORT)),
            ca_bundle,
            webroot,
            served,
            log: dir.path().join("pebble.log"),
            dir,
            children: Vec::new(),
            stop,
            server: Some(server),
        };
        start_processes(
            (&programs.0, &programs.1),
            pebble.dir.path(),
            &opts,
            ip,
            &mut pebble.children,
        );
        pebble
    }

    /// Stops Pebble and its DNS server now, as if the CA went away; the files stay until Drop.
    pub fn stop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Makes the newest Pebble answer `answer` (JSON) for the renewal information of the
    /// certificate `cert_pem` from now on, through its management interface.
    pub fn set_renewal_info(&self, cert_pem: &str, answer: &serde_json::Value) {
        let url = format!("{}/set-renewal-info/", self.management_url);
        let body =
            serde_json::json!({ "Certificate": cert_pem, "ARIResponse": answer.to_string() });
        if let Err(e) = self.agent().post(&url).send(body.to_string()) {
            panic!("{url}: {e}");
        }
    }

    /// Pebble's log so far.
    pub fn log_text(&self) -> String {
        read(&self.log)
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

    fn agent(&self) -> ureq::Agent {
        https_agent(&self.ca_bundle)
    }

    pub fn management_get(&self, path: &str) -> Vec<u8> {
        let url = format!("{}{path}", self.management_url);
        match self.agent().get(&url).call() {
            Ok(mut answer) => answer.body_mut().read_to_vec().unwrap(),
            Err(e) => panic!("{url}: {e}"),
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

    /// The starting point of an assertion that a run sends Pebble nothing: sends one
    /// `GET /dir` itself and checks that [`Pebble::requests`] counts it and
    /// [`Pebble::requests_after`] names it, then returns the count. A "nothing was sent"
    /// measured from here cannot pass because the log, or the way it is read, counts nothing.
    pub fn requests_counted(&self) -> usize {
        let before = self.requests();
        let url = &self.directory_url;
        if let Err(e) = self.agent().get(url).call() {
            panic!("{url}: {e}");
        }
        // Pebble logs a request before it handles it, so the line is there once answered.
        assert_eq!(
            self.requests_after(before),
            ["GET /dir"],
            "Pebble's log does not show the request the test sent"
        );
        before + 1
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

/// An HTTPS client that trusts the certificates of `ca_bundle` only.
pub fn https_agent(ca_bundle: &Path) -> ureq::Agent {
    let roots: Vec<ureq::tls::Certificate<'static>> =
        ureq::tls::parse_pem(&fs::read(ca_bundle).unwrap())
            .filter_map(|i| match i {
                Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
                _ => None,
            })
            .collect();
    let tls = ureq::tls::TlsConfig::builder()
        .root_certs(ureq::tls::RootCerts::Specific(Arc::new(roots)))
        .build();
    ureq::Agent::config_builder().tls_config(tls).build().into()
}

/// A CA and a certificate for `ip` and localhost signed by it, as PEM (ca, cert, key).
pub fn tls_certificate(ip: Ipv4Addr) -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "desiccant test CA");
    let ca = CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let params = CertificateParams::new(vec![ip.to_string(), "localhost".to_string()]).unwrap();
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
/// It listens on 127.0.0.1 (named listens only on addresses of an interface, which no other
/// loopback address is) at a port of this process's own ([`loopback_port`]).
pub struct Named {
    pub dir: TempDir,
    pub addr: SocketAddr,
    pub zone: String,
    /// BIND's key file, as `nsupdate -k` reads it.
    pub key_file: PathBuf,
    /// named's log (`named -g` logs to stderr).
    pub log: PathBuf,
    child: Child,
}

impl Named {
    /// Starts named for `zone`, whose name server `ns.<zone>` is 127.0.0.1 and whose names
    /// all point at 127.0.0.1.
    pub fn start(zone: &str) -> Named {
        Named::start_for(zone, Ipv4Addr::LOCALHOST)
    }

    /// The same with `name_server` as the address of the zone's only name server,
    /// `ns.<zone>`: the one a client that looks up the zone's NS records asks, on port 53.
    pub fn start_for(zone: &str, name_server: Ipv4Addr) -> Named {
        let named = require("named", "bind9");
        let dir = TempDir::new("named");
        let addr = loopback_port();
        let (ip, port) = (addr.ip(), addr.port());
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
                "options {{ directory \"{d}\"; listen-on port {port} {{ {ip}; }}; listen-on-v6 {{ none; }};
  pid-file \"{d}/named.pid\"; recursion no; dnssec-validation no; notify no; querylog yes; }};
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
                "$TTL 60\n@ IN SOA ns.{zone}. admin.{zone}. 1 60 60 600 60\n@ IN NS ns.{zone}.\nns IN A {name_server}\n@ IN A {ip}\n* IN A {ip}\n"
            ),
        )
        .unwrap();
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
            addr,
            zone: zone.to_string(),
            key_file,
            log,
            dir,
            child,
        };
        // named says "running" once it has loaded the zone, and answers once it listens.
        let deadline = Instant::now() + Duration::from_secs(20);
        while !fs::read_to_string(&named.log)
            .unwrap_or_default()
            .contains("running")
        {
            if let Ok(Some(status)) = named.child.try_wait() {
                panic!(
                    "named exited with {status}:\n{}",
                    fs::read_to_string(&named.log).unwrap_or_default()
                );
            }
            assert!(
                Instant::now() < deadline,
                "named did not start:\n{}",
                fs::read_to_string(&named.log).unwrap_or_default()
            );
            thread::sleep(Duration::from_millis(20));
        }
        wait_for_dns(addr, "named", &mut named.child, &named.log);
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
                &format!("@{}", self.addr.ip()),
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
