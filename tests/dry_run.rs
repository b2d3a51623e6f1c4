//! `--dry-run` against a real Pebble: every certificate goes through the whole path, the
//! challenge hooks run with `DRY_RUN=yes`, the deploy hooks do not, and a listing of BASEDIR
//! taken before and after shows that nothing in it changed; the temporary folder is gone.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use common::{Env, Pebble, PebbleOptions, Run, TempDir};

/// A hook that appends one line per call to `calls`: `DRY_RUN=<value or unset>`, the handler,
/// then each argument in brackets.
fn recording_hook(env: &Env, calls: &Path) -> PathBuf {
    let hook = env.path().join("hook.sh");
    fs::write(
        &hook,
        format!(
            r#"#!/bin/sh
line="DRY_RUN=${{DRY_RUN-unset}} $1"; shift
for a in "$@"; do line="$line [$(printf '%s' "$a" | tr '\n' ' ')]"; done
printf '%s\n' "$line" >> "{calls}"
exit 0
"#,
            calls = calls.display()
        ),
    )
    .unwrap();
    fs::set_permissions(&hook, fs::Permissions::from_mode(0o755)).unwrap();
    hook
}

/// A config with the recording hook and a POST_RENEW_HOOK that records its call too.
fn config_with_hooks(env: &Env, calls: &Path, extra: &str) {
    let hook = recording_hook(env, calls);
    env.write_config(&format!(
        "HOOK=\"{}\"\nPOST_RENEW_HOOK='echo \"DRY_RUN=${{DRY_RUN-unset}} post_renew_hook\" >> {}'\n{extra}",
        hook.display(),
        calls.display()
    ));
}

/// The recorded calls, one per line, and clears the record.
fn calls(path: &Path) -> Vec<String> {
    let text = fs::read_to_string(path).unwrap_or_default();
    let _ = fs::remove_file(path);
    text.lines().map(str::to_string).collect()
}

fn handler(line: &str) -> &str {
    line.split(' ').nth(1).unwrap_or("")
}

fn first_arg(line: &str) -> &str {
    line.split(" [")
        .nth(1)
        .map_or("", |a| a.trim_end_matches(']'))
}

