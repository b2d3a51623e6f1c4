//! The parsers the fuzz targets in `fuzz/` drive, each behind one function that takes what an
//! outsider controls (a config file, a CA's answer, a header) and returns plain values for the
//! target to check. Nothing here is used by the program, and none of it is an API.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::acme::{headers, transport, wire};
use crate::config::{Config, LoadOptions};
use crate::config_file::{self, Origin, Vars};

/// The name config texts are read under: errors start with `config:<line>:`.
pub const CONFIG_FILE: &str = "config";
/// The name domains.txt texts are read under: errors start with `domains.txt:<line>:`.
pub const DOMAINS_FILE: &str = "domains.txt";

/// The `KEY=value` assignments of a config text, `$KEY` expanding only keys set before it.
pub fn config_assignments(text: &str) -> Result<Vec<(String, String)>, String> {
    config_file::parse_text(text, CONFIG_FILE, &Vars::default(), &|_| None)
        .map(|read| read.into_iter().map(|a| (a.key, a.value)).collect())
        .map_err(|e| e.to_string())
}

/// A config text read as a whole config file, with the keys checked and every value resolved
/// as a run would (no environment, no `CONFIG_D`). `DNS_UPDATE_KEY_FILE` is left out: it names
/// a file to read, which could be any file of the machine running the fuzzer.
pub fn config(text: &str) -> Result<(), String> {
    let mut vars = Vars::default();
    for key in ["BASEDIR", "SCRIPTDIR"] {
        vars.set(key, ".".into(), Origin("the config file's folder".into()));
    }
    let read =
        config_file::parse_text(text, CONFIG_FILE, &vars, &|_| None).map_err(|e| e.to_string())?;
    crate::config::check_keys(&read).map_err(|e| e.to_string())?;
    vars.apply(
        read.into_iter()
            .filter(|a| a.key != "DNS_UPDATE_KEY_FILE")
            .collect(),
    );
    let file = Some(std::path::PathBuf::from(CONFIG_FILE));
    Config::resolve(file, vars, &LoadOptions::default())
        .map(drop)
        .map_err(|e| e.to_string())
}

/// The certificates of a domains.txt text: (folder name, names) for each.
pub fn domains_txt(text: &str) -> Result<Vec<(String, Vec<String>)>, String> {
    crate::domains::parse(text, DOMAINS_FILE)
        .map(|lines| lines.into_iter().map(|l| (l.name, l.names)).collect())
        .map_err(|e| e.to_string())
}

/// Reads `json` as each ACME object the client reads (directory, order, authorization,
/// challenge, account-less renewal information). For renewal information whose window reads,
/// returns (start, end, the renewal point chosen in it).
pub fn acme_objects(json: &[u8]) -> Option<(i64, i64, i64)> {
    let _ = serde_json::from_slice::<wire::Directory>(json);
    let _ = serde_json::from_slice::<wire::Order>(json);
    let _ = serde_json::from_slice::<wire::Authorization>(json);
    let _ = serde_json::from_slice::<wire::Challenge>(json);
    let info = serde_json::from_slice::<wire::RenewalInfo>(json).ok()?;
    let start = wire::parse_rfc3339(&info.suggested_window.start)?;
    let end = wire::parse_rfc3339(&info.suggested_window.end)?;
    let point = crate::renewal::ari_point(start, end, "fuzzing.cert-id");
    let _ = crate::logging::utc(point);
    Some((start, end, point))
}

/// A problem document: how it is shown (one log line), and written back as JSON.
pub fn problem(json: &[u8]) -> Option<(String, String)> {
    let problem = serde_json::from_slice::<crate::acme::Problem>(json).ok()?;
    let again = serde_json::to_string(&problem).ok()?;
    Some((problem.to_string(), again))
}

/// How an error answer of the CA (any status, content type and body) is reported.
pub fn error_answer(status: u16, content_type: &str, body: &[u8]) -> String {
    let response = transport::Response {
        url: "https://ca.example/acme".into(),
        status,
        location: None,
        retry_after: None,
        links: Vec::new(),
        content_type: content_type.into(),
        body: body.to_vec(),
        date: None,
    };
    transport::problem_of(response, "post", String::new()).to_string()
}

/// An RFC 3339 time as Unix seconds.
pub fn rfc3339(text: &str) -> Option<i64> {
    wire::parse_rfc3339(text)
}

/// Unix seconds as the program prints them: `2026-11-23 12:00:00 UTC`.
pub fn utc(ts: i64) -> String {
    crate::logging::utc(ts)
}

