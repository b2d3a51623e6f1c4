//! dns-01 against real DNS servers: a hook that sets records in pebble-challtestsrv, the
//! built-in RFC 2136 updater against BIND's named, the propagation check, the HTTP_LISTEN
//! responder behind nginx, and http-01 and dns-01 in one run.

mod common;

use std::fs;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{
    Env, Named, Pebble, PebbleOptions, Process, TempDir, check_live_set, require, script,
};

/// A hook that publishes dns-01 values in pebble-challtestsrv, after `delay` seconds in the
/// background when given.
fn challtestsrv_hook(env: &Env, pebble: &Pebble, delay: Option<u32>) -> std::path::PathBuf {
    require("curl", "curl");
    let path = env.path().join("dns-hook.sh");
    let set = format!(
        "curl -s -X POST -d \"{{\\\"host\\\":\\\"_acme-challenge.$1.\\\",\\\"value\\\":\\\"$3\\\"}}\" {}/set-txt",
        pebble.dns_management
    );
    let set = match delay {
        Some(s) => format!("( sleep {s}; {set} ) >/dev/null 2>&1 &"),
        None => format!("{set} >/dev/null"),
    };
    script(
        &path,
        &format!(
            r#"handler="$1"; shift
case "$handler" in
  deploy_challenge) while [ $# -ge 3 ]; do
      {set}
      shift 3
    done ;;
  clean_challenge) while [ $# -ge 3 ]; do curl -s -X POST -d "{{\"host\":\"_acme-challenge.$1.\"}}" {mgmt}/clear-txt >/dev/null; shift 3; done ;;
esac
exit 0"#,
            mgmt = pebble.dns_management
        ),
    );
    path
}

#[test]
fn wildcard_and_apex_by_dns_01_through_a_hook() {
    let pebble = Pebble::start();
    let env = Env::new(&pebble, "");
    let hook = challtestsrv_hook(&env, &pebble, None);
    env.write_config(&format!(
        "CHALLENGETYPE=dns-01\nHOOK={}\nDNS_CHECK_SERVERS={}\n",
        hook.display(),
        pebble.dns_server
    ));
    env.domains("*.example.test example.test > star_example_test\n");
    let run = env.run(&["--cron", "--accept-terms"]);
    run.expect(0);
    check_live_set(
        &env.cert_dir("star_example_test"),
        &["*.example.test", "example.test"],
        &pebble.root_der(),
    );
}

#[test]
fn the_propagation_check_waits_for_a_late_record_and_fails_on_a_missing_one() {
    // No refused nonces: the test counts the challenge answers in Pebble's log, where a
    // refused one would count too.
    let pebble = Pebble::start_without_refused_nonces();
    let env = Env::new(&pebble, "");
    let hook = challtestsrv_hook(&env, &pebble, Some(2));
    env.write_config(&format!(
        "CHALLENGETYPE=dns-01\nHOOK={}\nDNS_CHECK_SERVERS={}\nDNS_WAIT=30\n",
        hook.display(),
        pebble.dns_server
    ));
    env.domains("late.example.test\n");
    let started = Instant::now();
    env.run(&["--cron", "--accept-terms"]).expect(0);
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "did not wait for the record"
    );

    // A hook that publishes nothing: the check gives up at DNS_WAIT and names the server.
    let silent = env.path().join("silent.sh");
    script(&silent, "exit 0");
    env.write_config(&format!(
        "CHALLENGETYPE=dns-01\nHOOK={}\nDNS_CHECK_SERVERS={}\nDNS_WAIT=2\n",
        silent.display(),
        pebble.dns_server
    ));
    env.domains("never.example.test\n");
    let requests = pebble.requests();
    let run = env.run(&["--cron"]);
    run.expect(1);
    let err = run.stderr();
    assert!(
        err.contains(&format!(
            "name server {} does not have the TXT record _acme-challenge.never.example.test yet",
            pebble.dns_server
        )),
        "{run:?}"
    );
    assert!(err.contains("after 2 s (DNS_WAIT)"), "{run:?}");
    // The CA was never asked to look: no challenge was answered.
    let log = fs::read_to_string(&pebble.log).unwrap();
    let answered = log.lines().filter(|l| l.contains("POST /chalZ/")).count();
    assert!(pebble.requests() > requests);
    assert_eq!(
        answered, 1,
        "only the first, successful run answered a challenge"
    );
}

