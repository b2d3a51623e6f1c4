//! dehydrated's hook protocol against a real Pebble: a recording hook proves the sequence and
//! the arguments of every event.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use common::{Env, Pebble, PebbleOptions, check_live_set, mode};

/// A hook that appends one line per call to `calls`: the handler, then each argument in
/// brackets (line breaks inside an argument made spaces); and some of its environment.
fn recording_hook(env: &Env, extra: &str) -> (PathBuf, PathBuf) {
    let hook = env.path().join("hook.sh");
    let calls = env.path().join("calls");
    fs::write(
        &hook,
        format!(
            r#"#!/bin/sh
out="{calls}"
line="$1"; shift
for a in "$@"; do line="$line [$(printf '%s' "$a" | tr '\n' ' ')]"; done
printf '%s\n' "$line" >> "$out"
case "$line" in startup_hook*) printf 'env BASEDIR=%s WELLKNOWN=%s\n' "$BASEDIR" "$WELLKNOWN" >> "$out.env";; esac
case "$line" in deploy_cert*) printf 'alias=%s altnames=%s\n' "$alias" "$altnames" >> "$out.env";; esac
{extra}
exit 0
"#,
            calls = calls.display()
        ),
    )
    .unwrap();
    fs::set_permissions(&hook, fs::Permissions::from_mode(0o755)).unwrap();
    (hook, calls)
}

/// The recorded calls, one per line, and clears the record.
fn calls(path: &Path) -> Vec<String> {
    let text = fs::read_to_string(path).unwrap_or_default();
    let _ = fs::remove_file(path);
    text.lines().map(str::to_string).collect()
}

/// The bracketed arguments of a recorded line.
fn args(line: &str) -> Vec<String> {
    line.split(" [")
        .skip(1)
        .map(|a| a.trim_end_matches(']').to_string())
        .collect()
}

fn handler(line: &str) -> &str {
    line.split(' ').next().unwrap()
}

const BRICKER: &str = "this_hookscript_is_broken__dehydrated_is_working_fine__please_ignore_unknown_hooks_in_your_script";

#[test]
fn a_new_one_name_certificate_then_an_unchanged_one() {
    let pebble = Pebble::start();
    let env = Env::new(&pebble, "");
    let (hook, record) = recording_hook(&env, "");
    env.write_config(&format!("HOOK={}\n", hook.display()));
    env.domains("one.example\n");
    let run = env.run(&["--cron", "--accept-terms"]);
    run.expect(0);
    let dir = env.cert_dir("one.example");
    let ts = check_live_set(&dir, &["one.example"], &pebble.root_der());
    let got = calls(&record);
    let handlers: Vec<&str> = got.iter().map(|l| handler(l)).collect();
    assert_eq!(
        handlers,
        [
            BRICKER,
            "startup_hook",
            "generate_csr",
            "deploy_challenge",
            "clean_challenge",
            "sync_cert",
            "deploy_cert",
            "exit_hook"
        ],
        "{got:#?}"
    );
    assert_eq!(got[1], "startup_hook");
    assert_eq!(
        args(&got[2]),
        ["one.example", &dir.display().to_string(), "one.example"]
    );
    let deploy = args(&got[3]);
    assert_eq!(deploy.len(), 3);
    assert_eq!(deploy[0], "one.example");
    assert!(
        deploy[2].starts_with(&format!("{}.", deploy[1])),
        "{deploy:?}"
    );
    assert_eq!(
        args(&got[4]),
        deploy,
        "clean_challenge has deploy_challenge's arguments"
    );
    let d = dir.display();
    assert_eq!(
        args(&got[5]),
        [
            format!("{d}/privkey-{ts}.pem"),
            format!("{d}/cert-{ts}.pem"),
            format!("{d}/fullchain-{ts}.pem"),
            format!("{d}/chain-{ts}.pem"),
            format!("{d}/cert-{ts}.csr"),
        ]
    );
    assert_eq!(
        args(&got[6]),
        [
            "one.example".to_string(),
            format!("{d}/privkey.pem"),
            format!("{d}/cert.pem"),
            format!("{d}/fullchain.pem"),
            format!("{d}/chain.pem"),
            ts.clone(),
        ]
    );
    assert_eq!(got[7], "exit_hook");
    let env_seen = fs::read_to_string(env.path().join("calls.env")).unwrap();
    assert!(
        env_seen.contains(&format!(
            "env BASEDIR={} WELLKNOWN={}",
            env.path().display(),
            pebble.webroot.display()
        )),
        "{env_seen}"
    );
    assert!(
        env_seen.contains("alias=one.example altnames=one.example"),
        "{env_seen}"
    );

    // The next run: nothing due, and the hook hears of it.
    env.run(&["--cron"]).expect(0);
    let got = calls(&record);
    assert_eq!(
        got,
        [
            BRICKER.to_string(),
            "startup_hook".to_string(),
            format!("generate_csr [one.example] [{d}] [one.example]"),
            format!(
                "unchanged_cert [one.example] [{d}/privkey.pem] [{d}/cert.pem] [{d}/fullchain.pem] [{d}/chain.pem]"
            ),
            "exit_hook".to_string(),
        ]
    );
}

