//! Coming from certbot: the real certbot (Debian's package) issues, then
//! `desiccant --import-certbot` takes its certificates over without reissuing them, its
//! webroot as `WEBROOT` and its hooks as `AUTH_HOOK`, `CLEANUP_HOOK` and `DEPLOY_HOOK`; those
//! hooks run as certbot runs them (a recording script shows every variable they got), and a
//! `WEBROOT` is served by a real nginx that runs as another user.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Env, Pebble, PebbleOptions, check_live_set, mode, require, script};

/// How the recording hook puts a challenge in place and takes it away.
enum Publish<'a> {
    /// http-01: the file `$CERTBOT_TOKEN` in this folder.
    File(&'a Path),
    /// dns-01: a TXT record in pebble-challtestsrv.
    Txt(&'a Pebble),
}

/// A certbot hook script, `hook.sh auth|cleanup|deploy`, as users of certbot + Lexicon write
/// them: it appends one line per call to `calls` with every certbot variable it got, and puts
/// the challenge in place (printing a line on stdout, for `CERTBOT_AUTH_OUTPUT`) or takes it
/// away. Returns the script and the record.
fn certbot_hook(dir: &Path, publish: Publish<'_>) -> (PathBuf, PathBuf) {
    let (path, calls) = (dir.join("hook.sh"), dir.join("calls"));
    let (set, clear) = match publish {
        Publish::File(webroot) => (
            format!(
                "printf '%s' \"$CERTBOT_VALIDATION\" > '{}'/\"$CERTBOT_TOKEN\"",
                webroot.display()
            ),
            format!("rm -f '{}'/\"$CERTBOT_TOKEN\"", webroot.display()),
        ),
        Publish::Txt(pebble) => {
            require("curl", "curl");
            let mgmt = &pebble.dns_management;
            (
                format!(
                    "curl -s -X POST -d \"{{\\\"host\\\":\\\"_acme-challenge.$CERTBOT_DOMAIN.\\\",\\\"value\\\":\\\"$CERTBOT_VALIDATION\\\"}}\" {mgmt}/set-txt >/dev/null"
                ),
                format!(
                    "curl -s -X POST -d \"{{\\\"host\\\":\\\"_acme-challenge.$CERTBOT_DOMAIN.\\\"}}\" {mgmt}/clear-txt >/dev/null"
                ),
            )
        }
    };
    script(
        &path,
        &format!(
            r#"out='{calls}'
challenge() {{ printf 'domain=%s validation=%s token=%s remaining=%s all=%s' "$CERTBOT_DOMAIN" "$CERTBOT_VALIDATION" "${{CERTBOT_TOKEN-(unset)}}" "$CERTBOT_REMAINING_CHALLENGES" "$CERTBOT_ALL_DOMAINS"; }}
case "$1" in
  auth) echo "auth $(challenge)" >> "$out"; {set}; echo "published for $CERTBOT_DOMAIN" ;;
  cleanup) echo "cleanup $(challenge) output=$CERTBOT_AUTH_OUTPUT" >> "$out"; {clear} ;;
  deploy) echo "deploy lineage=$RENEWED_LINEAGE domains=$RENEWED_DOMAINS" >> "$out" ;;
esac"#,
            calls = calls.display()
        ),
    );
    (path, calls)
}

/// The recorded calls, and clears the record.
fn calls(path: &Path) -> Vec<String> {
    let text = fs::read_to_string(path).unwrap_or_default();
    let _ = fs::remove_file(path);
    text.lines().map(str::to_string).collect()
}

/// The value of `key=` in a recorded line (values hold no spaces but RENEWED_DOMAINS, last).
fn field<'a>(line: &'a str, key: &str) -> &'a str {
    let start = line
        .find(&format!(" {key}="))
        .unwrap_or_else(|| panic!("no {key} in {line}"))
        + key.len()
        + 2;
    let rest = &line[start..];
    if key == "domains" {
        rest
    } else {
        rest.split(' ').next().unwrap()
    }
}

/// `AUTH_HOOK='<hook> auth'` and the others, as certbot's options would give them.
fn hook_keys(hook: &Path) -> String {
    let h = hook.display();
    format!("AUTH_HOOK='{h} auth'\nCLEANUP_HOOK='{h} cleanup'\nDEPLOY_HOOK='{h} deploy'\n")
}

