//! dns-persist-01 end to end against the newest Pebble (built from source, see
//! `PebbleBuild::Head` in tests/common): the record printed by `--persist-record`, published
//! once by RFC 2136 to a real named and, in another test, by the hook's
//! `deploy_persist_record`; the certificate issued; a forced renewal that touches no DNS but
//! the check's queries; a missing record named with the line to publish, nothing ordered.

mod common;

use std::fs;

use common::{Env, Named, Pebble, PebbleBuild, PebbleOptions, check_live_set, require, script};

fn head(opts: PebbleOptions) -> Pebble {
    Pebble::start_with(PebbleOptions {
        build: PebbleBuild::Head,
        ..opts
    })
}

/// The account URL desiccant registered, from account_id.json.
fn account_url(env: &Env) -> String {
    let id: serde_json::Value = serde_json::from_str(
        &fs::read_to_string(env.account_dir().join("account_id.json")).unwrap(),
    )
    .unwrap();
    id["url"].as_str().unwrap().to_string()
}

/// How many orders Pebble has made.
fn orders(pebble: &Pebble) -> usize {
    pebble
        .log_text()
        .lines()
        // Orders made, not requests: a newOrder refused for its nonce is sent again.
        .filter(|l| l.contains("Added order"))
        .count()
}

/// How many RFC 2136 updates named has logged.
fn updates(named: &Named) -> usize {
    fs::read_to_string(&named.log)
        .unwrap()
        .lines()
        .filter(|l| l.contains("updating zone"))
        .count()
}

/// Pebble's issuer domain name: its directory's `caaIdentities`, which it also puts in every
/// dns-persist-01 challenge.
const ISSUER: &str = "pebble.letsencrypt.org";

#[test]
fn printed_published_by_rfc_2136_to_named_issued_and_renewed_without_dns_changes() {
    let named = Named::start("example.test");
    let pebble = head(PebbleOptions {
        dns: Some(named.addr),
        ..PebbleOptions::default()
    });
    let env = Env::new(&pebble, "");
    let config = format!(
        "CHALLENGETYPE=dns-persist-01\nDNS_UPDATE_SERVER={}\nDNS_UPDATE_KEY_FILE={}\nDNS_CHECK_SERVERS={}\nDNS_UPDATE_TTL=300\n",
        named.addr,
        named.key_file.display(),
        named.addr
    );
    env.write_config(&config);
    env.domains("*.example.test example.test > star_example_test\nwww.example.test\n");
    env.run(&["--register", "--accept-terms"]).expect(0);
    let url = account_url(&env);

    // The records, one per base name; the wildcard's carries the policy it needs.
    let run = env.run(&["--persist-record"]);
    run.expect(0);
    assert_eq!(
        run.stdout(),
        format!(
            "_validation-persist.example.test. IN TXT \"{ISSUER}; accounturi={url}; policy=wildcard\"\n\
             _validation-persist.www.example.test. IN TXT \"{ISSUER}; accounturi={url}\"\n"
        ),
        "{run:?}"
    );
    // The policy options, for --domain's names.
    let run = env.run(&[
        "--persist-record",
        "-d",
        "mail.example.test",
        "--persist-wildcard",
        "--persist-until",
        "2100-01-01",
    ]);
    run.expect(0);
    assert_eq!(
        run.stdout(),
        format!(
            "_validation-persist.mail.example.test. IN TXT \"{ISSUER}; accounturi={url}; policy=wildcard; persistUntil=4102444800\"\n"
        ),
        "{run:?}"
    );

    // The first run publishes the missing records by RFC 2136, then orders.
    let run = env.run(&["--cron"]);
    run.expect(0);
    check_live_set(
        &env.cert_dir("star_example_test"),
        &["*.example.test", "example.test"],
        &pebble.root_der(),
    );
    check_live_set(
        &env.cert_dir("www.example.test"),
        &["www.example.test"],
        &pebble.root_der(),
    );
    assert_eq!(
        named.txt("_validation-persist.example.test"),
        [format!("{ISSUER}; accounturi={url}; policy=wildcard")]
    );
    assert_eq!(
        named.txt("_validation-persist.www.example.test"),
        [format!("{ISSUER}; accounturi={url}")]
    );
    assert_eq!(updates(&named), 2, "one update per certificate");
    // named was asked for the record (by the check, and by Pebble to validate).
    let log = fs::read_to_string(&named.log).unwrap();
    assert!(
        log.contains("query: _validation-persist.example.test IN TXT"),
        "{log}"
    );

    // A forced renewal of both: issued again, and named took no update; the records stay.
    let orders_before = orders(&pebble);
    let old = fs::read(env.cert_dir("www.example.test").join("cert.pem")).unwrap();
    let run = env.run(&["--cron", "--force"]);
    run.expect(0);
    assert_eq!(orders(&pebble), orders_before + 2, "{run:?}");
    assert_ne!(
        fs::read(env.cert_dir("www.example.test").join("cert.pem")).unwrap(),
        old
    );
    assert_eq!(updates(&named), 2, "the renewal changed DNS");
    assert!(!run.stderr().contains("published"), "{run:?}");
    assert_eq!(
        named.txt("_validation-persist.www.example.test"),
        [format!("{ISSUER}; accounturi={url}")]
    );
}

