//! One function per command (`--cron` in `cron.rs`, `--check` in `check.rs`), and what they
//! share: the config, the certificates in scope, the lock, the CA and the account.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::json;

use crate::account::{self, Account, Found, Terms};
use crate::acme::jws::b64;
use crate::acme::{Client, KeyId, Transport, Trust};
use crate::challenge::{Solver, Webroot};
use crate::cli::Cli;
use crate::config::{CertSettings, CertSpec, ChallengeType, Config, LoadOptions};
use crate::error::{CheckStatus, Error, Result, Status};
use crate::hooks::Hook;
use crate::issue::{self, Ctx, KeySource, Request};
use crate::renewal::Policy;
use crate::responder::Responder;
use crate::store::{self, AccountDir, CertDir, RunLock};
use crate::x509::{self, CertFacts};
use crate::{check, cron, domains, import, logging};

pub const USER_AGENT: &str = concat!("desiccant/", env!("CARGO_PKG_VERSION"));

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

/// Runs the command `cli` names and returns the code to exit with. `--check` reports its own
/// errors, as UNKNOWN; for the other commands the error goes back to `main`.
pub fn run(cli: &Cli) -> Result<u8> {
    if cli.version {
        logging::data(VERSION);
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
        let status = cron::sign_domains(cli, &config)?;
        if config.auto_cleanup {
            cleanup(cli, &config, false)?;
        }
        status
    } else if let Some(csr) = &cli.signcsr {
        sign_csr(cli, &config, csr)?
    } else if let Some(cert) = &cli.revoke {
        revoke(cli, &config, cert)?
    } else if cli.register {
        register(cli, &config)?
    } else if cli.account {
        update_account(cli, &config)?
    } else if cli.deactivate {
        deactivate(cli, &config)?
    } else if cli.cleanup || cli.cleanup_delete {
        cleanup(cli, &config, cli.cleanup_delete)?
    } else if let Some(dir) = &cli.import_certbot {
        let _lock = lock(cli, &config)?;
        for line in import::import_certbot(&config, dir, unix_now())? {
            logging::info(line);
        }
        Status::Ok
    } else if cli.display_terms {
        display_terms(&config)?
    } else if cli.env {
        print_env(&config)
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

pub(crate) fn policy(force: bool, spec: &CertSpec) -> Policy {
    Policy {
        force,
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
        stopped: crate::stop::requested,
        deadlines: crate::failpoint::deadlines(),
    };
    let client = Client::connect(&config.ca, &transport).map_err(Error::acme(&config.ca))?;
    check_clock(&client)?;
    Ok(client)
}

/// How far this machine's clock may be from the CA's before nothing is done: certificates are
/// judged by our clock (expired? due?) and files named by it.
const MAX_CLOCK_SKEW: i64 = 24 * 3600;

/// Refuses to act when the CA's `Date` says our clock is more than [`MAX_CLOCK_SKEW`] off: a
/// machine that thinks it is years ahead would renew every certificate on every run.
fn check_clock(client: &Client) -> Result<()> {
    let Some(skew) = client.clock_skew.filter(|s| s.abs() > MAX_CLOCK_SKEW) else {
        return Ok(());
    };
    let (amount, way) = if skew < 0 {
        (-skew, "ahead of")
    } else {
        (skew, "behind")
    };
    Err(Error::Refused {
        subject: "clock".into(),
        msg: format!(
            "this machine's clock ({}) is {} days {way} the CA's ({}): nothing was done; set \
             the clock right (timedatectl, chrony, ntpd) and run again",
            logging::utc(unix_now()),
            amount / 86400,
            logging::utc(unix_now() + skew)
        ),
    })
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
        key_algo: config.account_key_algo,
        eab: config.eab.as_ref(),
        now: unix_now(),
    };
    account::load_or_register(client, &dir, terms)
}

/// How a certificate with `settings` proves its names.
pub(crate) fn solver<'a>(
    config: &'a Config,
    settings: &CertSettings,
    hook: Option<&'a Hook>,
    responder: Option<&'a Responder>,
) -> Solver<'a> {
    let kind = settings.challenge;
    Solver {
        kind,
        webroot: (kind == ChallengeType::Http01 && responder.is_none()).then(|| Webroot {
            dir: settings.wellknown.clone(),
        }),
        responder: responder.filter(|_| kind == ChallengeType::Http01),
        hook,
        chain: settings.hook_chain,
        dns: &config.dns,
        alpn_dir: &config.alpn_dir,
        journal: None,
    }
}