/// Every path under `dir` (not following links) with its type, mode, owner, size, SHA-256
/// of its content, mtime and link target; `skip` names (relative) left out.
fn listing(dir: &Path, skip: &[&str]) -> BTreeMap<String, String> {
    fn walk(root: &Path, dir: &Path, skip: &[&str], out: &mut BTreeMap<String, String>) {
        let mut entries: Vec<_> = fs::read_dir(dir).unwrap().map(|e| e.unwrap()).collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let path = e.path();
            let rel = path.strip_prefix(root).unwrap().display().to_string();
            if skip.contains(&rel.as_str()) {
                continue;
            }
            let m = fs::symlink_metadata(&path).unwrap();
            let kind = if m.file_type().is_symlink() {
                format!("link -> {}", fs::read_link(&path).unwrap().display())
            } else if m.is_dir() {
                "dir".to_string()
            } else {
                let digest = ring::digest::digest(&ring::digest::SHA256, &fs::read(&path).unwrap());
                let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
                format!("file {} bytes sha256 {hex}", m.len())
            };
            out.insert(
                rel,
                format!(
                    "{kind} mode {:o} uid {} mtime {}.{:09}",
                    m.mode(),
                    m.uid(),
                    m.mtime(),
                    m.mtime_nsec()
                ),
            );
            if m.is_dir() {
                walk(root, &path, skip, out);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, skip, &mut out);
    out
}

/// Runs desiccant in `env` with TMPDIR set to `tmp`.
fn run_with_tmp(env: &Env, tmp: &Path, args: &[&str]) -> Run {
    let output = env.command(args).env("TMPDIR", tmp).output().unwrap();
    Run {
        args: args.iter().map(|s| s.to_string()).collect(),
        output,
    }
}

fn assert_empty(dir: &Path) {
    let left: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(left.is_empty(), "the temporary folder was left: {left:?}");
}

/// What changed between two listings.
fn changes(before: &BTreeMap<String, String>, after: &BTreeMap<String, String>) -> Vec<String> {
    let mut out = Vec::new();
    for (path, was) in before {
        match after.get(path) {
            None => out.push(format!("removed {path}: {was}")),
            Some(now) if now != was => out.push(format!("changed {path}: {was} => {now}")),
            _ => {}
        }
    }
    for (path, now) in after {
        if !before.contains_key(path) {
            out.push(format!("added {path}: {now}"));
        }
    }
    out
}

#[test]
fn a_dry_run_tries_every_certificate_keeps_nothing_and_deploys_nothing() {
    let pebble = Pebble::start();
    let env = Env::new(&pebble, "");
    let record_dir = TempDir::new("dry-record");
    let record = record_dir.path().join("calls");
    // A kept key (PRIVATE_KEY_RENEW=no) is read by the dry run, never rewritten; the metrics
    // file of the real runs (inside BASEDIR, so that the listing covers it) is left alone.
    let metrics = env.path().join("desiccant.prom");
    config_with_hooks(
        &env,
        &record,
        &format!("PRIVATE_KEY_RENEW=no\nMETRICS_FILE={}\n", metrics.display()),
    );
    env.domains("one.example\ntwo.example www.two.example\n");
    env.run(&["--cron", "--accept-terms"]).expect(0);
    let real = calls(&record);
    assert!(
        real.iter().any(|l| handler(l) == "deploy_cert"),
        "{real:#?}"
    );
    assert!(
        real.iter().all(|l| l.starts_with("DRY_RUN=unset ")),
        "{real:#?}"
    );
    // A third certificate that a real run would issue now; the other two are not due.
    env.domains("one.example\ntwo.example www.two.example\nthree.example\n");
    let tmp = TempDir::new("dry-tmp");
    let before = listing(env.path(), &["lock"]);
    assert!(before.contains_key("state"), "{before:#?}");
    assert!(before.contains_key("chains"), "{before:#?}");
    assert!(before.contains_key("desiccant.prom"), "{before:#?}");

    let run = run_with_tmp(&env, tmp.path(), &["--cron", "--dry-run"]);
    run.expect(0);
    let after = listing(env.path(), &["lock"]);
    assert_eq!(changes(&before, &after), Vec::<String>::new(), "{run:?}");
    assert_empty(tmp.path());

    let out = run.stdout();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0],
        format!(
            "dry run against {}, the configured CA, which has no test endpoint; nothing is kept \
             or deployed",
            pebble.directory_url
        ),
        "{run:?}"
    );
    for name in ["one.example", "two.example"] {
        let line = lines
            .iter()
            .find(|l| l.starts_with(&format!("{name}: ")))
            .unwrap_or_else(|| panic!("no line for {name}: {run:?}"));
        assert!(
            line.starts_with(&format!(
                "{name}: dry run passed: a certificate valid until "
            )),
            "{line}"
        );
        assert!(
            line.contains(
                " was issued and checked, and not kept; a real run keeps it: not due before "
            ),
            "{line}"
        );
    }
    let three = lines
        .iter()
        .find(|l| l.starts_with("three.example: "))
        .unwrap_or_else(|| panic!("no line for three.example: {run:?}"));
    assert!(
        three.ends_with(
            " was issued and checked, and not kept; a real run renews it now (no certificate yet)"
        ),
        "{three}"
    );
    assert_eq!(lines.len(), 4, "{run:?}");
    assert_eq!(run.stderr(), "", "{run:?}");

    let got = calls(&record);
    assert!(
        got.iter().all(|l| l.starts_with("DRY_RUN=yes ")),
        "every hook call of a dry run has DRY_RUN=yes: {got:#?}"
    );
    let handlers: Vec<&str> = got.iter().map(|l| handler(l)).collect();
    for forbidden in [
        "deploy_cert",
        "sync_cert",
        "unchanged_cert",
        "post_renew_hook",
    ] {
        assert!(!handlers.contains(&forbidden), "{forbidden}: {got:#?}");
    }
    assert!(handlers.contains(&"startup_hook"), "{got:#?}");
    assert!(handlers.contains(&"exit_hook"), "{got:#?}");
    let challenged = |h: &str| {
        let mut names: Vec<&str> = got
            .iter()
            .filter(|l| handler(l) == h)
            .map(|l| first_arg(l))
            .collect();
        names.sort();
        names
    };
    let all = [
        "one.example",
        "three.example",
        "two.example",
        "www.two.example",
    ];
    assert_eq!(challenged("deploy_challenge"), all, "{got:#?}");
    assert_eq!(challenged("clean_challenge"), all, "{got:#?}");

    // The JSON report says it was a dry run, and what a real run decides.
    let run = run_with_tmp(&env, tmp.path(), &["--cron", "--dry-run", "--json"]);
    run.expect(0);
    let report: serde_json::Value = serde_json::from_str(&run.stdout()).unwrap();
    assert_eq!(report["dry_run"], true, "{run:?}");
    assert_eq!(report["ca"], pebble.directory_url.as_str());
    assert_eq!(report["exit_status"], 0);
    let certs = report["certificates"].as_array().unwrap();
    let decisions: Vec<(&str, &str, &str)> = certs
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap(),
                c["status"].as_str().unwrap(),
                c["decision"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        decisions,
        [
            ("one.example", "tested", "keep"),
            ("two.example", "tested", "keep"),
            ("three.example", "tested", "missing"),
        ]
    );
    assert_eq!(
        changes(&before, &listing(env.path(), &["lock"])),
        Vec::<String>::new()
    );
    assert_empty(tmp.path());
}

