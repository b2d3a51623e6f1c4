//! Crash tests against a real Pebble: the binary, built with its kill points
//! (`--features failpoints`, see src/failpoint.rs), is killed with SIGKILL at every point a
//! clean run passes, for a first issuance (with the account's creation) and for a renewal;
//! then at random moments. After each kill the checker of tests/common/invariants.rs looks at
//! what a user would see, then a clean run must finish the job, and the checker looks again.

mod common;

use std::fs;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::invariants::{Recovered, Snapshot, Stage, after_fault, no_secret_in};
use common::{Env, Pebble, Run, script};

const NAME: &str = "crash.example";

/// A hook that logs every call (handler and arguments) to `BASEDIR/calls`, and fails
/// `deploy_cert` while `BASEDIR/fail-deploy` exists.
fn logging_hook(env: &Env) -> PathBuf {
    let hook = env.path().join("hook.sh");
    let calls = env.path().join("calls");
    let fail = env.path().join("fail-deploy");
    script(
        &hook,
        &format!(
            r#"printf '%s\n' "$*" >> "{calls}"
if [ "$1" = deploy_cert ] && [ -e "{fail}" ]; then echo "reload failed" >&2; exit 1; fi
exit 0"#,
            calls = calls.display(),
            fail = fail.display()
        ),
    );
    hook
}

/// A BASEDIR for one certificate with the logging hook; nonces are never refused, so that
/// every run passes the same points.
fn env(pebble: &Pebble) -> Env {
    let env = Env::new(pebble, "");
    let hook = logging_hook(&env);
    env.write_config(&format!("HOOK=\"{}\"\n", hook.display()));
    env.domains(&format!("{NAME}\n"));
    env
}

fn pebble() -> Pebble {
    Pebble::start_without_refused_nonces()
}

/// Runs the binary with `DESICCANT_FAILPOINT=point` (None: no kill), logging every point
/// passed to `log` when given.
fn run_at(env: &Env, args: &[&str], point: Option<&str>, log: Option<&Path>) -> Run {
    let mut cmd = env.command(args);
    if let Some(p) = point {
        cmd.env("DESICCANT_FAILPOINT", p);
    }
    if let Some(l) = log {
        cmd.env("DESICCANT_FAILPOINT_LOG", l);
    }
    let output = cmd.output().unwrap();
    Run {
        args: args.iter().map(|s| s.to_string()).collect(),
        output,
    }
}

fn killed(run: &Run) -> bool {
    run.output.status.signal() == Some(9)
}

/// The points a clean run passes, in order, each once.
fn points_of(env: &Env, args: &[&str]) -> Vec<String> {
    let log = env.path().join("points");
    run_at(env, args, None, Some(&log)).expect(0);
    let mut points: Vec<String> = Vec::new();
    for p in fs::read_to_string(&log).unwrap().lines() {
        if !points.iter().any(|q| q == p) {
            points.push(p.to_string());
        }
    }
    fs::remove_file(&log).unwrap();
    points
}

/// How far a run killed at `point` got with the links.
fn stage_of(point: &str) -> Stage {
    match point {
        "switched-cert.pem" | "switched-cert.p12" | "deploy-cert-before" | "deploy-cert-after"
        | "state-written" => Stage::Switched,
        p if p.starts_with("switched-") => Stage::Switching,
        _ => Stage::Untouched,
    }
}

/// The points at which the set is whole on disk and noted as pending: the next run must make
/// it live and deploy it without a new order.
fn finished_without_order(point: &str) -> bool {
    point == "pending-noted"
        || point.starts_with("switched-")
        || point == "deploy-cert-before"
        || point == "deploy-cert-after"
}

/// The checks after the clean run that follows a kill: I1, I2, I6, I7.
fn recovered(env: &Env, root: &[u8]) {
    Recovered {
        env,
        certs: &[(NAME, &[NAME])],
        root_der: root,
        hook_log: Some(&env.path().join("calls")),
    }
    .check();
}

