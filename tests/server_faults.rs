//! A CA that misbehaves: the real binary talks to the real Pebble through the fault-injecting
//! proxy of tests/common/proxy.rs, which breaks one step of the protocol at a time. After each
//! fault: the exit code, the message (the URL or name, the CA's own words), no secret in the
//! output, the run over within a bound, the live certificate byte-for-byte as before and not a
//! file added to its folder; then a clean run without the fault renews, and the checker of
//! tests/common/invariants.rs finds everything in order.
//!
//! Stalls and stuck orders are timed with the test build's shortened deadlines
//! (`DESICCANT_FAILPOINT_DEADLINES`, see src/failpoint.rs); a release build waits 90 s per
//! request and 5 minutes for the CA.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

use common::invariants::{Recovered, Snapshot, Stage, after_fault, no_secret_in, walk};
use common::proxy::{self, Delivery, Proxy, Rule, Seen};
use common::{Env, Pebble, Run, check_live_set};

const NAME: &str = "faults.example";
/// Per request, per wait for the CA, in seconds: what the fault runs are given.
const DEADLINES: &str = "2,3";
/// No fault run may take longer than this: it would mean a hang.
const BOUND: Duration = Duration::from_secs(20);

/// Pebble, the proxy in front of it, and a BASEDIR whose CA is the proxy and which holds a
/// live certificate for [`NAME`] issued through the proxy.
struct Bench {
    pebble: Pebble,
    proxy: Proxy,
    env: Env,
    root: Vec<u8>,
    /// The account's JWK thumbprint: in any output, it would be part of a key authorization.
    thumbprint: String,
    /// What the folder holding the webroot holds.
    around_webroot: BTreeSet<String>,
}

fn bench() -> Bench {
    let pebble = Pebble::start_without_refused_nonces();
    let proxy = Proxy::start(&pebble.directory_url, pebble.dir.path());
    let env = Env::for_ca(&proxy.directory_url, &pebble.ca_bundle, &pebble.webroot, "");
    env.domains(&format!("{NAME}\n"));
    env.run(&["--cron", "--accept-terms"]).expect(0);
    let root = pebble.root_der();
    check_live_set(&env.cert_dir(NAME), &[NAME], &root);
    // The proxy's log counts what went through it: a count of 0 in a check is worth something.
    for (method, path) in [
        ("POST", "/order-plz"),
        ("POST", "/chalZ/"),
        ("POST", "/finalize-order/"),
    ] {
        assert!(
            proxy.count(Some(method), path) >= 1,
            "{method} {path} not in the proxy's log of an issuance:\n{}",
            proxy.transcript()
        );
    }
    let thumbprint = thumbprint_of(&proxy.seen());
    proxy.forget();
    let around_webroot = listing(pebble.dir.path());
    Bench {
        pebble,
        proxy,
        env,
        root,
        thumbprint,
        around_webroot,
    }
}

/// What the proxy saw of a faulty run, and the run and that as text for assertion messages.
struct Faulted {
    seen: Vec<Seen>,
    context: String,
}

impl Faulted {
    fn count(&self, method: &str, path: &str) -> usize {
        proxy::count(&self.seen, Some(method), path)
    }
}

type Check = Box<dyn Fn(&Bench, &Faulted) + Send + Sync>;

/// One scenario: the rules that make the fault, the exit code it must end with and the words
/// stderr must hold, and any further check of what the proxy saw.
struct Case {
    scenario: String,
    rules: Vec<Rule>,
    code: i32,
    says: Vec<String>,
    check: Option<Check>,
}

fn case(scenario: impl Into<String>, rules: Vec<Rule>, code: i32, says: &[&str]) -> Case {
    Case {
        scenario: scenario.into(),
        rules,
        code,
        says: says.iter().map(|s| s.to_string()).collect(),
        check: None,
    }
}

impl Case {
    fn then(mut self, check: impl Fn(&Bench, &Faulted) + Send + Sync + 'static) -> Case {
        self.check = Some(Box::new(check));
        self
    }
}

/// Runs every case through [`Bench::fault`], spread over `benches` benches at work at once
/// (each with its own Pebble, proxy and BASEDIR), since a fault run mostly waits.
fn run_cases(benches: usize, cases: Vec<Case>) {
    let mut groups: Vec<Vec<Case>> = (0..benches).map(|_| Vec::new()).collect();
    for (i, c) in cases.into_iter().enumerate() {
        groups[i % benches].push(c);
    }
    std::thread::scope(|scope| {
        for group in groups {
            scope.spawn(move || {
                let b = bench();
                for c in &group {
                    let f = b.fault(c);
                    if let Some(check) = &c.check {
                        check(&b, &f);
                    }
                }
            });
        }
    });
}

impl Bench {
    /// Runs the binary with the short deadlines.
    fn faulty_run(&self, args: &[&str]) -> (Run, Duration) {
        let mut cmd = self.env.command(args);
        cmd.env("DESICCANT_FAILPOINT_DEADLINES", DEADLINES);
        let start = Instant::now();
        let output = cmd.output().unwrap();
        let elapsed = start.elapsed();
        (
            Run {
                args: args.iter().map(|s| s.to_string()).collect(),
                output,
            },
            elapsed,
        )
    }