/// The built-in http-01 responder, when `HTTP_LISTEN` is set and a certificate needs it.
pub(crate) fn start_responder(
    config: &Config,
    settings: &[&CertSettings],
) -> Result<Option<Responder>> {
    match config.http_listen {
        Some(addr)
            if settings
                .iter()
                .any(|s| s.challenge == ChallengeType::Http01) =>
        {
            Responder::start(addr).map(Some).map_err(Error::Config)
        }
        _ => Ok(None),
    }
}

/// Every http-01 webroot that will be written to exists: a config error otherwise, found
/// before any request.
pub(crate) fn check_webroots(settings: &[&CertSettings], responder: bool) -> Result<()> {
    for s in settings {
        if s.challenge == ChallengeType::Http01 && !responder {
            Webroot {
                dir: s.wellknown.clone(),
            }
            .check()?;
        }
    }
    Ok(())
}

/// The registered account, for commands that need one and never register.
fn existing_account(cli: &Cli, config: &Config, client: &Client) -> Result<Account> {
    let cli = Cli {
        accept_terms: false,
        ..cli.clone()
    };
    load_account(&cli, config, client).map(|(account, _)| account)
}

/// `--signcsr FILE`: orders a certificate for a CSR made elsewhere and prints it, as dehydrated
/// does: `# CERT #`, the certificate, an empty line, and with `--full-chain` `# CHAIN #` and
/// the chain. Everything else goes to stderr.
fn sign_csr(cli: &Cli, config: &Config, path: &Path) -> Result<Status> {
    logging::stdout_is_data();
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::Config(format!("{}: cannot read the CSR: {e}", path.display())))?;
    let (csr, names) =
        x509::read_csr(&text).map_err(|msg| Error::Config(format!("{}: {msg}", path.display())))?;
    let _lock = lock(cli, config)?;
    let responder = start_responder(config, &[&config.defaults])?;
    check_webroots(&[&config.defaults], responder.is_some())?;
    let client = connect(config)?;
    let (account, _) = load_account(cli, config, &client)?;
    let ctx = Ctx {
        client: &client,
        account: &account,
        workers: 16,
        force_validation: false,
    };
    let hook = hook_for(config, None);
    let solver = solver(config, &config.defaults, hook.as_ref(), responder.as_ref());
    let request = Request {
        subject: &names[0],
        names: &names,
        key: KeySource::Csr(csr),
        preferred_chain: config.defaults.preferred_chain.as_deref(),
        profile: config.defaults.profile.as_deref(),
        replaces: None,
    };
    let issue::Done {
        issued, cleaned, ..
    } = issue::issue(&ctx, request, &solver, |_| Ok(()))?;
    let mut out = format!("# CERT #\n{}\n", issued.cert);
    if cli.full_chain {
        out.push_str(&format!("# CHAIN #\n{}", issued.chain));
    }
    logging::data(format_args!("{out}"));
    // The certificate is printed all the same; what was left in place is an error.
    cleaned.map(|()| Status::Ok)
}

/// `--revoke FILE`: revokes the certificate, signed by the account key, or with `--privkey` by
/// the certificate's own key; then renames the file to `FILE-revoked`, as dehydrated does (a
/// symlink is followed to the file it names).
fn revoke(cli: &Cli, config: &Config, path: &Path) -> Result<Status> {
    let file = match std::fs::read_link(path) {
        Ok(target) if target.is_absolute() => target,
        Ok(target) => path.parent().unwrap_or(Path::new(".")).join(target),
        Err(_) => path.to_path_buf(),
    };
    let subject = file.display().to_string();
    let bytes = std::fs::read(&file)
        .map_err(|e| Error::Config(format!("{subject}: cannot read the certificate: {e}")))?;
    let der = x509::pem_certs(&bytes)
        .map_err(|msg| Error::Config(format!("{subject}: {msg}")))?
        .remove(0);
    let cert_key = match &cli.privkey {
        None => None,
        Some(k) => {
            let text = std::fs::read_to_string(k)
                .map_err(|e| Error::Config(format!("{}: cannot read the key: {e}", k.display())))?;
            Some(
                account::read_key(&text).map_err(|e| {
                    Error::Config(format!("{}: cannot use this key: {e}", k.display()))
                })?,
            )
        }
    };
    let _lock = lock(cli, config)?;
    let client = connect(config)?;
    let url = client.directory.revoke_cert.clone().ok_or_else(|| {
        Error::refused(
            &subject,
            "the CA offers no revocation (no revokeCert in its directory)",
        )
    })?;
    let mut payload = json!({ "certificate": b64(&der) });
    if let Some(reason) = cli.reason {
        payload["reason"] = json!(reason);
    }
    let account;
    let (key, key_id) = match &cert_key {
        Some(key) => (key, KeyId::Jwk),
        None => {
            account = existing_account(cli, config, &client)?;
            (&account.key, account.kid())
        }
    };
    client
        .post(key, key_id, &url, Some(&payload))
        .map_err(Error::acme(&subject))?;
    let revoked = PathBuf::from(format!("{}-revoked", file.display()));
    std::fs::rename(&file, &revoked).map_err(Error::io("cannot rename", &file))?;
    logging::info(format_args!(
        "{subject}: revoked, renamed to {}",
        revoked.display()
    ));
    Ok(Status::Ok)
}

