//! acme2certifier, a second real ACME server beside Pebble: the Python package (from the
//! package index, in the virtual environment `tests/a2c-venv.sh` makes), its Django app served
//! over TLS on a loopback address of its own, signing with its built-in `openssl_ca_handler`
//! (a local CA the harness makes). It resolves names through pebble-challtestsrv, which gives
//! every name that address, and fetches http-01 tokens from port 80 there, where the harness
//! serves the webroot as it does for Pebble. Every process is killed and reaped on Drop.
//!
//! It differs from Pebble where clients trip: a failed challenge leaves the order `pending`
//! (RFC 8555 says `invalid`), and it offers ARI.

use std::fs;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;

use x509_parser::prelude::FromDer;

use super::{DNS_MANAGEMENT_PORT, TempDir, loopback, require, serve_webroot, tls_certificate};

/// Where acme2certifier listens on its address (https).
pub const A2C_PORT: u16 = 14000;
/// Where it fetches http-01 tokens (the RFC's port; it has no other) and asks DNS.
const HTTP_PORT: u16 = 80;
const DNS_PORT: u16 = 53;

/// The virtual environment with acme2certifier, made by `tests/a2c-venv.sh` on first use (once
/// per test process; the script reuses it when it is complete).
fn venv() -> &'static Path {
    static VENV: OnceLock<PathBuf> = OnceLock::new();
    VENV.get_or_init(|| {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/a2c-venv.sh");
        let out = Command::new(&script)
            .stderr(Stdio::inherit())
            .output()
            .unwrap_or_else(|e| panic!("{}: {e}", script.display()));
        assert!(
            out.status.success(),
            "{} failed ({}): acme2certifier could not be installed from the Python package \
             index; run it by hand to see why",
            script.display(),
            out.status
        );
        PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
    })
}

/// Options for [`Acme2certifier::start_with`].
#[derive(Clone, Default)]
pub struct A2cOptions {
    /// Names (Host headers) the web server answers with 404: their http-01 challenge fails.
    pub refuse_hosts: Vec<String>,
}

/// A running acme2certifier with its DNS server and the http-01 web server.
pub struct Acme2certifier {
    pub dir: TempDir,
    pub ip: Ipv4Addr,
    pub directory_url: String,
    /// The CA of its TLS certificate, for CA_BUNDLE.
    pub ca_bundle: PathBuf,
    /// The folder served at /.well-known/acme-challenge/ on port 80 of `ip`.
    pub webroot: PathBuf,
    /// Every challenge path the web server was asked for.
    pub served: Arc<Mutex<Vec<String>>>,
    /// acme2certifier's output.
    pub log: PathBuf,
    /// The certificate of the CA that signs what it issues (DER).
    pub root_der: Vec<u8>,
    /// The revocation list it writes when it revokes a certificate.
    pub crl: PathBuf,
    children: Vec<Child>,
    stop: Arc<AtomicBool>,
    server: Option<thread::JoinHandle<()>>,
}

impl Acme2certifier {
    pub fn start() -> Acme2certifier {
        Acme2certifier::start_with(A2cOptions::default())
    }

