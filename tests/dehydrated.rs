//! Compatibility with the real dehydrated (Debian's package): it registers and issues into a
//! BASEDIR, desiccant takes that BASEDIR over as it is, and dehydrated can take it back.

mod common;

use std::fs;
use std::process::Command;

use common::{Env, Pebble, Run, check_live_set, require, script};

/// A hook for both tools: it records every call (handler and arguments in brackets) and
/// publishes dns-01 values in pebble-challtestsrv.
fn hook(env: &Env, pebble: &Pebble) -> std::path::PathBuf {
    require("curl", "curl");
    let path = env.path().join("hook.sh");
    let record = env.path().join("calls");
    script(
        &path,
        &format!(
            r#"line="$1"; for a in "$@"; do [ "$a" = "$1" ] || line="$line [$a]"; done
printf '%s\n' "$line" >> "{record}"
handler="$1"; shift
if [ "$CHALLENGETYPE" = dns-01 ]; then
  case "$handler" in
    deploy_challenge) curl -s -X POST -d "{{\"host\":\"_acme-challenge.$1.\",\"value\":\"$3\"}}" {mgmt}/set-txt >/dev/null ;;
    clean_challenge) curl -s -X POST -d "{{\"host\":\"_acme-challenge.$1.\"}}" {mgmt}/clear-txt >/dev/null ;;
  esac
fi
exit 0"#,
            record = record.display(),
            mgmt = pebble.dns_management
        ),
    );
    path
}

/// The recorded hook calls since the last look.
fn calls(env: &Env) -> Vec<String> {
    let path = env.path().join("calls");
    let text = fs::read_to_string(&path).unwrap_or_default();
    let _ = fs::remove_file(&path);
    text.lines().map(str::to_string).collect()
}

fn only(calls: &[String], handler: &str) -> Vec<String> {
    let mut v: Vec<String> = calls
        .iter()
        .filter(|l| l.split(' ').next() == Some(handler))
        .cloned()
        .collect();
    v.sort();
    v
}

fn dehydrated(env: &Env, args: &[&str]) -> Run {
    let bin = require("dehydrated", "dehydrated");
    let output = Command::new(bin)
        .arg("--config")
        .arg(env.path().join("config"))
        .args(args)
        .env_remove("JOURNAL_STREAM")
        .output()
        .unwrap();
    Run {
        args: std::iter::once("(dehydrated)".to_string())
            .chain(args.iter().map(|s| s.to_string()))
            .collect(),
        output,
    }
}

/// A dehydrated BASEDIR: its own config (as dehydrated reads it: curl told of Pebble's CA),
/// domains.txt with aliases, several names and a wildcard, a per-certificate config, a hook.
fn dehydrated_basedir(pebble: &Pebble) -> Env {
    let env = Env::new(pebble, "");
    let hook = hook(&env, pebble);
    env.write_config(&format!(
        "CURL_OPTS=\"--cacert {bundle}\"\nHOOK={hook}\nKEYSIZE=2048\nDNS_CHECK_SERVERS={dns}\n",
        bundle = pebble.ca_bundle.display(),
        hook = hook.display(),
        dns = pebble.dns_server
    ));
    env.domains("one.example\nmulti.example www.multi.example api.multi.example > multi\n*.wild.example wild.example > wild\n");
    let wild = env.cert_dir("wild");
    fs::create_dir_all(&wild).unwrap();
    fs::write(wild.join("config"), "CHALLENGETYPE=\"dns-01\"\n").unwrap();
    env
}

fn names() -> [(&'static str, Vec<&'static str>); 3] {
    [
        ("one.example", vec!["one.example"]),
        (
            "multi",
            vec!["multi.example", "www.multi.example", "api.multi.example"],
        ),
        ("wild", vec!["*.wild.example", "wild.example"]),
    ]
}

fn pebble() -> Pebble {
    // dehydrated does not retry refused nonces, so Pebble refuses none here.
    Pebble::start_without_refused_nonces()
}