#[test]
fn a_three_name_certificate_with_and_without_hook_chain() {
    let pebble = Pebble::start();
    for chain in ["no", "yes"] {
        let env = Env::new(&pebble, "");
        let (hook, record) = recording_hook(&env, "");
        env.write_config(&format!("HOOK={}\nHOOK_CHAIN={chain}\n", hook.display()));
        env.domains("a.three.example b.three.example c.three.example > three\n");
        env.run(&["--cron", "--accept-terms"]).expect(0);
        let got = calls(&record);
        let deploys: Vec<&String> = got
            .iter()
            .filter(|l| handler(l) == "deploy_challenge")
            .collect();
        let cleans: Vec<&String> = got
            .iter()
            .filter(|l| handler(l) == "clean_challenge")
            .collect();
        let mut names: Vec<String> = Vec::new();
        if chain == "yes" {
            assert_eq!(deploys.len(), 1, "{got:#?}");
            assert_eq!(cleans.len(), 1, "{got:#?}");
            let a = args(deploys[0]);
            assert_eq!(a.len(), 9);
            assert_eq!(args(cleans[0]), a);
            names.extend(a.chunks(3).map(|t| t[0].clone()));
        } else {
            assert_eq!(deploys.len(), 3, "{got:#?}");
            assert_eq!(cleans.len(), 3, "{got:#?}");
            for d in &deploys {
                names.push(args(d)[0].clone());
            }
        }
        names.sort();
        assert_eq!(
            names,
            ["a.three.example", "b.three.example", "c.three.example"]
        );
        // Every challenge is in place before any is cleaned.
        let last_deploy = got
            .iter()
            .rposition(|l| handler(l) == "deploy_challenge")
            .unwrap();
        let first_clean = got
            .iter()
            .position(|l| handler(l) == "clean_challenge")
            .unwrap();
        assert!(last_deploy < first_clean, "{got:#?}");
        let deploy_cert = got.iter().find(|l| handler(l) == "deploy_cert").unwrap();
        assert_eq!(args(deploy_cert)[0], "a.three.example");
    }
}

#[test]
fn a_failed_validation_and_a_ca_error_reach_the_hook() {
    let pebble = Pebble::start_with(PebbleOptions {
        refuse_hosts: vec!["bad.example".into()],
        ..Default::default()
    });
    let env = Env::new(&pebble, "");
    let (hook, record) = recording_hook(&env, "");
    env.write_config(&format!("HOOK={}\n", hook.display()));
    env.domains("bad.example\n");
    env.run(&["--cron", "--accept-terms"]).expect(1);
    let got = calls(&record);
    let handlers: Vec<&str> = got.iter().map(|l| handler(l)).collect();
    assert_eq!(
        handlers,
        [
            BRICKER,
            "startup_hook",
            "generate_csr",
            "deploy_challenge",
            "invalid_challenge",
            "clean_challenge",
            "exit_hook"
        ],
        "{got:#?}"
    );
    let invalid = args(&got[4]);
    assert_eq!(invalid[0], "bad.example");
    let response: serde_json::Value = serde_json::from_str(&invalid[1]).unwrap();
    assert_eq!(response["type"], "http-01");
    assert!(
        response["error"]["type"]
            .as_str()
            .unwrap()
            .starts_with("urn:ietf:params:acme:error:")
    );
    assert_eq!(args(&got[6]), ["1 of 1 certificates failed: bad.example"]);
}

