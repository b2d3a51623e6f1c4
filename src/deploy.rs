//! Deployment of one certificate set: write the set -> `sync_cert` -> switch the links ->
//! `deploy_cert` -> `DEPLOY_HOOK`, and beside it [`recover`], the repair of what a run killed on the way left,
//! so that the crash invariants live next to the code they protect:
//!
//! - a set is whole on disk (every file fsynced) before its first link moves, and `state/`
//!   notes it as pending before then;
//! - a run killed between two link switches leaves a mixed set, which the next run moves
//!   forward to the newest whole set before anything else;
//! - a set noted as pending whose `deploy_cert` never succeeded is made live and deployed by
//!   the next run, without a new order.
//!
//! Also the choices about the set's keys: which key a new certificate gets, and the next key
//! kept ready for `PRIVATE_KEY_ROLLOVER`.

use crate::challenge::{Deployed, Solver};
use crate::config::{CertSpec, Config};
use crate::error::{Error, Result};
use crate::hooks::{CertbotEvent, Hook, HookEvent};
use crate::issue::{Issued, KeySource};
use crate::keys::CertKey;
use crate::state::{CertState, StateDir};
use crate::store::{self, CertDir, CertFiles, WrittenSet};
use crate::{failpoint, logging, pkcs12, x509};

/// Writes `issued` as a new set of `spec` (not live yet) and notes it as pending in `state/`:
/// from then on a run that stops before `deploy_cert` succeeded leaves it to the next run to
/// finish. Runs no hook.
pub fn write(config: &Config, spec: &CertSpec, issued: &Issued, now: i64) -> Result<WrittenSet> {
    let dir = CertDir::new(&config.certdir, &spec.name);
    let set = write_files(config, spec, issued, &dir, now)?;
    let states = StateDir::new(&config.basedir);
    let mut state = states.cert(&spec.name);
    state.pending = Some(set.ts);
    states.save_cert(&spec.name, &state)?;
    failpoint::hit("pending-noted");
    Ok(set)
}

/// Writes `issued` as a set into `dir`, as every set is written (the key, a `cert.p12` with
/// `PKCS12_EXPORT=yes`, the modes and owner of the config); nothing is live yet.
fn write_files(
    config: &Config,
    spec: &CertSpec,
    issued: &Issued,
    dir: &CertDir,
    now: i64,
) -> Result<WrittenSet> {
    // A kept key is written into the new set too, so that every set is whole.
    let privkey = issued.key.as_ref().map(|k| k.pem());
    let p12 = pkcs12_export(config, spec, issued)?;
    let files = CertFiles {
        privkey: privkey.as_deref(),
        csr: &issued.csr.pem,
        cert: &issued.cert,
        chain: &issued.chain,
        p12: p12.as_deref(),
    };
    dir.write_set(&files, now, &config.modes)
}

/// A `--dry-run`'s stand-in for [`write`] and the switch of [`go_live`]: writes `issued` as a
/// set of `spec` into `certdir` (a temporary folder, never `CERTDIR`) and moves that folder's
/// links to it. Nothing is noted in `state/`; no hook runs.
pub fn write_trial(
    config: &Config,
    spec: &CertSpec,
    issued: &Issued,
    certdir: &std::path::Path,
    now: i64,
) -> Result<()> {
    let dir = CertDir::new(certdir, &spec.name);
    let set = write_files(config, spec, issued, &dir, now)?;
    dir.switch(&set)
}

/// The hooks told of a certificate that goes live: dehydrated's `HOOK`, and what runs certbot's
/// `DEPLOY_HOOK` (see `session::certbot_runner`).
#[derive(Clone, Copy)]
pub struct Hooks<'a> {
    pub hook: Option<&'a Hook>,
    pub certbot: Option<&'a Hook>,
}

/// Makes a written set live and deployed: `sync_cert`, the links, the next key with
/// `PRIVATE_KEY_ROLLOVER`, the chain cache, then `deploy_cert` for the first of `names` and
/// `DEPLOY_HOOK` for all of them.
pub fn go_live(
    config: &Config,
    spec: &CertSpec,
    hooks: Hooks<'_>,
    names: &[String],
    set: &WrittenSet,
    issued: &Issued,
) -> Result<()> {
    let dir = CertDir::new(&config.certdir, &spec.name);
    switch(hooks.hook, &dir, set)?;
    roll_key(spec, &dir)?;
    cache_chain(config, issued);
    deploy_cert(spec, hooks, names, &dir, set.ts)
}

