//! dehydrated's other commands against a real Pebble: --signcsr, --revoke, --account,
//! --deactivate, --cleanup, --display-terms, --env.

mod common;

use std::fs;

use common::{Env, Pebble, check_live_set, pem_certs};
use x509_parser::prelude::*;

/// Pebble's view of a certificate: "Valid" or "Revoked", and the reason code.
fn status_at_pebble(pebble: &Pebble, cert_der: &[u8]) -> (String, Option<i64>) {
    let (_, cert) = X509Certificate::from_der(cert_der).unwrap();
    let serial: String = cert
        .raw_serial()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>()
        .trim_start_matches('0')
        .to_string();
    let body = pebble.management_get(&format!("/cert-status-by-serial/{serial}"));
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    (
        v["Status"].as_str().unwrap().to_string(),
        v["Reason"].as_i64(),
    )
}

#[test]
fn signcsr_prints_the_certificate_for_a_csr_made_elsewhere() {
    let pebble = Pebble::start();
    let env = Env::new(&pebble, "");
    env.run(&["--register", "--accept-terms"]).expect(0);
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params =
        rcgen::CertificateParams::new(vec!["csr.example".into(), "www.csr.example".into()])
            .unwrap();
    params.distinguished_name = rcgen::DistinguishedName::new();
    let csr = params.serialize_request(&key).unwrap().pem().unwrap();
    let path = env.path().join("request.csr");
    fs::write(&path, csr).unwrap();
    let run = env.run(&["--signcsr", path.to_str().unwrap(), "-fc"]);
    run.expect(0);
    let out = run.stdout();
    assert!(
        out.starts_with("# CERT #\n-----BEGIN CERTIFICATE-----\n"),
        "{run:?}"
    );
    assert!(
        out.contains("-----END CERTIFICATE-----\n\n# CHAIN #\n-----BEGIN CERTIFICATE-----"),
        "{run:?}"
    );
    let blocks = ::pem::parse_many(out.as_bytes()).unwrap();
    assert!(blocks.len() >= 2);
    let (_, cert) = X509Certificate::from_der(blocks[0].contents()).unwrap();
    use rcgen::PublicKeyData;
    assert_eq!(
        cert.public_key().subject_public_key.data.as_ref(),
        key.der_bytes()
    );
    let (_, issuer) = X509Certificate::from_der(blocks[1].contents()).unwrap();
    cert.verify_signature(Some(issuer.public_key())).unwrap();
    // Nothing was written into certs/, and no key was made.
    assert!(!env.path().join("certs").exists());
    let plain = env.run(&["--signcsr", path.to_str().unwrap()]);
    plain.expect(0);
    assert!(!plain.stdout().contains("# CHAIN #"), "{plain:?}");
}

#[test]
fn revoke_by_account_key_and_by_certificate_key() {
    let pebble = Pebble::start();
    let env = Env::new(&pebble, "");
    env.domains("r1.example\nr2.example\n");
    env.run(&["--cron", "--accept-terms"]).expect(0);
    let root = pebble.root_der();
    let d1 = env.cert_dir("r1.example");
    let ts1 = check_live_set(&d1, &["r1.example"], &root);
    let cert1 = pem_certs(&d1.join("cert.pem")).remove(0);
    assert_eq!(status_at_pebble(&pebble, &cert1).0, "Valid");

    let run = env.run(&["--revoke", d1.join("cert.pem").to_str().unwrap()]);
    run.expect(0);
    assert_eq!(status_at_pebble(&pebble, &cert1).0, "Revoked");
    assert!(d1.join(format!("cert-{ts1}.pem-revoked")).exists());
    assert!(!d1.join(format!("cert-{ts1}.pem")).exists());

    // With the certificate's own key and a reason (1: keyCompromise), no account involved.
    let d2 = env.cert_dir("r2.example");
    let cert2 = pem_certs(&d2.join("cert.pem")).remove(0);
    let run = env.run(&[
        "--revoke",
        d2.join("cert.pem").to_str().unwrap(),
        "--privkey",
        d2.join("privkey.pem").to_str().unwrap(),
        "--reason",
        "1",
    ]);
    run.expect(0);
    assert_eq!(
        status_at_pebble(&pebble, &cert2),
        ("Revoked".to_string(), Some(1))
    );

    // A revoked certificate is gone from cert.pem; the next run issues a new one.
    let again = env.run(&["--cron"]);
    again.expect(0);
    assert!(again.stdout().contains("r1.example: issued"), "{again:?}");
}