    pub fn start_with(opts: A2cOptions) -> Acme2certifier {
        let challtestsrv = require("pebble-challtestsrv", "pebble");
        let python = venv().join("bin/python");
        let ip = loopback();
        let at = |port: u16| SocketAddr::from((ip, port));
        let dir = TempDir::new("a2c");
        let d = dir.path();
        let (tls_ca, tls_cert, tls_key) = tls_certificate(ip);
        let ca_bundle = d.join("tls-ca.pem");
        fs::write(&ca_bundle, tls_ca).unwrap();
        fs::write(d.join("tls-cert.pem"), tls_cert).unwrap();
        fs::write(d.join("tls-key.pem"), tls_key).unwrap();
        let (ca_cert, ca_key, root_der) = signing_ca();
        fs::write(d.join("ca-cert.pem"), ca_cert).unwrap();
        fs::write(d.join("ca-key.pem"), ca_key).unwrap();
        fs::create_dir_all(d.join("issued")).unwrap();
        let crl = d.join("crl.pem");
        fs::write(
            d.join("acme_srv.cfg"),
            format!(
                "[DEFAULT]\ndebug: False\n\n\
                 [Nonce]\nnonce_check_disable: False\n\n\
                 [CAhandler]\nhandler_module: acme2certifier.cahandlers.openssl_ca_handler\n\
                 issuing_ca_key: {d}/ca-key.pem\nissuing_ca_cert: {d}/ca-cert.pem\n\
                 issuing_ca_crl: {crl}\ncert_save_path: {d}/issued\ncert_validity_days: 90\n\n\
                 [DBhandler]\nhandler: django\n\n\
                 [Challenge]\ndns_server_list: [\"{ip}\"]\n",
                d = d.display(),
                crl = crl.display(),
            ),
        )
        .unwrap();
        let webroot = d.join("webroot");
        fs::create_dir_all(&webroot).unwrap();
        let listener = TcpListener::bind(at(HTTP_PORT))
            .unwrap_or_else(|e| panic!("{}: {e} (the tests run as root)", at(HTTP_PORT)));
        let stop = Arc::new(AtomicBool::new(false));
        let served = Arc::new(Mutex::new(Vec::new()));
        let server = {
            let (stop, served, webroot) = (stop.clone(), served.clone(), webroot.clone());
            let refuse = opts.refuse_hosts.clone();
            thread::spawn(move || {
                let answer = (true, refuse.as_slice(), std::time::Duration::ZERO);
                serve_webroot(listener, &webroot, &stop, &served, answer)
            })
        };
        let log = d.join("a2c.log");
        // From here on Drop stops everything, also when a process does not come up.
        let mut a2c = Acme2certifier {
            ip,
            directory_url: format!("https://{}/directory", at(A2C_PORT)),
            ca_bundle,
            webroot,
            served,
            log: log.clone(),
            root_der,
            crl,
            children: Vec::new(),
            stop,
            server: Some(server),
            dir,
        };
        let d = a2c.dir.path().to_path_buf();
        let dns_log = d.join("challtestsrv.log");
        a2c.children.push(
            Command::new(challtestsrv)
                .args(["-dns01", &at(DNS_PORT).to_string()])
                .args(["-http01", "", "-https01", "", "-tlsalpn01", ""])
                .args(["-management", &at(DNS_MANAGEMENT_PORT).to_string()])
                .args(["-defaultIPv4", &ip.to_string(), "-defaultIPv6", ""])
                .stdout(fs::File::create(&dns_log).unwrap())
                .stderr(fs::File::create(d.join("challtestsrv.err")).unwrap())
                .spawn()
                .unwrap(),
        );
        let dns = a2c.children.last_mut().unwrap();
        super::wait_for_dns(at(DNS_PORT), "pebble-challtestsrv", dns, &dns_log);

        let log_file = fs::File::create(&log).unwrap();
        a2c.children.push(
            Command::new(python)
                .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/common/a2c_server.py"))
                .arg(ip.to_string())
                .arg(A2C_PORT.to_string())
                .arg(d.join("tls-cert.pem"))
                .arg(d.join("tls-key.pem"))
                .current_dir(&d)
                .env("ACME_SRV_CONFIGFILE", d.join("acme_srv.cfg"))
                .env("ACME2CERTIFIER_BASE_DIR", &d)
                .env("ACME2CERTIFIER_ALLOWED_HOSTS", ip.to_string())
                // Django's session signing key; nothing in these tests uses sessions.
                .env(
                    "ACME2CERTIFIER_SECRET_KEY",
                    "desiccant-tests-a2c-django-key-0123456789",
                )
                .env("PYTHONDONTWRITEBYTECODE", "1")
                .stdout(log_file.try_clone().unwrap())
                .stderr(log_file)
                .spawn()
                .unwrap(),
        );
        let server = a2c.children.last_mut().unwrap();
        super::wait_for_port(at(A2C_PORT), "acme2certifier", server, &log);
        a2c
    }

    /// The serial numbers (lower-case hex) in its revocation list; none before it revoked any.
    pub fn revoked_serials(&self) -> Vec<String> {
        if !self.crl.exists() {
            return Vec::new();
        }
        let pem = fs::read(&self.crl).unwrap();
        let (_, block) = x509_parser::pem::parse_x509_pem(&pem).unwrap();
        let (_, crl) =
            x509_parser::revocation_list::CertificateRevocationList::from_der(&block.contents)
                .unwrap();
        crl.iter_revoked_certificates()
            .map(|r| serial_hex(r.raw_serial()))
            .collect()
    }
}

impl Drop for Acme2certifier {
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

/// A serial number as lower-case hex without leading zeros.
pub fn serial_hex(raw: &[u8]) -> String {
    let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    hex.trim_start_matches('0').to_string()
}

/// The local CA acme2certifier signs with: (certificate PEM, key PEM, certificate DER).
fn signing_ca() -> (String, String, Vec<u8>) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair, KeyUsagePurpose};
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "acme2certifier test CA");
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), key.serialize_pem(), cert.der().to_vec())
}
