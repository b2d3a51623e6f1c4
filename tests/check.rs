//! `--check`: every certificate's state from the disk alone, with the monitoring-plugin exit
//! codes 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.

mod common;

use std::fs;
use std::time::Duration;

use common::user::User;
use common::{Env, Pebble, PebbleOptions};

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
    assert!(out.starts_with("OK - 2 certificates valid; "), "{ok:?}");
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
            .starts_with("WARNING - due.example expires in "),
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
    let domains = env.path().join("domains.txt");
    let reason = format!("{}:1: ", domains.display());
    assert!(
        unknown.stdout().starts_with(&format!("UNKNOWN - {reason}")),
        "{unknown:?}"
    );
    assert_eq!(unknown.stdout().lines().count(), 1, "{unknown:?}");
    // Said once: before, the held stderr said it again after the first line.
    assert!(!unknown.stderr().contains(&reason), "{unknown:?}");

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
        stdout.starts_with(
            "CRITICAL - n0.example missing; n1.example missing; n2.example missing; \
             n3.example missing; n4.example missing; and 1995 more | 'n0.example days left'=U "
        ),
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
        out.starts_with("OK - kept.example expires in ")
            && out.contains(" d; 1 no longer in domains.txt | 'kept.example days left'="),
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

/// One performance data item, as the Monitoring Plugins guidelines define it:
/// `'label'=value[UOM];[warn];[crit];[min];[max]`.
#[derive(Debug, PartialEq)]
struct Perf {
    label: String,
    /// None for `U` (the value could not be determined).
    value: Option<f64>,
    uom: String,
    warn: String,
    crit: String,
    min: String,
    max: String,
}

/// A threshold range of the guidelines: `[@][start:][end]`, start a number or `~`, empty
/// for none.
fn is_range(text: &str) -> bool {
    let number = |t: &str| !t.is_empty() && t.parse::<f64>().is_ok_and(f64::is_finite);
    let t = text.strip_prefix('@').unwrap_or(text);
    match t.split_once(':') {
        _ if text.is_empty() => true,
        None => number(t),
        Some((start, end)) => {
            (start == "~" || start.is_empty() || number(start)) && (end.is_empty() || number(end))
        }
    }
}

/// The text and the performance data of a plugin's first line, each item checked against
/// the guidelines' grammar; panics naming what breaks it.
fn plugin_line(line: &str) -> (String, Vec<Perf>) {
    let (text, data) = match line.split_once(" | ") {
        Some((text, data)) => (text, data),
        None => (line, ""),
    };
    assert!(!text.contains('|'), "a second | in {line:?}");
    let mut items = Vec::new();
    let mut rest = data.trim_start();
    while !rest.is_empty() {
        // The label: quoted ('' is a quote inside), else up to the '='.
        let (label, after) = if let Some(quoted) = rest.strip_prefix('\'') {
            let mut label = String::new();
            let mut chars = quoted.char_indices();
            let end = loop {
                match chars.next() {
                    Some((i, '\'')) if quoted[i + 1..].starts_with('\'') => {
                        label.push('\'');
                        chars.next();
                    }
                    Some((i, '\'')) => break i + 1,
                    Some((_, c)) => label.push(c),
                    None => panic!("unterminated label in {line:?}"),
                }
            };
            (label, &quoted[end..])
        } else {
            let end = rest.find('=').expect("a label without =");
            assert!(
                !rest[..end].contains(' '),
                "unquoted label with a space: {line:?}"
            );
            (rest[..end].to_string(), &rest[end..])
        };
        assert!(
            !label.is_empty() && !label.contains('='),
            "bad label in {line:?}"
        );
        let after = after.strip_prefix('=').expect("= after the label");
        let end = after.find(' ').unwrap_or(after.len());
        let fields: Vec<&str> = after[..end].split(';').collect();
        assert!(fields.len() <= 5, "more than 5 fields in {line:?}");
        let field = |i: usize| fields.get(i).copied().unwrap_or("").to_string();
        let value_uom = fields[0];
        let split = value_uom
            .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-'))
            .unwrap_or(value_uom.len());
        let (value, uom) = value_uom.split_at(split);
        let value = if uom == "U" && value.is_empty() {
            None
        } else {
            Some(
                value
                    .parse::<f64>()
                    .unwrap_or_else(|_| panic!("value in {line:?}")),
            )
        };
        let uom = if value.is_none() { "" } else { uom };
        assert!(
            ["", "s", "ms", "us", "%", "B", "KB", "MB", "TB", "c"].contains(&uom),
            "a unit of measure the guidelines do not define in {line:?}"
        );
        for threshold in [field(1), field(2)] {
            assert!(is_range(&threshold), "bad range {threshold:?} in {line:?}");
        }
        for bound in [field(3), field(4)] {
            assert!(
                bound.is_empty() || bound.parse::<f64>().is_ok(),
                "bad min/max in {line:?}"
            );
        }
        items.push(Perf {
            label,
            value,
            uom: uom.to_string(),
            warn: field(1),
            crit: field(2),
            min: field(3),
            max: field(4),
        });
        rest = after[end..].trim_start();
    }
    (text.to_string(), items)
}

