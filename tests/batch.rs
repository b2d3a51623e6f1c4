//! Batch runs as cron and systemd see them: many certificates at once, one failure among
//! successes, a CA that is gone, per-certificate settings, IP certificates, the JSON report.

mod common;

use std::fs;

use common::{Env, Pebble, PebbleOptions, check_live_set, pem_certs};

#[test]
fn twenty_certificates_in_one_run() {
    let pebble = Pebble::start();
    let env = Env::new(&pebble, "");
    let names: Vec<String> = (1..=20).map(|i| format!("site{i}.example")).collect();
    env.domains(&(names.join("\n") + "\n"));
    let run = env.run(&["--cron", "--accept-terms"]);
    run.expect(0);
    let root = pebble.root_der();
    for name in &names {
        assert!(run.stdout().contains(&format!("{name}: issued")), "{run:?}");
        check_live_set(&env.cert_dir(name), &[name], &root);
    }
    assert_eq!(
        run.stdout().lines().count(),
        21,
        "one line per certificate: {run:?}"
    );
    assert_eq!(run.stderr(), "", "{run:?}");
    // The next run finds all twenty valid and says nothing.
    let again = env.run(&["--cron"]);
    again.expect(0);
    assert_eq!(again.stdout() + &again.stderr(), "");
}

#[test]
fn one_failed_validation_exits_1_and_the_others_are_issued() {
    let pebble = Pebble::start_with(PebbleOptions {
        refuse_hosts: vec!["broken.example".into()],
        ..Default::default()
    });
    let env = Env::new(&pebble, "");
    env.domains("good1.example\nbroken.example\ngood2.example www.good2.example\n");
    let run = env.run(&["--cron", "--accept-terms", "--json"]);
    run.expect(1);
    let root = pebble.root_der();
    check_live_set(&env.cert_dir("good1.example"), &["good1.example"], &root);
    check_live_set(
        &env.cert_dir("good2.example"),
        &["good2.example", "www.good2.example"],
        &root,
    );
    assert!(!env.cert_dir("broken.example").join("cert.pem").exists());
    let err = run.stderr();
    assert!(
        err.contains("error: broken.example: http-01 challenge invalid: "),
        "{run:?}"
    );
    assert!(err.contains("(urn:ietf:params:acme:error:"), "{run:?}");
    assert!(
        err.contains(
            "check that http://broken.example/.well-known/acme-challenge/ reaches this server"
        ),
        "{run:?}"
    );
    let report: serde_json::Value = serde_json::from_str(&run.stdout()).expect("one JSON report");
    assert_eq!(report["exit_status"], 1);
    let states: Vec<(&str, &str)> = report["certificates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["name"].as_str().unwrap(), c["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        states,
        [
            ("good1.example", "issued"),
            ("broken.example", "failed"),
            ("good2.example", "issued")
        ]
    );
    let broken = &report["certificates"][1];
    assert_eq!(broken["reason"], "no certificate yet");
    assert!(
        broken["error"]
            .as_str()
            .unwrap()
            .contains("challenge invalid")
    );
    assert!(
        report["certificates"][0]["not_after"]
            .as_str()
            .unwrap()
            .ends_with(" UTC")
    );
}

#[test]
fn a_ca_that_is_gone_exits_75_and_keeps_what_is_there() {
    let mut pebble = Pebble::start();
    let env = Env::new(&pebble, "");
    env.domains("kept.example\n");
    env.run(&["--cron", "--accept-terms"]).expect(0);
    let dir = env.cert_dir("kept.example");
    let before = pem_certs(&dir.join("cert.pem"));
    pebble.stop();
    env.domains("kept.example\nnew.example\n");
    let run = env.run(&["--cron"]);
    run.expect(75);
    assert!(
        run.stderr()
            .contains(&format!("cannot reach {}", pebble.directory_url)),
        "{run:?}"
    );
    assert!(run.stderr().contains("a later run tries again"), "{run:?}");
    assert_eq!(pem_certs(&dir.join("cert.pem")), before);
    assert!(!env.cert_dir("new.example").exists());
    // A forced renewal against the gone CA leaves the live set as it was.
    env.run(&["--cron", "--force"]).expect(75);
    assert_eq!(pem_certs(&dir.join("cert.pem")), before);
}

#[test]
fn an_unreachable_ca_address_exits_75() {
    let pebble = Pebble::start();
    let env = Env::new(&pebble, "");
    // A loopback address of this test's own, where nothing listens.
    let nowhere = format!("https://{}:{}/dir", common::loopback(), common::ACME_PORT);
    env.domains("nowhere.example\n");
    let run = env.run(&["--cron", "--accept-terms", "--ca", &nowhere]);
    run.expect(75);
    assert!(
        run.stderr().contains(&format!("cannot reach {nowhere}")),
        "{run:?}"
    );
}

#[test]
fn a_certificate_config_sets_its_own_key() {
    let pebble = Pebble::start();
    let env = Env::new(&pebble, "KEY_ALGO=prime256v1\n");
    env.domains("plain.example\nspecial.example\n");
    let special = env.cert_dir("special.example");
    fs::create_dir_all(&special).unwrap();
    fs::write(special.join("config"), "KEY_ALGO=rsa\nKEYSIZE=2048\n").unwrap();
    env.run(&["--cron", "--accept-terms"]).expect(0);
    let key_bits = |name: &str| {
        let der = &pem_certs(&env.cert_dir(name).join("cert.pem"))[0];
        let (_, cert) = <x509_parser::certificate::X509Certificate as x509_parser::prelude::FromDer<_>>::from_der(der).unwrap();
        cert.public_key().parsed().unwrap().key_size()
    };
    assert_eq!(key_bits("plain.example"), 256);
    assert_eq!(key_bits("special.example"), 2048);
    // The certificate's config stays where it was, beside the new files.
    assert_eq!(
        fs::read_to_string(special.join("config")).unwrap(),
        "KEY_ALGO=rsa\nKEYSIZE=2048\n"
    );
}

#[test]
fn an_ip_address_certificate() {
    let pebble = Pebble::start();
    let env = Env::new(&pebble, "");
    // Pebble fetches the http-01 token from the address itself: the web server's.
    let ip = pebble.ip.to_string();
    env.domains(&format!("ip:{ip}\n"));
    let run = env.run(&["--cron", "--accept-terms"]);
    run.expect(0);
    let der = &pem_certs(&env.cert_dir(&ip).join("cert.pem"))[0];
    let (_, cert) = <x509_parser::certificate::X509Certificate as x509_parser::prelude::FromDer<
        _,
    >>::from_der(der)
    .unwrap();
    let san = cert.subject_alternative_name().unwrap().unwrap();
    let ips: Vec<_> = san
        .value
        .general_names
        .iter()
        .filter_map(|n| match n {
            x509_parser::extensions::GeneralName::IPAddress(ip) => Some(ip.to_vec()),
            _ => None,
        })
        .collect();
    assert_eq!(ips, [pebble.ip.octets().to_vec()]);
    // Renewal compares the address as the certificate holds it: nothing is due now.
    let again = env.run(&["--cron"]);
    again.expect(0);
    assert_eq!(again.stdout(), "");
}
