//! What the user asked for ([`Command`] and [`Options`], made once from the command line) and
//! what every command is handed ([`Session`]: the config, the certificates in scope, the lock,
//! and on demand the CA's client and the account). One file per command beside this one.

mod account;
mod check;
mod cleanup;
mod cron;
mod dry_run;
mod env;
mod persist;
mod renew;
mod report;
mod revoke;
mod session;
mod signcsr;

use std::path::PathBuf;
use std::time::Duration;

use crate::cli::Cli;
use crate::config::LoadOptions;
use crate::error::{CheckStatus, Error, Result, Status};
use crate::{import, logging};

use session::{Options, Session, unix_now};

/// What `--version` prints: the version, the commit it was built from, and what does TLS and
/// the cryptography (all built in: no OpenSSL, no curl).
const VERSION: &str = concat!(
    "desiccant ",
    env!("CARGO_PKG_VERSION"),
    " (git ",
    env!("DESICCANT_GIT_REV"),
    ")\nTLS: rustls ",
    env!("DESICCANT_RUSTLS"),
    " with ring ",
    env!("DESICCANT_RING"),
    ", certificates verified against ",
    "the system's store or CA_BUNDLE\ncrypto: ring ",
    env!("DESICCANT_RING"),
    " (ECDSA, SHA-2), rsa ",
    env!("DESICCANT_RSA"),
    " (RSA keys)\n"
);

/// The one thing the user asked for.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Version,
    Check(check::CheckArgs),
    Cron,
    SignCsr(PathBuf),
    Revoke {
        cert: PathBuf,
        /// `--privkey`: sign with the certificate's own key instead of the account key.
        key: Option<PathBuf>,
        reason: Option<u8>,
    },
    Register,
    /// `--account`; with `--rollover`, a new account key instead of a new contact.
    Account {
        rollover: bool,
    },
    Deactivate,
    Cleanup {
        delete: bool,
    },
    ImportCertbot(PathBuf),
    DisplayTerms,
    Env,
    PersistRecord,
}

impl Command {
    /// What `cli` asks for, with its options and what it contributes to the config. Made once;
    /// nothing after this sees the command line.
    pub fn from_cli(cli: &Cli) -> Result<(Command, Options, LoadOptions)> {
        // Not clap's `requires`: a flag that is not given still counts as present for it.
        if !cli.check && (cli.warning.is_some() || cli.critical.is_some()) {
            return Err(Error::Usage(
                "--warning and --critical are thresholds of --check".into(),
            ));
        }
        if cli.check && cli.force {
            return Err(Error::Usage(
                "--force renews certificates; --check reads the disk only and takes no --force"
                    .into(),
            ));
        }
        let command = if cli.version {
            Command::Version
        } else if cli.check {
            // --domain limits the check to the domains.txt certificates that carry the names;
            // it makes no certificate of its own.
            let select = cli.domains.iter().chain(&cli.alias).cloned().collect();
            Command::Check(check::CheckArgs::new(cli.warning, cli.critical, select)?)
        } else if cli.cron {
            Command::Cron
        } else if let Some(csr) = &cli.signcsr {
            Command::SignCsr(csr.clone())
        } else if let Some(cert) = &cli.revoke {
            Command::Revoke {
                cert: cert.clone(),
                key: cli.privkey.clone(),
                reason: cli.reason,
            }
        } else if cli.register {
            Command::Register
        } else if cli.account {
            Command::Account {
                rollover: cli.rollover,
            }
        } else if cli.deactivate {
            Command::Deactivate
        } else if cli.cleanup || cli.cleanup_delete {
            Command::Cleanup {
                delete: cli.cleanup_delete,
            }
        } else if let Some(dir) = &cli.import_certbot {
            Command::ImportCertbot(dir.clone())
        } else if cli.display_terms {
            Command::DisplayTerms
        } else if cli.env {
            Command::Env
        } else if cli.persist_record {
            Command::PersistRecord
        } else {
            return Err(Error::Usage("no command given; see --help".into()));
        };
        if cli.dry_run && !matches!(command, Command::Cron | Command::SignCsr(_)) {
            return Err(Error::Usage(
                "--dry-run works with --cron and --signcsr only".into(),
            ));
        }
        let opts = Options {
            dry_run: cli.dry_run,
            force: cli.force,
            force_validation: cli.force_validation,
            accept_terms: cli.accept_terms,
            json: cli.json,
            full_chain: cli.full_chain,
            lock_wait: Duration::from_secs(cli.lock_wait),
            domains: if cli.check {
                Vec::new()
            } else {
                cli.domains.clone()
            },
            alias: cli.alias.clone().filter(|_| !cli.check),
        };
        Ok((command, opts, load_options(cli)))
    }
}