#[test]
fn a_failed_dry_run_exits_1_and_records_no_back_off() {
    let pebble = Pebble::start_with(PebbleOptions {
        refuse_hosts: vec!["failing.example".into()],
        ..PebbleOptions::default()
    });
    let env = Env::new(&pebble, "");
    let record_dir = TempDir::new("dry-record");
    let record = record_dir.path().join("calls");
    config_with_hooks(&env, &record, "");
    env.domains("good.example\n");
    env.run(&["--cron", "--accept-terms"]).expect(0);
    env.domains("good.example\nfailing.example\n");
    let _ = calls(&record);
    let tmp = TempDir::new("dry-tmp");
    let before = listing(env.path(), &["lock"]);

    let run = run_with_tmp(&env, tmp.path(), &["--cron", "--dry-run"]);
    run.expect(1);
    assert_eq!(
        changes(&before, &listing(env.path(), &["lock"])),
        Vec::<String>::new(),
        "{run:?}"
    );
    assert!(!env.path().join("state/failing.example.json").exists());
    assert_empty(tmp.path());
    let err = run.stderr();
    assert!(
        err.contains("error: failing.example: http-01 challenge invalid: "),
        "{run:?}"
    );
    assert!(
        run.stdout().contains(
            "failing.example: dry run failed; a real run renews it now (no certificate yet)\n"
        ),
        "{run:?}"
    );
    assert!(
        run.stdout().contains("good.example: dry run passed: "),
        "{run:?}"
    );
    let got = calls(&record);
    assert!(
        got.iter().all(|l| l.starts_with("DRY_RUN=yes ")),
        "{got:#?}"
    );
    assert!(
        got.iter()
            .any(|l| handler(l) == "invalid_challenge" && first_arg(l) == "failing.example"),
        "{got:#?}"
    );
    assert!(
        got.iter()
            .any(|l| handler(l) == "clean_challenge" && first_arg(l) == "failing.example"),
        "{got:#?}"
    );
    let exit = got.iter().find(|l| handler(l) == "exit_hook").unwrap();
    assert_eq!(
        first_arg(exit),
        "1 of 2 certificates failed: failing.example",
        "{got:#?}"
    );

    // A real run then tries it as the first time: no back-off was left by the dry run.
    let real = env.run(&["--cron"]);
    real.expect(1);
    assert!(
        !real.stderr().contains("not tried again before"),
        "{real:?}"
    );
    assert!(env.path().join("state/failing.example.json").exists());
    let _ = calls(&record);
    // Now it is backed off, and a dry run respects that as --cron does, unless --force.
    let before = listing(env.path(), &["lock"]);
    let run = run_with_tmp(&env, tmp.path(), &["--cron", "--dry-run"]);
    run.expect(1);
    assert!(
        run.stderr()
            .contains("error: failing.example: not tried again before "),
        "{run:?}"
    );
    let tried = |got: &[String]| {
        got.iter()
            .any(|l| handler(l) == "deploy_challenge" && first_arg(l) == "failing.example")
    };
    let got = calls(&record);
    assert!(!tried(&got), "{got:#?}");
    let run = run_with_tmp(&env, tmp.path(), &["--cron", "--dry-run", "--force"]);
    run.expect(1);
    let got = calls(&record);
    assert!(tried(&got), "{got:#?}");
    assert_eq!(
        changes(&before, &listing(env.path(), &["lock"])),
        Vec::<String>::new(),
        "{run:?}"
    );
    assert_empty(tmp.path());
}