    /// With the case's rules in place, a forced renewal at the highest verbosity must end as
    /// the case says and leave everything as it was; without them, the next run must renew.
    fn fault(&self, c: &Case) -> Faulted {
        // Pebble reuses a valid authorization for 1 order in 100 even with
        // PEBBLE_AUTHZREUSE=0; then a fault on the authorization never happens, and the run
        // is made again. A rule that never fires at all fails the test.
        for _ in 0..3 {
            let before = Snapshot::take(&self.env, &[NAME]);
            let files = listing(&self.env.cert_dir(NAME));
            self.proxy.forget();
            for rule in &c.rules {
                self.proxy.rule(rule.clone());
            }
            let (run, elapsed) = self.faulty_run(&["--cron", "--force", "--verbose"]);
            self.proxy.clear();
            let seen = self.proxy.seen();
            let context = format!(
                "scenario: {}{run:?}\n{}",
                c.scenario,
                self.proxy.transcript()
            );
            if !seen.iter().any(|s| s.faulted) {
                assert_eq!(run.code(), 0, "no fault, yet the run failed\n{context}");
                continue;
            }
            assert!(
                elapsed < BOUND,
                "the run took {elapsed:?}, over {BOUND:?}\n{context}"
            );
            assert_eq!(run.code(), c.code, "exit code\n{context}");
            let stderr = run.stderr();
            for words in &c.says {
                assert!(stderr.contains(words), "stderr lacks {words:?}\n{context}");
            }
            self.no_secret(&run);
            after_fault(&self.env, &[NAME], &before, Stage::Untouched);
            assert_eq!(
                listing(&self.env.cert_dir(NAME)),
                files,
                "files were added to or taken from the certificate's folder\n{context}"
            );
            self.clean_run(&c.scenario);
            return Faulted { seen, context };
        }
        panic!("{}: no rule ever fired in three runs", c.scenario);
    }

    /// A forced renewal without any fault must succeed and leave a sound BASEDIR.
    fn clean_run(&self, scenario: &str) {
        let run = self.env.run(&["--cron", "--force"]);
        assert_eq!(run.code(), 0, "clean run after {scenario}{run:?}");
        self.no_secret(&run);
        Recovered {
            env: &self.env,
            certs: &[(NAME, &[NAME])],
            root_der: &self.root,
            hook_log: None,
        }
        .check();
    }

    fn no_secret(&self, run: &Run) {
        let output = run.stdout() + &run.stderr();
        no_secret_in(&output);
        assert!(
            !output.contains(&self.thumbprint),
            "a key authorization (the account thumbprint {}) in the output:\n{output}",
            self.thumbprint
        );
        for key in walk(self.env.path())
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "pem") && !p.is_symlink())
        {
            let text = fs::read_to_string(&key).unwrap_or_default();
            if text.contains("PRIVATE KEY")
                && let Some(line) = text.lines().nth(1)
            {
                assert!(
                    !output.contains(line),
                    "{} is in the output:\n{output}",
                    key.display()
                );
            }
        }
    }
}

/// The names in a folder, sorted.
fn listing(dir: &Path) -> BTreeSet<String> {
    fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// The decoded protected header and payload of a JWS request body.
fn jws(body: &[u8]) -> (Value, Value) {
    let v: Value = serde_json::from_slice(body).unwrap();
    let part = |k: &str| -> Value {
        let text = v[k].as_str().unwrap();
        if text.is_empty() {
            return Value::Null;
        }
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(text).unwrap()).unwrap()
    };
    (part("protected"), part("payload"))
}

/// RFC 7638 thumbprint of the JWK the newAccount request carried.
fn thumbprint_of(seen: &[Seen]) -> String {
    let request = seen
        .iter()
        .find(|s| s.path.contains("/sign-me-up"))
        .expect("no newAccount request seen");
    let (protected, _) = jws(&request.body);
    let jwk = &protected["jwk"];
    let members: serde_json::Map<String, Value> = ["crv", "e", "kty", "n", "x", "y"]
        .iter()
        .filter_map(|k| jwk.get(*k).map(|v| (k.to_string(), v.clone())))
        .collect();
    let digest = ring::digest::digest(
        &ring::digest::SHA256,
        Value::Object(members).to_string().as_bytes(),
    );
    URL_SAFE_NO_PAD.encode(digest.as_ref())
}

/// The CSR of the last finalize request the proxy saw, as DER.
fn last_csr(seen: &[Seen]) -> Vec<u8> {
    let request = seen
        .iter()
        .rev()
        .find(|s| s.path.contains("/finalize-order/"))
        .expect("no finalize request seen");
    let (_, payload) = jws(&request.body);
    URL_SAFE_NO_PAD
        .decode(payload["csr"].as_str().unwrap())
        .unwrap()
}

fn problem_rule(rule: Rule, status: u16, kind: &str, detail: &str) -> Rule {
    rule.local().status(status).problem(kind, detail)
}

// ---- bodies and headers ----------------------------------------------------------------------

