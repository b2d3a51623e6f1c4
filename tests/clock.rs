//! A system clock far ahead or behind (Debian's `faketime`): the run fails with an error that
//! says to check the clock, changes nothing on disk, and orders nothing; a small skew is
//! harmless.

mod common;

use common::invariants::{Snapshot, Stage, after_fault};
use common::{Env, Pebble, check_live_set};

const NAME: &str = "clock.example";

#[test]
fn a_clock_far_off_changes_nothing_and_says_so() {
    let pebble = Pebble::start_without_refused_nonces();
    let root = pebble.root_der();
    let env = Env::new(&pebble, "");
    env.domains(&format!("{NAME}\n"));
    env.run(&["--cron", "--accept-terms"]).expect(0);
    for (offset, way) in [("+3650d", "ahead of"), ("-3650d", "behind")] {
        let before = Snapshot::take(&env, &[NAME]);
        let since = pebble.requests();
        // Forced, so that the run talks to the CA whatever it thinks of the certificate.
        let run = env.run_at(offset, &["--cron", "--force"]);
        assert_eq!(run.code(), 1, "{offset}: {run:?}");
        assert!(
            run.stderr().contains("clock: this machine's clock ("),
            "{offset}: {run:?}"
        );
        assert!(
            run.stderr().contains(&format!(" {way} the CA's"))
                && run.stderr().contains("timedatectl"),
            "{offset}: {run:?}"
        );
        assert_eq!(
            pebble.requests_after(since),
            ["GET /dir"],
            "{offset}: only the directory may be asked"
        );
        after_fault(&env, &[NAME], &before, Stage::Untouched);
        // Not forced: a clock far ahead makes every certificate look expired, so the run
        // asks the CA and stops at its clock; one far behind finds nothing due and asks nothing.
        let since = pebble.requests();
        let run = env.run_at(offset, &["--cron"]);
        if way == "ahead of" {
            assert_eq!(run.code(), 1, "{offset}: {run:?}");
            assert!(run.stderr().contains("this machine's clock"), "{run:?}");
            assert_eq!(pebble.requests_after(since), ["GET /dir"]);
        } else {
            run.expect(0);
            assert_eq!(pebble.requests_after(since), Vec::<String>::new());
        }
        after_fault(&env, &[NAME], &before, Stage::Untouched);
    }
    // A skew of hours either way is harmless.
    for offset in ["+3h", "-3h"] {
        env.run_at(offset, &["--cron", "--force"]).expect(0);
        check_live_set(&env.cert_dir(NAME), &[NAME], &root);
    }
}