#[test]
fn a_ca_error_reaches_request_failure() {
    // This Pebble wants external account binding, and the MAC key given is wrong.
    let pebble = Pebble::start_with(PebbleOptions {
        eab_required: true,
        ..Default::default()
    });
    let env = Env::new(&pebble, "");
    let (hook, record) = recording_hook(&env, "");
    env.write_config(&format!(
        "HOOK={}\nEAB_KID={}\nEAB_HMAC_KEY=d3Jvbmcga2V5\n",
        hook.display(),
        common::EAB_KID
    ));
    env.domains("refused.example\n");
    env.run(&["--cron", "--accept-terms"]).expect(1);
    let got = calls(&record);
    let handlers: Vec<&str> = got.iter().map(|l| handler(l)).collect();
    assert_eq!(
        handlers,
        [
            BRICKER,
            "startup_hook",
            "generate_csr",
            "request_failure",
            "exit_hook"
        ],
        "{got:#?}"
    );
    let a = args(&got[3]);
    assert!(a[0].starts_with('4'), "{a:?}");
    assert!(a[1].contains("urn:ietf:params:acme:error:"), "{a:?}");
    assert_eq!(a[2], "post");
    assert!(
        a[3].to_lowercase()
            .contains("content-type: application/problem+json"),
        "{a:?}"
    );
    assert_eq!(
        args(&got[4]),
        ["1 of 1 certificates failed: refused.example"]
    );
}

#[test]
fn dehydrateds_own_example_hook_runs_unchanged() {
    let example = Path::new("/usr/share/doc/dehydrated/examples/hook.sh");
    assert!(
        example.exists(),
        "dehydrated's example hook is missing: apt-get install dehydrated (tests/run.sh does)"
    );
    let pebble = Pebble::start();
    let env = Env::new(&pebble, "");
    let hook = env.path().join("hook.sh");
    fs::copy(example, &hook).unwrap();
    fs::set_permissions(&hook, fs::Permissions::from_mode(0o755)).unwrap();
    env.write_config(&format!("HOOK={}\n", hook.display()));
    env.domains("example-hook.example www.example-hook.example\n");
    env.run(&["--cron", "--accept-terms"]).expect(0);
    env.run(&["--cron"]).expect(0);
    check_live_set(
        &env.cert_dir("example-hook.example"),
        &["example-hook.example", "www.example-hook.example"],
        &pebble.root_der(),
    );
}

#[test]
fn a_failing_hook_fails_only_its_certificate_and_a_hanging_one_is_killed() {
    let pebble = Pebble::start();
    let env = Env::new(&pebble, "HOOK_TIMEOUT=1\n");
    let failing = env.path().join("failing.sh");
    fs::write(
        &failing,
        "#!/bin/sh\n[ \"$1\" = deploy_cert ] && { echo 'cannot reload' >&2; exit 4; }\nexit 0\n",
    )
    .unwrap();
    let hanging = env.path().join("hanging.sh");
    fs::write(
        &hanging,
        "#!/bin/sh\n[ \"$1\" = deploy_cert ] && sleep 60\nexit 0\n",
    )
    .unwrap();
    for h in [&failing, &hanging] {
        fs::set_permissions(h, fs::Permissions::from_mode(0o755)).unwrap();
    }
    env.domains("fails.example\nhangs.example\nfine.example\n");
    for (name, hook) in [("fails.example", &failing), ("hangs.example", &hanging)] {
        let dir = env.cert_dir(name);
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("config"), format!("HOOK={}\n", hook.display())).unwrap();
    }
    let started = std::time::Instant::now();
    let run = env.run(&["--cron", "--accept-terms"]);
    run.expect(1);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "{run:?}"
    );
    let err = run.stderr();
    assert!(
        err.contains("deploy_cert failed: exited with exit status: 4"),
        "{run:?}"
    );
    assert!(
        run.stdout().contains("cannot reload"),
        "the hook's output is shown: {run:?}"
    );
    assert!(
        err.contains("deploy_cert failed: killed after 1 s"),
        "{run:?}"
    );
    assert!(run.stdout().contains("fine.example: issued"), "{run:?}");
    let root = pebble.root_der();
    check_live_set(&env.cert_dir("fine.example"), &["fine.example"], &root);
}

