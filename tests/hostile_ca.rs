//! A HOSTILE CA: the real binary talks to the real Pebble through the fault-injecting proxy of
//! tests/common/proxy.rs, which rewrites Pebble's answers the way a CA that wants to harm the
//! machine would (and, for renewal information, which Debian's Pebble predates, the newest
//! Pebble told what to answer through its management interface). What is checked is what an admin would check: no file written
//! outside the folders desiccant owns, no hook told a name that was not ordered, no request
//! sent for what was not asked, the live certificate unchanged, the exit code, and an output
//! with no forged log line and no terminal escape.

mod common;

use std::fs;
use std::path::PathBuf;
use std::process::Output;

use serde_json::{Value, json};

use common::proxy::{Proxy, Rule};
use common::{Env, Pebble, PebbleOptions, Run, TempDir, check_live_set, pem_certs};

/// What a CA writes to forge a log line: a line break, an emergency priority for the journal,
/// and a terminal escape that clears the screen.
const FORGED: &str = "\n<0>forged by the CA\u{1b}[2J";

/// Pebble, the proxy in front of it, and a BASEDIR whose CA is the proxy.
fn bench(pebble: Pebble, extra: &str) -> (Pebble, Proxy, Env) {
    let proxy = Proxy::start(&pebble.directory_url, pebble.dir.path());
    let env = Env::for_ca(
        &proxy.directory_url,
        &pebble.ca_bundle,
        &pebble.webroot,
        extra,
    );
    (pebble, proxy, env)
}

/// A hook that writes one line per call, `handler [arg] [arg]...`, to `BASEDIR/calls`, and
/// the second argument of `request_failure` (the CA's answer) to `BASEDIR/reason`.
fn recording_hook(env: &Env) -> (PathBuf, PathBuf) {
    let hook = env.path().join("hook.sh");
    let calls = env.path().join("calls");
    common::script(
        &hook,
        &format!(
            r#"handler="$1"; shift
line="$handler"
for a in "$@"; do line="$line [$a]"; done
printf '%s\n' "$line" | tr '\n' ' ' >> "{calls}"
echo >> "{calls}"
case "$handler" in request_failure) printf '%s' "$2" > "{reason}";; esac"#,
            calls = calls.display(),
            reason = env.path().join("reason").display()
        ),
    );
    (hook, calls)
}

/// Runs desiccant as systemd would: `JOURNAL_STREAM` set, so every line starts with its
/// `<N>` priority.
fn run_under_journal(env: &Env, args: &[&str]) -> Run {
    let output: Output = env
        .command(args)
        .env("JOURNAL_STREAM", "8:12345")
        .output()
        .unwrap();
    Run {
        args: args.iter().map(|s| s.to_string()).collect(),
        output,
    }
}

/// Panics unless every line of the run's output starts with one of the priorities desiccant
/// writes (error, warning, info, debug), and no byte of it is a terminal escape.
fn no_forged_line(run: &Run) {
    for line in run.stdout().lines().chain(run.stderr().lines()) {
        assert!(
            ["<3>", "<4>", "<6>", "<7>"]
                .iter()
                .any(|p| line.starts_with(p)),
            "a line with a priority desiccant never writes: {line:?}\n{run:?}"
        );
    }
    let all = [run.output.stdout.clone(), run.output.stderr.clone()].concat();
    assert!(
        !all.contains(&0x1b),
        "an escape reached the terminal\n{run:?}"
    );
}

/// Sets the identifier of every authorization Pebble sends to `value`.
fn identifier_rule(value: &str) -> Rule {
    let value = value.to_string();
    Rule::post("/authZ/").json(move |v| v["identifier"]["value"] = json!(value))
}