#[test]
fn a_hook_that_fails_deploy_challenge_fails_the_dry_run_and_changes_nothing() {
    let pebble = Pebble::start();
    let env = Env::new(&pebble, "");
    let record_dir = TempDir::new("dry-record");
    let record = record_dir.path().join("calls");
    config_with_hooks(&env, &record, "");
    env.domains("hooked.example\n");
    env.run(&["--cron", "--accept-terms"]).expect(0);
    // The same hook, which now fails deploy_challenge.
    let hook = env.path().join("hook.sh");
    let text = fs::read_to_string(&hook).unwrap().replace(
        "exit 0\n",
        "case \"$line\" in *\" deploy_challenge \"*) exit 1;; esac\nexit 0\n",
    );
    fs::write(&hook, text).unwrap();
    let _ = calls(&record);
    let tmp = TempDir::new("dry-tmp");
    let before = listing(env.path(), &["lock"]);
    let run = run_with_tmp(&env, tmp.path(), &["--cron", "--dry-run"]);
    run.expect(1);
    assert_eq!(
        changes(&before, &listing(env.path(), &["lock"])),
        Vec::<String>::new(),
        "{run:?}"
    );
    assert_empty(tmp.path());
    assert!(
        run.stdout()
            .contains("hooked.example: dry run failed; a real run keeps it: not due before "),
        "{run:?}"
    );
    let got = calls(&record);
    assert!(
        got.iter().all(|l| l.starts_with("DRY_RUN=yes ")),
        "{got:#?}"
    );
    assert!(
        got.iter().any(|l| handler(l) == "deploy_challenge"),
        "{got:#?}"
    );
}

#[test]
fn signcsr_dry_run_orders_checks_and_prints_nothing() {
    let pebble = Pebble::start();
    let env = Env::new(&pebble, "");
    env.run(&["--register", "--accept-terms"]).expect(0);
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["csr.example".into()]).unwrap();
    params.distinguished_name = rcgen::DistinguishedName::new();
    let csr = params.serialize_request(&key).unwrap().pem().unwrap();
    let path = env.path().join("request.csr");
    fs::write(&path, csr).unwrap();
    let tmp = TempDir::new("dry-tmp");
    let before = listing(env.path(), &["lock"]);
    let run = run_with_tmp(
        &env,
        tmp.path(),
        &[
            "--signcsr",
            path.to_str().unwrap(),
            "--full-chain",
            "--dry-run",
        ],
    );
    run.expect(0);
    // Scripts send stdout into a certificate file: a test certificate never goes there.
    assert_eq!(run.stdout(), "", "{run:?}");
    let err = run.stderr();
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 2, "{run:?}");
    assert!(lines[0].starts_with("dry run against "), "{run:?}");
    assert!(
        lines[1].starts_with("dry run passed: a certificate for csr.example valid until "),
        "{run:?}"
    );
    assert!(lines[1].ends_with(" was issued and checked, and not printed"));
    assert_eq!(
        changes(&before, &listing(env.path(), &["lock"])),
        Vec::<String>::new()
    );
    assert_empty(tmp.path());
}

