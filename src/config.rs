//! The configuration of a run: dehydrated's keys from the config file and `CONFIG_D`, then
//! `DESICCANT_<KEY>` variables, then flags, merged once into a [`Config`]; and each
//! certificate's own settings ([`CertSpec`]) from `certs/<name>/config` or `DOMAINS_D/<name>`.

use std::path::{Path, PathBuf};

use std::net::SocketAddr;

use crate::acme::Eab;
use crate::acme::pace::{Limits, MAX_JOBS, OrderLimit};
use crate::config_file::{self, Origin, Vars};
use crate::dns::{self, TsigKey, TsigKeyError};
use crate::domains::CertLine;
use crate::error::{Error, Result};
use crate::hooks::Hook;
use crate::keys::KeyAlgo;
use crate::store::{self, AccountDir, CertDir, CertModes, Owner, defaults};
use crate::trust;
use crate::values::CA_PRESETS;

/// The folders where dehydrated looks for its `config` first, in its order; then it looks in
/// its working folder and in its script's folder.
pub const DEHYDRATED_CONFIG_DIRS: &[&str] = &["/etc/dehydrated", "/usr/local/etc/dehydrated"];

/// Where the config file is looked for when `--config` is not given, in order: our own
/// places, then dehydrated's in its order (its two folders, the working folder, the program's
/// folder), so that a crontab line with only the program's name changed reads the same config.
pub fn config_lookup() -> Vec<PathBuf> {
    let mut places: Vec<PathBuf> = ["/etc/desiccant/config", "/usr/local/etc/desiccant/config"]
        .map(PathBuf::from)
        .to_vec();
    places.extend(
        DEHYDRATED_CONFIG_DIRS
            .iter()
            .map(|d| Path::new(d).join("config")),
    );
    places.push(PathBuf::from("./config"));
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf))
    {
        places.push(dir.join("config"));
    }
    places
}

/// The first of `places` that holds a config file. A place this user cannot look into or
/// read (a folder at 0700, a file at 0600 of root's) is an error naming it, never skipped:
/// skipping it would run with the defaults in another BASEDIR.
fn find_config(places: &[PathBuf]) -> Result<Option<PathBuf>> {
    for place in places {
        if let Some(file) = config_at(place)? {
            return Ok(Some(file));
        }
    }
    Ok(None)
}

/// `path` when it is a config file this user can read; None when nothing is there (or only
/// something that is no file); an error when the kernel refuses to say or to open it.
fn config_at(path: &Path) -> Result<Option<PathBuf>> {
    let unreadable = || {
        Error::Config(format!(
            "{}: cannot read the config file as this user (uid {}): permission denied; run \
             as root (a sudo rule for a monitoring user), or give this user read access to \
             the folder and the file through a group",
            path.display(),
            store::effective_uid()
        ))
    };
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_file() => match std::fs::File::open(path) {
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => Err(unreadable()),
            // Any other failure to open it is reported by the reader, with its reason.
            _ => Ok(Some(path.to_path_buf())),
        },
        Ok(_) => Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => Err(unreadable()),
        Err(_) => Ok(None),
    }
}

/// The places of [`config_lookup`], for messages.
pub fn config_lookup_text() -> String {
    config_lookup()
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The origin of BASEDIR when nothing set it.
const BASEDIR_DEFAULT: &str = "the config file's folder";

/// What this version does with a config key.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Support {
    /// Read and acted on.
    Used,
    /// Accepted for compatibility; nothing for us to do with it.
    Ignored,
    /// Accepted, with a warning when set to yes: CAs no longer run OCSP.
    Obsolete,
}

/// Every key a config file may set, and whether a certificate's own config may set it
/// (dehydrated's list for per-certificate configs).
const KEYS: &[(&str, Support, bool)] = &[
    ("BASEDIR", Support::Used, false),
    ("CA", Support::Used, false),
    ("CA_BUNDLE", Support::Used, false),
    ("CERTDIR", Support::Used, false),
    ("ACCOUNTDIR", Support::Used, false),
    ("DOMAINS_TXT", Support::Used, false),
    ("DOMAINS_D", Support::Used, false),
    ("CONFIG_D", Support::Used, false),
    ("CONTACT_EMAIL", Support::Used, false),
    ("LOCKFILE", Support::Used, false),
    ("JOBS", Support::Used, false),
    ("RATE_LIMITS", Support::Used, false),
    ("ORDER_LIMIT", Support::Used, false),
    ("IP_VERSION", Support::Used, false),
    ("DEHYDRATED_USER", Support::Used, false),
    ("DEHYDRATED_GROUP", Support::Used, false),
    ("WELLKNOWN", Support::Used, true),
    ("WEBROOT", Support::Used, true),
    ("KEY_ALGO", Support::Used, true),
    ("ACCOUNT_KEY_ALGO", Support::Used, false),
    ("KEYSIZE", Support::Used, true),
    ("RENEW_DAYS", Support::Used, true),
    ("CHALLENGETYPE", Support::Used, true),
    ("OLDCA", Support::Ignored, false),
    ("OPENSSL", Support::Ignored, false),
    ("CURL_OPTS", Support::Ignored, false),
    ("API", Support::Ignored, false),
    ("CHAINCACHE", Support::Used, false),
    ("ALPNCERTDIR", Support::Used, false),
    ("OPENSSL_CNF", Support::Ignored, true),
    ("OCSP_MUST_STAPLE", Support::Obsolete, true),
    ("OCSP_FETCH", Support::Obsolete, true),
    ("OCSP_DAYS", Support::Obsolete, true),
    ("HOOK", Support::Used, true),
    ("HOOK_CHAIN", Support::Used, true),
    ("AUTH_HOOK", Support::Used, true),
    ("CLEANUP_HOOK", Support::Used, true),
    ("DEPLOY_HOOK", Support::Used, true),
    ("HOOK_TIMEOUT", Support::Used, false),
    ("RUN_TIMEOUT", Support::Used, false),
    ("HTTP_LISTEN", Support::Used, false),
    ("DNS_UPDATE_SERVER", Support::Used, false),
    ("DNS_UPDATE_KEY_FILE", Support::Used, false),
    ("DNS_UPDATE_KEY_NAME", Support::Used, false),
    ("DNS_UPDATE_KEY_ALGORITHM", Support::Used, false),
    ("DNS_UPDATE_KEY_SECRET", Support::Used, false),
    ("DNS_UPDATE_TTL", Support::Used, false),
    ("DNS_CHECK", Support::Used, false),
    ("DNS_CHECK_SERVERS", Support::Used, false),
    ("DNS_RESOLVER", Support::Used, false),
    ("DNS_WAIT", Support::Used, false),
    ("CERT_FILE_MODE", Support::Used, false),
    ("KEY_FILE_MODE", Support::Used, false),
    ("CERT_DIR_MODE", Support::Used, false),
    ("CERT_OWNER", Support::Used, false),
    ("CERT_GROUP", Support::Used, false),
    ("PKCS12_EXPORT", Support::Used, false),
    ("PKCS12_PASSPHRASE", Support::Used, false),
    ("POST_RENEW_HOOK", Support::Used, false),
    ("PRIVATE_KEY_RENEW", Support::Used, true),
    ("PRIVATE_KEY_ROLLOVER", Support::Used, true),
    ("PREFERRED_CHAIN", Support::Used, true),
    ("ACME_PROFILE", Support::Used, true),
    ("ARI", Support::Used, false),
    ("AUTO_CLEANUP", Support::Used, false),
    ("EAB_KID", Support::Used, false),
    ("EAB_HMAC_KEY", Support::Used, false),
    ("EAB_ALGORITHM", Support::Used, false),
    ("METRICS_FILE", Support::Used, false),
    ("PERSIST_ISSUER", Support::Used, false),
    ("PERSIST_POLICY", Support::Used, false),
    ("PERSIST_UNTIL", Support::Used, false),
];

fn key(name: &str) -> Option<(Support, bool)> {
    KEYS.iter()
        .find(|(k, _, _)| *k == name)
        .map(|(_, s, per_cert)| (*s, *per_cert))
}

/// What the command line contributes: the config file to read and values that win over it.
#[derive(Debug, Default)]
pub struct LoadOptions {
    pub config: Option<PathBuf>,
    /// `(KEY, value, flag)`: a flag's value for a config key, e.g. `("CA", url, "--ca")`.
    pub overrides: Vec<(&'static str, String, &'static str)>,
    pub no_lock: bool,
    pub lock_suffix: Option<String>,
}

/// How a certificate proves control of its names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChallengeType {
    Http01,
    Dns01,
    TlsAlpn01,
    /// draft-ietf-acme-dns-account-label: dns-01's value under a label of the account's own.
    DnsAccount01,
    /// draft-ietf-acme-dns-persist: one standing TXT record binds the name to the account.
    DnsPersist01,
}