#[test]
fn certbot_hooks_for_http_01_run_as_certbot_runs_them() {
    let pebble = Pebble::start();
    let env = Env::new(&pebble, "");
    let (hook, record) = certbot_hook(env.path(), Publish::File(&pebble.webroot));
    // certbot's manual mode: the auth hook puts the file in place, desiccant writes none.
    let unused = env.path().join("unused-wellknown");
    env.write_config(&format!(
        "{}WELLKNOWN='{}'\n",
        hook_keys(&hook),
        unused.display()
    ));
    env.domains("site.example www.site.example\n");
    let run = env.run(&["--cron", "--accept-terms"]);
    run.expect(0);
    check_live_set(
        &env.cert_dir("site.example"),
        &["site.example", "www.site.example"],
        &pebble.root_der(),
    );
    let calls = calls(&record);
    assert_eq!(calls.len(), 5, "{calls:#?}");
    let (auths, rest) = calls.split_at(2);
    let (cleanups, deploy) = rest.split_at(2);
    let mut domains = Vec::new();
    for (i, auth) in auths.iter().enumerate() {
        assert!(auth.starts_with("auth "), "{calls:#?}");
        domains.push(field(auth, "domain").to_string());
        // The key authorization, token.thumbprint, and the token: the file certbot would write.
        let token = field(auth, "token");
        assert!(
            field(auth, "validation").starts_with(&format!("{token}.")),
            "{auth}"
        );
        assert_eq!(field(auth, "remaining"), (1 - i).to_string(), "{auth}");
        assert_eq!(field(auth, "all"), domains_joined(auths), "{auth}");
        // Never in our output: a key authorization is a secret until the challenge is done.
        let output = run.stdout() + &run.stderr();
        assert!(!output.contains(field(auth, "validation")), "{run:?}");
    }
    domains.sort();
    assert_eq!(domains, ["site.example", "www.site.example"]);
    for (auth, cleanup) in auths.iter().zip(cleanups) {
        assert!(cleanup.starts_with("cleanup "), "{calls:#?}");
        let said = auth.replacen("auth ", "cleanup ", 1);
        assert_eq!(
            cleanup,
            &format!("{said} output=published for {}", field(auth, "domain"))
        );
    }
    assert_eq!(
        deploy,
        [format!(
            "deploy lineage={} domains=site.example www.site.example",
            env.cert_dir("site.example").display()
        )]
    );
    assert!(!unused.exists(), "a file was written into WELLKNOWN");
    assert_eq!(fs::read_dir(&pebble.webroot).unwrap().count(), 0);

    // Nothing due: no hook runs. A forced renewal runs them all again (with
    // --force-validation: Pebble reuses a valid authorization now and then).
    env.run(&["--cron"]).expect(0);
    assert_eq!(self::calls(&record), Vec::<String>::new());
    env.run(&["--cron", "--force", "--force-validation"])
        .expect(0);
    let again = self::calls(&record);
    assert_eq!(again.len(), 5, "{again:#?}");
}

/// The names of the recorded auth calls, comma-separated, as CERTBOT_ALL_DOMAINS has them.
fn domains_joined(auths: &[String]) -> String {
    auths
        .iter()
        .map(|a| field(a, "domain"))
        .collect::<Vec<_>>()
        .join(",")
}

