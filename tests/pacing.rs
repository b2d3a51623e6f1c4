//! A CA at a distance, with its limits: runs through tests/common/wan_relay.py (a round trip
//! added at TCP level, Let's Encrypt-style request limits answered with 503 + Retry-After, an
//! order limit per account answered with 429 rateLimited) in front of the real Pebble; and the
//! CA's Retry-After on an order, through the fault proxy.

mod common;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::proxy::{Proxy, Rule};
use common::{Env, Pebble, PebbleOptions, TempDir, require};
use serde_json::Value;

/// The WAN relay in front of a Pebble, stopped on Drop.
struct Relay {
    child: Child,
    directory_url: String,
    stats: PathBuf,
    _dir: TempDir,
}

impl Relay {
    /// A relay on Pebble's own loopback address (which its TLS certificate names) with a round
    /// trip of `rtt_ms`, request limits `limits` (JSON, as `--limits FILE` reads it; None for
    /// none) and `--order-limit` when given.
    fn start(
        pebble: &Pebble,
        rtt_ms: u32,
        limits: Option<&str>,
        order_limit: Option<&str>,
    ) -> Relay {
        let python = require("python3", "python3");
        let dir = TempDir::new("relay");
        let limits = match limits {
            Some(json) => {
                let file = dir.path().join("limits.json");
                std::fs::write(&file, json).unwrap();
                file.display().to_string()
            }
            None => "none".into(),
        };
        let listen = format!("{}:{}", pebble.ip, common::ACME_PORT + 1);
        let upstream = pebble.directory_url.trim_end_matches("/dir");
        let stats = dir.path().join("stats.json");
        let pem = |f: &str| pebble.dir.path().join(f);
        let mut cmd = Command::new(python);
        cmd.arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/common/wan_relay.py"
        ))
        .args(["--listen", &listen, "--upstream", upstream])
        .arg("--cert")
        .arg(pem("cert.pem"))
        .arg("--key")
        .arg(pem("key.pem"))
        .arg("--upstream-ca")
        .arg(pem("ca.pem"))
        .args(["--rtt-ms", &rtt_ms.to_string(), "--limits", &limits])
        .arg("--stats")
        .arg(&stats)
        .stdout(Stdio::piped())
        .stderr(Stdio::from(
            std::fs::File::create(dir.path().join("relay.err")).unwrap(),
        ));
        if let Some(order_limit) = order_limit {
            cmd.args(["--order-limit", order_limit]);
        }
        let mut child = cmd.spawn().unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let relay = Relay {
            child,
            directory_url: format!("https://{listen}/dir"),
            stats,
            _dir: dir,
        };
        assert_eq!(
            line.trim(),
            "ready",
            "the relay did not start: {}",
            common::read(&relay._dir.path().join("relay.err"))
        );
        relay
    }

    fn signal(&self, signal: i32) {
        let pid = i32::try_from(self.child.id()).unwrap();
        assert_eq!(unsafe { libc::kill(pid, signal) }, 0);
    }

    /// The relay's stats since it started or was last reset; with `reset`, it starts afresh
    /// (counters and buckets, the order limit's included).
    fn stats(&self, reset: bool) -> Value {
        let _ = std::fs::remove_file(&self.stats);
        self.signal(if reset { libc::SIGUSR2 } else { libc::SIGUSR1 });
        let until = Instant::now() + Duration::from_secs(10);
        while !self.stats.exists() {
            assert!(Instant::now() < until, "the relay wrote no stats");
            std::thread::sleep(Duration::from_millis(20));
        }
        serde_json::from_str(&common::read(&self.stats)).unwrap()
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.signal(libc::SIGTERM);
        let _ = self.child.wait();
    }
}

/// An Env whose CA is `relay`'s directory, with `extra` config lines.
fn env_behind(pebble: &Pebble, relay: &Relay, extra: &str) -> Env {
    Env::for_ca(
        &relay.directory_url,
        &pebble.ca_bundle,
        &pebble.webroot,
        extra,
    )
}

fn count(stats: &Value, group: &str, name: &str, field: &str) -> u64 {
    stats[group][name][field].as_u64().unwrap_or(0)
}