impl ChallengeType {
    /// Every challenge type, in the order of [`crate::values::CHALLENGE_TYPES`].
    pub const ALL: [ChallengeType; 5] = [
        ChallengeType::Http01,
        ChallengeType::Dns01,
        ChallengeType::TlsAlpn01,
        ChallengeType::DnsAccount01,
        ChallengeType::DnsPersist01,
    ];

    /// The RFC 8555 / RFC 8737 / draft name, which is also `CHALLENGETYPE`'s value.
    pub fn name(self) -> &'static str {
        match self {
            ChallengeType::Http01 => "http-01",
            ChallengeType::Dns01 => "dns-01",
            ChallengeType::TlsAlpn01 => "tls-alpn-01",
            ChallengeType::DnsAccount01 => "dns-account-01",
            ChallengeType::DnsPersist01 => "dns-persist-01",
        }
    }

    /// The type named `name`, None for a name that is none of [`ChallengeType::ALL`].
    pub fn parse(name: &str) -> Option<ChallengeType> {
        ChallengeType::ALL.into_iter().find(|c| c.name() == name)
    }

    /// Whether the proof is a TXT record in DNS: it proves wildcards, and it cannot prove an
    /// IP address.
    pub fn is_dns(self) -> bool {
        match self {
            ChallengeType::Dns01 | ChallengeType::DnsAccount01 | ChallengeType::DnsPersist01 => {
                true
            }
            ChallengeType::Http01 | ChallengeType::TlsAlpn01 => false,
        }
    }
}

/// Built-in dns-01: RFC 2136 updates, and the check that the records are out there.
#[derive(Debug, Clone)]
pub struct DnsConfig {
    /// `DNS_UPDATE_SERVER` and its TSIG key, with `DNS_UPDATE_TTL`.
    pub update: Option<(SocketAddr, TsigKey, u32)>,
    /// `DNS_CHECK`: ask the zone's name servers until they all have the records.
    pub check: bool,
    /// `DNS_CHECK_SERVERS`: ask these instead of the zone's name servers.
    pub check_servers: Vec<SocketAddr>,
    /// `DNS_RESOLVER`: where zones and name servers are looked up; /etc/resolv.conf's first.
    pub resolver: Option<SocketAddr>,
    /// `DNS_WAIT`: how long the records may take to reach every name server.
    pub wait: std::time::Duration,
}

/// dns-persist-01's record, as `--persist-record` prints it and desiccant publishes it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PersistConfig {
    /// `PERSIST_ISSUER`: the CA's issuer domain name; None takes the first of the directory's
    /// `caaIdentities`.
    pub issuer: Option<String>,
    /// `PERSIST_POLICY=wildcard` (`--persist-wildcard`): every record allows wildcards and
    /// subdomains, not only those of names with a wildcard.
    pub wildcard: bool,
    /// `PERSIST_UNTIL` (`--persist-until`): the record's `persistUntil`, Unix seconds.
    pub until: Option<i64>,
}

/// The settings a certificate's own config may change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertSettings {
    /// dehydrated's hook program, checked to be an executable file.
    pub hook: Option<PathBuf>,
    /// `HOOK_CHAIN=yes`: one deploy_challenge and one clean_challenge call for all names.
    pub hook_chain: bool,
    pub key_algo: KeyAlgo,
    /// `PRIVATE_KEY_RENEW`: a new key for every certificate (else the current one is kept).
    pub key_renew: bool,
    /// `PRIVATE_KEY_ROLLOVER`: keep the next key ready in `privkey.roll.pem`.
    pub key_rollover: bool,
    /// Renew when fewer days than this are left; None: when a third of the lifetime is left.
    pub renew_days: Option<u32>,
    /// Where http-01 files go: `WELLKNOWN`, or `WEBROOT/.well-known/acme-challenge`.
    pub wellknown: PathBuf,
    /// `WEBROOT`: the document root `wellknown` is under; its missing folders are made.
    pub webroot: Option<PathBuf>,
    pub challenge: ChallengeType,
    /// certbot's hooks: `AUTH_HOOK`, `CLEANUP_HOOK`, `DEPLOY_HOOK`, shell commands.
    pub certbot: CertbotHooks,
    /// `PREFERRED_CHAIN`: the issuer common name of the wanted chain's topmost certificate.
    pub preferred_chain: Option<String>,
    /// `ACME_PROFILE`: the CA's certificate profile (`classic`, `tlsserver`, `shortlived`).
    pub profile: Option<String>,
}

/// certbot's hook commands, each run as certbot runs it: `/bin/sh -c COMMAND`, with every
/// value in the environment and nothing pasted into the command.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CertbotHooks {
    /// `AUTH_HOOK` (`--manual-auth-hook`): puts one challenge in place; for http-01 instead
    /// of a file in `WELLKNOWN` or the built-in responder.
    pub auth: Option<String>,
    /// `CLEANUP_HOOK` (`--manual-cleanup-hook`): takes it away.
    pub cleanup: Option<String>,
    /// `DEPLOY_HOOK` (`--deploy-hook`): once per certificate that went live.
    pub deploy: Option<String>,
}

/// One certificate with everything needed to keep it.
#[derive(Debug, Clone)]
pub struct CertSpec {
    /// The folder name under `certs/`.
    pub name: String,
    /// Every name, first one first.
    pub names: Vec<String>,
    /// Shared with [`Config::defaults`] when the certificate has no config of its own.
    pub settings: std::sync::Arc<CertSettings>,
}

/// The whole configuration of a run, resolved once.
#[derive(Debug, Clone)]
pub struct Config {
    /// The config file read, if any.
    pub file: Option<PathBuf>,
    pub basedir: PathBuf,
    /// The CA's directory URL (presets resolved).
    pub ca: String,
    pub ca_bundle: Option<PathBuf>,
    pub certdir: PathBuf,
    pub accountdir: PathBuf,
    pub domains_txt: PathBuf,
    /// Per-certificate configs live here as `DOMAINS_D/<name>` instead of `certs/<name>/config`.
    pub domains_d: Option<PathBuf>,
    pub contact_email: Option<String>,
    /// None with `--no-lock`.
    pub lockfile: Option<PathBuf>,
    /// Certificates issued at the same time.
    pub jobs: usize,
    /// `JOBS` was set (file, environment or `--jobs`); else a run chooses from the CA's round
    /// trip and limits, and `jobs` is only the default for work before that is known.
    pub jobs_set: bool,
    /// `RATE_LIMITS`: the CA's request limits per endpoint class.
    pub rate_limits: Limits,
    /// `ORDER_LIMIT`: new orders an account may create in a window; None for no limit.
    pub order_limit: Option<OrderLimit>,
    /// `EAB_KID`, `EAB_HMAC_KEY` and `EAB_ALGORITHM`: external account binding.
    pub eab: Option<Eab>,
    /// `ACCOUNT_KEY_ALGO` (with `KEYSIZE` for rsa): the type of a new account key.
    pub account_key_algo: KeyAlgo,
    /// `IP_VERSION`: 4 or 6 to reach the CA over that protocol only.
    pub ip_version: Option<u8>,
    /// A hook or `POST_RENEW_HOOK` still running after this long is killed.
    pub hook_timeout: std::time::Duration,
    /// `RUN_TIMEOUT`: a `--cron` run still going after this long stops as if sent SIGTERM;
    /// None (`0`) for no limit.
    pub run_timeout: Option<std::time::Duration>,
    /// `POST_RENEW_HOOK`: one shell command run after a batch that changed a certificate.
    pub post_renew_hook: Option<String>,
    /// Modes and owner of what is written into `certs/<name>/`.
    pub modes: CertModes,
    /// `AUTO_CLEANUP=yes`: archive unused files after each `--cron` run.
    pub auto_cleanup: bool,
    /// `ARI`: ask the CA's renewal information (RFC 9773) when it offers it.
    pub ari: bool,
    /// `HTTP_LISTEN`: answer http-01 from a built-in server on this address, not from WELLKNOWN.
    pub http_listen: Option<SocketAddr>,
    /// `ALPNCERTDIR`: where tls-alpn-01 certificates are written for the TLS server.
    pub alpn_dir: PathBuf,
    /// `CHAINCACHE`: every chain issued, by issuer, as dehydrated keeps it.
    pub chain_cache: PathBuf,
    pub dns: DnsConfig,
    pub persist: PersistConfig,
    /// `PKCS12_EXPORT=yes`: also write `cert.p12` with this passphrase (`PKCS12_PASSPHRASE`,
    /// empty when unset). A secret: never logged.
    pub pkcs12_passphrase: Option<String>,
    /// `METRICS_FILE`: the Prometheus textfile written after every `--cron` run and
    /// `--check`; None writes none.
    pub metrics_file: Option<PathBuf>,
    /// The settings of a certificate without a config of its own.
    pub defaults: std::sync::Arc<CertSettings>,
    /// Warnings found while reading (obsolete keys, no config file), for the caller to log.
    pub warnings: Vec<String>,
    /// Every key as read, for the expansion of `$KEY` in per-certificate configs.
    vars: Vars,
}

