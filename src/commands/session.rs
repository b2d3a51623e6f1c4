//! The [`Session`] every command is handed, and what the commands share: reaching the CA,
//! the account, hooks and their environment, challenge solvers, and the renewal decision's
//! inputs read from disk.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::account::{self as acct, Account, Found, Terms};
use crate::acme::text::shown_url;
use crate::acme::{Client, Transport, Trust};
use crate::challenge::{Solver, Webroot};
use crate::config::{CertSettings, CertSpec, ChallengeType, Config, LoadOptions};
use crate::error::{Error, Result};
use crate::hooks::Hook;
use crate::renewal::{self, Decision, Live, Policy, Wanted};
use crate::responder::Responder;
use crate::state::{CertState, LiveCache, LiveRecord, StateDir};
use crate::store::{AccountDir, CertDir, RunLock};
use crate::{domains, logging, x509};

const USER_AGENT: &str = concat!("desiccant/", env!("CARGO_PKG_VERSION"));

/// The parameters that change how a command runs, as given on the command line.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `--dry-run`: the run goes to the CA's test endpoint, and nothing of it is kept (no
    /// file under `certs/` or `state/`, no deploy hook, no metrics). Whatever writes what a
    /// run leaves behind checks this flag.
    pub dry_run: bool,
    pub force: bool,
    pub force_validation: bool,
    pub accept_terms: bool,
    pub json: bool,
    pub full_chain: bool,
    pub lock_wait: Duration,
    /// `--domain`: the certificate in scope instead of domains.txt.
    pub domains: Vec<String>,
    pub alias: Option<String>,
}

/// One certificate in scope: ready to be planned, or stopped by a problem of its own.
pub enum Entry {
    Ready(Box<CertSpec>),
    Broken(Broken),
}

/// A certificate that cannot be renewed as configured: its own config file is refused or holds
/// a bad key or value, its hook fails the start-up probe. It fails alone: the others are
/// renewed, and the run exits 1 naming it.
pub struct Broken {
    pub name: String,
    pub names: Vec<String>,
    pub error: Arc<Error>,
}

impl Entry {
    pub fn name(&self) -> &str {
        match self {
            Entry::Ready(spec) => &spec.name,
            Entry::Broken(b) => &b.name,
        }
    }

    pub fn names(&self) -> &[String] {
        match self {
            Entry::Ready(spec) => &spec.names,
            Entry::Broken(b) => &b.names,
        }
    }

    pub fn spec(&self) -> Option<&CertSpec> {
        match self {
            Entry::Ready(spec) => Some(spec),
            Entry::Broken(_) => None,
        }
    }
}

/// What every command is handed: the config (with the flags applied), the options, and the
/// lock once taken. The CA's client and the account are made on demand.
pub struct Session {
    pub config: Config,
    pub opts: Options,
    lock: Option<RunLock>,
}

impl Session {
    /// Reads the config, logging its warnings.
    pub fn new(opts: Options, load: &LoadOptions) -> Result<Session> {
        let config = Config::load(load, &env)?;
        for warning in &config.warnings {
            logging::warn(warning);
        }
        let how = match &load.config {
            Some(_) => "given with --config".to_string(),
            None => format!("the first found of {}", crate::config::config_lookup_text()),
        };
        logging::debug(format_args!(
            "config file {} ({how}), BASEDIR {}",
            config
                .file
                .as_deref()
                .map_or("(none found, defaults)".into(), |f| f.display().to_string()),
            config.basedir.display()
        ));
        Ok(Session {
            config,
            opts,
            lock: None,
        })
    }

    /// Takes the run lock (unless `--no-lock`), waiting `--lock-wait`; held until the session
    /// ends.
    pub fn lock(&mut self) -> Result<()> {
        if self.lock.is_none()
            && let Some(path) = &self.config.lockfile
        {
            let lock = RunLock::acquire(path, self.opts.lock_wait, &|| {
                crate::processes::dehydrated_on(path)
            })?;
            if let Some(since) = &lock.taken_over {
                logging::warn(format_args!(
                    "{}: dehydrated's lock file, written {since}, was left by a dehydrated that \
                     no longer runs: taken over",
                    path.display()
                ));
            }
            self.lock = Some(lock);
        }
        Ok(())
    }

