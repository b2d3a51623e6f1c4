//! Coming from certbot: the real certbot (Debian's package) issues, then
//! `desiccant --import-certbot` takes its certificates over without reissuing them.

mod common;

use std::fs;
use std::process::Command;

use common::{Env, Pebble, check_live_set, require};

#[test]
fn certbot_lineages_are_imported_and_not_reissued() {
    let certbot = require("certbot", "certbot");
    let pebble = Pebble::start_without_refused_nonces();
    let env = Env::new(&pebble, "");
    let le = env.path().join("letsencrypt");
    // certbot writes to <webroot>/.well-known/acme-challenge, which the harness serves.
    let www = env.path().join("www");
    fs::create_dir_all(www.join(".well-known")).unwrap();
    std::os::unix::fs::symlink(&pebble.webroot, www.join(".well-known/acme-challenge")).unwrap();
    let issue = |args: &[&str]| {
        let out = Command::new(&certbot)
            .args(["certonly", "--webroot", "-w", www.to_str().unwrap()])
            .args(["--server", &pebble.directory_url])
            .args(["--config-dir", le.to_str().unwrap()])
            .args(["--work-dir", env.path().join("work").to_str().unwrap()])
            .args(["--logs-dir", env.path().join("logs").to_str().unwrap()])
            .args([
                "--non-interactive",
                "--agree-tos",
                "-m",
                "admin@example.org",
            ])
            .args(args)
            .env("REQUESTS_CA_BUNDLE", &pebble.ca_bundle)
            .output()
            .unwrap();
        assert!(out.status.success(), "certbot {args:?}: {out:?}");
    };
    issue(&["-d", "site.example", "-d", "www.site.example"]);
    issue(&[
        "-d",
        "rsa.example",
        "--key-type",
        "rsa",
        "--rsa-key-size",
        "2048",
    ]);

    let run = env.run(&["--import-certbot", le.to_str().unwrap()]);
    run.expect(0);
    assert!(
        run.stdout()
            .contains("site.example: imported (site.example www.site.example)"),
        "{run:?}"
    );
    assert!(
        run.stdout().contains("rsa.example: imported (rsa.example)"),
        "{run:?}"
    );
    let domains = fs::read_to_string(env.path().join("domains.txt")).unwrap();
    assert!(
        domains.contains("site.example www.site.example > site.example\n"),
        "{domains}"
    );
    assert!(domains.contains("rsa.example > rsa.example\n"), "{domains}");
    let root = pebble.root_der();
    check_live_set(
        &env.cert_dir("site.example"),
        &["site.example", "www.site.example"],
        &root,
    );
    check_live_set(&env.cert_dir("rsa.example"), &["rsa.example"], &root);
    // The same certificate as certbot's live one.
    assert_eq!(
        common::pem_certs(&env.cert_dir("site.example").join("cert.pem")),
        common::pem_certs(&le.join("live/site.example/cert.pem"))
    );
    assert_eq!(
        fs::read_to_string(env.cert_dir("rsa.example").join("config")).unwrap(),
        format!(
            "KEY_ALGO=rsa\nKEYSIZE=2048\nWELLKNOWN=\"{}\"\n",
            www.join(".well-known/acme-challenge").display()
        )
    );

    // Nothing is due: no output, and no request but the directory, read once to learn whether
    // the CA offers renewal information; the next run sends nothing at all.
    let requests = pebble.requests();
    let cron = env.run(&["--cron"]);
    cron.expect(0);
    assert_eq!(cron.stdout() + &cron.stderr(), "", "{cron:?}");
    assert_eq!(pebble.requests_after(requests), ["GET /dir"]);
    let requests = pebble.requests();
    env.run(&["--cron"]).expect(0);
    assert_eq!(pebble.requests_after(requests), Vec::<String>::new());
    env.run(&["--check"]).expect(0);

    // A second import leaves what is there.
    let again = env.run(&["--import-certbot", le.to_str().unwrap()]);
    again.expect(0);
    assert!(
        again
            .stdout()
            .contains("site.example: already in domains.txt"),
        "{again:?}"
    );

    // And a forced renewal works with desiccant's own account, into the imported layout.
    let forced = env.run(&["--cron", "--force", "--accept-terms"]);
    forced.expect(0);
    check_live_set(&env.cert_dir("rsa.example"), &["rsa.example"], &root);
}
