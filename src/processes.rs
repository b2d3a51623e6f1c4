//! The dehydrated processes running on this host, and the lock file each one takes: what tells
//! a lock file a crashed dehydrated left from one a running dehydrated holds.
//!
//! dehydrated is a bash script: a process runs it when its `argv[0]` ends in `dehydrated`, or
//! when `argv[0]` is a shell and its first argument that is not an option ends in
//! `dehydrated`. Its lock file is found as dehydrated finds it: the config of `--config`/`-f`
//! (relative to the process's folder), else the first `config` of `/etc/dehydrated`,
//! `/usr/local/etc/dehydrated`, its folder and the script's folder; then `LOCKFILE` of that
//! config, else `BASEDIR/lock`, with `--lock-suffix`; none with `--no-lock`. A process whose
//! lock file cannot be told (its config unreadable to us, its folder hidden) may hold any.

use std::ffi::{OsStr, OsString};
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::config::{Config, DEHYDRATED_CONFIG_DIRS, LoadOptions};

/// Shells that run a script given as their first argument.
const SHELLS: &[&str] = &["bash", "sh", "dash", "ksh", "zsh"];

/// The id of a running dehydrated process that holds, or may hold, the lock file `lock`; None
/// when no dehydrated process runs on it.
pub fn dehydrated_on(lock: &Path) -> Option<u32> {
    let ours = std::process::id();
    let own_exe = fs::read_link("/proc/self/exe").ok();
    let entries = fs::read_dir("/proc").ok()?;
    entries.filter_map(|e| e.ok()).find_map(|entry| {
        let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
        let dir = entry.path();
        if pid == ours || (own_exe.is_some() && fs::read_link(dir.join("exe")).ok() == own_exe) {
            return None;
        }
        let cmdline = fs::read(dir.join("cmdline")).ok()?;
        let argv: Vec<&OsStr> = cmdline
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(OsStr::from_bytes)
            .collect();
        let (script, args) = dehydrated_script(&argv)?;
        let cwd = fs::read_link(dir.join("cwd")).ok();
        match lock_of(script, args, cwd.as_deref()) {
            Taken::None => None,
            Taken::At(path) if !same_file(&path, lock) => None,
            Taken::At(_) | Taken::Unknown => Some(pid),
        }
    })
}

/// The dehydrated script `argv` runs and the arguments it is given, when it runs one.
fn dehydrated_script<'a>(argv: &'a [&'a OsStr]) -> Option<(&'a OsStr, &'a [&'a OsStr])> {
    let base = |a: &OsStr| {
        Path::new(a)
            .file_name()
            .map(|n| n.to_os_string())
            .unwrap_or_default()
    };
    let (first, rest) = argv.split_first()?;
    if base(first) == "dehydrated" {
        return Some((first, rest));
    }
    let shell = base(first);
    let shell = shell.to_string_lossy();
    if !SHELLS.contains(&shell.trim_start_matches('-')) {
        return None;
    }
    let at = rest.iter().position(|a| !a.as_bytes().starts_with(b"-"))?;
    (base(rest[at]) == "dehydrated").then(|| (rest[at], &rest[at + 1..]))
}

/// The lock file a dehydrated process takes.
#[derive(Debug, PartialEq, Eq)]
enum Taken {
    /// `--no-lock`.
    None,
    At(PathBuf),
    /// It cannot be told.
    Unknown,
}

/// The lock file of dehydrated run as `script` with `args` in the folder `cwd`.
fn lock_of(script: &OsStr, args: &[&OsStr], cwd: Option<&Path>) -> Taken {
    let mut config = None;
    let mut suffix = None;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.to_str() {
            Some("--no-lock" | "-n") => return Taken::None,
            Some("--config" | "-f") => config = args.next().map(PathBuf::from),
            Some("--lock-suffix") => suffix = args.next().map(|a| a.to_string_lossy().into()),
            _ => {}
        }
    }
    let absolute = |p: PathBuf| match (p.is_absolute(), cwd) {
        (true, _) => Some(p),
        (false, Some(cwd)) => Some(cwd.join(p)),
        (false, None) => None,
    };
    let script_dir = absolute(PathBuf::from(script))
        .and_then(|s| fs::canonicalize(s).ok())
        .and_then(|s| s.parent().map(Path::to_path_buf));
    let config = match config {
        Some(path) => match absolute(path) {
            Some(path) => path,
            None => return Taken::Unknown,
        },
        None => {
            let mut dirs: Vec<Option<PathBuf>> = DEHYDRATED_CONFIG_DIRS
                .iter()
                .map(|d| Some(PathBuf::from(d)))
                .collect();
            dirs.push(cwd.map(Path::to_path_buf));
            dirs.push(script_dir.clone());
            let mut found = None;
            for dir in dirs {
                // A folder we cannot see may hold the config it reads.
                let Some(dir) = dir else {
                    return Taken::Unknown;
                };
                if dir.join("config").is_file() {
                    found = Some(dir.join("config"));
                    break;
                }
            }
            match (found, script_dir) {
                (Some(config), _) => config,
                // No config: BASEDIR is the script's folder.
                (None, Some(dir)) => return Taken::At(with_suffix(dir.join("lock"), suffix)),
                (None, None) => return Taken::Unknown,
            }
        }
    };
    let opts = LoadOptions {
        config: Some(config),
        overrides: Vec::new(),
        no_lock: false,
        lock_suffix: suffix,
    };
    match Config::load(&opts, &|_| None) {
        Ok(config) => config.lockfile.map_or(Taken::None, Taken::At),
        Err(_) => Taken::Unknown,
    }
}