#[test]
fn a_batch_paced_under_strict_limits_meets_no_refusal() {
    let pebble = Pebble::start_without_refused_nonces();
    // Limits far below Let's Encrypt's, so that 30 certificates meet them within seconds.
    let relay = Relay::start(
        &pebble,
        20,
        Some(
            r#"{"directory": {"rate": 5, "burst": 5}, "new-nonce": {"rate": 2, "burst": 2},
                "new-account": {"rate": 1, "burst": 1}, "new-order": {"rate": 4, "burst": 2},
                "acme": {"rate": 20, "burst": 10}}"#,
        ),
        None,
    );
    let env = env_behind(
        &pebble,
        &relay,
        "RATE_LIMITS=\"directory=5/s:5 new-nonce=2/s:2 new-account=1/s:1 new-order=4/s:2 \
         other=20/s:10\"\n",
    );
    let names: Vec<String> = (1..=30).map(|i| format!("paced{i}.example")).collect();
    env.domains(&(names.join("\n") + "\n"));
    let run = env.run(&["--cron", "--accept-terms"]);
    run.expect(0);
    for name in &names {
        assert!(
            env.cert_dir(name).join("cert.pem").exists(),
            "{name}: {run:?}"
        );
    }
    let stats = relay.stats(false);
    let total = &stats["total"];
    assert_eq!(total["503"], 0, "{stats:#}\n{run:?}");
    assert_eq!(total["429"], 0, "{stats:#}");
    for (class, entry) in stats["classes"].as_object().unwrap() {
        let Some(limit) = entry["limit"].as_object() else {
            continue;
        };
        // The published rate in any one second, whatever the burst the CA would allow.
        let allowed = limit["rate"].as_f64().unwrap();
        let peak = entry["peak_per_second"].as_f64().unwrap();
        assert!(peak <= allowed, "{class}: {peak} in one second\n{stats:#}");
    }
    assert_eq!(count(&stats, "classes", "new-order", "requests"), 30);
}

#[test]
fn a_batch_keeps_its_connections_open_and_asks_few_nonces() {
    let pebble = Pebble::start_without_refused_nonces();
    let relay = Relay::start(&pebble, 20, None, None);
    // newNonce one at a time (a burst of 1), 18 a second.
    let env = env_behind(
        &pebble,
        &relay,
        "JOBS=32\nRATE_LIMITS=\"new-nonce=20/s:1\"\n",
    );
    let names: Vec<String> = (1..=64).map(|i| format!("kept{i}.example")).collect();
    env.domains(&(names.join("\n") + "\n"));
    let run = env.run(&["--cron", "--accept-terms"]);
    run.expect(0);
    assert_eq!(run.stdout().matches(": issued").count(), 64, "{run:?}");
    let stats = relay.stats(false);
    // Every connection opened is kept for the next request: none is closed while the run
    // goes on, so there are never more than were open at once (ureq's default pool kept 3,
    // and the other jobs paid a new TCP and TLS handshake, two round trips, for most
    // requests).
    let connections = stats["total"]["connections"].as_u64().unwrap();
    let at_once = stats["total"]["open_at_once"].as_u64().unwrap();
    assert_eq!(connections, at_once, "{stats:#}");
    // The jobs start side by side and each needs a nonce: those that would wait for their
    // turn under new-nonce's limit (18 a second: one every 55 ms, the round trip is 20 ms)
    // take the nonces the first answers bring instead. (Each waiting its turn, half the jobs
    // asked: 16.)
    let asked = count(&stats, "classes", "new-nonce", "requests");
    assert!(asked <= 10, "{asked} newNonce requests\n{stats:#}");
}

#[test]
fn the_order_limit_renews_what_fits_and_leaves_the_rest_for_the_next_run() {
    let pebble = Pebble::start_without_refused_nonces();
    let relay = Relay::start(&pebble, 5, None, Some("5/3600"));
    let env = env_behind(&pebble, &relay, "ORDER_LIMIT=5/1h\n");
    let names: Vec<String> = (1..=8).map(|i| format!("limited{i}.example")).collect();
    env.domains(&(names.join("\n") + "\n"));

    let run = env.run(&["--cron", "--accept-terms"]);
    run.expect(75);
    for (i, name) in names.iter().enumerate() {
        let live = env.cert_dir(name).join("cert.pem").exists();
        assert_eq!(live, i < 5, "{name}: {run:?}");
    }
    assert!(
        run.stderr().contains(
            "3 certificates are left for the next run: ORDER_LIMIT allows 5 new orders in 1 h \
             and 0 were sent in that time; 5 ordered in this run"
        ),
        "{run:?}"
    );
    let stats = relay.stats(true);
    assert_eq!(stats["total"]["429"], 0, "{stats:#}");
    assert_eq!(count(&stats, "classes", "new-order", "requests"), 5);

    // At once again: the account's five orders are still inside the window, so none is sent,
    // though the CA (the relay, reset) would take them; the three are still left, and are not
    // failures.
    let again = env.run(&["--cron"]);
    again.expect(75);
    assert!(
        again
            .stderr()
            .contains("3 certificates are left for the next run"),
        "{again:?}"
    );
    assert!(!again.stderr().contains("error"), "{again:?}");
    let stats = relay.stats(true);
    assert_eq!(count(&stats, "classes", "new-order", "requests"), 0);

    // After the window: the other three.
    let later = env.run_at("+2h", &["--cron"]);
    later.expect(0);
    for name in &names[5..] {
        assert!(
            later.stdout().contains(&format!("{name}: issued")),
            "{later:?}"
        );
    }
    assert_eq!(later.stdout().matches(": issued").count(), 3, "{later:?}");
    let stats = relay.stats(false);
    assert_eq!(stats["total"]["429"], 0, "{stats:#}");
}