impl Config {
    /// Reads the config file (and `CONFIG_D`), then `DESICCANT_<KEY>` variables of `env`, then
    /// the flags in `opts`; later sources win. Errors name the file and line, or the variable.
    pub fn load(opts: &LoadOptions, env: &dyn Fn(&str) -> Option<String>) -> Result<Config> {
        let file = match &opts.config {
            Some(path) => Some(config_at(path)?.ok_or_else(|| {
                Error::Config(format!("{}: config file not found", path.display()))
            })?),
            None => find_config(&config_lookup())?,
        };
        let mut vars = Vars::default();
        let folder = file
            .as_deref()
            .map(parent_dir)
            .unwrap_or_else(|| ".".into());
        let folder = folder.to_string_lossy().into_owned();
        vars.set("BASEDIR", folder.clone(), Origin(BASEDIR_DEFAULT.into()));
        // dehydrated's own folder; configs of git-clone installs use it for BASEDIR.
        vars.set("SCRIPTDIR", folder, Origin(BASEDIR_DEFAULT.into()));
        if let Some(f) = &file {
            let read = config_file::read_file(f, &vars, env)?;
            check_keys(&read)?;
            vars.apply(read);
            if let Some(dir) = vars.value("CONFIG_D").map(PathBuf::from) {
                let files = config_file::config_d_files(&dir)
                    .map_err(|msg| bad_with(&vars, "CONFIG_D", &msg))?;
                for f in files {
                    let read = config_file::read_file(&f, &vars, env)?;
                    check_keys(&read)?;
                    vars.apply(read);
                }
            }
        }
        for (key, _, _) in KEYS {
            if let Some(value) = env(&format!("DESICCANT_{key}")) {
                vars.set(
                    key,
                    value,
                    Origin(format!("environment variable DESICCANT_{key}")),
                );
            }
        }
        for (key, value, flag) in &opts.overrides {
            vars.set(key, value.clone(), Origin((*flag).to_string()));
        }
        Config::resolve(file, vars, opts)
    }

    pub(crate) fn resolve(file: Option<PathBuf>, vars: Vars, opts: &LoadOptions) -> Result<Config> {
        let mut warnings = unsupported(&vars)?;
        if file.is_none() && vars.origin("BASEDIR").map(|o| o.0.as_str()) == Some(BASEDIR_DEFAULT) {
            warnings.push(format!(
                "no config file found (looked for {}); using the defaults with BASEDIR .",
                config_lookup_text()
            ));
        }
        let basedir = PathBuf::from(vars.value("BASEDIR").unwrap_or("."));
        let under = |key: &str, default: &str| -> PathBuf {
            vars.value(key)
                .map(PathBuf::from)
                .unwrap_or_else(|| basedir.join(default))
        };
        let ca = vars.value("CA").unwrap_or("letsencrypt");
        if ca.starts_with("buypass") {
            warnings.push(format!(
                "{}: CA: Buypass has announced the end of its ACME service; check that it \
                 still issues, or choose another CA",
                vars.origin("CA").map(|o| o.to_string()).unwrap_or_default()
            ));
        }
        let ca = match CA_PRESETS.iter().find(|(name, _)| *name == ca) {
            Some((_, url)) => (*url).to_string(),
            None if ca.starts_with("https://") => ca.to_string(),
            None => {
                return Err(bad(
                    &vars,
                    "CA",
                    "is neither an https:// directory URL nor one of letsencrypt, \
                     letsencrypt-test, zerossl, buypass, buypass-test, google, google-test",
                ));
            }
        };
        let jobs = number(&vars, "JOBS", 4)?;
        if jobs == 0 || jobs as usize > MAX_JOBS {
            return Err(bad(
                &vars,
                "JOBS",
                &format!("must be between 1 and {MAX_JOBS}"),
            ));
        }
        let rate_limits = Limits::parse(vars.value("RATE_LIMITS").unwrap_or_default())
            .map_err(|why| bad(&vars, "RATE_LIMITS", &format!("is not valid: {why}")))?;
        let order_limit = match vars.value("ORDER_LIMIT") {
            None => Some(OrderLimit::default()),
            Some("none") => None,
            Some(v) => Some(
                OrderLimit::parse(v)
                    .map_err(|why| bad(&vars, "ORDER_LIMIT", &format!("is not valid: {why}")))?,
            ),
        };
        let ip_version = match vars.value("IP_VERSION") {
            None => None,
            Some("4") => Some(4),
            Some("6") => Some(6),
            Some(_) => return Err(bad(&vars, "IP_VERSION", "must be 4, 6 or empty")),
        };
        let lockfile = if opts.no_lock {
            None
        } else {
            let mut lock = under("LOCKFILE", defaults::LOCKFILE).into_os_string();
            if let Some(suffix) = &opts.lock_suffix {
                lock.push(format!("-{suffix}"));
            }
            Some(PathBuf::from(lock))
        };
        let contact_email = vars.value("CONTACT_EMAIL").map(str::to_string);
        if let Some(mail) = &contact_email
            && (!mail.contains('@') || mail.contains(char::is_whitespace) || mail.contains(','))
        {
            return Err(bad(&vars, "CONTACT_EMAIL", "must be one e-mail address"));
        }
        check_user(&vars)?;
        let hook_timeout =
            std::time::Duration::from_secs(u64::from(number(&vars, "HOOK_TIMEOUT", 600)?));
        let run_timeout = match number(&vars, "RUN_TIMEOUT", 3600)? {
            0 => None,
            secs => Some(std::time::Duration::from_secs(u64::from(secs))),
        };
        let modes = cert_modes(&vars)?;
        let account_key_algo = KeyAlgo::parse(
            vars.value("ACCOUNT_KEY_ALGO").unwrap_or("prime256v1"),
            number(&vars, "KEYSIZE", 4096)?,
        )
        .map_err(|msg| {
            bad_with(
                &vars,
                "ACCOUNT_KEY_ALGO",
                &msg.replace("KEY_ALGO", "ACCOUNT_KEY_ALGO"),
            )
        })?;
        let auto_cleanup = match vars.value("AUTO_CLEANUP") {
            None | Some("no") => false,
            Some("yes") => true,
            Some(_) => return Err(bad(&vars, "AUTO_CLEANUP", "must be yes or no")),
        };
        let pkcs12_passphrase = match vars.value("PKCS12_EXPORT") {
            None | Some("no") => None,
            Some("yes") => Some(
                vars.get("PKCS12_PASSPHRASE")
                    .unwrap_or_default()
                    .to_string(),
            ),
            Some(_) => return Err(bad(&vars, "PKCS12_EXPORT", "must be yes or no")),
        };
        let http_listen = match vars.value("HTTP_LISTEN") {
            None => None,
            Some(v) => Some(v.parse::<SocketAddr>().map_err(|_| {
                bad(
                    &vars,
                    "HTTP_LISTEN",
                    "is not an address and port such as 127.0.0.1:8888 or [::1]:8888",
                )
            })?),
        };
        let dns = dns_config(&vars)?;
        let persist = persist_config(&vars)?;
        if !matches!(
            vars.value("EAB_ALGORITHM"),
            None | Some("HS256" | "HS384" | "HS512")
        ) {
            return Err(bad(&vars, "EAB_ALGORITHM", "must be HS256, HS384 or HS512"));
        }
        let eab = match (vars.value("EAB_KID"), vars.value("EAB_HMAC_KEY")) {
            (None, None) => None,
            (Some(kid), Some(mac)) => Some(
                Eab::new(kid, mac, vars.value("EAB_ALGORITHM").unwrap_or("HS256")).map_err(
                    |e| bad_with(&vars, "EAB_HMAC_KEY", &format!("EAB_HMAC_KEY: {}", e.0)),
                )?,
            ),
            (Some(_), None) => return Err(bad(&vars, "EAB_KID", "needs EAB_HMAC_KEY too")),
            (None, Some(_)) => {
                return Err(bad_with(
                    &vars,
                    "EAB_HMAC_KEY",
                    "EAB_HMAC_KEY needs EAB_KID too",
                ));
            }
        };
        let metrics_file = metrics_file(&vars, &mut warnings)?;
        let ari = match vars.value("ARI") {
            None | Some("yes") => true,
            Some("no") => false,
            Some(_) => return Err(bad(&vars, "ARI", "must be yes or no")),
        };
        Ok(Config {
            ari,
            metrics_file,
            eab,
            account_key_algo,
            http_listen,
            alpn_dir: under("ALPNCERTDIR", defaults::ALPNCERTDIR),
            chain_cache: under("CHAINCACHE", defaults::CHAINCACHE),
            dns,
            persist,
            pkcs12_passphrase,
            auto_cleanup,
            modes,
            hook_timeout,
            run_timeout,
            post_renew_hook: vars.value("POST_RENEW_HOOK").map(str::to_string),
            file,
            certdir: under("CERTDIR", defaults::CERTDIR),
            accountdir: under("ACCOUNTDIR", defaults::ACCOUNTDIR),
            domains_txt: under("DOMAINS_TXT", defaults::DOMAINS_TXT),
            domains_d: vars.value("DOMAINS_D").map(PathBuf::from),
            ca_bundle: vars.value("CA_BUNDLE").map(PathBuf::from),
            defaults: std::sync::Arc::new(settings(&vars)?),
            basedir,
            ca,
            contact_email,
            lockfile,
            jobs: jobs as usize,
            jobs_set: vars.value("JOBS").is_some(),
            rate_limits,
            order_limit,
            ip_version,
            warnings,
            vars,
        })
    }

