//! dehydrated's hook protocol: one variant per handler, rendered to exactly the argv dehydrated
//! passes; certbot's, rendered to exactly the environment certbot sets; and running a hook as
//! an argument list, or an admin's command through `/bin/sh -c` with every value of ours in
//! its environment, never pasted into a command line; with a time limit.

use std::ffi::OsString;
use std::io::{ErrorKind, Read};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use crate::error::{Error, HookOutput, Result};

/// The name dehydrated calls at start-up to check that a hook ignores handlers it does not
/// know (and so will not break on new ones).
pub const BRICKER: &str = "this_hookscript_is_broken__dehydrated_is_working_fine__please_ignore_unknown_hooks_in_your_script";

/// One challenge as the hook sees it: the name validated (the base name for a wildcard), the
/// token (the http-01 file name) and the value to publish (the key authorization for http-01,
/// the TXT value for dns-01 and dns-account-01); for a DNS challenge, the TXT record's name too,
/// which goes in [`CHALLENGE_RECORDS`], not in the arguments.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Triplet {
    pub domain: String,
    pub token_filename: String,
    pub token_value: String,
    #[serde(default)]
    pub record: Option<String>,
}

/// The hook's variable that names the TXT record of each challenge of a DNS challenge type,
/// one name per DOMAIN argument, in order, separated by spaces: dns-account-01's record is not
/// `_acme-challenge.<domain>`, and dehydrated's arguments have no place for it.
pub const CHALLENGE_RECORDS: &str = "CHALLENGE_RECORDS";

/// The extra environment of a `deploy_challenge` or `clean_challenge` call.
pub struct ChallengeEnv(Option<String>);

impl ChallengeEnv {
    /// As [`Hook::run`] takes it.
    pub fn pairs(&self) -> Vec<(&str, &str)> {
        self.0
            .iter()
            .map(|names| (CHALLENGE_RECORDS, names.as_str()))
            .collect()
    }
}

impl Triplet {
    /// [`CHALLENGE_RECORDS`] for a call about `triplets`, when they are DNS challenges.
    pub fn records_env(triplets: &[Triplet]) -> ChallengeEnv {
        let names: Option<Vec<&str>> = triplets.iter().map(|t| t.record.as_deref()).collect();
        ChallengeEnv(names.filter(|n| !n.is_empty()).map(|n| n.join(" ")))
    }
}

/// Every handler of dehydrated's hook protocol (0.7), with its arguments in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HookEvent {
    /// The start-up check with a name no hook knows.
    Bricker,
    StartupHook,
    /// One triplet, or all of a certificate's with `HOOK_CHAIN=yes`.
    DeployChallenge(Vec<Triplet>),
    CleanChallenge(Vec<Triplet>),
    InvalidChallenge {
        domain: String,
        response: String,
    },
    RequestFailure {
        status: u16,
        reason: String,
        req_type: String,
        headers: String,
    },
    GenerateCsr {
        domain: String,
        cert_dir: PathBuf,
        altnames: String,
    },
    SyncCert {
        keyfile: PathBuf,
        certfile: PathBuf,
        fullchainfile: PathBuf,
        chainfile: PathBuf,
        requestfile: PathBuf,
    },
    DeployCert {
        domain: String,
        keyfile: PathBuf,
        certfile: PathBuf,
        fullchainfile: PathBuf,
        chainfile: PathBuf,
        timestamp: i64,
    },
    UnchangedCert {
        domain: String,
        keyfile: PathBuf,
        certfile: PathBuf,
        fullchainfile: PathBuf,
        chainfile: PathBuf,
    },
    ExitHook {
        error: Option<String>,
    },
    /// Ours, for dns-persist-01: the standing TXT record `record_name` (for `domain`, the base
    /// name for a wildcard) with `value` is missing; publish it. Called only when no
    /// authoritative name server has a record for this account; hooks that do not know it exit
    /// 0, as dehydrated's protocol asks of unknown handlers.
    DeployPersistRecord {
        domain: String,
        record_name: String,
        value: String,
    },
}

