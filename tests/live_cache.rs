//! The cache of what was read of every live certificate (`state/.live.json`): an unchanged
//! `cert.pem` is not parsed again, a changed one always is, and a cache file that someone else
//! could have written, or that cannot be read, counts for nothing and is written anew.
//!
//! The certificates are made here (rcgen, one P-256 key) in dehydrated's layout, as the noop
//! benchmark makes them: `--cron` writes the cache, `--check` reads it; no CA listens. Runs are
//! an hour ahead (faketime), so that the files count as settled: one written in the same
//! second as a read is never cached.

mod common;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use common::{Env, Run, TempDir};

const NAME: &str = "a.example";
/// The set's timestamp in the file names.
const TS: i64 = 1_700_000_000;

struct Lab {
    env: Env,
    _webroot: TempDir,
    key: rcgen::KeyPair,
}

impl Lab {
    fn new() -> Lab {
        let webroot = TempDir::new("webroot");
        let env = Env::for_ca(
            "https://127.0.0.1:9/dir",
            Path::new("/etc/ssl/certs/ca-certificates.crt"),
            webroot.path(),
            "KEY_ALGO=prime256v1\n",
        );
        env.domains(&format!("{NAME}\n"));
        // A CA known not to offer renewal information: a run with nothing due asks it nothing.
        fs::create_dir_all(env.path().join("state")).unwrap();
        fs::write(
            env.path().join("state/.ca.json"),
            "{\"directory\": \"https://127.0.0.1:9/dir\", \"renewal_info\": false}\n",
        )
        .unwrap();
        fs::create_dir_all(env.cert_dir(NAME)).unwrap();
        std::os::unix::fs::symlink(
            format!("cert-{TS}.pem"),
            env.cert_dir(NAME).join("cert.pem"),
        )
        .unwrap();
        Lab {
            env,
            _webroot: webroot,
            key: rcgen::KeyPair::generate().unwrap(),
        }
    }

    /// A PEM certificate for [`NAME`] issued ten days ago with `days_left` to go, of exactly
    /// `size` bytes when given (ECDSA signatures vary in length: made again until it fits).
    fn cert(&self, days_left: i64, size: Option<usize>) -> String {
        self.cert_for(NAME, days_left, size)
    }

    fn cert_for(&self, name: &str, days_left: i64, size: Option<usize>) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let at = |secs: i64| time::OffsetDateTime::from_unix_timestamp(secs).unwrap();
        for _ in 0..200 {
            let mut params = rcgen::CertificateParams::new(vec![name.to_string()]).unwrap();
            params.not_before = at(now - 10 * 86400);
            params.not_after = at(now + days_left * 86400);
            params.serial_number = Some(rcgen::SerialNumber::from_slice(&[1, 2, 3, 4]));
            let pem = params.self_signed(&self.key).unwrap().pem();
            if size.is_none_or(|s| s == pem.len()) {
                return pem;
            }
        }
        panic!("no certificate of {size:?} bytes");
    }

    fn live(&self) -> std::path::PathBuf {
        self.env.cert_dir(NAME).join(format!("cert-{TS}.pem"))
    }

    fn cache(&self) -> std::path::PathBuf {
        self.env.path().join("state/.live.json")
    }

    /// A `--cron` run, which keeps what it read in the cache (a due certificate's renewal
    /// fails at once: no CA listens), then `--check --json`, which reads the cache and writes
    /// nothing; both an hour ahead: (the check, the certificate's days left).
    fn check(&self) -> (Run, i64) {
        self.env.run_at("+1h", &["--cron"]);
        let run = self.env.run_at("+1h", &["--check", "--json"]);
        let report: serde_json::Value =
            serde_json::from_str(&run.stdout()).unwrap_or_else(|e| panic!("{e}: {run:?}"));
        let days = report["certificates"][0]["days_left"]
            .as_i64()
            .unwrap_or_else(|| panic!("no days_left: {run:?}"));
        (run, days)
    }

    /// The cache's record of [`NAME`], read as JSON.
    fn record(&self) -> serde_json::Value {
        let text = fs::read_to_string(self.cache()).unwrap();
        let cache: serde_json::Value = serde_json::from_str(&text).unwrap();
        cache["certs"][NAME].clone()
    }
}

