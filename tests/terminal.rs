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
    // `exec`: desiccant itself is the terminal's foreground process, as when typed at a
    // prompt; a shell left waiting for it (dash, which runs `script`'s command when SHELL is
    // /bin/sh) would die of Ctrl-C itself and report 130.
    let mut line = vec![
        "exec".into(),
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
fn a_dry_run_on_a_terminal_shows_its_progress_and_a_summary() {
    let pebble = Pebble::start();
    let env = Env::new(&pebble, "");
    env.domains("one.example\ntwo.example\n");
    env.run(&["--cron", "--accept-terms"]).expect(0);

    let (shown, code) = screen(on_terminal(&env, &["--cron", "--dry-run"], &[]));
    assert_eq!(code, 0, "{shown:?}");
    assert!(
        shown.contains(&format!("{ERASE}[0/2] planning")),
        "{shown:?}"
    );
    for name in ["one.example", "two.example"] {
        for step in ["planning", "ordering", "finalizing", "downloading"] {
            assert!(
                shown.contains(&format!("] {name}: {step}")),
                "no progress step {name}: {step} in {shown:?}"
            );
        }
    }
    // A CA may hand back an authorization still valid from the real run, and then there is
    // nothing to deploy or validate for that name (seen once in CI); not for both.
    assert!(shown.contains(": validating"), "{shown:?}");
    for done in 1..=2 {
        assert!(shown.contains(&format!("{ERASE}[{done}/2] ")), "{shown:?}");
    }
    let left = lines_left(&shown);
    assert_eq!(left.len(), 4, "{shown:?}");
    assert!(left[0].starts_with("dry run against "), "{left:?}");
    let mut passed: Vec<&str> = left[1..3]
        .iter()
        .map(|l| l.split(": dry run passed: ").next().unwrap())
        .collect();
    passed.sort();
    assert_eq!(passed, ["one.example", "two.example"], "{left:?}");
    assert!(
        left[3].starts_with("2 certificates tried in a dry run: 2 passed, 0 failed in ")
            && left[3].ends_with(" s"),
        "{left:?}"
    );
    assert!(shown.ends_with(" s\r\n"), "{shown:?}");
}

#[test]
fn auto_cleanup_lines_come_before_the_summary() {
    let pebble = Pebble::start();
    let env = Env::new(&pebble, "AUTO_CLEANUP=yes\n");
    env.domains("one.example\n");
    env.run(&["--cron", "--accept-terms"]).expect(0);

    // A second set: the first one's five files are archived.
    let (shown, code) = screen(on_terminal(&env, &["--cron", "--force"], &[]));
    assert_eq!(code, 0, "{shown:?}");
    let left = lines_left(&shown);
    assert_eq!(left.len(), 7, "{shown:?}");
    assert!(
        left[0].starts_with("one.example: issued, valid until "),
        "{left:?}"
    );
    for line in &left[1..6] {
        assert!(
            line.starts_with("one.example: archived unused "),
            "{left:?}"
        );
    }
    assert!(
        left[6].starts_with("1 certificate: 1 renewed, 0 unchanged, 0 failed in "),
        "{left:?}"
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

/// The man page, the completions: what build.rs wrote for this build.
fn built(file: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("OUT_DIR")).join(file)
}

#[test]
fn help_fits_80_columns() {
    for flag in ["--help", "-h"] {
        // Without a terminal clap reads COLUMNS; a wide one must not widen the text.
        for columns in ["80", "200"] {
            let out = Command::new(env!("CARGO_BIN_EXE_desiccant"))
                .arg(flag)
                .env("COLUMNS", columns)
                .output()
                .unwrap();
            assert_eq!(out.status.code(), Some(0));
            let help = String::from_utf8(out.stdout).unwrap();
            let wide: Vec<&str> = help.lines().filter(|l| l.chars().count() > 80).collect();
            assert!(wide.is_empty(), "{flag} lines over 80 columns: {wide:#?}");
            // Nothing lost: every option, the values of the enumerated ones, the exit codes.
            for want in [
                "--cron",
                "--import-certbot <DIR>",
                "--verbose",
                "tls-alpn-01",
                "letsencrypt-test",
                "keyCompromise",
                "75 temporary",
            ] {
                assert!(help.contains(want), "{flag} lacks {want}: {help}");
            }
        }
    }
}

#[test]
fn the_man_page_renders_without_warnings_and_has_every_section_it_names() {
    let page = built("desiccant.1");
    let out = Command::new(require("man", "man-db"))
        .args(["--warnings", "-l"])
        .arg(&page)
        .env("MANWIDTH", "80")
        // The C locale, as cron's: the page is ASCII and needs no UTF-8 to render.
        .env("LC_ALL", "C")
        .env("MAN_KEEP_FORMATTING", "")
        .env_remove("MANPAGER")
        .env("PAGER", "cat")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&out.stderr), "", "man's warnings");
    let text = String::from_utf8(out.stdout).unwrap();
    let headings: Vec<String> = text
        .lines()
        .filter(|l| {
            let indent = l.len() - l.trim_start().len();
            !l.trim().is_empty() && (indent == 0 || indent == 3)
        })
        .map(|l| l.trim().to_string())
        .collect();
    for want in [
        "OPTIONS",
        "CONFIGURATION",
        "DRY RUN",
        "domains.txt",
        "ENVIRONMENT",
        "HOOKS",
        "certbot's hooks",
        "FILES",
        "EXIT STATUS",
        "EXAMPLES",
        "SEE ALSO",
    ] {
        assert!(
            headings.iter().any(|h| h == want),
            "no {want} in {headings:?}"
        );
    }
    // Prose fits 80 columns; only examples (indented as blocks, kept as written) may not.
    let wide: Vec<&str> = text
        .lines()
        .filter(|l| l.chars().count() > 80 && !l.starts_with(&" ".repeat(11)))
        .collect();
    assert_eq!(wide, Vec::<&str>::new(), "lines wider than 80 columns");
    // Every `see "X"` names a section of the page, or says it is README's.
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut seen = 0;
    for reference in flat.split("see \"").skip(1) {
        let (name, after) = reference.split_once('"').unwrap();
        if after.starts_with(" in README.md") {
            continue;
        }
        seen += 1;
        assert!(
            headings.iter().any(|h| h == name),
            "the man page refers to {name:?}, a section it does not have; it has {headings:?}"
        );
    }
    assert!(seen >= 5, "{flat}");
    // The config keys, from README's table.
    assert!(flat.contains("RUN_TIMEOUT (default: 3600)"), "{flat}");
}