/// Checks a `--check` run: its exit code, the exact text of its first line, and per
/// certificate its performance data (label, days left within an hour, warn, crit).
fn expect_plugin(
    run: &common::Run,
    code: i32,
    text: &str,
    perf: &[(&str, Option<f64>, &str, &str)],
) {
    run.expect(code);
    let out = run.stdout();
    let first = out.lines().next().unwrap_or_default();
    let (got_text, items) = plugin_line(first);
    assert_eq!(got_text, text, "{run:?}");
    assert_eq!(items.len(), perf.len(), "{run:?}");
    for (item, (name, days, warn, crit)) in items.iter().zip(perf) {
        assert_eq!(item.label, format!("{name} days left"), "{run:?}");
        match (item.value, days) {
            (Some(got), Some(want)) => assert!((got - want).abs() < 0.05, "{item:?}: {run:?}"),
            (got, want) => assert_eq!(got, *want, "{run:?}"),
        }
        assert_eq!(
            (item.warn.as_str(), item.crit.as_str()),
            (*warn, *crit),
            "{run:?}"
        );
    }
}

#[test]
fn the_perfdata_parser_holds_to_the_grammar() {
    let (text, items) = plugin_line("OK - fine | 'a b'=1.5;30:;15: c=U 'it''s'=-2s;@1:2;~:3;0;9");
    assert_eq!(text, "OK - fine");
    assert_eq!(items[0].label, "a b");
    assert_eq!(items[1].value, None);
    assert_eq!(items[2].label, "it's");
    assert_eq!(items[2].uom, "s");
    assert_eq!((items[2].min.as_str(), items[2].max.as_str()), ("0", "9"));
    for bad in [
        "OK - x | 'a'=1d",
        "OK - x | a b=1",
        "OK - x | 'a'=1;30d",
        "OK - x | 'a'=1;1;2;3;4;5",
        "OK - x | 'a=1",
        "OK - x | y | 'a'=1",
    ] {
        assert!(
            std::panic::catch_unwind(|| plugin_line(bad)).is_err(),
            "{bad}"
        );
    }
}

