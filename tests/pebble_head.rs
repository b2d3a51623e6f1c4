//! End to end against the newest Pebble (built from source, see `PebbleBuild::Head` in
//! tests/common): renewal information with `replaces` as Pebble checks it, certificate
//! profiles, IP identifiers, and dns-account-01 through a hook and through RFC 2136 updates to a
//! real named.

mod common;

use std::fs;
use std::path::Path;
use std::process::Command;

use common::{
    Env, Named, Pebble, PebbleBuild, PebbleOptions, SHORTLIVED, check_live_set, pem_certs, require,
    script,
};
use x509_parser::prelude::*;

fn head(opts: PebbleOptions) -> Pebble {
    Pebble::start_with(PebbleOptions {
        build: PebbleBuild::Head,
        ..opts
    })
}

fn state(env: &Env, name: &str) -> serde_json::Value {
    let path = env.path().join(format!("state/{name}.json"));
    serde_json::from_str(&fs::read_to_string(path).unwrap()).unwrap()
}

fn set_state(env: &Env, name: &str, change: impl FnOnce(&mut serde_json::Value)) {
    let mut s = state(env, name);
    change(&mut s);
    fs::write(env.path().join(format!("state/{name}.json")), s.to_string()).unwrap();
}

/// How many renewal information requests Pebble has logged.
fn renewal_info_requests(pebble: &Pebble) -> usize {
    pebble
        .log_text()
        .lines()
        .filter(|l| l.contains("GET /draft-ietf-acme-ari-03/renewalInfo/"))
        .filter(|l| l.ends_with("-> calling handler()"))
        .count()
}

/// The lines where Pebble accepted an order as the replacement of an earlier one.
fn replacements(pebble: &Pebble) -> usize {
    pebble
        .log_text()
        .lines()
        .filter(|l| l.contains("ARI: order") && l.contains("is a replacement of"))
        .count()
}

/// The live certificate of `name`.
fn leaf(env: &Env, name: &str) -> Vec<u8> {
    pem_certs(&env.cert_dir(name).join("cert.pem")).remove(0)
}

fn serial(der: &[u8]) -> String {
    let (_, cert) = X509Certificate::from_der(der).unwrap();
    cert.raw_serial_as_string()
}

