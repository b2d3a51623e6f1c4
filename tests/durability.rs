//! What the kernel is asked to do, seen through strace: every file a link will point at is
//! fsynced before it is renamed into place, the folder is fsynced before the first link moves
//! and after the last (I4); keys are created 0600 and never opened up, whatever the umask (I7).

mod common;

use std::collections::HashMap;
use std::fs;
use std::path::Path;
use std::process::Command;

use common::{Env, Pebble, check_live_set, mode, require};

/// One traced call: its name and its raw argument text; paths are shown by `-y` as
/// `3</dir/file>`.
struct Call {
    name: String,
    args: String,
}

/// Issues one certificate under strace at `umask` and returns the calls, in order.
fn traced_issuance(env: &Env, umask: &str) -> Vec<Call> {
    let strace = require("strace", "strace");
    let trace = env.path().join("trace");
    let desiccant = env!("CARGO_BIN_EXE_desiccant");
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "umask {umask}; exec '{}' -f -y -qq -s 0 -o '{}' \
             -e trace=open,openat,creat,fsync,fdatasync,rename,renameat,renameat2,symlink,symlinkat,chmod,fchmod,fchmodat,mkdir,mkdirat \
             '{desiccant}' --config '{}' --cron --accept-terms",
            strace.display(),
            trace.display(),
            env.path().join("config").display()
        ))
        .env_remove("JOURNAL_STREAM")
        .status()
        .unwrap();
    assert!(status.success(), "the traced run failed");
    fs::read_to_string(&trace)
        .unwrap()
        .lines()
        .filter_map(|line| {
            // "1234  fsync(3</x/y>) = 0", or without the pid column.
            let line = line.trim_start_matches(|c: char| c.is_ascii_digit()).trim();
            let (name, rest) = line.split_once('(')?;
            if !rest.contains(") = 0") && !rest.contains(") = ") {
                return None;
            }
            // Calls that failed are not what was done.
            if rest.contains(" = -1 ") {
                return None;
            }
            Some(Call {
                name: name.to_string(),
                args: rest.to_string(),
            })
        })
        .collect()
}

/// The quoted paths in a call's arguments, and the `<path>` of its file descriptors.
fn paths(args: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (open, close) in [('"', '"'), ('<', '>')] {
        let mut rest = args;
        while let Some(start) = rest.find(open) {
            let after = &rest[start + 1..];
            let Some(end) = after.find(close) else {
                break;
            };
            out.push(after[..end].to_string());
            rest = &after[end + 1..];
        }
    }
    out
}

fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

