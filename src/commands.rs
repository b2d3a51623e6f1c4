//! One function per command. The only place that loops over certificates and merges their
//! outcomes into the exit status.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use crate::account::{self, Account, Found, Terms};
use crate::acme::{Client, Transport, Trust};
use crate::challenge::Webroot;
use crate::cli::Cli;
use crate::config::{CertSpec, Config, LoadOptions};
use crate::domains;
use crate::error::{CheckStatus, Error, Result, Status};
use crate::issue::{self, Ctx};
use crate::renewal::{self, Decision, Policy, Reason};
use crate::store::{AccountDir, CertDir, CertFiles, RunLock};
use crate::x509::{self, CertFacts};
use crate::{logging, parallel};

pub const USER_AGENT: &str = concat!("desiccant/", env!("CARGO_PKG_VERSION"));

/// Threads that answer the authorizations of one order.
const AUTHZ_WORKERS: usize = 16;

/// Runs the command `cli` names and returns the code to exit with. `--check` reports its own
/// errors, as UNKNOWN; for the other commands the error goes back to `main`.
pub fn run(cli: &Cli) -> Result<u8> {
    if cli.version {
        println!("desiccant {}", env!("CARGO_PKG_VERSION"));
        return Ok(0);
    }
    if cli.check {
        let status = check(cli).unwrap_or_else(|e| {
            logging::error(&e);
            CheckStatus::Unknown
        });
        return Ok(status.code());
    }
    let config = load_config(cli)?;
    let status = if cli.cron {
        sign_domains(cli, &config)?
    } else if cli.register {
        register(cli, &config)?
    } else {
        return Err(Error::Usage("no command given; see --help".into()));
    };
    Ok(status.code())
}

fn env(key: &str) -> Option<String> {
    std::env::var(key).ok()
}

/// The config, with the flags that stand for config keys applied over it.
fn load_config(cli: &Cli) -> Result<Config> {
    let path = |p: &Path| p.to_string_lossy().into_owned();
    let mut overrides = Vec::new();
    let mut flag = |key: &'static str, value: Option<String>, name: &'static str| {
        if let Some(v) = value {
            overrides.push((key, v, name));
        }
    };
    flag("CA", cli.ca.clone(), "--ca");
    flag(
        "CA_BUNDLE",
        cli.ca_bundle.as_deref().map(path),
        "--ca-bundle",
    );
    flag("CERTDIR", cli.out.as_deref().map(path), "--out");
    flag(
        "DOMAINS_TXT",
        cli.domains_txt.as_deref().map(path),
        "--domains-txt",
    );
    flag("KEY_ALGO", cli.algo.clone(), "--algo");
    flag("CHALLENGETYPE", cli.challenge.clone(), "--challenge");
    flag("JOBS", cli.jobs.map(|n| n.to_string()), "--jobs");
    let opts = LoadOptions {
        config: cli.config.clone(),
        overrides,
        no_lock: cli.no_lock,
        lock_suffix: cli.lock_suffix.clone(),
    };
    let config = Config::load(&opts, &env)?;
    for warning in &config.warnings {
        logging::warn(warning);
    }
    logging::debug(format_args!(
        "config {}, BASEDIR {}",
        config
            .file
            .as_deref()
            .map_or("(none found, defaults)".into(), |f| f.display().to_string()),
        config.basedir.display()
    ));
    Ok(config)
}

/// Every certificate in scope: the `--domain` one, else every line of domains.txt, each with
/// its own config applied. Any error is found here, before a lock or a request.
fn certificates(cli: &Cli, config: &Config) -> Result<Vec<CertSpec>> {
    let lines = if cli.domains.is_empty() {
        domains::read(&config.domains_txt)?
    } else {
        vec![domains::from_args(&cli.domains, cli.alias.as_deref())?]
    };
    let mut specs = Vec::with_capacity(lines.len());
    for line in &lines {
        let (spec, warnings) = config.cert_spec(line, &env)?;
        for w in warnings {
            logging::warn(w);
        }
        specs.push(spec);
    }
    Ok(specs)
}