    /// Every certificate in scope: the `--domain` one, else every line of domains.txt, each
    /// with its own config applied. A problem of the run (domains.txt, a `DOMAINS_D` folder
    /// others can write) is an error, found before a lock or a request; a problem of one
    /// certificate's own config makes that entry [`Entry::Broken`], and the others go on.
    /// Changes nothing: a certificate folder another user owns is read through as it is (the
    /// trust check judges a config in it); see [`Session::specs_to_write`].
    pub fn specs(&self) -> Result<Vec<Entry>> {
        self.read_specs(false)
    }

    /// As [`Session::specs`], for the commands that write under `certs/` (`--cron` but not
    /// its dry run, `--cleanup`): a certificate folder another user owns or others can write
    /// is first taken back, with a warning.
    pub fn specs_to_write(&self) -> Result<Vec<Entry>> {
        self.read_specs(true)
    }

    fn read_specs(&self, take_back: bool) -> Result<Vec<Entry>> {
        let lines = if self.opts.domains.is_empty() {
            domains::read(&self.config.domains_txt)?
        } else {
            vec![domains::from_args(
                &self.opts.domains,
                self.opts.alias.as_deref(),
            )?]
        };
        self.config.check_defaults()?;
        // The folder of every certificate's config: whoever can write it chooses them all.
        if let Some(dir) = self.config.domains_d.as_deref().filter(|d| d.exists()) {
            crate::trust::check(dir, crate::trust::Kind::Folder, "DOMAINS_D folder")?;
        }
        let mut entries = Vec::with_capacity(lines.len());
        for line in &lines {
            entries.push(match self.config.cert_spec(line, &env, take_back) {
                Ok((spec, warnings)) => {
                    for w in warnings {
                        logging::warn(w);
                    }
                    Entry::Ready(Box::new(spec))
                }
                Err(error) => Entry::Broken(Broken {
                    name: line.name.clone(),
                    names: line.names.clone(),
                    error: Arc::new(error.of_one_cert()),
                }),
            });
        }
        Ok(entries)
    }

    /// The certificate folders with a live certificate that `specs` (domains.txt) no longer
    /// name: what `--check` lists and `--cleanup` archives. None with `--domain`, whose scope
    /// is one certificate.
    pub fn removed(&self, entries: &[Entry]) -> Vec<String> {
        if !self.opts.domains.is_empty() {
            return Vec::new();
        }
        let mut names = crate::store::live_cert_names(&self.config.certdir);
        names.retain(|name| !entries.iter().any(|e| e.name() == name));
        names
    }

    /// A client of the configured CA, its directory read.
    pub fn connect(&self) -> Result<Client> {
        connect(&self.config)
    }

    /// The account for the configured CA, registered when there is none and `--accept-terms`
    /// was given.
    pub fn account(&self, client: &Client) -> Result<(Account, Found)> {
        self.load_account(client, self.opts.accept_terms)
    }

    /// The registered account, for commands that need one and never register.
    pub fn existing_account(&self, client: &Client) -> Result<Account> {
        self.load_account(client, false).map(|(account, _)| account)
    }

    fn load_account(&self, client: &Client, accept_terms: bool) -> Result<(Account, Found)> {
        let config = &self.config;
        let terms = Terms {
            accepted: accept_terms,
            contact: config.contact_email.as_deref(),
            key_algo: config.account_key_algo,
            eab: config.eab.as_ref(),
            now: unix_now(),
        };
        acct::load_or_register(client, &self.account_dir(), terms)
    }

    /// The configured CA's account folder.
    pub fn account_dir(&self) -> AccountDir {
        AccountDir::new(&self.config.accountdir, &self.config.ca)
    }

    /// The hook of `spec` (its own `HOOK`, else the config's), or the config's for the run;
    /// with `DRY_RUN=yes` in a dry run.
    pub fn hook(&self, spec: Option<(&CertSpec, &[String])>) -> Option<Hook> {
        hook_for(&self.config, spec).map(|h| self.dry(h))
    }

    /// `hook` as this session runs it: with `DRY_RUN=yes` in a dry run ([`Hook::in_dry_run`]).
    pub fn dry(&self, hook: Hook) -> Hook {
        if self.opts.dry_run {
            hook.in_dry_run()
        } else {
            hook
        }
    }
}

fn env(key: &str) -> Option<String> {
    std::env::var(key).ok()
}