fn with_suffix(lock: PathBuf, suffix: Option<String>) -> PathBuf {
    match suffix {
        None => lock,
        Some(s) => {
            let mut name = OsString::from(lock.as_os_str());
            name.push(format!("-{s}"));
            PathBuf::from(name)
        }
    }
}

/// Whether `a` and `b` name the same file: the same name in the same folder, links resolved.
fn same_file(a: &Path, b: &Path) -> bool {
    let key = |p: &Path| {
        let dir = p.parent().filter(|d| !d.as_os_str().is_empty())?;
        Some((fs::canonicalize(dir).ok()?, p.file_name()?.to_os_string()))
    };
    match (key(a), key(b)) {
        (Some(a), Some(b)) => a == b,
        // Not comparable: it may be the same.
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(words: &[&'static str]) -> Vec<&'static OsStr> {
        words.iter().map(|w| OsStr::new(*w)).collect()
    }

    #[test]
    fn a_dehydrated_process_is_known_by_its_arguments() {
        let script = |words: &[&'static str]| {
            let v = argv(words);
            dehydrated_script(&v).map(|(s, args)| (s.to_os_string(), args.len()))
        };
        assert_eq!(
            script(&["bash", "/usr/bin/dehydrated", "--cron"]),
            Some(("/usr/bin/dehydrated".into(), 1))
        );
        assert_eq!(
            script(&["/bin/bash", "-x", "./dehydrated", "-c", "-f", "x"]),
            Some(("./dehydrated".into(), 3))
        );
        assert_eq!(
            script(&["/opt/dehydrated/dehydrated", "-c"]),
            Some(("/opt/dehydrated/dehydrated".into(), 1))
        );
        for other in [
            &["vim", "/usr/bin/dehydrated"][..],
            &["bash", "-c", "dehydrated -c"],
            &["bash"],
            &["desiccant", "--cron"],
            &["tail", "-f", "/var/log/dehydrated"],
        ] {
            assert_eq!(script(other), None, "{other:?}");
        }
    }

    #[test]
    fn its_lock_file_is_found_as_dehydrated_finds_it() {
        let dir = std::env::temp_dir().join(format!("desiccant-procs-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("base")).unwrap();
        let config = dir.join("config");
        fs::write(&config, format!("BASEDIR={}\n", dir.join("base").display())).unwrap();
        let script = OsStr::new("/usr/bin/dehydrated");
        let lock = |args: &[&'static str], cwd: Option<&Path>| lock_of(script, &argv(args), cwd);
        assert_eq!(
            lock(&["-c", "--config", "config"], Some(&dir)),
            Taken::At(dir.join("base/lock"))
        );
        assert_eq!(
            lock(&["-c", "-f", "config", "--lock-suffix", "x"], Some(&dir)),
            Taken::At(dir.join("base/lock-x"))
        );
        assert_eq!(lock(&["-c", "-n"], Some(&dir)), Taken::None);
        // A relative config in a folder we cannot see, or a config we cannot read.
        assert_eq!(lock(&["-c", "-f", "config"], None), Taken::Unknown);
        assert_eq!(
            lock(&["-c", "-f", "/nonexistent/config"], None),
            Taken::Unknown
        );
        assert!(same_file(
            &dir.join("base/lock"),
            &dir.join("base/../base/lock")
        ));
        assert!(!same_file(&dir.join("base/lock"), &dir.join("lock")));
        fs::remove_dir_all(&dir).unwrap();
    }
}
