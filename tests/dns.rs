//! dns-01 against real DNS servers: a hook that sets records in pebble-challtestsrv, the
//! built-in RFC 2136 updater against BIND's named, the propagation check, the HTTP_LISTEN
//! responder behind nginx, and http-01 and dns-01 in one run.

mod common;

use std::fs;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Env, Named, Pebble, PebbleOptions, TempDir, check_live_set, require, script};

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
    let named = Named::start("example.test", None);
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
    let named = Named::start("example.test", None);
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
    let named = Named::start("example.test", None);
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

#[test]
fn the_check_finds_the_zones_name_servers_itself() {
    // The zone's NS record names 127.0.0.1, so its name server must answer on port 53.
    if std::net::UdpSocket::bind("127.0.0.1:53").is_err() {
        panic!(
            "this test runs named on 127.0.0.1:53, which is taken or needs root; free it or run as root"
        );
    }
    let named = Named::start("example.test", Some(53));
    let pebble = Pebble::start_with(PebbleOptions {
        dns: Some(named.addr),
        ..Default::default()
    });
    let env = Env::new(&pebble, "");
    named_config(&env, &named, "DNS_RESOLVER=127.0.0.1\n");
    env.domains("found.example.test\n");
    env.run(&["--cron", "--accept-terms"]).expect(0);
}

/// nginx on Pebble's httpPort, serving a page of its own and forwarding the ACME path to
/// `upstream`.
fn nginx(port: u16, upstream: &str) -> (TempDir, Child) {
    let nginx = require("nginx", "nginx");
    let dir = TempDir::new("nginx");
    let d = dir.path().display();
    fs::create_dir_all(dir.path().join("html")).unwrap();
    fs::write(dir.path().join("html/index.html"), "the site\n").unwrap();
    fs::write(
        dir.path().join("nginx.conf"),
        format!(
            "pid {d}/nginx.pid; error_log {d}/error.log; worker_processes 1; daemon off;
events {{ worker_connections 64; }}
http {{
  access_log {d}/access.log;
  client_body_temp_path {d}; proxy_temp_path {d}; fastcgi_temp_path {d}; uwsgi_temp_path {d}; scgi_temp_path {d};
  server {{
    listen 127.0.0.1:{port};
    root {d}/html;
    location ^~ /.well-known/acme-challenge/ {{ proxy_pass http://{upstream}; }}
  }}
}}
"
        ),
    )
    .unwrap();
    let child = Command::new(nginx)
        .args(["-e", &format!("{d}/error.log"), "-p", &d.to_string(), "-c"])
        .arg(dir.path().join("nginx.conf"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "nginx did not start: {}",
            fs::read_to_string(dir.path().join("error.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    (dir, child)
}

#[test]
fn the_built_in_responder_behind_nginx() {
    let pebble = Pebble::start_with(PebbleOptions {
        web_server: false,
        ..Default::default()
    });
    let listen = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let upstream = listen.local_addr().unwrap().to_string();
    drop(listen);
    let (_dir, mut nginx) = nginx(pebble.http_port, &upstream);
    let env = Env::new(
        &pebble,
        &format!("HTTP_LISTEN={upstream}\nWELLKNOWN=/nonexistent\n"),
    );
    env.domains("proxied.example\n");
    let run = env.run(&["--cron", "--accept-terms"]);
    let site = Command::new(require("curl", "curl"))
        .args(["-s", &format!("http://127.0.0.1:{}/", pebble.http_port)])
        .output()
        .unwrap();
    let _ = nginx.kill();
    let _ = nginx.wait();
    run.expect(0);
    check_live_set(
        &env.cert_dir("proxied.example"),
        &["proxied.example"],
        &pebble.root_der(),
    );
    assert_eq!(String::from_utf8_lossy(&site.stdout), "the site\n");
    // The responder is gone with the run.
    assert!(std::net::TcpStream::connect(&upstream).is_err());
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
    let requests = pebble.requests();
    let run = env.run(&["--cron", "--accept-terms"]);
    run.expect(78);
    assert!(run.stderr().contains("only dns-01 can prove"), "{run:?}");
    assert_eq!(pebble.requests(), requests);
}