    /// The certificate of a domains.txt line with its settings: the defaults, changed by
    /// `DOMAINS_D/<name>` when `DOMAINS_D` is set, else by `certs/<name>/config`, if it exists.
    /// With `take_back` (the commands that write under `certs/`), a folder another user owns
    /// or others can write is first made the run's again ([`CertDir::take_back`]); without it
    /// nothing is changed, and such a folder's config meets the trust check as it is.
    /// Returns the warnings to log with it.
    pub fn cert_spec(
        &self,
        line: &CertLine,
        env: &dyn Fn(&str) -> Option<String>,
        take_back: bool,
    ) -> Result<(CertSpec, Vec<String>)> {
        let cert_dir = CertDir::new(&self.certdir, &line.name);
        let mut warnings = Vec::new();
        // A folder an earlier version gave to CERT_OWNER (or made under umask 000) is taken
        // back before its config is read; the config is then obeyed only when root or we own
        // it (the trust check of `read_file`). When it cannot be taken back, that check says
        // what is wrong.
        if take_back && let Ok(true) = cert_dir.take_back(&self.modes) {
            warnings.push(format!(
                "{}: the folder was another user's or open to others' writes; it is the run's \
                 again (only its files are given to CERT_OWNER), and a config in it is obeyed \
                 only when root owns it",
                cert_dir.dir.display()
            ));
        }
        let path = match &self.domains_d {
            Some(dir) => dir.join(&line.name),
            None => cert_dir.config(),
        };
        // Anything there, a link or a file of another user included, goes to the trust check.
        let settings = if std::fs::symlink_metadata(&path).is_ok() {
            let read = config_file::read_file(&path, &self.vars, env)?;
            let mut vars = self.vars.clone();
            // Its own WEBROOT or WELLKNOWN replaces the main config's choice of either.
            if read
                .iter()
                .any(|a| a.key == "WEBROOT" || a.key == "WELLKNOWN")
            {
                vars.remove("WEBROOT");
                vars.remove("WELLKNOWN");
            }
            for a in read {
                match key(&a.key) {
                    None => return Err(unknown_key(&a.origin, &a.key)),
                    Some((_, false)) => warnings.push(format!(
                        "{}: {} cannot be set for one certificate; it is ignored here",
                        a.origin, a.key
                    )),
                    Some((_, true)) => vars.set(&a.key, a.value, a.origin),
                }
            }
            warnings.extend(unsupported(&vars)?);
            std::sync::Arc::new(settings(&vars)?)
        } else {
            std::sync::Arc::clone(&self.defaults)
        };
        let spec = CertSpec {
            name: line.name.clone(),
            names: line.names.clone(),
            settings,
        };
        self.check_challenge(&spec, line)?;
        Ok((spec, warnings))
    }
}

impl Config {
    /// dehydrated's variables as this configuration sets them, for a certificate with
    /// `settings` (the defaults for the run itself): what `--env` prints and what every hook
    /// finds in its environment, from this one list so that the two never differ.
    pub fn dehydrated_vars(&self, settings: &CertSettings) -> Vec<(&'static str, String)> {
        let path = |p: &Path| p.display().to_string();
        let opt_path = |p: Option<&Path>| p.map(path).unwrap_or_default();
        let yes_no = |b: bool| if b { "yes" } else { "no" }.to_string();
        let account = AccountDir::new(&self.accountdir, &self.ca);
        let keysize = match settings.key_algo {
            KeyAlgo::Rsa(bits) => bits.to_string(),
            _ => "4096".into(),
        };
        vec![
            ("BASEDIR", path(&self.basedir)),
            ("CONFIG", opt_path(self.file.as_deref())),
            ("CA", self.ca.clone()),
            ("CERTDIR", path(&self.certdir)),
            ("ALPNCERTDIR", path(&self.alpn_dir)),
            ("CHALLENGETYPE", settings.challenge.name().into()),
            ("DOMAINS_D", opt_path(self.domains_d.as_deref())),
            ("DOMAINS_TXT", path(&self.domains_txt)),
            ("HOOK", opt_path(settings.hook.as_deref())),
            ("HOOK_CHAIN", yes_no(settings.hook_chain)),
            (
                "RENEW_DAYS",
                settings
                    .renew_days
                    .map(|n| n.to_string())
                    .unwrap_or_default(),
            ),
            ("ACCOUNT_KEY", path(&account.key())),
            ("ACCOUNT_KEY_JSON", path(&account.registration())),
            ("ACCOUNT_ID_JSON", path(&account.id())),
            ("KEY_ALGO", settings.key_algo.config_name().into()),
            ("KEYSIZE", keysize),
            ("WELLKNOWN", path(&settings.wellknown)),
            ("PRIVATE_KEY_RENEW", yes_no(settings.key_renew)),
            ("PRIVATE_KEY_ROLLOVER", yes_no(settings.key_rollover)),
            ("OPENSSL_CNF", String::new()),
            (
                "CONTACT_EMAIL",
                self.contact_email.clone().unwrap_or_default(),
            ),
            ("LOCKFILE", opt_path(self.lockfile.as_deref())),
        ]
    }

    /// Refuses a run whose own settings use dns-01 with no way to set a TXT record: every
    /// certificate without a config of its own would fail, so it is the run's config error, as
    /// dehydrated makes it.
    pub fn check_defaults(&self) -> Result<()> {
        if self.can_set_txt(&self.defaults) {
            return Ok(());
        }
        Err(bad(
            &self.vars,
            "CHALLENGETYPE",
            &format!(
                "is {}, but there is neither a HOOK or AUTH_HOOK that sets TXT records nor \
                 DNS_UPDATE_SERVER for built-in updates",
                self.defaults.challenge.name()
            ),
        ))
    }

    /// Whether a certificate with `settings` can prove its names by dns-01, when it uses it:
    /// by its hook or by built-in updates.
    fn can_set_txt(&self, settings: &CertSettings) -> bool {
        // dns-persist-01's record may be published by hand, once (`--persist-record`).
        !settings.challenge.is_dns()
            || settings.challenge == ChallengeType::DnsPersist01
            || settings.hook.is_some()
            || settings.certbot.auth.is_some()
            || self.dns.update.is_some()
    }

    /// Refuses a certificate whose names its challenge type cannot prove, or a dns-01 one with
    /// neither a hook nor DNS updates: found before any request.
    fn check_challenge(&self, spec: &CertSpec, line: &CertLine) -> Result<()> {
        let kind = spec.settings.challenge;
        let bad = |msg: String| Err(Error::Config(format!("{}: {msg}", line.origin)));
        for name in &spec.names {
            if name.starts_with("*.") && !kind.is_dns() {
                return bad(format!(
                    "{name} is a wildcard, which only dns-01, dns-account-01 or dns-persist-01 \
                     can prove; set CHALLENGETYPE=dns-01 for this certificate (in its own config)"
                ));
            }
            if name.parse::<std::net::IpAddr>().is_ok() && kind.is_dns() {
                return bad(format!(
                    "{name} is an IP address, which {} cannot prove; use http-01 or tls-alpn-01",
                    kind.name()
                ));
            }
        }
        if !self.can_set_txt(&spec.settings) {
            return bad(format!(
                "{} uses {} but has neither a HOOK or AUTH_HOOK that sets TXT records nor \
                 DNS_UPDATE_SERVER for built-in updates",
                spec.name,
                kind.name()
            ));
        }
        Ok(())
    }
}