#[test]
fn html_truncated_and_mistyped_answers_are_refused() {
    let html = "<html><body><h1>Welcome to nginx!</h1></body></html>";
    run_cases(
        2,
        vec![
            case(
                "the directory is an HTML page",
                vec![
                    Rule::get("/dir")
                        .header("Content-Type", "text/html")
                        .body(html),
                ],
                1,
                &["/dir", "text/html"],
            ),
            case(
                "newOrder's JSON is cut short (Content-Length matches)",
                vec![Rule::post("/order-plz").deliver(Delivery::Truncate(25))],
                1,
                &["/order-plz", "JSON"],
            ),
            case(
                "the authorization's body stops before its Content-Length",
                vec![Rule::post("/authZ/").deliver(Delivery::CutOff(30))],
                75,
                &["/authZ/"],
            ),
            case(
                "newOrder answers HTML labelled as JSON",
                vec![Rule::post("/order-plz").body(html)],
                1,
                &["/order-plz", "JSON"],
            ),
            case(
                "the order is text/plain",
                vec![Rule::post("/my-order/").header("Content-Type", "text/plain")],
                1,
                &["/my-order/", "text/plain"],
            ),
            case(
                "the authorization has no Content-Type",
                vec![Rule::post("/authZ/").drop_header("Content-Type")],
                1,
                &["/authZ/", "content type"],
            ),
            case(
                "the certificate comes as application/json",
                vec![Rule::post("/certZ/").header("Content-Type", "application/json")],
                1,
                &["/certZ/", "application/json"],
            ),
            case(
                "newOrder's answer has no Location",
                vec![Rule::post("/order-plz").drop_header("Location")],
                1,
                &["/order-plz", "Location"],
            ),
        ],
    );
}

#[test]
fn hundred_megabyte_answers_are_cut_at_the_cap() {
    const HUGE: u64 = 100 << 20;
    let cases = [
        (
            "a 100 MB directory",
            Rule::get("/dir").deliver(Delivery::Inflate(HUGE)),
            "/dir",
        ),
        (
            "a 100 MB authorization, chunked",
            Rule::post("/authZ/").deliver(Delivery::InflateChunked(HUGE)),
            "/authZ/",
        ),
        (
            "a 100 MB certificate",
            Rule::post("/certZ/").deliver(Delivery::Inflate(HUGE)),
            "/certZ/",
        ),
        (
            "a 100 MB error document",
            problem_rule(Rule::post("/order-plz"), 500, "serverInternal", "boom")
                .deliver(Delivery::InflateChunked(HUGE)),
            "/order-plz",
        ),
    ];
    run_cases(
        2,
        cases
            .into_iter()
            .map(|(scenario, rule, says)| {
                case(scenario, vec![rule], 1, &[says, "larger than"]).then(|_, f| {
                    let taken: u64 = f.seen.iter().map(|s| s.body_sent).max().unwrap();
                    assert!(
                        taken < 16 << 20,
                        "the client took {taken} bytes of a 100 MB answer\n{}",
                        f.context
                    );
                })
            })
            .collect(),
    );
}

// ---- challenge tokens ------------------------------------------------------------------------

#[test]
fn hostile_tokens_are_refused_and_nothing_is_written() {
    let long = "a".repeat(5000);
    let tokens = [
        "../x",
        "a/b",
        "%2e%2e",
        "..",
        ".htaccess",
        "",
        long.as_str(),
        "tök€n",
        "a\\b",
        "x\ny",
    ];
    run_cases(
        2,
        tokens
            .iter()
            .map(|token| {
                let t = token.to_string();
                let hostile = Rule::post("/authZ/").json(move |v| {
                    for c in v["challenges"].as_array_mut().unwrap() {
                        c["token"] = Value::String(t.clone());
                    }
                });
                let shown: String = token.chars().take(20).collect();
                case(
                    format!("the http-01 token is {shown:?}"),
                    vec![hostile],
                    1,
                    &[NAME, "not base64url"],
                )
                .then(|b, f| {
                    // The run's requests are logged (the faulted authorization among them),
                    // and no challenge was answered.
                    assert!(f.count("POST", "/authZ/") >= 1, "{}", f.context);
                    assert_eq!(f.count("POST", "/chalZ/"), 0, "{}", f.context);
                    assert_eq!(listing(&b.env.webroot), BTreeSet::new(), "{}", f.context);
                    assert_eq!(
                        listing(b.pebble.dir.path()),
                        b.around_webroot,
                        "written next to the webroot\n{}",
                        f.context
                    );
                })
            })
            .collect(),
    );
}

// ---- nonces ----------------------------------------------------------------------------------

#[test]
fn missing_unknown_and_refused_nonces() {
    let detail = "JWS has an invalid anti-replay nonce: \"proxy says no\"";
    run_cases(
        2,
        vec![
            case(
                "no Replay-Nonce anywhere, newNonce included",
                vec![Rule::any("/").drop_header("Replay-Nonce")],
                1,
                &["/nonce-plz", "Replay-Nonce"],
            ),
            case(
                "a well-formed Replay-Nonce the CA never gave, on every answer",
                vec![Rule::any("/").header("Replay-Nonce", "bm9uY2UtdGhlLWNhLW5ldmVyLWdhdmU")],
                75,
                &["/order-plz", "badNonce"],
            )
            .then(|_, f| {
                let posts = f.count("POST", "/order-plz");
                assert!((2..=11).contains(&posts), "{}", f.context);
            }),
            case(
                "every POST answered badNonce",
                vec![problem_rule(Rule::post("/"), 400, "badNonce", detail)],
                75,
                &["/order-plz", detail, "badNonce"],
            )
            .then(|_, f| {
                // One newOrder and ten retries.
                assert_eq!(f.count("POST", "/order-plz"), 11, "{}", f.context);
            }),
        ],
    );
}

