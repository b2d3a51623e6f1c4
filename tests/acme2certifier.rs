//! The real binary against acme2certifier, a second real ACME server (from the Python package
//! index, see tests/common/a2c.rs): registration, an http-01 issuance, a forced renewal,
//! revocation, and a failed challenge on a CA that leaves the order `pending`.

mod common;

use std::fs;

use common::a2c::{A2cOptions, Acme2certifier, serial_hex};
use common::{Env, check_live_set, pem_certs};
use x509_parser::prelude::*;

fn env(a2c: &Acme2certifier, extra: &str) -> Env {
    Env::for_ca(&a2c.directory_url, &a2c.ca_bundle, &a2c.webroot, extra)
}

fn serial(cert_der: &[u8]) -> String {
    let (_, cert) = X509Certificate::from_der(cert_der).unwrap();
    serial_hex(cert.raw_serial())
}

#[test]
fn registration_keeps_the_account_the_ca_made() {
    let a2c = Acme2certifier::start();
    let env = env(&a2c, "");
    let run = env.run(&["--register", "--accept-terms"]);
    run.expect(0);
    assert!(
        run.stdout().contains("account: registered as https://"),
        "{run:?}"
    );
    let id: serde_json::Value = serde_json::from_str(
        &fs::read_to_string(env.account_dir().join("account_id.json")).unwrap(),
    )
    .unwrap();
    let url = id["url"].as_str().unwrap_or_default();
    assert!(
        url.starts_with(&format!("https://{}:", a2c.ip)) && url.contains("/acme/acct/"),
        "account_id.json: {id}"
    );
    assert_eq!(
        common::mode(&env.account_dir().join("account_key.pem")),
        0o600
    );
    // A second registration finds the same account.
    let again = env.run(&["--register"]);
    again.expect(0);
    let id2: serde_json::Value = serde_json::from_str(
        &fs::read_to_string(env.account_dir().join("account_id.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(id2["url"], id["url"], "{again:?}");
}

#[test]
fn http01_issuance_then_a_forced_renewal_then_revocation() {
    let a2c = Acme2certifier::start();
    let env = env(&a2c, "");
    env.domains("a2c.example www.a2c.example\n");
    let run = env.run(&["--cron", "--accept-terms"]);
    run.expect(0);
    assert!(run.stdout().contains("a2c.example: issued"), "{run:?}");
    let dir = env.cert_dir("a2c.example");
    let first = check_live_set(&dir, &["a2c.example", "www.a2c.example"], &a2c.root_der);
    // The CA fetched both tokens from the webroot, and they are gone again.
    let served = a2c.served.lock().unwrap().clone();
    assert_eq!(
        served
            .iter()
            .filter(|p| p.starts_with("/.well-known/acme-challenge/"))
            .count(),
        2,
        "{served:?}"
    );
    assert_eq!(
        fs::read_dir(&a2c.webroot).unwrap().count(),
        0,
        "tokens left"
    );

    // Nothing to do the next day.
    let quiet = env.run(&["--cron"]);
    quiet.expect(0);
    assert_eq!(quiet.stdout(), "", "{quiet:?}");

    let forced = env.run(&["--cron", "--force"]);
    forced.expect(0);
    assert!(
        forced.stdout().contains("a2c.example: issued"),
        "{forced:?}"
    );
    assert!(forced.stdout().contains("(forced)"), "{forced:?}");
    let second = check_live_set(&dir, &["a2c.example", "www.a2c.example"], &a2c.root_der);
    assert_ne!(first, second, "the forced renewal left the old set live");
    let old = pem_certs(&dir.join(format!("cert-{first}.pem"))).remove(0);
    let new = pem_certs(&dir.join("cert.pem")).remove(0);
    assert_ne!(serial(&old), serial(&new));

    assert!(a2c.revoked_serials().is_empty());
    let revoke = env.run(&["--revoke", dir.join("cert.pem").to_str().unwrap()]);
    revoke.expect(0);
    assert_eq!(a2c.revoked_serials(), [serial(&new)], "{revoke:?}");
    assert!(dir.join(format!("cert-{second}.pem-revoked")).exists());
}

#[test]
fn a_failed_challenge_on_an_order_left_pending_ends_at_once_with_the_cas_words() {
    let a2c = Acme2certifier::start_with(A2cOptions {
        refuse_hosts: vec!["bad.a2c.example".into()],
    });
    let env = env(&a2c, "");
    let (hook, record) = (env.path().join("hook.sh"), env.path().join("calls"));
    common::script(
        &hook,
        &format!(
            "[ \"$1\" = invalid_challenge ] && printf '%s\\n' \"$3\" >> {}\nexit 0",
            record.display()
        ),
    );
    // Without the look at the authorizations, this run would wait out its order deadline
    // (five minutes); RUN_TIMEOUT stops it after 10 s instead, which exits 75, not 1.
    env.write_config(&format!("HOOK={}\nRUN_TIMEOUT=10\n", hook.display()));
    env.domains("bad.a2c.example\n");
    let run = env.run(&["--cron", "--accept-terms"]);
    run.expect(1);
    let err = run.stderr();
    assert!(
        err.contains(
            "bad.a2c.example: http-01 challenge invalid: HTTP request failed: 404 \
             (urn:ietf:params:acme:error:connection)"
        ),
        "{run:?}"
    );
    assert!(!env.cert_dir("bad.a2c.example").join("cert.pem").exists());
    // invalid_challenge got the challenge with the CA's problem.
    let calls = fs::read_to_string(&record).unwrap_or_default();
    let challenge: serde_json::Value = serde_json::from_str(calls.trim()).unwrap();
    assert_eq!(challenge["type"], "http-01");
    assert_eq!(
        challenge["error"]["type"],
        "urn:ietf:params:acme:error:connection"
    );
    // state/ holds the back-off and the CA's words, and the next run does not order again.
    let state: serde_json::Value = serde_json::from_str(
        &fs::read_to_string(env.path().join("state/bad.a2c.example.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(state["failures"], 1, "{state}");
    assert!(state["backoff_until"].as_i64().unwrap_or(0) > 0, "{state}");
    assert_eq!(state["last_attempt"]["step"], "validation", "{state}");
    assert_eq!(
        state["last_attempt"]["problem_type"],
        "urn:ietf:params:acme:error:connection"
    );
    assert_eq!(state["last_attempt"]["detail"], "HTTP request failed: 404");
    let next = env.run(&["--cron"]);
    next.expect(1);
    assert!(next.stderr().contains("not tried again before"), "{next:?}");
}
