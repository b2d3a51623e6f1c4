//! A local user against a root run: each test makes an unprivileged user (`useradd`), does
//! the attacker's steps as that user (`setpriv`), then runs desiccant as root and checks what
//! an admin would: which program ran, which key went where, the modes of the folders, what was
//! printed. The users are removed at the end of each test. Needs root, as CI runs.

mod common;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

use common::user::User;
use common::{Env, Pebble, TempDir, mode};

/// A hook script at `path` that notes each event it is run for in `marker`.
fn marker_hook(path: &Path, marker: &Path) {
    fs::write(
        path,
        format!("#!/bin/sh\necho \"$1\" >> '{}'\n", marker.display()),
    )
    .unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
}

/// What the refusal of `path`, owned by `user`, says.
fn owned_by(path: &Path, user: &User) -> String {
    format!(
        "{} is owned by another user (owner {}",
        path.display(),
        user.name
    )
}

#[test]
fn a_cert_owner_cannot_make_a_root_run_obey_its_config() {
    let attacker = User::new("owner-cfg");
    let pebble = Pebble::start();
    let env = Env::new(&pebble, &format!("CERT_OWNER={}\n", attacker.name));
    env.domains("owner.example\n");
    env.run(&["--cron", "--accept-terms"]).expect(0);
    let dir = env.cert_dir("owner.example");

    // The attacker's hook, in a folder of its own; it leaves a marker when run.
    let own = attacker.folder("attacker");
    let hook = own.path().join("hook");
    let ran = own.path().join("ran");
    marker_hook(&hook, &ran);
    std::os::unix::fs::chown(&hook, Some(attacker.uid), Some(attacker.gid)).unwrap();
    // Refused by the kernel now that the folder is root's; obeyed before.
    let _ = attacker.sh(&format!(
        "printf 'HOOK={}\\n' > {}/config",
        hook.display(),
        dir.display()
    ));
    let run = env.run(&["--cron"]);
    assert!(!ran.exists(), "root ran the CERT_OWNER's hook: {run:?}");
    run.expect(0);
    assert_eq!(
        fs::metadata(&dir).unwrap().uid(),
        0,
        "the folder stays root's"
    );

    // What an earlier version left: the folder given to CERT_OWNER, a config of its own in it.
    std::os::unix::fs::chown(&dir, Some(attacker.uid), Some(attacker.gid)).unwrap();
    let out = attacker.sh(&format!(
        "printf 'HOOK={}\\n' > {}/config",
        hook.display(),
        dir.display()
    ));
    assert!(out.status.success(), "{out:?}");
    let run = env.run(&["--cron"]);
    assert!(!ran.exists(), "root ran the CERT_OWNER's hook: {run:?}");
    // That certificate's own config: it fails alone.
    run.expect(1);
    let config = dir.join("config");
    assert!(
        run.stderr().contains(&owned_by(&config, &attacker)),
        "{run:?}"
    );
    let meta = fs::metadata(&dir).unwrap();
    assert_eq!(meta.uid(), 0, "the folder was taken back");
    assert_eq!(meta.mode() & 0o022, 0);

    // A config root wrote that names a hook another user can change: refused too.
    fs::remove_file(&config).unwrap();
    fs::write(&config, format!("HOOK={}\n", hook.display())).unwrap();
    let run = env.run(&["--cron"]);
    assert!(!ran.exists(), "root ran the CERT_OWNER's hook: {run:?}");
    run.expect(1);
    assert!(
        run.stderr()
            .contains(&format!("{}: refused as the hook", hook.display()))
            && run.stderr().contains(&owned_by(own.path(), &attacker)),
        "{run:?}"
    );

    // The honest set-up: a root-owned hook in a root-owned folder runs.
    let admin = TempDir::new("admin-hook");
    let good = admin.path().join("hook");
    let good_ran = admin.path().join("ran");
    marker_hook(&good, &good_ran);
    fs::write(&config, format!("HOOK={}\n", good.display())).unwrap();
    env.run(&["--cron"]).expect(0);
    assert!(
        common::read(&good_ran).contains("unchanged_cert"),
        "the admin's hook did not run"
    );
}