#[test]
fn a_missing_record_is_named_with_the_line_to_publish_and_nothing_is_ordered() {
    let named = Named::start("example.test");
    let pebble = head(PebbleOptions {
        dns: Some(named.addr),
        ..PebbleOptions::default()
    });
    let env = Env::new(&pebble, "");
    // No DNS_UPDATE_SERVER and no hook: the record is the user's to publish.
    env.write_config(&format!(
        "CHALLENGETYPE=dns-persist-01\nDNS_CHECK_SERVERS={}\n",
        named.addr
    ));
    env.domains("missing.example.test\n");
    env.run(&["--register", "--accept-terms"]).expect(0);
    let url = account_url(&env);
    let before = orders(&pebble);
    let run = env.run(&["--cron"]);
    run.expect(1);
    assert!(
        run.stderr().contains(&format!(
            "missing.example.test: name server {} has no dns-persist-01 record for this account \
             at _validation-persist.missing.example.test (it answers ",
            named.addr
        )),
        "{run:?}"
    );
    assert!(
        run.stderr().contains(&format!(
            "publish it: _validation-persist.missing.example.test. IN TXT \"{ISSUER}; accounturi={url}\""
        )),
        "{run:?}"
    );
    assert_eq!(orders(&pebble), before, "an order was made");
    assert_eq!(updates(&named), 0);
}

/// A hook that publishes dns-persist-01 records in pebble-challtestsrv on
/// `deploy_persist_record` (and ignores every other handler, as hooks do), and notes each call
/// of a challenge or record handler in `calls`.
fn persist_hook(env: &Env, pebble: &Pebble) -> (std::path::PathBuf, std::path::PathBuf) {
    require("curl", "curl");
    let path = env.path().join("persist-hook.sh");
    let calls = env.path().join("calls");
    script(
        &path,
        &format!(
            r#"case "$1" in
  deploy_persist_record)
    echo "$*" >> {calls}
    curl -s -X POST -d "{{\"host\":\"$3.\",\"value\":\"$4\"}}" {mgmt}/set-txt >/dev/null ;;
  deploy_challenge|clean_challenge) echo "$*" >> {calls} ;;
esac
exit 0"#,
            calls = calls.display(),
            mgmt = pebble.dns_management
        ),
    );
    (path, calls)
}

#[test]
fn published_through_the_hook_once_and_not_asked_again() {
    let pebble = head(PebbleOptions::default());
    let env = Env::new(&pebble, "");
    let (hook, calls) = persist_hook(&env, &pebble);
    env.write_config(&format!(
        "CHALLENGETYPE=dns-persist-01\nHOOK={}\nDNS_CHECK_SERVERS={}\nDNS_WAIT=10\n",
        hook.display(),
        pebble.dns_server
    ));
    env.domains("hook.test\n");
    env.run(&["--cron", "--accept-terms"]).expect(0);
    check_live_set(
        &env.cert_dir("hook.test"),
        &["hook.test"],
        &pebble.root_der(),
    );
    let url = account_url(&env);
    let want = format!(
        "deploy_persist_record hook.test _validation-persist.hook.test {ISSUER}; accounturi={url}\n"
    );
    assert_eq!(fs::read_to_string(&calls).unwrap(), want);

    // A forced renewal: issued again, the hook not asked to publish anything.
    let before = orders(&pebble);
    env.run(&["--cron", "--force"]).expect(0);
    assert_eq!(orders(&pebble), before + 1);
    assert_eq!(fs::read_to_string(&calls).unwrap(), want);
}