fn named_config(env: &Env, named: &Named, extra: &str) {
    env.write_config(&format!(
        "CHALLENGETYPE=dns-01\nDNS_UPDATE_SERVER={}\nDNS_UPDATE_KEY_FILE={}\n{extra}",
        named.addr,
        named.key_file.display()
    ));
}

#[test]
fn rfc_2136_updates_against_named() {
    let named = Named::start("example.test");
    let pebble = Pebble::start_with(PebbleOptions {
        dns: Some(named.addr),
        ..Default::default()
    });
    let env = Env::new(&pebble, "");
    named_config(&env, &named, &format!("DNS_CHECK_SERVERS={}\n", named.addr));
    env.domains("*.example.test example.test > star_example_test\n");
    let run = env.run(&["--cron", "--accept-terms", "--verbose"]);
    run.expect(0);
    check_live_set(
        &env.cert_dir("star_example_test"),
        &["*.example.test", "example.test"],
        &pebble.root_der(),
    );
    assert_eq!(
        named.txt("_acme-challenge.example.test"),
        Vec::<String>::new()
    );
    // The TSIG secret never reaches the output, even verbose.
    let secret = "ZGVzaWNjYW50IHRlc3Qga2V5IGZvciBuYW1lZCAhISE=";
    assert!(!run.stdout().contains(secret) && !run.stderr().contains(secret));
}

#[test]
fn records_are_removed_after_a_failed_validation_too() {
    let named = Named::start("example.test");
    // Pebble looks in pebble-challtestsrv, where nobody puts the records: validation fails.
    let pebble = Pebble::start();
    let env = Env::new(&pebble, "");
    named_config(&env, &named, &format!("DNS_CHECK_SERVERS={}\n", named.addr));
    env.domains("failing.example.test\n");
    let run = env.run(&["--cron", "--accept-terms"]);
    run.expect(1);
    assert!(
        run.stderr()
            .contains("failing.example.test: dns-01 challenge invalid: "),
        "{run:?}"
    );
    assert!(
        run.stderr()
            .contains("_acme-challenge.failing.example.test"),
        "{run:?}"
    );
    assert_eq!(
        named.txt("_acme-challenge.failing.example.test"),
        Vec::<String>::new()
    );
}

#[test]
fn a_wrong_tsig_key_names_the_server_and_the_key() {
    let named = Named::start("example.test");
    let pebble = Pebble::start_with(PebbleOptions {
        dns: Some(named.addr),
        ..Default::default()
    });
    let env = Env::new(&pebble, "");
    env.write_config(&format!(
        "CHALLENGETYPE=dns-01\nDNS_UPDATE_SERVER={}\nDNS_UPDATE_KEY_NAME=acme-update\nDNS_UPDATE_KEY_SECRET=d3Jvbmcgc2VjcmV0\nDNS_CHECK_SERVERS={}\n",
        named.addr, named.addr
    ));
    env.domains("wrongkey.example.test\n");
    let run = env.run(&["--cron", "--accept-terms"]);
    run.expect(1);
    let err = run.stderr();
    assert!(
        err.contains(&format!(
            "DNS server {} (zone example.test, key acme-update) refused the update",
            named.addr
        )),
        "{run:?}"
    );
    assert!(err.contains("BADSIG") || err.contains("NOTAUTH"), "{run:?}");
    assert!(
        !err.contains("d3Jvbmcgc2VjcmV0"),
        "the secret was printed: {run:?}"
    );
    assert_eq!(
        named.txt("_acme-challenge.wrongkey.example.test"),
        Vec::<String>::new()
    );
}