#[test]
fn a_cert_owner_cannot_get_a_root_only_key_as_its_certificate_key() {
    let attacker = User::new("owner-key");
    let pebble = Pebble::start();
    let env = Env::new(
        &pebble,
        &format!("CERT_OWNER={}\nPRIVATE_KEY_RENEW=no\n", attacker.name),
    );
    env.domains("keep.example\n");
    env.run(&["--cron", "--accept-terms"]).expect(0);
    let dir = env.cert_dir("keep.example");
    // Another service's key, root's alone, of the type the certificate uses. (The account key
    // is the first such key at hand; Pebble refuses a CSR with it, not every CA does.)
    let secret = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384)
        .unwrap()
        .serialize_pem();
    let other = env.path().join("other-service.key");
    fs::write(&other, &secret).unwrap();
    fs::set_permissions(&other, fs::Permissions::from_mode(0o600)).unwrap();

    // As an earlier version left it, the folder is the owner's: it points privkey.pem at that
    // key and removes cert.pem so that the next run renews.
    std::os::unix::fs::chown(&dir, Some(attacker.uid), Some(attacker.gid)).unwrap();
    let out = attacker.sh(&format!(
        "cd {} && ln -sfn {} privkey.pem && rm cert.pem",
        dir.display(),
        other.display()
    ));
    assert!(out.status.success(), "{out:?}");
    let run = env.run(&["--cron"]);
    for entry in fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if fs::symlink_metadata(&path).unwrap().is_file() {
            assert_ne!(
                fs::read_to_string(&path).unwrap_or_default(),
                secret,
                "the root-only key became the certificate's key, given to the CERT_OWNER, \
                 in {}: {run:?}",
                path.display()
            );
        }
    }
    run.expect(0);
    assert!(
        run.stderr().contains("the key to keep is not used"),
        "{run:?}"
    );
    // The owner reads its new key.
    let out = attacker.sh(&format!("cat {}", dir.join("privkey.pem").display()));
    assert!(out.status.success(), "{out:?}");
}

/// Runs `cmd` with umask `mask`.
fn with_umask(cmd: &mut Command, mask: u32) -> std::process::Output {
    // SAFETY: umask is async-signal-safe and only changes the child.
    unsafe {
        cmd.pre_exec(move || {
            libc::umask(mask as libc::mode_t);
            Ok(())
        });
    }
    cmd.output().unwrap()
}

#[test]
fn folders_get_their_modes_whatever_the_umask() {
    let pebble = Pebble::start();
    let env = Env::new(&pebble, "LOCKFILE=\"$BASEDIR/run/lock\"\n");
    env.domains("umask.example\n");
    for args in [
        &["--cron", "--accept-terms"][..],
        &["--cron", "--force"],
        &["--cleanup"],
    ] {
        let out = with_umask(&mut env.command(args), 0o000);
        assert!(out.status.success(), "{args:?}: {out:?}");
    }
    let base = env.path();
    for folder in [
        base.join("certs"),
        env.cert_dir("umask.example"),
        base.join("accounts"),
        env.account_dir(),
        base.join("state"),
        base.join("run"),
        base.join("archive"),
        base.join("archive/umask.example"),
        base.join("chains"),
    ] {
        let m = mode(&folder);
        assert_eq!(m & 0o022, 0, "{} is {m:04o}", folder.display());
    }
}

#[test]
fn a_cert_owner_reads_its_files_under_the_units_umask() {
    let owner = User::new("owner-read");
    let pebble = Pebble::start();
    let env = Env::new(&pebble, &format!("CERT_OWNER={}\n", owner.name));
    env.domains("read.example\n");
    let out = with_umask(&mut env.command(&["--cron", "--accept-terms"]), 0o077);
    assert!(out.status.success(), "{out:?}");
    let dir = env.cert_dir("read.example");
    for file in ["fullchain.pem", "privkey.pem"] {
        let out = owner.sh(&format!("cat {} >/dev/null", dir.join(file).display()));
        assert!(out.status.success(), "{file}: {out:?}");
    }
    // Others get through the folders but cannot read the key.
    let other = User::new("other-read");
    let out = other.sh(&format!("cat {}", dir.join("privkey.pem").display()));
    assert!(!out.status.success(), "{out:?}");
}