impl HookEvent {
    /// The handler name, the hook's first argument.
    pub fn name(&self) -> &'static str {
        match self {
            HookEvent::Bricker => BRICKER,
            HookEvent::StartupHook => "startup_hook",
            HookEvent::DeployChallenge(_) => "deploy_challenge",
            HookEvent::CleanChallenge(_) => "clean_challenge",
            HookEvent::InvalidChallenge { .. } => "invalid_challenge",
            HookEvent::RequestFailure { .. } => "request_failure",
            HookEvent::GenerateCsr { .. } => "generate_csr",
            HookEvent::SyncCert { .. } => "sync_cert",
            HookEvent::DeployCert { .. } => "deploy_cert",
            HookEvent::UnchangedCert { .. } => "unchanged_cert",
            HookEvent::ExitHook { .. } => "exit_hook",
            HookEvent::DeployPersistRecord { .. } => "deploy_persist_record",
        }
    }

    /// The whole argument list after the hook's path: this match is the protocol.
    pub fn argv(&self) -> Vec<OsString> {
        let mut argv: Vec<OsString> = vec![self.name().into()];
        let mut push = |s: &dyn AsRef<std::ffi::OsStr>| argv.push(s.as_ref().to_os_string());
        match self {
            HookEvent::Bricker | HookEvent::StartupHook => {}
            HookEvent::DeployChallenge(triplets) | HookEvent::CleanChallenge(triplets) => {
                for t in triplets {
                    push(&t.domain);
                    push(&t.token_filename);
                    push(&t.token_value);
                }
            }
            HookEvent::InvalidChallenge { domain, response } => {
                push(domain);
                push(response);
            }
            HookEvent::RequestFailure {
                status,
                reason,
                req_type,
                headers,
            } => {
                push(&status.to_string());
                push(reason);
                push(req_type);
                push(headers);
            }
            HookEvent::GenerateCsr {
                domain,
                cert_dir,
                altnames,
            } => {
                push(domain);
                push(cert_dir);
                push(altnames);
            }
            HookEvent::SyncCert {
                keyfile,
                certfile,
                fullchainfile,
                chainfile,
                requestfile,
            } => {
                push(keyfile);
                push(certfile);
                push(fullchainfile);
                push(chainfile);
                push(requestfile);
            }
            HookEvent::DeployCert {
                domain,
                keyfile,
                certfile,
                fullchainfile,
                chainfile,
                timestamp,
            } => {
                push(domain);
                push(keyfile);
                push(certfile);
                push(fullchainfile);
                push(chainfile);
                push(&timestamp.to_string());
            }
            HookEvent::UnchangedCert {
                domain,
                keyfile,
                certfile,
                fullchainfile,
                chainfile,
            } => {
                push(domain);
                push(keyfile);
                push(certfile);
                push(fullchainfile);
                push(chainfile);
            }
            HookEvent::ExitHook { error } => {
                if let Some(e) = error {
                    push(e);
                }
            }
            HookEvent::DeployPersistRecord {
                domain,
                record_name,
                value,
            } => {
                push(domain);
                push(record_name);
                push(value);
            }
        }
        argv
    }
}

/// certbot's hook protocol (`--manual-auth-hook`, `--manual-cleanup-hook`, `--deploy-hook`):
/// what each call is told, all of it in the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertbotEvent {
    /// `AUTH_HOOK`, once per challenge.
    Auth(CertbotChallenge),
    /// `CLEANUP_HOOK`, once per challenge the auth hook was run for, with what it printed.
    Cleanup {
        challenge: CertbotChallenge,
        auth_output: String,
    },
    /// `DEPLOY_HOOK`, once per certificate that went live.
    Deploy {
        lineage: PathBuf,
        domains: Vec<String>,
    },
}