#[test]
fn a_broken_hook_is_found_before_any_order() {
    let pebble = Pebble::start();
    let env = Env::new(&pebble, "");
    let hook = env.path().join("strict.sh");
    fs::write(&hook, "#!/bin/sh\ncase \"$1\" in deploy_challenge|clean_challenge|deploy_cert) exit 0;; *) exit 1;; esac\n").unwrap();
    fs::set_permissions(&hook, fs::Permissions::from_mode(0o755)).unwrap();
    env.write_config(&format!("HOOK={}\n", hook.display()));
    env.domains("strict.example\n");
    let requests = pebble.requests_counted();
    let run = env.run(&["--cron", "--accept-terms"]);
    run.expect(78);
    assert!(
        run.stderr()
            .contains("must exit 0 on handlers it does not know"),
        "{run:?}"
    );
    assert_eq!(pebble.requests_after(requests), Vec::<String>::new());
}

#[test]
fn post_renew_hook_runs_once_after_a_batch_that_changed_something() {
    let pebble = Pebble::start();
    let env = Env::new(&pebble, "");
    let out = env.path().join("renewed");
    env.write_config(&format!(
        "POST_RENEW_HOOK='echo \"$RENEWED_CERTS\" >> {}'\n",
        out.display()
    ));
    env.domains("p1.example\np2.example\np3.example\n");
    env.run(&["--cron", "--accept-terms"]).expect(0);
    assert_eq!(
        fs::read_to_string(&out).unwrap(),
        "p1.example p2.example p3.example\n"
    );
    env.run(&["--cron"]).expect(0);
    assert_eq!(
        fs::read_to_string(&out).unwrap(),
        "p1.example p2.example p3.example\n",
        "ran although nothing changed"
    );
    env.write_config("POST_RENEW_HOOK='exit 3'\n");
    let run = env.run(&["--cron", "--force"]);
    run.expect(1);
    assert!(run.stderr().contains("POST_RENEW_HOOK failed"), "{run:?}");
}

#[test]
fn modes_owner_and_group_are_applied() {
    use std::os::unix::fs::MetadataExt;
    // Only root may give files away; others can still name themselves as the owner.
    let me = fs::metadata("/proc/self").unwrap().uid();
    let owner = if me == 0 { 1 } else { me };
    let pebble = Pebble::start();
    let env = Env::new(
        &pebble,
        &format!(
            "CERT_FILE_MODE=0640\nCERT_DIR_MODE=0750\nCERT_GROUP=daemon\nCERT_OWNER={owner}\n"
        ),
    );
    env.domains("modes.example\n");
    env.run(&["--cron", "--accept-terms"]).expect(0);
    let dir = env.cert_dir("modes.example");
    let ts = check_live_set_allowing_key_mode(&dir, &pebble);
    let daemon = fs::read_to_string("/etc/group")
        .unwrap()
        .lines()
        .find(|l| l.starts_with("daemon:"))
        .and_then(|l| l.split(':').nth(2)?.parse::<u32>().ok())
        .unwrap();
    // The folder stays the run's, in CERT_GROUP; CERT_OWNER may pass through it.
    assert_eq!(mode(&dir), 0o751);
    assert_eq!(fs::metadata(&dir).unwrap().gid(), daemon);
    assert_eq!(fs::metadata(&dir).unwrap().uid(), me);
    for f in ["cert", "chain", "fullchain", "privkey"] {
        let path = dir.join(format!("{f}-{ts}.pem"));
        assert_eq!(mode(&path), 0o640, "{f}");
        assert_eq!(fs::metadata(&path).unwrap().gid(), daemon, "{f}");
        assert_eq!(fs::metadata(&path).unwrap().uid(), owner, "{f}");
    }
}