/// The orders Pebble logged after its first `since` requests. Fails when its whole log shows
/// no order, so that a 0 cannot come from a log, or a filter, that counts nothing: each test
/// that expects none has had an order before.
fn orders(pebble: &Pebble, since: usize) -> usize {
    let count = |sent: Vec<String>| sent.iter().filter(|r| *r == "POST /order-plz").count();
    assert!(
        count(pebble.requests_after(0)) > 0,
        "Pebble's log shows no order at all: {:#?}",
        pebble.requests_after(0)
    );
    count(pebble.requests_after(since))
}

fn deploys(env: &Env) -> usize {
    fs::read_to_string(env.path().join("calls"))
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with("deploy_cert "))
        .count()
}

/// Every point a first issuance passes must be in this list: a point renamed or lost in the
/// code fails here rather than going untested.
const FIRST_ISSUANCE: &[&str] = &[
    "locked",
    "account-key-written",
    "account-registered",
    "account-registration-written",
    "order-created",
    "key-generated",
    "csr-made",
    "challenges-deployed",
    "challenge-answered",
    "order-finalized",
    "certificate-downloaded",
    "written-privkey",
    "written-chain",
    "written-fullchain",
    "written-csr",
    "written-cert",
    "pending-noted",
    "switched-privkey.pem",
    "switched-chain.pem",
    "switched-fullchain.pem",
    "switched-cert.csr",
    "switched-cert.pem",
    "deploy-cert-before",
    "deploy-cert-after",
    "state-written",
];

#[test]
fn a_first_issuance_killed_at_every_point_is_finished_by_the_next_run() {
    let pebble = pebble();
    let root = pebble.root_der();
    let probe = env(&pebble);
    let points = points_of(&probe, &["--cron", "--accept-terms"]);
    eprintln!(
        "{} kill points in a first issuance: {points:?}",
        points.len()
    );
    for p in FIRST_ISSUANCE {
        assert!(
            points.iter().any(|q| q == p),
            "a first issuance no longer passes {p}: {points:?}"
        );
    }
    for point in &points {
        let env = env(&pebble);
        let before = Snapshot::take(&env, &[NAME]);
        let run = run_at(&env, &["--cron", "--accept-terms"], Some(point), None);
        assert!(killed(&run), "not killed at {point}: {run:?}");
        no_secret_in(&run.stdout());
        no_secret_in(&run.stderr());
        after_fault(&env, &[NAME], &before, stage_of(point));

        let since = pebble.requests();
        let deployed_before = deploys(&env);
        let next = run_at(&env, &["--cron", "--accept-terms"], None, None);
        assert_eq!(next.code(), 0, "the run after a kill at {point}: {next:?}");
        no_secret_in(&next.stdout());
        no_secret_in(&next.stderr());
        let ordered = orders(&pebble, since);
        if finished_without_order(point) {
            assert_eq!(ordered, 0, "killed at {point}: the next run ordered again");
        } else {
            assert!(ordered <= 1, "killed at {point}: {ordered} orders");
        }
        if point != "deploy-cert-after" && point != "state-written" {
            assert_eq!(
                deploys(&env),
                deployed_before + 1,
                "killed at {point}: deploy_cert was not run (once) by the next run"
            );
        }
        recovered(&env, &root);
    }
}