/// One challenge as certbot's manual plugin describes it to its hooks.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CertbotChallenge {
    /// The name validated (the base name for a wildcard).
    pub domain: String,
    /// The key authorization for http-01, the TXT value for dns-01. A secret: never logged.
    pub validation: String,
    /// The http-01 token (the file name); None for dns-01.
    pub token: Option<String>,
    /// How many challenges of the same batch come after this one.
    pub remaining: usize,
    /// Every name of the batch, comma-separated, in order.
    pub all_domains: String,
}

impl CertbotEvent {
    /// The key of the command run for it, which also names it in messages.
    pub fn key(&self) -> &'static str {
        match self {
            CertbotEvent::Auth(_) => "AUTH_HOOK",
            CertbotEvent::Cleanup { .. } => "CLEANUP_HOOK",
            CertbotEvent::Deploy { .. } => "DEPLOY_HOOK",
        }
    }

    /// The variables certbot sets for it: this match is the protocol.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        let challenge = |c: &CertbotChallenge| {
            let mut env = vec![
                ("CERTBOT_DOMAIN", c.domain.clone()),
                ("CERTBOT_VALIDATION", c.validation.clone()),
                ("CERTBOT_REMAINING_CHALLENGES", c.remaining.to_string()),
                ("CERTBOT_ALL_DOMAINS", c.all_domains.clone()),
            ];
            if let Some(token) = &c.token {
                env.push(("CERTBOT_TOKEN", token.clone()));
            }
            env
        };
        match self {
            CertbotEvent::Auth(c) => challenge(c),
            CertbotEvent::Cleanup {
                challenge: c,
                auth_output,
            } => {
                let mut env = challenge(c);
                env.push(("CERTBOT_AUTH_OUTPUT", auth_output.clone()));
                env
            }
            CertbotEvent::Deploy { lineage, domains } => vec![
                ("RENEWED_LINEAGE", lineage.display().to_string()),
                ("RENEWED_DOMAINS", domains.join(" ")),
            ],
        }
    }
}

/// Whether a hook program's text reads certbot's variables: a certbot hook set as `HOOK`. Its
/// first MiB is looked at; an unreadable file is not one.
pub fn reads_certbot_vars(path: &Path) -> bool {
    let mut text = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(1 << 20).read_to_end(&mut text))
        .is_ok()
        && text
            .windows(8)
            .any(|w| w == b"CERTBOT_" || w == b"RENEWED_")
}

/// A hook program and how to run it.
#[derive(Debug, Clone)]
pub struct Hook {
    pub path: PathBuf,
    /// Killed, with every process it started, when it runs longer than this.
    pub timeout: Duration,
    /// Variables for its environment (BASEDIR, WELLKNOWN, ...), over ours.
    pub env: Vec<(String, String)>,
    /// Told every line the hook printed, on stdout or stderr, once it has ended.
    pub log: Option<fn(&str)>,
}

impl Hook {
    /// This hook as a `--dry-run` runs it: with `DRY_RUN=yes` in its environment, so that a
    /// hook can tell a rehearsal from a run that deploys (certbot's hooks see no such
    /// variable; it is there for them too).
    pub fn in_dry_run(mut self) -> Hook {
        self.env.push((DRY_RUN.into(), "yes".into()));
        self
    }
}

/// The variable that tells a hook it runs in a `--dry-run`.
pub const DRY_RUN: &str = "DRY_RUN";

/// Only one hook runs at a time, as under dehydrated, even when certificates are issued in
/// parallel: hook scripts are written for that.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

impl Hook {
    /// Ok when `path` is an executable file; the error says what to fix.
    pub fn check_path(path: &Path) -> std::result::Result<(), String> {
        use std::os::unix::fs::PermissionsExt;
        match std::fs::metadata(path) {
            Ok(m) if m.is_file() && m.permissions().mode() & 0o111 != 0 => Ok(()),
            Ok(m) if m.is_file() => Err("the hook is not executable: chmod +x it".into()),
            Ok(_) => Err("the hook is not a file".into()),
            Err(e) => Err(format!("the hook cannot be used: {e}")),
        }
    }