/// 90-day certificates from a real Pebble, judged at times faketime sets: a.example with the
/// default window (30 days, critical at 15), b.example with `RENEW_DAYS=10` (critical at 5).
#[test]
fn plugin_output_in_each_state_with_thresholds_and_perfdata() {
    let pebble = Pebble::start_with(PebbleOptions {
        validity: Some(Duration::from_secs(90 * 86_400)),
        ..PebbleOptions::default()
    });
    // ARI=no: the windows here are the local ones, not a point Pebble's answer would choose.
    let env = Env::new(&pebble, "ARI=no\n");
    // One after the other, so that a.example expires first.
    env.domains("a.example\n");
    env.run(&["--cron", "--accept-terms"]).expect(0);
    env.domains("a.example\nb.example\n");
    env.run(&["--cron"]).expect(0);
    fs::write(env.cert_dir("b.example").join("config"), "RENEW_DAYS=10\n").unwrap();
    let requests = pebble.requests_counted();

    // Half a day in: OK, the one that expires first named.
    expect_plugin(
        &env.run_at("+12h", &["--check"]),
        0,
        "OK - 2 certificates valid; a.example expires first, in 89 d",
        &[
            ("a.example", Some(89.5), "30:", "15:"),
            ("b.example", Some(89.5), "10:", "5:"),
        ],
    );
    // 25.5 days left: a.example is inside its window, b.example is not.
    let window = env.run_at("+1548h", &["--check"]);
    expect_plugin(
        &window,
        1,
        "WARNING - a.example expires in 25 d (1 of 2 certificates)",
        &[
            ("a.example", Some(25.5), "30:", "15:"),
            ("b.example", Some(25.5), "10:", "5:"),
        ],
    );
    // The long output: the table, a.example's row says why.
    let row = window
        .stdout()
        .lines()
        .find(|l| l.starts_with("a.example "))
        .map(str::to_string);
    assert!(
        row.is_some_and(|r| r.contains(" WARNING ") && r.contains("due for renewal")),
        "{window:?}"
    );
    // 14.5 days left: under half of a.example's window; b.example still fine.
    expect_plugin(
        &env.run_at("+1812h", &["--check"]),
        2,
        "CRITICAL - a.example expires in 14 d (1 of 2 certificates)",
        &[
            ("a.example", Some(14.5), "30:", "15:"),
            ("b.example", Some(14.5), "10:", "5:"),
        ],
    );
    // 9.5 days left: b.example is in its window too, and counted.
    expect_plugin(
        &env.run_at("+1932h", &["--check"]),
        2,
        "CRITICAL - a.example expires in 9 d (1 of 2 certificates, 1 warning)",
        &[
            ("a.example", Some(9.5), "30:", "15:"),
            ("b.example", Some(9.5), "10:", "5:"),
        ],
    );

    // --warning and --critical replace the windows, for both.
    let at = |args: &[&str]| env.run_at("+1548h", &[&["--check"][..], args].concat());
    expect_plugin(
        &at(&["--warning", "20", "--critical", "10"]),
        0,
        "OK - 2 certificates valid; a.example expires first, in 25 d",
        &[
            ("a.example", Some(25.5), "20:", "10:"),
            ("b.example", Some(25.5), "20:", "10:"),
        ],
    );
    expect_plugin(
        &at(&["--warning", "26", "--critical", "10"]),
        1,
        "WARNING - a.example expires in 25 d; b.example expires in 25 d",
        &[
            ("a.example", Some(25.5), "26:", "10:"),
            ("b.example", Some(25.5), "26:", "10:"),
        ],
    );
    expect_plugin(
        &at(&["--warning", "40", "--critical", "25.75"]),
        2,
        "CRITICAL - a.example expires in 25 d; b.example expires in 25 d",
        &[
            ("a.example", Some(25.5), "40:", "25.75:"),
            ("b.example", Some(25.5), "40:", "25.75:"),
        ],
    );
    // --warning alone: critical at half of it.
    expect_plugin(
        &at(&["--warning", "40"]),
        1,
        "WARNING - a.example expires in 25 d; b.example expires in 25 d",
        &[
            ("a.example", Some(25.5), "40:", "20:"),
            ("b.example", Some(25.5), "40:", "20:"),
        ],
    );
    // A bad --check line is UNKNOWN with the reason on stdout (a monitoring system reads 2 as
    // CRITICAL); thresholds without --check are a usage error as for any command.
    let days = "not a number of days (0 or more, at most two decimals, such as 14 or 1.5)";
    for (args, says) in [
        (
            &["--check", "--warning", "5", "--critical", "10"][..],
            "--critical (10) must be less than --warning (5)".to_string(),
        ),
        (
            &["--check", "--warning", "5", "--critical", "5"][..],
            "--critical (5) must be less than --warning (5)".to_string(),
        ),
        (
            &["--check", "--critical", "-1"][..],
            format!("invalid value '-1' for '--critical <DAYS>': {days}"),
        ),
        (
            &["--check", "--warning", "abc"][..],
            format!("invalid value 'abc' for '--warning <DAYS>': {days}"),
        ),
        (
            &["--check", "--warning", "0.001"][..],
            format!("invalid value '0.001' for '--warning <DAYS>': {days}"),
        ),
        (
            &["--check", "--dry-run"][..],
            "--dry-run works with --cron and --signcsr only".to_string(),
        ),
        (
            &["--check", "-x"][..],
            "--force renews certificates; --check reads the disk only and takes no --force"
                .to_string(),
        ),
    ] {
        let bad = env.run(args);
        bad.expect(3);
        assert_eq!(bad.stdout(), format!("UNKNOWN - {says}\n"), "{bad:?}");
        assert_eq!(bad.stderr(), "", "{bad:?}");
    }
    let json = env.run(&["--check", "--json", "--warning", "abc"]);
    json.expect(3);
    let report: serde_json::Value = serde_json::from_str(&json.stdout()).unwrap();
    assert_eq!(report["status"], "UNKNOWN", "{json:?}");
    let bad = env.run(&["--cron", "--warning", "5"]);
    bad.expect(2);
    assert_eq!(bad.stdout(), "", "{bad:?}");
    // --critical alone above the window: the warning limit goes up with it.
    expect_plugin(
        &at(&["--critical", "40"]),
        2,
        "CRITICAL - a.example expires in 25 d; b.example expires in 25 d",
        &[
            ("a.example", Some(25.5), "40:", "40:"),
            ("b.example", Some(25.5), "40:", "40:"),
        ],
    );

    // Half a day after they expired.
    expect_plugin(
        &env.run_at("+2172h", &["--check"]),
        2,
        "CRITICAL - a.example expired 12 h ago; b.example expired 12 h ago",
        &[
            ("a.example", Some(-0.5), "30:", "15:"),
            ("b.example", Some(-0.5), "10:", "5:"),
        ],
    );
    // A certificate not issued yet: no value, no thresholds.
    env.domains("a.example\nb.example\nc.example\n");
    expect_plugin(
        &env.run_at("+12h", &["--check"]),
        2,
        "CRITICAL - c.example missing (1 of 3 certificates)",
        &[
            ("a.example", Some(89.5), "30:", "15:"),
            ("b.example", Some(89.5), "10:", "5:"),
            ("c.example", None, "", ""),
        ],
    );
    assert_eq!(
        pebble.requests_after(requests),
        Vec::<String>::new(),
        "--check sent a request"
    );
}