#[test]
fn desiccant_takes_over_a_dehydrated_basedir_and_hands_it_back() {
    let pebble = pebble();
    let env = dehydrated_basedir(&pebble);
    dehydrated(&env, &["--register", "--accept-terms"]).expect(0);
    dehydrated(&env, &["--cron"]).expect(0);
    let root = pebble.root_der();
    for (dir, n) in names() {
        check_live_set(&env.cert_dir(dir), &n, &root);
    }
    // What dehydrated tells the hook when nothing is due.
    calls(&env);
    dehydrated(&env, &["--cron"]).expect(0);
    let dehydrated_noop = calls(&env);

    // desiccant on the same BASEDIR: nothing due, nothing printed, the same unchanged_cert
    // calls; no request but the directory, read once to learn whether the CA offers renewal
    // information.
    let requests = pebble.requests();
    let run = env.run(&["--cron"]);
    run.expect(0);
    assert_eq!(run.stdout() + &run.stderr(), "", "{run:?}");
    assert_eq!(pebble.requests_after(requests), ["GET /dir"]);
    let ours = calls(&env);
    assert_eq!(
        only(&ours, "unchanged_cert"),
        only(&dehydrated_noop, "unchanged_cert")
    );
    assert_eq!(only(&ours, "unchanged_cert").len(), 3);

    // Forced: renewed with dehydrated's account (no newAccount), deploy_cert as dehydrated calls it.
    // dehydrated's registration is in the log: an unchanged count below means no newAccount.
    let accounts = pebble_count(&pebble, "POST /sign-me-up");
    assert!(accounts >= 1, "Pebble's log shows no newAccount");
    dehydrated(&env, &["--cron", "--force"]).expect(0);
    let theirs = only(&calls(&env), "deploy_cert");
    let run = env.run(&["--cron", "--force"]);
    run.expect(0);
    let ours = only(&calls(&env), "deploy_cert");
    assert_eq!(
        pebble_count(&pebble, "POST /sign-me-up"),
        accounts,
        "a newAccount was sent"
    );
    assert_eq!(without_timestamps(&ours), without_timestamps(&theirs));
    for (dir, n) in names() {
        check_live_set(&env.cert_dir(dir), &n, &root);
    }

    // Hand-back: dehydrated finds desiccant's certificates valid and orders nothing.
    let orders = pebble_count(&pebble, "POST /order-plz");
    assert!(
        orders >= 9,
        "Pebble's log shows {orders} orders, not the 3 runs' 9"
    );
    let back = dehydrated(&env, &["--cron"]);
    back.expect(0);
    assert_eq!(pebble_count(&pebble, "POST /order-plz"), orders, "{back:?}");
    assert_eq!(only(&calls(&env), "unchanged_cert").len(), 3);
    assert!(!env.path().join("lock").exists());
}

fn pebble_count(pebble: &Pebble, what: &str) -> usize {
    fs::read_to_string(&pebble.log)
        .unwrap()
        .lines()
        .filter(|l| l.contains(what))
        .count()
}

/// deploy_cert lines with the timestamp argument (the last) made a placeholder.
fn without_timestamps(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .map(|l| match l.rsplit_once(" [") {
            Some((head, ts)) if ts.trim_end_matches(']').parse::<u64>().is_ok() => {
                format!("{head} [TS]")
            }
            _ => l.clone(),
        })
        .collect()
}