#[test]
fn dry_run_with_another_command_is_a_usage_error() {
    let env = Env::for_ca(
        "https://127.0.0.1:1/dir",
        Path::new("/nonexistent"),
        Path::new("/nonexistent"),
        "",
    );
    for command in [
        &["--register"][..],
        &["--cleanup"],
        &["--revoke", "x.pem"],
        &["--account"],
        &["--env"],
    ] {
        let mut args = command.to_vec();
        args.push("--dry-run");
        let run = env.run(&args);
        run.expect(2);
        assert_eq!(
            run.stderr(),
            "error: --dry-run works with --cron and --signcsr only\n",
            "{run:?}"
        );
    }
}

#[test]
fn a_dry_run_stopped_by_sigterm_removes_its_temporary_folder() {
    let pebble = Pebble::start();
    let env = Env::new(&pebble, "");
    let record_dir = TempDir::new("dry-record");
    let record = record_dir.path().join("calls");
    config_with_hooks(&env, &record, "");
    env.domains("stop.example\n");
    env.run(&["--cron", "--accept-terms"]).expect(0);
    // The hook now waits in deploy_challenge (a slow DNS API, say), and says when it is there.
    let deploying = record_dir.path().join("deploying");
    let hook = env.path().join("hook.sh");
    let text = fs::read_to_string(&hook).unwrap().replace(
        "exit 0\n",
        &format!(
            "case \"$line\" in *\" deploy_challenge \"*) sleep 60 & echo $! > {}; wait;; esac\nexit 0\n",
            deploying.display()
        ),
    );
    fs::write(&hook, text).unwrap();
    let tmp = TempDir::new("dry-tmp");
    let before = listing(env.path(), &["lock"]);
    let mut child = env
        .command(&["--cron", "--dry-run"])
        .env("TMPDIR", tmp.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    common::wait_for_file(&deploying, &mut child);
    let scratch: Vec<_> = fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(
        scratch.len(),
        1,
        "the dry run's temporary folder: {scratch:?}"
    );
    assert_eq!(common::mode(&scratch[0]), 0o700);
    // SAFETY: kill(2) on a child we started and have not reaped.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let run = Run {
        args: vec!["--cron".into(), "--dry-run".into()],
        output: child.wait_with_output().unwrap(),
    };
    run.expect(75);
    assert!(run.stderr().contains("stopped by SIGTERM"), "{run:?}");
    assert_empty(tmp.path());
    assert_eq!(
        changes(&before, &listing(env.path(), &["lock"])),
        Vec::<String>::new(),
        "{run:?}"
    );
    let got = calls(&record);
    assert!(
        got.iter().any(|l| handler(l) == "clean_challenge"),
        "{got:#?}"
    );
}

#[test]
fn without_an_account_a_dry_run_registers_a_throwaway_one_and_keeps_it_nowhere() {
    let pebble = Pebble::start();
    let env = Env::new(&pebble, "");
    env.domains("fresh.example\n");
    let tmp = TempDir::new("dry-tmp");
    // As a real run, it needs the terms accepted to register.
    let run = run_with_tmp(&env, tmp.path(), &["--cron", "--dry-run"]);
    run.expect(1);
    assert!(
        run.stderr().contains("error: account: no account with "),
        "{run:?}"
    );
    let run = run_with_tmp(&env, tmp.path(), &["--cron", "--dry-run", "--accept-terms"]);
    run.expect(0);
    assert!(
        run.stdout().contains(&format!(
            "account: {} holds no account of this CA: a throwaway one was registered for the \
             dry run (",
            env.path().join("accounts").display()
        )),
        "{run:?}"
    );
    assert!(
        run.stdout().contains("fresh.example: dry run passed: "),
        "{run:?}"
    );
    for kept in ["accounts", "certs", "state", "chains"] {
        assert!(!env.path().join(kept).exists(), "{kept} was made: {run:?}");
    }
    assert_empty(tmp.path());
}