#[test]
fn a_planted_lock_file_is_never_followed_written_or_shown() {
    let attacker = User::new("lock");
    let env = Env::for_ca(
        "https://127.0.0.1:9/dir",
        Path::new("/etc/ssl/certs/ca-certificates.crt"),
        Path::new("/nonexistent"),
        "",
    );
    let lockdir = attacker.folder("lockdir");
    let lock = lockdir.path().join("lock");
    env.write_config(&format!("LOCKFILE={}\n", lock.display()));
    env.domains("lock.example\n");
    // A file only root may read.
    let secret = env.path().join("secret");
    for text in ["TOPSECRET first line\n", "4242\n"] {
        fs::write(&secret, text).unwrap();
        fs::set_permissions(&secret, fs::Permissions::from_mode(0o600)).unwrap();
        let out = attacker.sh(&format!("ln -sfn {} {}", secret.display(), lock.display()));
        assert!(out.status.success(), "{out:?}");
        let run = env.run(&["--cleanup"]);
        assert_eq!(fs::read_to_string(&secret).unwrap(), text, "{run:?}");
        assert!(!run.stderr().contains("TOPSECRET"), "{run:?}");
        assert_ne!(run.code(), 0, "{run:?}");
        assert!(run.stderr().contains("is a symlink"), "{run:?}");
    }
    // A regular file the attacker owns: not written, its text not shown.
    let out = attacker.sh(&format!(
        "rm -f {lock} && echo TOPSECRET > {lock}",
        lock = lock.display()
    ));
    assert!(out.status.success(), "{out:?}");
    let run = env.run(&["--cleanup"]);
    assert!(!run.stderr().contains("TOPSECRET"), "{run:?}");
    assert_ne!(run.code(), 0, "{run:?}");
    assert_eq!(common::read(&lock), "TOPSECRET\n");
}

#[test]
fn config_domains_txt_and_config_d_others_can_write_are_refused() {
    let attacker = User::new("files");
    let env = Env::for_ca(
        "https://127.0.0.1:9/dir",
        Path::new("/etc/ssl/certs/ca-certificates.crt"),
        Path::new("/nonexistent"),
        "",
    );
    env.domains("files.example\n");
    let check = |what: &str, path: &Path| {
        let run = env.run(&["--env"]);
        run.expect(78);
        assert!(
            run.stderr().contains(&path.display().to_string()) && run.stderr().contains(what),
            "{run:?}"
        );
    };
    // The config writable by others.
    let config = env.path().join("config");
    fs::set_permissions(&config, fs::Permissions::from_mode(0o666)).unwrap();
    check("mode 0666", &config);
    fs::set_permissions(&config, fs::Permissions::from_mode(0o644)).unwrap();
    env.run(&["--env"]).expect(0);

    // A CONFIG_D folder the attacker owns.
    let conf_d = attacker.folder("conf-d");
    env.write_config(&format!("CONFIG_D={}\n", conf_d.path().display()));
    check(&owned_by(conf_d.path(), &attacker), conf_d.path());

    // domains.txt given to the attacker; --check reads it.
    env.write_config("");
    let domains = env.path().join("domains.txt");
    std::os::unix::fs::chown(&domains, Some(attacker.uid), None).unwrap();
    let run = env.run(&["--cron"]);
    run.expect(78);
    assert!(
        run.stderr().contains(&owned_by(&domains, &attacker)),
        "{run:?}"
    );
    // DOMAINS_D in a folder the attacker can write.
    std::os::unix::fs::chown(&domains, Some(0), None).unwrap();
    let domains_d = attacker.folder("domains-d");
    fs::write(domains_d.path().join("files.example"), "KEY_ALGO=rsa\n").unwrap();
    env.write_config(&format!("DOMAINS_D={}\n", domains_d.path().display()));
    let run = env.run(&["--cron"]);
    run.expect(78);
    assert!(
        run.stderr()
            .contains(&owned_by(domains_d.path(), &attacker)),
        "{run:?}"
    );
}