    /// Runs the hook for `event` with `env` added to its environment, and waits for it.
    /// A non-zero exit or the time limit is an [`Error::Hook`] carrying what it printed.
    pub fn run(&self, event: &HookEvent, env: &[(&str, &str)]) -> Result<HookOutput> {
        let is_csr = matches!(event, HookEvent::GenerateCsr { .. });
        self.execute(event.argv(), event.name(), env, is_csr)
    }

    /// Runs `/bin/sh -c command` (this hook's `path` is ignored): for `POST_RENEW_HOOK`, a
    /// command the admin wrote, into which no name is ever pasted; names go in `env`.
    pub fn run_shell(&self, command: &str, env: &[(&str, &str)]) -> Result<HookOutput> {
        self.shell("POST_RENEW_HOOK", command, env, false)
    }

    /// Runs the admin's `command` for a certbot `event` as certbot runs it, `/bin/sh -c
    /// command`, with the event's variables in its environment and nothing pasted into the
    /// command. What `AUTH_HOOK` prints on stdout is data (`CERTBOT_AUTH_OUTPUT`), not logged.
    pub fn run_certbot(&self, command: &str, event: &CertbotEvent) -> Result<HookOutput> {
        let env = event.env();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let data = matches!(event, CertbotEvent::Auth(_));
        self.shell(event.key(), command, &env, data)
    }

    fn shell(
        &self,
        label: &'static str,
        command: &str,
        env: &[(&str, &str)],
        stdout_is_data: bool,
    ) -> Result<HookOutput> {
        let shell = Hook {
            path: PathBuf::from("/bin/sh"),
            ..self.clone()
        };
        let argv = vec![OsString::from("-c"), OsString::from(command)];
        shell.execute(argv, label, env, stdout_is_data)
    }

    fn execute(
        &self,
        argv: Vec<OsString>,
        label: &'static str,
        env: &[(&str, &str)],
        stdout_is_data: bool,
    ) -> Result<HookOutput> {
        let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        let fail = |what: String| Error::Hook {
            hook: self.path.clone(),
            event: label,
            what,
        };
        // Once the run is asked to stop, only hooks that tidy up still run.
        let tidies = matches!(label, "clean_challenge" | "CLEANUP_HOOK" | "exit_hook");
        if !tidies {
            crate::stop::check()?;
        }
        let mut command = Command::new(&self.path);
        command
            .args(argv)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group, so that at the time limit everything it started goes too.
            .process_group(0);
        let mut child = command.spawn().map_err(|e| {
            // The file exists (it was checked): a missing file is its interpreter.
            match interpreter_problem(&self.path).filter(|_| e.kind() == ErrorKind::NotFound) {
                Some(problem) => fail(format!("cannot start: {problem}")),
                None => fail(format!("cannot start: {e}")),
            }
        })?;
        let stdout = child.stdout.take().map(drain);
        let stderr = child.stderr.take().map(drain);
        let pid = child.id();
        // The wait on a thread of its own: the hook's end is seen the moment it comes, while
        // this thread keeps watch over the time limit and a request to stop.
        let (exited, exit) = mpsc::channel();
        thread::spawn(move || {
            let _ = exited.send(child.wait());
        });
        let deadline = Instant::now() + self.timeout;
        let status = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match exit.recv_timeout(left.min(STOP_CHECK)) {
                Ok(Ok(status)) => break Ok(status),
                Ok(Err(e)) => break Err(format!("cannot wait for it: {e}")),
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    break Err("cannot wait for it".to_string());
                }
                Err(mpsc::RecvTimeoutError::Timeout) if Instant::now() >= deadline => {
                    kill_group(pid);
                    let _ = exit.recv();
                    let limit = if self.timeout >= Duration::from_secs(1) {
                        format!("{} s", self.timeout.as_secs())
                    } else {
                        format!("{} ms", self.timeout.as_millis())
                    };
                    break Err(format!(
                        "killed after {limit}, its time limit (HOOK_TIMEOUT)"
                    ));
                }
                Err(mpsc::RecvTimeoutError::Timeout) if !tidies && crate::stop::requested() => {
                    kill_group(pid);
                    let _ = exit.recv();
                    return Err(Error::Stopped(crate::stop::why()));
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
            }
        };
        // A process the hook left running may hold its output open for ever (a daemon started
        // without redirecting it): what it printed by then is taken, and it is not waited for.
        let open_until = Instant::now() + PIPE_GRACE;
        let output = HookOutput {
            stdout: stdout.map(|p| p.take(open_until)).unwrap_or_default(),
            stderr: stderr.map(|p| p.take(open_until)).unwrap_or_default(),
        };
        if let Some(log) = self.log {
            // generate_csr prints the CSR itself, and an auth hook its CERTBOT_AUTH_OUTPUT:
            // data, not messages.
            let printed = if stdout_is_data { "" } else { &output.stdout };
            printed.lines().chain(output.stderr.lines()).for_each(log);
        }
        match status {
            Ok(s) if s.success() => Ok(output),
            // 127: what `env` exits with when it does not find the program it was to run.
            Ok(s) if s.code() == Some(127) => match interpreter_problem(&self.path) {
                Some(problem) => Err(fail(format!("exited with {s}: {problem}"))),
                None => Err(fail(format!("exited with {s}"))),
            },
            Ok(s) => Err(fail(format!("exited with {s}"))),
            Err(what) => Err(fail(what)),
        }
    }
}