#[test]
fn without_nonces_on_posts_the_client_asks_new_nonce_each_time() {
    let b = bench();
    b.proxy.rule(Rule::post("/").drop_header("Replay-Nonce"));
    let (run, _) = b.faulty_run(&["--cron", "--force"]);
    b.proxy.clear();
    assert_eq!(run.code(), 0, "{run:?}\n{}", b.proxy.transcript());
    assert_eq!(
        b.proxy.count(Some("HEAD"), "/nonce-plz"),
        b.proxy.count(Some("POST"), "/"),
        "{}",
        b.proxy.transcript()
    );
    check_live_set(&b.env.cert_dir(NAME), &[NAME], &b.root);
}

// ---- rate limits -----------------------------------------------------------------------------

#[test]
fn rate_limits_fail_at_once_whatever_retry_after_says() {
    let detail = "too many certificates (5) already issued for this exact set of identifiers in \
                  the last 168h0m0s, retry after 2099-10-21 07:28:00 UTC";
    let forms = [
        "3600",
        "0",
        "Wed, 21 Oct 2099 07:28:00 GMT",
        "Thu, 01 Jan 1970 00:00:00 GMT",
        "Mon, 01 Jan 0000 00:00:00 GMT",
        "Fri, 31 Dec 9999999999 23:59:59 GMT",
        "soon",
        "-5",
        "99999999999999999999999",
    ];
    run_cases(
        3,
        forms
            .iter()
            .map(|retry_after| {
                case(
                    format!("newOrder rateLimited with Retry-After: {retry_after}"),
                    vec![
                        problem_rule(Rule::post("/order-plz"), 429, "rateLimited", detail)
                            .header("Retry-After", retry_after),
                    ],
                    75,
                    &["/order-plz", detail, "rateLimited"],
                )
                .then(|_, f| assert_eq!(f.count("POST", "/order-plz"), 1, "{}", f.context))
            })
            .collect(),
    );
}

#[test]
fn a_rate_limit_is_remembered_until_its_retry_after() {
    let b = bench();
    // Due on every run: renewed when fewer than 4000 days are left.
    fs::write(b.env.cert_dir(NAME).join("config"), "RENEW_DAYS=4000\n").unwrap();
    b.proxy.rule(
        problem_rule(
            Rule::post("/order-plz"),
            429,
            "rateLimited",
            "too many orders",
        )
        .header("Retry-After", "3600"),
    );
    let (run, _) = b.faulty_run(&["--cron"]);
    b.proxy.clear();
    assert_eq!(run.code(), 75, "{run:?}");
    // The next run does not ask: the CA said when to come back.
    b.proxy.forget();
    let (run, _) = b.faulty_run(&["--cron"]);
    assert_eq!(run.code(), 75, "{run:?}");
    assert!(
        run.stderr()
            .contains("the CA's rate limit: not asked again before"),
        "{run:?}"
    );
    assert_eq!(
        b.proxy.count(Some("POST"), "/order-plz"),
        0,
        "{}",
        b.proxy.transcript()
    );
    // --force asks now; a success forgets the limit.
    let (run, _) = b.faulty_run(&["--cron", "--force"]);
    assert_eq!(run.code(), 0, "{run:?}");
    let (run, _) = b.faulty_run(&["--cron"]);
    assert_eq!(run.code(), 0, "{run:?}");
    check_live_set(&b.env.cert_dir(NAME), &[NAME], &b.root);
}

// ---- 5xx on every step -----------------------------------------------------------------------

#[test]
fn server_errors_on_every_step_are_temporary() {
    let busy = "The service is down for maintenance";
    let html = format!("<html><head><title>503</title></head><body>{busy}</body></html>");
    let steps = [
        ("directory", Rule::get("/dir"), "/dir"),
        ("newOrder", Rule::post("/order-plz"), "/order-plz"),
        ("authorization", Rule::post("/authZ/").nth(1), "/authZ/"),
        ("challenge", Rule::post("/chalZ/"), "/chalZ/"),
        (
            "validation poll",
            Rule::post("/my-order/").before("/finalize-order/"),
            "/my-order/",
        ),
        (
            "finalize",
            Rule::post("/finalize-order/"),
            "/finalize-order/",
        ),
        (
            "order poll",
            Rule::post("/my-order/").after("/finalize-order/"),
            "/my-order/",
        ),
        ("certificate download", Rule::post("/certZ/"), "/certZ/"),
    ];
    let mut cases = Vec::new();
    for (step, rule, path) in steps {
        cases.push(case(
            format!("503 with an HTML page on {step}"),
            vec![
                rule.clone()
                    .local()
                    .status(503)
                    .header("Content-Type", "text/html")
                    .body(html.clone()),
            ],
            75,
            &[path, "503", busy],
        ));
        let detail = format!("{step} failed: database unavailable");
        cases.push(case(
            format!("500 with a problem document on {step}"),
            vec![problem_rule(rule, 500, "serverInternal", &detail)],
            75,
            &[path, "500", &detail, "serverInternal"],
        ));
    }
    // A HEAD answer has no body: only the status can tell.
    cases.push(case(
        "503 on newNonce",
        vec![Rule::head("/nonce-plz").local().status(503)],
        75,
        &["/nonce-plz", "503"],
    ));
    run_cases(3, cases);
}