#[test]
fn a_changed_certificate_is_read_again_and_the_decision_follows_it() {
    let lab = Lab::new();
    let valid = lab.cert(80, None);
    fs::write(lab.live(), &valid).unwrap();
    let (run, days) = lab.check();
    run.expect(0);
    assert!((79..=80).contains(&days), "{run:?}");
    // What was read is kept, for this user alone.
    assert_eq!(fs::metadata(lab.cache()).unwrap().mode() & 0o777, 0o600);
    let before = fs::metadata(lab.live()).unwrap();
    assert_eq!(lab.record()["file"]["ino"], before.ino());

    // Another file in its place, of the same size and modification time: a certificate five
    // days from its end, so inside its renewal window.
    let due = lab.cert(5, Some(valid.len()));
    let other = lab.env.cert_dir(NAME).join("new.pem");
    fs::write(&other, &due).unwrap();
    fs::File::options()
        .write(true)
        .open(&other)
        .unwrap()
        .set_modified(before.modified().unwrap())
        .unwrap();
    fs::rename(&other, lab.live()).unwrap();
    let after = fs::metadata(lab.live()).unwrap();
    assert_eq!((after.len(), after.mtime()), (before.len(), before.mtime()));
    assert_ne!(after.ino(), before.ino());
    let (run, days) = lab.check();
    run.expect(1);
    assert!((4..=5).contains(&days), "{run:?}");
    assert!(run.stdout().contains("due for renewal"), "{run:?}");

    // The same file written over in place, its size and modification time set back: only
    // its change time tells, and it is read again.
    let again = lab.cert(80, Some(valid.len()));
    let modified = after.modified().unwrap();
    let mut file = fs::File::options().write(true).open(lab.live()).unwrap();
    std::io::Write::write_all(&mut file, again.as_bytes()).unwrap();
    file.set_modified(modified).unwrap();
    drop(file);
    let rewritten = fs::metadata(lab.live()).unwrap();
    assert_eq!(
        (rewritten.ino(), rewritten.len(), rewritten.mtime()),
        (after.ino(), after.len(), after.mtime())
    );
    let (run, days) = lab.check();
    run.expect(0);
    assert!((79..=80).contains(&days), "{run:?}");
}

#[test]
fn a_cache_file_written_by_someone_else_is_ignored() {
    let lab = Lab::new();
    fs::write(lab.live(), lab.cert(80, None)).unwrap();
    lab.check().0.expect(0);

    // The cache is what is used for an unchanged file: one that says five days is believed
    // while it is this user's alone...
    let text = fs::read_to_string(lab.cache()).unwrap();
    let not_after = lab.record()["not_after"].as_i64().unwrap();
    let forged = text.replace(
        &format!("\"not_after\":{not_after}"),
        &format!("\"not_after\":{}", not_after - 75 * 86400),
    );
    assert_ne!(forged, text);
    fs::write(lab.cache(), &forged).unwrap();
    let (run, days) = lab.check();
    run.expect(1);
    assert!((4..=5).contains(&days), "{run:?}");

    // ...and counts for nothing when others may write it, or another user owns it: the
    // certificate is read, and the cache written anew, this user's alone.
    for who in ["group and others may write it", "another user owns it"] {
        fs::write(lab.cache(), &forged).unwrap();
        if who.starts_with("group") {
            fs::set_permissions(lab.cache(), fs::Permissions::from_mode(0o666)).unwrap();
        } else {
            std::os::unix::fs::chown(lab.cache(), Some(65534), Some(65534)).unwrap();
        }
        let (run, days) = lab.check();
        run.expect(0);
        assert!((79..=80).contains(&days), "{who}: {run:?}");
        let meta = fs::metadata(lab.cache()).unwrap();
        assert_eq!(meta.mode() & 0o777, 0o600, "{who}");
        assert_eq!(meta.uid(), euid(), "{who}");
        assert_eq!(lab.record()["not_after"], not_after, "{who}");
    }
}

#[test]
fn a_corrupt_cache_file_is_ignored_and_written_anew() {
    let lab = Lab::new();
    fs::write(lab.live(), lab.cert(80, None)).unwrap();
    lab.check().0.expect(0);
    let not_after = lab.record()["not_after"].clone();

    for junk in ["{ not json", "{\"certs\":{\"a.example\":{\"file\":7}}}", ""] {
        fs::write(lab.cache(), junk).unwrap();
        let (run, days) = lab.check();
        run.expect(0);
        assert!((79..=80).contains(&days), "{junk:?}: {run:?}");
        assert_eq!(lab.record()["not_after"], not_after, "{junk:?}");
    }
}