#[test]
fn certbot_hooks_for_a_wildcard_by_dns_01_set_for_one_certificate() {
    let pebble = Pebble::start();
    let env = Env::new(
        &pebble,
        &format!("DNS_CHECK_SERVERS={}\n", pebble.dns_server),
    );
    let (hook, record) = certbot_hook(env.path(), Publish::Txt(&pebble));
    env.domains("plain.example\n*.wild.example wild.example > wild\n");
    let wild = env.cert_dir("wild");
    fs::create_dir_all(&wild).unwrap();
    fs::write(
        wild.join("config"),
        format!("CHALLENGETYPE=dns-01\n{}", hook_keys(&hook)),
    )
    .unwrap();
    let run = env.run(&["--cron", "--accept-terms"]);
    run.expect(0);
    let root = pebble.root_der();
    check_live_set(&wild, &["*.wild.example", "wild.example"], &root);
    check_live_set(&env.cert_dir("plain.example"), &["plain.example"], &root);
    let calls = calls(&record);
    assert_eq!(calls.len(), 5, "{calls:#?}");
    let mut values = Vec::new();
    for (i, auth) in calls[..2].iter().enumerate() {
        // The base name for the wildcard too, as the CA's authorization names it.
        assert!(auth.starts_with("auth domain=wild.example "), "{auth}");
        assert_eq!(field(auth, "token"), "(unset)", "{auth}");
        assert_eq!(field(auth, "remaining"), (1 - i).to_string(), "{auth}");
        assert_eq!(field(auth, "all"), "wild.example,wild.example", "{auth}");
        let value = field(auth, "validation");
        // The TXT value: base64url of a SHA-256, 43 characters.
        assert_eq!(value.len(), 43, "{auth}");
        assert!(!(run.stdout() + &run.stderr()).contains(value), "{run:?}");
        values.push(value.to_string());
    }
    assert_ne!(values[0], values[1]);
    for (auth, cleanup) in calls[..2].iter().zip(&calls[2..4]) {
        let said = auth.replacen("auth ", "cleanup ", 1);
        assert_eq!(
            cleanup,
            &format!("{said} output=published for wild.example")
        );
    }
    assert_eq!(
        calls[4],
        format!(
            "deploy lineage={} domains=*.wild.example wild.example",
            wild.display()
        )
    );
}

#[test]
fn a_certbot_hook_set_as_hook_is_named_for_what_it_is() {
    let pebble = Pebble::start();
    let env = Env::new(&pebble, "");
    let hook = env.path().join("lexicon-auth.sh");
    script(
        &hook,
        "[ -n \"$CERTBOT_DOMAIN\" ] || exit 1\nlexicon cloudflare create \"$CERTBOT_DOMAIN\" TXT --name \"_acme-challenge.$CERTBOT_DOMAIN\" --content \"$CERTBOT_VALIDATION\"",
    );
    env.write_config(&format!("CHALLENGETYPE=dns-01\nHOOK={}\n", hook.display()));
    env.domains("lexicon.example\n");
    let requests = pebble.requests_counted();
    let run = env.run(&["--cron", "--accept-terms"]);
    run.expect(78);
    assert!(
        run.stderr().contains("looks like a certbot hook")
            && run.stderr().contains("set it as AUTH_HOOK"),
        "{run:?}"
    );
    assert_eq!(pebble.requests_after(requests), Vec::<String>::new());
}

