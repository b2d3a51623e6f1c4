//! `--check`: every certificate's state from the disk alone, with the monitoring-plugin exit
//! codes 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.

mod common;

use std::fs;

use common::{Env, Pebble};

#[test]
fn check_reports_each_state_with_its_exit_code_and_sends_nothing() {
    let pebble = Pebble::start();
    let env = Env::new(&pebble, "");
    env.domains("fine.example\ndue.example\n");
    env.run(&["--cron", "--accept-terms"]).expect(0);
    let requests = pebble.requests_counted();

    // OK: both valid for years, outside their windows.
    let ok = env.run(&["--check"]);
    ok.expect(0);
    let out = ok.stdout();
    assert!(
        out.starts_with("OK: 2 certificates, 0 due, 0 critical\n"),
        "{ok:?}"
    );
    let fine = out
        .lines()
        .find(|l| l.starts_with("fine.example "))
        .unwrap();
    assert!(fine.contains(" OK "), "{ok:?}");
    assert!(fine.contains(" after "), "{ok:?}");
    assert!(fine.ends_with("fine.example"), "{ok:?}");

    // WARNING: a certificate whose own config renews it 2000 days ahead is in its window.
    fs::write(
        env.cert_dir("due.example").join("config"),
        "RENEW_DAYS=2000\n",
    )
    .unwrap();
    let warning = env.run(&["--check"]);
    warning.expect(1);
    assert!(
        warning
            .stdout()
            .starts_with("WARNING: 2 certificates, 1 due, 0 critical"),
        "{warning:?}"
    );
    assert!(warning.stdout().contains("due for renewal"), "{warning:?}");

    // CRITICAL: one missing from disk, one whose cert.pem is garbage.
    env.domains("fine.example\ndue.example\nmissing.example\n");
    let critical = env.run(&["--check", "--json"]);
    critical.expect(2);
    let report: serde_json::Value = serde_json::from_str(&critical.stdout()).unwrap();
    assert_eq!(report["status"], "CRITICAL");
    let states: Vec<&str> = report["certificates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["OK", "WARNING", "CRITICAL"]);
    assert_eq!(report["certificates"][2]["detail"], "no certificate yet");
    assert!(report["certificates"][0]["days_left"].as_i64().unwrap() > 1000);
    let fine_dir = env.cert_dir("fine.example");
    let target = fs::read_link(fine_dir.join("cert.pem")).unwrap();
    fs::write(fine_dir.join(&target), "garbage").unwrap();
    let unreadable = env.run(&["--check"]);
    unreadable.expect(2);
    assert!(unreadable.stdout().contains("unreadable"), "{unreadable:?}");

    // UNKNOWN: the check cannot be made.
    env.domains("bad_name.example\n");
    let unknown = env.run(&["--check"]);
    unknown.expect(3);
    assert!(unknown.stderr().contains("domains.txt:1:"), "{unknown:?}");

    assert_eq!(
        pebble.requests_after(requests),
        Vec::<String>::new(),
        "--check sent a request"
    );
}

#[test]
fn check_takes_no_lock() {
    let pebble = Pebble::start();
    let env = Env::new(&pebble, "");
    env.domains("a.example\n");
    let lock = fs::File::create(env.path().join("lock")).unwrap();
    lock.lock().unwrap();
    env.run(&["--check"]).expect(2);
    env.run(&["--cron"]).expect(75);
    drop(lock);
}

#[test]
fn a_reader_that_goes_away_ends_only_the_output() {
    // No CA needed: with nothing issued yet every certificate is CRITICAL.
    let base = common::TempDir::new("check-pipe");
    fs::write(base.path().join("config"), "").unwrap();
    let domains: String = (0..2000).map(|i| format!("n{i}.example\n")).collect();
    fs::write(base.path().join("domains.txt"), domains).unwrap();
    // `| head -1`: the reader takes one line and closes the pipe.
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "'{}' --config '{}' --check | head -1",
            env!("CARGO_BIN_EXE_desiccant"),
            base.path().join("config").display()
        ))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stdout.starts_with("CRITICAL: 2000 certificates"),
        "{stdout}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!stderr.contains("Broken pipe"), "{stderr}");
}

#[test]
fn a_certificate_that_left_domains_txt_is_listed_until_cleanup_archives_it() {
    let pebble = Pebble::start();
    let env = Env::new(&pebble, "");
    env.domains("kept.example\ngone.example > gone\n");
    env.run(&["--cron", "--accept-terms"]).expect(0);
    env.domains("kept.example\n");

    // Listed once, with what to do; the status stays OK.
    let check = env.run(&["--check"]);
    check.expect(0);
    let out = check.stdout();
    assert!(
        out.starts_with("OK: 1 certificates, 0 due, 0 critical, 1 no longer in domains.txt\n"),
        "{check:?}"
    );
    let note = "no longer in domains.txt; --cleanup archives it";
    assert_eq!(out.matches(note).count(), 1, "{check:?}");
    let gone = out.lines().find(|l| l.starts_with("gone ")).unwrap();
    assert!(
        gone.contains(" REMOVED ") && gone.contains(note),
        "{check:?}"
    );
    let json = env.run(&["--check", "--json"]);
    json.expect(0);
    let report: serde_json::Value = serde_json::from_str(&json.stdout()).unwrap();
    assert_eq!(report["status"], "OK", "{json:?}");
    assert_eq!(report["certificates"].as_array().unwrap().len(), 1);
    assert_eq!(report["removed"][0]["name"], "gone", "{json:?}");
    assert_eq!(report["removed"][0]["detail"], note, "{json:?}");
    assert!(report["removed"][0]["days_left"].as_i64().unwrap() > 1000);
    // A --domain scope is one certificate: nothing else is "removed".
    let scoped = env.run(&["--check", "--domain", "kept.example"]);
    assert!(!scoped.stdout().contains(note), "{scoped:?}");

    // --cron leaves it alone; --cleanup archives the whole folder, key and links.
    env.run(&["--cron"]).expect(0);
    assert!(env.cert_dir("gone").join("cert.pem").exists());
    let cleanup = env.run(&["--cleanup"]);
    cleanup.expect(0);
    assert!(!env.cert_dir("gone").exists(), "{cleanup:?}");
    let archived: Vec<_> = fs::read_dir(env.path().join("archive"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("gone.removed-")
        })
        .collect();
    assert_eq!(archived.len(), 1, "{cleanup:?}");
    common::check_live_set(&archived[0], &["gone.example"], &pebble.root_der());
    assert!(env.cert_dir("kept.example").join("cert.pem").exists());
    let after = env.run(&["--check"]);
    after.expect(0);
    assert!(!after.stdout().contains("gone"), "{after:?}");
}