pub(super) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// A client of the CA that `config` names, its directory read and our clock checked against
/// the CA's.
pub(super) fn connect(config: &Config) -> Result<Client> {
    let trust = match &config.ca_bundle {
        None => Trust::System,
        // Whoever can change the bundle chooses whom we take for the CA.
        Some(path) => Trust::Pem(crate::trust::read(path, "CA_BUNDLE")?),
    };
    let transport = Transport {
        trust,
        user_agent: USER_AGENT.to_string(),
        ip_version: config.ip_version,
        trace: Some(logging::trace),
        stopped: crate::stop::requested,
        deadlines: crate::failpoint::deadlines(),
        limits: config.rate_limits,
    };
    let client =
        Client::connect(&config.ca, &transport).map_err(|err| not_connected(config, err))?;
    check_clock(&client)?;
    Ok(client)
}

/// Why the CA's directory could not be read, with the setting to change when a setting is at
/// fault: the CA's TLS certificate not trusted (78, as a bad config: a retry cannot mend it), or
/// no directory at the URL.
fn not_connected(config: &Config, err: crate::acme::Error) -> Error {
    match &err {
        crate::acme::Error::Untrusted { .. } => Error::Config(format!(
            "CA: {err}; set CA_BUNDLE (or --ca-bundle) to a PEM file with the root of {}'s \
             certificate, or add that root to the system's store \
             (/usr/local/share/ca-certificates/, then update-ca-certificates)",
            host_of(&config.ca).unwrap_or_default()
        )),
        crate::acme::Error::Problem { status: 404, .. } => Error::Refused {
            subject: "CA".into(),
            msg: format!(
                "{err}; there is no ACME directory at this URL: {}",
                right_ca(&config.ca)
            ),
        },
        _ => Error::acme("CA")(err),
    }
}

