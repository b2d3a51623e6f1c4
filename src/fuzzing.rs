//! The parsers the fuzz targets in `fuzz/` drive, each behind one function that takes what an
//! outsider controls (a config file, a CA's answer, a header) and returns plain values for the
//! target to check. Compiled only for the fuzz targets (`--cfg fuzzing`) and the unit tests;
//! nothing here is in the program, and none of it is an API.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::acme::{headers, transport, wire};
use crate::config::Config;
use crate::config_file::{self, Vars};

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

/// A config text read as a whole config file named `config`, through the loader a run uses
/// (without the environment or `CONFIG_D`). A text that names `DNS_UPDATE_KEY_FILE` is only
/// parsed: that key names a file to read, which could be any file of the machine running the
/// fuzzer (`/dev/zero`).
pub fn config(text: &str) -> Result<(), String> {
    if text.contains("DNS_UPDATE_KEY_FILE") {
        return config_assignments(text).map(drop);
    }
    Config::from_text(std::path::Path::new(CONFIG_FILE), text, &|_| None)
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
    let response = transport::Response {
        url: "https://ca.example/acme".into(),
        status: 200,
        location: None,
        retry_after: None,
        links: Vec::new(),
        content_type: transport::JSON.into(),
        body: json.to_vec(),
        date: None,
    };
    let _ = response.json::<wire::Directory>();
    let ordered = crate::acme::Ordered::new(&["example.org".into(), "*.example.org".into()]);
    let _ = ordered.order(&response);
    let _ = ordered.authorization(&response);
    let _ = serde_json::from_slice::<wire::Challenge>(json);
    let info = response.json::<wire::RenewalInfo>().ok()?;
    let start = wire::parse_rfc3339(&info.suggested_window.start)?;
    let end = wire::parse_rfc3339(&info.suggested_window.end)?;
    let point = crate::renewal::ari_point(start, end, "fuzzing.cert-id");
    let _ = crate::logging::utc(point);
    Some((start, end, point))
}

/// A problem document: how it is shown (one log line), and written back as JSON, once cleaned
/// as every problem the CA sends is.
pub fn problem(json: &[u8]) -> Option<(String, String)> {
    let mut problem = serde_json::from_slice::<crate::acme::Problem>(json).ok()?;
    problem.clean();
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
    let leaf = crate::x509::leaf(pem).ok()?;
    Some((leaf.facts.names, leaf.cert_id))
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
    crate::acme::text::check_token(token).is_ok()
}

/// The (name, type) of each record of a section of a DNS message.
pub type Records = Vec<(String, u16)>;

/// A name server's answer (a DNS message) as the resolver reads it, expecting the message's own
/// ID: its response code and the (name, type) of the records of each section (answer,
/// authority, additional).
pub fn dns_answer(msg: &[u8]) -> Result<(u8, [Records; 3]), String> {
    let id = msg.get(..2).map_or(0, |b| u16::from_be_bytes([b[0], b[1]]));
    let answer = crate::dns::parse(msg, id).map_err(|e| e.to_string())?;
    let names = |records: Vec<crate::dns::Record>| {
        records
            .into_iter()
            .map(|r| (r.name, r.rtype))
            .collect::<Vec<_>>()
    };
    Ok((
        answer.rcode,
        [
            names(answer.answers),
            names(answer.authority),
            names(answer.additional),
        ],
    ))
}

/// The name of the TSIG key of [`tsig_verify`] and [`tsig_sign_reply`] (hmac-sha256).
pub const TSIG_KEY_NAME: &str = "fuzzing-key.example";

fn tsig_key(secret: &[u8]) -> Option<crate::dns::TsigKey> {
    use base64::Engine;
    let secret = base64::engine::general_purpose::STANDARD.encode(secret);
    crate::dns::TsigKey::new(TSIG_KEY_NAME, "hmac-sha256", &secret).ok()
}

/// What an update's sender makes of the answer `msg` to its request signed with
/// `request_mac`, checked with the key [`TSIG_KEY_NAME`] of `secret` (not empty): the TSIG
/// error code the server set, or why the answer is refused.
pub fn tsig_verify(msg: &[u8], request_mac: &[u8], secret: &[u8]) -> Result<u16, String> {
    let key = tsig_key(secret).ok_or("no key")?;
    key.verify(msg, request_mac).map_err(|e| e.to_string())
}

/// `msg` signed as a name server signs its answer to a request signed with `request_mac`,
/// with the key [`TSIG_KEY_NAME`] of `secret` (not empty).
pub fn tsig_sign_reply(msg: &[u8], request_mac: &[u8], secret: &[u8]) -> Option<Vec<u8>> {
    tsig_key(secret)?.sign_reply(msg, request_mac, 1_700_000_000)
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
        // A header and one TXT record at the root, signed as a name server signs.
        let mut msg = vec![
            0x12, 0x34, 0x85, 0x80, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 16, 0, 1,
        ];
        msg.extend([0, 0, 0, 60, 0, 4, 3, b'a', b'b', b'c']);
        let (rcode, [answers, _, _]) = dns_answer(&msg).unwrap();
        assert_eq!((rcode, answers), (0, vec![(String::new(), 16)]));
        let signed = tsig_sign_reply(&msg, b"mac", b"secret").unwrap();
        assert_eq!(tsig_verify(&signed, b"mac", b"secret"), Ok(0));
        assert!(tsig_verify(&signed, b"mac", b"other").is_err());
        assert_eq!(
            dns_answer(&signed).unwrap().1[2],
            [(TSIG_KEY_NAME.into(), 250)]
        );
    }
}
