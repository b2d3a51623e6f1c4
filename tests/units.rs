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

#[test]
fn restarts_only_after_temporary_failures() {
    let service = fs::read_to_string(format!(
        "{}/systemd/desiccant.service",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    assert!(service.contains("\nType=oneshot\n"));
    assert!(service.contains("\nRestart=on-failure\n"));
    assert!(service.contains("\nRestartPreventExitStatus=1 2 78\n"));
    let timer = fs::read_to_string(format!(
        "{}/systemd/desiccant.timer",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    assert!(timer.contains("\nPersistent=true\n"));
    assert!(timer.contains("\nRandomizedDelaySec="));
}
