//! `--check` and `--cron` make one renewal decision: for every reason a certificate can be
//! renewed or held back for, both `--json` reports name the same `decision` and `held_back`.
//! `--cron` runs with the CA stopped, so that it decides and then only fails to reach the CA:
//! what it decided is in its report, and nothing on disk is renewed under the test's feet.

mod common;

use std::fs;

use base64::Engine;
use serde_json::Value;
use x509_parser::prelude::*;

use common::{Env, Pebble, Run};

/// Each certificate and the one reason the test gives it to be renewed (or kept).
const CASES: &[(&str, &str, Option<&str>)] = &[
    ("keep", "keep", None),
    ("missing", "missing", None),
    ("names", "names-changed", None),
    ("key", "key-changed", None),
    ("profile", "profile-changed", None),
    ("chain", "chain-changed", None),
    ("ca", "ca-changed", None),
    ("renewdays", "due", None),
    ("ari", "ari", None),
    ("backoff", "due", Some("backed-off")),
    ("ratelimit", "due", Some("rate-limited")),
];

fn line(name: &str) -> String {
    match name {
        "names" => "names.example www.names.example > names".into(),
        other => format!("{other}.example > {other}"),
    }
}

/// `(decision, held_back)` of every certificate of a `--json` report, by name.
fn decisions(run: &Run) -> Vec<(String, String, Option<String>)> {
    let report: Value = serde_json::from_str(&run.stdout())
        .unwrap_or_else(|e| panic!("no JSON report ({e}): {run:?}"));
    report["certificates"]
        .as_array()
        .unwrap_or_else(|| panic!("no certificates in the report: {run:?}"))
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_string(),
                c["decision"]
                    .as_str()
                    .unwrap_or_else(|| panic!("no decision for {c}: {run:?}"))
                    .to_string(),
                c["held_back"].as_str().map(str::to_string),
            )
        })
        .collect()
}

/// The RFC 9773 certID of a live certificate, worked out here from the certificate itself.
fn cert_id(env: &Env, name: &str) -> String {
    let pem = fs::read(env.cert_dir(name).join("cert.pem")).unwrap();
    let (_, pem) = x509_parser::pem::parse_x509_pem(&pem).unwrap();
    let cert = pem.parse_x509().unwrap();
    let aki = cert
        .extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::AuthorityKeyIdentifier(aki) => aki.key_identifier.clone(),
            _ => None,
        })
        .expect("Pebble's certificates have an Authority Key Identifier");
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    format!("{}.{}", b64(aki.0), b64(cert.raw_serial()))
}

/// Changes what `state/<name>.json` records, as earlier runs would have left it.
fn record(env: &Env, name: &str, change: impl FnOnce(&mut serde_json::Map<String, Value>)) {
    let path = env.path().join("state").join(format!("{name}.json"));
    let mut state: Value = fs::read(&path)
        .map(|b| serde_json::from_slice(&b).unwrap())
        .unwrap_or_else(|_| Value::Object(Default::default()));
    change(state.as_object_mut().unwrap());
    fs::write(&path, serde_json::to_vec_pretty(&state).unwrap()).unwrap();
}

/// Runs `--check --json` and `--cron --json` (at `offset` from now when given) and returns
/// both reports' decisions, after checking they agree.
fn both(env: &Env, offset: Option<&str>, extra: &[&str]) -> Vec<(String, String, Option<String>)> {
    let run = |args: &[&str]| {
        let args: Vec<&str> = args.iter().chain(extra).copied().collect();
        match offset {
            Some(offset) => env.run_at(offset, &args),
            None => env.run(&args),
        }
    };
    let check = run(&["--check", "--json"]);
    let cron = run(&["--cron", "--json"]);
    assert_ne!(cron.code(), 0, "the CA is stopped: {cron:?}");
    let (c, r) = (decisions(&check), decisions(&cron));
    assert_eq!(c, r, "--check and --cron disagree:\n{check:?}\n{cron:?}");
    c
}

