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