#[test]
fn domain_limits_the_check_to_the_certificates_that_carry_it() {
    let pebble = Pebble::start();
    let env = Env::new(&pebble, "");
    env.domains("a.example www.a.example\nb.example > bee\n");
    env.run(&["--cron", "--accept-terms"]).expect(0);
    // A certificate not issued yet, outside the scope of the checks below.
    env.domains("a.example www.a.example\nb.example > bee\nmissing.example\n");

    // Before, --domain made a certificate of its own names: www.a.example alone was "names
    // changed" and bee "missing", both CRITICAL.
    for (name, folder) in [
        ("www.a.example", "a.example"),
        ("A.EXAMPLE", "a.example"),
        ("b.example", "bee"),
        ("bee", "bee"),
    ] {
        let run = env.run(&["--check", "-d", name]);
        run.expect(0);
        let out = run.stdout();
        let first = out.lines().next().unwrap();
        assert!(
            first.starts_with(&format!("OK - {folder} expires in ")),
            "{run:?}"
        );
        let (_, perf) = plugin_line(first);
        assert_eq!(perf.len(), 1, "{run:?}");
        assert_eq!(perf[0].label, format!("{folder} days left"));
        // The table holds that certificate alone.
        assert_eq!(out.lines().count(), 3, "{run:?}");
    }
    let both = env.run(&["--check", "-d", "www.a.example", "-d", "missing.example"]);
    both.expect(2);
    assert!(
        both.stdout()
            .starts_with("CRITICAL - missing.example missing (1 of 2 certificates) | "),
        "{both:?}"
    );

    // A name no certificate carries: UNKNOWN, and which name.
    let unknown = env.run(&["--check", "-d", "a.example", "-d", "nowhere.example"]);
    unknown.expect(3);
    assert_eq!(
        unknown.stdout(),
        format!(
            "UNKNOWN - {}: no certificate carries nowhere.example (as a name or as its folder)\n",
            env.path().join("domains.txt").display()
        ),
        "{unknown:?}"
    );
}

