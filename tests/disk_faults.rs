//! A full, failing or read-only disk, one call at a time (tests/common/disk_faults.c, loaded
//! with LD_PRELOAD): the run fails with an error that names the file and the system's words,
//! the certificate in use stays byte-for-byte what it was, nothing half-written is left, and a
//! later run on a healthy disk ends well.

mod common;

use std::fs;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use common::invariants::{Recovered, Snapshot, Stage, after_fault, no_secret_in};
use common::{Env, Pebble, Run, TempDir, require};

const NAME: &str = "disk.example";
const ENOSPC: i32 = 28;
const EIO: i32 = 5;
const EROFS: i32 = 30;

/// The injector, compiled once per test process.
fn shim() -> PathBuf {
    static SHIM: OnceLock<(TempDir, PathBuf)> = OnceLock::new();
    SHIM.get_or_init(|| {
        let cc = require("cc", "gcc");
        let dir = TempDir::new("shim");
        let so = dir.path().join("disk_faults.so");
        let out = Command::new(cc)
            .args(["-shared", "-fPIC", "-O1", "-o"])
            .arg(&so)
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/common/disk_faults.c"
            ))
            .arg("-ldl")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "cannot build the disk fault injector: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        (dir, so)
    })
    .1
    .clone()
}

/// One fault: which call, on which path, failing with which error, at which matching call.
struct Fault {
    op: &'static str,
    path: &'static str,
    errno: i32,
    nth: u32,
    /// What the error message must say besides the system's words.
    names: &'static str,
}

fn run_with(env: &Env, args: &[&str], fault: &Fault) -> Run {
    let output = env
        .command(args)
        .env("LD_PRELOAD", shim())
        .env("DISK_FAULT_OP", fault.op)
        .env("DISK_FAULT_MATCH", fault.path)
        .env("DISK_FAULT_ERRNO", fault.errno.to_string())
        .env("DISK_FAULT_NTH", fault.nth.to_string())
        .output()
        .unwrap();
    Run {
        args: args.iter().map(|s| s.to_string()).collect(),
        output,
    }
}

fn words(errno: i32) -> &'static str {
    match errno {
        ENOSPC => "No space left on device",
        EIO => "Input/output error",
        EROFS => "Read-only file system",
        _ => "",
    }
}