/// `METRICS_FILE`: a path that ends in a file name; a name without `.prom`, which
/// node_exporter's textfile collector skips, is a warning.
fn metrics_file(vars: &Vars, warnings: &mut Vec<String>) -> Result<Option<PathBuf>> {
    let Some(value) = vars.value("METRICS_FILE") else {
        return Ok(None);
    };
    let path = PathBuf::from(value);
    let named = !value.ends_with('/') && path.file_name().is_some_and(|n| n != "." && n != "..");
    if !named {
        return Err(bad(
            vars,
            "METRICS_FILE",
            "must be the path of a file, such as \
             /var/lib/prometheus/node-exporter/desiccant.prom",
        ));
    }
    if path.extension().is_none_or(|e| e != "prom") {
        warnings.push(format!(
            "{}: METRICS_FILE does not end in .prom, so node_exporter's textfile collector \
             does not read it",
            origin_of(vars, "METRICS_FILE")
        ));
    }
    Ok(Some(path))
}

fn unknown_key(origin: &Origin, key: &str) -> Error {
    match nearest_key(key) {
        Some(known) => Error::Config(format!(
            "{origin}: unknown key {key}; did you mean {known}? (see the list of keys in README)"
        )),
        None => Error::Config(format!(
            "{origin}: unknown key {key}; see the list of keys in README"
        )),
    }
}

/// The known key that `key` most likely misspells: the nearest by edit distance (a letter
/// left out, added, changed or two swapped; case ignored), at most 2 edits and fewer than a
/// third of its letters away.
fn nearest_key(key: &str) -> Option<&'static str> {
    let key = key.to_ascii_uppercase();
    KEYS.iter()
        .map(|(known, _, _)| (strsim::damerau_levenshtein(&key, known), *known))
        .filter(|&(edits, _)| edits <= 2 && edits * 3 < key.len())
        .min()
        .map(|(_, known)| known)
}

pub(crate) fn check_keys(read: &[config_file::Assignment]) -> Result<()> {
    match read.iter().find(|a| key(&a.key).is_none()) {
        Some(a) => Err(unknown_key(&a.origin, &a.key)),
        None => Ok(()),
    }
}

/// Warnings for keys that are obsolete.
fn unsupported(vars: &Vars) -> Result<Vec<String>> {
    let mut warnings = Vec::new();
    let mut set: Vec<(&str, &str, &Origin)> = vars.iter().collect();
    set.sort_by_key(|(name, _, _)| *name);
    for (name, value, origin) in set {
        match key(name) {
            Some((Support::Obsolete, _)) if value == "yes" => warnings.push(format!(
                "{origin}: {name} is ignored: CAs no longer run OCSP, so there is nothing to \
                     fetch or staple"
            )),
            _ => {}
        }
    }
    Ok(warnings)
}

/// The settings a certificate's config may change, read from `vars`.
fn settings(vars: &Vars) -> Result<CertSettings> {
    let keysize = number(vars, "KEYSIZE", 4096)?;
    let algo = vars.value("KEY_ALGO").unwrap_or("secp384r1");
    // With rsa only the size can be wrong; name the line that set it.
    let blame = if algo == "rsa" { "KEYSIZE" } else { "KEY_ALGO" };
    let key_algo = KeyAlgo::parse(algo, keysize).map_err(|msg| bad_with(vars, blame, &msg))?;
    let challenge = match vars.value("CHALLENGETYPE") {
        None => ChallengeType::Http01,
        Some(name) => ChallengeType::parse(name).ok_or_else(|| {
            let offered = crate::values::CHALLENGE_TYPES.join(", ");
            bad(vars, "CHALLENGETYPE", &format!("is not one of {offered}"))
        })?,
    };
    let renew_days = match vars.value("RENEW_DAYS") {
        None => None,
        Some(_) => Some(number(vars, "RENEW_DAYS", 0)?),
    };
    let hook = vars.value("HOOK").map(PathBuf::from);
    if let Some(path) = &hook {
        Hook::check_path(path).map_err(|msg| bad_with(vars, "HOOK", &format!("HOOK: {msg}")))?;
        trust::check(path, trust::Kind::Program, "hook")
            .map_err(|e| bad_with(vars, "HOOK", &e.to_string()))?;
    }
    let hook_chain = match vars.value("HOOK_CHAIN") {
        None | Some("no") => false,
        Some("yes") => true,
        Some(_) => return Err(bad(vars, "HOOK_CHAIN", "must be yes or no")),
    };
    let yes_no = |key: &str, default: bool| -> Result<bool> {
        match vars.value(key) {
            None => Ok(default),
            Some("yes") => Ok(true),
            Some("no") => Ok(false),
            Some(_) => Err(bad(vars, key, "must be yes or no")),
        }
    };
    let certbot = CertbotHooks {
        auth: vars.value("AUTH_HOOK").map(str::to_string),
        cleanup: vars.value("CLEANUP_HOOK").map(str::to_string),
        deploy: vars.value("DEPLOY_HOOK").map(str::to_string),
    };
    if certbot.cleanup.is_some() && certbot.auth.is_none() {
        return Err(bad(
            vars,
            "CLEANUP_HOOK",
            "needs AUTH_HOOK: it takes away what AUTH_HOOK put in place",
        ));
    }
    if certbot.auth.is_some() && !matches!(challenge, ChallengeType::Http01 | ChallengeType::Dns01)
    {
        return Err(bad(
            vars,
            "AUTH_HOOK",
            "works with http-01 and dns-01, as certbot's manual plugin; not with tls-alpn-01, \
             dns-account-01 or dns-persist-01",
        ));
    }
    let (wellknown, webroot) = challenge_folder(vars)?;
    Ok(CertSettings {
        hook,
        hook_chain,
        certbot,
        webroot,
        preferred_chain: vars.value("PREFERRED_CHAIN").map(str::to_string),
        profile: vars.value("ACME_PROFILE").map(str::to_string),
        key_renew: yes_no("PRIVATE_KEY_RENEW", true)?,
        key_rollover: yes_no("PRIVATE_KEY_ROLLOVER", false)?,
        key_algo,
        renew_days,
        wellknown,
        challenge,
    })
}

/// The http-01 folder, and the document root when it is given as `WEBROOT`: `WELLKNOWN`, or
/// `WEBROOT/.well-known/acme-challenge`. Both set at one level (the main config with its
/// `CONFIG_D` and variables, or a certificate's own config, which drops the main config's
/// choice: see [`Config::cert_spec`]) is an error: which one was meant cannot be known.
fn challenge_folder(vars: &Vars) -> Result<(PathBuf, Option<PathBuf>)> {
    match (vars.value("WELLKNOWN"), vars.value("WEBROOT")) {
        (Some(_), Some(_)) => Err(Error::Config(format!(
            "{}: WEBROOT and WELLKNOWN ({}) are both set; set one: WEBROOT is the document \
             root (desiccant writes into WEBROOT/.well-known/acme-challenge), WELLKNOWN the \
             challenge folder itself",
            origin_of(vars, "WEBROOT"),
            origin_of(vars, "WELLKNOWN")
        ))),
        (Some(w), None) => Ok((PathBuf::from(w), None)),
        (None, Some(root)) => Ok((
            store::webroot_challenges(Path::new(root)),
            Some(PathBuf::from(root)),
        )),
        (None, None) => Ok((PathBuf::from("/var/www/dehydrated"), None)),
    }
}

fn origin_of(vars: &Vars, key: &str) -> String {
    vars.origin(key)
        .map(|o| o.to_string())
        .unwrap_or_else(|| "config".into())
}

/// A config error about `key`: where it was set, the key and `what` is wrong, never its value
/// (see `config_file`).
fn bad(vars: &Vars, key: &str, what: &str) -> Error {
    Error::Config(format!("{}: {key} {what}", origin_of(vars, key)))
}

/// A config error `msg` (which names the key and holds no value) where `key` was set.
fn bad_with(vars: &Vars, key: &str, msg: &str) -> Error {
    Error::Config(format!("{}: {msg}", origin_of(vars, key)))
}

fn number(vars: &Vars, key: &str, default: u32) -> Result<u32> {
    match vars.value(key) {
        None => Ok(default),
        Some(v) => v
            .parse()
            .map_err(|_| bad(vars, key, "is not a whole number")),
    }
}