/// check_live_set wants a 0600 key; with CERT_FILE_MODE=0640 the key is 0640 by design.
fn check_live_set_allowing_key_mode(dir: &Path, pebble: &Pebble) -> String {
    let target = fs::read_link(dir.join("privkey.pem")).unwrap();
    let key = dir.join(&target);
    fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).unwrap();
    let ts = check_live_set(dir, &["modes.example"], &pebble.root_der());
    fs::set_permissions(&key, fs::Permissions::from_mode(0o640)).unwrap();
    ts
}

#[test]
fn pkcs12_export_opens_with_openssl_and_the_passphrase() {
    let openssl = common::require("openssl", "openssl");
    let pebble = Pebble::start();
    let env = Env::new(
        &pebble,
        "PKCS12_EXPORT=yes\nPKCS12_PASSPHRASE='s3cret pass'\n",
    );
    env.domains("p12.example www.p12.example\n");
    let run = env.run(&["--cron", "--accept-terms", "--verbose"]);
    run.expect(0);
    assert!(
        !run.stdout().contains("s3cret") && !run.stderr().contains("s3cret"),
        "{run:?}"
    );
    let dir = env.cert_dir("p12.example");
    let ts = check_live_set(
        &dir,
        &["p12.example", "www.p12.example"],
        &pebble.root_der(),
    );
    assert_eq!(
        fs::read_link(dir.join("cert.p12")).unwrap(),
        Path::new(&format!("cert-{ts}.p12"))
    );
    assert_eq!(mode(&dir.join(format!("cert-{ts}.p12"))), 0o600);
    let out = std::process::Command::new(&openssl)
        .args([
            "pkcs12",
            "-info",
            "-nodes",
            "-passin",
            "pass:s3cret pass",
            "-in",
        ])
        .arg(dir.join("cert.p12"))
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("MAC: sha256"), "{text}");
    assert!(text.contains("PBES2, PBKDF2, AES-256-CBC"), "{text}");
    assert!(text.contains("friendlyName: p12.example"), "{text}");
    // The key, the certificate and the chain are all in it, and the key is the live one.
    let blocks = ::pem::parse_many(out.stdout.as_slice()).unwrap();
    let certs: Vec<Vec<u8>> = blocks
        .iter()
        .filter(|b| b.tag() == "CERTIFICATE")
        .map(|b| b.contents().to_vec())
        .collect();
    assert_eq!(certs, common::pem_certs(&dir.join("fullchain.pem")));
    let key = blocks.iter().find(|b| b.tag() == "PRIVATE KEY").unwrap();
    let live = ::pem::parse(fs::read(dir.join("privkey.pem")).unwrap()).unwrap();
    assert_eq!(key.contents(), live.contents());
    // A wrong passphrase is refused.
    let wrong = std::process::Command::new(&openssl)
        .args(["pkcs12", "-info", "-nodes", "-passin", "pass:wrong", "-in"])
        .arg(dir.join("cert.p12"))
        .output()
        .unwrap();
    assert!(!wrong.status.success());
}