/// What `cert.pem` says: None when there is none, Err when it cannot be read.
fn current(config: &Config, spec: &CertSpec) -> Option<std::result::Result<CertFacts, String>> {
    let dir = CertDir::new(&config.certdir, &spec.name);
    match std::fs::read(dir.cert()) {
        Ok(bytes) => Some(x509::facts(&bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => Some(Err(e.to_string())),
    }
}

fn policy(cli: &Cli, spec: &CertSpec) -> Policy {
    Policy {
        force: cli.force,
        renew_days: spec.settings.renew_days,
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn lock(cli: &Cli, config: &Config) -> Result<Option<RunLock>> {
    config
        .lockfile
        .as_deref()
        .map(|path| RunLock::acquire(path, Duration::from_secs(cli.lock_wait)))
        .transpose()
}

fn connect(config: &Config) -> Result<Client> {
    let trust = match &config.ca_bundle {
        None => Trust::System,
        Some(path) => Trust::Pem(std::fs::read(path).map_err(|e| {
            Error::Config(format!("{}: CA_BUNDLE cannot be read: {e}", path.display()))
        })?),
    };
    let transport = Transport {
        trust,
        user_agent: USER_AGENT.to_string(),
        ip_version: config.ip_version,
        trace: Some(logging::trace),
    };
    Client::connect(&config.ca, &transport).map_err(Error::acme(&config.ca))
}

/// The account for the configured CA, registered when there is none and `--accept-terms` was
/// given.
fn load_account(cli: &Cli, config: &Config, client: &Client) -> Result<(Account, Found)> {
    let dir = AccountDir::new(&config.accountdir, &config.ca);
    let terms = Terms {
        accepted: cli.accept_terms,
        contact: config.contact_email.as_deref(),
    };
    account::load_or_register(client, &dir, terms)
}

/// `--register`: registers the account key, or says that it already is.
fn register(cli: &Cli, config: &Config) -> Result<Status> {
    let _lock = lock(cli, config)?;
    let client = connect(config)?;
    let (account, found) = load_account(cli, config, &client)?;
    match found {
        Found::Registered => logging::info(format_args!("account: registered as {}", account.url)),
        Found::Existing => logging::info(format_args!(
            "account: already registered as {}",
            account.url
        )),
    }
    Ok(Status::Ok)
}

/// How one certificate of a `--cron` run ended.
struct Outcome {
    state: &'static str,
    reason: Option<String>,
    not_after: Option<i64>,
    error: Option<String>,
    status: Status,
}

impl Outcome {
    fn failed(reason: &Reason, e: &Error) -> Outcome {
        Outcome {
            state: "failed",
            reason: Some(reason.to_string()),
            not_after: None,
            error: Some(e.to_string()),
            status: e.status(),
        }
    }
}

/// `--cron`: decides for every certificate without a request, then issues the due ones
/// concurrently over one connection pool. Prints nothing when nothing was due.
fn sign_domains(cli: &Cli, config: &Config) -> Result<Status> {
    let specs = certificates(cli, config)?;
    let _lock = lock(cli, config)?;
    let now = unix_now();
    let mut outcomes: Vec<Option<Outcome>> = Vec::with_capacity(specs.len());
    let mut due: Vec<(&CertSpec, Reason, usize)> = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        let current = current(config, spec);
        let decision = renewal::decide(
            current.as_ref(),
            &spec.names,
            spec.settings.key_algo,
            policy(cli, spec),
            now,
        );
        match decision {
            Decision::Renew(reason) => {
                due.push((spec, reason, i));
                outcomes.push(None);
            }
            Decision::Keep { renew_at } => {
                logging::debug(format_args!(
                    "{}: unchanged, renews after {}",
                    spec.name,
                    logging::utc(renew_at)
                ));
                outcomes.push(Some(Outcome {
                    state: "unchanged",
                    reason: None,
                    not_after: current.and_then(|c| c.ok()).map(|f| f.not_after),
                    error: None,
                    status: Status::Ok,
                }));
            }
        }
    }
    if !due.is_empty() {
        for (spec, _, _) in &due {
            Webroot {
                dir: spec.settings.wellknown.clone(),
            }
            .check()?;
        }
        let renewed = connect(config).and_then(|client| {
            let (account, found) = load_account(cli, config, &client)?;
            if found == Found::Registered {
                logging::info(format_args!("account: registered as {}", account.url));
            }
            let ctx = Ctx {
                client: &client,
                account: &account,
                workers: AUTHZ_WORKERS,
            };
            let done = parallel::map(&due, config.jobs, |(spec, reason, _)| {
                renew_one(&ctx, config, spec, reason)
            });
            logging::debug(format_args!(
                "{} requests sent to the CA",
                client.requests()
            ));
            Ok(done)
        });
        match renewed {
            Ok(done) => {
                for ((_, _, i), outcome) in due.iter().zip(done) {
                    outcomes[*i] = Some(outcome);
                }
            }
            Err(e) => {
                // Nothing could be ordered: every due certificate failed the same way.
                logging::error(format_args!("{e}{}", hint(&e, None)));
                for (_, reason, i) in &due {
                    outcomes[*i] = Some(Outcome::failed(reason, &e));
                }
            }
        }
    }
    let outcomes: Vec<Outcome> = outcomes.into_iter().flatten().collect();
    let status = outcomes
        .iter()
        .map(|o| o.status)
        .fold(Status::Ok, Status::merge);
    if cli.json {
        let certificates: Vec<Value> = specs
            .iter()
            .zip(&outcomes)
            .map(|(spec, o)| {
                json!({
                    "name": spec.name,
                    "names": spec.names,
                    "status": o.state,
                    "reason": o.reason,
                    "not_after": o.not_after.map(logging::utc),
                    "error": o.error,
                })
            })
            .collect();
        println!(
            "{}",
            json!({ "exit_status": status.code(), "certificates": certificates })
        );
    }
    Ok(status)
}

/// Issues and installs one certificate and logs its line.
fn renew_one(ctx: &Ctx<'_>, config: &Config, spec: &CertSpec, reason: &Reason) -> Outcome {
    logging::debug(format_args!("{}: renewing ({reason})", spec.name));
    let result = issue::issue(ctx, spec).and_then(|issued| {
        let files = CertFiles {
            privkey: &issued.key.pem(),
            csr: &issued.csr.pem,
            cert: &issued.cert,
            chain: &issued.chain,
        };
        CertDir::new(&config.certdir, &spec.name).install(&files, unix_now())?;
        Ok(issued.not_after)
    });
    match result {
        Ok(not_after) => {
            logging::info(format_args!(
                "{}: issued, valid until {} ({reason})",
                spec.name,
                logging::utc(not_after)
            ));
            Outcome {
                state: "issued",
                reason: Some(reason.to_string()),
                not_after: Some(not_after),
                error: None,
                status: Status::Ok,
            }
        }
        Err(e) => {
            let text = e.to_string();
            let hint = hint(&e, Some(spec));
            if text.starts_with(&format!("{}:", spec.name)) {
                logging::error(format_args!("{text}{hint}"));
            } else {
                logging::error(format_args!("{}: {text}{hint}", spec.name));
            }
            Outcome::failed(reason, &e)
        }
    }
}

/// What to do next about `e`, as `"; ..."`, or nothing when the message says it all.
fn hint(e: &Error, spec: Option<&CertSpec>) -> String {
    let next = match e {
        Error::Invalid { name, problem } => {
            if problem.is("dns") {
                format!("check that {name} has A or AAAA records that point at this server")
            } else if problem.is("caa") {
                format!("the CAA records of {name} do not allow this CA to issue")
            } else if problem.is("rejectedIdentifier") {
                format!("the CA will not issue for {name}")
            } else {
                let dir = spec.map_or_else(
                    || "WELLKNOWN".to_string(),
                    |s| s.settings.wellknown.display().to_string(),
                );
                format!(
                    "check that http://{name}/.well-known/acme-challenge/ reaches this server \
                     and serves the files of {dir}"
                )
            }
        }
        Error::Acme { err, .. } => match err.problem() {
            Some(p) if p.is("rateLimited") => {
                "the CA's rate limit was hit; a later run tries again".to_string()
            }
            _ if err.is_temporary() => {
                "the CA could not be reached or had trouble; a later run tries again".to_string()
            }
            _ => return String::new(),
        },
        _ => return String::new(),
    };
    format!("; {next}")
}

/// One line of the `--check` table.
struct CheckRow<'a> {
    spec: &'a CertSpec,
    state: CheckStatus,
    what: String,
    facts: Option<CertFacts>,
    renew_at: Option<i64>,
}

/// `--check`: every certificate's state from disk alone: no lock, no request.
fn check(cli: &Cli) -> Result<CheckStatus> {
    let config = load_config(cli)?;
    let specs = certificates(cli, &config)?;
    let now = unix_now();
    let rows: Vec<CheckRow<'_>> = specs
        .iter()
        .map(|spec| {
            let current = current(&config, spec);
            let decision = renewal::decide(
                current.as_ref(),
                &spec.names,
                spec.settings.key_algo,
                policy(cli, spec),
                now,
            );
            let facts = current.and_then(|c| c.ok());
            let (state, what, renew_at) = match decision {
                Decision::Keep { renew_at } => {
                    (CheckStatus::Ok, "valid".to_string(), Some(renew_at))
                }
                Decision::Renew(Reason::Due { .. }) => (
                    CheckStatus::Warning,
                    "due for renewal".to_string(),
                    Some(now),
                ),
                Decision::Renew(reason) => (CheckStatus::Critical, reason.to_string(), None),
            };
            CheckRow {
                spec,
                state,
                what,
                facts,
                renew_at,
            }
        })
        .collect();
    let status = rows
        .iter()
        .map(|r| r.state)
        .max()
        .unwrap_or(CheckStatus::Ok);
    if cli.json {
        let certificates: Vec<Value> = rows
            .iter()
            .map(|r| {
                json!({
                    "name": r.spec.name,
                    "names": r.spec.names,
                    "state": r.state.label(),
                    "detail": r.what,
                    "not_after": r.facts.as_ref().map(|f| logging::utc(f.not_after)),
                    "days_left": r.facts.as_ref().map(|f| (f.not_after - now).div_euclid(86_400)),
                    "renew_at": r.renew_at.map(logging::utc),
                })
            })
            .collect();
        println!(
            "{}",
            json!({ "status": status.label(), "certificates": certificates })
        );
        return Ok(status);
    }
    let count = |s: CheckStatus| rows.iter().filter(|r| r.state == s).count();
    println!(
        "{}: {} certificates, {} due, {} critical",
        status.label(),
        rows.len(),
        count(CheckStatus::Warning),
        count(CheckStatus::Critical)
    );
    let mut table = vec![[
        "NAME".to_string(),
        "STATE".into(),
        "NOT AFTER".into(),
        "DAYS LEFT".into(),
        "RENEWAL".into(),
        "NAMES".into(),
    ]];
    for r in &rows {
        let not_after = r.facts.as_ref().map(|f| f.not_after);
        table.push([
            r.spec.name.clone(),
            r.state.label().into(),
            not_after.map_or("-".into(), logging::utc),
            not_after.map_or("-".into(), |t| (t - now).div_euclid(86_400).to_string()),
            match (r.state, r.renew_at) {
                (CheckStatus::Ok, Some(at)) => format!("after {}", &logging::utc(at)[..10]),
                _ => r.what.clone(),
            },
            r.spec.names.join(" "),
        ]);
    }
    let widths: Vec<usize> = (0..5)
        .map(|c| table.iter().map(|row| row[c].len()).max().unwrap_or(0))
        .collect();
    for row in &table {
        let mut line = String::new();
        for (c, width) in widths.iter().enumerate() {
            line.push_str(&format!("{:<width$}  ", row[c]));
        }
        line.push_str(&row[5]);
        println!("{line}");
    }
    Ok(status)
}