/// The config file to read and the flags that stand for config keys.
fn load_options(cli: &Cli) -> LoadOptions {
    let path = |p: &std::path::Path| p.to_string_lossy().into_owned();
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
    flag("ALPNCERTDIR", cli.alpn.as_deref().map(path), "--alpn");
    flag(
        "PREFERRED_CHAIN",
        cli.preferred_chain.clone(),
        "--preferred-chain",
    );
    flag(
        "OCSP_MUST_STAPLE",
        cli.ocsp.then(|| "yes".to_string()),
        "--ocsp",
    );
    flag("IP_VERSION", cli.ipv4.then(|| "4".to_string()), "--ipv4");
    flag("IP_VERSION", cli.ipv6.then(|| "6".to_string()), "--ipv6");
    flag("HOOK", cli.hook.as_deref().map(path), "--hook");
    flag("CHALLENGETYPE", cli.challenge.clone(), "--challenge");
    flag("JOBS", cli.jobs.map(|n| n.to_string()), "--jobs");
    flag(
        "PERSIST_POLICY",
        cli.persist_wildcard.then(|| "wildcard".to_string()),
        "--persist-wildcard",
    );
    flag(
        "PERSIST_UNTIL",
        cli.persist_until.clone(),
        "--persist-until",
    );
    LoadOptions {
        config: cli.config.clone(),
        overrides,
        no_lock: cli.no_lock,
        lock_suffix: cli.lock_suffix.clone(),
    }
}

/// What a command line that clap refused exits with, once said: 0 for `--help`, 2 for the
/// others, but for `--check` UNKNOWN (3) with the reason on stdout, as a monitoring plugin
/// answers (a monitoring system reads 2 as CRITICAL).
pub fn refused(error: &clap::Error, args: &[std::ffi::OsString]) -> u8 {
    let has = |flag: &str| args.iter().skip(1).any(|a| a == flag);
    if !error.use_stderr() || !has("--check") {
        let _ = error.print();
        return if error.use_stderr() { 2 } else { 0 };
    }
    let text = error.render().to_string();
    let first = text.lines().next().unwrap_or_default();
    let reason = first.strip_prefix("error: ").unwrap_or(first);
    check::unknown(&Error::Usage(reason.to_string()), has("--json"));
    CheckStatus::Unknown.code()
}

/// Runs the command `cli` names and returns the code to exit with. `--check` reports its own
/// errors, as UNKNOWN (a bad command line too); for the other commands the error goes back to
/// `main`.
pub fn run(cli: &Cli) -> Result<u8> {
    let (command, opts, load) = match Command::from_cli(cli) {
        Ok(made) => made,
        Err(e) if cli.check => {
            check::unknown(&e, cli.json);
            return Ok(CheckStatus::Unknown.code());
        }
        Err(e) => return Err(e),
    };
    match command {
        Command::Version => {
            logging::data(VERSION);
            return Ok(0);
        }
        Command::Check(args) => {
            let json = opts.json;
            // Warnings follow the plugin's first line instead of coming before it.
            logging::hold_stderr();
            let status = Session::new(opts, &load)
                .and_then(|session| check::check(&session, &args))
                .unwrap_or_else(|e| {
                    // Said once, on stdout, where the monitoring system reads it.
                    check::unknown(&e, json);
                    CheckStatus::Unknown
                });
            logging::release_stderr();
            return Ok(status.code());
        }
        _ => {}
    }
    let mut session = Session::new(opts, &load)?;
    let status = match command {
        Command::Version | Command::Check(_) => Status::Ok,
        // AUTO_CLEANUP runs inside, before the summary line (not in a dry run).
        Command::Cron => cron::sign_domains(&mut session)?,
        Command::SignCsr(csr) => signcsr::sign_csr(&mut session, &csr)?,
        Command::Revoke { cert, key, reason } => {
            revoke::revoke(&mut session, &cert, key.as_deref(), reason)?
        }
        Command::Register => account::register(&mut session)?,
        Command::Account { rollover: false } => account::update_contact(&mut session)?,
        Command::Account { rollover: true } => account::rollover(&mut session)?,
        Command::Deactivate => account::deactivate(&mut session)?,
        Command::Cleanup { delete } => {
            cleanup::archive_removed(&mut session)?;
            cleanup::cleanup(&mut session, delete)?
        }
        Command::ImportCertbot(dir) => {
            session.lock()?;
            for line in import::import_certbot(&session.config, &dir, unix_now())? {
                logging::info(line);
            }
            Status::Ok
        }
        Command::DisplayTerms => account::display_terms(&session)?,
        Command::Env => env::print_env(&session.config),
        Command::PersistRecord => persist::print_records(&session)?,
    };
    Ok(status.code())
}