#[test]
fn a_renewal_killed_at_every_point_keeps_the_old_certificate_or_finishes() {
    let pebble = pebble();
    let root = pebble.root_der();
    let env = env(&pebble);
    run_at(&env, &["--cron", "--accept-terms"], None, None).expect(0);
    let points = points_of(&env, &["--cron", "--force"]);
    eprintln!("{} kill points in a renewal: {points:?}", points.len());
    for p in [
        "locked",
        "order-created",
        "written-cert",
        "switched-cert.pem",
        "deploy-cert-after",
    ] {
        assert!(points.iter().any(|q| q == p), "{p} not in {points:?}");
    }
    assert!(
        !points.iter().any(|p| p.starts_with("account-")),
        "a renewal registered again: {points:?}"
    );
    for point in &points {
        // Pebble reuses a valid authorization for 1 order in 100 even with
        // PEBBLE_AUTHZREUSE=0 (its newOrder makes a new one when `rand.Intn(100) > 0`): a
        // renewal then answers no challenge and never reaches the challenges' kill points. A
        // run that ended well without answering a challenge is made again, 3 times at most.
        let mut tries = 0;
        let (before, run) = loop {
            tries += 1;
            let before = Snapshot::take(&env, &[NAME]);
            let since = pebble.requests();
            let run = run_at(&env, &["--cron", "--force"], Some(point), None);
            let answered = pebble
                .requests_after(since)
                .iter()
                .any(|r| r.starts_with("POST /chalZ/"));
            if killed(&run) || run.code() != 0 || answered || tries == 3 {
                break (before, run);
            }
        };
        assert!(killed(&run), "not killed at {point}: {run:?}");
        after_fault(&env, &[NAME], &before, stage_of(point));

        // Not forced: the old certificate is still good, so only an interrupted renewal is
        // finished, and nothing ordered.
        let since = pebble.requests();
        let deployed_before = deploys(&env);
        let next = run_at(&env, &["--cron"], None, None);
        assert_eq!(next.code(), 0, "the run after a kill at {point}: {next:?}");
        assert_eq!(
            orders(&pebble, since),
            0,
            "killed at {point}: the next run ordered"
        );
        let after = Snapshot::take(&env, &[NAME]);
        if finished_without_order(point) {
            assert!(
                after.links != before.links,
                "killed at {point}: not finished: {:?}",
                after.targets()
            );
            if point != "deploy-cert-after" {
                assert_eq!(deploys(&env), deployed_before + 1, "killed at {point}");
            }
        } else if stage_of(point) == Stage::Untouched {
            assert!(
                after.links == before.links,
                "I3: killed at {point}, the live set changed: {:?} -> {:?}",
                before.targets(),
                after.targets()
            );
            assert_eq!(deploys(&env), deployed_before, "killed at {point}");
        }
        recovered(&env, &root);
    }
}

#[test]
fn a_failed_deploy_cert_is_run_again_by_the_next_run_without_an_order() {
    let pebble = pebble();
    let root = pebble.root_der();
    let env = env(&pebble);
    fs::write(env.path().join("fail-deploy"), "").unwrap();
    let first = run_at(&env, &["--cron", "--accept-terms"], None, None);
    assert_ne!(
        first.code(),
        0,
        "a failed deploy_cert must fail the run: {first:?}"
    );
    assert!(
        first.stderr().contains("deploy_cert failed")
            && first.stderr().contains("runs deploy_cert again"),
        "{first:?}"
    );
    assert_eq!(deploys(&env), 1);
    // The certificate is live: the hook failed after the switch.
    let live = Snapshot::take(&env, &[NAME]);

    // Still failing: tried again, still no order, still an error.
    let since = pebble.requests();
    let second = run_at(&env, &["--cron"], None, None);
    assert_ne!(second.code(), 0, "{second:?}");
    assert_eq!(deploys(&env), 2);
    assert_eq!(orders(&pebble, since), 0);

    fs::remove_file(env.path().join("fail-deploy")).unwrap();
    let since = pebble.requests();
    let third = run_at(&env, &["--cron"], None, None);
    third.expect(0);
    assert!(
        third
            .stdout()
            .contains("finishing what an earlier run left undone"),
        "{third:?}"
    );
    assert_eq!(deploys(&env), 3);
    assert_eq!(orders(&pebble, since), 0);
    let now = Snapshot::take(&env, &[NAME]);
    assert!(
        now.links == live.links,
        "{:?} {:?}",
        now.targets(),
        live.targets()
    );

    // Done: the next run neither deploys nor orders.
    let since = pebble.requests();
    run_at(&env, &["--cron"], None, None).expect(0);
    assert_eq!(deploys(&env), 3);
    assert_eq!(orders(&pebble, since), 0);
    recovered(&env, &root);
}

