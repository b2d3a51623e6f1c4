//! A CA without renewal information (RFC 9773): Debian's Pebble, behind the recording proxy of
//! tests/common/proxy.rs, which shows what each order carried. Renewal information and
//! profiles as a CA offers them are tested against the newest Pebble in tests/pebble_head.rs.

mod common;

use base64::Engine;
use common::proxy::Proxy;
use common::{Env, Pebble};

/// The payload of a JWS request body, as JSON.
fn payload(body: &[u8]) -> serde_json::Value {
    let jws: serde_json::Value = serde_json::from_slice(body).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(jws["payload"].as_str().unwrap())
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

#[test]
fn a_ca_without_ari_is_asked_nothing_and_gets_no_replaces() {
    let pebble = Pebble::start_without_refused_nonces();
    let proxy = Proxy::start(&pebble.directory_url, pebble.dir.path());
    let env = Env::for_ca(&proxy.directory_url, &pebble.ca_bundle, &pebble.webroot, "");
    env.domains("ari.example\n");
    env.run(&["--cron", "--accept-terms"]).expect(0);
    env.run(&["--cron"]).expect(0);
    env.run(&["--cron", "--force"]).expect(0);
    let orders: Vec<serde_json::Value> = proxy
        .seen()
        .iter()
        .filter(|s| s.method == "POST" && s.path.starts_with("/order-plz"))
        .map(|s| payload(&s.body))
        .collect();
    assert_eq!(orders.len(), 2, "{}", proxy.transcript());
    // Not for want of reading the orders: both name what they are for.
    assert!(
        orders
            .iter()
            .all(|o| o["identifiers"][0]["value"] == "ari.example")
    );
    assert!(
        orders.iter().all(|o| o.get("replaces").is_none()),
        "{orders:?}"
    );
    assert!(
        proxy.seen().iter().all(|s| !s.path.contains("enewal")),
        "{}",
        proxy.transcript()
    );
}