/// `--account`: sets the account's contact to `CONTACT_EMAIL` (none when unset), and keeps the
/// CA's answer in `registration_info.json`, the old one saved as `registration_info-<ts>.json`.
fn update_account(cli: &Cli, config: &Config) -> Result<Status> {
    let _lock = lock(cli, config)?;
    let client = connect(config)?;
    let account = existing_account(cli, config, &client)?;
    if cli.rollover {
        let dir = AccountDir::new(&config.accountdir, &config.ca);
        let account =
            account::rollover(&client, &dir, account, config.account_key_algo, unix_now())?;
        logging::info(format_args!(
            "account: {} has a new {} key ({})",
            account.url,
            account.key.alg(),
            account.key.thumbprint()
        ));
        return Ok(Status::Ok);
    }
    let contact: Vec<String> = config
        .contact_email
        .iter()
        .map(|m| format!("mailto:{m}"))
        .collect();
    let response = client
        .post(
            &account.key,
            account.kid(),
            &account.url,
            Some(&json!({ "contact": contact })),
        )
        .map_err(Error::acme("account"))?;
    let dir = AccountDir::new(&config.accountdir, &config.ca);
    let registration = dir.registration();
    if std::fs::read(&registration).ok().as_deref() != Some(&response.body[..]) {
        if registration.exists() {
            let backup = dir
                .dir
                .join(format!("registration_info-{}.json", unix_now()));
            std::fs::copy(&registration, &backup).map_err(Error::io("cannot copy", &backup))?;
        }
        store::write_file(&registration, &response.body, 0o600)?;
    }
    logging::info(format_args!(
        "account: contact of {} is now {}",
        account.url,
        if contact.is_empty() {
            "none".to_string()
        } else {
            contact.join(", ")
        }
    ));
    Ok(Status::Ok)
}

/// `--deactivate`: deactivates the account at the CA for good and marks its folder, as
/// dehydrated does, so that no later run uses it.
fn deactivate(cli: &Cli, config: &Config) -> Result<Status> {
    let _lock = lock(cli, config)?;
    let client = connect(config)?;
    let account = existing_account(cli, config, &client)?;
    let response = client
        .post(
            &account.key,
            account.kid(),
            &account.url,
            Some(&json!({ "status": "deactivated" })),
        )
        .map_err(Error::acme("account"))?;
    let status = response
        .json::<serde_json::Value>()
        .map_err(Error::acme("account"))?["status"]
        .clone();
    if status != "deactivated" {
        return Err(Error::refused(
            "account",
            format!("the CA answered the deactivation with status {status}"),
        ));
    }
    let dir = AccountDir::new(&config.accountdir, &config.ca);
    store::write_file(&dir.dir.join("deactivated"), b"", 0o600)?;
    logging::info(format_args!("account: {} deactivated", account.url));
    Ok(Status::Ok)
}

/// `--display-terms`: the CA's terms of service URL.
fn display_terms(config: &Config) -> Result<Status> {
    let client = connect(config)?;
    match &client.directory.meta.terms_of_service {
        Some(url) => logging::data_line(format_args!("The current terms of service: {url}")),
        None => logging::data_line(format_args!("The CA publishes no terms of service URL.")),
    }
    Ok(Status::Ok)
}

