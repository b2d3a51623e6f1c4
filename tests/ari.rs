//! Renewal information (RFC 9773) and profiles, against the fake CA of tests/common/fake_ca.rs
//! (Debian's Pebble predates both).

mod common;

use std::fs;

use common::fake_ca::FakeCa;
use common::{Env, TempDir};

fn env(ca: &FakeCa, webroot: &TempDir, extra: &str) -> Env {
    let env = Env::for_ca(&ca.directory_url, &ca.ca_bundle, webroot.path(), extra);
    env.domains("ari.example\n");
    env
}

fn state(env: &Env) -> serde_json::Value {
    serde_json::from_str(&fs::read_to_string(env.path().join("state/ari.example.json")).unwrap())
        .unwrap()
}

fn set_state(env: &Env, change: impl FnOnce(&mut serde_json::Value)) {
    let mut s = state(env);
    change(&mut s);
    fs::write(env.path().join("state/ari.example.json"), s.to_string()).unwrap();
}

/// The certID of the live certificate, computed here from its AKI and serial (RFC 9773 §4.1).
fn cert_id(env: &Env) -> String {
    use base64::Engine;
    use x509_parser::prelude::*;
    let der = common::pem_certs(&env.cert_dir("ari.example").join("cert.pem")).remove(0);
    let (_, cert) = X509Certificate::from_der(&der).unwrap();
    let aki = cert
        .extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::AuthorityKeyIdentifier(a) => {
                a.key_identifier.as_ref().map(|k| k.0.to_vec())
            }
            _ => None,
        })
        .unwrap();
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    format!("{}.{}", b64.encode(aki), b64.encode(cert.raw_serial()))
}

#[test]
fn the_cas_window_and_retry_after_decide_and_the_new_order_replaces_the_old() {
    let ca = FakeCa::start();
    let webroot = TempDir::new("webroot");
    let env = env(&ca, &webroot, "");
    env.run(&["--cron", "--accept-terms"]).expect(0);
    let ca_state: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(env.path().join("state/.ca.json")).unwrap())
            .unwrap();
    assert_eq!(ca_state["renewal_info"], true);
    assert_eq!(ca.seen().orders.len(), 1);
    assert!(
        ca.seen().orders[0].get("replaces").is_none(),
        "a first certificate replaces nothing"
    );

    // The window is a month ahead: asked once, nothing renewed, the answer kept.
    let run = env.run(&["--cron"]);
    run.expect(0);
    assert_eq!(run.stdout(), "", "{run:?}");
    assert_eq!(ca.seen().renewal_info_requests, 1);
    let ari = state(&env)["ari"].clone();
    assert_eq!(ari["cert_id"], cert_id(&env));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let next = ari["next_check"].as_i64().unwrap();
    assert!(
        (now + 21_500..=now + 21_700).contains(&next),
        "Retry-After not kept: {ari}"
    );

    // Within Retry-After: not asked again.
    env.run(&["--cron"]).expect(0);
    assert_eq!(ca.seen().renewal_info_requests, 1);

    // The CA moves the window into the past: once the answer may be asked for again, the
    // certificate is renewed with replaces, and the explanation is shown.
    ca.set(|b| {
        b.window = (-7200, -3600);
        b.explanation = Some("https://ca.example/incident".into());
    });
    set_state(&env, |s| s["ari"]["next_check"] = serde_json::json!(0));
    let old = cert_id(&env);
    let run = env.run(&["--cron"]);
    run.expect(0);
    assert!(
        run.stdout()
            .contains("ari.example: the CA asks for early renewal: https://ca.example/incident"),
        "{run:?}"
    );
    assert!(run.stdout().contains("ari.example: issued"), "{run:?}");
    assert!(
        run.stdout()
            .contains("the CA's renewal information says so"),
        "{run:?}"
    );
    let orders = ca.seen().orders;
    assert_eq!(orders.last().unwrap()["replaces"], old);
    assert_ne!(cert_id(&env), old);
    assert!(
        state(&env).get("ari").is_none(),
        "the old answer was kept for the new certificate"
    );
}

#[test]
fn a_refused_replaces_is_ordered_again_without() {
    let ca = FakeCa::start();
    let webroot = TempDir::new("webroot");
    let env = env(&ca, &webroot, "");
    env.run(&["--cron", "--accept-terms"]).expect(0);
    ca.set(|b| b.refuse_replaces = true);
    let run = env.run(&["--cron", "--force"]);
    run.expect(0);
    let orders = ca.seen().orders;
    assert_eq!(orders.len(), 3);
    assert!(orders[1].get("replaces").is_some());
    assert!(orders[2].get("replaces").is_none());
}

#[test]
fn ari_no_asks_nothing_and_a_ca_without_ari_gets_no_replaces() {
    let ca = FakeCa::start();
    let webroot = TempDir::new("webroot");
    let env = env(&ca, &webroot, "ARI=no\n");
    env.run(&["--cron", "--accept-terms"]).expect(0);
    env.run(&["--cron"]).expect(0);
    assert_eq!(ca.seen().renewal_info_requests, 0);
    // The same CA counts the requests of a run that does ask.
    env.write_config("");
    env.run(&["--cron"]).expect(0);
    assert_eq!(ca.seen().renewal_info_requests, 1);

    let plain = FakeCa::start();
    plain.set(|b| b.ari = false);
    let env = Env::for_ca(&plain.directory_url, &plain.ca_bundle, webroot.path(), "");
    env.domains("ari.example\n");
    env.run(&["--cron", "--accept-terms"]).expect(0);
    env.run(&["--cron", "--force"]).expect(0);
    assert!(
        plain
            .seen()
            .orders
            .iter()
            .all(|o| o.get("replaces").is_none())
    );
    assert_eq!(plain.seen().renewal_info_requests, 0);
    // Not for want of counting: a request to where the other CA has its renewal information
    // is counted.
    let url = plain.directory_url.replace("/dir", "/renewal-info/x");
    let _ = common::https_agent(&plain.ca_bundle).get(&url).call();
    assert_eq!(plain.seen().renewal_info_requests, 1);
}

#[test]
fn profiles_offered_unknown_and_changed() {
    let ca = FakeCa::start();
    let webroot = TempDir::new("webroot");
    let env = env(&ca, &webroot, "ACME_PROFILE=shortlived\n");
    env.run(&["--cron", "--accept-terms"]).expect(0);
    assert_eq!(ca.seen().orders[0]["profile"], "shortlived");
    let check = env.run(&["--check", "--json"]);
    check.expect(0);
    let report: serde_json::Value = serde_json::from_str(&check.stdout()).unwrap();
    assert_eq!(report["certificates"][0]["profile"], "shortlived");

    // A profile the CA does not offer: the certificate fails, naming the ones it does.
    env.write_config("ACME_PROFILE=tlsserver\n");
    let run = env.run(&["--cron"]);
    run.expect(1);
    assert!(
        run.stderr()
            .contains("ACME_PROFILE \"tlsserver\" is not offered"),
        "{run:?}"
    );
    assert!(
        run.stderr().contains("it offers classic, shortlived"),
        "{run:?}"
    );

    // Another offered profile renews at once.
    env.write_config("ACME_PROFILE=classic\n");
    let run = env.run(&["--cron"]);
    run.expect(0);
    assert!(run.stdout().contains("(profile changed)"), "{run:?}");
    assert_eq!(ca.seen().orders.last().unwrap()["profile"], "classic");
}
