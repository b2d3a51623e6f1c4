//! `METRICS_FILE` and the record of each certificate's last attempt, against a real Pebble: the
//! file node_exporter's textfile collector reads passes `promtool check metrics` and says what
//! the certificates on disk and `state/` say; the alert rules in contrib/ pass their tests.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use common::{Env, Pebble, PebbleOptions, TempDir, mode, require};
use serde_json::Value;

/// `promtool check metrics` on `file`: panics with its words unless it finds nothing wrong.
fn promtool_check(file: &Path) {
    let text = fs::read(file).unwrap();
    let mut child = Command::new(require("promtool", "prometheus"))
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&text).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool check metrics: {}\n{}{}\n--- the file\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&text)
    );
}

/// Every sample of the file, `name{labels}` to its value; every family it names has its HELP
/// and TYPE lines.
fn samples(file: &Path) -> BTreeMap<String, f64> {
    let text = fs::read_to_string(file).unwrap();
    let mut samples = BTreeMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let (series, value) = line.rsplit_once(' ').unwrap();
        let name = series.split('{').next().unwrap();
        assert!(text.contains(&format!("# HELP {name} ")), "{text}");
        assert!(text.contains(&format!("# TYPE {name} gauge\n")), "{text}");
        samples.insert(series.to_string(), value.parse().unwrap());
    }
    samples
}

/// The value of `name` for `certificate`, None when the file has no such sample.
fn of(samples: &BTreeMap<String, f64>, name: &str, certificate: &str) -> Option<f64> {
    samples
        .get(&format!("{name}{{certificate=\"{certificate}\"}}"))
        .copied()
}

