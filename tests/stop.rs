//! A run asked to stop (SIGTERM as `systemctl stop` sends it, RUN_TIMEOUT) takes away what it
//! put in place, runs the cleaning hooks, frees the lock and exits 75; one that cannot stop in
//! time (a request that hangs) exits anyway.

mod common;

use std::fs;
use std::net::TcpListener;
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::invariants::every_deployed_challenge_cleaned;
use common::{Env, Pebble, Run, script};

/// A hook that logs every call, and in deploy_challenge marks `BASEDIR/deploying` with its
/// pid and sleeps (a slow DNS API, say).
fn slow_hook(env: &Env) {
    let hook = env.path().join("hook.sh");
    script(
        &hook,
        &format!(
            r#"printf '%s\n' "$*" >> "{base}/calls"
if [ "$1" = deploy_challenge ]; then
    sleep 60 &
    echo $! > "{base}/deploying"
    wait
fi
exit 0"#,
            base = env.path().display()
        ),
    );
    env.write_config(&format!("HOOK=\"{}\"\n", hook.display()));
}

fn finish(child: Child) -> (Run, Duration) {
    let started = Instant::now();
    let output = child.wait_with_output().unwrap();
    (
        Run {
            args: vec!["--cron".into()],
            output,
        },
        started.elapsed(),
    )
}

fn sigterm(child: &Child) {
    // SAFETY: kill(2) on a child we started and have not reaped.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
}

/// Whether a process runs (a zombie waiting for its reaper does not).
fn runs(pid: &str) -> bool {
    fs::read_to_string(format!("/proc/{}/stat", pid.trim())).is_ok_and(|stat| {
        stat.rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z'))
    })
}

/// What a stopped run must leave: no challenge file, every deploy_challenge cleaned, no
/// journal, no lock, no certificate, and the hook's child gone.
fn tidied(env: &Env) {
    let files: Vec<_> = fs::read_dir(&env.webroot).unwrap().flatten().collect();
    assert!(files.is_empty(), "challenge files left: {files:?}");
    every_deployed_challenge_cleaned(&env.path().join("calls"));
    let calls = fs::read_to_string(env.path().join("calls")).unwrap();
    assert!(calls.contains("clean_challenge "), "{calls}");
    assert!(calls.lines().any(|l| l.starts_with("exit_hook")), "{calls}");
    assert!(!calls.contains("deploy_cert "), "{calls}");
    assert!(!env.path().join("lock").exists(), "the lock file is left");
    assert!(!env.cert_dir("stop.example").join("cert.pem").exists());
    let journals: Vec<_> = fs::read_dir(env.path().join("state"))
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(
        !journals
            .iter()
            .any(|n| n.to_string_lossy().ends_with(".challenges.json")),
        "{journals:?}"
    );
    // The run stopped the hook's process group before it exited; the kernel may take a
    // moment to end the child.
    let pid = fs::read_to_string(env.path().join("deploying")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while runs(&pid) {
        assert!(
            Instant::now() < deadline,
            "the hook's child {} still runs 5 s after the run ended",
            pid.trim()
        );
        thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn sigterm_takes_the_challenges_away_runs_the_cleaning_hooks_and_exits_75() {
    let pebble = Pebble::start();
    let env = Env::new(&pebble, "");
    slow_hook(&env);
    env.domains("stop.example\n");
    let mut child = env
        .command(&["--cron", "--accept-terms"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    common::wait_for_file(&env.path().join("deploying"), &mut child);
    sigterm(&child);
    let (run, took) = finish(child);
    assert_eq!(run.code(), 75, "{run:?}");
    assert!(took < Duration::from_secs(4), "took {took:?} to stop");
    assert!(run.stderr().contains("stopped by SIGTERM"), "{run:?}");
    tidied(&env);

    // The next run issues as if nothing happened (the hook no longer sleeps).
    script(
        &env.path().join("hook.sh"),
        &format!(
            "printf '%s\\n' \"$*\" >> \"{}/calls\"",
            env.path().display()
        ),
    );
    env.run(&["--cron"]).expect(0);
    every_deployed_challenge_cleaned(&env.path().join("calls"));
}

#[test]
fn run_timeout_stops_a_run_like_sigterm() {
    let pebble = Pebble::start();
    let env = Env::new(&pebble, "");
    slow_hook(&env);
    let config = fs::read_to_string(env.path().join("config")).unwrap();
    fs::write(
        env.path().join("config"),
        format!("{config}RUN_TIMEOUT=1\n"),
    )
    .unwrap();
    env.domains("stop.example\n");
    let started = Instant::now();
    let run = env.run(&["--cron", "--accept-terms"]);
    assert_eq!(run.code(), 75, "{run:?}");
    assert!(started.elapsed() < Duration::from_secs(5), "{run:?}");
    assert!(run.stderr().contains("RUN_TIMEOUT passed"), "{run:?}");
    tidied(&env);
}

#[test]
fn a_run_stuck_in_a_request_exits_75_within_the_grace_period() {
    // A CA that accepts the connection and never answers.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let ca = format!(
        "https://127.0.0.1:{}/dir",
        listener.local_addr().unwrap().port()
    );
    let base = common::TempDir::new("stuck");
    fs::write(
        base.path().join("config"),
        format!("CA=\"{ca}\"\nWELLKNOWN=\"{}\"\n", base.path().display()),
    )
    .unwrap();
    fs::write(base.path().join("domains.txt"), "stuck.example\n").unwrap();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_desiccant"))
        .arg("--config")
        .arg(base.path().join("config"))
        .args(["--cron", "--accept-terms"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Once it holds the lock it is in the request.
    let lock = base.path().join("lock");
    let deadline = Instant::now() + Duration::from_secs(10);
    while fs::read_to_string(&lock).map_or(true, |s| s.trim().is_empty()) {
        assert!(Instant::now() < deadline, "never took the lock");
        thread::sleep(Duration::from_millis(10));
    }
    let _connection = listener.accept().unwrap();
    sigterm(&child);
    let (run, took) = finish(child);
    assert_eq!(run.output.status.signal(), None, "{run:?}");
    assert_eq!(run.code(), 75, "{run:?}");
    assert!(
        took < Duration::from_secs(8),
        "took {took:?}, past the grace period"
    );
    assert!(run.stderr().contains("exiting now"), "{run:?}");
}