#[test]
fn the_last_failed_attempt_is_shown_with_the_cas_words() {
    let pebble = Pebble::start_with(PebbleOptions {
        validity: Some(Duration::from_secs(90 * 86_400)),
        ..PebbleOptions::default()
    });
    let env = Env::new(&pebble, "ARI=no\n");
    env.domains("a.example\nb.example\n");
    env.run(&["--cron", "--accept-terms"]).expect(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    // As a run that failed validation three times would leave state/ (written by hand here;
    // the runs write it from the CA's answers). The detail carries what the CA may send: a
    // line break and a |, which would end the plugin's line and start performance data.
    let mut state: serde_json::Value =
        serde_json::from_slice(&fs::read(env.path().join("state/a.example.json")).unwrap())
            .unwrap();
    state["failures"] = 3.into();
    state["backoff_until"] = (now + 80 * 86_400).into();
    state["last_attempt"] = serde_json::json!({
        "at": 1_767_323_045,
        "outcome": "failed",
        "step": "validation",
        "problem_type": "urn:ietf:params:acme:error:unauthorized",
        "detail": "127.0.0.1: Invalid response from http://a.example/.well-known/acme-challenge/x: 404 | next\nline",
    });
    fs::write(env.path().join("state/a.example.json"), state.to_string()).unwrap();
    // b.example's last attempt succeeded: nothing is said of it.
    let mut state: serde_json::Value =
        serde_json::from_slice(&fs::read(env.path().join("state/b.example.json")).unwrap())
            .unwrap();
    state["last_attempt"] = serde_json::json!({ "at": now, "outcome": "issued" });
    fs::write(env.path().join("state/b.example.json"), state.to_string()).unwrap();

    // Inside its window, backed off.
    let run = env.run_at("+1548h", &["--check"]);
    expect_plugin(
        &run,
        1,
        "WARNING - a.example expires in 25 d, 3 failed attempts; b.example expires in 25 d",
        &[
            ("a.example", Some(25.5), "30:", "15:"),
            ("b.example", Some(25.5), "30:", "15:"),
        ],
    );
    let out = run.stdout();
    let row = out.lines().find(|l| l.starts_with("a.example ")).unwrap();
    assert!(
        row.contains("due for renewal; 3 failed attempts in a row, backed off until "),
        "{run:?}"
    );
    let last: Vec<&str> = out.lines().filter(|l| l.contains("last attempt")).collect();
    assert_eq!(
        last,
        [
            "a.example: last attempt 2026-01-02 03:04:05 UTC failed at validation: 127.0.0.1: \
             Invalid response from http://a.example/.well-known/acme-challenge/x: 404 ¦ \
             next\\nline (urn:ietf:params:acme:error:unauthorized)"
        ],
        "{run:?}"
    );
    // Only the first line has a |.
    assert_eq!(out.matches('|').count(), 1, "{run:?}");
    let json = env.run_at("+1548h", &["--check", "--json"]);
    json.expect(1);
    let report: serde_json::Value = serde_json::from_str(&json.stdout()).unwrap();
    assert_eq!(
        report["certificates"][0]["last_attempt"]["problem_type"],
        "urn:ietf:params:acme:error:unauthorized",
        "{json:?}"
    );
    assert_eq!(
        report["certificates"][0]["held_back"], "backed-off",
        "{json:?}"
    );
}

#[test]
fn a_config_the_monitoring_user_cannot_read_is_unknown_with_the_reason() {
    use std::os::unix::fs::PermissionsExt;
    let monitor = User::new("check");
    let pebble = Pebble::start();
    let env = Env::new(&pebble, "");
    env.domains("a.example\n");
    env.run(&["--cron", "--accept-terms"]).expect(0);
    // BASEDIR as /etc/desiccant is installed: root's alone.
    fs::set_permissions(env.path(), fs::Permissions::from_mode(0o700)).unwrap();

    let config = env.path().join("config");
    let reason = format!(
        "{}: cannot read the config file as this user (uid {}): permission denied; run as root \
         (a sudo rule for a monitoring user), or give this user read access to the folder and \
         the file through a group",
        config.display(),
        monitor.uid
    );
    // Before, the folder hid the file and the check ran on the defaults ("no config file
    // found").
    let check = monitor.run(&env, &["--check"]);
    check.expect(3);
    assert_eq!(check.stdout(), format!("UNKNOWN - {reason}\n"), "{check:?}");
    let json = monitor.run(&env, &["--check", "--json"]);
    json.expect(3);
    let report: serde_json::Value = serde_json::from_str(&json.stdout()).unwrap();
    assert_eq!(report["status"], "UNKNOWN");
    assert_eq!(report["error"], reason.as_str());
    // A run as that user is a config error of the run, naming the file.
    let cron = monitor.run(&env, &["--cron"]);
    cron.expect(78);
    assert!(cron.stderr().contains(&reason), "{cron:?}");
    // The folder open, the file not: the same.
    fs::set_permissions(env.path(), fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(&config, fs::Permissions::from_mode(0o600)).unwrap();
    let check = monitor.run(&env, &["--check"]);
    check.expect(3);
    assert_eq!(check.stdout(), format!("UNKNOWN - {reason}\n"), "{check:?}");

    // Read access through the monitoring user's group: the folder, the config, domains.txt.
    for (path, mode) in [
        (env.path().to_path_buf(), 0o750),
        (config.clone(), 0o640),
        (env.path().join("domains.txt"), 0o640),
    ] {
        std::os::unix::fs::chown(&path, None, Some(monitor.gid)).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
    }
    let check = monitor.run(&env, &["--check"]);
    check.expect(0);
    assert!(
        check.stdout().starts_with("OK - a.example expires in "),
        "{check:?}"
    );
}

#[test]
fn a_certificate_from_a_generate_csr_hook_is_judged_as_cron_judges_it() {
    // The hook hands over an RSA CSR made elsewhere while KEY_ALGO is left at its default (EC):
    // --cron keeps the certificate, so --check and the metrics must not call it wrong.
    let pebble = Pebble::start();
    let folder = common::TempDir::new("csr-metrics");
    let metrics = folder.path().join("desiccant.prom");
    let env = Env::new(&pebble, "");
    let (key, csr) = (env.path().join("own.key"), env.path().join("own.csr"));
    let made = std::process::Command::new(common::require("openssl", "openssl"))
        .args(["req", "-new", "-newkey", "rsa:2048", "-nodes"])
        .args(["-subj", "/CN=csr4.example"])
        .args(["-addext", "subjectAltName=DNS:csr4.example", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&csr)
        .output()
        .unwrap();
    assert!(made.status.success(), "{made:?}");
    let hook = env.path().join("hook.sh");
    common::script(
        &hook,
        &format!(
            "case \"$1\" in generate_csr) cat '{}';; esac\nexit 0",
            csr.display()
        ),
    );
    env.write_config(&format!(
        "HOOK={}\nMETRICS_FILE={}\n",
        hook.display(),
        metrics.display()
    ));
    env.domains("csr4.example\n");
    env.run(&["--cron", "--accept-terms"]).expect(0);
    env.run(&["--cron"]).expect(0);
    let valid = "desiccant_certificate_state{certificate=\"csr4.example\",state=\"valid\"} 1";
    assert!(
        fs::read_to_string(&metrics).unwrap().contains(valid),
        "--cron's metrics"
    );

    // Before, --check asked domains.txt's names with KEY_ALGO's key type: "CRITICAL - csr4.example
    // key type differs from the config".
    let check = env.run(&["--check"]);
    check.expect(0);
    assert!(
        check.stdout().starts_with("OK - csr4.example expires in "),
        "{check:?}"
    );
    assert!(
        fs::read_to_string(&metrics).unwrap().contains(valid),
        "--check's metrics: {}",
        fs::read_to_string(&metrics).unwrap()
    );
}

/// Every file under `dir` with its contents, for a before/after comparison.
fn listing(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let path = e.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, fs::read(&path).unwrap())
        })
        .collect();
    files.sort();
    files
}