/// Every flag `dehydrated --help` lists, tried on desiccant: what it does there.
#[test]
fn every_flag_of_dehydrated_help() {
    let help = Command::new(require("dehydrated", "dehydrated"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout).into_owned();
    let mut listed: Vec<String> = help
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("--"))
        .map(|l| format!("--{}", l.split_whitespace().next().unwrap_or("")))
        .collect();
    listed.sort();
    listed.dedup();
    assert!(listed.len() >= 30, "{help}");

    let pebble = Pebble::start();
    let env = Env::new(&pebble, "");
    env.domains("flags.example\n");
    let csr = env.path().join("req.csr");
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["csr.flags.example".into()]).unwrap();
    params.distinguished_name = rcgen::DistinguishedName::new();
    fs::write(&csr, params.serialize_request(&key).unwrap().pem().unwrap()).unwrap();
    let alpn = env.path().join("alpn");
    let out = env.path().join("out");
    let other_txt = env.path().join("other.txt");
    fs::write(&other_txt, "other.flags.example\n").unwrap();
    let noop = env.path().join("noop.sh");
    script(&noop, "exit 0");
    let s = |p: &std::path::Path| p.to_str().unwrap().to_string();

    // (flag, the run that tries it, the exit code, text the output must hold)
    let tries: Vec<(&str, Vec<String>, i32, &str)> = vec![
        (
            "--accept-terms",
            vec!["--register".into(), "--accept-terms".into()],
            0,
            "registered",
        ),
        (
            "--register",
            vec!["--register".into()],
            0,
            "already registered",
        ),
        ("--version", vec!["--version".into()], 0, "desiccant "),
        ("--help", vec!["--help".into()], 0, "--cron"),
        (
            "--display-terms",
            vec!["--display-terms".into()],
            0,
            "terms of service",
        ),
        ("--env", vec!["--env".into()], 0, "declare -- CA="),
        ("--cron", vec!["--cron".into()], 0, "flags.example: issued"),
        (
            "--force",
            vec!["-c".into(), "-x".into()],
            0,
            "flags.example: issued",
        ),
        (
            "--force-validation",
            vec!["-c".into(), "-x".into(), "--force-validation".into()],
            0,
            "issued",
        ),
        ("--keep-going", vec!["-c".into(), "-g".into()], 0, ""),
        (
            "--no-lock",
            vec!["-c".into(), "-n".into(), "-x".into()],
            0,
            "issued",
        ),
        (
            "--lock-suffix",
            vec!["-c".into(), "--lock-suffix".into(), "x".into()],
            0,
            "",
        ),
        (
            "--domain",
            vec![
                "-c".into(),
                "-d".into(),
                "d.flags.example".into(),
                "-d".into(),
                "e.flags.example".into(),
            ],
            0,
            "d.flags.example: issued",
        ),
        (
            "--alias",
            vec![
                "-c".into(),
                "-d".into(),
                "f.flags.example".into(),
                "--alias".into(),
                "aliased".into(),
            ],
            0,
            "aliased: issued",
        ),
        (
            "--domains-txt",
            vec!["-c".into(), "--domains-txt".into(), s(&other_txt)],
            0,
            "other.flags.example: issued",
        ),
        (
            "--out",
            vec!["-c".into(), "-o".into(), s(&out)],
            0,
            "flags.example: issued",
        ),
        (
            "--algo",
            vec!["-c".into(), "-x".into(), "-a".into(), "prime256v1".into()],
            0,
            "issued",
        ),
        (
            "--challenge",
            vec!["-c".into(), "-x".into(), "-t".into(), "http-01".into()],
            0,
            "issued",
        ),
        (
            "--hook",
            vec!["-c".into(), "-x".into(), "-k".into(), s(&noop)],
            0,
            "issued",
        ),
        ("--config", vec!["-c".into()], 0, ""),
        (
            "--ca",
            vec![
                "-c".into(),
                "-x".into(),
                "--ca".into(),
                pebble.directory_url.clone(),
            ],
            0,
            "issued",
        ),
        (
            "--ipv4",
            vec!["-c".into(), "-x".into(), "-4".into()],
            0,
            "issued",
        ),
        // Pebble listens on an IPv4 loopback address only: over IPv6 it cannot be reached, a
        // temporary failure.
        (
            "--ipv6",
            vec!["-c".into(), "-x".into(), "-6".into()],
            75,
            "cannot reach",
        ),
        (
            "--ocsp",
            vec!["-c".into(), "--ocsp".into()],
            0,
            "OCSP_MUST_STAPLE is ignored",
        ),
        (
            "--alpn",
            vec![
                "-c".into(),
                "-x".into(),
                "--alpn".into(),
                s(&alpn),
                "-t".into(),
                "tls-alpn-01".into(),
            ],
            1,
            "tls-alpn-01 challenge invalid",
        ),
        (
            "--preferred-chain",
            // No chain of Pebble's ends at this name: the default is kept, with a warning.
            vec![
                "-c".into(),
                "-x".into(),
                "--preferred-chain".into(),
                "Some Other Root".into(),
            ],
            0,
            "no chain of the CA ends at an issuer named \"Some Other Root\"",
        ),
        ("--signcsr", vec!["-s".into(), s(&csr)], 0, "# CERT #"),
        (
            "--full-chain",
            vec!["-s".into(), s(&csr), "-fc".into()],
            0,
            "# CHAIN #",
        ),
        (
            "--privkey",
            vec![
                "-r".into(),
                s(&env.cert_dir("aliased").join("cert.pem")),
                "-p".into(),
                s(&env.cert_dir("aliased").join("privkey.pem")),
            ],
            0,
            "revoked",
        ),
        (
            "--revoke",
            vec![
                "-r".into(),
                s(&env.cert_dir("flags.example").join("cert.pem")),
            ],
            0,
            "revoked",
        ),
        ("--cleanup", vec!["-gc".into()], 0, "archived unused"),
        ("--cleanup-delete", vec!["-gcd".into()], 0, ""),
        ("--account", vec!["--account".into()], 0, "contact"),
        (
            "--deactivate",
            vec!["--deactivate".into()],
            0,
            "deactivated",
        ),
    ];
    let tried: Vec<String> = tries.iter().map(|t| t.0.to_string()).collect();
    for flag in &listed {
        assert!(
            tried.contains(flag),
            "{flag} from dehydrated --help is not tried here"
        );
    }
    for (flag, args, code, text) in tries {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let run = env.run(&args);
        assert_eq!(run.code(), code, "{flag}: {run:?}");
        assert!(
            run.stdout().contains(text) || run.stderr().contains(text),
            "{flag}: {run:?}"
        );
    }
    assert!(out.join("flags.example/cert.pem").exists());
}

