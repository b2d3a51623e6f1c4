//! One function per command (`--cron` in `cron.rs`, `--check` in `check.rs`), and what they
//! share: the config, the certificates in scope, the lock, the CA and the account.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::account::{self, Account, Found, Terms};
use crate::acme::{Client, Transport, Trust};
use crate::cli::Cli;
use crate::config::{CertSpec, Config, LoadOptions};
use crate::error::{CheckStatus, Error, Result, Status};
use crate::renewal::Policy;
use crate::store::{AccountDir, CertDir, RunLock};
use crate::x509::{self, CertFacts};
use crate::{check, cron, domains, logging};

pub const USER_AGENT: &str = concat!("desiccant/", env!("CARGO_PKG_VERSION"));

/// Runs the command `cli` names and returns the code to exit with. `--check` reports its own
/// errors, as UNKNOWN; for the other commands the error goes back to `main`.
pub fn run(cli: &Cli) -> Result<u8> {
    if cli.version {
        println!("desiccant {}", env!("CARGO_PKG_VERSION"));
        return Ok(0);
    }
    if cli.check {
        let status = check::check(cli).unwrap_or_else(|e| {
            logging::error(&e);
            CheckStatus::Unknown
        });
        return Ok(status.code());
    }
    let config = load_config(cli)?;
    let status = if cli.cron {
        cron::sign_domains(cli, &config)?
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
pub(crate) fn load_config(cli: &Cli) -> Result<Config> {
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
    flag("HOOK", cli.hook.as_deref().map(path), "--hook");
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
pub(crate) fn certificates(cli: &Cli, config: &Config) -> Result<Vec<CertSpec>> {
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
pub(crate) fn current(
    config: &Config,
    spec: &CertSpec,
) -> Option<std::result::Result<CertFacts, String>> {
    let dir = CertDir::new(&config.certdir, &spec.name);
    match std::fs::read(dir.cert()) {
        Ok(bytes) => Some(x509::facts(&bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => Some(Err(e.to_string())),
    }
}

pub(crate) fn policy(cli: &Cli, spec: &CertSpec) -> Policy {
    Policy {
        force: cli.force,
        renew_days: spec.settings.renew_days,
    }
}

pub(crate) fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

pub(crate) fn lock(cli: &Cli, config: &Config) -> Result<Option<RunLock>> {
    config
        .lockfile
        .as_deref()
        .map(|path| RunLock::acquire(path, Duration::from_secs(cli.lock_wait)))
        .transpose()
}

pub(crate) fn connect(config: &Config) -> Result<Client> {
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
pub(crate) fn load_account(
    cli: &Cli,
    config: &Config,
    client: &Client,
) -> Result<(Account, Found)> {
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