#[test]
fn deferred_attempts_are_shown_and_a_check_writes_nothing() {
    let pebble = Pebble::start();
    let env = Env::new(&pebble, "");
    env.domains("a.example\n");
    env.run(&["--cron", "--accept-terms"]).expect(0);

    // The CA unreachable: the renewal (forced) is deferred, and the next --check says why.
    env.write_config("CA=https://127.0.0.1:9/dir\n");
    env.run(&["--cron", "--force"]).expect(75);
    env.write_config("");
    let attempt = |run: &common::Run| -> String {
        run.stdout()
            .lines()
            .find(|l| l.starts_with("a.example: last attempt "))
            .unwrap_or_else(|| panic!("no last attempt line: {run:?}"))
            .to_string()
    };
    // Before, only a "failed" attempt had a line.
    let check = env.run(&["--check"]);
    check.expect(0);
    let line = attempt(&check);
    assert!(line.contains(" UTC deferred at directory: "), "{check:?}");
    assert!(line.contains("127.0.0.1:9"), "{check:?}");

    // No directory at the URL (a 404): failed at the directory, not at an order.
    let nodir = pebble.directory_url.replace("/dir", "/nodir");
    env.write_config(&format!("CA={nodir}\n"));
    env.run(&["--cron", "--force"]).expect(1);
    env.write_config("");
    let state: serde_json::Value =
        serde_json::from_slice(&fs::read(env.path().join("state/a.example.json")).unwrap())
            .unwrap();
    assert_eq!(state["last_attempt"]["outcome"], "failed", "{state}");
    assert_eq!(state["last_attempt"]["step"], "directory", "{state}");
    let check = env.run(&["--check"]);
    assert!(
        attempt(&check).contains(" UTC failed at directory: "),
        "{check:?}"
    );

    // A check reads the disk only: state/ is as it was, and no cache of the live certificates
    // appears (before, --check wrote state/.live.json).
    let _ = fs::remove_file(env.path().join("state/.live.json"));
    let before = listing(&env.path().join("state"));
    env.run(&["--check"]).expect(0);
    env.run(&["--check", "--json"]).expect(0);
    assert_eq!(listing(&env.path().join("state")), before);
}