/// What to set CA to instead of `url`, where no directory was found: the preset of the same
/// host when there is one, else the presets and the usual shape of a directory URL.
fn right_ca(url: &str) -> String {
    let host = host_of;
    let same_host = crate::values::CA_PRESETS
        .iter()
        .find(|(_, preset)| host(preset).is_some_and(|h| Some(h) == host(url)));
    match same_host {
        Some((name, preset)) => format!("set CA={name} (or CA={preset})"),
        None => format!(
            "set CA to one of {} or to the directory's full URL, which the CA documents (it \
             often ends in /directory)",
            crate::values::CA_PRESETS
                .iter()
                .map(|(name, _)| *name)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// The host (and port) of an `https://` URL, lower-cased, without a user or password.
fn host_of(url: &str) -> Option<String> {
    url.strip_prefix("https://")
        .and_then(|rest| rest.split('/').next())
        .and_then(|authority| authority.rsplit('@').next())
        .map(str::to_ascii_lowercase)
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

/// The environment of every hook: dehydrated's variables for `spec` (or the run), with the
/// command and, for a certificate, its alias and names.
fn hook_env(config: &Config, spec: Option<(&CertSpec, &[String])>) -> Vec<(String, String)> {
    let settings = spec.map_or(&config.defaults, |(s, _)| &s.settings);
    let mut env: Vec<(String, String)> = config
        .dehydrated_vars(settings)
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    env.push(("COMMAND".into(), "sign_domains".into()));
    if let Some((spec, names)) = spec {
        env.push(("alias".into(), spec.name.clone()));
        env.push(("altnames".into(), names.join(" ")));
    }
    env
}

/// The hook of `spec` (its own `HOOK`, else the config's), or the config's for the run itself.
pub(super) fn hook_for(config: &Config, spec: Option<(&CertSpec, &[String])>) -> Option<Hook> {
    let settings = spec.map_or(&config.defaults, |(s, _)| &s.settings);
    settings
        .hook
        .as_ref()
        .map(|path| hook_at(config, path.clone(), spec))
}

/// The hook program at `path`, with the environment of `spec` (or the run).
pub(super) fn hook_at(
    config: &Config,
    path: PathBuf,
    spec: Option<(&CertSpec, &[String])>,
) -> Hook {
    Hook {
        path,
        timeout: config.hook_timeout,
        env: hook_env(config, spec),
        log: Some(logging::hook_line),
    }
}

/// What runs the certbot hooks of `spec` (`/bin/sh`, with its environment), or of the run
/// itself, when it has any.
pub(super) fn certbot_runner(
    config: &Config,
    spec: Option<(&CertSpec, &[String])>,
) -> Option<Hook> {
    let hooks = &spec.map_or(&config.defaults, |(s, _)| &s.settings).certbot;
    (hooks.auth.is_some() || hooks.deploy.is_some())
        .then(|| hook_at(config, "/bin/sh".into(), spec))
}

/// Whether a certificate with `settings` writes http-01 files into its `WELLKNOWN`: not when
/// `AUTH_HOOK` puts them in place (certbot's manual mode) or the responder serves them.
fn writes_files(settings: &CertSettings, responder: bool) -> bool {
    settings.challenge == ChallengeType::Http01 && settings.certbot.auth.is_none() && !responder
}

/// How a certificate with `settings` proves its names; `certbot` runs its certbot hooks.
pub(super) fn solver<'a>(
    config: &'a Config,
    settings: &'a CertSettings,
    hook: Option<&'a Hook>,
    certbot: Option<&'a Hook>,
    responder: Option<&'a Responder>,
) -> Solver<'a> {
    let kind = settings.challenge;
    let by_auth_hook = settings.certbot.auth.is_some();
    Solver {
        kind,
        webroot: writes_files(settings, responder.is_some()).then(|| Webroot {
            dir: settings.wellknown.clone(),
            document_root: settings.webroot.clone(),
        }),
        responder: responder.filter(|_| kind == ChallengeType::Http01 && !by_auth_hook),
        hook,
        chain: settings.hook_chain,
        certbot: certbot
            .filter(|_| by_auth_hook)
            .map(|runner| (runner, &settings.certbot)),
        dns: &config.dns,
        alpn_dir: &config.alpn_dir,
        journal: None,
        persist_issuer: None,
    }
}

/// The built-in http-01 responder, when `HTTP_LISTEN` is set and a certificate needs it.
pub(super) fn start_responder(
    config: &Config,
    settings: &[&CertSettings],
) -> Result<Option<Responder>> {
    match config.http_listen {
        Some(addr)
            if settings
                .iter()
                .any(|s| s.challenge == ChallengeType::Http01 && s.certbot.auth.is_none()) =>
        {
            Responder::start(addr).map(Some).map_err(Error::Config)
        }
        _ => Ok(None),
    }
}

/// The http-01 webroot of `settings` exists when it will be written to (no responder, no
/// `AUTH_HOOK`; the folders missing under a `WEBROOT` are made): a config error otherwise,
/// found before any request.
pub(super) fn check_webroot(settings: &CertSettings, responder: bool) -> Result<()> {
    if writes_files(settings, responder) {
        Webroot {
            dir: settings.wellknown.clone(),
            document_root: settings.webroot.clone(),
        }
        .check()?;
    }
    Ok(())
}

/// What is asked of a certificate: its names, and the key type (None when the key comes from
/// a `generate_csr` hook's CSR).
#[derive(Clone, Copy)]
pub(super) struct Asked<'a> {
    pub names: &'a [String],
    pub key: Option<crate::keys::KeyAlgo>,
}

impl<'a> Asked<'a> {
    /// What is asked of `spec`: with `csr_names` (the names of the CSR its `generate_csr` hook
    /// gave) those names and any key type, the CSR's key being the one that counts; else
    /// domains.txt's names and the config's `KEY_ALGO`. The one answer of `--cron`, its dry
    /// run, the metrics and `--check`; `--check` runs no hook and passes the names the last
    /// `--cron` run recorded ([`CertState::csr_names`]).
    pub fn of(spec: &'a CertSpec, csr_names: Option<&'a [String]>) -> Asked<'a> {
        match csr_names {
            Some(names) => Asked { names, key: None },
            None => Asked {
                names: &spec.names,
                key: Some(spec.settings.key_algo),
            },
        }
    }
}

/// How this run decides: `--force`, whether the CA's renewal information counts (`ARI=yes`,
/// and the CA not known to have stopped offering it), and which CAs issued the certificates
/// that have no record of theirs.
#[derive(Debug, Clone)]
pub(super) struct Rules {
    pub force: bool,
    pub ari: bool,
    /// [`Wanted::earlier_cas`]: the CAs ACCOUNTDIR holds accounts of, when it holds none of
    /// the configured one's.
    pub earlier_cas: Vec<String>,
}

impl Rules {
    pub fn new(config: &Config, force: bool, states: &StateDir) -> Rules {
        let ca = states.ca();
        let not_offered = ca.is_about(&config.ca) && !ca.renewal_info;
        let mut accounts = crate::store::account_cas(&config.accountdir);
        accounts
            .retain(|url| url.starts_with("https://") && crate::acme::text::check_url(url).is_ok());
        let configured = accounts.contains(&config.ca);
        Rules {
            force,
            ari: config.ari && !not_offered,
            // As state/ records CAs: shown, without a user or password.
            earlier_cas: if configured {
                Vec::new()
            } else {
                accounts
                    .iter()
                    .map(|url| shown_url(url).into_owned())
                    .collect()
            },
        }
    }
}