#[test]
fn a_server_error_on_new_account_registers_later() {
    let pebble = Pebble::start_without_refused_nonces();
    let proxy = Proxy::start(&pebble.directory_url, pebble.dir.path());
    let env = Env::for_ca(&proxy.directory_url, &pebble.ca_bundle, &pebble.webroot, "");
    env.domains(&format!("{NAME}\n"));
    let before = Snapshot::take(&env, &[NAME]);
    proxy.rule(problem_rule(
        Rule::post("/sign-me-up"),
        500,
        "serverInternal",
        "could not store the account",
    ));
    let start = Instant::now();
    let run = env.run(&["--cron", "--accept-terms"]);
    assert!(start.elapsed() < BOUND);
    assert_eq!(run.code(), 75, "{run:?}");
    assert!(
        run.stderr().contains("/sign-me-up") && run.stderr().contains("could not store"),
        "{run:?}"
    );
    no_secret_in(&(run.stdout() + &run.stderr()));
    after_fault(&env, &[NAME], &before, Stage::Untouched);
    assert!(!env.account_dir().join("account_id.json").exists());
    assert_eq!(proxy.count(Some("POST"), "/sign-me-up"), 1);
    proxy.clear();
    env.run(&["--cron", "--accept-terms"]).expect(0);
    check_live_set(&env.cert_dir(NAME), &[NAME], &pebble.root_der());
    assert!(env.account_dir().join("account_id.json").exists());
}

// ---- stalls ----------------------------------------------------------------------------------

#[test]
fn stalled_connections_end_at_the_request_deadline() {
    run_cases(
        3,
        vec![
            case(
                "the directory never answers",
                vec![Rule::get("/dir").local().deliver(Delivery::Hang)],
                75,
                &["/dir", "timed out"],
            ),
            case(
                "newOrder's answer drips a byte every 300 ms",
                vec![Rule::post("/order-plz").deliver(Delivery::Drip {
                    bytes: 1,
                    every: Duration::from_millis(300),
                })],
                75,
                &["/order-plz", "timed out"],
            ),
            case(
                "the certificate download hangs after the CA answered",
                vec![Rule::post("/certZ/").deliver(Delivery::Hang)],
                75,
                &["/certZ/", "timed out"],
            ),
            case(
                "the connection is reset on newOrder",
                vec![Rule::post("/order-plz").local().deliver(Delivery::Reset)],
                75,
                &["/order-plz"],
            ),
            case(
                "the connection is closed without an answer on the authorization",
                vec![Rule::post("/authZ/").local().deliver(Delivery::Close)],
                75,
                &["/authZ/"],
            ),
        ],
    );
}

#[test]
fn slow_answers_within_the_deadline_are_waited_for() {
    let b = bench();
    b.proxy
        .rule(Rule::post("/").delay(Duration::from_millis(500)));
    let (run, elapsed) = b.faulty_run(&["--cron", "--force"]);
    b.proxy.clear();
    assert_eq!(run.code(), 0, "{run:?}");
    assert!(elapsed >= Duration::from_secs(2), "{elapsed:?}");
    check_live_set(&b.env.cert_dir(NAME), &[NAME], &b.root);
}

// ---- a reset during finalize -----------------------------------------------------------------

/// How many finalize requests Pebble itself handled since its log had `since` requests.
fn finalized_at_pebble(pebble: &Pebble, since: usize) -> usize {
    pebble
        .requests_after(since)
        .iter()
        .filter(|r| r.starts_with("POST /finalize-order/"))
        .count()
}

#[test]
fn a_reset_after_finalize_reached_the_ca_rereads_the_order_and_never_finalizes_twice() {
    let b = bench();
    let since = b.pebble.requests();
    b.proxy
        .rule(Rule::post("/finalize-order/").deliver(Delivery::Reset));
    let before = fs::read(b.env.cert_dir(NAME).join("cert.pem")).unwrap();
    let (run, elapsed) = b.faulty_run(&["--cron", "--force"]);
    b.proxy.clear();
    let context = format!("{run:?}\n{}", b.proxy.transcript());
    assert!(elapsed < BOUND, "{context}");
    assert_eq!(run.code(), 0, "{context}");
    assert_eq!(
        b.proxy.count(Some("POST"), "/finalize-order/"),
        1,
        "{context}"
    );
    assert_eq!(finalized_at_pebble(&b.pebble, since), 1, "{context}");
    assert!(b.proxy.count(Some("POST"), "/my-order/") >= 1, "{context}");
    assert_ne!(
        fs::read(b.env.cert_dir(NAME).join("cert.pem")).unwrap(),
        before
    );
    b.no_secret(&run);
    Recovered {
        env: &b.env,
        certs: &[(NAME, &[NAME])],
        root_der: &b.root,
        hook_log: None,
    }
    .check();
}

