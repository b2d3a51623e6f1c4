//! Issuance after issuance against a Pebble that refuses 20 % of good nonces
//! (PEBBLE_WFE_NONCEREJECT=20): not one may fail. 25 in CI; `DESICCANT_LONG=1` (or
//! `tests/run.sh --long`) runs 500.

mod common;

use std::time::Instant;

use common::{Env, Pebble, PebbleOptions, check_live_set};

#[test]
fn issuances_in_a_row_under_refused_nonces_all_succeed() {
    let rounds = if std::env::var_os("DESICCANT_LONG").is_some() {
        500
    } else {
        25
    };
    let pebble = Pebble::start_with(PebbleOptions {
        nonce_reject: 20,
        ..PebbleOptions::default()
    });
    let root = pebble.root_der();
    let env = Env::new(&pebble, "");
    env.domains("endure.example www.endure.example\n");
    env.run(&["--cron", "--accept-terms"]).expect(0);
    let started = Instant::now();
    let mut last = String::new();
    let mut refused = 0;
    for round in 1..=rounds {
        let run = env.run(&["--cron", "--force", "--verbose"]);
        // The debug trace shows each answer's status: 400 is a refused nonce here.
        refused +=
            run.stderr().matches(" -> 400").count() + run.stdout().matches(" -> 400").count();
        assert_eq!(
            run.code(),
            0,
            "issuance {round} of {rounds} failed: {run:?}"
        );
        let ts = check_live_set(
            &env.cert_dir("endure.example"),
            &["endure.example", "www.endure.example"],
            &root,
        );
        assert_ne!(ts, last, "issuance {round} did not make a new set");
        last = ts;
        // Old sets go, as with AUTO_CLEANUP, so that the folder stays small.
        if round % 50 == 0 {
            env.run(&["--cleanup-delete"]).expect(0);
        }
    }
    eprintln!(
        "{rounds} issuances in {:?}; Pebble refused {refused} nonces",
        started.elapsed()
    );
    assert!(
        refused > 0,
        "Pebble refused no nonce: the test tests nothing"
    );
}