#[test]
fn files_are_flushed_before_links_move_and_keys_are_created_private_under_any_umask() {
    let pebble = Pebble::start_without_refused_nonces();
    let root = pebble.root_der();
    for umask in ["000", "022", "077"] {
        let env = Env::new(&pebble, "");
        env.domains("durable.example\n");
        let calls = traced_issuance(&env, umask);
        let dir = env.cert_dir("durable.example");
        let dir_text = dir.to_string_lossy().into_owned();

        // I4, files: each temporary file that is renamed into the certificate folder was
        // fsynced before its rename.
        let mut synced: HashMap<String, usize> = HashMap::new();
        let mut renamed: HashMap<String, usize> = HashMap::new();
        let mut dir_syncs: Vec<usize> = Vec::new();
        let mut link_moves: Vec<(usize, String)> = Vec::new();
        for (i, call) in calls.iter().enumerate() {
            let p = paths(&call.args);
            match call.name.as_str() {
                "fsync" | "fdatasync" => {
                    if let Some(path) = p.first() {
                        if *path == dir_text {
                            dir_syncs.push(i);
                        }
                        synced.insert(path.clone(), i);
                    }
                }
                "rename" | "renameat" | "renameat2" if p.len() >= 2 => {
                    let (from, to) = (&p[0], &p[1]);
                    if !to.starts_with(&dir_text) {
                        continue;
                    }
                    let target = file_name(to);
                    if target.contains('-') {
                        // A file of the set: flushed before it takes its name.
                        let when = synced.get(from).copied();
                        assert!(
                            when.is_some_and(|s| s < i),
                            "umask {umask}: {target} renamed into place before it was fsynced"
                        );
                        renamed.insert(target.to_string(), i);
                    } else {
                        link_moves.push((i, target.to_string()));
                    }
                }
                _ => {}
            }
        }
        assert_eq!(
            link_moves.len(),
            5,
            "umask {umask}: five links should move: {:?}",
            link_moves
        );
        // I4, links: every file a link points at was in place, and the folder fsynced,
        // before the first link moved; the folder is fsynced after the last.
        let first_move = link_moves[0].0;
        let last_move = link_moves[4].0;
        let ts = check_live_set(&dir, &["durable.example"], &root);
        for (link, file) in [
            ("privkey.pem", format!("privkey-{ts}.pem")),
            ("chain.pem", format!("chain-{ts}.pem")),
            ("fullchain.pem", format!("fullchain-{ts}.pem")),
            ("cert.csr", format!("cert-{ts}.csr")),
            ("cert.pem", format!("cert-{ts}.pem")),
        ] {
            let placed = renamed.get(&file).copied();
            assert!(
                placed.is_some_and(|p| p < first_move),
                "umask {umask}: {link} moved before {file} was in place"
            );
        }
        let last_file = renamed.values().max().copied().unwrap();
        assert!(
            dir_syncs.iter().any(|&s| s > last_file && s < first_move),
            "umask {umask}: the folder was not fsynced between the files and the links"
        );
        assert!(
            dir_syncs.iter().any(|&s| s > last_move),
            "umask {umask}: the folder was not fsynced after the links moved"
        );

        // I7: every key file is created owner-only and never given a wider mode.
        let secret = |path: &str| {
            let name = file_name(path);
            name.contains("privkey") || name.contains("account_key") || name.contains(".p12")
        };
        let mut created = 0;
        for call in &calls {
            let p = paths(&call.args);
            let Some(path) = p.first().filter(|p| secret(p)) else {
                continue;
            };
            match call.name.as_str() {
                "open" | "openat" | "creat" if call.args.contains("O_CREAT") => {
                    created += 1;
                    let mode = call.args.rsplit(", ").next().unwrap_or("");
                    let mode = mode.split(')').next().unwrap_or("");
                    let mode = u32::from_str_radix(mode.trim_start_matches('0'), 8).unwrap_or(0);
                    assert_eq!(
                        mode & 0o077,
                        0,
                        "umask {umask}: {path} created with mode {mode:o}"
                    );
                }
                "chmod" | "fchmod" | "fchmodat" => {
                    let mode = call.args.rsplit(", ").next().unwrap_or("");
                    let mode = mode.split(')').next().unwrap_or("");
                    let mode = u32::from_str_radix(mode.trim_start_matches('0'), 8).unwrap_or(0);
                    assert_eq!(
                        mode & 0o077,
                        0,
                        "umask {umask}: {path} opened up to {mode:o}"
                    );
                }
                _ => {}
            }
        }
        assert!(
            created >= 2,
            "umask {umask}: the account key and the certificate key were not seen created"
        );

        // And what an admin sees afterwards.
        let account = env.account_dir();
        for (path, want) in [
            (account.clone(), 0o700),
            (account.join("account_key.pem"), 0o600),
            (dir.join("privkey.pem"), 0o600),
            (dir.join("cert.pem"), 0o644),
            (dir.join("fullchain.pem"), 0o644),
            (dir.clone(), 0o755),
        ] {
            assert_eq!(mode(&path), want, "umask {umask}: {}", path.display());
        }
        assert_private_state(&env.path().join("state"), umask);
    }
}

/// Our state folder holds key authorizations while challenges are in place: owner only.
fn assert_private_state(state: &Path, umask: &str) {
    assert_eq!(mode(state), 0o700, "umask {umask}: state/ mode");
}