#[test]
fn a_daily_run_with_nothing_due_keeps_the_cache_of_domains_txt_only() {
    let lab = Lab::new();
    fs::write(lab.live(), lab.cert(80, None)).unwrap();
    let gone = lab.env.cert_dir("gone.example");
    fs::create_dir_all(&gone).unwrap();
    fs::write(
        gone.join(format!("cert-{TS}.pem")),
        lab.cert_for("gone.example", 80, None),
    )
    .unwrap();
    std::os::unix::fs::symlink(format!("cert-{TS}.pem"), gone.join("cert.pem")).unwrap();
    lab.env.domains(&format!("{NAME}\ngone.example\n"));
    let run = lab.env.run_at("+1h", &["--cron"]);
    run.expect(0);
    assert_eq!(run.stdout(), "", "{run:?}");
    let text = fs::read_to_string(lab.cache()).unwrap();
    assert!(text.contains("\"gone.example\""), "{text}");

    // The certificate leaves domains.txt: its record leaves the cache with the next run.
    lab.env.domains(&format!("{NAME}\n"));
    lab.env.run_at("+1h", &["--cron"]).expect(0);
    let text = fs::read_to_string(lab.cache()).unwrap();
    assert!(!text.contains("gone.example"), "{text}");
    assert!(text.contains("\"a.example\""), "{text}");
    // Nothing changed since: the cache is left as it is (a new one would be a new file).
    let written = fs::metadata(lab.cache()).unwrap().ino();
    lab.env.run_at("+1h", &["--cron"]).expect(0);
    assert_eq!(fs::metadata(lab.cache()).unwrap().ino(), written);
}

fn euid() -> u32 {
    // SAFETY: geteuid cannot fail and touches no memory.
    unsafe { libc::geteuid() }
}

/// A run looks at a certificate folder's links only when the folder changed since a run found
/// it whole: links left between two sets after that (a dehydrated killed in the middle of its
/// `ln -sf`) change the folder, and the next run still moves them all to the newest set.
#[test]
fn links_mixed_after_a_run_found_the_folder_whole_are_repaired() {
    let lab = Lab::new();
    let dir = lab.env.cert_dir(NAME);
    let newer = TS + 100;
    for ts in [TS, newer] {
        for (kind, ext) in [("chain", "pem"), ("fullchain", "pem"), ("cert", "csr")] {
            fs::write(dir.join(format!("{kind}-{ts}.{ext}")), "x\n").unwrap();
        }
        fs::write(dir.join(format!("cert-{ts}.pem")), lab.cert(80, None)).unwrap();
    }
    let link = |kind: &str, ext: &str, ts: i64| {
        let tmp = dir.join(format!(".{kind}.{ext}.new"));
        std::os::unix::fs::symlink(format!("{kind}-{ts}.{ext}"), &tmp).unwrap();
        fs::rename(&tmp, dir.join(format!("{kind}.{ext}"))).unwrap();
    };
    for (kind, ext) in [("chain", "pem"), ("fullchain", "pem"), ("cert", "csr")] {
        link(kind, ext, TS);
    }
    link("cert", "pem", TS);
    let clean = lab.env.run_at("+1h", &["--cron"]);
    clean.expect(0);
    assert_eq!(clean.stderr(), "", "{clean:?}");
    let text = fs::read_to_string(lab.cache()).unwrap();
    assert!(text.contains("\"folders\""), "{text}");

    // Half of a switch to the newer set.
    link("chain", "pem", newer);
    link("fullchain", "pem", newer);
    let run = lab.env.run_at("+1h", &["--cron"]);
    run.expect(0);
    assert!(
        run.stderr()
            .contains("an interrupted run left the links pointing at two sets"),
        "{run:?}"
    );
    for (kind, ext) in [
        ("chain", "pem"),
        ("fullchain", "pem"),
        ("cert", "csr"),
        ("cert", "pem"),
    ] {
        assert_eq!(
            fs::read_link(dir.join(format!("{kind}.{ext}"))).unwrap(),
            Path::new(&format!("{kind}-{newer}.{ext}")),
        );
    }
}