/// Runs `sync_cert` on a written set, then moves the links to it.
fn switch(hook: Option<&Hook>, dir: &CertDir, set: &WrittenSet) -> Result<()> {
    if let Some(h) = hook {
        h.run(
            &HookEvent::SyncCert {
                keyfile: set.privkey.clone().unwrap_or_else(|| dir.privkey()),
                certfile: set.cert.clone(),
                fullchainfile: set.fullchain.clone(),
                chainfile: set.chain.clone(),
                requestfile: set.csr.clone(),
            },
            &[],
        )?;
    }
    dir.switch(set)
}

/// Runs `deploy_cert` on the live set, written at `ts`, then `DEPLOY_HOOK` as certbot runs
/// its deploy hook: `RENEWED_LINEAGE` the certificate's folder, `RENEWED_DOMAINS` its names.
fn deploy_cert(
    spec: &CertSpec,
    hooks: Hooks<'_>,
    names: &[String],
    dir: &CertDir,
    ts: i64,
) -> Result<()> {
    failpoint::hit("deploy-cert-before");
    if let Some(h) = hooks.hook {
        h.run(
            &HookEvent::DeployCert {
                domain: names[0].clone(),
                keyfile: dir.privkey(),
                certfile: dir.cert(),
                fullchainfile: dir.fullchain(),
                chainfile: dir.chain(),
                timestamp: ts,
            },
            &[],
        )?;
    }
    if let (Some(runner), Some(command)) = (hooks.certbot, &spec.settings.certbot.deploy) {
        runner.run_certbot(
            command,
            &CertbotEvent::Deploy {
                lineage: dir.dir.clone(),
                domains: names.to_vec(),
            },
        )?;
    }
    failpoint::hit("deploy-cert-after");
    Ok(())
}

/// Runs `unchanged_cert` for a certificate that stays as it is.
pub fn unchanged(config: &Config, spec: &CertSpec, hook: &Hook, domain: &str) -> Result<()> {
    let dir = CertDir::new(&config.certdir, &spec.name);
    hook.run(
        &HookEvent::UnchangedCert {
            domain: domain.to_string(),
            keyfile: dir.privkey(),
            certfile: dir.cert(),
            fullchainfile: dir.fullchain(),
            chainfile: dir.chain(),
        },
        &[],
    )
    .map(|_| ())
}

/// Finishes what an interrupted run left of one certificate, before anything is decided for
/// it: takes away the challenges it left in place through `solver` (running `clean_challenge`
/// for those the hook was told of; looked for only when `challenges_left`), moves links left
/// pointing at two sets to the newest whole one, and makes live and deploys a set that was
/// written but whose `deploy_cert` never succeeded, without a new order. The links are
/// looked at only when `folder_changed` (since a run last found the folder whole). `state` is
/// what `state/` records of it, read once by the caller and kept up to date here. Returns the
/// timestamp of the set it deployed, if any.
pub fn recover(
    config: &Config,
    spec: &CertSpec,
    hooks: Hooks<'_>,
    solver: &Solver<'_>,
    state: &mut CertState,
    (challenges_left, folder_changed): (bool, bool),
) -> Result<Option<i64>> {
    let states = StateDir::new(&config.basedir);
    if challenges_left && let Some(left) = Deployed::left_over(states.challenges(&spec.name)) {
        logging::info(format_args!(
            "{}: taking away the challenges an interrupted run left in place",
            spec.name
        ));
        if let Err(e) = solver.clean(left) {
            logging::warn(e);
        }
    }
    let dir = CertDir::new(&config.certdir, &spec.name);
    if folder_changed && let Some(ts) = dir.repair()? {
        logging::warn(format_args!(
            "{}: an interrupted run left the links pointing at two sets; all point at the set \
             of {} now",
            spec.name,
            logging::utc(ts)
        ));
    }
    let Some(ts) = state.pending else {
        return Ok(None);
    };
    let live = dir.live_ts();
    let set = dir
        .written_set(ts)
        .filter(|_| live.is_none_or(|live| live <= ts));
    if let Some(set) = &set {
        logging::info(format_args!(
            "{}: finishing what an earlier run left undone: the certificate of {} goes live",
            spec.name,
            logging::utc(ts)
        ));
        if live != Some(ts) {
            switch(hooks.hook, &dir, set)?;
        }
        deploy_cert(spec, hooks, &spec.names, &dir, ts)?;
        // Ordered by the interrupted run, under the same config as far as we know.
        let cert = store::read_plain(&set.cert).unwrap_or_default();
        issued_under(state, config, spec, &cert);
    }
    state.pending = None;
    states.save_cert(&spec.name, state)?;
    Ok(set.map(|s| s.ts))
}