#[test]
fn a_dry_run_and_check_leave_a_folder_another_user_was_given_as_it_is() {
    let pebble = Pebble::start();
    let env = Env::new(&pebble, "");
    env.domains("one.example\n");
    env.run(&["--cron", "--accept-terms"]).expect(0);
    let folder = env.cert_dir("one.example");
    // As an earlier version left it: given to another user, and open to the group's writes.
    std::os::unix::fs::chown(&folder, Some(65534), Some(65534)).unwrap();
    fs::set_permissions(&folder, fs::Permissions::from_mode(0o775)).unwrap();
    let owner = |p: &Path| {
        let m = fs::metadata(p).unwrap();
        (m.uid(), m.gid(), m.mode() & 0o7777)
    };
    let before = listing(env.path(), &["lock"]);
    let tmp = TempDir::new("dry-tmp");

    let run = run_with_tmp(&env, tmp.path(), &["--cron", "--dry-run"]);
    run.expect(0);
    assert_eq!(
        run.stderr(),
        format!(
            "warning: {}: the folder is another user's or open to others' writes; a real run \
             takes it back, a dry run leaves it as it is\n",
            folder.display()
        ),
        "{run:?}"
    );
    assert_eq!(owner(&folder), (65534, 65534, 0o775), "{run:?}");
    let run = env.run(&["--check"]);
    run.expect(0);
    assert!(!run.stderr().contains("the folder"), "{run:?}");
    assert_eq!(owner(&folder), (65534, 65534, 0o775), "{run:?}");
    assert_eq!(
        changes(&before, &listing(env.path(), &["lock"])),
        Vec::<String>::new()
    );

    // A real run takes it back, as before.
    let run = env.run(&["--cron"]);
    run.expect(0);
    assert!(
        run.stderr()
            .contains("the folder was another user's or open to others' writes; it is the run's"),
        "{run:?}"
    );
    assert_eq!(owner(&folder).0, 0, "{run:?}");
}

#[test]
fn a_killed_dry_run_leaves_a_challenge_journal_and_the_next_run_cleans_up() {
    let pebble = Pebble::start();
    let env = Env::new(&pebble, "");
    let record_dir = TempDir::new("dry-record");
    let record = record_dir.path().join("calls");
    config_with_hooks(&env, &record, "");
    env.domains("kill.example\n");
    env.run(&["--cron", "--accept-terms"]).expect(0);
    let _ = calls(&record);
    let deploying = record_dir.path().join("deploying");
    let hook = env.path().join("hook.sh");
    let text = fs::read_to_string(&hook).unwrap().replace(
        "exit 0\n",
        &format!(
            "case \"$line\" in *\" deploy_challenge \"*) sleep 60 & echo $! > {}; wait;; esac\nexit 0\n",
            deploying.display()
        ),
    );
    fs::write(&hook, text).unwrap();
    let challenge_files = || -> Vec<PathBuf> {
        fs::read_dir(&pebble.webroot)
            .map(|d| d.map(|e| e.unwrap().path()).collect())
            .unwrap_or_default()
    };
    assert_eq!(challenge_files(), Vec::<PathBuf>::new());
    let journal = env.path().join("state/kill.example.challenges.json");
    let tmp = TempDir::new("dry-tmp");
    let mut child = env
        .command(&["--cron", "--dry-run"])
        .env("TMPDIR", tmp.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    common::wait_for_file(&deploying, &mut child);
    child.kill().unwrap();
    child.wait().unwrap();
    // The hook's wait ends with its sleep.
    let sleep: i32 = fs::read_to_string(&deploying)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // SAFETY: kill(2) on the sleep the hook started.
    unsafe {
        libc::kill(sleep, libc::SIGKILL);
    }
    let left = challenge_files();
    assert_eq!(left.len(), 1, "the challenge file in place: {left:?}");
    assert!(journal.exists(), "no challenge journal");

    // The next real run (nothing due) takes the challenge away, with clean_challenge.
    fs::write(
        &hook,
        fs::read_to_string(&hook)
            .unwrap()
            .replace("sleep 60 & echo $! >", "true ||"),
    )
    .unwrap();
    let _ = calls(&record);
    let run = env.run(&["--cron"]);
    run.expect(0);
    assert!(
        run.stdout()
            .contains("kill.example: taking away the challenges an interrupted run left in place"),
        "{run:?}"
    );
    assert_eq!(challenge_files(), Vec::<PathBuf>::new(), "{run:?}");
    assert!(!journal.exists(), "{run:?}");
    let got = calls(&record);
    assert!(
        got.iter()
            .any(|l| handler(l) == "clean_challenge" && first_arg(l) == "kill.example"),
        "{got:#?}"
    );
}
