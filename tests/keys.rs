//! Certificate keys over renewals: kept with PRIVATE_KEY_RENEW=no, rolled with
//! PRIVATE_KEY_ROLLOVER=yes.

mod common;

use std::fs;

use common::{Env, Pebble, check_live_set, pem_certs, public_key_of, script};
use x509_parser::prelude::*;

fn cert_key(dir: &std::path::Path) -> Vec<u8> {
    let der = pem_certs(&dir.join("cert.pem")).remove(0);
    let (_, cert) = X509Certificate::from_der(&der).unwrap();
    cert.public_key().subject_public_key.data.to_vec()
}

fn files_named(dir: &std::path::Path, prefix: &str) -> usize {
    fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with(prefix)
        })
        .count()
}

#[test]
fn private_key_renew_no_keeps_the_key_across_renewals() {
    let pebble = Pebble::start();
    let env = Env::new(&pebble, "");
    // sync_cert must be given a key file that exists.
    let hook = env.path().join("hook.sh");
    script(
        &hook,
        r#"[ "$1" = sync_cert ] && { [ -s "$2" ] || { echo "no key at $2" >&2; exit 1; }; }; exit 0"#,
    );
    env.write_config(&format!("PRIVATE_KEY_RENEW=no\nHOOK={}\n", hook.display()));
    env.domains("keep.example\n");
    env.run(&["--cron", "--accept-terms"]).expect(0);
    let dir = env.cert_dir("keep.example");
    let root = pebble.root_der();
    check_live_set(&dir, &["keep.example"], &root);
    let key = cert_key(&dir);
    // Renewals back to back, often within the second of the set before: a new set then takes
    // the next second free, so that each is a set of its own all the same.
    for _ in 0..2 {
        env.run(&["--cron", "--force"]).expect(0);
        check_live_set(&dir, &["keep.example"], &root);
        assert_eq!(cert_key(&dir), key, "a new key was used");
    }
    // Every set holds the one key, so that each is whole.
    assert_eq!(files_named(&dir, "privkey-"), 3);
    for entry in fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("privkey-")
        {
            assert_eq!(public_key_of(&path), key);
        }
    }
}

#[test]
fn private_key_rollover_keeps_the_next_key_ready() {
    let pebble = Pebble::start();
    let env = Env::new(&pebble, "PRIVATE_KEY_ROLLOVER=yes\n");
    env.domains("roll.example\n");
    env.run(&["--cron", "--accept-terms"]).expect(0);
    let dir = env.cert_dir("roll.example");
    let root = pebble.root_der();
    let mut previous = cert_key(&dir);
    for _ in 0..2 {
        let next = public_key_of(&dir.join("privkey.roll.pem"));
        assert_ne!(next, previous);
        assert_eq!(common::mode(&dir.join("privkey.roll.pem")), 0o600);
        // Back to back, as above.
        env.run(&["--cron", "--force"]).expect(0);
        check_live_set(&dir, &["roll.example"], &root);
        assert_eq!(cert_key(&dir), next, "the rollover key was not used");
        previous = next;
    }
    // Switched off: the waiting key goes, as under dehydrated.
    env.write_config("PRIVATE_KEY_ROLLOVER=no\n");
    env.run(&["--cron", "--force"]).expect(0);
    assert!(!dir.join("privkey.roll.pem").exists());
}