#[test]
fn a_failing_clean_challenge_fails_the_run_but_the_issued_certificate_is_deployed() {
    // The CA has validated and may have signed already: throwing its certificate away would
    // count against its limits a second time, so it is kept and deployed; the run still fails,
    // as for any hook that fails, naming what may be left behind.
    let pebble = Pebble::start();
    let env = Env::new(&pebble, "");
    let (hook, record) = recording_hook(
        &env,
        r#"case "$line" in clean_challenge*) echo "the DNS API said no" >&2; exit 3;; esac"#,
    );
    env.write_config(&format!("HOOK={}\n", hook.display()));
    env.domains("unclean.example\n");
    let run = env.run(&["--cron", "--accept-terms"]);
    run.expect(1);
    assert!(
        run.stderr()
            .contains("clean_challenge failed: exited with exit status: 3")
            && run
                .stderr()
                .contains("the challenges for unclean.example may still be in place")
            && run.stdout().contains("the DNS API said no")
            && run.stdout().contains("unclean.example: issued"),
        "{run:?}"
    );
    check_live_set(
        &env.cert_dir("unclean.example"),
        &["unclean.example"],
        &pebble.root_der(),
    );
    let got = calls(&record);
    let order: Vec<&str> = got
        .iter()
        .map(|l| handler(l))
        .filter(|h| ["clean_challenge", "sync_cert", "deploy_cert", "exit_hook"].contains(h))
        .collect();
    assert_eq!(
        order,
        ["clean_challenge", "sync_cert", "deploy_cert", "exit_hook"],
        "{got:#?}"
    );
    let exit_hook = got.iter().find(|l| handler(l) == "exit_hook").unwrap();
    assert!(exit_hook.contains("unclean.example"), "{exit_hook}");
    // The challenge file is taken away all the same.
    assert_eq!(fs::read_dir(&pebble.webroot).unwrap().count(), 0);
    // Nothing is due now: the next run orders nothing and succeeds.
    let since = pebble.requests_counted();
    env.run(&["--cron"]).expect(0);
    assert_eq!(pebble.requests_after(since), Vec::<String>::new());
}

#[test]
fn startup_hook_runs_while_the_ca_is_reached_only_by_a_run_sure_to_order() {
    // The directory and a nonce are fetched while startup_hook runs when local rules alone say
    // a certificate will be ordered: that costs no request more than a run without a hook,
    // and a run with nothing to order, due or held back, sends none.
    let pebble = Pebble::start_without_refused_nonces();
    let env = Env::new(&pebble, "");
    // startup_hook waits (10 s at most) until Pebble has logged as many directory requests
    // as the file `directories-wanted` says, if there is one, then notes how many it has. It
    // returns only then: a run that fetched the directory only after startup_hook leaves the
    // count one short.
    let noted = env.path().join("directories-seen");
    let wanted = env.path().join("directories-wanted");
    let (hook, record) = recording_hook(
        &env,
        &format!(
            r#"case "$line" in startup_hook*)
    want=$(cat '{wanted}' 2>/dev/null || echo 0); tries=0
    while seen=$(grep -c 'GET /dir -> calling handler' '{log}'); [ "$seen" -lt "$want" ] && [ $tries -lt 500 ]; do
        sleep 0.02; tries=$((tries + 1))
    done
    echo "$seen" > '{noted}';;
esac"#,
            wanted = wanted.display(),
            log = pebble.log.display(),
            noted = noted.display()
        ),
    );
    env.write_config(&format!("HOOK={}\n", hook.display()));
    env.domains("early.example\n");
    env.run(&["--cron", "--accept-terms"]).expect(0);
    let since = pebble.requests();
    let directories = |sent: &[String]| sent.iter().filter(|r| *r == "GET /dir").count();
    let before = directories(&pebble.requests_after(0));
    fs::write(&wanted, (before + 1).to_string()).unwrap();
    env.run(&["--cron", "--force"]).expect(0);
    let sent = pebble.requests_after(since);
    for (request, times) in [("GET /dir", 1), ("HEAD ", 1), ("POST /order-plz", 1)] {
        let seen = sent.iter().filter(|r| r.starts_with(request)).count();
        assert_eq!(seen, times, "{request}: {sent:#?}");
    }
    // The directory came while startup_hook ran.
    assert_eq!(
        fs::read_to_string(&noted).unwrap().trim(),
        (before + 1).to_string()
    );

    let since = pebble.requests_counted();
    env.run(&["--cron"]).expect(0);
    assert_eq!(pebble.requests_after(since), Vec::<String>::new());

    // Due by local rules, but the CA asked not to be asked before tomorrow.
    let state_file = env.path().join("state/early.example.json");
    let mut state: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&state_file).unwrap()).unwrap();
    state["rate_limited_until"] = serde_json::json!(4_102_444_800_i64);
    fs::write(&state_file, state.to_string()).unwrap();
    env.write_config(&format!("HOOK={}\nRENEW_DAYS=36500\n", hook.display()));
    let since = pebble.requests_counted();
    let run = env.run(&["--cron"]);
    assert!(run.stderr().contains("rate limit"), "{run:?}");
    assert_eq!(pebble.requests_after(since), Vec::<String>::new());
    assert!(
        calls(&record).iter().any(|l| l == "startup_hook"),
        "the hook ran all the same"
    );
}