/// The notBefore and notAfter of the live `cert.pem` of `dir`, Unix seconds.
fn validity(dir: &Path) -> (i64, i64) {
    let der = common::pem_certs(&dir.join("cert.pem")).remove(0);
    let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
    let v = cert.validity();
    (v.not_before.timestamp(), v.not_after.timestamp())
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// What `state/<name>.json` holds.
fn state(env: &Env, name: &str) -> Value {
    let path = env.path().join("state").join(format!("{name}.json"));
    serde_json::from_slice(&fs::read(&path).unwrap()).unwrap()
}

/// The one state of `certificate` that the file sets to 1, checking every other is 0.
fn state_of(samples: &BTreeMap<String, f64>, certificate: &str) -> String {
    let prefix = format!("desiccant_certificate_state{{certificate=\"{certificate}\",state=\"");
    let set: Vec<(&String, &f64)> = samples
        .iter()
        .filter(|(k, _)| k.starts_with(&prefix))
        .collect();
    assert_eq!(set.len(), 6, "{samples:#?}");
    let on: Vec<&str> = set
        .iter()
        .filter(|(_, v)| **v == 1.0)
        .map(|(k, _)| k[prefix.len()..k.len() - 2].as_ref())
        .collect();
    assert_eq!(on.len(), 1, "{samples:#?}");
    assert!(set.iter().all(|(_, v)| **v == 0.0 || **v == 1.0));
    on[0].to_string()
}

#[test]
fn runs_and_checks_write_what_the_certificates_and_state_say() {
    let pebble = Pebble::start_with(PebbleOptions {
        refuse_hosts: vec!["bad.example".into()],
        ..PebbleOptions::default()
    });
    let folder = TempDir::new("node-exporter");
    let file = folder.path().join("desiccant.prom");
    let env = Env::new(&pebble, &format!("METRICS_FILE={}\n", file.display()));
    env.domains("good.example\n");

    // A run that issues.
    let since = pebble.requests_counted();
    let before = now();
    env.run(&["--cron", "--accept-terms"]).expect(0);
    let after = now();
    let sent = pebble.requests_after(since).len();
    promtool_check(&file);
    assert_eq!(mode(&file), 0o644);
    let names: Vec<String> = fs::read_dir(folder.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, ["desiccant.prom"], "a temporary file was left");
    let m = samples(&file);
    let (not_before, not_after) = validity(&env.cert_dir("good.example"));
    let good = |name: &str| of(&m, name, "good.example");
    assert_eq!(
        good("desiccant_certificate_not_after_timestamp_seconds"),
        Some(not_after as f64)
    );
    assert_eq!(
        good("desiccant_certificate_not_before_timestamp_seconds"),
        Some(not_before as f64)
    );
    // Pebble's certificates live five years: renewed when a third of that is left.
    assert_eq!(
        good("desiccant_certificate_renewal_timestamp_seconds"),
        Some((not_after - (not_after - not_before) / 3) as f64)
    );
    let success = good("desiccant_certificate_last_success_timestamp_seconds").unwrap() as i64;
    assert!((before..=after).contains(&success), "{m:#?}");
    assert_eq!(
        good("desiccant_certificate_consecutive_failures"),
        Some(0.0)
    );
    assert_eq!(
        good("desiccant_certificate_last_failure_timestamp_seconds"),
        None
    );
    assert_eq!(state_of(&m, "good.example"), "valid");
    let started = m["desiccant_last_run_timestamp_seconds"] as i64;
    assert!((before..=after).contains(&started), "{m:#?}");
    assert!(m["desiccant_last_run_duration_seconds"] <= (after - before + 1) as f64);
    assert_eq!(m["desiccant_last_run_exit_status"], 0.0);
    assert_eq!(m["desiccant_last_run_certificates_renewed"], 1.0);
    assert_eq!(m["desiccant_last_run_certificates_failed"], 0.0);
    assert_eq!(m["desiccant_last_run_requests"], sent as f64, "{m:#?}");
    assert!(!m.contains_key("desiccant_last_check_timestamp_seconds"));
    let issued = &state(&env, "good.example")["last_attempt"];
    assert_eq!(issued["outcome"], "issued", "{issued}");
    assert_eq!(issued["at"].as_i64(), Some(success));

    // A run whose new certificate fails validation: the CA's words are kept.
    env.domains("good.example\nbad.example\n");
    let before = now();
    let run = env.run(&["--cron", "--json"]);
    run.expect(1);
    let after = now();
    let report: Value = serde_json::from_str(&run.stdout()).unwrap();
    let json_attempt = &report["certificates"][1]["last_attempt"];
    let recorded = state(&env, "bad.example");
    assert_eq!(json_attempt, &recorded["last_attempt"], "{run:?}");
    assert_eq!(json_attempt["outcome"], "failed", "{run:?}");
    assert_eq!(json_attempt["step"], "validation", "{run:?}");
    let kind = json_attempt["problem_type"].as_str().unwrap();
    assert!(kind.starts_with("urn:ietf:params:acme:error:"), "{run:?}");
    let detail = json_attempt["detail"].as_str().unwrap();
    assert!(!detail.is_empty(), "{run:?}");
    // The same words the run logged, from the CA.
    assert!(
        run.stderr().contains(detail) && run.stderr().contains(kind),
        "{run:?}"
    );
    let failed_at = json_attempt["at"].as_i64().unwrap();
    assert!((before..=after).contains(&failed_at), "{run:?}");
    assert_eq!(recorded["failed_attempts"], 1);
    assert_eq!(recorded["last_failure"].as_i64(), Some(failed_at));
    // The kept certificate's record is unchanged: an unchanged run is no attempt.
    assert_eq!(
        report["certificates"][0]["last_attempt"],
        state(&env, "good.example")["last_attempt"]
    );
    assert_eq!(
        report["certificates"][0]["last_attempt"]["outcome"],
        "issued"
    );

    promtool_check(&file);
    let m = samples(&file);
    let bad = |name: &str| of(&m, name, "bad.example");
    assert_eq!(bad("desiccant_certificate_consecutive_failures"), Some(1.0));
    assert_eq!(
        bad("desiccant_certificate_last_failure_timestamp_seconds"),
        Some(failed_at as f64)
    );
    assert_eq!(
        bad("desiccant_certificate_not_after_timestamp_seconds"),
        None
    );
    assert_eq!(state_of(&m, "bad.example"), "missing");
    assert_eq!(state_of(&m, "good.example"), "valid");
    assert_eq!(
        of(
            &m,
            "desiccant_certificate_not_after_timestamp_seconds",
            "good.example"
        ),
        Some(not_after as f64)
    );
    assert_eq!(m["desiccant_last_run_exit_status"], 1.0);
    assert_eq!(m["desiccant_last_run_certificates_renewed"], 0.0);
    assert_eq!(m["desiccant_last_run_certificates_failed"], 1.0);
    assert!(m["desiccant_last_run_requests"] > 0.0);
    let last_run = m.clone();

    // --check writes the certificates' figures and carries the last run's.
    let before = now();
    let check = env.run(&["--check", "--json"]);
    check.expect(2);
    let after = now();
    let report: Value = serde_json::from_str(&check.stdout()).unwrap();
    assert_eq!(
        report["certificates"][1]["last_attempt"], recorded["last_attempt"],
        "{check:?}"
    );
    promtool_check(&file);
    let m = samples(&file);
    let checked = m["desiccant_last_check_timestamp_seconds"] as i64;
    assert!((before..=after).contains(&checked), "{m:#?}");
    for (series, value) in &last_run {
        assert_eq!(m.get(series), Some(value), "{series}");
    }
    assert_eq!(m.len(), last_run.len() + 1, "{m:#?}");
    assert_eq!(mode(&file), 0o644);
}

#[test]
fn a_domain_run_keeps_the_others_dates_one_that_waits_for_the_lock_writes_nothing() {
    let pebble = Pebble::start();
    let folder = TempDir::new("node-exporter");
    let file = folder.path().join("desiccant.prom");
    let env = Env::new(&pebble, &format!("METRICS_FILE={}\n", file.display()));
    env.domains("a.example\nb.example\n");
    env.run(&["--cron", "--accept-terms"]).expect(0);

    // A run for one certificate: the other one's expiry is still there to alert on.
    env.run(&["--cron", "--domain", "a.example"]).expect(0);
    promtool_check(&file);
    let m = samples(&file);
    let (_, b_not_after) = validity(&env.cert_dir("b.example"));
    assert_eq!(
        of(
            &m,
            "desiccant_certificate_not_after_timestamp_seconds",
            "b.example"
        ),
        Some(b_not_after as f64)
    );
    assert_eq!(state_of(&m, "a.example"), "valid");
    let written = fs::read(&file).unwrap();

    let lock = fs::File::create(env.path().join("lock")).unwrap();
    lock.lock().unwrap();
    env.run(&["--cron", "--force"]).expect(75);
    drop(lock);
    assert_eq!(fs::read(&file).unwrap(), written);

    // The folder is gone: the run's work is done and it says why there is no file.
    let gone = folder.path().join("gone").join("desiccant.prom");
    env.write_config(&format!("METRICS_FILE={}\n", gone.display()));
    let run = env.run(&["--cron"]);
    run.expect(0);
    let why = format!(
        "error: METRICS_FILE: cannot use {}: No such file or directory",
        gone.parent().unwrap().display()
    );
    assert!(run.stderr().contains(&why), "{run:?}");
    let check = env.run(&["--check"]);
    check.expect(0);
    assert!(check.stderr().contains(&why), "{check:?}");
}

#[test]
fn the_alert_rules_pass_their_tests() {
    let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib/prometheus");
    for args in [
        ["check", "rules", "desiccant-rules.yml"],
        ["test", "rules", "desiccant-rules.test.yml"],
    ] {
        let out = Command::new(require("promtool", "prometheus"))
            .args(args)
            .current_dir(&rules)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "promtool {}: {}\n{}{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn deferred_attempts_are_counted_apart_from_failures() {
    // No CA listens: every attempt is deferred (temporary), which is no failure to alert on.
    let dir = TempDir::new("no-ca");
    let folder = TempDir::new("node-exporter");
    let file = folder.path().join("desiccant.prom");
    let env = Env::for_ca(
        "https://127.0.0.1:9/dir",
        &dir.path().join("ca.pem"),
        dir.path(),
        &format!("METRICS_FILE={}\n", file.display()),
    );
    fs::write(dir.path().join("ca.pem"), "").unwrap();
    env.domains("offline.example\n");
    for runs in 1..=2 {
        env.run(&["--cron", "--accept-terms"]).expect(75);
        promtool_check(&file);
        let m = samples(&file);
        let offline = |name: &str| of(&m, name, "offline.example");
        // Before, each deferred attempt counted as a failure.
        assert_eq!(
            offline("desiccant_certificate_consecutive_failures"),
            Some(0.0),
            "{m:#?}"
        );
        assert_eq!(
            offline("desiccant_certificate_consecutive_deferrals"),
            Some(f64::from(runs)),
            "{m:#?}"
        );
        assert_eq!(
            state(&env, "offline.example")["last_attempt"]["outcome"],
            "deferred"
        );
    }
}