/// Why the executable file at `path` cannot run as a program, told by its first line: it ends
/// in a carriage return (the file has Windows line ends, so the kernel looks for an
/// interpreter whose name ends in one), or it names an interpreter that does not exist (also
/// through `/usr/bin/env NAME`). None when the first line shows no such problem.
pub fn interpreter_problem(path: &Path) -> Option<String> {
    let mut start = [0u8; 512];
    let n = std::fs::File::open(path).ok()?.read(&mut start).ok()?;
    let first = start[..n].split(|&b| b == b'\n').next()?;
    let line = first.strip_prefix(b"#!")?;
    if line.ends_with(b"\r") {
        return Some(
            "its first line ends in a carriage return (Windows line ends): convert it with \
             dos2unix or sed -i 's/\\r$//'"
                .to_string(),
        );
    }
    let line = std::str::from_utf8(line).ok()?;
    let mut words = line.split_whitespace();
    let interpreter = words.next()?;
    let missing = |name: &str| {
        format!(
            "the interpreter named on its first line, {}, does not exist",
            name.escape_debug()
        )
    };
    if !Path::new(interpreter).exists() {
        return Some(missing(interpreter));
    }
    if Path::new(interpreter).file_name()? == "env" {
        // `env -S python3 -u`, `env LANG=C python3`: the first word that is neither.
        let program = words.find(|w| !w.starts_with('-') && !w.contains('='))?;
        let found = program.contains('/') && Path::new(program).exists()
            || std::env::var_os("PATH").is_some_and(|dirs| {
                std::env::split_paths(&dirs).any(|dir| dir.join(program).is_file())
            });
        if !found {
            return Some(missing(program));
        }
    }
    None
}

/// How long the output of a hook that has exited is read on, for what its children print.
const PIPE_GRACE: Duration = Duration::from_secs(1);

/// How often a running hook is checked on for a request to stop the run.
const STOP_CHECK: Duration = Duration::from_millis(50);

/// A pipe read to its end on a thread of its own, so that a chatty hook never blocks.
struct Drained {
    bytes: Arc<Mutex<Vec<u8>>>,
    /// Disconnected once the reader has seen the end of the pipe.
    done: mpsc::Receiver<()>,
}

fn drain(mut pipe: impl Read + Send + 'static) -> Drained {
    let bytes = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&bytes);
    let (reading, done) = mpsc::channel::<()>();
    thread::spawn(move || {
        let _reading = reading;
        let mut chunk = [0u8; 8192];
        while let Ok(n) = pipe.read(&mut chunk) {
            if n == 0 {
                break;
            }
            sink.lock()
                .unwrap_or_else(|e| e.into_inner())
                .extend_from_slice(&chunk[..n]);
        }
    });
    Drained { bytes, done }
}