/// The built-in dns-01 settings.
fn dns_config(vars: &Vars) -> Result<DnsConfig> {
    let server = |key: &str| -> Result<Option<SocketAddr>> {
        match vars.value(key) {
            None => Ok(None),
            Some(v) => dns::parse_server(v)
                .map(Some)
                .ok_or_else(|| bad(vars, key, "is not an IP address, optionally with :port")),
        }
    };
    let update = match server("DNS_UPDATE_SERVER")? {
        None => None,
        Some(addr) => {
            let key = match (
                vars.value("DNS_UPDATE_KEY_FILE"),
                vars.value("DNS_UPDATE_KEY_NAME"),
            ) {
                (Some(file), _) => {
                    let at = |msg: String| {
                        bad_with(
                            vars,
                            "DNS_UPDATE_KEY_FILE",
                            &format!("DNS_UPDATE_KEY_FILE: {msg}"),
                        )
                    };
                    // Not named when it is not there: the value may be a secret a typo moved.
                    std::fs::metadata(file)
                        .map_err(|e| at(format!("the key file cannot be read: {e}")))?;
                    // Read as the other files it obeys are: a regular file only root or we
                    // can change (a FIFO or another user's file is refused, not waited on).
                    let text = trust::read_to_string(Path::new(file), "TSIG key file")
                        .map_err(|e| at(e.to_string()))?;
                    TsigKey::from_bind_file(&text)
                        .map_err(|msg| at(format!("the key file: {msg}")))?
                }
                (None, Some(name)) => TsigKey::new(
                    name,
                    vars.value("DNS_UPDATE_KEY_ALGORITHM")
                        .unwrap_or("hmac-sha256"),
                    vars.value("DNS_UPDATE_KEY_SECRET").unwrap_or_default(),
                )
                .map_err(|e| {
                    let key = match e {
                        TsigKeyError::Algorithm => "DNS_UPDATE_KEY_ALGORITHM",
                        TsigKeyError::Secret(_) => "DNS_UPDATE_KEY_SECRET",
                    };
                    bad_with(vars, key, &format!("{key}: the {e}"))
                })?,
                (None, None) => {
                    return Err(bad(
                        vars,
                        "DNS_UPDATE_SERVER",
                        "needs a TSIG key: DNS_UPDATE_KEY_FILE, or DNS_UPDATE_KEY_NAME and DNS_UPDATE_KEY_SECRET",
                    ));
                }
            };
            Some((addr, key, number(vars, "DNS_UPDATE_TTL", 60)?))
        }
    };
    let check = match vars.value("DNS_CHECK") {
        None | Some("yes") => true,
        Some("no") => false,
        Some(_) => return Err(bad(vars, "DNS_CHECK", "must be yes or no")),
    };
    let mut check_servers = Vec::new();
    for word in vars
        .value("DNS_CHECK_SERVERS")
        .unwrap_or_default()
        .split_whitespace()
    {
        check_servers.push(dns::parse_server(word).ok_or_else(|| {
            bad(
                vars,
                "DNS_CHECK_SERVERS",
                "has a word that is not an IP address, optionally with :port",
            )
        })?);
    }
    Ok(DnsConfig {
        update,
        check,
        check_servers,
        resolver: server("DNS_RESOLVER")?,
        wait: std::time::Duration::from_secs(u64::from(number(vars, "DNS_WAIT", 120)?)),
    })
}

/// dns-persist-01's settings: `PERSIST_ISSUER` a lower-case domain name, `PERSIST_POLICY`
/// empty or `wildcard`, `PERSIST_UNTIL` Unix seconds or a date `YYYY-MM-DD` (its 00:00 UTC),
/// in the future.
fn persist_config(vars: &Vars) -> Result<PersistConfig> {
    let issuer = match vars.value("PERSIST_ISSUER") {
        None => None,
        Some(v) => {
            crate::acme::text::check_issuer_domain_name(v).map_err(|_| {
                bad(
                    vars,
                    "PERSIST_ISSUER",
                    "is not a lower-case domain name without a trailing dot",
                )
            })?;
            Some(v.to_string())
        }
    };
    let wildcard = match vars.value("PERSIST_POLICY") {
        None | Some("") => false,
        Some("wildcard") => true,
        Some(_) => return Err(bad(vars, "PERSIST_POLICY", "must be empty or wildcard")),
    };
    let until = match vars.value("PERSIST_UNTIL") {
        None | Some("") => None,
        Some(v) => {
            let t = parse_until(v).ok_or_else(|| {
                bad(
                    vars,
                    "PERSIST_UNTIL",
                    "is neither Unix seconds nor a date YYYY-MM-DD",
                )
            })?;
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs().cast_signed());
            if t <= now {
                return Err(bad(
                    vars,
                    "PERSIST_UNTIL",
                    "is in the past: a CA would not take the record",
                ));
            }
            Some(t)
        }
    };
    Ok(PersistConfig {
        issuer,
        wildcard,
        until,
    })
}

/// Unix seconds, or a date `YYYY-MM-DD` as its 00:00 UTC.
pub fn parse_until(text: &str) -> Option<i64> {
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse().ok();
    }
    let mut parts = text.splitn(3, '-');
    let year: i32 = parts.next()?.parse().ok()?;
    let month: u8 = parts.next()?.parse().ok()?;
    let day: u8 = parts.next()?.parse().ok()?;
    let month = time::Month::try_from(month).ok()?;
    let date = time::Date::from_calendar_date(year, month, day).ok()?;
    Some(date.midnight().assume_utc().unix_timestamp())
}

/// An octal mode such as `0640` or `640`; `min` are the bits the owner must keep.
fn mode(vars: &Vars, key: &str, min: u32) -> Result<Option<u32>> {
    let Some(text) = vars.value(key) else {
        return Ok(None);
    };
    match u32::from_str_radix(text, 8) {
        Ok(m) if m <= 0o777 && m & min == min => Ok(Some(m)),
        Ok(_) => Err(bad(
            vars,
            key,
            &format!("must be an octal mode of at most 0777 that keeps {min:04o} for the owner"),
        )),
        Err(_) => Err(bad(vars, key, "is not an octal mode such as 0640")),
    }
}

/// The modes and owner of certificate files. The folder `certs/<name>/` stays the run's, in
/// group `CERT_GROUP`, with `CERT_DIR_MODE` less any write bit for group or others, and the
/// search bit for others with `CERT_OWNER` (for group with `CERT_GROUP`) so that they reach
/// their files. A key is never more open than `KEY_FILE_MODE`,
/// else `CERT_FILE_MODE` without the bits for others, else 0600: world-readable only when
/// `KEY_FILE_MODE` says so.
fn cert_modes(vars: &Vars) -> Result<CertModes> {
    let id = |key: &str, file: &str| -> Result<Option<u32>> {
        match vars.value(key) {
            None => Ok(None),
            Some(v) => match v.parse::<u32>() {
                Ok(n) => Ok(Some(n)),
                Err(_) => lookup_id(file, v)
                    .map(Some)
                    .ok_or_else(|| bad(vars, key, "is not a user or group of this system")),
            },
        }
    };
    let uid = id("CERT_OWNER", "/etc/passwd")?;
    let gid = id("CERT_GROUP", "/etc/group")?;
    let file = mode(vars, "CERT_FILE_MODE", 0o600)?;
    let key = mode(vars, "KEY_FILE_MODE", 0o600)?
        .or(file.map(|m| m & 0o770))
        .unwrap_or(store::KEY_MODE);
    let owner = |mode| Owner { mode, uid, gid };
    // The folder stays the run's own: CERT_OWNER gets the files, never the folder, since
    // what is in the folder (its config) is obeyed. It is never writable by group or others,
    // and those given files can pass through it.
    let through = if uid.is_some() { 0o001 } else { 0 } | if gid.is_some() { 0o010 } else { 0 };
    let dir_mode = mode(vars, "CERT_DIR_MODE", 0o700)?.unwrap_or(0o755) & !0o022 | through;
    Ok(CertModes {
        file: owner(file.unwrap_or(store::PUBLIC_MODE)),
        key: owner(key),
        dir: Owner {
            mode: dir_mode,
            uid: None,
            gid,
        },
    })
}

/// dehydrated switches to `DEHYDRATED_USER` (and `DEHYDRATED_GROUP`) through sudo. desiccant
/// does not change users: it checks that it already runs as them, and otherwise says how to
/// start it that way.
fn check_user(vars: &Vars) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let user = vars.value("DEHYDRATED_USER");
    let group = vars.value("DEHYDRATED_GROUP");
    let (Some(user), me) = (user, std::fs::metadata("/proc/self").ok()) else {
        if group.is_some() {
            return Err(bad(
                vars,
                "DEHYDRATED_GROUP",
                "can only be used together with DEHYDRATED_USER",
            ));
        }
        return Ok(());
    };
    let (uid, gid) = me
        .map(|m| (m.uid(), m.gid()))
        .unwrap_or((u32::MAX, u32::MAX));
    let wanted = lookup_id("/etc/passwd", user)
        .ok_or_else(|| bad(vars, "DEHYDRATED_USER", "is not a user of this system"))?;
    let how = "desiccant does not switch users itself: start it as that user (systemd: User= and \
               Group=; /etc/cron.d: the user column)";
    if wanted != uid {
        return Err(bad(
            vars,
            "DEHYDRATED_USER",
            &format!("but this run has uid {uid}; {how}"),
        ));
    }
    if let Some(group) = group {
        let wanted = lookup_id("/etc/group", group)
            .ok_or_else(|| bad(vars, "DEHYDRATED_GROUP", "is not a group of this system"))?;
        if wanted != gid {
            return Err(bad(
                vars,
                "DEHYDRATED_GROUP",
                &format!("but this run has gid {gid}; {how}"),
            ));
        }
    }
    Ok(())
}