/// The DER of each certificate in PEM text.
pub fn pem_certs(pem: &[u8]) -> Option<Vec<Vec<u8>>> {
    crate::x509::pem_certs(pem).ok()
}

/// Certificates as PEM text, as they are written to disk.
pub fn certs_to_pem(ders: &[Vec<u8>]) -> String {
    crate::x509::to_pem(ders)
}

/// What renewal reads from a PEM certificate: its names, and its RFC 9773 certID.
pub fn cert_facts(pem: &[u8]) -> Option<(Vec<String>, Option<String>)> {
    let _ = crate::x509::common_name(pem);
    if let Some(chain) = pem_certs(pem) {
        let _ = crate::x509::top_issuer(&chain);
    }
    let facts = crate::x509::facts(pem).ok()?;
    Some((facts.names, crate::x509::ari_cert_id(pem)))
}

/// The names of a PEM CSR made elsewhere (`generate_csr`, `--signcsr`).
pub fn csr_names(pem: &str) -> Option<Vec<String>> {
    crate::x509::read_csr(pem).ok().map(|(_, names)| names)
}

/// A certificate key file: its type and the key as it would be written back (PKCS#8 PEM).
pub fn cert_key(pem: &str) -> Option<(String, String)> {
    let key = crate::keys::CertKey::read(pem).ok()?;
    Some((key.algo().to_string(), key.pem()))
}

/// An account key file: its JWS algorithm and JWK thumbprint.
pub fn account_key(pem: &str) -> Option<(String, String)> {
    let key = crate::account::read_key(pem).ok()?;
    Some((key.alg().to_string(), key.thumbprint().to_string()))
}

/// A `Retry-After` value read at `now` (Unix seconds), in seconds.
pub fn retry_after(value: &str, now: u64) -> Option<u64> {
    let now: SystemTime = UNIX_EPOCH.checked_add(Duration::from_secs(now))?;
    headers::parse_retry_after(value, now).map(|d| d.as_secs())
}

/// A `Link` header value as (rel, url) pairs.
pub fn links(value: &str) -> Vec<(String, String)> {
    headers::parse_links(value)
        .into_iter()
        .map(|l| (l.rel, l.url))
        .collect()
}

/// A `Replay-Nonce` value as the nonce pool takes it; None when it is ignored.
pub fn replay_nonce(value: &str) -> Option<String> {
    headers::parse_replay_nonce(value).map(str::to_string)
}

/// A challenge token as the CA sends it: true when it may be used as a file name.
pub fn token(token: &str) -> bool {
    crate::challenge::validate_token(token).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The entry points take what the program takes; the fuzz targets check the rest.
    #[test]
    fn each_entry_point_reads_a_good_input() {
        assert_eq!(
            config_assignments("CA=letsencrypt\nCERTDIR=\"$CA/x\"\n"),
            Ok(vec![
                ("CA".into(), "letsencrypt".into()),
                ("CERTDIR".into(), "letsencrypt/x".into())
            ])
        );
        assert_eq!(config("CA=letsencrypt\nJOBS=2\n"), Ok(()));
        assert!(config("JOBS=0\n").unwrap_err().starts_with("config:1: "));
        assert_eq!(
            domains_txt("a.example b.example > ab\n"),
            Ok(vec![(
                "ab".into(),
                vec!["a.example".into(), "b.example".into()]
            )])
        );
        let window =
            br#"{"suggestedWindow":{"start":"1970-01-01T00:00:00Z","end":"1970-01-01T01:00:00Z"}}"#;
        let (start, end, point) = acme_objects(window).unwrap();
        assert!(start == 0 && end == 3600 && (0..=3600).contains(&point));
        let (shown, _) = problem(br#"{"type":"t","detail":"d"}"#).unwrap();
        assert_eq!(shown, "d (t)");
        assert!(error_answer(502, "text/html", b"<h1>Bad gateway</h1>").contains("Bad gateway"));
        assert_eq!(rfc3339("1970-01-02T00:00:00Z"), Some(86_400));
        assert_eq!(retry_after("120", 0), Some(120));
        assert_eq!(
            links("<https://ca/x>;rel=\"up\""),
            [("up".into(), "https://ca/x".into())]
        );
        assert_eq!(replay_nonce("abc"), Some("abc".into()));
        assert!(token("abc") && !token("../abc"));
        let pem = std::fs::read_to_string(format!(
            "{}/tests/data/p256-sec1.pem",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        assert_eq!(cert_key(&pem).unwrap().0, "prime256v1");
        assert_eq!(account_key(&pem).unwrap().0, "ES256");
    }
}