/// Without DNS_CHECK_SERVERS the check finds the zone's name servers itself: it asks
/// DNS_RESOLVER (named here) for the zone and its NS records, and then each name server they
/// name, on port 53, for the record, before it tells the CA to look.
///
/// The zone's only name server, `ns.example.test`, is a DNS server of its own: its address is
/// in the zone's NS glue and nowhere else, named (the resolver) never holds the records, and
/// Pebble looks in its own DNS server. The hook publishes the record in Pebble's DNS server
/// and, unless told to lag, in the name server. The first run shows that the check passes
/// when the name server has the record: a check that asked the resolver instead would never
/// pass. The second run, whose record the name server never gets (a secondary that lags
/// behind), shows that the check is done: a run that skipped it would tell the CA at once,
/// Pebble would find the record and the run would succeed. Here it must fail at DNS_WAIT,
/// naming the name server, with no challenge answer sent (the same log shows the first
/// run's). Checked by making `wait_until_visible` in src/dns01.rs return at once: this test
/// then fails at the second run.
#[test]
fn the_check_finds_the_zones_name_servers_itself() {
    // The name server answers on port 53, as the NS records imply: only root can bind it.
    if unsafe { libc::geteuid() } != 0 {
        panic!("this test runs a DNS server on port 53 of a loopback address, which needs root");
    }
    let (_ns_dir, _ns, ns_ip) = name_server();
    let named = Named::start_for("example.test", ns_ip);
    // No refused nonces: the test counts the challenge answers in Pebble's log, where a
    // refused one would count too.
    let pebble = Pebble::start_without_refused_nonces();
    let env = Env::new(&pebble, "");
    let hook = env.path().join("dns-hook.sh");
    let set = |mgmt: &str| {
        format!(
            "curl -s -X POST -d \"{{\\\"host\\\":\\\"_acme-challenge.$2.\\\",\\\"value\\\":\\\"$4\\\"}}\" {mgmt}/set-txt >/dev/null"
        )
    };
    script(
        &hook,
        &format!(
            "case \"$1\" in\n  deploy_challenge) {ca}\n    [ -e '{lag}' ] || {ns} ;;\nesac\nexit 0",
            ca = set(&pebble.dns_management),
            ns = set(&format!("http://{}:{}", ns_ip, common::DNS_MANAGEMENT_PORT)),
            lag = env.path().join("lagging").display(),
        ),
    );
    env.write_config(&format!(
        "CHALLENGETYPE=dns-01\nHOOK={}\nDNS_RESOLVER={}\nDNS_WAIT=2\n",
        hook.display(),
        named.addr
    ));
    env.domains("found.example.test\n");
    env.run(&["--cron", "--accept-terms"]).expect(0);
    let answered = || {
        pebble
            .requests_after(0)
            .iter()
            .filter(|r| r.starts_with("POST /chalZ/"))
            .count()
    };
    assert_eq!(answered(), 1, "{:#?}", pebble.requests_after(0));

    fs::write(env.path().join("lagging"), "").unwrap();
    env.domains("late.example.test\n");
    let run = env.run(&["--cron"]);
    run.expect(1);
    assert!(
        run.stderr().contains(&format!(
            "name server {}:53 does not have the TXT record _acme-challenge.late.example.test yet",
            ns_ip
        )),
        "{run:?}"
    );
    assert_eq!(
        answered(),
        1,
        "the CA was told to look: {:#?}",
        pebble.requests_after(0)
    );
}