#[test]
fn a_webroot_of_the_web_servers_user_still_works() {
    let web = User::new("web");
    let pebble = Pebble::start();
    std::os::unix::fs::chown(&pebble.webroot, Some(web.uid), Some(web.gid)).unwrap();
    let env = Env::new(&pebble, "");
    env.domains("web.example\n");
    env.run(&["--cron", "--accept-terms"]).expect(0);
    common::check_live_set(
        &env.cert_dir("web.example"),
        &["web.example"],
        &pebble.root_der(),
    );
}

/// The web server's user owns the site and swaps its `acme-challenge` folder for a link to a
/// folder of root's: the root run must not write a challenge file there. A hook of root's
/// notes what that folder holds while the challenges are in place.
#[test]
fn the_web_servers_user_cannot_redirect_challenge_files_through_a_link() {
    let web = User::new("webln");
    let pebble = Pebble::start();
    let env = Env::new(&pebble, "");
    let site = web.folder("site");
    let victim = TempDir::new("victim");
    fs::set_permissions(victim.path(), fs::Permissions::from_mode(0o700)).unwrap();
    let wellknown = site.path().join(".well-known/acme-challenge");
    let out = web.sh(&format!(
        "mkdir -p '{w}' && rmdir '{w}' && ln -s '{v}' '{w}'",
        w = wellknown.display(),
        v = victim.path().display()
    ));
    assert!(out.status.success(), "{out:?}");
    let seen = env.path().join("seen");
    let hook = env.path().join("hook");
    common::script(
        &hook,
        &format!(
            "[ \"$1\" = deploy_challenge ] && ls -A '{}' >> '{}'\nexit 0",
            victim.path().display(),
            seen.display()
        ),
    );
    env.write_config(&format!(
        "WELLKNOWN={}\nHOOK={}\n",
        wellknown.display(),
        hook.display()
    ));
    env.domains("linked.example\n");
    let run = env.run(&["--cron", "--accept-terms"]);
    let noted = fs::read_to_string(&seen).unwrap_or_default();
    assert!(
        noted.is_empty(),
        "a challenge file was written into root's folder: {noted}"
    );
    assert_eq!(fs::read_dir(victim.path()).unwrap().count(), 0);
    assert_ne!(run.code(), 0, "{run:?}");
    assert!(
        run.stderr().contains("is not followed"),
        "the link is not named as the reason:{run:?}"
    );
}

/// The `CERT_OWNER` user owns the certificate files and so can write them: a forged
/// certificate valid for a century, or a file grown to 2 GiB, must not make a root run keep a
/// certificate it did not issue, nor read the whole file.
#[test]
fn a_cert_owner_cannot_forge_the_certificate_the_renewal_decision_reads() {
    let owner = User::new("forger");
    let pebble = Pebble::start();
    let env = Env::new(&pebble, &format!("CERT_OWNER={}\n", owner.name));
    env.domains("forged.example\n");
    env.run(&["--cron", "--accept-terms"]).expect(0);
    let live = env.cert_dir("forged.example").join("cert.pem");
    let target = fs::canonicalize(&live).unwrap();
    let decision = |env: &Env| -> String {
        let run = env.run(&["--check", "--json"]);
        let report: serde_json::Value = serde_json::from_str(&run.stdout())
            .unwrap_or_else(|e| panic!("no JSON report ({e}): {run:?}"));
        report["certificates"][0]["decision"]
            .as_str()
            .unwrap_or_else(|| panic!("no decision: {run:?}"))
            .to_string()
    };
    assert_eq!(decision(&env), "keep");
    let out = owner.sh(&format!(
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 36500 \
         -subj /CN=forged.example -addext subjectAltName=DNS:forged.example \
         -keyout /dev/null -out {} 2>&1",
        target.display()
    ));
    assert!(out.status.success(), "{out:?}");
    assert_eq!(decision(&env), "unreadable", "a forged certificate is kept");
    let out = owner.sh(&format!("truncate -s 2G {}", target.display()));
    assert!(out.status.success(), "{out:?}");
    let run = env.run(&["--check"]);
    assert!(run.stdout().contains("over 1 MiB"), "{run:?}");
    // The next run replaces it with one the CA issued.
    env.run(&["--cron"]).expect(0);
    common::check_live_set(
        &env.cert_dir("forged.example"),
        &["forged.example"],
        &pebble.root_der(),
    );
}
