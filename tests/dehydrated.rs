//! Compatibility with the real dehydrated (Debian's package): it registers and issues into a
//! BASEDIR, desiccant takes that BASEDIR over as it is, and dehydrated can take it back.

mod common;

use std::fs;
use std::process::Command;

use common::{Env, Pebble, PebbleOptions, Run, check_live_set, require, script};

/// A hook for both tools: it records every call (handler and arguments in brackets) and
/// publishes dns-01 values in pebble-challtestsrv.
fn hook(env: &Env, pebble: &Pebble) -> std::path::PathBuf {
    require("curl", "curl");
    let path = env.path().join("hook.sh");
    let record = env.path().join("calls");
    script(
        &path,
        &format!(
            r#"line="$1"; for a in "$@"; do [ "$a" = "$1" ] || line="$line [$a]"; done
printf '%s\n' "$line" >> "{record}"
handler="$1"; shift
if [ "$CHALLENGETYPE" = dns-01 ]; then
  case "$handler" in
    deploy_challenge) curl -s -X POST -d "{{\"host\":\"_acme-challenge.$1.\",\"value\":\"$3\"}}" {mgmt}/set-txt >/dev/null ;;
    clean_challenge) curl -s -X POST -d "{{\"host\":\"_acme-challenge.$1.\"}}" {mgmt}/clear-txt >/dev/null ;;
  esac
fi
exit 0"#,
            record = record.display(),
            mgmt = pebble.dns_management
        ),
    );
    path
}

/// The recorded hook calls since the last look.
fn calls(env: &Env) -> Vec<String> {
    let path = env.path().join("calls");
    let text = fs::read_to_string(&path).unwrap_or_default();
    let _ = fs::remove_file(&path);
    text.lines().map(str::to_string).collect()
}

fn only(calls: &[String], handler: &str) -> Vec<String> {
    let mut v: Vec<String> = calls
        .iter()
        .filter(|l| l.split(' ').next() == Some(handler))
        .cloned()
        .collect();
    v.sort();
    v
}

fn dehydrated(env: &Env, args: &[&str]) -> Run {
    let bin = require("dehydrated", "dehydrated");
    let output = Command::new(bin)
        .arg("--config")
        .arg(env.path().join("config"))
        .args(args)
        .env_remove("JOURNAL_STREAM")
        .output()
        .unwrap();
    Run {
        args: std::iter::once("(dehydrated)".to_string())
            .chain(args.iter().map(|s| s.to_string()))
            .collect(),
        output,
    }
}

/// A dehydrated BASEDIR: its own config (as dehydrated reads it: curl told of Pebble's CA),
/// domains.txt with aliases, several names and a wildcard, a per-certificate config, a hook.
fn dehydrated_basedir(pebble: &Pebble) -> Env {
    let env = Env::new(pebble, "");
    let hook = hook(&env, pebble);
    env.write_config(&format!(
        "CURL_OPTS=\"--cacert {bundle}\"\nHOOK={hook}\nKEYSIZE=2048\nDNS_CHECK_SERVERS={dns}\n",
        bundle = pebble.ca_bundle.display(),
        hook = hook.display(),
        dns = pebble.dns_server
    ));
    env.domains("one.example\nmulti.example www.multi.example api.multi.example > multi\n*.wild.example wild.example > wild\n");
    let wild = env.cert_dir("wild");
    fs::create_dir_all(&wild).unwrap();
    fs::write(wild.join("config"), "CHALLENGETYPE=\"dns-01\"\n").unwrap();
    env
}

fn names() -> [(&'static str, Vec<&'static str>); 3] {
    [
        ("one.example", vec!["one.example"]),
        (
            "multi",
            vec!["multi.example", "www.multi.example", "api.multi.example"],
        ),
        ("wild", vec!["*.wild.example", "wild.example"]),
    ]
}

fn pebble() -> Pebble {
    // dehydrated does not retry refused nonces, so Pebble refuses none here.
    Pebble::start_with(PebbleOptions {
        nonce_reject: 0,
        ..Default::default()
    })
}

#[test]
fn desiccant_takes_over_a_dehydrated_basedir_and_hands_it_back() {
    let pebble = pebble();
    let env = dehydrated_basedir(&pebble);
    dehydrated(&env, &["--register", "--accept-terms"]).expect(0);
    dehydrated(&env, &["--cron"]).expect(0);
    let root = pebble.root_der();
    for (dir, n) in names() {
        check_live_set(&env.cert_dir(dir), &n, &root);
    }
    // What dehydrated tells the hook when nothing is due.
    calls(&env);
    dehydrated(&env, &["--cron"]).expect(0);
    let dehydrated_noop = calls(&env);

    // desiccant on the same BASEDIR: nothing due, nothing sent, nothing printed, the same
    // unchanged_cert calls.
    let requests = pebble.requests();
    let run = env.run(&["--cron"]);
    run.expect(0);
    assert_eq!(run.stdout() + &run.stderr(), "", "{run:?}");
    assert_eq!(pebble.requests(), requests, "a request was sent");
    let ours = calls(&env);
    assert_eq!(
        only(&ours, "unchanged_cert"),
        only(&dehydrated_noop, "unchanged_cert")
    );
    assert_eq!(only(&ours, "unchanged_cert").len(), 3);

    // Forced: renewed with dehydrated's account (no newAccount), deploy_cert as dehydrated calls it.
    let accounts = pebble_count(&pebble, "POST /sign-me-up");
    dehydrated(&env, &["--cron", "--force"]).expect(0);
    let theirs = only(&calls(&env), "deploy_cert");
    let run = env.run(&["--cron", "--force"]);
    run.expect(0);
    let ours = only(&calls(&env), "deploy_cert");
    assert_eq!(
        pebble_count(&pebble, "POST /sign-me-up"),
        accounts,
        "a newAccount was sent"
    );
    assert_eq!(without_timestamps(&ours), without_timestamps(&theirs));
    for (dir, n) in names() {
        check_live_set(&env.cert_dir(dir), &n, &root);
    }

    // Hand-back: dehydrated finds desiccant's certificates valid and orders nothing.
    let orders = pebble_count(&pebble, "POST /order-plz");
    let back = dehydrated(&env, &["--cron"]);
    back.expect(0);
    assert_eq!(pebble_count(&pebble, "POST /order-plz"), orders, "{back:?}");
    assert_eq!(only(&calls(&env), "unchanged_cert").len(), 3);
    assert!(!env.path().join("lock").exists());
}

fn pebble_count(pebble: &Pebble, what: &str) -> usize {
    fs::read_to_string(&pebble.log)
        .unwrap()
        .lines()
        .filter(|l| l.contains(what))
        .count()
}

/// deploy_cert lines with the timestamp argument (the last) made a placeholder.
fn without_timestamps(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .map(|l| match l.rsplit_once(" [") {
            Some((head, ts)) if ts.trim_end_matches(']').parse::<u64>().is_ok() => {
                format!("{head} [TS]")
            }
            _ => l.clone(),
        })
        .collect()
}
