//! Chains and failures over runs: PREFERRED_CHAIN among Pebble's alternate roots, and the
//! back-off that keeps a failing name from burning the CA's limits.

mod common;

use std::fs;

use common::{Env, Pebble, PebbleOptions, check_live_set, pem_certs};
use x509_parser::prelude::*;

fn subject_cn(der: &[u8]) -> String {
    let (_, c) = X509Certificate::from_der(der).unwrap();
    c.subject()
        .iter_common_name()
        .next()
        .unwrap()
        .as_str()
        .unwrap()
        .to_string()
}

fn top_issuer(dir: &std::path::Path) -> String {
    let chain = pem_certs(&dir.join("chain.pem"));
    let (_, last) = X509Certificate::from_der(chain.last().unwrap()).unwrap();
    last.issuer()
        .iter_common_name()
        .next()
        .unwrap()
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn each_preferred_chain_is_chosen_by_its_issuer_name() {
    let pebble = Pebble::start_with(PebbleOptions {
        alternate_roots: Some(2),
        chain_length: Some(3),
        ..Default::default()
    });
    let roots: Vec<Vec<u8>> = (0..3).map(|i| pebble.root_der_of(i)).collect();
    let names: Vec<String> = roots.iter().map(|r| subject_cn(r)).collect();
    let env = Env::new(&pebble, "");
    env.domains("chain.example\n");
    env.run(&["--cron", "--accept-terms"]).expect(0);
    let dir = env.cert_dir("chain.example");
    assert_eq!(top_issuer(&dir), names[0], "the default chain");
    for (i, name) in names.iter().enumerate().skip(1) {
        env.write_config(&format!("PREFERRED_CHAIN=\"{name}\"\n"));
        // A changed preference alone renews.
        let run = env.run(&["--cron"]);
        run.expect(0);
        assert!(run.stdout().contains("chain.example: issued"), "{run:?}");
        assert!(
            run.stdout().contains("(preferred chain changed)"),
            "{run:?}"
        );
        assert_eq!(&top_issuer(&dir), name);
        check_live_set(&dir, &["chain.example"], &roots[i]);
        // And the same preference again renews nothing.
        let again = env.run(&["--cron"]);
        again.expect(0);
        assert_eq!(again.stdout(), "", "{again:?}");
    }
    // A name no chain ends at: the default chain, a warning, no failure.
    env.write_config("PREFERRED_CHAIN=\"No Such Root\"\n");
    let run = env.run(&["--cron"]);
    run.expect(0);
    assert!(
        run.stderr()
            .contains("no chain of the CA ends at an issuer named \"No Such Root\""),
        "{run:?}"
    );
    assert_eq!(top_issuer(&dir), names[0]);
}

fn orders(pebble: &Pebble) -> usize {
    fs::read_to_string(&pebble.log)
        .unwrap()
        .lines()
        .filter(|l| l.contains("POST /order-plz"))
        .count()
}

#[test]
fn a_failing_name_backs_off_across_runs() {
    let pebble = Pebble::start_with(PebbleOptions {
        refuse_hosts: vec!["failing.example".into()],
        nonce_reject: 0,
        ..Default::default()
    });
    let env = Env::new(&pebble, "");
    env.domains("failing.example\n");
    env.run(&["--cron", "--accept-terms"]).expect(1);
    let state: serde_json::Value = serde_json::from_str(
        &fs::read_to_string(env.path().join("state/failing.example.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(state["failures"], 1);
    let after_first = orders(&pebble);

    // The next run does not try: no order, exit 1, and it says until when.
    let run = env.run(&["--cron"]);
    run.expect(1);
    assert!(run.stderr().contains("not tried again before"), "{run:?}");
    assert!(run.stderr().contains("--force tries now"), "{run:?}");
    assert_eq!(orders(&pebble), after_first);
    let check = env.run(&["--check"]);
    check.expect(2);
    assert!(check.stdout().contains("backed off until"), "{check:?}");

    // Once the delay is over, it tries again, and the delay grows.
    let mut state = state;
    state["backoff_until"] = serde_json::json!(1);
    fs::write(
        env.path().join("state/failing.example.json"),
        state.to_string(),
    )
    .unwrap();
    env.run(&["--cron"]).expect(1);
    assert_eq!(orders(&pebble), after_first + 1);
    let state: serde_json::Value = serde_json::from_str(
        &fs::read_to_string(env.path().join("state/failing.example.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(state["failures"], 2);

    // --force tries at once.
    env.run(&["--cron", "--force"]).expect(1);
    assert_eq!(orders(&pebble), after_first + 2);
}

#[test]
fn a_schedule_too_slow_for_the_certificates_fails_the_run() {
    let pebble = Pebble::start();
    // Renewal 2 days before expiry is shorter than a week between runs.
    let env = Env::new(&pebble, "RENEW_DAYS=2\n");
    env.domains("slow.example\n");
    env.run(&["--cron", "--accept-terms"]).expect(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    // As a version that recorded only the last run left it.
    let week_ago = now - 7 * 86_400;
    fs::write(
        env.path().join("state/.run.json"),
        format!("{{\"last_run\": {week_ago}}}"),
    )
    .unwrap();
    let run = env.run(&["--cron"]);
    run.expect(1);
    assert!(run.stderr().contains("slow.example: runs come up to 7.0 days apart, but it is renewed 2.0 days before it expires"), "{run:?}");
    // Daily runs are fast enough: nothing said.
    let daily: Vec<u64> = (1..4).rev().map(|d| now - d * 86_400).collect();
    fs::write(
        env.path().join("state/.run.json"),
        serde_json::json!({ "runs": daily }).to_string(),
    )
    .unwrap();
    let run = env.run(&["--cron"]);
    run.expect(0);
    assert_eq!(run.stderr(), "", "{run:?}");
}

#[test]
fn issued_chains_are_kept_in_the_chain_cache() {
    let pebble = Pebble::start();
    let env = Env::new(&pebble, "");
    env.domains("cache.example\n");
    env.run(&["--cron", "--accept-terms"]).expect(0);
    let cached: Vec<_> = fs::read_dir(env.path().join("chains"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(cached.len(), 1);
    assert!(cached[0].to_string_lossy().ends_with(".chain"));
    assert_eq!(
        pem_certs(&cached[0]),
        pem_certs(&env.cert_dir("cache.example").join("chain.pem"))
    );
}
