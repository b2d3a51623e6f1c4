//! Accounts as CAs want them now: external account binding.

mod common;

use common::{EAB_HMAC_KEY, EAB_KID, Env, Pebble, PebbleOptions, check_live_set};

#[test]
fn external_account_binding_against_pebble_in_eab_mode() {
    let pebble = Pebble::start_with(PebbleOptions {
        eab_required: true,
        ..Default::default()
    });
    let env = Env::new(&pebble, "");
    env.domains("eab.example\n");
    // Without the binding: a clear error before any newAccount.
    let run = env.run(&["--cron", "--accept-terms"]);
    run.expect(1);
    assert!(
        run.stderr().contains("set EAB_KID and EAB_HMAC_KEY"),
        "{run:?}"
    );
    assert_eq!(pebble.requests(), 1, "only the directory was fetched");

    // A wrong MAC key: the CA's words.
    env.write_config(&format!(
        "EAB_KID={EAB_KID}\nEAB_HMAC_KEY=d3Jvbmcga2V5IGZvciB0aGUgYmluZGluZw\n"
    ));
    let run = env.run(&["--cron", "--accept-terms"]);
    run.expect(1);
    assert!(
        run.stderr().contains("urn:ietf:params:acme:error:"),
        "{run:?}"
    );
    assert!(
        !run.stderr().contains("d3Jvbmcga2V5"),
        "the MAC key was printed: {run:?}"
    );

    // The right one.
    env.write_config(&format!("EAB_KID={EAB_KID}\nEAB_HMAC_KEY={EAB_HMAC_KEY}\n"));
    let run = env.run(&["--cron", "--accept-terms"]);
    run.expect(0);
    assert!(run.stdout().contains("account: registered"), "{run:?}");
    check_live_set(
        &env.cert_dir("eab.example"),
        &["eab.example"],
        &pebble.root_der(),
    );
    assert!(!run.stdout().contains(EAB_HMAC_KEY) && !run.stderr().contains(EAB_HMAC_KEY));
}

#[test]
fn key_rollover_then_an_issuance_with_the_new_key() {
    let pebble = Pebble::start();
    let env = Env::new(&pebble, "");
    env.domains("roll.example\n");
    env.run(&["--cron", "--accept-terms"]).expect(0);
    let dir = env.account_dir();
    let old = std::fs::read(dir.join("account_key.pem")).unwrap();
    let run = env.run(&["--account", "--rollover"]);
    run.expect(0);
    assert!(run.stdout().contains("has a new ES256 key"), "{run:?}");
    let new = std::fs::read(dir.join("account_key.pem")).unwrap();
    assert_ne!(old, new);
    assert_eq!(common::mode(&dir.join("account_key.pem")), 0o600);
    let kept: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("account_key-")
        })
        .collect();
    assert_eq!(kept.len(), 1);
    assert_eq!(std::fs::read(&kept[0]).unwrap(), old);
    assert!(!dir.join("account_key.pem.new").exists());
    // The new key orders; the account is the same (no registration).
    let forced = env.run(&["--cron", "--force"]);
    forced.expect(0);
    assert!(!forced.stdout().contains("registered"), "{forced:?}");
    check_live_set(
        &env.cert_dir("roll.example"),
        &["roll.example"],
        &pebble.root_der(),
    );
    // The CA no longer takes the old key.
    std::fs::write(dir.join("account_key.pem"), &old).unwrap();
    let refused = env.run(&["--cron", "--force"]);
    refused.expect(1);
    assert!(
        refused.stderr().contains("urn:ietf:params:acme:error:"),
        "{refused:?}"
    );
}

#[test]
fn a_rollover_cut_short_is_finished_by_the_next_run() {
    let pebble = Pebble::start();
    let env = Env::new(&pebble, "");
    env.domains("cut.example\n");
    env.run(&["--cron", "--accept-terms"]).expect(0);
    let dir = env.account_dir();
    let old = std::fs::read(dir.join("account_key.pem")).unwrap();
    env.run(&["--account", "--rollover"]).expect(0);
    let new = std::fs::read(dir.join("account_key.pem")).unwrap();
    // As if the run had died after the CA accepted, before the files moved.
    std::fs::write(dir.join("account_key.pem.new"), &new).unwrap();
    std::fs::write(dir.join("account_key.pem"), &old).unwrap();
    env.run(&["--cron", "--force"]).expect(0);
    assert_eq!(std::fs::read(dir.join("account_key.pem")).unwrap(), new);
    assert!(!dir.join("account_key.pem.new").exists());
    // And a pending key the CA never saw is dropped.
    std::fs::write(dir.join("account_key.pem.new"), &old).unwrap();
    env.run(&["--cron", "--force"]).expect(0);
    assert_eq!(std::fs::read(dir.join("account_key.pem")).unwrap(), new);
    assert!(!dir.join("account_key.pem.new").exists());
}

#[test]
fn an_account_the_ca_does_not_know_is_explained_with_what_to_do() {
    let pebble = Pebble::start();
    let env = Env::new(&pebble, "");
    env.domains("gone.example\n");
    env.run(&["--cron", "--accept-terms"]).expect(0);
    // The CA forgot the account (deleted, or the URL is another CA's).
    let id = env.account_dir().join("account_id.json");
    let text = std::fs::read_to_string(&id).unwrap();
    let url: serde_json::Value = serde_json::from_str(&text).unwrap();
    let url = url["url"].as_str().unwrap();
    std::fs::write(&id, text.replace(url, &format!("{url}0"))).unwrap();
    let run = env.run(&["--cron", "--force"]);
    run.expect(1);
    assert!(
        run.stderr()
            .contains("(urn:ietf:params:acme:error:accountDoesNotExist); the account key kept for this CA (the account_key.pem and account_id.json of its folder under accounts/) is not known to the CA: the account was deleted, or made for another CA; move that folder aside, then desiccant --register --accept-terms makes a new account"),
        "{run:?}"
    );
    // The advice works.
    let dir = env.account_dir();
    std::fs::rename(&dir, dir.with_extension("old")).unwrap();
    env.run(&["--register", "--accept-terms"]).expect(0);
    env.run(&["--cron", "--force"]).expect(0);
}