#[test]
fn a_reset_before_finalize_reached_the_ca_finalizes_the_ready_order_once() {
    let b = bench();
    let since = b.pebble.requests();
    b.proxy.rule(
        Rule::post("/finalize-order/")
            .nth(1)
            .local()
            .deliver(Delivery::Reset),
    );
    let (run, _) = b.faulty_run(&["--cron", "--force"]);
    b.proxy.clear();
    let context = format!("{run:?}\n{}", b.proxy.transcript());
    assert_eq!(run.code(), 0, "{context}");
    assert_eq!(finalized_at_pebble(&b.pebble, since), 1, "{context}");
    check_live_set(&b.env.cert_dir(NAME), &[NAME], &b.root);
}

#[test]
fn a_reset_during_finalize_and_on_the_order_fails_without_a_second_finalize() {
    run_cases(
        1,
        vec![
            case(
                "resets on finalize and on every look at the order",
                vec![
                    Rule::post("/finalize-order/").deliver(Delivery::Reset),
                    Rule::post("/my-order/")
                        .after("/finalize-order/")
                        .local()
                        .deliver(Delivery::Reset),
                ],
                75,
                &["/my-order/"],
            )
            .then(|_, f| assert_eq!(f.count("POST", "/finalize-order/"), 1, "{}", f.context)),
        ],
    );
}

// ---- redirects -------------------------------------------------------------------------------

#[test]
fn redirects_are_not_followed() {
    let elsewhere = "https://127.0.0.1:9/elsewhere";
    run_cases(
        1,
        vec![
            case(
                "the directory moved permanently",
                vec![Rule::get("/dir").redirect(301, elsewhere)],
                1,
                &["/dir", "301", elsewhere],
            ),
            case(
                "newOrder redirects to another path",
                vec![Rule::post("/order-plz").redirect(307, "/order-plz-2")],
                1,
                &["/order-plz", "307", "/order-plz-2"],
            )
            .then(|_, f| assert_eq!(f.count("POST", "/order-plz"), 1, "{}", f.context)),
            case(
                "the certificate is found elsewhere over plain HTTP",
                vec![Rule::post("/certZ/").redirect(302, "http://127.0.0.1:9/cert")],
                1,
                &["/certZ/", "302", "http://127.0.0.1:9/cert"],
            ),
        ],
    );
}

// ---- orders stuck in processing --------------------------------------------------------------

fn processing(rule: Rule) -> Rule {
    rule.json(|v| {
        v["status"] = Value::String("processing".into());
        if let Some(o) = v.as_object_mut() {
            o.remove("certificate");
        }
    })
}

#[test]
fn an_order_stuck_in_processing_is_given_up_at_the_deadline() {
    let forms = ["1", "0", "Thu, 01 Jan 1970 00:00:00 GMT", "86400"];
    run_cases(
        4,
        forms
            .iter()
            .map(|retry_after| {
                case(
                    format!("the order stays processing, Retry-After: {retry_after}"),
                    vec![
                        processing(Rule::post("/finalize-order/"))
                            .header("Retry-After", retry_after),
                        processing(Rule::post("/my-order/").after("/finalize-order/"))
                            .header("Retry-After", retry_after),
                    ],
                    75,
                    &["/my-order/", "processing"],
                )
                .then(|_, f| {
                    let polls = f.count("POST", "/my-order/");
                    assert!((1..=20).contains(&polls), "{polls} polls\n{}", f.context);
                })
            })
            .collect(),
    );
}

// ---- wrong certificates ----------------------------------------------------------------------

/// A throw-away CA whose certificate goes in the chain in place of Pebble's.
fn fake_issuer() -> rcgen::CertifiedIssuer<'static, rcgen::KeyPair> {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Not Pebble");
    rcgen::CertifiedIssuer::self_signed(params, rcgen::KeyPair::generate().unwrap()).unwrap()
}

/// A certificate for the CSR of the last finalize, changed by `change`, signed by a fake CA;
/// the chain is that CA unless `pebble_chain`, then Pebble's own (from `body`).
fn forged(
    body: &[u8],
    seen: &[Seen],
    pebble_chain: bool,
    change: impl Fn(&mut rcgen::CertificateParams),
) -> Vec<u8> {
    let csr = last_csr(seen);
    let mut req = rcgen::CertificateSigningRequestParams::from_der(&csr.into()).unwrap();
    change(&mut req.params);
    let issuer = fake_issuer();
    let leaf = req.signed_by(&issuer).unwrap();
    let chain = if pebble_chain {
        let text = String::from_utf8_lossy(body).into_owned();
        let first_end = text.find("-----END CERTIFICATE-----").unwrap() + 26;
        text[first_end..].trim_start().to_string()
    } else {
        issuer.pem()
    };
    format!("{}{}", leaf.pem(), chain).into_bytes()
}

/// The first certificate of a PEM chain.
fn leaf_only(body: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(body).into_owned();
    let end = text.find("-----END CERTIFICATE-----").unwrap() + 26;
    text.as_bytes()[..end].to_vec()
}

