//! The run lock: a second run waits, then exits 75; a run killed with SIGKILL blocks nothing.

mod common;

use std::net::TcpListener;
use std::path::Path;
use std::process::Child;
use std::thread;
use std::time::{Duration, Instant};

use common::{Env, Pebble, check_live_set};

/// A CA address that accepts connections and never answers, so a run that reaches it holds
/// the lock until it is killed.
fn silent_ca() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "https://127.0.0.1:{}/dir",
        listener.local_addr().unwrap().port()
    );
    (listener, url)
}

/// Starts a run against the silent CA and returns once it holds the lock.
fn start_stuck_run(env: &Env, ca: &str) -> Child {
    env.domains("locked.example\n");
    let mut child = env
        .command(&["--cron", "--accept-terms", "--ca", ca])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let lock = env.path().join("lock");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !has_pid(&lock) {
        assert!(
            Instant::now() < deadline,
            "the first run never took the lock"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "the first run ended early"
        );
        thread::sleep(Duration::from_millis(10));
    }
    child
}

fn has_pid(lock: &Path) -> bool {
    std::fs::read_to_string(lock).is_ok_and(|s| s.trim().parse::<u32>().is_ok())
}

fn kill9(mut child: Child) {
    child.kill().unwrap(); // SIGKILL: no destructor runs, the lock file stays behind
    child.wait().unwrap();
}

#[test]
fn a_second_run_waits_then_exits_75_and_a_killed_run_blocks_nothing() {
    let pebble = Pebble::start();
    let env = Env::new(&pebble, "");
    let (_silent, ca) = silent_ca();
    let first = start_stuck_run(&env, &ca);

    let started = Instant::now();
    let second = env.run(&["--cron", "--lock-wait", "1"]);
    second.expect(75);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "did not wait: {second:?}"
    );
    assert!(
        second
            .stderr()
            .contains("another desiccant run holds the lock"),
        "{second:?}"
    );
    assert!(second.stderr().contains("/lock"), "{second:?}");

    kill9(first);
    assert!(
        env.path().join("lock").exists(),
        "the killed run's lock file is expected to stay"
    );

    // The next run takes the lock at once (no --lock-wait) and does its work.
    let third = env.run(&["--cron", "--accept-terms"]);
    third.expect(0);
    check_live_set(
        &env.cert_dir("locked.example"),
        &["locked.example"],
        &pebble.root_der(),
    );
    assert!(
        !env.path().join("lock").exists(),
        "a finished run left its lock file"
    );
}

#[test]
fn a_waiting_run_goes_on_once_the_holder_dies() {
    let pebble = Pebble::start();
    let env = Env::new(&pebble, "");
    let (_silent, ca) = silent_ca();
    let first = start_stuck_run(&env, &ca);

    // The second run, under strace: once it has tried the lock and found it held, it waits.
    let trace = env.path().join("trace");
    let started = Instant::now();
    let waiting = std::process::Command::new(common::require("strace", "strace"))
        .args(["-f", "-qq", "-e", "trace=flock", "-o"])
        .arg(&trace)
        .arg(env!("CARGO_BIN_EXE_desiccant"))
        .arg("--config")
        .arg(env.path().join("config"))
        .args(["--cron", "--accept-terms", "--lock-wait", "60"])
        .env_remove("JOURNAL_STREAM")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let refused = |line: &str| {
        line.contains("flock(") && line.contains("LOCK_EX|LOCK_NB)") && line.contains("= -1 EAGAIN")
    };
    while !common::read(&trace).lines().any(refused) {
        assert!(
            Instant::now() < deadline,
            "the second run never found the lock held:\n{}",
            common::read(&trace)
        );
        thread::sleep(Duration::from_millis(10));
    }
    kill9(first);
    let output = waiting.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert!(started.elapsed() < Duration::from_secs(30));
    check_live_set(
        &env.cert_dir("locked.example"),
        &["locked.example"],
        &pebble.root_der(),
    );
}

#[test]
fn no_lock_runs_beside_a_holder() {
    let pebble = Pebble::start();
    let env = Env::new(&pebble, "");
    let (_silent, ca) = silent_ca();
    let first = start_stuck_run(&env, &ca);
    let run = env.run(&["--cron", "--accept-terms", "--no-lock"]);
    run.expect(0);
    kill9(first);
}