/// `--env`: the configuration as `declare --` lines with dehydrated's variable names, for
/// scripts that source it.
fn print_env(config: &Config) -> Status {
    let dir = AccountDir::new(&config.accountdir, &config.ca);
    let path = |p: &Path| p.display().to_string();
    let d = &config.defaults;
    let keysize = match d.key_algo {
        crate::keys::KeyAlgo::Rsa(bits) => bits.to_string(),
        _ => "4096".into(),
    };
    let vars: [(&str, String); 18] = [
        ("CA", config.ca.clone()),
        ("CERTDIR", path(&config.certdir)),
        ("ALPNCERTDIR", path(&config.basedir.join("alpn-certs"))),
        ("CHALLENGETYPE", d.challenge.name().into()),
        (
            "DOMAINS_D",
            config.domains_d.as_deref().map(path).unwrap_or_default(),
        ),
        ("DOMAINS_TXT", path(&config.domains_txt)),
        ("HOOK", d.hook.as_deref().map(path).unwrap_or_default()),
        ("HOOK_CHAIN", if d.hook_chain { "yes" } else { "no" }.into()),
        (
            "RENEW_DAYS",
            d.renew_days.map(|n| n.to_string()).unwrap_or_default(),
        ),
        ("ACCOUNT_KEY", path(&dir.key())),
        ("ACCOUNT_KEY_JSON", path(&dir.registration())),
        ("ACCOUNT_ID_JSON", path(&dir.id())),
        ("KEYSIZE", keysize),
        ("WELLKNOWN", path(&d.wellknown)),
        ("PRIVATE_KEY_RENEW", "yes".into()),
        ("OPENSSL_CNF", String::new()),
        (
            "CONTACT_EMAIL",
            config.contact_email.clone().unwrap_or_default(),
        ),
        (
            "LOCKFILE",
            config.lockfile.as_deref().map(path).unwrap_or_default(),
        ),
    ];
    logging::data_line(format_args!("# desiccant configuration"));
    for (name, value) in vars {
        logging::data_line(format_args!(
            "declare -- {name}=\"{}\"",
            shell_escape(&value)
        ));
    }
    Status::Ok
}

/// A value inside double quotes, as bash's `declare -p` writes it.
fn shell_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if matches!(c, '"' | '\\' | '$' | '`') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// `--cleanup` and `AUTO_CLEANUP`: moves every file of `certs/<name>/` that no symlink points
/// at (older sets, `-revoked` files) to `BASEDIR/archive/<name>/`; `--cleanup-delete` deletes
/// them. Broken symlinks are removed.
fn cleanup(cli: &Cli, config: &Config, delete: bool) -> Result<Status> {
    let _lock = lock(cli, config)?;
    let Ok(entries) = std::fs::read_dir(&config.certdir) else {
        return Ok(Status::Ok);
    };
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    for dir in dirs {
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        for unused in store::unused_files(&dir)? {
            let file = dir.join(&unused);
            if delete {
                std::fs::remove_file(&file).map_err(Error::io("cannot delete", &file))?;
                logging::info(format_args!("{name}: deleted unused {unused}"));
            } else {
                let archive = config.basedir.join("archive").join(&name);
                store::create_dir(&archive, 0o700)?;
                std::fs::rename(&file, archive.join(&unused))
                    .map_err(Error::io("cannot move to the archive", &file))?;
                logging::info(format_args!("{name}: archived unused {unused}"));
            }
        }
    }
    Ok(Status::Ok)
}
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

/// The environment dehydrated exports to its hook, for `spec` when given.
pub(crate) fn hook_env(
    config: &Config,
    spec: Option<(&CertSpec, &[String])>,
) -> Vec<(String, String)> {
    let path = |p: &Path| p.display().to_string();
    let settings = spec.map_or(&config.defaults, |(s, _)| &s.settings);
    let mut env = vec![
        ("BASEDIR".to_string(), path(&config.basedir)),
        ("WELLKNOWN".into(), path(&settings.wellknown)),
        ("CERTDIR".into(), path(&config.certdir)),
        (
            "ALPNCERTDIR".into(),
            path(&config.basedir.join("alpn-certs")),
        ),
        (
            "CONFIG".into(),
            config.file.as_deref().map(path).unwrap_or_default(),
        ),
        ("COMMAND".into(), "sign_domains".into()),
        ("CHALLENGETYPE".into(), settings.challenge.name().into()),
        ("KEY_ALGO".into(), settings.key_algo.config_name().into()),
        ("PRIVATE_KEY_ROLLOVER".into(), "no".into()),
    ];
    if let Some((spec, names)) = spec {
        env.push(("alias".into(), spec.name.clone()));
        env.push(("altnames".into(), names.join(" ")));
    }
    env
}

/// The hook of `spec` (its own `HOOK`, else the config's), or the config's for the run itself.
pub(crate) fn hook_for(config: &Config, spec: Option<(&CertSpec, &[String])>) -> Option<Hook> {
    let settings = spec.map_or(&config.defaults, |(s, _)| &s.settings);
    settings.hook.as_ref().map(|path| Hook {
        path: path.clone(),
        timeout: config.hook_timeout,
        env: hook_env(config, spec),
        log: Some(logging::hook_line),
    })
}