#[test]
fn a_validation_of_seconds_costs_a_handful_of_polls_and_fewer_once_known() {
    // Pebble's web server answers the CA 1.5 s late: every validation takes seconds (Pebble
    // fetches more than once).
    let pebble = Pebble::start_with(PebbleOptions {
        nonce_reject: 0,
        answer_after: Duration::from_millis(1500),
        ..Default::default()
    });
    let relay = Relay::start(&pebble, 50, None, None);
    let env = env_behind(&pebble, &relay, "");
    env.domains("slow.example\n");
    env.run(&["--cron", "--accept-terms"]).expect(0);
    let first = relay.stats(true);
    let polls = count(&first, "endpoints", "order", "requests");
    // Nothing known: polls from one round trip on, doubling up to 2 s apart.
    assert!((2..=10).contains(&polls), "{polls} polls\n{first:#}");
    let ca = common::read(&env.path().join("state/.ca.json"));
    let record: Value = serde_json::from_str(&ca).unwrap();
    let took = record["timings"]["validation_ms"][0].as_u64().unwrap();
    assert!((1000..=10_000).contains(&took), "{ca}");

    // Known to take that long, the next one looks about then: validation and signing in a
    // few polls.
    env.run(&["--cron", "--force"]).expect(0);
    let second = relay.stats(false);
    let polls = count(&second, "endpoints", "order", "requests");
    assert!((2..=4).contains(&polls), "{polls} polls\n{second:#}");
}

#[test]
fn a_retry_after_on_an_order_is_waited_for() {
    let pebble = Pebble::start_without_refused_nonces();
    let proxy = Proxy::start(&pebble.directory_url, pebble.dir.path());
    // The first look at the order finds it pending, to be asked again in 2 s.
    proxy.rule(
        Rule::post("/my-order/")
            .first(1)
            .json(|v| v["status"] = Value::String("pending".into()))
            .header("Retry-After", "2"),
    );
    let env = Env::for_ca(&proxy.directory_url, &pebble.ca_bundle, &pebble.webroot, "");
    env.domains("patient.example\n");
    let start = Instant::now();
    env.run(&["--cron", "--accept-terms"]).expect(0);
    assert!(
        start.elapsed() >= Duration::from_secs(2),
        "{}",
        proxy.transcript()
    );
    let seen = proxy.seen();
    let finalized = seen
        .iter()
        .position(|s| s.path.contains("/finalize-order/"))
        .unwrap();
    let polls = common::proxy::count(&seen[..finalized], Some("POST"), "/my-order/");
    assert_eq!(polls, 2, "{}", proxy.transcript());
}

#[test]
fn a_503_with_retry_after_is_sent_again_after_it() {
    let pebble = Pebble::start_without_refused_nonces();
    let proxy = Proxy::start(&pebble.directory_url, pebble.dir.path());
    // A load balancer's "not now" on the first look at the order: the request never reached
    // the CA, and is sent again once the second has passed.
    proxy.rule(
        Rule::post("/my-order/")
            .first(1)
            .local()
            .status(503)
            .header("Retry-After", "1")
            .problem("rateLimited", "Service busy; retry later."),
    );
    let env = Env::for_ca(&proxy.directory_url, &pebble.ca_bundle, &pebble.webroot, "");
    env.domains("busy.example\n");
    let start = Instant::now();
    let run = env.run(&["--cron", "--accept-terms"]);
    run.expect(0);
    assert!(
        start.elapsed() >= Duration::from_secs(1),
        "{}",
        proxy.transcript()
    );
    assert!(run.stdout().contains("busy.example: issued"), "{run:?}");
    let statuses: Vec<Option<u16>> = proxy
        .seen()
        .iter()
        .filter(|s| s.path.contains("/my-order/"))
        .map(|s| s.status)
        .take(2)
        .collect();
    assert_eq!(statuses, [Some(503), Some(200)], "{}", proxy.transcript());
}
