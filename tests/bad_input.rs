//! Bad input is refused before anything is sent or written, with the file and line to fix.

mod common;

use std::fs;

use common::{Env, Pebble};

/// The BASEDIR's entries, sorted.
fn entries(env: &Env) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(env.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn a_bad_domains_txt_line_exits_78_naming_the_line_and_sends_nothing() {
    let pebble = Pebble::start();
    let env = Env::new(&pebble, "");
    env.domains("good.example\n# comment\nbad_name.example www.example\n");
    let requests_before = pebble.requests_counted();
    let run = env.run(&["--cron", "--accept-terms"]);
    run.expect(78);
    let domains = env.path().join("domains.txt");
    assert!(
        run.stderr().contains(&format!(
            "{}:3: bad_name.example: '_' is not allowed",
            domains.display()
        )),
        "{run:?}"
    );
    assert_eq!(
        entries(&env),
        ["config", "domains.txt"],
        "something was written"
    );
    assert_eq!(
        pebble.requests_after(requests_before),
        Vec::<String>::new(),
        "a request was sent"
    );
}

#[test]
fn a_wildcard_without_alias_and_a_duplicate_folder_are_refused() {
    let pebble = Pebble::start();
    let env = Env::new(&pebble, "");
    env.domains("*.example.org example.org\n");
    let run = env.run(&["--cron", "--accept-terms"]);
    run.expect(78);
    assert!(
        run.stderr()
            .contains("domains.txt:1: *.example.org is a wildcard"),
        "{run:?}"
    );
    env.domains("a.example\nb.example > a.example\n");
    let run = env.run(&["--cron", "--accept-terms"]);
    run.expect(78);
    assert!(
        run.stderr()
            .contains("domains.txt:2: certificate name a.example is already used"),
        "{run:?}"
    );
    assert_eq!(entries(&env), ["config", "domains.txt"]);
}

#[test]
fn config_errors_exit_78_naming_the_line() {
    let pebble = Pebble::start();
    let env = Env::new(&pebble, "KEY_ALGO=rsa\nKEYSIZE=1024\n");
    env.domains("a.example\n");
    let run = env.run(&["--cron", "--accept-terms"]);
    run.expect(78);
    let config = env.path().join("config");
    assert!(
        run.stderr().contains(&format!(
            "{}:6: KEYSIZE 1024 is not supported",
            config.display()
        )),
        "{run:?}"
    );
    env.write_config("RENEW_DAYS=$(date)\n");
    let run = env.run(&["--cron"]);
    run.expect(78);
    assert!(
        run.stderr()
            .contains(":5: command substitution is not supported"),
        "{run:?}"
    );
    assert_eq!(entries(&env), ["config", "domains.txt"]);
}

#[test]
fn a_missing_webroot_exits_78_before_any_request() {
    let pebble = Pebble::start();
    let env = Env::new(&pebble, "WELLKNOWN=/nonexistent/acme-challenge\n");
    env.domains("a.example\n");
    let requests_before = pebble.requests_counted();
    let run = env.run(&["--cron", "--accept-terms"]);
    run.expect(78);
    assert!(
        run.stderr()
            .contains("/nonexistent/acme-challenge: WELLKNOWN folder does not exist"),
        "{run:?}"
    );
    assert_eq!(
        pebble.requests_after(requests_before),
        Vec::<String>::new(),
        "a request was sent"
    );
}

#[test]
fn bad_command_lines_exit_2() {
    let pebble = Pebble::start();
    let env = Env::new(&pebble, "");
    env.run(&[]).expect(2);
    env.run(&["--cron", "--register"]).expect(2);
    env.run(&["--cron", "--no-such-flag"]).expect(2);
    env.run(&["-gc", "--cron"]).expect(2);
    env.run(&["--reason", "11", "--revoke", "x"]).expect(2);
}

#[test]
fn under_systemd_lines_carry_journal_priorities() {
    let pebble = Pebble::start();
    let env = Env::new(&pebble, "OCSP_FETCH=yes\n");
    env.domains("bad_name.example\n");
    let output = env
        .command(&["--cron"])
        .env("JOURNAL_STREAM", "8:12345")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(78));
    let err = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = err.lines().collect();
    assert!(lines[0].starts_with("<4>warning: "), "{err}");
    assert!(lines[1].starts_with("<3>error: "), "{err}");
}
