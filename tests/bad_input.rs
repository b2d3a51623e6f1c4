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
fn a_missing_webroot_fails_its_certificate_before_any_request() {
    let pebble = Pebble::start();
    let env = Env::new(&pebble, "WELLKNOWN=/nonexistent/acme-challenge\n");
    env.domains("a.example\n");
    let requests_before = pebble.requests_counted();
    let run = env.run(&["--cron", "--accept-terms"]);
    run.expect(1);
    assert!(
        run.stderr().contains(
            "a.example: /nonexistent/acme-challenge: WELLKNOWN folder does not exist; create it"
        ),
        "{run:?}"
    );
    assert_eq!(
        pebble.requests_after(requests_before),
        Vec::<String>::new(),
        "a request was sent"
    );
}

/// Writes `text` as the own config of certificate `name`.
fn cert_config(env: &Env, name: &str, text: &str) -> std::path::PathBuf {
    let dir = env.cert_dir(name);
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("config"), text).unwrap();
    dir.join("config")
}

#[test]
fn a_certificate_with_a_problem_of_its_own_fails_alone() {
    let pebble = Pebble::start();
    let env = Env::new(&pebble, "");
    env.domains(
        "good.example\nunknown-key.example\nno-webroot.example\nno-hook.example\n\
         bad-algo.example\nstrict-hook.example\n",
    );
    let unknown = cert_config(
        &env,
        "unknown-key.example",
        "KEY_ALGO=prime256v1\nNO_SUCH_KEY=1\n",
    );
    cert_config(
        &env,
        "no-webroot.example",
        "WELLKNOWN=/nonexistent/acme-challenge\n",
    );
    // As --import-certbot writes it for a certificate certbot validated by hand.
    cert_config(&env, "no-hook.example", "CHALLENGETYPE=dns-01\n");
    let bad_algo = cert_config(&env, "bad-algo.example", "KEY_ALGO=ed448\n");
    let strict = env.path().join("strict.sh");
    common::script(
        &strict,
        "case \"$1\" in deploy_challenge|clean_challenge|deploy_cert) exit 0;; *) exit 1;; esac",
    );
    cert_config(
        &env,
        "strict-hook.example",
        &format!("HOOK={}\n", strict.display()),
    );

    let run = env.run(&["--cron", "--accept-terms", "--json"]);
    run.expect(1);
    let root = pebble.root_der();
    common::check_live_set(&env.cert_dir("good.example"), &["good.example"], &root);
    let err = run.stderr();
    for (name, what) in [
        (
            "unknown-key.example",
            format!("{}:2: unknown key NO_SUCH_KEY", unknown.display()),
        ),
        (
            "no-webroot.example",
            "/nonexistent/acme-challenge: WELLKNOWN folder does not exist".to_string(),
        ),
        (
            "no-hook.example",
            "no-hook.example uses dns-01 but has neither a HOOK".to_string(),
        ),
        (
            "bad-algo.example",
            format!("{}:1: KEY_ALGO", bad_algo.display()),
        ),
        (
            "strict-hook.example",
            "must exit 0 on handlers it does not know".to_string(),
        ),
    ] {
        let line = err
            .lines()
            .find(|l| l.contains(&format!("{name}: ")) && l.contains(&what))
            .unwrap_or_else(|| panic!("{name} is not named with {what}:{run:?}"));
        assert!(
            line.contains(&format!(
                "{name} is not renewed until this is fixed; the other certificates are"
            )),
            "{line}"
        );
        assert!(!env.cert_dir(name).join("cert.pem").exists(), "{name}");
    }
    assert!(!err.contains("ed448"), "a value was shown:{run:?}");
    let report: serde_json::Value = serde_json::from_str(&run.stdout()).unwrap();
    assert_eq!(report["exit_status"], 1);
    let certs = report["certificates"].as_array().unwrap();
    let status: Vec<(&str, &str)> = certs
        .iter()
        .map(|c| (c["name"].as_str().unwrap(), c["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        status,
        [
            ("good.example", "issued"),
            ("unknown-key.example", "failed"),
            ("no-webroot.example", "failed"),
            ("no-hook.example", "failed"),
            ("bad-algo.example", "failed"),
            ("strict-hook.example", "failed"),
        ]
    );
    assert!(
        certs[1]["error"]
            .as_str()
            .unwrap()
            .contains("unknown key NO_SUCH_KEY"),
        "{report}"
    );

    // --check names the certificates no run renews, and still checks the others.
    let check = env.run(&["--check"]);
    check.expect(2);
    let out = check.stdout();
    let row = |name: &str| {
        out.lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no row for {name}:{check:?}"))
            .to_string()
    };
    assert!(row("good.example").contains(" OK "), "{check:?}");
    for name in ["unknown-key.example", "no-hook.example", "bad-algo.example"] {
        assert!(row(name).contains(" CRITICAL "), "{check:?}");
        assert!(row(name).contains("not renewed: its config"), "{check:?}");
    }
    assert!(
        out.contains(&format!(
            "unknown-key.example: not renewed: {}:2: unknown key NO_SUCH_KEY",
            unknown.display()
        )),
        "{check:?}"
    );
    let check = env.run(&["--check", "--json"]);
    let report: serde_json::Value = serde_json::from_str(&check.stdout()).unwrap();
    assert_eq!(report["certificates"][3]["state"], "CRITICAL");
    assert!(
        report["certificates"][3]["detail"]
            .as_str()
            .unwrap()
            .starts_with("not renewed: ")
            && report["certificates"][3]["detail"]
                .as_str()
                .unwrap()
                .contains("no-hook.example uses dns-01"),
        "{report}"
    );

    // Fixed, it is issued by the next run; the run's own config stays a run error.
    fs::remove_file(&unknown).unwrap();
    env.run(&["--cron", "-d", "unknown-key.example"]).expect(0);
    env.write_config("CHALLENGETYPE=dns-01\n");
    let run = env.run(&["--cron"]);
    run.expect(78);
    assert!(
        run.stderr().contains(&format!(
            "{}:5: CHALLENGETYPE is dns-01, but there is neither a HOOK",
            env.path().join("config").display()
        )),
        "{run:?}"
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
    refused_as(78, env, args, at, key);
}

/// As [`refused_without_the_secret`], exiting `code`: 1 for a certificate's own config.
fn refused_as(code: i32, env: &Env, args: &[&str], at: &str, key: Option<&str>) {
    let run = env.run(args);
    run.expect(code);
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
    refused_as(1, &env, &cron, &at, Some("PKCS12_PASSPHRASE"));
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

#[test]
fn a_ca_whose_tls_certificate_is_not_trusted_is_a_setting_not_a_passing_fault() {
    let pebble = Pebble::start();
    let env = Env::new(&pebble, "");
    env.domains("a.example\n");
    let host = format!("{}:{}", pebble.ip, common::ACME_PORT);
    // The system's store, which does not hold the harness's root.
    fs::write(
        env.path().join("config"),
        format!(
            "CA=\"{}\"\nWELLKNOWN=\"{}\"\n",
            pebble.directory_url,
            pebble.webroot.display()
        ),
    )
    .unwrap();
    let run = env.run(&["--cron", "--accept-terms"]);
    run.expect(78);
    assert!(
        run.stderr().contains(&format!(
            "error: CA: cannot reach {}: the TLS certificate of {host} is not trusted by the \
             system's certificate store: its issuer is not known; set CA_BUNDLE (or \
             --ca-bundle) to a PEM file with the root of {host}'s certificate, or add that root \
             to the system's store (/usr/local/share/ca-certificates/, then \
             update-ca-certificates)",
            pebble.directory_url
        )),
        "{run:?}"
    );
    assert!(!run.stderr().contains("a later run tries again"), "{run:?}");
    // A bundle that holds other roots: the same, naming the bundle.
    let run = env.run(&[
        "--cron",
        "--accept-terms",
        "--ca-bundle",
        "/etc/ssl/certs/ca-certificates.crt",
    ]);
    run.expect(78);
    assert!(
        run.stderr().contains(&format!(
            "the TLS certificate of {host} is not trusted by the given CA bundle: its issuer is \
             not known; set CA_BUNDLE"
        )),
        "{run:?}"
    );
    assert!(!env.path().join("accounts").exists() && !env.cert_dir("a.example").exists());
}

#[test]
fn a_directory_url_that_answers_404_is_named_once_with_the_presets() {
    let pebble = Pebble::start();
    let wrong = pebble.directory_url.replace("/dir", "/directory");
    let env = Env::for_ca(&wrong, &pebble.ca_bundle, &pebble.webroot, "");
    env.domains("a.example\n");
    let run = env.run(&["--cron", "--accept-terms"]);
    run.expect(1);
    assert_eq!(run.stderr().matches(&wrong).count(), 1, "{run:?}");
    assert!(
        run.stderr().contains(&format!(
            "error: CA: {wrong} answered 404: 404 page not found; there is no ACME directory at \
             this URL: set CA to one of letsencrypt, letsencrypt-test, zerossl, buypass, \
             buypass-test, google, google-test or to the directory's full URL, which the CA \
             documents (it often ends in /directory)"
        )),
        "{run:?}"
    );
}

#[test]
fn a_mistyped_key_suggests_the_nearest_known_one_without_its_value() {
    let pebble = Pebble::start();
    let env = Env::new(&pebble, "CHALENGETYPE=secret-looking-value\n");
    env.domains("a.example\n");
    let config = env.path().join("config");
    let run = env.run(&["--cron"]);
    run.expect(78);
    assert!(
        run.stderr().contains(&format!(
            "{}:5: unknown key CHALENGETYPE; did you mean CHALLENGETYPE? (see the list of keys \
             in README)",
            config.display()
        )),
        "{run:?}"
    );
    assert!(!run.stderr().contains("secret-looking"), "{run:?}");
    // Case and a swapped pair of letters; a key near nothing gets no guess.
    for (line, says) in [
        (
            "renew_days=30",
            "unknown key renew_days; did you mean RENEW_DAYS?",
        ),
        (
            "KEY_AGLO=rsa",
            "unknown key KEY_AGLO; did you mean KEY_ALGO?",
        ),
        ("FOO=1", "unknown key FOO; see the list of keys in README"),
    ] {
        env.write_config(&format!("{line}\n"));
        let run = env.run(&["--cron"]);
        run.expect(78);
        assert!(run.stderr().contains(says), "{line}: {run:?}");
    }
}

#[test]
fn renewed_certs_in_double_quotes_is_refused_with_the_single_quoted_form() {
    let pebble = Pebble::start();
    let env = Env::new(
        &pebble,
        "POST_RENEW_HOOK=\"systemctl reload $RENEWED_CERTS\"\n",
    );
    env.domains("a.example\n");
    let run = env
        .command(&["--cron"])
        .env("RENEWED_CERTS", "x")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(78), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{}:5: POST_RENEW_HOOK: $RENEWED_CERTS is set only when the command runs, but here \
             it is expanded while the config is read, to nothing: write the value in single \
             quotes, as POST_RENEW_HOOK='... $RENEWED_CERTS'",
            env.path().join("config").display()
        )),
        "{stderr}"
    );
    // As advised, it loads.
    env.write_config("POST_RENEW_HOOK='systemctl reload $RENEWED_CERTS'\n");
    env.run(&["--env"]).expect(0);
}

#[test]
fn an_unwritable_basedir_names_its_owner_and_the_user_of_this_run() {
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        fs::metadata("/proc/self").unwrap().uid(),
        0,
        "this test runs desiccant as nobody and needs root"
    );
    let pebble = Pebble::start();
    let env = Env::new(&pebble, "");
    env.domains("a.example\n");
    common::reachable_by_others(env.path());
    let run = std::process::Command::new("setpriv")
        .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups"])
        .arg(env!("CARGO_BIN_EXE_desiccant"))
        .arg("--config")
        .arg(env.path().join("config"))
        .args(["--cron", "--accept-terms"])
        .env_remove("JOURNAL_STREAM")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "Permission denied (os error 13); {} belongs to root and this run is nobody: run \
             desiccant as root",
            env.path().display()
        )),
        "{stderr}"
    );
}