#[test]
fn a_webroot_served_by_nginx_as_another_user_under_umask_077() {
    let pebble = Pebble::start_with(PebbleOptions {
        web_server: false,
        ..Default::default()
    });
    let site = common::TempDir::new("site");
    common::reachable_by_others(site.path());
    // The document root, as certbot's -w names it; nothing under it yet.
    let docroot = site.path().join("html");
    fs::create_dir_all(&docroot).unwrap();
    fs::set_permissions(
        &docroot,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let listen = std::net::SocketAddr::from((pebble.ip, pebble.http_port));
    // nobody: the web server reads only what others may read.
    let (_nginx_dir, mut nginx) = common::nginx(
        listen,
        &format!("location /.well-known/ {{ root {}; }}", docroot.display()),
        Some((65534, 65534)),
    );
    let env = Env::new(&pebble, "");
    // The harness's WELLKNOWN line comes first; WEBROOT replaces it at the same level only
    // when WELLKNOWN is gone, so the config is written without it.
    fs::write(
        env.path().join("config"),
        format!(
            "CA=\"{}\"\nCA_BUNDLE=\"{}\"\nCONTACT_EMAIL=admin@example.org\nWEBROOT='{}'\n",
            pebble.directory_url,
            pebble.ca_bundle.display(),
            docroot.display()
        ),
    )
    .unwrap();
    env.domains("docroot.example\n");
    let out = Command::new("sh")
        .args(["-c", "umask 077 && exec \"$0\" \"$@\""])
        .arg(env!("CARGO_BIN_EXE_desiccant"))
        .arg("--config")
        .arg(env.path().join("config"))
        .args(["--cron", "--accept-terms"])
        .output()
        .unwrap();
    let access = fs::read_to_string(_nginx_dir.path().join("access.log")).unwrap_or_default();
    nginx.stop();
    assert!(out.status.success(), "{out:?}\nnginx: {access}");
    check_live_set(
        &env.cert_dir("docroot.example"),
        &["docroot.example"],
        &pebble.root_der(),
    );
    // nginx served the files from WEBROOT/.well-known/acme-challenge/ (200, not 403).
    assert!(
        access.contains("GET /.well-known/acme-challenge/") && access.contains("\" 200 "),
        "{access}"
    );
    let challenges = docroot.join(".well-known/acme-challenge");
    assert_eq!(mode(&docroot.join(".well-known")), 0o755);
    assert_eq!(mode(&challenges), 0o755);
    assert_eq!(fs::read_dir(&challenges).unwrap().count(), 0);
}

/// Runs the real `certbot certonly` against `pebble` with `args`, its folders in `env`
/// (`letsencrypt/`, `work/`, `logs/`).
fn run_certbot(pebble: &Pebble, env: &Env, args: &[&str]) {
    let out = Command::new(require("certbot", "certbot"))
        .arg("certonly")
        .args(["--server", &pebble.directory_url])
        .args([
            "--config-dir",
            env.path().join("letsencrypt").to_str().unwrap(),
        ])
        .args(["--work-dir", env.path().join("work").to_str().unwrap()])
        .args(["--logs-dir", env.path().join("logs").to_str().unwrap()])
        .args([
            "--non-interactive",
            "--agree-tos",
            "-m",
            "admin@example.org",
        ])
        .args(args)
        .env("REQUESTS_CA_BUNDLE", &pebble.ca_bundle)
        .output()
        .unwrap();
    assert!(out.status.success(), "certbot {args:?}: {out:?}");
}

/// A recorded line with what differs between two issuances (the values) and two programs (the
/// certificate's folder) left out.
fn shape(line: &str) -> String {
    line.split(' ')
        .map(|w| match w.split_once('=') {
            Some(("validation" | "lineage", _)) => w.split('=').next().unwrap().to_string() + "=*",
            _ => w.to_string(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn certbot_manual_hooks_are_imported_and_run_as_under_certbot() {
    let pebble = Pebble::start_without_refused_nonces();
    let env = Env::new(
        &pebble,
        &format!("DNS_CHECK_SERVERS={}\n", pebble.dns_server),
    );
    let (hook, record) = certbot_hook(env.path(), Publish::Txt(&pebble));
    let h = hook.display();
    run_certbot(
        &pebble,
        &env,
        &[
            "--manual",
            "--preferred-challenges",
            "dns",
            "--manual-auth-hook",
            &format!("{h} auth"),
            "--manual-cleanup-hook",
            &format!("{h} cleanup"),
            "--deploy-hook",
            &format!("{h} deploy"),
            "-d",
            "*.manual.example",
            "-d",
            "manual.example",
            "--cert-name",
            "manual",
        ],
    );
    let under_certbot = calls(&record);
    assert_eq!(under_certbot.len(), 5, "{under_certbot:#?}");
    let le = env.path().join("letsencrypt");
    env.run(&["--import-certbot", le.to_str().unwrap()])
        .expect(0);
    assert_eq!(
        fs::read_to_string(env.cert_dir("manual").join("config")).unwrap(),
        format!(
            "KEY_ALGO=prime256v1\nCHALLENGETYPE=dns-01\nAUTH_HOOK='{h} auth'\n\
             CLEANUP_HOOK='{h} cleanup'\nDEPLOY_HOOK='{h} deploy'\n"
        )
    );
    // Not due: nothing runs. Renewed: the same calls with the same variables as under certbot.
    env.run(&["--cron"]).expect(0);
    assert_eq!(calls(&record), Vec::<String>::new());
    // --force-validation: Pebble reuses a valid authorization now and then.
    env.run(&["--cron", "--force", "--force-validation", "--accept-terms"])
        .expect(0);
    let under_desiccant = calls(&record);
    let shapes = |lines: &[String]| lines.iter().map(|l| shape(l)).collect::<Vec<_>>();
    assert_eq!(shapes(&under_desiccant), shapes(&under_certbot));
    assert_eq!(
        under_desiccant[4],
        format!(
            "deploy lineage={} domains=*.manual.example manual.example",
            env.cert_dir("manual").display()
        )
    );
    check_live_set(
        &env.cert_dir("manual"),
        &["*.manual.example", "manual.example"],
        &pebble.root_der(),
    );
}

#[test]
fn certbot_lineages_are_imported_and_not_reissued() {
    let pebble = Pebble::start_without_refused_nonces();
    let env = Env::new(&pebble, "");
    let le = env.path().join("letsencrypt");
    // certbot writes to <webroot>/.well-known/acme-challenge, which the harness serves.
    let www = env.path().join("www");
    fs::create_dir_all(www.join(".well-known")).unwrap();
    std::os::unix::fs::symlink(&pebble.webroot, www.join(".well-known/acme-challenge")).unwrap();
    let issue = |args: &[&str]| {
        let webroot = ["--webroot", "-w", www.to_str().unwrap()];
        run_certbot(&pebble, &env, &[&webroot[..], args].concat());
    };
    issue(&["-d", "site.example", "-d", "www.site.example"]);
    issue(&[
        "-d",
        "rsa.example",
        "--key-type",
        "rsa",
        "--rsa-key-size",
        "2048",
    ]);

    let run = env.run(&["--import-certbot", le.to_str().unwrap()]);
    run.expect(0);
    assert!(
        run.stdout()
            .contains("site.example: imported (site.example www.site.example)"),
        "{run:?}"
    );
    assert!(
        run.stdout().contains("rsa.example: imported (rsa.example)"),
        "{run:?}"
    );
    let domains = fs::read_to_string(env.path().join("domains.txt")).unwrap();
    assert!(
        domains.contains("site.example www.site.example > site.example\n"),
        "{domains}"
    );
    assert!(domains.contains("rsa.example > rsa.example\n"), "{domains}");
    let root = pebble.root_der();
    check_live_set(
        &env.cert_dir("site.example"),
        &["site.example", "www.site.example"],
        &root,
    );
    check_live_set(&env.cert_dir("rsa.example"), &["rsa.example"], &root);
    // The same certificate as certbot's live one.
    assert_eq!(
        common::pem_certs(&env.cert_dir("site.example").join("cert.pem")),
        common::pem_certs(&le.join("live/site.example/cert.pem"))
    );
    assert_eq!(
        fs::read_to_string(env.cert_dir("rsa.example").join("config")).unwrap(),
        format!("KEY_ALGO=rsa\nKEYSIZE=2048\nWEBROOT='{}'\n", www.display())
    );

    // Nothing is due: no output, and no request but the directory, read once to learn whether
    // the CA offers renewal information; the next run sends nothing at all.
    let requests = pebble.requests();
    let cron = env.run(&["--cron"]);
    cron.expect(0);
    assert_eq!(cron.stdout() + &cron.stderr(), "", "{cron:?}");
    assert_eq!(pebble.requests_after(requests), ["GET /dir"]);
    let requests = pebble.requests();
    env.run(&["--cron"]).expect(0);
    assert_eq!(pebble.requests_after(requests), Vec::<String>::new());
    env.run(&["--check"]).expect(0);

    // A second import leaves what is there.
    let again = env.run(&["--import-certbot", le.to_str().unwrap()]);
    again.expect(0);
    assert!(
        again
            .stdout()
            .contains("site.example: already in domains.txt"),
        "{again:?}"
    );

    // And a forced renewal works with desiccant's own account, into the imported layout.
    let forced = env.run(&["--cron", "--force", "--accept-terms"]);
    forced.expect(0);
    check_live_set(&env.cert_dir("rsa.example"), &["rsa.example"], &root);
}

#[test]
fn a_failed_deploy_hook_is_run_again_by_the_next_run_without_a_new_order() {
    let pebble = Pebble::start_without_refused_nonces();
    let env = Env::new(&pebble, "DEPLOY_HOOK='exit 3'\n");
    env.domains("deploy.example\n");
    let run = env.run(&["--cron", "--accept-terms"]);
    run.expect(1);
    assert!(
        run.stderr()
            .contains("DEPLOY_HOOK failed: exited with exit status: 3")
            && run.stderr().contains("the next run runs DEPLOY_HOOK again"),
        "{run:?}"
    );
    let (hook, record) = certbot_hook(env.path(), Publish::File(&pebble.webroot));
    env.write_config(&format!("DEPLOY_HOOK='{} deploy'\n", hook.display()));
    let requests = pebble.requests_counted();
    env.run(&["--cron"]).expect(0);
    assert_eq!(
        calls(&record),
        [format!(
            "deploy lineage={} domains=deploy.example",
            env.cert_dir("deploy.example").display()
        )]
    );
    assert!(
        !pebble
            .requests_after(requests)
            .iter()
            .any(|r| r.contains("new-order")),
        "{:?}",
        pebble.requests_after(requests)
    );
}
