//! Unprivileged users for the tests that run desiccant, or an attacker's commands, as
//! someone other than root (useradd, then setpriv); each is removed when its test ends.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::process::Command;

use super::{Env, TempDir, reachable_by_others};

/// An unprivileged user made for one test and removed when the test ends. One left by an
/// earlier run that crashed is used as it is.
pub struct User {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
}

impl User {
    pub fn new(tag: &str) -> User {
        assert_eq!(
            fs::metadata("/proc/self").unwrap().uid(),
            0,
            "these tests make users and need root"
        );
        let name = format!("dsc-{tag}");
        let status = Command::new("useradd")
            .args(["--no-create-home", "--user-group", "--shell"])
            .args(["/usr/sbin/nologin", &name])
            .status()
            .unwrap();
        // 9: the user exists already (a crashed earlier run).
        assert!(
            status.success() || status.code() == Some(9),
            "useradd {name}: {status}"
        );
        reachable_by_others(&std::env::temp_dir());
        let id = |flag: &str| -> u32 {
            let out = Command::new("id").args([flag, &name]).output().unwrap();
            String::from_utf8(out.stdout)
                .unwrap()
                .trim()
                .parse()
                .unwrap()
        };
        User {
            uid: id("-u"),
            gid: id("-g"),
            name,
        }
    }

    /// Runs `script` with `sh -c` as this user, no other groups; its exit status.
    pub fn sh(&self, script: &str) -> std::process::Output {
        Command::new("setpriv")
            .arg(format!("--reuid={}", self.uid))
            .arg(format!("--regid={}", self.gid))
            .args(["--clear-groups", "sh", "-c", script])
            .output()
            .unwrap()
    }

    /// Runs desiccant with `--config BASEDIR/config` and `args` as this user, no other groups.
    pub fn run(&self, env: &Env, args: &[&str]) -> super::Run {
        let output = std::process::Command::new("setpriv")
            .arg(format!("--reuid={}", self.uid))
            .arg(format!("--regid={}", self.gid))
            .args([
                "--clear-groups",
                env!("CARGO_BIN_EXE_desiccant"),
                "--config",
            ])
            .arg(env.path().join("config"))
            .args(args)
            .env_remove("JOURNAL_STREAM")
            .current_dir("/")
            .output()
            .unwrap();
        super::Run {
            args: args.iter().map(|s| s.to_string()).collect(),
            output,
        }
    }

    /// A folder of this user's own (0755), removed with the test.
    pub fn folder(&self, tag: &str) -> TempDir {
        let dir = TempDir::new(tag);
        std::os::unix::fs::chown(dir.path(), Some(self.uid), Some(self.gid)).unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        dir
    }
}

impl Drop for User {
    fn drop(&mut self) {
        let _ = Command::new("userdel").arg(&self.name).status();
    }
}
