//! One function per command. The only place that loops over certificates and merges their
//! outcomes into the exit status.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::account::{self, Account, Found, Terms};
use crate::acme::{Client, Trust};
use crate::challenge::Webroot;
use crate::cli::Cli;
use crate::config::{Config, LoadOptions};
use crate::domains::{self, CertLine};
use crate::error::{Error, Result, Status};
use crate::issue::{self, Ctx};
use crate::renewal::{self, Decision, Policy, Reason};
use crate::store::{AccountDir, CertDir, CertFiles, RunLock};
use crate::{logging, parallel, x509};

pub const USER_AGENT: &str = concat!("desiccant/", env!("CARGO_PKG_VERSION"));

/// Threads that answer the authorizations of one order.
const AUTHZ_WORKERS: usize = 16;

/// Runs the command `cli` names and returns the status to exit with.
pub fn run(cli: &Cli) -> Result<Status> {
    if cli.version {
        println!("desiccant {}", env!("CARGO_PKG_VERSION"));
        return Ok(Status::Ok);
    }
    let config = load_config(cli)?;
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
    if cli.cron {
        sign_domains(cli, &config)
    } else if cli.register {
        register(cli, &config)
    } else {
        Err(Error::Usage("no command given; see --help".into()))
    }
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
    Config::load(&opts, &|key| std::env::var(key).ok())
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

/// The HTTPS trust for the CA: `CA_BUNDLE` when set, else the system store.
fn trust(config: &Config) -> Result<Trust> {
    match &config.ca_bundle {
        None => Ok(Trust::System),
        Some(path) => std::fs::read(path).map(Trust::Pem).map_err(|e| {
            Error::Config(format!("{}: CA_BUNDLE cannot be read: {e}", path.display()))
        }),
    }
}

fn connect(config: &Config) -> Result<Client> {
    let trust = trust(config)?;
    Client::connect(&config.ca, &trust, USER_AGENT).map_err(Error::acme(&config.ca))
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

/// `--cron`: decides for every certificate without a request, then issues the due ones
/// concurrently. Prints nothing when nothing was due.
fn sign_domains(cli: &Cli, config: &Config) -> Result<Status> {
    let certs = if cli.domains.is_empty() {
        domains::read(&config.domains_txt)?
    } else {
        vec![domains::from_args(&cli.domains, cli.alias.as_deref())?]
    };
    let _lock = lock(cli, config)?;
    let now = unix_now();
    let policy = Policy {
        force: cli.force,
        renew_days: config.renew_days,
    };
    let mut due: Vec<(&CertLine, Reason)> = Vec::new();
    for cert in &certs {
        let dir = CertDir::new(&config.certdir, &cert.name);
        let current = match std::fs::read(dir.cert()) {
            Ok(bytes) => Some(x509::facts(&bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => Some(Err(e.to_string())),
        };
        match renewal::decide(current.as_ref(), &cert.names, config.key_algo, policy, now) {
            Decision::Renew(reason) => due.push((cert, reason)),
            Decision::Keep { renew_at } => logging::debug(format_args!(
                "{}: unchanged, renews after {}",
                cert.name,
                logging::utc(renew_at)
            )),
        }
    }
    if due.is_empty() {
        return Ok(Status::Ok);
    }
    let webroot = Webroot {
        dir: config.wellknown.clone(),
    };
    webroot.check()?;
    let client = connect(config)?;
    let (account, found) = load_account(cli, config, &client)?;
    if found == Found::Registered {
        logging::info(format_args!("account: registered as {}", account.url));
    }
    let ctx = Ctx {
        client: &client,
        account: &account,
        webroot: &webroot,
        workers: AUTHZ_WORKERS,
    };
    let outcomes = parallel::map(&due, config.jobs, |(cert, reason)| {
        renew_one(&ctx, config, cert, reason)
    });
    logging::debug(format_args!(
        "{} requests sent to the CA",
        client.requests()
    ));
    Ok(outcomes.into_iter().fold(Status::Ok, Status::merge))
}

/// Issues and installs one certificate, logs its line, and returns its status.
fn renew_one(ctx: &Ctx<'_>, config: &Config, cert: &CertLine, reason: &Reason) -> Status {
    logging::debug(format_args!("{}: renewing ({reason})", cert.name));
    let result = issue::issue(ctx, &cert.name, &cert.names, config.key_algo).and_then(|issued| {
        let files = CertFiles {
            privkey: &issued.key.pem(),
            csr: &issued.csr.pem,
            cert: &issued.cert,
            chain: &issued.chain,
        };
        CertDir::new(&config.certdir, &cert.name).install(&files, unix_now())?;
        Ok(issued.not_after)
    });
    match result {
        Ok(not_after) => {
            logging::info(format_args!(
                "{}: issued, valid until {} ({reason})",
                cert.name,
                logging::utc(not_after)
            ));
            Status::Ok
        }
        Err(e) => {
            let text = e.to_string();
            if text.starts_with(&format!("{}:", cert.name)) {
                logging::error(text);
            } else {
                logging::error(format_args!("{}: {text}", cert.name));
            }
            e.status()
        }
    }
}
