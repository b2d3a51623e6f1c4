//! desiccant on a terminal, as a person at it sees it: the progress line and summary of a batch
//! (on a real pty, and their absence without one, under systemd and with `--quiet`), Ctrl-C
//! in a batch, `--help` within 80 columns, the man page and the shell completions.

mod common;

use std::fs;
use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};

use common::{Env, Pebble, require, script};

/// The terminal's "erase this line": a carriage return, then clear to the end of the line.
const ERASE: &str = "\r\x1b[K";

/// Starts desiccant with `--config BASEDIR/config` and `args` on a terminal of its own:
/// util-linux `script` runs it on a new pty (its stdin, stdout and stderr), whose output it
/// copies to its own stdout, and copies its stdin to the pty, so that a `\x03` written there
/// is Ctrl-C. `vars` are set in its environment; systemd's variables are removed.
fn on_terminal(env: &Env, args: &[&str], vars: &[(&str, &str)]) -> Child {
    let quote = |s: &str| format!("'{}'", s.replace('\'', r"'\''"));
    let mut line = vec![
        quote(env!("CARGO_BIN_EXE_desiccant")),
        "--config".into(),
        quote(env.path().join("config").to_str().unwrap()),
    ];
    line.extend(args.iter().map(|a| quote(a)));
    let mut cmd = Command::new(require("script", "util-linux"));
    cmd.args(["--quiet", "--return", "--command"])
        .arg(line.join(" "))
        .arg("/dev/null")
        .env_remove("JOURNAL_STREAM")
        .env_remove("INVOCATION_ID")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (key, value) in vars {
        cmd.env(key, value);
    }
    cmd.spawn().unwrap()
}

/// What the terminal showed, raw, and the exit code of a run started by [`on_terminal`].
fn screen(mut child: Child) -> (String, i32) {
    drop(child.stdin.take());
    let mut shown = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut shown)
        .unwrap();
    let status = child.wait().unwrap();
    (shown, status.code().unwrap_or(-1))
}

/// The lines a person reads on the terminal in the end: what each line holds once every
/// progress line drawn on it was erased and overwritten.
fn lines_left(shown: &str) -> Vec<String> {
    shown
        .split("\r\n")
        .map(|line| line.rsplit(ERASE).next().unwrap_or("").to_string())
        .filter(|line| !line.is_empty())
        .collect()
}

#[test]
fn a_batch_on_a_terminal_shows_its_progress_and_a_summary() {
    let pebble = Pebble::start();
    let env = Env::new(&pebble, "");
    let names = ["one.example", "two.example", "three.example"];
    env.domains(&(names.join("\n") + "\n"));

    let (shown, code) = screen(on_terminal(&env, &["--cron", "--accept-terms"], &[]));
    assert_eq!(code, 0, "{shown:?}");
    // The progress line: drawn at the start, redrawn in place for each step of each
    // certificate, counting up to all three.
    assert!(
        shown.starts_with(&format!("{ERASE}[0/3] planning")),
        "{shown:?}"
    );
    for name in names {
        for step in [
            "ordering",
            "validating",
            "finalizing",
            "downloading",
            "deploying",
        ] {
            assert!(
                shown.contains(&format!("] {name}: {step}")),
                "no progress step {name}: {step} in {shown:?}"
            );
        }
    }
    for done in 1..=3 {
        assert!(shown.contains(&format!("{ERASE}[{done}/3] ")), "{shown:?}");
    }
    // Every line of what was done stands on its own, the progress line erased before it; at
    // the end the progress line is gone and the summary is the last line.
    let left = lines_left(&shown);
    assert_eq!(left.len(), 5, "{shown:?}");
    assert!(left[0].starts_with("account: registered as "), "{left:?}");
    let mut issued: Vec<&str> = left[1..4]
        .iter()
        .map(|l| l.split(": issued, valid until ").next().unwrap())
        .collect();
    issued.sort();
    assert_eq!(issued, ["one.example", "three.example", "two.example"]);
    assert!(
        left[4].starts_with("3 certificates: 3 renewed, 0 unchanged, 0 failed in ")
            && left[4].ends_with(" s"),
        "{left:?}"
    );
    assert!(shown.ends_with(" s\r\n"), "{shown:?}");

    // Nothing due: the summary alone.
    let (shown, code) = screen(on_terminal(&env, &["--cron"], &[]));
    assert_eq!(code, 0, "{shown:?}");
    let left = lines_left(&shown);
    assert_eq!(left.len(), 1, "{shown:?}");
    assert!(
        left[0].starts_with("3 certificates: 0 renewed, 3 unchanged, 0 failed in "),
        "{shown:?}"
    );
}