#[test]
fn a_csr_from_generate_csr_is_ordered_and_the_next_run_sends_nothing() {
    // The hook hands over an RSA CSR made elsewhere, while KEY_ALGO says EC: the certificate
    // carries the CSR's key, and the next run, with nothing due, reaches no CA (the key the
    // config names is not the one that counts).
    let pebble = Pebble::start();
    let env = Env::new(&pebble, "KEY_ALGO=prime256v1\n");
    let (key, csr) = (env.path().join("own.key"), env.path().join("own.csr"));
    let made = std::process::Command::new(common::require("openssl", "openssl"))
        .args([
            "req",
            "-new",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=csr.example",
        ])
        .args(["-addext", "subjectAltName=DNS:csr.example", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&csr)
        .output()
        .unwrap();
    assert!(made.status.success(), "{made:?}");
    let (hook, _record) = recording_hook(
        &env,
        &format!(
            "case \"$line\" in generate_csr*) cat '{}';; esac",
            csr.display()
        ),
    );
    env.write_config(&format!("KEY_ALGO=prime256v1\nHOOK={}\n", hook.display()));
    env.domains("csr.example\n");
    env.run(&["--cron", "--accept-terms"]).expect(0);
    let cert = common::pem_certs(&env.cert_dir("csr.example").join("cert.pem"));
    let (_, leaf) = x509_parser::parse_x509_certificate(&cert[0]).unwrap();
    assert_eq!(
        leaf.public_key().subject_public_key.data.to_vec(),
        common::public_key_of(&key)
    );
    let since = pebble.requests_counted();
    env.run(&["--cron"]).expect(0);
    assert_eq!(pebble.requests_after(since), Vec::<String>::new());
}

/// A hook whose first line keeps it from starting, and what the start-up probe says of it:
/// the first line's fault, no word of the handler protocol, nothing sent.
fn unstartable_hook(first_line: &str, says: &str) {
    let pebble = Pebble::start();
    let env = Env::new(&pebble, "");
    let hook = env.path().join("hook.sh");
    fs::write(&hook, format!("{first_line}\nexit 0\n")).unwrap();
    fs::set_permissions(&hook, fs::Permissions::from_mode(0o755)).unwrap();
    env.write_config(&format!("HOOK={}\n", hook.display()));
    env.domains("first-line.example\n");
    let requests = pebble.requests_counted();
    let run = env.run(&["--cron", "--accept-terms"]);
    run.expect(78);
    assert!(
        run.stderr()
            .contains(&format!("error: {}: {BRICKER} failed: ", hook.display())),
        "{run:?}"
    );
    assert!(run.stderr().contains(says), "{run:?}");
    assert!(
        !run.stderr().contains("must exit 0 on handlers"),
        "blamed on the handler protocol: {run:?}"
    );
    assert_eq!(pebble.requests_after(requests), Vec::<String>::new());
}

#[test]
fn a_hook_with_windows_line_ends_is_told_to_be_converted() {
    unstartable_hook(
        "#!/bin/sh\r",
        "cannot start: its first line ends in a carriage return (Windows line ends): convert \
         it with dos2unix or sed -i 's/\\r$//'",
    );
}

#[test]
fn a_hook_whose_interpreter_does_not_exist_is_told_so() {
    unstartable_hook(
        "#!/usr/bin/python4",
        "cannot start: the interpreter named on its first line, /usr/bin/python4, does not \
         exist",
    );
    // Through env, which starts and exits 127.
    unstartable_hook(
        "#!/usr/bin/env python4",
        "exited with exit status: 127: the interpreter named on its first line, python4, does \
         not exist",
    );
}