/// What bash completes `words` (the last one being typed) to, with the generated completion.
fn bash_completes(words: &[&str], folder: &std::path::Path) -> Vec<String> {
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let program = format!(
        "source '{}'\nCOMP_WORDS=({})\nCOMP_CWORD={}\nCOMP_LINE='{}'\nCOMP_POINT=${{#COMP_LINE}}\n\
         _desiccant desiccant '{}' '{}'\nprintf '%s\\n' \"${{COMPREPLY[@]}}\"",
        built("desiccant.bash").display(),
        quoted.join(" "),
        words.len() - 1,
        words.join(" "),
        words[words.len() - 1],
        words[words.len() - 2],
    );
    let out = Command::new(require("bash", "bash"))
        .args(["--norc", "--noprofile", "-c", &program])
        .current_dir(folder)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn completions_offer_the_values_of_enumerated_options() {
    let folder = common::TempDir::new("complete");
    fs::write(folder.path().join("domains.txt"), "").unwrap();
    fs::create_dir(folder.path().join("out")).unwrap();
    let complete = |words: &[&str]| bash_completes(words, folder.path());
    assert_eq!(
        complete(&["desiccant", "--challenge", ""]),
        [
            "http-01",
            "dns-01",
            "tls-alpn-01",
            "dns-account-01",
            "dns-persist-01"
        ]
    );
    assert_eq!(
        complete(&["desiccant", "-t", "d"]),
        ["dns-01", "dns-account-01", "dns-persist-01"]
    );
    assert_eq!(
        complete(&["desiccant", "--algo", ""]),
        ["rsa", "prime256v1", "secp384r1"]
    );
    assert_eq!(
        complete(&["desiccant", "--ca", ""]),
        [
            "letsencrypt",
            "letsencrypt-test",
            "zerossl",
            "buypass",
            "buypass-test",
            "google",
            "google-test"
        ]
    );
    assert_eq!(
        complete(&["desiccant", "--reason", "key"]),
        ["keyCompromise"]
    );
    // Paths: files for a file, folders for a folder.
    assert_eq!(
        complete(&["desiccant", "--domains-txt", "dom"]),
        ["domains.txt"]
    );
    // A folder is offered by bash itself (`compopt -o plusdirs`), not through COMPREPLY: the
    // case of --out asks for folders and lists no files.
    let bash = fs::read_to_string(built("desiccant.bash")).unwrap();
    let out_case = bash.split("                --out)").nth(1).unwrap();
    let out_case = &out_case[..out_case.find(";;").unwrap()];
    assert!(out_case.contains("compopt -o plusdirs"), "{out_case}");
    assert!(!out_case.contains("compgen -f"), "{out_case}");
    assert_eq!(complete(&["desiccant", "--out", "o"]), [""]);
    // Numbers and names are typed, not picked from the folder: before, these offered
    // domains.txt.
    for option in [
        "--warning",
        "--critical",
        "-d",
        "--domain",
        "--jobs",
        "--lock-wait",
    ] {
        assert_eq!(complete(&["desiccant", option, "dom"]), ["dom"], "{option}");
    }
    // zsh and fish offer the same values.
    for file in ["_desiccant", "desiccant.fish"] {
        let text = fs::read_to_string(built(file)).unwrap();
        for want in [
            "tls-alpn-01",
            "secp384r1",
            "google-test",
            "cessationOfOperation",
        ] {
            assert!(text.contains(want), "{file} lacks {want}");
        }
    }
    // A URL is still a CA, and a code still a reason: the values are offered, not imposed.
    let out = Command::new(env!("CARGO_BIN_EXE_desiccant"))
        .args(["--revoke", "/nonexistent", "--reason", "bored"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}
