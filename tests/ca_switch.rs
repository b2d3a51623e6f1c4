//! Staging to production: after `CA` changes, every certificate the other CA issued is
//! renewed from the configured one, with or without a record of its CA in `state/`, and
//! `--check` shows it before the run. Two real Pebbles, each with its own root: the first
//! plays the staging CA.

mod common;

use std::fs;

use serde_json::Value;

use common::{Env, Pebble, PebbleOptions, check_live_set};

/// `(name, state, decision)` of every certificate of a `--check --json` report.
fn checked(env: &Env) -> (i32, Vec<(String, String, String)>) {
    let run = env.run(&["--check", "--json"]);
    let report: Value = serde_json::from_str(&run.stdout())
        .unwrap_or_else(|e| panic!("no JSON report ({e}): {run:?}"));
    let rows = report["certificates"]
        .as_array()
        .unwrap_or_else(|| panic!("no certificates: {run:?}"))
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_string(),
                c["state"].as_str().unwrap().to_string(),
                c["decision"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    (run.code(), rows)
}

/// Asserts that `--check --json` exits `code` with `rows` as `(name, state, decision)`.
fn expect_checked(env: &Env, code: i32, rows: &[(&str, &str, &str)]) {
    let want: Vec<(String, String, String)> = rows
        .iter()
        .map(|(n, s, d)| (n.to_string(), s.to_string(), d.to_string()))
        .collect();
    assert_eq!(checked(env), (code, want));
}

/// Points `env` at `ca`, as a user edits `CA` (and here `CA_BUNDLE`, since each Pebble has
/// its own TLS root).
fn switch_to(env: &mut Env, ca: &Pebble) {
    env.directory_url = ca.directory_url.clone();
    env.ca_bundle = ca.ca_bundle.clone();
    env.webroot = ca.webroot.clone();
    env.write_config("");
}

#[test]
fn a_switch_of_ca_reissues_every_certificate_and_check_shows_it_first() {
    let staging = Pebble::start_without_refused_nonces();
    // The production CA cannot validate failing.example: its renewal fails after the switch.
    let production = Pebble::start_with(PebbleOptions {
        nonce_reject: 0,
        refuse_hosts: vec!["failing.example".into()],
        ..PebbleOptions::default()
    });
    let mut env = Env::new(&staging, "");
    env.domains(
        "recorded.example > recorded\nunrecorded.example > unrecorded\n\
         failing.example > failing\n",
    );
    env.run(&["--cron", "--accept-terms"]).expect(0);
    // Certificates issued by dehydrated or an older version have no record of their CA.
    for name in ["unrecorded", "failing"] {
        fs::remove_file(env.path().join(format!("state/{name}.json"))).unwrap();
    }
    let (code, rows) = checked(&env);
    assert_eq!(code, 0, "{rows:?}");

    switch_to(&mut env, &production);
    // Before the run, --check says so: every certificate is CRITICAL, issued by another CA.
    let changed = |name| (name, "CRITICAL", "ca-changed");
    expect_checked(
        &env,
        2,
        &[
            changed("recorded"),
            changed("unrecorded"),
            changed("failing"),
        ],
    );
    let check = env.run(&["--check"]);
    assert!(
        check.stdout().contains(&format!(
            "issued by another CA ({}) than the configured one",
            staging.directory_url
        )),
        "{check:?}"
    );

    // The run registers with the new CA and reissues from it; failing.example fails.
    assert!(!env.account_dir().exists());
    let run = env.run(&["--cron", "--accept-terms"]);
    run.expect(1);
    assert!(env.account_dir().join("account_key.pem").exists());
    for (dir, name) in [
        ("recorded", "recorded.example"),
        ("unrecorded", "unrecorded.example"),
    ] {
        check_live_set(&env.cert_dir(dir), &[name], &production.root_der());
    }
    assert!(run.stderr().contains("failing: "), "{run:?}");

    // The certificate whose renewal failed is still known to be the other CA's, though the
    // new CA's account now exists.
    let kept = |name| (name, "OK", "keep");
    expect_checked(
        &env,
        2,
        &[kept("recorded"), kept("unrecorded"), changed("failing")],
    );
}

#[test]
fn a_certbot_staging_certificate_is_renewed_from_the_configured_ca() {
    let staging = Pebble::start_without_refused_nonces();
    let production = Pebble::start_without_refused_nonces();
    // certbot --staging issued it: its renewal config names the staging server.
    let issuer = Env::new(&staging, "");
    issuer.domains("site.example > site.example\n");
    issuer.run(&["--cron", "--accept-terms"]).expect(0);
    let le = issuer.path().join("letsencrypt");
    let live = le.join("live/site.example");
    fs::create_dir_all(&live).unwrap();
    fs::create_dir_all(le.join("renewal")).unwrap();
    for file in ["cert.pem", "chain.pem", "privkey.pem", "fullchain.pem"] {
        fs::copy(issuer.cert_dir("site.example").join(file), live.join(file)).unwrap();
    }
    fs::write(
        le.join("renewal/site.example.conf"),
        format!(
            "version = 2.1.0\narchive_dir = {le}/archive/site.example\ncert = {live}/cert.pem\n\
             privkey = {live}/privkey.pem\nchain = {live}/chain.pem\n\
             fullchain = {live}/fullchain.pem\n\n[renewalparams]\naccount = 0123\n\
             authenticator = webroot\nkey_type = ecdsa\nelliptic_curve = secp384r1\n\
             server = {server}\n",
            le = le.display(),
            live = live.display(),
            server = staging.directory_url
        ),
    )
    .unwrap();

    let env = Env::new(&production, "");
    env.run(&["--import-certbot", le.to_str().unwrap()])
        .expect(0);
    expect_checked(&env, 2, &[("site.example", "CRITICAL", "ca-changed")]);
    env.run(&["--cron", "--accept-terms"]).expect(0);
    check_live_set(
        &env.cert_dir("site.example"),
        &["site.example"],
        &production.root_der(),
    );
    expect_checked(&env, 0, &[("site.example", "OK", "keep")]);
}