#[test]
fn an_authorization_for_a_name_not_ordered_writes_no_file_and_reaches_no_hook() {
    // tls-alpn-01 writes <identifier>.key.pem into ALPNCERTDIR: an absolute identifier made
    // that a file anywhere, written as root and deleted afterwards.
    let outside = TempDir::new("victim");
    let victim_key = outside.path().join("victim.key.pem");
    fs::write(&victim_key, "precious\n").unwrap();
    let alpn = TempDir::new("alpn");
    let (_pebble, proxy, env) = bench(Pebble::start_without_refused_nonces(), "");
    let (hook, calls) = recording_hook(&env);
    env.write_config(&format!(
        "CHALLENGETYPE=tls-alpn-01\nALPNCERTDIR={}\nHOOK={}\n",
        alpn.path().display(),
        hook.display()
    ));
    env.domains("ordered.example\n");
    let identifier = outside.path().join("victim");
    proxy.rule(identifier_rule(identifier.to_str().unwrap()));
    let run = env.run(&["--cron", "--accept-terms"]);
    assert_eq!(
        fs::read_to_string(&victim_key).ok().as_deref(),
        Some("precious\n"),
        "the victim file was changed{run:?}"
    );
    assert_eq!(
        fs::read_dir(outside.path()).unwrap().count(),
        1,
        "a file was written beside the victim"
    );
    assert_eq!(
        fs::read_dir(alpn.path()).map_or(0, |d| d.count()),
        0,
        "a validation certificate was written"
    );
    let called = fs::read_to_string(&calls).unwrap_or_default();
    assert!(
        !called.contains("deploy_challenge") && !called.contains("victim"),
        "the hook was told of the CA's name:\n{called}"
    );
    // Nothing was answered: the CA was never told to look at anything.
    assert_eq!(
        proxy.count(Some("POST"), "/chalZ/"),
        0,
        "{}",
        proxy.transcript()
    );
    assert!(!env.cert_dir("ordered.example").join("cert.pem").exists());
    assert_ne!(run.code(), 0, "{run:?}");
    assert!(
        run.stderr().contains(&format!(
            "the CA sent an authorization for dns \"{}\", which was not ordered (ordered: \
             ordered.example)",
            identifier.display()
        )),
        "{run:?}"
    );
}

#[test]
fn an_order_with_more_authorizations_than_names_fetches_none() {
    let (_pebble, proxy, env) = bench(Pebble::start_without_refused_nonces(), "");
    env.domains("one.example\n");
    proxy.rule(Rule::post("/order-plz").json(|v| {
        let first = v["authorizations"][0].clone();
        v["authorizations"] = Value::Array(vec![first; 3000]);
    }));
    let run = env.run(&["--cron", "--accept-terms"]);
    assert_eq!(
        proxy.count(Some("POST"), "/authZ/"),
        0,
        "authorizations were fetched{run:?}"
    );
    assert_eq!(fs::read_dir(&env.webroot).unwrap().count(), 0);
    assert_ne!(run.code(), 0, "{run:?}");
    assert!(
        run.stderr()
            .contains("the order has 3000 authorizations for 1 identifiers ordered"),
        "{run:?}"
    );
}

/// The body of a certificate download with the chain replaced by what `chain` makes of the
/// PEM blocks Pebble sent (leaf first).
fn chain_rule(nth: usize, chain: fn(&[String]) -> Vec<String>) -> Rule {
    Rule::post("/certZ/").nth(nth).map_body(move |body, _| {
        let blocks: Vec<String> = pem::parse_many(body)
            .unwrap()
            .iter()
            .map(pem::encode)
            .collect();
        chain(&blocks).concat().into_bytes()
    })
}

