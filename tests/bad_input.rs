//! Bad input is refused before anything is sent or written, with the file and line to fix.

mod common;

use std::fs;

use common::{Env, Pebble};

/// The BASEDIR's entries, sorted.
fn entries(env: &Env) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(env.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn a_bad_domains_txt_line_exits_78_naming_the_line_and_sends_nothing() {
    let pebble = Pebble::start();
    let env = Env::new(&pebble, "");
    env.domains("good.example\n# comment\nbad_name.example www.example\n");
    let requests_before = pebble.requests_counted();
    let run = env.run(&["--cron", "--accept-terms"]);
    run.expect(78);
    let domains = env.path().join("domains.txt");
    assert!(
        run.stderr().contains(&format!(
            "{}:3: bad_name.example: '_' is not allowed",
            domains.display()
        )),
        "{run:?}"
    );
    assert_eq!(
        entries(&env),
        ["config", "domains.txt"],
        "something was written"
    );
    assert_eq!(
        pebble.requests_after(requests_before),
        Vec::<String>::new(),
        "a request was sent"
    );
}

#[test]
fn a_wildcard_without_alias_and_a_duplicate_folder_are_refused() {
    let pebble = Pebble::start();
    let env = Env::new(&pebble, "");
    env.domains("*.example.org example.org\n");
    let run = env.run(&["--cron", "--accept-terms"]);
    run.expect(78);
    assert!(
        run.stderr()
            .contains("domains.txt:1: *.example.org is a wildcard"),
        "{run:?}"
    );
    env.domains("a.example\nb.example > a.example\n");
    let run = env.run(&["--cron", "--accept-terms"]);
    run.expect(78);
    assert!(
        run.stderr()
            .contains("domains.txt:2: certificate name a.example is already used"),
        "{run:?}"
    );
    assert_eq!(entries(&env), ["config", "domains.txt"]);
}

#[test]
fn config_errors_exit_78_naming_the_line() {
    let pebble = Pebble::start();
    let env = Env::new(&pebble, "KEY_ALGO=rsa\nKEYSIZE=1024\n");
    env.domains("a.example\n");
    let run = env.run(&["--cron", "--accept-terms"]);
    run.expect(78);
    let config = env.path().join("config");
    assert!(
        run.stderr().contains(&format!(
            "{}:6: KEYSIZE is not supported for rsa",
            config.display()
        )),
        "{run:?}"
    );
    env.write_config("RENEW_DAYS=$(date)\n");
    let run = env.run(&["--cron"]);
    run.expect(78);
    assert!(
        run.stderr()
            .contains(":5: RENEW_DAYS: command substitution is not supported"),
        "{run:?}"
    );
    assert_eq!(entries(&env), ["config", "domains.txt"]);
}

#[test]
fn a_missing_webroot_exits_78_before_any_request() {
    let pebble = Pebble::start();
    let env = Env::new(&pebble, "WELLKNOWN=/nonexistent/acme-challenge\n");
    env.domains("a.example\n");
    let requests_before = pebble.requests_counted();
    let run = env.run(&["--cron", "--accept-terms"]);
    run.expect(78);
    assert!(
        run.stderr()
            .contains("/nonexistent/acme-challenge: WELLKNOWN folder does not exist"),
        "{run:?}"
    );
    assert_eq!(
        pebble.requests_after(requests_before),
        Vec::<String>::new(),
        "a request was sent"
    );
}

#[test]
fn bad_command_lines_exit_2() {
    let pebble = Pebble::start();
    let env = Env::new(&pebble, "");
    env.run(&[]).expect(2);
    env.run(&["--cron", "--register"]).expect(2);
    env.run(&["--cron", "--no-such-flag"]).expect(2);
    env.run(&["-gc", "--cron"]).expect(2);
    env.run(&["--reason", "11", "--revoke", "x"]).expect(2);
}

#[test]
fn under_systemd_lines_carry_journal_priorities() {
    let pebble = Pebble::start();
    let env = Env::new(&pebble, "OCSP_FETCH=yes\n");
    env.domains("bad_name.example\n");
    let output = env
        .command(&["--cron"])
        .env("JOURNAL_STREAM", "8:12345")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(78));
    let err = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = err.lines().collect();
    assert!(lines[0].starts_with("<4>warning: "), "{err}");
    assert!(lines[1].starts_with("<3>error: "), "{err}");
}