impl Drained {
    /// What was read, once the pipe closed or at `until`, whichever comes first.
    fn take(self, until: Instant) -> String {
        let _ = self
            .done
            .recv_timeout(until.saturating_duration_since(Instant::now()));
        let bytes = self.bytes.lock().unwrap_or_else(|e| e.into_inner());
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

fn kill_group(pid: u32) {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return;
    };
    // SAFETY: kill(2) with a negative pid signals that process group; it touches no memory.
    unsafe {
        libc::kill(-pid, libc::SIGKILL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn triplet(d: &str) -> Triplet {
        Triplet {
            domain: d.into(),
            token_filename: format!("tok-{d}"),
            token_value: format!("val-{d}"),
            record: None,
        }
    }

    fn strings(e: &HookEvent) -> Vec<String> {
        e.argv()
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect()
    }

    #[test]
    fn argv_is_dehydrateds() {
        assert_eq!(
            strings(&HookEvent::DeployChallenge(vec![
                triplet("a"),
                triplet("b")
            ])),
            [
                "deploy_challenge",
                "a",
                "tok-a",
                "val-a",
                "b",
                "tok-b",
                "val-b"
            ]
        );
        assert_eq!(
            strings(&HookEvent::DeployCert {
                domain: "example.org".into(),
                keyfile: "/c/privkey.pem".into(),
                certfile: "/c/cert.pem".into(),
                fullchainfile: "/c/fullchain.pem".into(),
                chainfile: "/c/chain.pem".into(),
                timestamp: 1_700_000_000,
            }),
            [
                "deploy_cert",
                "example.org",
                "/c/privkey.pem",
                "/c/cert.pem",
                "/c/fullchain.pem",
                "/c/chain.pem",
                "1700000000"
            ]
        );
        assert_eq!(strings(&HookEvent::ExitHook { error: None }), ["exit_hook"]);
        assert_eq!(
            strings(&HookEvent::ExitHook {
                error: Some("x failed".into())
            }),
            ["exit_hook", "x failed"]
        );
        assert_eq!(strings(&HookEvent::Bricker), [BRICKER]);
        assert_eq!(
            strings(&HookEvent::DeployPersistRecord {
                domain: "example.org".into(),
                record_name: "_validation-persist.example.org".into(),
                value: "ca.example; accounturi=https://ca.example/acct/1".into(),
            }),
            [
                "deploy_persist_record",
                "example.org",
                "_validation-persist.example.org",
                "ca.example; accounturi=https://ca.example/acct/1"
            ]
        );
    }

    #[test]
    fn certbot_env_is_certbots() {
        let challenge = CertbotChallenge {
            domain: "example.org".into(),
            validation: "tok.thumb".into(),
            token: Some("tok".into()),
            remaining: 1,
            all_domains: "example.org,www.example.org".into(),
        };
        let env = |e: &CertbotEvent| -> Vec<String> {
            e.env().iter().map(|(k, v)| format!("{k}={v}")).collect()
        };
        assert_eq!(
            env(&CertbotEvent::Auth(challenge.clone())),
            [
                "CERTBOT_DOMAIN=example.org",
                "CERTBOT_VALIDATION=tok.thumb",
                "CERTBOT_REMAINING_CHALLENGES=1",
                "CERTBOT_ALL_DOMAINS=example.org,www.example.org",
                "CERTBOT_TOKEN=tok",
            ]
        );
        let dns = CertbotChallenge {
            token: None,
            ..challenge
        };
        let cleanup = CertbotEvent::Cleanup {
            challenge: dns,
            auth_output: "said".into(),
        };
        assert_eq!(cleanup.key(), "CLEANUP_HOOK");
        let rendered = env(&cleanup);
        assert!(!rendered.iter().any(|v| v.starts_with("CERTBOT_TOKEN")));
        assert_eq!(rendered.last().unwrap(), "CERTBOT_AUTH_OUTPUT=said");
        assert_eq!(
            env(&CertbotEvent::Deploy {
                lineage: "/etc/desiccant/certs/example.org".into(),
                domains: vec!["example.org".into(), "www.example.org".into()],
            }),
            [
                "RENEWED_LINEAGE=/etc/desiccant/certs/example.org",
                "RENEWED_DOMAINS=example.org www.example.org"
            ]
        );
    }

    #[test]
    fn a_shell_command_gets_values_only_in_its_environment() {
        let dir = std::env::temp_dir().join(format!("desiccant-certbot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("out");
        let hook = Hook {
            path: "/bin/sh".into(),
            timeout: Duration::from_secs(10),
            env: vec![],
            log: None,
        };
        let evil = "$(touch /tmp/pwned); `id`";
        let challenge = CertbotChallenge {
            domain: evil.into(),
            validation: "v".into(),
            token: None,
            remaining: 0,
            all_domains: evil.into(),
        };
        let printed = hook
            .run_certbot(
                &format!(
                    "printf '%s' \"$CERTBOT_DOMAIN\" > {}; echo out",
                    out.display()
                ),
                &CertbotEvent::Auth(challenge),
            )
            .unwrap();
        assert_eq!(std::fs::read_to_string(&out).unwrap(), evil);
        assert_eq!(printed.stdout, "out\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn script(body: &str) -> (PathBuf, PathBuf) {
        use std::os::unix::fs::PermissionsExt;
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("desiccant-hook-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("hook");
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        (dir, path)
    }

    #[test]
    fn a_name_never_reaches_a_shell() {
        let (dir, path) = script("printf '%s\\n' \"$@\" > \"$OUT\"");
        let out = dir.join("out");
        let hook = Hook {
            path,
            timeout: Duration::from_secs(10),
            env: vec![("OUT".into(), out.display().to_string())],
            log: None,
        };
        let evil = "$(touch /tmp/pwned); `id`; a b";
        hook.run(
            &HookEvent::InvalidChallenge {
                domain: evil.into(),
                response: "{}".into(),
            },
            &[],
        )
        .unwrap();
        assert_eq!(
            std::fs::read_to_string(&out).unwrap(),
            format!("invalid_challenge\n{evil}\n{{}}\n")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn output_is_kept_and_failure_and_time_limit_are_errors() {
        let (dir, path) =
            script("echo said; echo oops >&2; [ \"$1\" = startup_hook ] && exit 3; exit 0");
        let hook = Hook {
            path,
            timeout: Duration::from_secs(10),
            env: vec![],
            log: None,
        };
        let out = hook.run(&HookEvent::ExitHook { error: None }, &[]).unwrap();
        assert_eq!(out.stdout, "said\n");
        assert_eq!(out.stderr, "oops\n");
        let err = hook.run(&HookEvent::StartupHook, &[]).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("startup_hook failed: exited with exit status: 3"),
            "{text}"
        );
        // A hook that starts a child and hangs: both are killed at the limit.
        let (dir2, path) = script("sleep 30 & sleep 30; echo never");
        let hook = Hook {
            path,
            timeout: Duration::from_millis(300),
            env: vec![],
            log: None,
        };
        let started = Instant::now();
        let err = hook.run(&HookEvent::StartupHook, &[]).unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(
            err.to_string()
                .contains("killed after 300 ms, its time limit"),
            "{err}"
        );
        // A hook that exits but leaves a child holding its output open (a daemon started
        // without redirecting it) is not waited for, and what it printed is kept.
        let (dir3, path) = script("echo started; sleep 30 &");
        let hook = Hook {
            path,
            timeout: Duration::from_secs(20),
            env: vec![],
            log: None,
        };
        let started = Instant::now();
        let out = hook.run(&HookEvent::StartupHook, &[]).unwrap();
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "waited for the child"
        );
        assert_eq!(out.stdout, "started\n");
        std::fs::remove_dir_all(&dir).unwrap();
        std::fs::remove_dir_all(&dir2).unwrap();
        std::fs::remove_dir_all(&dir3).unwrap();
    }
}