/// The two never run at once: dehydrated only checks whether the lock file exists, so
/// desiccant keeps it while it runs and removes it after, and waits while dehydrated's is there.
#[test]
fn the_lock_keeps_dehydrated_and_desiccant_apart() {
    let pebble = pebble();
    let env = Env::new(&pebble, "ACCOUNT_KEY_ALGO=rsa\nKEYSIZE=2048\n");
    env.domains("lock.example\n");
    env.run(&["--cron", "--accept-terms"]).expect(0);
    // A BASEDIR that desiccant wrote, with an RSA account key: dehydrated goes on with it.
    fs::write(
        env.path().join("config"),
        fs::read_to_string(env.path().join("config")).unwrap()
            + &format!("CURL_OPTS=\"--cacert {}\"\n", pebble.ca_bundle.display()),
    )
    .unwrap();
    let back = dehydrated(&env, &["--cron"]);
    back.expect(0);
    assert!(back.stdout().contains("Skipping renew"), "{back:?}");

    // A lock file as dehydrated writes it, left by one that crashed: no dehydrated runs on
    // this BASEDIR, so desiccant takes it over with one notice line and does its work.
    let lock = env.path().join("lock");
    let date = Command::new("bash")
        .arg("-c")
        .arg(r#"( set -C; date > "$1" )"#)
        .arg("-")
        .arg(&lock)
        .status()
        .unwrap();
    assert!(date.success());
    let written = fs::read_to_string(&lock).unwrap();
    let run = env.run(&["--cron", "--force"]);
    run.expect(0);
    let err = run.stderr();
    let notices: Vec<&str> = err.lines().filter(|l| l.contains("taken over")).collect();
    assert_eq!(
        notices,
        [format!(
            "warning: {}: dehydrated's lock file, written {}, was left by a dehydrated that no \
             longer runs: taken over",
            lock.display(),
            written.trim()
        )],
        "{run:?}"
    );
    assert!(run.stdout().contains("lock.example: issued"), "{run:?}");
    assert!(!lock.exists(), "{run:?}");

    // While desiccant runs, dehydrated refuses to start.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let ca = format!(
        "https://127.0.0.1:{}/dir",
        silent.local_addr().unwrap().port()
    );
    let mut stuck = env
        .command(&["--cron", "--force", "--ca", &ca])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !fs::read_to_string(env.path().join("lock"))
        .is_ok_and(|s| s.trim().parse::<u32>().is_ok())
    {
        assert!(
            std::time::Instant::now() < deadline,
            "desiccant never took the lock"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let refused = dehydrated(&env, &["--cron"]);
    let _ = stuck.kill();
    let _ = stuck.wait();
    assert_ne!(refused.code(), 0, "{refused:?}");
    assert!(
        refused.stderr().contains("Lock file") && refused.stderr().contains("present"),
        "{refused:?}"
    );
    fs::remove_file(&lock).unwrap();

    // A dehydrated that runs on this BASEDIR, held in its startup_hook until the test opens a
    // FIFO: desiccant waits for it, then exits 75 ...
    let fifo = env.path().join("hold");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let started = env.path().join("held");
    let hold = env.path().join("hold.sh");
    script(
        &hold,
        &format!(
            "[ \"$1\" = startup_hook ] && touch {} && cat {} >/dev/null\nexit 0",
            started.display(),
            fifo.display()
        ),
    );
    let held = Command::new(require("dehydrated", "dehydrated"))
        .arg("--config")
        .arg(env.path().join("config"))
        .args(["--cron", "--hook"])
        .arg(&hold)
        .env_remove("JOURNAL_STREAM")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !started.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "dehydrated never reached its startup_hook"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let since = fs::read_to_string(&lock).unwrap();
    let run = env.run(&["--cron", "--force", "--lock-wait", "1"]);
    run.expect(75);
    assert!(
        run.stderr().contains(&format!(
            "dehydrated (process {}), since {} holds the lock (waited 1 s)",
            held.id(),
            since.trim()
        )),
        "{run:?}"
    );
    assert_eq!(fs::read_to_string(&lock).unwrap(), since);

    // ... or goes on once it has ended. The waiting run looks at the processes (strace shows
    // it reading their command lines) before dehydrated is let go.
    let trace = env.path().join("trace");
    let waiting = Command::new(require("strace", "strace"))
        .args(["-f", "-qq", "-e", "trace=openat", "-o"])
        .arg(&trace)
        .arg(env!("CARGO_BIN_EXE_desiccant"))
        .arg("--config")
        .arg(env.path().join("config"))
        .args(["--cron", "--force", "--lock-wait", "120"])
        .env_remove("JOURNAL_STREAM")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let looked = format!("\"/proc/{}/cmdline\"", held.id());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !common::read(&trace).contains(&looked) {
        assert!(
            std::time::Instant::now() < deadline,
            "the waiting run never looked at dehydrated:\n{}",
            common::read(&trace)
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    fs::write(&fifo, "go\n").unwrap();
    let held = held.wait_with_output().unwrap();
    assert_eq!(held.status.code(), Some(0), "{held:?}");
    let output = waiting.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert!(!err.contains("taken over"), "{err}");
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("lock.example: issued"),
        "{output:?}"
    );
    assert!(!lock.exists());
}

/// A crontab line of dehydrated's with only the program's name changed: no --config, an
/// empty environment (`env -i`), and dehydrated's /etc/dehydrated/config the only config on
/// the machine. Run in a mount namespace of its own (util-linux `unshare`) whose
/// /etc/dehydrated (and /etc/desiccant, /usr/local/etc/desiccant and
/// /usr/local/etc/dehydrated, where they exist) are empty tmpfs folders, and whose /dev has no
/// syslog socket: the machine's own files and syslog are not touched.
#[test]
fn a_crontab_line_with_the_name_swapped_reads_dehydrateds_config() {
    require("dehydrated", "dehydrated");
    let unshare = require("unshare", "util-linux");
    let pebble = pebble();
    let env = Env::new(&pebble, "");
    env.domains("crontab.example\n");
    let config = format!(
        "BASEDIR={}\n{}",
        env.path().display(),
        fs::read_to_string(env.path().join("config")).unwrap()
    );
    fs::remove_file(env.path().join("config")).unwrap();
    // A working folder with no config in it, as cron's (the user's home).
    let home = common::TempDir::new("home");
    let run = |args: &[&str]| {
        let output = Command::new(&unshare)
            .args(["--map-root-user", "--mount", "--propagation", "private"])
            .args([
                "/bin/sh",
                "-c",
                r#"set -e
for dir in /etc/desiccant /usr/local/etc/desiccant /usr/local/etc/dehydrated /etc/dehydrated; do
    if [ -d "$dir" ]; then /bin/mount -t tmpfs -o mode=755 tmpfs "$dir"; fi
done
printf '%s' "$0" > /etc/dehydrated/config
/bin/mount -t tmpfs tmpfs /dev
exec "$@""#,
            ])
            .arg(&config)
            .arg(env!("CARGO_BIN_EXE_desiccant"))
            .args(args)
            .env_clear()
            .current_dir(home.path())
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        Run {
            args: args.iter().map(|s| s.to_string()).collect(),
            output,
        }
    };
    // dehydrated's own crontab line, `@weekly root dehydrated --cron`, renamed.
    let first = run(&["--cron", "--accept-terms"]);
    first.expect(0);
    assert!(
        first.stdout().contains("crontab.example: issued"),
        "{first:?}"
    );
    check_live_set(
        &env.cert_dir("crontab.example"),
        &["crontab.example"],
        &pebble.root_der(),
    );
    // --verbose names the file and where it was looked for.
    let verbose = run(&["--cron", "--verbose"]);
    verbose.expect(0);
    assert!(
        verbose.stderr().contains(&format!(
            "config file /etc/dehydrated/config (the first found of /etc/desiccant/config, \
             /usr/local/etc/desiccant/config, /etc/dehydrated/config, \
             /usr/local/etc/dehydrated/config, ./config, {}), BASEDIR {}",
            std::path::Path::new(env!("CARGO_BIN_EXE_desiccant"))
                .parent()
                .unwrap()
                .join("config")
                .display(),
            env.path().display()
        )),
        "{verbose:?}"
    );
}