#[test]
fn account_update_deactivation_and_the_refusal_that_follows() {
    let pebble = Pebble::start();
    let env = Env::new(&pebble, "");
    env.domains("acct.example\n");
    env.run(&["--cron", "--accept-terms"]).expect(0);
    let dir = env.account_dir();
    let before = fs::read_to_string(dir.join("registration_info.json")).unwrap();
    assert!(before.contains("mailto:admin@example.org"));

    env.write_config("CONTACT_EMAIL=other@example.org\n");
    // write_config keeps CONTACT_EMAIL=admin@ first; the later line wins.
    let run = env.run(&["--account"]);
    run.expect(0);
    assert!(run.stdout().contains("mailto:other@example.org"), "{run:?}");
    let after = fs::read_to_string(dir.join("registration_info.json")).unwrap();
    assert!(after.contains("mailto:other@example.org"), "{after}");
    let backups: Vec<_> = fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("registration_info-")
        })
        .collect();
    assert_eq!(backups.len(), 1);
    assert_eq!(fs::read_to_string(backups[0].path()).unwrap(), before);

    env.run(&["--deactivate"]).expect(0);
    assert!(dir.join("deactivated").exists());
    // Our own marker stops the next run before it asks anything.
    let requests = pebble.requests();
    let run = env.run(&["--cron", "--force"]);
    run.expect(1);
    assert!(run.stderr().contains("deactivated"), "{run:?}");
    // Without the marker, the CA itself refuses the deactivated account.
    fs::remove_file(dir.join("deactivated")).unwrap();
    let run = env.run(&["--cron", "--force"]);
    run.expect(1);
    assert!(
        run.stderr()
            .contains("urn:ietf:params:acme:error:unauthorized"),
        "{run:?}"
    );
    assert!(pebble.requests() > requests);
}

#[test]
fn cleanup_archives_or_deletes_what_no_link_points_at() {
    let pebble = Pebble::start();
    let env = Env::new(&pebble, "");
    env.domains("clean.example\n");
    env.run(&["--cron", "--accept-terms"]).expect(0);
    let dir = env.cert_dir("clean.example");
    let first = check_live_set(&dir, &["clean.example"], &pebble.root_der());
    env.run(&["--cron", "--force"]).expect(0);
    let live = check_live_set(&dir, &["clean.example"], &pebble.root_der());
    env.run(&["-gc"]).expect(0);
    let archive = env.path().join("archive/clean.example");
    let mut archived: Vec<String> = fs::read_dir(&archive)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    archived.sort();
    assert_eq!(
        archived,
        [
            format!("cert-{first}.csr"),
            format!("cert-{first}.pem"),
            format!("chain-{first}.pem"),
            format!("fullchain-{first}.pem"),
            format!("privkey-{first}.pem"),
        ]
    );
    assert_eq!(
        check_live_set(&dir, &["clean.example"], &pebble.root_der()),
        live
    );

    env.run(&["--cron", "--force"]).expect(0);
    env.run(&["-gcd"]).expect(0);
    let left: Vec<String> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(&live))
        .collect();
    assert!(left.is_empty(), "the older set was not deleted: {left:?}");
    check_live_set(&dir, &["clean.example"], &pebble.root_der());

    // AUTO_CLEANUP=yes archives after each run.
    env.write_config("AUTO_CLEANUP=yes\n");
    let newest = check_live_set(&dir, &["clean.example"], &pebble.root_der());
    env.run(&["--cron", "--force"]).expect(0);
    assert!(archive.join(format!("cert-{newest}.pem")).exists());
}

#[test]
fn display_terms_and_env() {
    let pebble = Pebble::start();
    let env = Env::new(&pebble, "KEY_ALGO=rsa\nKEYSIZE=2048\n");
    let run = env.run(&["--display-terms"]);
    run.expect(0);
    assert!(
        run.stdout()
            .starts_with("The current terms of service: data:text/plain,"),
        "{run:?}"
    );
    let run = env.run(&["--env"]);
    run.expect(0);
    let out = run.stdout();
    assert!(out.starts_with("# desiccant configuration\n"), "{out}");
    assert!(
        out.contains(&format!("declare -- CA=\"{}\"\n", pebble.directory_url)),
        "{out}"
    );
    assert!(out.contains("declare -- KEYSIZE=\"2048\"\n"), "{out}");
    assert!(
        out.contains(&format!(
            "declare -- ACCOUNT_KEY=\"{}/account_key.pem\"\n",
            env.account_dir().display()
        )),
        "{out}"
    );
}