#[test]
fn a_bloated_or_broken_chain_is_refused_and_the_live_set_is_kept() {
    let (pebble, proxy, env) = bench(
        Pebble::start_with(PebbleOptions {
            nonce_reject: 0,
            alternate_roots: Some(1),
            ..Default::default()
        }),
        "",
    );
    env.domains("chain.example\n");
    env.run(&["--cron", "--accept-terms"]).expect(0);
    let dir = env.cert_dir("chain.example");
    let live = check_live_set(&dir, &["chain.example"], &pebble.root_der());
    let fullchain = fs::read(dir.join("fullchain.pem")).unwrap();
    let bloat = |blocks: &[String]| -> Vec<String> {
        std::iter::once(blocks[0].clone())
            .chain(std::iter::repeat_n(blocks[1].clone(), 500))
            .collect()
    };
    let unchained =
        |blocks: &[String]| -> Vec<String> { vec![blocks[0].clone(), blocks[0].clone()] };
    for (scenario, rule, says) in [
        (
            "500 copies of the intermediate",
            chain_rule(1, bloat),
            "501 certificates, more than the 10 a chain may have",
        ),
        (
            "the leaf as its own issuer",
            chain_rule(1, unchained),
            "the certificate is not signed by the chain's certificate 1",
        ),
    ] {
        proxy.clear();
        proxy.rule(rule);
        let run = env.run(&["--cron", "--force"]);
        assert_eq!(
            fs::read(dir.join("fullchain.pem")).unwrap().len(),
            fullchain.len(),
            "{scenario}: a new fullchain.pem{run:?}"
        );
        assert_eq!(
            check_live_set(&dir, &["chain.example"], &pebble.root_der()),
            live,
            "{scenario}"
        );
        assert_ne!(run.code(), 0, "{scenario}{run:?}");
        assert!(run.stderr().contains(says), "{scenario}{run:?}");
    }
    // An alternate chain gets the same checks: the one preferred is bloated.
    let alternate_root = pebble.root_der_of(1);
    let (_, root) = x509_parser::parse_x509_certificate(&alternate_root).unwrap();
    let name = root
        .subject()
        .iter_common_name()
        .next()
        .unwrap()
        .as_str()
        .unwrap()
        .to_string();
    env.write_config(&format!("PREFERRED_CHAIN=\"{name}\"\n"));
    proxy.clear();
    proxy.rule(chain_rule(2, bloat));
    let run = env.run(&["--cron", "--force"]);
    assert_eq!(
        pem_certs(&dir.join("fullchain.pem")).len(),
        2,
        "a new fullchain.pem{run:?}"
    );
    assert_eq!(
        check_live_set(&dir, &["chain.example"], &pebble.root_der()),
        live
    );
    assert_ne!(run.code(), 0, "{run:?}");
    assert!(
        run.stderr()
            .contains("501 certificates, more than the 10 a chain may have"),
        "{run:?}\n{}",
        proxy.transcript()
    );
}

/// A bench for one name with an account already registered.
fn registered(name: &str) -> (Pebble, Proxy, Env) {
    let (pebble, proxy, env) = bench(Pebble::start_without_refused_nonces(), "");
    env.domains(&format!("{name}\n"));
    env.run(&["--register", "--accept-terms"]).expect(0);
    (pebble, proxy, env)
}

#[test]
fn terms_of_service_forge_no_log_line_and_send_no_escape() {
    // Shown to whoever has to accept them, in the error of a run without an account.
    let (_pebble, proxy, env) = bench(Pebble::start_without_refused_nonces(), "");
    env.domains("forge.example\n");
    proxy.rule(Rule::get("/dir").json(|v| {
        v["meta"]["termsOfService"] = json!(format!("https://ca.example/terms{FORGED}"));
    }));
    let run = run_under_journal(&env, &["--cron"]);
    no_forged_line(&run);
    assert_ne!(run.code(), 0, "{run:?}");
    assert!(
        run.stderr()
            .contains(r"read the terms at https://ca.example/terms\n<0>forged by the CA\u{1b}[2J"),
        "{run:?}"
    );
}