/// A value that must never be printed.
const SECRET: &str = "Zs3cr3tV4lu3";

/// Runs `args` in `env` and checks that a config error (78) names `at` (`file:line`) and
/// `key`, and that neither stdout nor stderr holds the secret.
fn refused_without_the_secret(env: &Env, args: &[&str], at: &str, key: Option<&str>) {
    let run = env.run(args);
    run.expect(78);
    let all = format!("{}{}", run.stdout(), run.stderr());
    assert!(!all.contains(SECRET), "the secret was printed:{run:?}");
    assert!(
        !all.contains("s3cr3t"),
        "part of the secret was printed:{run:?}"
    );
    assert!(
        all.contains(&format!("{at}: ")),
        "{at} is not named:{run:?}"
    );
    if let Some(key) = key {
        assert!(
            all.contains(&format!("{at}: {key}")),
            "{key} is not named after {at}:{run:?}"
        );
    }
}

#[test]
fn config_errors_name_file_line_and_key_and_never_a_value() {
    // No request is made: any CA address does.
    let dir = common::TempDir::new("no-ca");
    let env = Env::for_ca(
        "https://127.0.0.1:9/dir",
        &dir.path().join("ca.pem"),
        dir.path(),
        "",
    );
    env.domains("a.example\n");
    let config = env.path().join("config").display().to_string();
    let cron = ["--cron", "--accept-terms"];
    for key in ["EAB_HMAC_KEY", "DNS_UPDATE_KEY_SECRET", "PKCS12_PASSPHRASE"] {
        for (line, named) in [
            (format!("{key} = {SECRET}"), true),
            (format!("{key}= {SECRET}"), false),
            (format!("{key}={SECRET} extra"), true),
            (format!("{key}=\"{SECRET}"), true),
            (format!("{key}='{SECRET}"), true),
            (format!("{key}={SECRET};x"), true),
            (format!("{key}={SECRET}|x"), true),
            (format!("{key}=x${SECRET}"), true),
            (format!("{key}=\"x${{{SECRET}:-y}}\""), true),
            (format!("{key}={SECRET}\\"), true),
            (format!("{key}=$({SECRET})"), true),
            (format!("{key}X={SECRET}"), false),
            (SECRET.to_string(), false),
            (format!("export {key} {SECRET}"), false),
        ] {
            // The line after the four of the test's config.
            env.write_config(&format!("{line}\n"));
            let named = named.then_some(key);
            refused_without_the_secret(&env, &cron, &format!("{config}:5"), named);
        }
    }
    // Values of the right shape that are wrong.
    for (lines, key) in [
        (
            format!("EAB_KID=kid\nEAB_HMAC_KEY={SECRET}!!\n"),
            "EAB_HMAC_KEY",
        ),
        (
            format!("EAB_KID=kid\nEAB_HMAC_KEY=YQ\nEAB_ALGORITHM={SECRET}\n"),
            "EAB_ALGORITHM",
        ),
        (
            format!(
                "DNS_UPDATE_SERVER=127.0.0.1\nDNS_UPDATE_KEY_NAME=k\nDNS_UPDATE_KEY_SECRET={SECRET}!\n"
            ),
            "DNS_UPDATE_KEY_SECRET",
        ),
        (
            format!(
                "DNS_UPDATE_SERVER=127.0.0.1\nDNS_UPDATE_KEY_NAME=k\nDNS_UPDATE_KEY_ALGORITHM={SECRET}\n"
            ),
            "DNS_UPDATE_KEY_ALGORITHM",
        ),
        (format!("KEY_ALGO={SECRET}\n"), "KEY_ALGO"),
        (format!("RENEW_DAYS={SECRET}\n"), "RENEW_DAYS"),
        (format!("CA={SECRET}\n"), "CA"),
        (format!("HOOK=/{SECRET}\n"), "HOOK"),
        (
            format!("DNS_CHECK_SERVERS=\"127.0.0.1 {SECRET}\"\n"),
            "DNS_CHECK_SERVERS",
        ),
        (format!("CONFIG_D=/{SECRET}\n"), "CONFIG_D"),
    ] {
        env.write_config(&lines);
        let line = 4 + lines.lines().count();
        refused_without_the_secret(&env, &cron, &format!("{config}:{line}"), Some(key));
    }

    // The TSIG key file: its errors name its line, never its text.
    let key_file = env.path().join("tsig.key");
    for (text, line) in [
        (
            format!("key \"k\" {{\n  algorithm {SECRET};\n  secret \"YQ==\";\n}};\n"),
            2,
        ),
        (
            format!("key \"k\" {{\n  algorithm hmac-sha256;\n  secret \"{SECRET}!\";\n}};\n"),
            3,
        ),
    ] {
        fs::write(&key_file, text).unwrap();
        env.write_config(&format!(
            "DNS_UPDATE_SERVER=127.0.0.1\nDNS_UPDATE_KEY_FILE={}\n",
            key_file.display()
        ));
        let run = env.run(&cron);
        run.expect(78);
        let all = format!("{}{}", run.stdout(), run.stderr());
        assert!(!all.contains(SECRET), "the secret was printed:{run:?}");
        assert!(
            all.contains(&format!(
                "{config}:6: DNS_UPDATE_KEY_FILE: the key file: line {line}: "
            )),
            "{run:?}"
        );
    }

    // A CONFIG_D file and a certificate's own config are read the same way.
    let config_d = env.path().join("conf.d");
    fs::create_dir_all(&config_d).unwrap();
    fs::write(
        config_d.join("eab.sh"),
        format!("\nEAB_HMAC_KEY = {SECRET}\n"),
    )
    .unwrap();
    env.write_config(&format!("CONFIG_D={}\n", config_d.display()));
    let in_d = config_d.join("eab.sh").display().to_string();
    refused_without_the_secret(&env, &cron, &format!("{in_d}:2"), Some("EAB_HMAC_KEY"));
    fs::remove_dir_all(&config_d).unwrap();
    env.write_config("");
    let cert_config = env.cert_dir("a.example").join("config");
    fs::create_dir_all(env.cert_dir("a.example")).unwrap();
    fs::write(
        &cert_config,
        format!("KEY_ALGO=rsa\nPKCS12_PASSPHRASE={SECRET} x\n"),
    )
    .unwrap();
    let at = format!("{}:2", cert_config.display());
    refused_without_the_secret(&env, &cron, &at, Some("PKCS12_PASSPHRASE"));
}

#[test]
fn env_prints_no_secret() {
    let dir = common::TempDir::new("no-ca");
    let env = Env::for_ca(
        "https://127.0.0.1:9/dir",
        &dir.path().join("ca.pem"),
        dir.path(),
        "",
    );
    env.write_config(&format!(
        "EAB_KID=kid\nEAB_HMAC_KEY={SECRET}\nPKCS12_EXPORT=yes\nPKCS12_PASSPHRASE={SECRET}\n\
         DNS_UPDATE_SERVER=127.0.0.1\nDNS_UPDATE_KEY_NAME=k\nDNS_UPDATE_KEY_SECRET=YQ==\n"
    ));
    let run = env.run(&["--env"]);
    run.expect(0);
    assert!(run.stdout().contains("declare -- CA="), "{run:?}");
    assert!(!run.stdout().contains(SECRET), "{run:?}");
    assert!(!run.stdout().contains("YQ=="), "{run:?}");
}