#[test]
fn wrong_certificates_are_refused_before_anything_is_written() {
    let cert = |f: fn(&[u8], &[Seen]) -> Vec<u8>| vec![Rule::post("/certZ/").map_body(f)];
    run_cases(
        3,
        vec![
            case(
                "a certificate for another key",
                cert(|_, _| {
                    let issuer = fake_issuer();
                    let params = rcgen::CertificateParams::new(vec![NAME.to_string()]).unwrap();
                    let key = rcgen::KeyPair::generate().unwrap();
                    let leaf = params.signed_by(&key, &issuer).unwrap();
                    format!("{}{}", leaf.pem(), issuer.pem()).into_bytes()
                }),
                1,
                &["/certZ/", "key"],
            ),
            case(
                "a certificate for other names",
                cert(|body, seen| {
                    forged(body, seen, false, |p| {
                        p.subject_alt_names = vec![
                            rcgen::SanType::DnsName("other.example".try_into().unwrap()),
                            rcgen::SanType::DnsName(NAME.try_into().unwrap()),
                        ];
                    })
                }),
                1,
                &["/certZ/", "other.example"],
            ),
            case(
                "a private key block in the chain",
                cert(|body, _| {
                    let key = rcgen::KeyPair::generate().unwrap().serialize_pem();
                    [body, key.as_bytes()].concat()
                }),
                1,
                &["/certZ/", "private key"],
            ),
            case(
                "a block of another kind in the chain",
                cert(|body, _| {
                    [
                        body,
                        b"-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n",
                    ]
                    .concat()
                }),
                1,
                &["/certZ/", "X509 CRL"],
            ),
            case(
                "an expired certificate",
                cert(|body, seen| {
                    forged(body, seen, false, |p| {
                        p.not_before = rcgen::date_time_ymd(2020, 1, 1);
                        p.not_after = rcgen::date_time_ymd(2020, 4, 1);
                    })
                }),
                1,
                &["/certZ/", "expired"],
            ),
            case(
                "a certificate not signed by the chain",
                cert(|body, seen| forged(body, seen, true, |_| {})),
                1,
                &["/certZ/", "not signed"],
            ),
            case(
                "the leaf without a chain",
                cert(|body, _| leaf_only(body)),
                1,
                &["/certZ/", "no chain"],
            ),
            case(
                "an empty body",
                vec![Rule::post("/certZ/").body("")],
                1,
                &["/certZ/", "no certificate"],
            ),
            case(
                "garbage instead of PEM",
                vec![Rule::post("/certZ/").body(vec![0xff, 0x00, 0x12, b'-', b'-'])],
                1,
                &["/certZ/"],
            ),
        ],
    );
}

/// Every variable a proxy could come from (ureq's list, and NO_PROXY): removed from a
/// command's environment so that only the test's own proxy setting counts.
const PROXY_VARIABLES: [&str; 8] = [
    "ALL_PROXY",
    "all_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "NO_PROXY",
    "no_proxy",
];

/// desiccant with only the proxy variables of `vars` set.
fn run_with_proxy(env: &Env, vars: &[(&str, &str)], args: &[&str]) -> Run {
    let mut cmd = env.command(args);
    for name in PROXY_VARIABLES {
        cmd.env_remove(name);
    }
    cmd.envs(vars.iter().copied());
    Run {
        args: args.iter().map(|s| s.to_string()).collect(),
        output: cmd.output().unwrap(),
    }
}

/// Debian's tinyproxy on a loopback address of its own, with its own config and log, in the
/// foreground (not the system's service); killed on Drop.
struct Tinyproxy {
    addr: std::net::SocketAddr,
    log: std::path::PathBuf,
    _dir: common::TempDir,
    _process: common::Process,
}

impl Tinyproxy {
    /// With `extra` lines added to its config.
    fn start(extra: &str) -> Tinyproxy {
        let program = common::require("tinyproxy", "tinyproxy");
        let dir = common::TempDir::new("tinyproxy");
        let addr = std::net::SocketAddr::from((common::loopback(), 3128));
        let log = dir.path().join("tinyproxy.log");
        let config = dir.path().join("tinyproxy.conf");
        fs::write(
            &config,
            format!(
                "Port {}\nListen {}\nTimeout 30\nLogFile \"{}\"\nLogLevel Info\nMaxClients 20\n\
                 Allow 127.0.0.0/8\n{extra}",
                addr.port(),
                addr.ip(),
                log.display()
            ),
        )
        .unwrap();
        let mut child = std::process::Command::new(program)
            .arg("-d")
            .arg("-c")
            .arg(&config)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        common::wait_for_port(addr, "tinyproxy", &mut child, &log);
        Tinyproxy {
            addr,
            log,
            _dir: dir,
            _process: common::Process(child),
        }
    }

    /// The CONNECT requests it was asked for, as `host:port`.
    fn tunnels(&self) -> Vec<String> {
        fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split(": CONNECT ").nth(1))
            .filter_map(|rest| rest.split(' ').next())
            .map(str::to_string)
            .collect()
    }
}