#[test]
fn an_identifier_forges_no_log_line_and_sends_no_escape() {
    // In the message that refuses its authorization (which the CA marked invalid, so that a
    // client that took it would say so, naming it).
    let (_pebble, proxy, env) = registered("forge.example");
    proxy.rule(Rule::post("/authZ/").json(|v| {
        v["identifier"]["value"] = json!(format!("forge.example{FORGED}"));
        v["status"] = json!("invalid");
    }));
    let run = run_under_journal(&env, &["--cron"]);
    no_forged_line(&run);
    assert_ne!(run.code(), 0, "{run:?}");
    assert!(
        run.stderr()
            .contains(r#"an authorization for dns "forge.example\n<0>forged by the CA\u{1b}[2J""#),
        "{run:?}"
    );
}

#[test]
fn a_challenge_type_forges_no_log_line_and_sends_no_escape() {
    // In the message that lists what the CA offers.
    let (_pebble, proxy, env) = registered("forge.example");
    proxy.rule(Rule::post("/authZ/").json(|v| {
        for c in v["challenges"].as_array_mut().unwrap() {
            c["type"] = json!(format!("{}{FORGED}", c["type"].as_str().unwrap()));
        }
    }));
    let run = run_under_journal(&env, &["--cron"]);
    no_forged_line(&run);
    assert_ne!(run.code(), 0, "{run:?}");
    assert!(
        run.stderr()
            .contains(r#"-01\n<0>forged by the CA\u{1b}[2J""#)
            && run.stderr().contains("the CA sent a type that is not one"),
        "{run:?}"
    );
}

#[test]
fn an_explanation_url_forges_no_log_line_and_sends_no_escape() {
    let pebble = Pebble::start_head();
    let env = Env::new(&pebble, "");
    env.domains("ari.example\n");
    env.run(&["--cron", "--accept-terms"]).expect(0);
    let cert = fs::read_to_string(env.cert_dir("ari.example").join("cert.pem")).unwrap();
    pebble.set_renewal_info(
        &cert,
        &json!({
            "suggestedWindow": {
                "start": "2000-01-01T00:00:00Z",
                "end": "2000-01-02T00:00:00Z"
            },
            "explanationURL": format!("https://ca.example/incident{FORGED}")
        }),
    );
    let run = run_under_journal(&env, &["--cron"]);
    no_forged_line(&run);
    run.expect(0);
    assert!(
        run.stdout().contains(
            r"the CA asks for early renewal: https://ca.example/incident\n<0>forged by the CA\u{1b}[2J"
        ),
        "{run:?}"
    );
}

/// The error answer of the order request, as `body` with `content_type`, made here.
fn failing_order(content_type: &str, body: Vec<u8>) -> Rule {
    Rule::post("/order-plz")
        .local()
        .status(400)
        .header("Content-Type", content_type)
        .body(body)
}

#[test]
fn request_failure_runs_with_a_nul_or_a_huge_body() {
    let (_pebble, proxy, env) = bench(Pebble::start_without_refused_nonces(), "");
    let (hook, calls) = recording_hook(&env);
    env.write_config(&format!("HOOK={}\n", hook.display()));
    env.domains("failure.example\n");
    env.run(&["--register", "--accept-terms"]).expect(0);
    let reason = env.path().join("reason");
    let huge = "The CA has a lot to say. ".repeat(8 * 1024);
    assert!(huge.len() > 128 * 1024);
    for (scenario, rule, check) in [
        (
            "a NUL byte",
            failing_order("text/plain", b"refused\0for no reason\x1b[2J".to_vec()),
            Box::new(|got: &str| {
                assert_eq!(got, r"refused\0for no reason\u{1b}[2J");
            }) as Box<dyn Fn(&str)>,
        ),
        (
            "200 KiB",
            failing_order("application/problem+json", huge.clone().into_bytes()),
            Box::new(|got: &str| {
                assert!(got.len() <= 64 * 1024, "{}", got.len());
                assert!(got.starts_with("The CA has a lot to say."));
                assert!(got.ends_with('…'));
            }),
        ),
    ] {
        let _ = fs::remove_file(&calls);
        let _ = fs::remove_file(&reason);
        proxy.clear();
        proxy.rule(rule);
        let run = env.run(&["--cron"]);
        assert_eq!(run.code(), 1, "{scenario}{run:?}");
        let called = fs::read_to_string(&calls).unwrap_or_default();
        assert!(
            called
                .lines()
                .any(|l| l.starts_with("request_failure [400]")),
            "{scenario}: request_failure did not run:\n{called}{run:?}"
        );
        check(&fs::read_to_string(&reason).unwrap_or_else(|e| panic!("{e}:\n{called}{run:?}")));
    }
}