/// Records in `state` what the certificate that just went live was issued under: the CA, the
/// profile and the preferred chain its renewal decision compares with the config; the CA's
/// renewal information for the certificate it replaced no longer applies.
pub fn issued_under(state: &mut CertState, config: &Config, spec: &CertSpec, cert: &[u8]) {
    state.cert_sha256 = Some(crate::x509::fingerprint(cert));
    state.preferred_chain = Some(spec.settings.preferred_chain.clone().unwrap_or_default());
    state.profile = Some(spec.settings.profile.clone().unwrap_or_default());
    // As shown: a password in the CA's URL is not kept (nor compared).
    state.ca = Some(crate::acme::text::shown_url(&config.ca).into_owned());
    state.ari = None;
}

/// The key for a new certificate: the live key with `PRIVATE_KEY_RENEW=no` (when it is of the
/// wanted type), else the key waiting in `privkey.roll.pem` with `PRIVATE_KEY_ROLLOVER=yes`,
/// else a new one. A kept key is read only where the layout puts it (the `privkey.pem` link to
/// a `privkey-<time>.pem` of the same folder, no symlink beyond, ours or `CERT_OWNER`'s, one
/// name): one found elsewhere is not used, with a warning, and a new key is made.
pub fn key_source(config: &Config, spec: &CertSpec) -> KeySource {
    let settings = &spec.settings;
    let dir = CertDir::new(&config.certdir, &spec.name);
    let usable = |read: std::result::Result<String, String>| match read {
        Ok(text) => CertKey::read(&text)
            .ok()
            .filter(|k| k.algo() == settings.key_algo),
        Err(why) => {
            logging::warn(format_args!(
                "{}: the key to keep is not used, a new one is made: {why}",
                spec.name
            ));
            None
        }
    };
    let live_exists = || std::fs::symlink_metadata(dir.privkey()).is_ok();
    if !settings.key_renew
        && live_exists()
        && let Some(key) = usable(dir.kept_key(config.modes.key.uid))
    {
        return KeySource::Existing(Box::new(key));
    }
    let roll_exists = || std::fs::symlink_metadata(dir.roll_key()).is_ok();
    if settings.key_renew
        && settings.key_rollover
        && roll_exists()
        && let Some(key) = usable(dir.roll_key_text())
    {
        return KeySource::Existing(Box::new(key));
    }
    KeySource::Generate(settings.key_algo)
}

/// With `PRIVATE_KEY_ROLLOVER=yes`, makes the next key ready in `privkey.roll.pem` (for key
/// pinning: publish it before it is used); without, removes a stale one, as dehydrated does.
fn roll_key(spec: &CertSpec, dir: &CertDir) -> Result<()> {
    let path = dir.roll_key();
    if spec.settings.key_renew && spec.settings.key_rollover {
        let key =
            CertKey::generate(spec.settings.key_algo).map_err(|m| Error::refused(&spec.name, m))?;
        store::write_file(&path, key.pem().as_bytes(), store::KEY_MODE)
    } else {
        let _ = std::fs::remove_file(&path);
        Ok(())
    }
}

/// Keeps the chain in `CHAINCACHE/<issuer hash>.chain`, dehydrated's chain cache, for scripts
/// that look there. Failing to is a warning: the certificate is in place.
fn cache_chain(config: &Config, issued: &Issued) {
    let Ok(chain) = x509::pem_certs(issued.chain.as_bytes()) else {
        return;
    };
    let Some(first) = chain.first() else {
        return;
    };
    let hash = ring::digest::digest(&ring::digest::SHA256, first);
    let name: String = hash.as_ref()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let path = store::cached_chain(&config.chain_cache, &name);
    if store::read_plain(&path).is_ok_and(|cached| cached == issued.chain.as_bytes()) {
        return;
    }
    let written = store::create_dir(&config.chain_cache, 0o755)
        .and_then(|()| store::write_file(&path, issued.chain.as_bytes(), store::PUBLIC_MODE));
    if let Err(e) = written {
        logging::warn(e);
    }
}

/// The `cert.p12` export when `PKCS12_EXPORT=yes` and the key is ours.
fn pkcs12_export(config: &Config, spec: &CertSpec, issued: &Issued) -> Result<Option<Vec<u8>>> {
    let Some(passphrase) = &config.pkcs12_passphrase else {
        return Ok(None);
    };
    let Some(key) = &issued.key else {
        logging::warn(format_args!(
            "{}: no cert.p12, because the key was made by the generate_csr hook",
            spec.name
        ));
        return Ok(None);
    };
    let cert =
        x509::pem_certs(issued.cert.as_bytes()).map_err(|m| Error::refused(&spec.name, m))?;
    let chain = x509::pem_certs(issued.chain.as_bytes()).unwrap_or_default();
    pkcs12::build(&key.pkcs8_der(), &cert[0], &chain, &spec.name, passphrase)
        .map(Some)
        .map_err(|m| Error::refused(&spec.name, m))
}
