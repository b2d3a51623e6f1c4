//! The systemd units pass systemd's own checks, with the built binary in place of /usr/bin.

mod common;

use std::fs;
use std::process::Command;

use common::{TempDir, require};

/// The units, with `ExecStart=` pointing at the binary under test.
fn units() -> TempDir {
    let dir = TempDir::new("units");
    let root = env!("CARGO_MANIFEST_DIR");
    let service = fs::read_to_string(format!("{root}/systemd/desiccant.service"))
        .unwrap()
        .replace("/usr/bin/desiccant", env!("CARGO_BIN_EXE_desiccant"));
    fs::write(dir.path().join("desiccant.service"), service).unwrap();
    fs::copy(
        format!("{root}/systemd/desiccant.timer"),
        dir.path().join("desiccant.timer"),
    )
    .unwrap();
    dir
}

#[test]
fn systemd_analyze_verify_passes_without_a_warning() {
    let analyze = require("systemd-analyze", "systemd");
    let dir = units();
    // The man page the units name is installed by the package, not present in a checkout.
    let output = Command::new(analyze)
        .args(["verify", "--man=no"])
        .arg(dir.path().join("desiccant.service"))
        .arg(dir.path().join("desiccant.timer"))
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let said = String::from_utf8_lossy(&output.stderr).into_owned()
        + &String::from_utf8_lossy(&output.stdout);
    assert_eq!(said.trim(), "", "systemd-analyze verify has remarks");
}

#[test]
fn the_service_is_hardened_to_an_exposure_of_at_most_2_5() {
    let analyze = require("systemd-analyze", "systemd");
    let dir = units();
    let output = Command::new(analyze)
        .args(["security", "--offline=true", "--no-pager"])
        .arg(dir.path().join("desiccant.service"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    let line = text
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .unwrap_or_else(|| panic!("no exposure level: {output:?}"));
    let score: f64 = line
        .split(':')
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("unreadable: {line}"));
    assert!(score <= 2.5, "{line}");
}

/// The value of every `key=` of `section` in a unit file, in order (for systemd, the last
/// one wins, or for list settings they add up and an empty one empties the list).
fn settings(unit: &str, section: &str, key: &str) -> Vec<String> {
    let text =
        fs::read_to_string(format!("{}/systemd/{unit}", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let mut current = "";
    let mut values = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            current = line;
        } else if current == format!("[{section}]")
            && let Some((k, v)) = line.split_once('=')
            && k.trim() == key
        {
            values.push(v.trim().to_string());
        }
    }
    values
}

/// Which exit codes of desiccant (README, "Exit status") the unit asks systemd to restart
/// after: only 75, temporary failures. Worked out from the unit file by the rules of
/// systemd.service(5): with `Restart=on-failure` an exit code other than 0 restarts the
/// service unless `RestartPreventExitStatus=` lists it. This reads the unit; it does not run
/// systemd, which needs root and namespaces of its own that CI cannot count on
/// (tests/unit_sandbox.sh runs the installed unit under a real systemd in
/// `tests/run.sh --package`).
#[test]
fn the_unit_file_declares_restarts_after_exit_75_only() {
    let last = |key: &str| settings("desiccant.service", "Service", key).pop();
    assert_eq!(last("Type").as_deref(), Some("oneshot"));
    assert_eq!(last("Restart").as_deref(), Some("on-failure"));
    let mut prevented: Vec<i32> = Vec::new();
    for value in settings("desiccant.service", "Service", "RestartPreventExitStatus") {
        if value.is_empty() {
            prevented.clear();
        }
        prevented.extend(value.split_whitespace().map(|c| c.parse::<i32>().unwrap()));
    }
    let restarts = |code: i32| code != 0 && !prevented.contains(&code);
    let restarted: Vec<i32> = [0, 1, 2, 75, 78]
        .into_iter()
        .filter(|&c| restarts(c))
        .collect();
    assert_eq!(restarted, [75]);
    // An hour apart, and never held back by a start limit.
    assert_eq!(last("RestartSec").as_deref(), Some("1h"));
    assert_eq!(
        settings("desiccant.service", "Unit", "StartLimitIntervalSec")
            .pop()
            .as_deref(),
        Some("0")
    );
}

/// The timer catches up on a run missed while the machine was off, and spreads the runs of
/// many machines (read from the unit file, as above).
#[test]
fn the_timer_file_is_persistent_and_randomized() {
    let last = |key: &str| settings("desiccant.timer", "Timer", key).pop();
    assert_eq!(last("Persistent").as_deref(), Some("true"));
    assert!(last("RandomizedDelaySec").is_some_and(|v| !v.is_empty() && v != "0"));
}

/// The `OnFailure=` example of contrib/systemd: the handler unit, and the drop-in its comment
/// tells the admin to add with `systemctl edit desiccant.service`, pass systemd's checks
/// together with the shipped units; a handler that systemd would refuse is found through the
/// drop-in, so the drop-in is what is checked.
#[test]
fn the_on_failure_example_and_its_drop_in_pass_systemd_analyze_verify() {
    let analyze = require("systemd-analyze", "systemd");
    let root = env!("CARGO_MANIFEST_DIR");
    let handler =
        fs::read_to_string(format!("{root}/contrib/systemd/desiccant-failure@.service")).unwrap();
    // The drop-in as the handler's comment gives it: the indented lines after `systemctl edit`.
    let drop_in: String = handler
        .lines()
        .skip_while(|l| !l.contains("systemctl edit desiccant.service"))
        .skip(1)
        .take_while(|l| l.starts_with("#       "))
        .map(|l| format!("{}\n", l.trim_start_matches('#').trim()))
        .collect();
    assert_eq!(
        drop_in, "[Unit]\nOnFailure=desiccant-failure@%n.service\n",
        "the drop-in in the comment"
    );
    let verify = |handler: &str| {
        let dir = units();
        fs::write(dir.path().join("desiccant-failure@.service"), handler).unwrap();
        fs::create_dir(dir.path().join("desiccant.service.d")).unwrap();
        fs::write(
            dir.path().join("desiccant.service.d/on-failure.conf"),
            &drop_in,
        )
        .unwrap();
        let output = Command::new(&analyze)
            .args(["verify", "--man=no"])
            .arg(dir.path().join("desiccant.service"))
            .arg(dir.path().join("desiccant.timer"))
            .arg(dir.path().join("desiccant-failure@.service"))
            .current_dir(dir.path())
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&output.stderr).into_owned()
            + &String::from_utf8_lossy(&output.stdout);
        (output.status.success(), said)
    };
    let (ok, said) = verify(&handler);
    assert!(
        ok && said.trim().is_empty(),
        "systemd-analyze verify: {said}"
    );
    // Without its ExecStart=, systemd refuses the handler that the drop-in names.
    let (ok, said) = verify(&handler.replace("\nExecStart=", "\nExecStrat="));
    assert!(
        !ok && said.contains("desiccant-failure@desiccant.service.service"),
        "{said}"
    );
}