#[test]
fn check_and_cron_agree_on_every_reason() {
    let mut pebble = Pebble::start_without_refused_nonces();
    let env = Env::new(&pebble, "");
    let issued: Vec<String> = CASES
        .iter()
        .filter(|(name, _, _)| *name != "missing")
        .map(|(name, _, _)| match *name {
            "names" => "names.example > names".to_string(),
            other => line(other),
        })
        .collect();
    env.domains(&(issued.join("\n") + "\n"));
    env.run(&["--cron", "--accept-terms"]).expect(0);

    // What each certificate is given to be renewed for.
    let all: Vec<String> = CASES.iter().map(|(name, _, _)| line(name)).collect();
    env.domains(&(all.join("\n") + "\n"));
    let own = |name: &str, config: &str| {
        fs::write(env.cert_dir(name).join("config"), config).unwrap();
    };
    own("key", "KEY_ALGO=rsa\n");
    own("profile", "ACME_PROFILE=shortlived\n");
    own("chain", "PREFERRED_CHAIN=\"Some Other Root\"\n");
    own("renewdays", "RENEW_DAYS=100000\n");
    own("backoff", "RENEW_DAYS=100000\n");
    own("ratelimit", "RENEW_DAYS=100000\n");
    record(&env, "ca", |s| {
        s.insert("ca".into(), "https://staging.example/directory".into());
    });
    let id = cert_id(&env, "ari");
    record(&env, "ari", |s| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        s.insert(
            "ari".into(),
            serde_json::json!({
                "cert_id": id,
                "start": now - 7200,
                "end": now - 3600,
                "next_check": now + 86_400,
            }),
        );
    });
    // The CA offers renewal information (Debian's Pebble does not: a window is only obeyed
    // from a CA that does).
    let ca = env.path().join("state/.ca.json");
    let mut known: Value = serde_json::from_slice(&fs::read(&ca).unwrap()).unwrap();
    assert_eq!(known["directory"], env.directory_url.as_str(), "{known}");
    known["renewal_info"] = true.into();
    fs::write(&ca, serde_json::to_vec(&known).unwrap()).unwrap();
    let far = 4_000_000_000i64;
    record(&env, "backoff", |s| {
        s.insert("failures".into(), 3.into());
        s.insert("backoff_until".into(), far.into());
    });
    record(&env, "ratelimit", |s| {
        s.insert("rate_limited_until".into(), far.into());
    });
    pebble.stop();

    let got = both(&env, None, &[]);
    let expected: Vec<(String, String, Option<String>)> = CASES
        .iter()
        .map(|(name, decision, held)| {
            (
                name.to_string(),
                decision.to_string(),
                held.map(str::to_string),
            )
        })
        .collect();
    assert_eq!(got, expected);

    // By the certificate's lifetime (Pebble's last five years): due after two thirds of it,
    // expired after all of it. The certificates without a reason of their own show it.
    for (offset, decision) in [("+1400d", "due"), ("+2000d", "expired")] {
        let got = both(&env, Some(offset), &[]);
        let keep = got.iter().find(|(name, _, _)| name == "keep").unwrap();
        assert_eq!(keep.1, decision, "at {offset}: {got:?}");
    }

    // --force: every certificate that exists is forced, and nothing is held back. A check
    // judges the certificates, not what --force would do: it refuses --force (UNKNOWN).
    let refused = env.run(&["--check", "--json", "--force"]);
    refused.expect(3);
    let cron = env.run(&["--cron", "--json", "--force"]);
    assert_ne!(cron.code(), 0, "the CA is stopped: {cron:?}");
    let got = decisions(&cron);
    for (name, decision, held) in &got {
        let want = match name.as_str() {
            "missing" => "missing",
            _ => "forced",
        };
        assert_eq!((decision.as_str(), held), (want, &None), "{name}: {got:?}");
    }
}