/// What one certificate's decision is made from: its live files and what `state/` recorded.
pub(super) struct Facts {
    pub live: Option<std::result::Result<Live, String>>,
    pub recorded: CertState,
}

impl Facts {
    /// Reads the live certificate of `spec` (its chain only when the decision needs it).
    pub fn read(config: &Config, spec: &CertSpec, recorded: CertState) -> Facts {
        let dir = CertDir::new(&config.certdir, &spec.name);
        let preferred = spec.settings.preferred_chain.as_deref();
        let top_issuer = renewal::needs_top_issuer(preferred, &recorded);
        Facts {
            live: live(
                config,
                &dir,
                &spec.name,
                top_issuer,
                recorded.cert_sha256.as_deref(),
            ),
            recorded,
        }
    }

    /// Reads the live certificate of the folder `name` with what `state/` recorded of it, for
    /// a certificate whose config cannot be used or that no domains.txt line asks for.
    pub fn read_named(config: &Config, name: &str, recorded: CertState) -> Facts {
        Facts {
            live: live(
                config,
                &CertDir::new(&config.certdir, name),
                name,
                false,
                recorded.cert_sha256.as_deref(),
            ),
            recorded,
        }
    }

    /// The live certificate, when it could be read.
    pub fn readable(&self) -> Option<&Live> {
        self.live.as_ref().and_then(|l| l.as_ref().ok())
    }
}

/// The renewal decision for `spec` asked as `asked`: [`renewal::decide`] on `facts`.
pub(super) fn decide(
    config: &Config,
    rules: &Rules,
    spec: &CertSpec,
    asked: Asked<'_>,
    facts: &Facts,
    now: i64,
) -> Decision {
    let settings = &spec.settings;
    let wanted = Wanted {
        names: asked.names,
        key: asked.key,
        profile: settings.profile.as_deref(),
        preferred_chain: settings.preferred_chain.as_deref(),
        ca: &shown_url(&config.ca),
        earlier_cas: &rules.earlier_cas,
    };
    let policy = Policy {
        force: rules.force,
        renew_days: settings.renew_days,
        ari: rules.ari,
    };
    renewal::decide(facts.live.as_ref(), &wanted, &facts.recorded, policy, now)
}

/// Whether runs `gap` apart (None: no history yet) can let the live certificate of `spec`
/// expire before a run renews it: [`renewal::too_slow`] on `facts`. `--cron` makes it an
/// error, `--check` a warning.
pub(super) fn schedule(
    spec: &CertSpec,
    facts: &Facts,
    gap: Option<i64>,
) -> Option<renewal::TooSlow> {
    let live = &facts.readable()?.facts;
    renewal::too_slow(
        live.not_before,
        live.not_after,
        spec.settings.renew_days,
        gap?,
    )
}

/// The most of a live certificate or chain file that is read: a certificate file given to
/// `CERT_OWNER` is that user's to grow.
const MAX_LIVE_FILE: u64 = 1 << 20;

/// A file written less than this many seconds ago is read but not kept in the cache: a write
/// in the same tick of the file system's clock as our read would leave its times unchanged.
const SETTLED: i64 = 2;

/// The live certificates' cache of this process ([`LiveCache`]), with the `state/` folder it
/// is of: loaded on the first read of a live certificate, written by [`keep_live_cache`].
static LIVE_CACHE: Mutex<Option<(PathBuf, LiveCache)>> = Mutex::new(None);

/// Runs `f` on the live certificates' cache of `config`'s `state/`, loading it first.
fn with_cache<T>(config: &Config, f: impl FnOnce(&mut LiveCache) -> T) -> T {
    let states = StateDir::new(&config.basedir);
    let mut guard = LIVE_CACHE.lock().unwrap_or_else(|e| e.into_inner());
    if guard.as_ref().is_none_or(|(dir, _)| dir != states.path()) {
        *guard = Some((states.path().to_path_buf(), states.live_cache()));
    }
    match guard.as_mut() {
        Some((_, cache)) => f(cache),
        None => f(&mut LiveCache::default()),
    }
}

/// Whether the certificate folder of `name`, of identity `folder`, is the one the cache of
/// `config`'s `state/` last found whole ([`LiveCache::folder_whole`]).
pub(super) fn folder_whole(config: &Config, name: &str, folder: &crate::store::FileId) -> bool {
    with_cache(config, |cache| cache.folder_whole(name, folder))
}