#[test]
fn no_progress_nor_summary_without_a_terminal_under_systemd_or_with_quiet() {
    let pebble = Pebble::start();
    let env = Env::new(&pebble, "");
    env.domains("a.example\nb.example\n");

    // cron: no terminal. The lines of what was done, nothing else.
    let run = env.run(&["--cron", "--accept-terms"]);
    run.expect(0);
    assert_eq!(run.stderr(), "", "{run:?}");
    let out = run.stdout();
    assert_eq!(out.lines().count(), 3, "{run:?}");
    assert!(!out.contains('\x1b') && !out.contains('\r'), "{run:?}");
    assert!(!out.contains("certificates:"), "{run:?}");

    // systemd: a terminal may be there, but the journal reads the lines.
    env.domains("a.example\nb.example\nc.example\n");
    for var in ["JOURNAL_STREAM", "INVOCATION_ID"] {
        let (shown, code) = screen(on_terminal(&env, &["--cron", "--force"], &[(var, "8:1")]));
        assert_eq!(code, 0, "{var}: {shown:?}");
        assert!(!shown.contains('\x1b'), "{var}: {shown:?}");
        assert!(!shown.contains("certificates:"), "{var}: {shown:?}");
        assert_eq!(
            shown.matches(": issued, valid until ").count(),
            3,
            "{shown:?}"
        );
    }
    // --quiet: errors only, on a terminal too.
    let (shown, code) = screen(on_terminal(&env, &["--cron", "--force", "--quiet"], &[]));
    assert_eq!(code, 0, "{shown:?}");
    assert_eq!(shown, "");
    // --json: stdout is the report, with no progress line beside it.
    let (shown, code) = screen(on_terminal(&env, &["--cron", "--json"], &[]));
    assert_eq!(code, 0, "{shown:?}");
    assert!(!shown.contains('\x1b'), "{shown:?}");
    assert!(shown.starts_with("{\"certificates\":"), "{shown:?}");
}

#[test]
fn ctrl_c_in_a_batch_prints_one_line_and_exits_75() {
    let pebble = Pebble::start();
    let env = Env::new(&pebble, "JOBS=2\n");
    // The hook marks BASEDIR/deploying when a challenge is being deployed, then takes its
    // time (a slow DNS API).
    let hook = env.path().join("hook.sh");
    script(
        &hook,
        &format!(
            r#"if [ "$1" = deploy_challenge ]; then
    touch "{base}/deploying"
    sleep 60 &
    wait
fi
exit 0"#,
            base = env.path().display()
        ),
    );
    env.write_config(&format!("JOBS=2\nHOOK=\"{}\"\n", hook.display()));
    let names: Vec<String> = (1..=5).map(|i| format!("ctrl{i}.example")).collect();
    env.domains(&(names.join("\n") + "\n"));

    let mut child = on_terminal(&env, &["--cron", "--accept-terms"], &[]);
    common::wait_for_file(&env.path().join("deploying"), &mut child);
    // Ctrl-C, typed at the terminal: the line discipline sends SIGINT to desiccant (the hook
    // runs in a process group of its own).
    let mut keyboard = child.stdin.take().unwrap();
    keyboard.write_all(b"\x03").unwrap();
    keyboard.flush().unwrap();
    let (shown, code) = screen(child);
    drop(keyboard);
    assert_eq!(code, 75, "{shown:?}");
    let left = lines_left(&shown);
    let stop_lines: Vec<&String> = left.iter().filter(|l| l.contains("stopped")).collect();
    assert_eq!(
        stop_lines,
        [
            "error: stopped by SIGINT (Ctrl-C): 0 of 5 certificates done; what was in place is \
             taken away, and the next run finishes the rest"
        ],
        "{shown:?}"
    );
    assert!(!shown.contains("could not be reached"), "{shown:?}");
    assert!(!shown.contains("not sent"), "{shown:?}");
    assert_eq!(
        left.iter().filter(|l| l.starts_with("error:")).count(),
        1,
        "{shown:?}"
    );
    // No summary after the stop line: it is the summary.
    assert!(!shown.contains("certificates:"), "{shown:?}");
    for name in &names {
        assert!(!env.cert_dir(name).join("cert.pem").exists());
    }
    assert!(!fs::read_dir(&env.webroot).unwrap().any(|_| true));
}