/// Every file under `dir`, read as text, with its path.
fn files_under(dir: &std::path::Path) -> Vec<(std::path::PathBuf, String)> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            let bytes = fs::read(&path).unwrap();
            out.push((path, String::from_utf8_lossy(&bytes).into_owned()));
        }
    }
    out
}

#[test]
fn a_user_and_password_in_the_ca_url_are_never_shown_nor_kept_in_state() {
    const SECRET: &str = "s3cr3tpa55";
    let pebble = Pebble::start();
    let with_user = |path: &str| {
        pebble
            .directory_url
            .replacen("https://", &format!("https://us3r:{SECRET}@"), 1)
            .replace("/dir", path)
    };
    let bare = pebble.directory_url.replace("/dir", "/nodir");
    let mut runs = Vec::new();

    // No directory there: the error, the dry run, --check and their JSON.
    let missing = Env::for_ca(&with_user("/nodir"), &pebble.ca_bundle, &pebble.webroot, "");
    missing.domains("one.example\n");
    let run = missing.run(&["--cron", "--accept-terms"]);
    run.expect(1);
    assert!(
        run.stderr()
            .contains(&format!("error: CA: {bare} answered 404: ")),
        "{run:?}"
    );
    runs.push(run);
    let state = fs::read_to_string(missing.path().join("state/one.example.json")).unwrap();
    assert!(state.contains(&bare), "{state}");
    for args in [
        &["--cron", "--dry-run", "--accept-terms"][..],
        &["--cron", "--dry-run", "--accept-terms", "--json"],
        &["--cron", "--accept-terms", "--json", "--verbose"],
        &["--check"],
        &["--check", "--json"],
    ] {
        runs.push(missing.run(args));
    }
    assert!(
        runs[1]
            .stdout()
            .starts_with(&format!("dry run against {bare}, the configured CA")),
        "{:?}",
        runs[1]
    );

    // A CA that answers (Pebble takes no notice of the user): issued, recorded, checked.
    let env = Env::for_ca(&with_user("/dir"), &pebble.ca_bundle, &pebble.webroot, "");
    env.domains("one.example\n");
    let run = env.run(&["--cron", "--accept-terms", "--verbose"]);
    run.expect(0);
    runs.push(run);
    for args in [
        &["--cron", "--force", "--verbose"][..],
        &["--cron", "--json"],
        &["--cron", "--dry-run"],
        &["--cron", "--dry-run", "--json"],
        &["--check"],
        &["--check", "--json"],
    ] {
        runs.push(env.run(args));
    }
    let state = fs::read_to_string(env.path().join("state/one.example.json")).unwrap();
    assert!(state.contains(&pebble.directory_url), "{state}");

    for run in &runs {
        assert!(
            !run.stdout().contains(SECRET) && !run.stderr().contains(SECRET),
            "{run:?}"
        );
    }
    for base in [&missing, &env] {
        for (path, text) in files_under(&base.path().join("state")) {
            assert!(!text.contains(SECRET), "{}: {text}", path.display());
        }
    }
}