/// Notes in the cache that the certificate folder of `name`, of identity `folder`, was found
/// whole; not one changed in the last [`SETTLED`] seconds, whose identity may not yet show a
/// change made in the same tick of the file system's clock.
pub(super) fn folder_found_whole(config: &Config, name: &str, folder: crate::store::FileId) {
    if !folder.recent(unix_now(), SETTLED) {
        with_cache(config, |cache| cache.folder_found_whole(name, folder));
    }
}

/// Writes what this process learnt of the live certificates to `state/` for the next run
/// (unless nothing changed), keeping only the certificates in `scope` when it is given (the
/// whole of domains.txt). Never in a dry run, which keeps nothing.
pub(super) fn keep_live_cache(config: &Config, scope: Option<&[Entry]>) {
    let states = StateDir::new(&config.basedir);
    let mut guard = LIVE_CACHE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, cache)) = guard.as_mut().filter(|(dir, _)| dir == states.path()) {
        let scope: Option<std::collections::HashSet<&str>> =
            scope.map(|entries| entries.iter().map(Entry::name).collect());
        states.save_live_cache(cache, scope.as_ref());
    }
}

/// The live `<kind>.pem` of `dir`, read only where the layout puts it
/// ([`CertDir::open_live`]), at most [`MAX_LIVE_FILE`] bytes.
fn read_live(dir: &CertDir, kind: &str) -> std::io::Result<Vec<u8>> {
    let file = dir.open_live(kind, "pem")?;
    read_at_most(file, kind)
}

fn read_at_most(file: std::fs::File, kind: &str) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let size = file.metadata()?.len().min(MAX_LIVE_FILE);
    let mut bytes = Vec::with_capacity(size as usize + 1);
    file.take(MAX_LIVE_FILE + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_LIVE_FILE {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{kind}.pem is larger than any certificate file (over 1 MiB)"),
        ));
    }
    Ok(bytes)
}

/// What `cert.pem` of `dir` says: None when there is none, Err when it cannot be read or is
/// not the file this program wrote (`recorded`, SHA-256) while another user owns it; the top
/// issuer of `chain.pem` only when `top_issuer`. An unchanged file (the same [`FileId`]) is
/// not read again: what the cache of `config`'s `state/` kept of it is used.
fn live(
    config: &Config,
    dir: &CertDir,
    name: &str,
    top_issuer: bool,
    recorded: Option<&str>,
) -> Option<std::result::Result<Live, String>> {
    let found = match dir.live_file("cert", "pem") {
        Ok(found) => found,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            with_cache(config, |cache| cache.forget(name));
            return None;
        }
        Err(e) => return Some(Err(e.to_string())),
    };
    let cached = with_cache(config, |cache| {
        cache.take(name, &found.id).and_then(LiveRecord::into_leaf)
    });
    let (leaf, sha256, owner) = match cached {
        Some((leaf, sha256)) => (Ok(leaf), sha256, found.id.uid),
        None => {
            let (bytes, id) = match found
                .open()
                .and_then(|(file, id)| Ok((read_at_most(file, "cert")?, id)))
            {
                Ok(read) => read,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
                Err(e) => return Some(Err(e.to_string())),
            };
            let sha256 = x509::fingerprint(&bytes);
            let leaf = x509::leaf(&bytes);
            match &leaf {
                Ok(leaf) if !id.recent(unix_now(), SETTLED) => with_cache(config, |cache| {
                    cache.put(name, LiveRecord::new(id, sha256.clone(), leaf))
                }),
                _ => with_cache(config, |cache| cache.forget(name)),
            }
            (leaf, sha256, id.uid)
        }
    };
    let ours = owner == crate::store::effective_uid();
    if let Some(written) = recorded.filter(|_| !ours)
        && sha256 != written
    {
        return Some(Err(format!(
            "cert.pem is not the file this program wrote: its owner (uid {owner}) \
             changed it, so what it says is not trusted"
        )));
    }
    Some(leaf.map(|leaf| {
        Live {
            facts: leaf.facts,
            cert_id: leaf.cert_id,
            issuer: leaf.issuer,
            top_issuer: top_issuer
                .then(|| read_live(dir, "chain").ok())
                .flatten()
                .and_then(|b| x509::pem_certs(&b).ok())
                .and_then(|chain| x509::top_issuer(&chain)),
        }
    }))
}