/// Faults on a renewal over a live certificate: every one fails the run with exit 1, leaves
/// the old set in use, and the next healthy run is clean.
#[test]
fn a_full_failing_or_read_only_disk_during_a_renewal_keeps_the_old_certificate() {
    let pebble = Pebble::start_without_refused_nonces();
    let root = pebble.root_der();
    let env = Env::new(&pebble, "");
    env.domains(&format!("{NAME}\n"));
    env.run(&["--cron", "--accept-terms"]).expect(0);

    let faults = [
        // The new set, file by file: the data, the flush, the rename into place.
        Fault {
            op: "write",
            path: ".privkey-",
            errno: ENOSPC,
            nth: 1,
            names: "privkey-",
        },
        Fault {
            op: "write",
            path: ".cert-",
            errno: ENOSPC,
            nth: 1,
            names: "cert-",
        },
        Fault {
            op: "fsync",
            path: ".fullchain-",
            errno: EIO,
            nth: 1,
            names: "fullchain-",
        },
        Fault {
            op: "rename",
            path: "/chain-",
            errno: EIO,
            nth: 1,
            names: "chain-",
        },
        Fault {
            op: "open",
            path: "/certs/",
            errno: EROFS,
            nth: 1,
            names: "certs/",
        },
        // The links: the second one fails after the first moved; it is moved back.
        Fault {
            op: "symlink",
            path: ".chain.pem.tmp",
            errno: ENOSPC,
            nth: 1,
            names: "chain.pem",
        },
        Fault {
            op: "rename",
            path: "/cert.pem",
            errno: EIO,
            nth: 1,
            names: "cert.pem",
        },
        // The challenge file in the webroot, and our state.
        Fault {
            op: "open",
            path: "/webroot",
            errno: EROFS,
            nth: 1,
            names: "webroot",
        },
        Fault {
            op: "write",
            path: "state/.disk.example.json",
            errno: ENOSPC,
            nth: 1,
            names: "state/disk.example.json",
        },
    ];
    for fault in &faults {
        let label = format!("{} {} {}", fault.op, fault.path, words(fault.errno));
        // Pebble reuses a valid authorization for 1 order in 100 even with
        // PEBBLE_AUTHZREUSE=0 (its newOrder makes a new one when `rand.Intn(100) > 0`): a
        // renewal then writes no challenge file, and a fault on the webroot is never met. A
        // run that ended well without answering a challenge is made again, 3 times at most.
        let mut tries = 0;
        let (before, run) = loop {
            tries += 1;
            let before = Snapshot::take(&env, &[NAME]);
            let since = pebble.requests();
            let run = run_with(&env, &["--cron", "--force"], fault);
            let answered = pebble
                .requests_after(since)
                .iter()
                .any(|r| r.starts_with("POST /chalZ/"));
            if run.code() != 0 || answered || tries == 3 {
                break (before, run);
            }
        };
        assert!(
            run.stderr().contains("disk fault:"),
            "{label}: the fault was never injected: {run:?}"
        );
        assert_eq!(run.code(), 1, "{label}: {run:?}");
        let stderr = run.stderr();
        assert!(
            stderr
                .lines()
                .filter(|l| l.starts_with("error:"))
                .any(|l| l.contains(fault.names) && l.contains(words(fault.errno))),
            "{label}: the error must name the file and say why: {run:?}"
        );
        no_secret_in(&run.stderr());
        no_secret_in(&run.stdout());
        // I3: byte-for-byte the old set, on the failed run itself.
        after_fault(&env, &[NAME], &before, Stage::Untouched);

        // A healthy run: nothing new is ordered for a certificate still good, an interrupted
        // switch is finished, and everything is tidy.
        env.run(&["--cron"]).expect(0);
        Recovered {
            env: &env,
            certs: &[(NAME, &[NAME])],
            root_der: &root,
            hook_log: None,
        }
        .check();
    }
    // And a forced renewal on a healthy disk still works after all that.
    env.run(&["--cron", "--force"]).expect(0);
}

/// A full disk while the account is created leaves no empty or half account behind: the next
/// run registers (or finds) the account and issues.
#[test]
fn a_full_disk_while_the_account_is_created_leaves_no_empty_account_file() {
    let pebble = Pebble::start_without_refused_nonces();
    let root = pebble.root_der();
    for (path, nth) in [
        ("account_key.pem", 1),
        ("registration_info.json", 1),
        ("account_id.json", 1),
    ] {
        let env = Env::new(&pebble, "");
        env.domains(&format!("{NAME}\n"));
        let before = Snapshot::take(&env, &[NAME]);
        let fault = Fault {
            op: "write",
            path,
            errno: ENOSPC,
            nth,
            names: path,
        };
        let run = run_with(&env, &["--cron", "--accept-terms"], &fault);
        assert!(run.stderr().contains("disk fault:"), "{path}: {run:?}");
        assert_ne!(run.code(), 0, "{path}: {run:?}");
        assert!(
            run.stderr().contains(words(ENOSPC)),
            "{path}: the error must say why: {run:?}"
        );
        // I5: whatever account file is there is whole.
        after_fault(&env, &[NAME], &before, Stage::Untouched);
        assert!(
            fs::read_dir(env.account_dir())
                .map(|d| d
                    .flatten()
                    .all(|e| !e.file_name().to_string_lossy().contains(".tmp-")))
                .unwrap_or(true),
            "{path}: a temporary account file is left"
        );
        env.run(&["--cron", "--accept-terms"]).expect(0);
        Recovered {
            env: &env,
            certs: &[(NAME, &[NAME])],
            root_der: &root,
            hook_log: None,
        }
        .check();
    }
}