/// The numeric id of `name` in an `/etc/passwd` or `/etc/group` style file.
fn lookup_id(file: &str, name: &str) -> Option<u32> {
    let text = std::fs::read_to_string(file).ok()?;
    text.lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.first() == Some(&name))
        .and_then(|f| f.get(2)?.parse().ok())
}

/// The folder of `file`, or `.` for a bare file name.
fn parent_dir(file: &Path) -> PathBuf {
    match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// One config file's text, read as [`Config::load`] reads the config file `file` it finds:
/// BASEDIR and SCRIPTDIR default to its folder, `$KEY` expands through `env`, and the keys
/// are checked and resolved; there is no `CONFIG_D`, `DESICCANT_<KEY>` or flag. For the fuzz
/// targets (`src/fuzzing.rs`), which have text and no file.
#[cfg(any(fuzzing, test))]
impl Config {
    pub(crate) fn from_text(
        file: &Path,
        text: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config> {
        let mut vars = Vars::default();
        let folder = parent_dir(file).to_string_lossy().into_owned();
        vars.set("BASEDIR", folder.clone(), Origin(BASEDIR_DEFAULT.into()));
        vars.set("SCRIPTDIR", folder, Origin(BASEDIR_DEFAULT.into()));
        let read = config_file::parse_text(text, &file.display().to_string(), &vars, env)?;
        check_keys(&read)?;
        vars.apply(read);
        Config::resolve(Some(file.to_path_buf()), vars, &LoadOptions::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_misspelt_key_is_matched_to_the_nearest_known_one() {
        assert_eq!(nearest_key("CHALENGETYPE"), Some("CHALLENGETYPE"));
        assert_eq!(nearest_key("wellknown"), Some("WELLKNOWN"));
        assert_eq!(nearest_key("CONTACT_EMIAL"), Some("CONTACT_EMAIL"));
        assert_eq!(nearest_key("RENEW_DAY"), Some("RENEW_DAYS"));
        // Too far from every key, or too short to guess from.
        assert_eq!(nearest_key("NONSENSE"), None);
        assert_eq!(nearest_key("FOO"), None);
        assert_eq!(nearest_key("CA_"), None);
    }
    use std::collections::HashMap;

    struct Dir(PathBuf);

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// Writes `files` (with `@DIR@` replaced by the folder) into a new folder.
    fn dir_with(files: &[(&str, &str)]) -> Dir {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("desiccant-config-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for (name, text) in files {
            let path = dir.join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text.replace("@DIR@", dir.to_str().unwrap())).unwrap();
        }
        Dir(dir)
    }

    fn load_in(dir: &Dir, env: &[(&str, &str)], opts: LoadOptions) -> Result<Config> {
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let opts = LoadOptions {
            config: Some(dir.0.join("config")),
            ..opts
        };
        Config::load(&opts, &|k| env.get(k).cloned())
    }

    fn load(files: &[(&str, &str)], env: &[(&str, &str)], opts: LoadOptions) -> Result<Config> {
        load_in(&dir_with(files), env, opts)
    }

    fn error(config: &str) -> String {
        load(&[("config", config)], &[], LoadOptions::default())
            .unwrap_err()
            .to_string()
    }

    /// Every key of dehydrated's example config (0.7), uncommented, with its example value.
    const DEHYDRATED_EXAMPLE: &str = r#"DEHYDRATED_USER=
DEHYDRATED_GROUP=
IP_VERSION=
CA="letsencrypt"
OLDCA="https://acme-v01.api.letsencrypt.org/directory"
CHALLENGETYPE="http-01"
CONFIG_D=
DOMAINS_D=
BASEDIR=$SCRIPTDIR
DOMAINS_TXT="${BASEDIR}/domains.txt"
CERTDIR="${BASEDIR}/certs"
ALPNCERTDIR="${BASEDIR}/alpn-certs"
ACCOUNTDIR="${BASEDIR}/accounts"
WELLKNOWN="/var/www/dehydrated"
KEYSIZE="4096"
OPENSSL_CNF=
OPENSSL="openssl"
CURL_OPTS=
HOOK=
HOOK_CHAIN="no"
RENEW_DAYS="30"
PRIVATE_KEY_RENEW="yes"
PRIVATE_KEY_ROLLOVER="no"
KEY_ALGO=secp384r1
CONTACT_EMAIL=
LOCKFILE="${BASEDIR}/lock"
OCSP_MUST_STAPLE="no"
OCSP_FETCH="no"
OCSP_DAYS=5
CHAINCACHE="${BASEDIR}/chains"
AUTO_CLEANUP="no"
API=auto
PREFERRED_CHAIN=
"#;

    #[test]
    fn every_key_of_dehydrateds_example_config_is_understood() {
        let dir = dir_with(&[("config", DEHYDRATED_EXAMPLE)]);
        let c = load_in(&dir, &[], LoadOptions::default()).unwrap();
        assert_eq!(c.basedir, dir.0);
        assert_eq!(c.certdir, dir.0.join("certs"));
        assert_eq!(c.accountdir, dir.0.join("accounts"));
        assert_eq!(c.domains_txt, dir.0.join("domains.txt"));
        assert_eq!(c.lockfile, Some(dir.0.join("lock")));
        assert_eq!(c.ca, "https://acme-v02.api.letsencrypt.org/directory");
        assert_eq!(c.defaults.key_algo, KeyAlgo::Secp384r1);
        assert_eq!(c.defaults.renew_days, Some(30));
        assert_eq!(c.defaults.wellknown, PathBuf::from("/var/www/dehydrated"));
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    }

    #[test]
    fn defaults_follow_dehydrated_under_the_config_folder() {
        let c = load(
            &[("config", "CONTACT_EMAIL=me@example.org\n")],
            &[],
            LoadOptions::default(),
        )
        .unwrap();
        let dir = c.basedir.clone();
        assert_eq!(c.certdir, dir.join("certs"));
        assert_eq!(c.lockfile, Some(dir.join("lock")));
        assert_eq!(c.defaults.wellknown, PathBuf::from("/var/www/dehydrated"));
        assert_eq!(c.defaults.key_algo, KeyAlgo::Secp384r1);
        assert_eq!(c.defaults.renew_days, None);
        assert_eq!(c.jobs, 4);
        assert_eq!(c.ip_version, None);
        assert_eq!(c.contact_email.as_deref(), Some("me@example.org"));
    }

    #[test]
    fn config_d_then_environment_then_flags() {
        let c = load(
            &[
                (
                    "config",
                    "CONFIG_D=@DIR@/conf.d\nCA=letsencrypt-test\nKEY_ALGO=rsa\nKEYSIZE=2048\n",
                ),
                (
                    "conf.d/10-a.sh",
                    "BASEDIR=/srv/acme\nKEYSIZE=3072\nIP_VERSION=4\n",
                ),
                ("conf.d/20-b.sh", "CERTDIR=\"$BASEDIR/live\"\n"),
                ("conf.d/ignored.conf", "THIS IS NOT READ\n"),
            ],
            &[("DESICCANT_KEYSIZE", "4096"), ("DESICCANT_CA", "zerossl")],
            LoadOptions {
                overrides: vec![("CA", "https://ca.internal/dir".into(), "--ca")],
                lock_suffix: Some("x".into()),
                ..LoadOptions::default()
            },
        )
        .unwrap();
        assert_eq!(c.basedir, PathBuf::from("/srv/acme"));
        assert_eq!(c.certdir, PathBuf::from("/srv/acme/live"));
        assert_eq!(c.defaults.key_algo, KeyAlgo::Rsa(4096));
        assert_eq!(c.ca, "https://ca.internal/dir");
        assert_eq!(c.lockfile, Some(PathBuf::from("/srv/acme/lock-x")));
        assert_eq!(c.ip_version, Some(4));
    }

    #[test]
    fn the_environment_wins_over_the_file_and_names_itself_in_errors() {
        let c = load(
            &[("config", "CA=letsencrypt\n")],
            &[("DESICCANT_CA", "letsencrypt-test")],
            LoadOptions::default(),
        )
        .unwrap();
        assert_eq!(
            c.ca,
            "https://acme-staging-v02.api.letsencrypt.org/directory"
        );
        let err = load(
            &[("config", "")],
            &[("DESICCANT_JOBS", "many")],
            LoadOptions::default(),
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            err,
            "environment variable DESICCANT_JOBS: JOBS is not a whole number"
        );
        let err = load(
            &[("config", "")],
            &[],
            LoadOptions {
                overrides: vec![("KEY_ALGO", "ed25519".into(), "--algo")],
                ..LoadOptions::default()
            },
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("--algo: KEY_ALGO is not supported"),
            "{err}"
        );
    }

    #[test]
    fn errors_name_the_file_and_line() {
        let err = error("CA=letsencrypt\n\nFOO=bar\n");
        assert!(
            err.ends_with("/config:3: unknown key FOO; see the list of keys in README"),
            "{err}"
        );
        assert!(error("KEY_ALGO=ed448\n").contains("/config:1: KEY_ALGO is not supported"));
        assert!(error("KEY_ALGO=rsa\nKEYSIZE=1024\n").contains("/config:2: KEYSIZE is not"));
        assert!(error("RENEW_DAYS=soon\n").contains("/config:1: RENEW_DAYS is not a whole number"));
        assert!(error("CA=acme.example\n").contains("/config:1: CA is neither"));
        assert!(error("IP_VERSION=5\n").contains("/config:1: IP_VERSION must be 4, 6"));
        assert!(error("DEHYDRATED_GROUP=x\n").contains("only be used together"));
        assert!(error("X=$(id)\n").contains("/config:1: X: command substitution"));
        let err = load(&[("config", "X=1\n")], &[], LoadOptions::default()).unwrap_err();
        assert_eq!(err.status(), crate::error::Status::Config);
    }

    #[test]
    fn obsolete_keys_warn_and_missing_features_refuse() {
        let c = load(
            &[("config", "OCSP_FETCH=yes\n")],
            &[],
            LoadOptions::default(),
        )
        .unwrap();
        assert!(
            c.warnings[0].contains("OCSP_FETCH is ignored"),
            "{:?}",
            c.warnings
        );
        assert!(
            error("HOOK=/nonexistent/hook.sh\n")
                .contains("/config:1: HOOK: the hook cannot be used")
        );
        assert!(
            error("AUTO_CLEANUP=maybe\n").contains("/config:1: AUTO_CLEANUP must be yes or no")
        );
    }

    #[test]
    fn the_user_is_checked_not_switched() {
        // The user this test runs as passes; another user is refused with how to run as it.
        use std::os::unix::fs::MetadataExt;
        let uid = std::fs::metadata("/proc/self").unwrap().uid();
        let passwd = std::fs::read_to_string("/etc/passwd").unwrap();
        let me = passwd
            .lines()
            .find(|l| l.split(':').nth(2) == Some(&uid.to_string()))
            .and_then(|l| l.split(':').next())
            .unwrap()
            .to_string();
        load(
            &[("config", &format!("DEHYDRATED_USER={me}\n"))],
            &[],
            LoadOptions::default(),
        )
        .unwrap();
        let other = passwd
            .lines()
            .find(|l| l.split(':').nth(2).is_some_and(|u| u != uid.to_string()))
            .and_then(|l| l.split(':').next())
            .unwrap();
        let err = error(&format!("DEHYDRATED_USER={other}\n"));
        assert!(err.contains("start it as that user"), "{err}");
        assert!(error("DEHYDRATED_USER=no-such-user-here\n").contains("is not a user"));
    }

    fn line(name: &str) -> CertLine {
        CertLine {
            name: name.into(),
            names: vec![format!("{name}.example")],
            origin: "domains.txt:1".into(),
        }
    }

    #[test]
    fn a_certificate_config_changes_only_its_own_settings() {
        let dir = dir_with(&[
            ("config", "KEY_ALGO=prime256v1\nWELLKNOWN=/srv/www\n"),
            (
                "certs/special/config",
                "KEY_ALGO=rsa\nKEYSIZE=2048\nRENEW_DAYS=10\nWELLKNOWN=\"$BASEDIR/special-www\"\n",
            ),
            ("certs/warned/config", "CONTACT_EMAIL=x@example.org\n"),
            ("certs/broken/config", "KEY_ALGO=dsa\n"),
            ("certs/unknown/config", "NONSENSE=1\n"),
        ]);
        let c = load_in(&dir, &[], LoadOptions::default()).unwrap();
        let none = |_: &str| None;
        let (plain, w) = c.cert_spec(&line("plain"), &none, true).unwrap();
        assert!(w.is_empty());
        assert_eq!(plain.settings, c.defaults);
        assert_eq!(plain.names, ["plain.example"]);
        let (special, _) = c.cert_spec(&line("special"), &none, true).unwrap();
        assert_eq!(special.settings.key_algo, KeyAlgo::Rsa(2048));
        assert_eq!(special.settings.renew_days, Some(10));
        assert_eq!(special.settings.wellknown, dir.0.join("special-www"));
        let (warned, w) = c.cert_spec(&line("warned"), &none, true).unwrap();
        assert_eq!(warned.settings, c.defaults);
        assert!(
            w[0].contains("certs/warned/config:1: CONTACT_EMAIL cannot be set for one certificate"),
            "{w:?}"
        );
        let err = c
            .cert_spec(&line("broken"), &none, true)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("certs/broken/config:1: KEY_ALGO is not supported"),
            "{err}"
        );
        let err = c
            .cert_spec(&line("unknown"), &none, true)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("certs/unknown/config:1: unknown key NONSENSE"),
            "{err}"
        );
    }

    #[test]
    fn webroot_and_wellknown_one_per_level_the_certificates_own_winning() {
        let dir = dir_with(&[
            ("config", "WELLKNOWN=/srv/challenges\n"),
            ("certs/site/config", "WEBROOT=/srv/site\n"),
            ("certs/both/config", "WEBROOT=/srv/a\nWELLKNOWN=/srv/b\n"),
        ]);
        let c = load_in(&dir, &[], LoadOptions::default()).unwrap();
        assert_eq!(c.defaults.wellknown, PathBuf::from("/srv/challenges"));
        assert_eq!(c.defaults.webroot, None);
        let (site, _) = c.cert_spec(&line("site"), &|_| None, true).unwrap();
        assert_eq!(
            site.settings.wellknown,
            PathBuf::from("/srv/site/.well-known/acme-challenge")
        );
        assert_eq!(site.settings.webroot, Some(PathBuf::from("/srv/site")));
        let err = c
            .cert_spec(&line("both"), &|_| None, true)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("certs/both/config:1: WEBROOT and WELLKNOWN (")
                && err.contains("certs/both/config:2) are both set; set one"),
            "{err}"
        );
        assert!(!err.contains("/srv/a") && !err.contains("/srv/b"), "{err}");
        let err = error("WEBROOT=/srv/site\nWELLKNOWN=/srv/x\n");
        assert!(err.contains("are both set"), "{err}");
    }

    #[test]
    fn certbot_hooks_are_checked_with_their_challenge_type() {
        let c = load(
            &[(
                "config",
                "AUTH_HOOK='/usr/local/bin/auth \"$x\"'\nDEPLOY_HOOK=reload\n",
            )],
            &[],
            LoadOptions::default(),
        )
        .unwrap();
        assert_eq!(
            c.defaults.certbot.auth.as_deref(),
            Some("/usr/local/bin/auth \"$x\"")
        );
        assert_eq!(c.defaults.certbot.deploy.as_deref(), Some("reload"));
        assert!(
            error("CLEANUP_HOOK=x\n").contains("config:1: CLEANUP_HOOK needs AUTH_HOOK"),
            "{}",
            error("CLEANUP_HOOK=x\n")
        );
        assert!(
            error("CHALLENGETYPE=tls-alpn-01\nAUTH_HOOK=x\n")
                .contains("config:2: AUTH_HOOK works with http-01 and dns-01")
        );
        assert!(
            error("CHALLENGETYPE=dns-account-01\nAUTH_HOOK=x\n")
                .contains("config:2: AUTH_HOOK works with http-01 and dns-01")
        );
    }

    #[test]
    fn challengetype_takes_every_name_of_the_list_and_names_them_when_wrong() {
        let c = load(
            &[("config", "CHALLENGETYPE=dns-account-01\nDNS_UPDATE_SERVER=192.0.2.53\nDNS_UPDATE_KEY_NAME=k\nDNS_UPDATE_KEY_SECRET=c2VjcmV0\n")],
            &[],
            LoadOptions::default(),
        )
        .unwrap();
        assert_eq!(c.defaults.challenge, ChallengeType::DnsAccount01);
        let e = error("CHALLENGETYPE=dns-persist-02\n");
        assert!(
            e.contains(
                "config:1: CHALLENGETYPE is not one of http-01, dns-01, tls-alpn-01, dns-account-01"
            ),
            "{e}"
        );
        assert!(
            !e.contains("dns-persist-02"),
            "the value is never shown: {e}"
        );
    }

    #[test]
    fn domains_d_holds_the_certificate_configs_when_set() {
        let dir = dir_with(&[
            ("config", "DOMAINS_D=@DIR@/domains.d\n"),
            ("domains.d/special", "KEY_ALGO=prime256v1\n"),
            ("certs/special/config", "KEY_ALGO=rsa\n"),
        ]);
        let c = load_in(&dir, &[], LoadOptions::default()).unwrap();
        let (special, _) = c.cert_spec(&line("special"), &|_| None, true).unwrap();
        assert_eq!(special.settings.key_algo, KeyAlgo::Prime256v1);
    }
}
