//! Lines reach syslog: with --syslog, and by default when there is neither a terminal nor the
//! journal (cron). The run gets a private /dev whose `log` is a socket of this test, in a
//! mount namespace of its own (util-linux `unshare`), so the machine's syslog is not touched.

mod common;

use std::os::unix::net::UnixDatagram;
use std::process::Command;
use std::time::Duration;

use common::{Env, Pebble, TempDir, require};

/// Runs desiccant with `args` with /dev/log connected to a socket; returns what syslog got.
fn run_with_syslog(env: &Env, args: &[&str], journal: bool) -> (Option<i32>, Vec<String>) {
    let unshare = require("unshare", "util-linux");
    let dir = TempDir::new("syslog");
    let socket_path = dir.path().join("log");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut cmd = Command::new(unshare);
    cmd.args(["--map-root-user", "--mount", "--propagation", "private"])
        .args([
            "sh",
            "-c",
            "mount -t tmpfs tmpfs /dev && ln -s \"$0\" /dev/log && exec \"$@\"",
        ])
        .arg(&socket_path)
        .arg(env!("CARGO_BIN_EXE_desiccant"))
        .arg("--config")
        .arg(env.path().join("config"))
        .args(args)
        .env_remove("JOURNAL_STREAM");
    if journal {
        cmd.env("JOURNAL_STREAM", "8:1");
    }
    let output = cmd.output().unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = socket.recv(&mut buf) {
        got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    (output.status.code(), got)
}

#[test]
fn errors_go_to_syslog_as_daemon_err_when_asked_and_under_cron() {
    let pebble = Pebble::start();
    let env = Env::new(&pebble, "");
    env.domains("bad_name.example\n");
    for args in [&["--cron", "--syslog"][..], &["--cron"][..]] {
        let (code, lines) = run_with_syslog(&env, args, false);
        assert_eq!(code, Some(78), "{args:?}");
        assert_eq!(lines.len(), 1, "{args:?}: {lines:?}");
        // <27> is facility daemon (3) * 8 + severity err (3).
        assert!(lines[0].starts_with("<27>"), "{lines:?}");
        assert!(lines[0].contains(" desiccant["), "{lines:?}");
        assert!(lines[0].contains("]: error: "), "{lines:?}");
        assert!(
            lines[0].contains("domains.txt:1: bad_name.example"),
            "{lines:?}"
        );
    }
    // Under systemd the journal has the lines already; nothing goes to syslog.
    let (code, lines) = run_with_syslog(&env, &["--cron"], true);
    assert_eq!(code, Some(78));
    assert!(lines.is_empty(), "{lines:?}");
}