#[test]
fn revocation_with_each_reason_pebble_accepts() {
    let pebble = Pebble::start();
    let env = Env::new(&pebble, "");
    let reasons = [
        ("unspecified", 0),
        ("keyCompromise", 1),
        ("affiliationChanged", 3),
        ("superseded", 4),
        ("cessationOfOperation", 5),
    ];
    let domains: String = reasons
        .iter()
        .map(|(r, _)| format!("{}.reason.example\n", r.to_lowercase()))
        .collect();
    env.domains(&domains);
    env.run(&["--cron", "--accept-terms"]).expect(0);
    for (reason, code) in reasons {
        let dir = env.cert_dir(&format!("{}.reason.example", reason.to_lowercase()));
        let cert = pem_certs(&dir.join("cert.pem")).remove(0);
        env.run(&[
            "--revoke",
            dir.join("cert.pem").to_str().unwrap(),
            "--reason",
            reason,
        ])
        .expect(0);
        let (status, got) = status_at_pebble(&pebble, &cert);
        assert_eq!(status, "Revoked", "{reason}");
        // Pebble leaves the reason out when it is 0.
        assert_eq!(got.unwrap_or(0), code, "{reason}");
    }
}

/// The values of `declare -- NAME="value"` lines, as bash would read them back.
fn declared(env_output: &str) -> Vec<(String, String)> {
    env_output
        .lines()
        .filter_map(|l| l.strip_prefix("declare -- "))
        .map(|l| {
            let (name, quoted) = l.split_once('=').unwrap();
            let inner = quoted.strip_prefix('"').unwrap().strip_suffix('"').unwrap();
            let mut value = String::new();
            let mut chars = inner.chars();
            while let Some(c) = chars.next() {
                value.push(if c == '\\' { chars.next().unwrap() } else { c });
            }
            (name.to_string(), value)
        })
        .collect()
}

/// The environment a hook was run with, as `env -0` wrote it.
fn hook_env(path: &std::path::Path) -> std::collections::HashMap<String, String> {
    fs::read(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .split(|b| *b == 0)
        .filter_map(|kv| {
            let kv = String::from_utf8_lossy(kv);
            kv.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
        })
        .collect()
}

#[test]
fn env_and_every_hook_see_the_same_configuration() {
    let pebble = Pebble::start_without_refused_nonces();
    let alpn = common::TempDir::new("alpn");
    let record = common::TempDir::new("hook-env");
    let hook = record.path().join("hook.sh");
    common::script(
        &hook,
        &format!("env -0 > '{}'/env-\"$1\"\nexit 0", record.path().display()),
    );
    let env = Env::new(
        &pebble,
        &format!(
            "PRIVATE_KEY_RENEW=no\nPRIVATE_KEY_ROLLOVER=yes\nALPNCERTDIR=\"{}\"\nHOOK=\"{}\"\n",
            alpn.path().display(),
            hook.display()
        ),
    );
    env.domains("env.example\n");
    let run = env.run(&["--env"]);
    run.expect(0);
    let declared = declared(&run.stdout());
    let value = |name: &str| {
        declared
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("--env has no {name}: {run:?}"))
    };
    assert_eq!(value("PRIVATE_KEY_RENEW"), "no", "{run:?}");
    assert_eq!(value("PRIVATE_KEY_ROLLOVER"), "yes", "{run:?}");
    assert_eq!(value("ALPNCERTDIR"), alpn.path().display().to_string());
    assert!(declared.len() >= 20, "{run:?}");

    env.run(&["--cron", "--accept-terms"]).expect(0);
    for event in [
        "startup_hook",
        "deploy_challenge",
        "deploy_cert",
        "exit_hook",
    ] {
        let seen = hook_env(&record.path().join(format!("env-{event}")));
        for (name, value) in &declared {
            assert_eq!(
                seen.get(name),
                Some(value),
                "{event}: {name} differs from --env"
            );
        }
    }
}