#[test]
fn a_monitoring_user_that_cannot_read_state_leaves_the_metrics_file_alone() {
    use std::os::unix::fs::PermissionsExt;
    let monitor = User::new("metrics");
    let pebble = Pebble::start();
    let folder = common::TempDir::new("node-exporter");
    fs::set_permissions(folder.path(), fs::Permissions::from_mode(0o755)).unwrap();
    // The metrics folder is opened from / one folder at a time, as node_exporter's is
    // (/var/lib/prometheus/node-exporter, every folder on the way 0755): the test's temporary
    // folders on the way (0700 under tests/run.sh) are made readable like those.
    for ancestor in folder.path().ancestors().skip(1) {
        use std::os::unix::fs::MetadataExt;
        let mode = fs::metadata(ancestor).unwrap().mode() & 0o7777;
        if mode & 0o005 != 0o005 {
            fs::set_permissions(ancestor, fs::Permissions::from_mode(mode | 0o005)).unwrap();
        }
    }
    let file = folder.path().join("desiccant.prom");
    let env = Env::new(&pebble, &format!("METRICS_FILE={}\n", file.display()));
    env.domains("a.example\n");
    env.run(&["--cron", "--accept-terms"]).expect(0);
    let written = fs::read_to_string(&file).unwrap();
    assert!(written.contains("desiccant_last_run_timestamp_seconds "));
    // README's group set-up: the folder, the config and domains.txt, not state/.
    let config = env.path().join("config");
    for (path, mode) in [
        (env.path().to_path_buf(), 0o750),
        (config.clone(), 0o640),
        (env.path().join("domains.txt"), 0o640),
    ] {
        std::os::unix::fs::chown(&path, None, Some(monitor.gid)).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
    }

    // Before, every check added "error: ...desiccant.prom: cannot write: Permission denied"
    // to the plugin's output.
    let check = monitor.run(&env, &["--check"]);
    check.expect(0);
    assert_eq!(check.stderr(), "", "{check:?}");
    assert_eq!(fs::read_to_string(&file).unwrap(), written);
    // Before, a user that could write there replaced root's file with one that lacked the
    // last run and counted no failures.
    std::os::unix::fs::chown(folder.path(), Some(monitor.uid), None).unwrap();
    let check = monitor.run(&env, &["--check"]);
    check.expect(0);
    assert_eq!(check.stderr(), "", "{check:?}");
    assert_eq!(fs::read_to_string(&file).unwrap(), written);

    // A user that reads state/ writes the file; a folder that refuses it is named.
    std::os::unix::fs::chown(folder.path(), Some(0), None).unwrap();
    let state = env.path().join("state");
    std::os::unix::fs::chown(&state, None, Some(monitor.gid)).unwrap();
    fs::set_permissions(&state, fs::Permissions::from_mode(0o750)).unwrap();
    for entry in fs::read_dir(&state).unwrap() {
        let path = entry.unwrap().path();
        std::os::unix::fs::chown(&path, None, Some(monitor.gid)).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
    }
    let check = monitor.run(&env, &["--check"]);
    check.expect(0);
    let refused = format!(
        "error: {}: cannot write METRICS_FILE in this folder: Permission denied",
        folder.path().display()
    );
    assert!(check.stderr().starts_with(&refused), "{check:?}");
    assert_eq!(fs::read_to_string(&file).unwrap(), written);
}