/// The certificate's lifetime in seconds, notAfter minus notBefore.
fn lifetime(der: &[u8]) -> i64 {
    let (_, cert) = X509Certificate::from_der(der).unwrap();
    cert.validity().not_after.timestamp() - cert.validity().not_before.timestamp()
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[test]
fn renewal_information_decides_and_the_renewal_replaces_the_old_certificate() {
    let pebble = head(PebbleOptions::default());
    let env = Env::new(&pebble, "");
    env.domains("ari.example\n");
    env.run(&["--cron", "--accept-terms"]).expect(0);
    let ca_state: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(env.path().join("state/.ca.json")).unwrap())
            .unwrap();
    assert_eq!(ca_state["renewal_info"], true);
    assert_eq!(
        replacements(&pebble),
        0,
        "a first certificate replaces nothing"
    );

    // Pebble's window is two thirds into 90 days: asked once, nothing renewed, its Retry-After
    // (6 hours) kept.
    let asked = renewal_info_requests(&pebble);
    let run = env.run(&["--cron"]);
    run.expect(0);
    assert_eq!(run.stdout(), "", "{run:?}");
    assert_eq!(renewal_info_requests(&pebble), asked + 1);
    let next = state(&env, "ari.example")["ari"]["next_check"]
        .as_i64()
        .unwrap();
    assert!(
        (now() + 21_500..=now() + 21_700).contains(&next),
        "Retry-After not kept: {next}"
    );
    // Within Retry-After: not asked again.
    env.run(&["--cron"]).expect(0);
    assert_eq!(renewal_info_requests(&pebble), asked + 1);

    // Pebble is told to put the window in the past, with an explanation: once the answer may
    // be asked for again, the certificate is renewed, and Pebble takes the new order as the
    // replacement of the old certificate.
    let old = leaf(&env, "ari.example");
    let t = |offset: i64| {
        ::time::OffsetDateTime::from_unix_timestamp(now() + offset)
            .unwrap()
            .format(&::time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    pebble.set_renewal_info(
        &fs::read_to_string(env.cert_dir("ari.example").join("cert.pem")).unwrap(),
        &serde_json::json!({
            "suggestedWindow": { "start": t(-7200), "end": t(-3600) },
            "explanationURL": "https://ca.example/incident"
        }),
    );
    set_state(&env, "ari.example", |s| {
        s["ari"]["next_check"] = serde_json::json!(0)
    });
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
    assert_eq!(replacements(&pebble), 1, "{}", pebble.log_text());
    assert_ne!(serial(&leaf(&env, "ari.example")), serial(&old));
    assert!(
        state(&env, "ari.example").get("ari").is_none(),
        "the old answer was kept for the new certificate"
    );
}

/// Four certificates due, room for two orders under `ORDER_LIMIT`: the one the CA asked to renew
/// early (last in domains.txt) is ordered first, with `replaces`, which the CA exempts from its
/// limits; then the first two of the others; the fourth is left for the next run, which exits 75.
#[test]
fn under_the_order_limit_an_ari_renewal_is_ordered_first() {
    let pebble = head(PebbleOptions::default());
    let env = Env::new(&pebble, "ORDER_LIMIT=none\n");
    let names = [
        "lim1.example",
        "lim2.example",
        "lim3.example",
        "lim4.example",
    ];
    env.domains(&(names.join("\n") + "\n"));
    env.run(&["--cron", "--accept-terms"]).expect(0);
    let before: Vec<String> = names.iter().map(|n| serial(&leaf(&env, n))).collect();

    // The first three are due for new names, the fourth because the CA says so.
    env.write_config("ORDER_LIMIT=2/3h\n");
    env.domains(
        "lim1.example www.lim1.example\nlim2.example www.lim2.example\n\
         lim3.example www.lim3.example\nlim4.example\n",
    );
    let t = |offset: i64| {
        ::time::OffsetDateTime::from_unix_timestamp(now() + offset)
            .unwrap()
            .format(&::time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    pebble.set_renewal_info(
        &fs::read_to_string(env.cert_dir("lim4.example").join("cert.pem")).unwrap(),
        &serde_json::json!({ "suggestedWindow": { "start": t(-7200), "end": t(-3600) } }),
    );
    let run = env.run(&["--cron"]);
    run.expect(75);
    assert!(
        run.stderr().contains(
            "1 certificate is left for the next run: ORDER_LIMIT allows 2 new orders in 3 h and \
             0 were sent in that time; 3 ordered in this run"
        ),
        "{run:?}"
    );
    for (name, renewed) in names.iter().zip([true, true, false, true]) {
        assert_eq!(
            run.stdout().contains(&format!("{name}: issued")),
            renewed,
            "{name}: {run:?}"
        );
    }
    let after: Vec<String> = names.iter().map(|n| serial(&leaf(&env, n))).collect();
    assert_eq!(after[2], before[2], "lim3.example was renewed");
    // Every renewal names the certificate it replaces.
    assert_eq!(replacements(&pebble), 3, "{}", pebble.log_text());
}

#[test]
fn a_replaces_pebble_refuses_is_ordered_again_without() {
    let pebble = head(PebbleOptions {
        nonce_reject: 0,
        ..PebbleOptions::default()
    });
    let env = Env::new(&pebble, "");
    env.domains("ari.example\n");
    env.run(&["--cron", "--accept-terms"]).expect(0);
    // A backup of the first certificate's folder, as an admin might restore it.
    let backup = env.path().join("backup");
    let cp = |from: &Path, to: &Path| {
        let out = Command::new("cp")
            .arg("-a")
            .arg(from)
            .arg(to)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    };
    cp(&env.cert_dir("ari.example"), &backup);
    env.run(&["--cron", "--force"]).expect(0);
    assert_eq!(replacements(&pebble), 1);

    // The first certificate is live again, but Pebble has its replacement already: it refuses
    // `replaces` (alreadyReplaced), and the order goes through without.
    fs::remove_dir_all(env.cert_dir("ari.example")).unwrap();
    cp(&backup, &env.cert_dir("ari.example"));
    let orders = |p: &Pebble| {
        p.requests_after(0)
            .iter()
            .filter(|r| *r == "POST /order-plz")
            .count()
    };
    let before = orders(&pebble);
    let run = env.run(&["--cron", "--force", "--verbose"]);
    run.expect(0);
    assert!(run.stdout().contains("ari.example: issued"), "{run:?}");
    assert_eq!(orders(&pebble), before + 2, "{run:?}");
    assert_eq!(replacements(&pebble), 1);
    assert!(
        run.stderr()
            .contains("ari.example: the CA refused replaces (")
            && run.stderr().contains("already has a replacement order")
            && run.stderr().contains("ordering without"),
        "{run:?}"
    );
}

#[test]
fn ari_no_asks_pebble_nothing() {
    let pebble = head(PebbleOptions::default());
    let env = Env::new(&pebble, "ARI=no\n");
    env.domains("ari.example\n");
    env.run(&["--cron", "--accept-terms"]).expect(0);
    env.run(&["--cron"]).expect(0);
    env.run(&["--cron", "--force"]).expect(0);
    assert_eq!(renewal_info_requests(&pebble), 0);
    // The same Pebble counts the requests of a run that does ask.
    env.write_config("");
    env.run(&["--cron"]).expect(0);
    assert_eq!(renewal_info_requests(&pebble), 1);
}

#[test]
fn the_shortlived_profile_lasts_six_days_and_is_renewed_at_half() {
    let pebble = head(PebbleOptions::default());
    // Without renewal information, whose window (Pebble's: two thirds into the lifetime, give
    // or take a day) would decide instead.
    let env = Env::new(&pebble, "ACME_PROFILE=shortlived\nARI=no\n");
    env.domains("short.example\n");
    env.run(&["--cron", "--accept-terms"]).expect(0);
    let der = leaf(&env, "short.example");
    let secs = SHORTLIVED.as_secs() as i64;
    assert!(
        (secs - 1..=secs).contains(&lifetime(&der)),
        "lifetime {} s",
        lifetime(&der)
    );
    let check = env.run(&["--check", "--json"]);
    check.expect(0);
    let report: serde_json::Value = serde_json::from_str(&check.stdout()).unwrap();
    assert_eq!(report["certificates"][0]["profile"], "shortlived");

    // Renewed at half its lifetime (three days), not at a third (two): not due after two and
    // a half days, due (WARNING) after three and a half, by the decision --check shares with
    // --cron. (--cron itself cannot run in the future: it checks its clock against Pebble's.)
    env.run_at("+60h", &["--check"]).expect(0);
    let check = env.run_at("+84h", &["--check"]);
    check.expect(1);
    assert!(check.stdout().starts_with("WARNING"), "{check:?}");

    // A profile Pebble does not offer: the certificate fails, naming the ones it does.
    env.write_config("ACME_PROFILE=tlsserver\nARI=no\n");
    let run = env.run(&["--cron", "--force"]);
    run.expect(1);
    assert!(
        run.stderr()
            .contains("ACME_PROFILE \"tlsserver\" is not offered"),
        "{run:?}"
    );
    assert!(
        run.stderr().contains("it offers default, shortlived"),
        "{run:?}"
    );

    // Another offered profile renews at once, with that profile's lifetime (90 days).
    env.write_config("ACME_PROFILE=default\nARI=no\n");
    let run = env.run(&["--cron"]);
    run.expect(0);
    assert!(run.stdout().contains("(profile changed)"), "{run:?}");
    let days = lifetime(&leaf(&env, "short.example")) / 86_400;
    assert!((89..=90).contains(&days), "lifetime {days} days");
}

#[test]
fn an_ip_address_by_http_01() {
    let pebble = head(PebbleOptions::default());
    let env = Env::new(&pebble, "");
    // Pebble fetches the token from the address itself, where the harness's web server is.
    let ip = pebble.ip.to_string();
    env.domains(&format!("ip:{ip}\n"));
    env.run(&["--cron", "--accept-terms"]).expect(0);
    let der = leaf(&env, &ip);
    let (_, cert) = X509Certificate::from_der(&der).unwrap();
    let san = cert.subject_alternative_name().unwrap().unwrap();
    let names: Vec<Vec<u8>> = san
        .value
        .general_names
        .iter()
        .map(|n| match n {
            GeneralName::IPAddress(a) => a.to_vec(),
            other => panic!("not an IP address: {other}"),
        })
        .collect();
    assert_eq!(names, [pebble.ip.octets().to_vec()]);
    assert!(
        pebble
            .served
            .lock()
            .unwrap()
            .iter()
            .any(|p| p.starts_with("/.well-known/acme-challenge/")),
        "Pebble fetched no token"
    );
}

/// The dns-account-01 record name of `name` for the account of `env`, computed here from the
/// account URL: `_` + lower-case base32 of the first 10 bytes of its SHA-256.
fn account_record(env: &Env, name: &str) -> String {
    let id: serde_json::Value = serde_json::from_str(
        &fs::read_to_string(env.account_dir().join("account_id.json")).unwrap(),
    )
    .unwrap();
    let url = id["url"].as_str().unwrap();
    let hash = ring::digest::digest(&ring::digest::SHA256, url.as_bytes());
    let out = Command::new(require("python3", "python3"))
        .args([
            "-c",
            "import base64, sys; print(base64.b32encode(bytes.fromhex(sys.argv[1])).decode().lower())",
        ])
        .arg(
            hash.as_ref()[..10]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>(),
        )
        .output()
        .unwrap();
    let label = String::from_utf8(out.stdout).unwrap();
    format!("_{}._acme-challenge.{name}", label.trim())
}

/// A hook that sets the records named in CHALLENGE_RECORDS in pebble-challtestsrv, clears them
/// again, and notes every call with that variable in `calls`.
fn account_hook(env: &Env, pebble: &Pebble) -> (std::path::PathBuf, std::path::PathBuf) {
    require("curl", "curl");
    let path = env.path().join("dns-account-hook.sh");
    let calls = env.path().join("calls");
    script(
        &path,
        &format!(
            r#"echo "$* | $CHALLENGETYPE | $CHALLENGE_RECORDS" >> {calls}
handler="$1"; shift
set -- $CHALLENGE_RECORDS -- "$@"
case "$handler" in
  deploy_challenge|clean_challenge) ;;
  *) exit 0 ;;
esac
records=""
while [ "$1" != "--" ]; do records="$records $1"; shift; done
shift
for record in $records; do
  if [ "$handler" = deploy_challenge ]; then
    curl -s -X POST -d "{{\"host\":\"$record.\",\"value\":\"$3\"}}" {mgmt}/set-txt >/dev/null
  else
    curl -s -X POST -d "{{\"host\":\"$record.\"}}" {mgmt}/clear-txt >/dev/null
  fi
  shift 3
done
exit 0"#,
            calls = calls.display(),
            mgmt = pebble.dns_management
        ),
    );
    (path, calls)
}

#[test]
fn dns_account_01_through_a_hook() {
    let pebble = head(PebbleOptions::default());
    let env = Env::new(&pebble, "");
    let (hook, calls) = account_hook(&env, &pebble);
    env.write_config(&format!(
        "CHALLENGETYPE=dns-account-01\nHOOK={}\nDNS_CHECK_SERVERS={}\nDNS_WAIT=5\n",
        hook.display(),
        pebble.dns_server
    ));
    env.domains("*.acct.test acct.test > star_acct_test\n");
    let run = env.run(&["--cron", "--accept-terms"]);
    run.expect(0);
    check_live_set(
        &env.cert_dir("star_acct_test"),
        &["*.acct.test", "acct.test"],
        &pebble.root_der(),
    );
    // deploy_challenge gets dns-01's arguments (the base name, the token, the TXT value), and
    // the record's name, which carries the account's label, in CHALLENGE_RECORDS.
    let record = account_record(&env, "acct.test");
    let calls = fs::read_to_string(&calls).unwrap();
    let lines: Vec<Vec<&str>> = calls
        .lines()
        .filter(|l| l.contains("_challenge "))
        .map(|l| l.split(" | ").collect())
        .collect();
    assert_eq!(lines.len(), 4, "{calls}");
    for (i, parts) in lines.iter().enumerate() {
        let args: Vec<&str> = parts[0].split(' ').collect();
        let handler = if i < 2 {
            "deploy_challenge"
        } else {
            "clean_challenge"
        };
        assert_eq!(args[0], handler, "{calls}");
        assert_eq!(args[1], "acct.test", "{calls}");
        assert_eq!(args.len(), 4, "{calls}");
        assert_eq!(args[3].len(), 43, "a dns-01 TXT value: {calls}");
        assert_eq!(parts[1], "dns-account-01", "{calls}");
        assert_eq!(parts[2], record, "{calls}");
    }
    // A hook that publishes nothing: the propagation check names the missing record, and the
    // CA is never asked to look.
    let silent = env.path().join("silent.sh");
    script(&silent, "exit 0");
    env.write_config(&format!(
        "CHALLENGETYPE=dns-account-01\nHOOK={}\nDNS_CHECK_SERVERS={}\nDNS_WAIT=1\n",
        silent.display(),
        pebble.dns_server
    ));
    env.domains("missing.acct.test\n");
    let run = env.run(&["--cron"]);
    run.expect(1);
    assert!(
        run.stderr().contains(&format!(
            "name server {} does not have the TXT record {} yet",
            pebble.dns_server,
            account_record(&env, "missing.acct.test")
        )),
        "{run:?}"
    );
}

#[test]
fn dns_account_01_by_rfc_2136_updates_to_named() {
    let named = Named::start("example.test");
    let pebble = head(PebbleOptions {
        dns: Some(named.addr),
        ..PebbleOptions::default()
    });
    let env = Env::new(&pebble, "");
    env.write_config(&format!(
        "CHALLENGETYPE=dns-account-01\nDNS_UPDATE_SERVER={}\nDNS_UPDATE_KEY_FILE={}\nDNS_CHECK_SERVERS={}\n",
        named.addr,
        named.key_file.display(),
        named.addr
    ));
    env.domains("*.example.test example.test > star_example_test\n");
    let run = env.run(&["--cron", "--accept-terms", "--verbose"]);
    run.expect(0);
    check_live_set(
        &env.cert_dir("star_example_test"),
        &["*.example.test", "example.test"],
        &pebble.root_der(),
    );
    // named took the records under the account's label, and they are gone again; dns-01's
    // name was never used.
    let record = account_record(&env, "example.test");
    let log = fs::read_to_string(&named.log).unwrap();
    assert!(
        log.contains(&format!("adding an RR at '{record}' TXT")),
        "{log}"
    );
    assert!(!log.contains("at '_acme-challenge.example.test'"), "{log}");
    assert_eq!(named.txt(&record), Vec::<String>::new());
    // Pebble asked named for that record.
    assert!(
        log.contains(&format!("query: {record} IN TXT")),
        "named was not asked for {record}:\n{log}"
    );
}
