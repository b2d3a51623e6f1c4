//! A schedule too slow for the certificates is an error of `--cron` (exit 1, with the crontab
//! and systemd lines that keep up) and a warning of `--check`, judged by the runs recorded in
//! `state/.run.json`: 6-day certificates from a real Pebble, and runs a day, a week and a
//! month apart.

mod common;

use std::fs;
use std::time::Duration;

use serde_json::Value;

use common::{Env, Pebble, PebbleOptions, Run};

const DAY: i64 = 86_400;

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Writes `state/.run.json` as runs started `days_ago` (oldest first) would have left it.
fn ran(env: &Env, days_ago: &[i64]) {
    let runs: Vec<i64> = days_ago.iter().map(|d| now() - d * DAY).collect();
    fs::write(
        env.path().join("state/.run.json"),
        serde_json::json!({ "last_run": runs.last(), "runs": runs }).to_string(),
    )
    .unwrap();
}

/// The `schedule` of the one certificate of a `--json` report.
fn schedule(run: &Run) -> Value {
    let report: Value = serde_json::from_str(&run.stdout())
        .unwrap_or_else(|e| panic!("no JSON report ({e}): {run:?}"));
    report["certificates"][0]["schedule"].clone()
}

#[test]
fn runs_too_far_apart_for_6_day_certificates_fail_the_run_and_warn_in_check() {
    let pebble = Pebble::start_with(PebbleOptions {
        validity: Some(Duration::from_secs(6 * DAY as u64)),
        ..PebbleOptions::default()
    });
    let env = Env::new(&pebble, "");
    env.domains("short.example\n");

    // No history on the first runs: nothing to judge by.
    env.run(&["--cron", "--accept-terms"]).expect(0);
    env.run(&["--check"]).expect(0);
    let second = env.run(&["--cron"]);
    second.expect(0);
    assert_eq!(second.stderr(), "", "{second:?}");
    let state: Value =
        serde_json::from_slice(&fs::read(env.path().join("state/.run.json")).unwrap()).unwrap();
    assert_eq!(state["runs"].as_array().unwrap().len(), 2, "{state}");

    // Daily runs keep up with a certificate renewed 3 days before it expires.
    ran(&env, &[3, 2, 1]);
    env.run(&["--check"]).expect(0);
    env.run(&["--cron"]).expect(0);

    // Weekly, with a run by hand in between, or monthly: the run fails and says what to do;
    // --check warns before.
    for (history, apart) in [(&[15, 8, 5, 1][..], "7.0"), (&[61, 31, 1][..], "30.0")] {
        ran(&env, history);
        let check = env.run(&["--check"]);
        check.expect(1);
        assert!(
            check
                .stdout()
                .starts_with("WARNING - short.example expires in "),
            "{check:?}"
        );
        let advice = format!(
            "short.example: runs come up to {apart} days apart, but it is renewed 3.0 days \
             before it expires, so it can expire before a run renews it; run desiccant at \
             least every 24 hours: the crontab line `23 4 * * * desiccant --cron` (with your \
             line's options), or `OnCalendar=*-*-* 04:23:00` in a systemd timer"
        );
        assert!(check.stdout().contains(&advice), "{check:?}");
        let check_json = env.run(&["--check", "--json"]);
        assert_eq!(schedule(&check_json), "too-slow", "{check_json:?}");

        ran(&env, history);
        let cron = env.run(&["--cron"]);
        cron.expect(1);
        assert!(cron.stderr().contains(&advice), "{cron:?}");
        ran(&env, history);
        let cron_json = env.run(&["--cron", "--json"]);
        cron_json.expect(1);
        assert_eq!(schedule(&cron_json), "too-slow", "{cron_json:?}");
    }

    // A run of one certificate by hand (--domain) is not part of the schedule.
    ran(&env, &[3, 2, 1]);
    env.run(&["--cron", "--domain", "short.example"]).expect(0);
    let state: Value =
        serde_json::from_slice(&fs::read(env.path().join("state/.run.json")).unwrap()).unwrap();
    assert_eq!(state["runs"].as_array().unwrap().len(), 3, "{state}");
}