/// A DNS server (pebble-challtestsrv) on port 53 of a loopback address of its own, its
/// records set through its management port ([`common::DNS_MANAGEMENT_PORT`]).
fn name_server() -> (TempDir, Process, std::net::Ipv4Addr) {
    let program = require("pebble-challtestsrv", "pebble");
    let dir = TempDir::new("ns");
    let ip = common::loopback();
    let addr = std::net::SocketAddr::from((ip, 53));
    let management = std::net::SocketAddr::from((ip, common::DNS_MANAGEMENT_PORT));
    let log = dir.path().join("challtestsrv.log");
    let mut server = Process(
        Command::new(program)
            .args(["-dns01", &addr.to_string()])
            .args(["-http01", "", "-https01", "", "-tlsalpn01", ""])
            .args(["-management", &management.to_string()])
            .args(["-defaultIPv4", &ip.to_string(), "-defaultIPv6", ""])
            .stdout(fs::File::create(&log).unwrap())
            .stderr(fs::File::options().append(true).open(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    common::wait_for_port(management, "pebble-challtestsrv", &mut server.0, &log);
    common::wait_for_dns(addr, "pebble-challtestsrv", &mut server.0, &log);
    (dir, server, ip)
}

#[test]
fn the_built_in_responder_behind_nginx() {
    let pebble = Pebble::start_with(PebbleOptions {
        web_server: false,
        ..Default::default()
    });
    // The responder's address: a loopback address of its own, where nothing else listens.
    let upstream = std::net::SocketAddr::from((common::loopback(), common::HTTP_PORT));
    let site_addr = std::net::SocketAddr::from((pebble.ip, pebble.http_port));
    let (_dir, mut nginx) = common::nginx(
        site_addr,
        &format!("location ^~ /.well-known/acme-challenge/ {{ proxy_pass http://{upstream}; }}"),
        None,
    );
    let env = Env::new(
        &pebble,
        &format!("HTTP_LISTEN={upstream}\nWELLKNOWN=/nonexistent\n"),
    );
    env.domains("proxied.example\n");
    let run = env.run(&["--cron", "--accept-terms"]);
    let site = Command::new(require("curl", "curl"))
        .args(["-s", &format!("http://{site_addr}/")])
        .output()
        .unwrap();
    nginx.stop();
    run.expect(0);
    check_live_set(
        &env.cert_dir("proxied.example"),
        &["proxied.example"],
        &pebble.root_der(),
    );
    assert_eq!(String::from_utf8_lossy(&site.stdout), "the site\n");
    // The responder is gone with the run.
    assert!(std::net::TcpStream::connect(upstream).is_err());
}

#[test]
fn http_01_and_dns_01_in_one_run() {
    let pebble = Pebble::start();
    let env = Env::new(&pebble, "");
    let hook = challtestsrv_hook(&env, &pebble, None);
    env.write_config(&format!("DNS_CHECK_SERVERS={}\n", pebble.dns_server));
    env.domains("web.example\n*.mail.example mail.example > mail\n");
    let mail = env.cert_dir("mail");
    fs::create_dir_all(&mail).unwrap();
    fs::write(
        mail.join("config"),
        format!("CHALLENGETYPE=dns-01\nHOOK={}\n", hook.display()),
    )
    .unwrap();
    env.run(&["--cron", "--accept-terms"]).expect(0);
    let root = pebble.root_der();
    check_live_set(&env.cert_dir("web.example"), &["web.example"], &root);
    check_live_set(&mail, &["*.mail.example", "mail.example"], &root);
    // The http-01 certificate went through the webroot.
    assert!(
        pebble
            .served
            .lock()
            .unwrap()
            .iter()
            .any(|p| p.starts_with("/.well-known/acme-challenge/"))
    );
}

#[test]
fn a_wildcard_without_dns_01_is_refused_before_any_request() {
    let pebble = Pebble::start();
    let env = Env::new(&pebble, "");
    env.domains("*.nodns.example nodns.example > nodns\n");
    let requests = pebble.requests_counted();
    let run = env.run(&["--cron", "--accept-terms"]);
    // That certificate's own problem: it fails, the run goes on (here with nothing else).
    run.expect(1);
    assert!(
        run.stderr().lines().any(|l| l.starts_with("error: nodns: ")
            && l.contains("domains.txt:1: *.nodns.example is a wildcard, which only dns-01")
            && l.ends_with("nodns is not renewed until this is fixed; the other certificates are")),
        "{run:?}"
    );
    assert_eq!(pebble.requests_after(requests), Vec::<String>::new());
}