/// An order counts against `ORDER_LIMIT` from the moment the CA accepts it: a run killed
/// right after leaves it noted in `state/`, and the next run does not order again while it is
/// inside the window.
#[test]
fn an_order_of_a_killed_run_counts_against_the_order_limit() {
    let pebble = pebble();
    let env = env(&pebble);
    let hook = env.path().join("hook.sh");
    env.write_config(&format!("HOOK=\"{}\"\nORDER_LIMIT=1/3h\n", hook.display()));
    let first = run_at(
        &env,
        &["--cron", "--accept-terms"],
        Some("order-created"),
        None,
    );
    assert!(killed(&first), "{first:?}");

    let since = pebble.requests();
    let second = run_at(&env, &["--cron"], None, None);
    second.expect(75);
    assert!(
        second.stderr().contains(
            "1 certificate is left for the next run: ORDER_LIMIT allows 1 new orders in 3 h \
             and 1 was sent in that time; 0 ordered in this run"
        ),
        "{second:?}"
    );
    assert_eq!(orders(&pebble, since), 0);
    assert!(!env.cert_dir(NAME).join("cert.pem").exists());

    // Four hours on, the order has left the window: the certificate is issued.
    let later = env.run_at("+4h", &["--cron"]);
    later.expect(0);
    assert!(
        later.stdout().contains(&format!("{NAME}: issued")),
        "{later:?}"
    );
}

/// Kills forced renewals at random moments (a seeded generator, so a failure can be
/// replayed): 100 in CI, `DESICCANT_LONG=1` for 2000. After each kill the checker runs, and a
/// clean run must leave a whole, valid set with no order of its own.
#[test]
fn renewals_killed_at_random_moments_never_lose_the_certificate() {
    let rounds = if std::env::var_os("DESICCANT_LONG").is_some() {
        2000
    } else {
        100
    };
    let pebble = pebble();
    let root = pebble.root_der();
    let env = env(&pebble);
    run_at(&env, &["--cron", "--accept-terms"], None, None).expect(0);
    // How long a forced renewal takes here, to spread the kills over it: the quickest of
    // three, as one slowed down by the tests beside this one would put most kills after the end.
    let mut span = (0..3)
        .map(|_| {
            let t = Instant::now();
            run_at(&env, &["--cron", "--force"], None, None).expect(0);
            t.elapsed().as_micros().max(1000) as u64
        })
        .min()
        .unwrap_or(1000);
    let mut seed: u64 = std::env::var("DESICCANT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_1234_abcd_0001);
    let mut kills = 0;
    for round in 0..rounds {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let delay = Duration::from_micros(seed % (span + span / 4));
        let before = Snapshot::take(&env, &[NAME]);
        let mut child = env
            .command(&["--cron", "--force"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Killed at `delay`, unless it ended before: then it shows how quick a renewal is now,
        // and the kills that follow are spread over the quickest seen, so that a span measured
        // while the machine was busier does not put most of them after the end.
        let started = Instant::now();
        let ended = loop {
            if child.try_wait().unwrap().is_some() {
                break Some(started.elapsed());
            }
            let left = delay.saturating_sub(started.elapsed());
            if left.is_zero() {
                break None;
            }
            thread::sleep(left.min(Duration::from_micros(200)));
        };
        match ended {
            Some(took) => span = span.min(took.as_micros().max(1000) as u64),
            None => {
                let _ = child.kill();
                if child.wait().unwrap().signal() == Some(9) {
                    kills += 1;
                }
            }
        }
        // Killed anywhere: each link at the old set or the one new set.
        after_fault(&env, &[NAME], &before, Stage::Switching);
        // A hook the killed run was starting holds a copy of the lock until it has started
        // (its copy closes on exec): the next run may find the lock busy for that instant.
        let next = run_at(&env, &["--cron", "--lock-wait", "5"], None, None);
        assert_eq!(
            next.code(),
            0,
            "round {round} (kill after {delay:?}): {next:?}"
        );
        recovered(&env, &root);
        cleanup(&env);
    }
    eprintln!("{kills} of {rounds} runs killed before they ended; none lost a certificate");
    assert!(
        kills * 2 >= rounds,
        "only {kills} of {rounds} runs were killed before they ended"
    );
}

/// Removes old sets now and then, as `--cleanup` does, so that the folder stays small.
fn cleanup(env: &Env) {
    let _ = Command::new(env!("CARGO_BIN_EXE_desiccant"))
        .arg("--config")
        .arg(env.path().join("config"))
        .arg("--cleanup-delete")
        .output();
}