#[test]
fn an_issuance_goes_through_the_proxy_of_https_proxy_and_no_proxy_bypasses_it() {
    let pebble = Pebble::start();
    let tinyproxy = Tinyproxy::start("");
    let env = Env::new(&pebble, "");
    env.domains("proxied.example\n");
    let ca = format!("{}:{}", pebble.ip, common::ACME_PORT);
    let proxy = format!("http://{}", tinyproxy.addr);
    let run = run_with_proxy(
        &env,
        &[("HTTPS_PROXY", &proxy)],
        &["--cron", "--accept-terms", "--verbose"],
    );
    run.expect(0);
    check_live_set(
        &env.cert_dir("proxied.example"),
        &["proxied.example"],
        &pebble.root_der(),
    );
    assert!(
        run.stderr()
            .contains(&format!("through the proxy {proxy} (HTTPS_PROXY)")),
        "{run:?}"
    );
    let tunnels = tinyproxy.tunnels();
    assert!(!tunnels.is_empty(), "nothing went through the proxy");
    assert!(tunnels.iter().all(|t| *t == ca), "{tunnels:?}");

    // The CA's host in NO_PROXY: straight to the CA, the proxy not asked.
    let run = run_with_proxy(
        &env,
        &[
            ("https_proxy", &proxy),
            ("NO_PROXY", &pebble.ip.to_string()),
        ],
        &["--cron", "--force"],
    );
    run.expect(0);
    assert_eq!(tinyproxy.tunnels(), tunnels, "NO_PROXY was not obeyed");
}

#[test]
fn a_dead_proxy_is_named_with_its_variable_and_without_its_password() {
    let pebble = Pebble::start();
    let env = Env::new(&pebble, "");
    env.domains("proxied.example\n");
    // An address nothing listens on: the connection is refused.
    let dead = std::net::SocketAddr::from((common::loopback(), 3128));
    for variable in ["HTTPS_PROXY", "https_proxy", "ALL_PROXY"] {
        let run = run_with_proxy(
            &env,
            &[(variable, &format!("http://admin:s3cret@{dead}"))],
            &["--cron", "--accept-terms"],
        );
        run.expect(75);
        assert!(
            run.stderr().contains(&format!(
                "error: CA: cannot reach {}: cannot connect to the proxy http://{dead} \
                 ({variable}): connection refused",
                pebble.directory_url
            )),
            "{run:?}"
        );
        assert!(
            !run.stderr().contains("s3cret") && !run.stderr().contains("admin"),
            "{run:?}"
        );
    }
}

#[test]
fn a_proxy_that_refuses_the_tunnel_is_named_with_its_answer() {
    let pebble = Pebble::start();
    // Tunnels to port 443 only: the CA's port is refused.
    let tinyproxy = Tinyproxy::start("ConnectPort 443\n");
    let env = Env::new(&pebble, "");
    env.domains("proxied.example\n");
    let proxy = format!("http://{}", tinyproxy.addr);
    let run = run_with_proxy(
        &env,
        &[("HTTPS_PROXY", &proxy)],
        &["--cron", "--accept-terms"],
    );
    run.expect(75);
    assert!(
        run.stderr().contains(&format!(
            "error: CA: cannot reach {}: the proxy {proxy} (HTTPS_PROXY) refused the tunnel: ",
            pebble.directory_url
        )),
        "{run:?}"
    );
}

#[test]
fn a_proxy_whose_name_is_not_found_is_named_not_the_ca() {
    let pebble = Pebble::start();
    let env = Env::new(&pebble, "");
    env.domains("proxied.example\n");
    let run = run_with_proxy(
        &env,
        &[("HTTPS_PROXY", "http://proxy.invalid:3128")],
        &["--cron", "--accept-terms"],
    );
    run.expect(75);
    assert!(
        run.stderr().contains(&format!(
            "error: CA: cannot reach {}: cannot connect to the proxy http://proxy.invalid:3128 \
             (HTTPS_PROXY): io: failed to lookup address information: ",
            pebble.directory_url
        )),
        "{run:?}"
    );
}

#[test]
fn an_untrusted_certificate_through_a_proxy_names_the_proxy_and_its_fixes() {
    let pebble = Pebble::start();
    let tinyproxy = Tinyproxy::start("");
    let env = Env::new(&pebble, "");
    env.domains("proxied.example\n");
    let proxy = format!("http://{}", tinyproxy.addr);
    // The system's store does not hold Pebble's root, as it would not hold the root of a proxy
    // that inspects TLS.
    let run = run_with_proxy(
        &env,
        &[("HTTPS_PROXY", &proxy)],
        &[
            "--cron",
            "--accept-terms",
            "--ca-bundle",
            "/etc/ssl/certs/ca-certificates.crt",
        ],
    );
    run.expect(78);
    assert!(
        run.stderr().contains(&format!(
            "error: CA: cannot reach {url}: the TLS certificate of {ip}:{port} is not trusted \
             by the given CA bundle: its issuer is not known (through the proxy {proxy} \
             (HTTPS_PROXY): a proxy that inspects TLS shows a certificate of its own; put its \
             root in CA_BUNDLE, or {ip} in NO_PROXY); set CA_BUNDLE",
            url = pebble.directory_url,
            ip = pebble.ip,
            port = common::ACME_PORT,
        )),
        "{run:?}"
    );
}
