//! `--dry-run`: the whole path of a run (account, order, challenges, validation, finalize,
//! download, chain checks) against the CA's test endpoint when it has one, else the configured
//! CA, for every certificate in scope, due or not; the new keys and certificates go to a
//! temporary folder that is removed, nothing under `CERTDIR`, `state/` or the configured CA's
//! account changes, and no deploy hook runs. What a real run would decide is said for each
//! certificate ([`renewal::decide`](crate::renewal::decide), through `session::decide`).

use std::sync::Arc;

use super::cron::generated_csr;
use super::renew::{Job, try_one};
use super::report::{self, Outcome};
use super::session::{
    Asked, Entry, Facts, Rules, Session, certbot_runner, check_webroot, connect, decide, hook_for,
    start_responder, unix_now,
};
use crate::account::{self as acct, Account, Found, Terms};
use crate::acme::Client;
use crate::acme::text::shown_url;
use crate::config::{CertSettings, CertSpec, Config};
use crate::error::{Result, Status};
use crate::hooks::Hook;
use crate::issue::Ctx;
use crate::keys::Csr;
use crate::renewal::{Decision, Reason};
use crate::state::{StateDir, Untouched};
use crate::store::{AccountDir, CertDir, ScratchDir};
use crate::values::test_sibling;
use crate::{logging, parallel, stop};

/// Threads that answer the authorizations of one order.
const AUTHZ_WORKERS: usize = 16;

/// What a dry run works with: the CA it goes to, the config with that CA in place of the
/// configured one, and the temporary folder.
pub struct Rehearsal {
    /// The config of the run with `CA` set to the CA the dry run goes to.
    pub trial: Config,
    /// Whether that CA is the configured one's test endpoint, not the configured CA itself.
    pub sibling: bool,
    scratch: Scratch,
}

impl Rehearsal {
    /// Chooses the CA (the test endpoint of the configured CA when it has one), says which on
    /// a line of its own, and makes the temporary folder.
    pub fn start(config: &Config) -> Result<Rehearsal> {
        let (url, sibling) = match test_sibling(&config.ca) {
            Some((name, url)) => {
                logging::info(format_args!(
                    "dry run against {url} ({name}, the test endpoint of {}); nothing is kept \
                     or deployed",
                    shown_url(&config.ca)
                ));
                (url.to_string(), true)
            }
            None => {
                logging::info(format_args!(
                    "dry run against {}, the configured CA, which has no test endpoint; \
                     nothing is kept or deployed",
                    shown_url(&config.ca)
                ));
                (config.ca.clone(), false)
            }
        };
        let scratch = Scratch::create()?;
        logging::debug(format_args!(
            "dry run: new keys and certificates go to {}, removed at the end",
            scratch.0.dir.display()
        ));
        let mut trial = config.clone();
        trial.ca = url;
        Ok(Rehearsal {
            trial,
            sibling,
            scratch,
        })
    }

    /// A client of the CA the dry run goes to.
    pub fn connect(&self) -> Result<Client> {
        connect(&self.trial)
    }

    /// The account the dry run orders with. At a test endpoint: its own account, kept under
    /// `ACCOUNTDIR` (as certbot keeps its staging account), registered when missing if the
    /// configured CA's account exists (its terms were accepted) or with `--accept-terms`. At
    /// the configured CA: its account, read and never written; when there is none, a throwaway
    /// account whose key stays in the temporary folder (with `--accept-terms`, as a real run
    /// would need).
    pub fn account(&self, session: &Session, client: &Client) -> Result<Account> {
        let config = &session.config;
        let terms = |accepted| Terms {
            accepted,
            contact: config.contact_email.as_deref(),
            key_algo: config.account_key_algo,
            eab: config.eab.as_ref(),
            now: unix_now(),
        };
        let real = session.account_dir();
        if self.sibling {
            let accepted =
                session.opts.accept_terms || std::fs::exists(real.key()).unwrap_or(false);
            let dir = AccountDir::new(&config.accountdir, &self.trial.ca);
            let (account, found) = acct::load_or_register(client, &dir, terms(accepted))?;
            if found == Found::Registered {
                logging::info(format_args!(
                    "account: registered with the test CA as {}, kept in {} for later dry runs",
                    account.url,
                    dir.dir.display()
                ));
            }
            return Ok(account);
        }
        if let Some(account) = acct::load_existing(client, &real)? {
            return Ok(account);
        }
        let dir = AccountDir::new(&self.scratch.0.accountdir(), &self.trial.ca);
        let (account, _) = acct::load_or_register(client, &dir, terms(session.opts.accept_terms))?;
        logging::info(format_args!(
            "account: {} holds no account of this CA: a throwaway one was registered for the \
             dry run ({}); its key is not kept",
            config.accountdir.display(),
            account.url
        ));
        Ok(account)
    }
}

/// The temporary folder, which the watchdog of [`stop`] also removes if it must end the run.
struct Scratch(ScratchDir);

impl Scratch {
    fn create() -> Result<Scratch> {
        let dir = ScratchDir::create()?;
        stop::remove_at_exit(Some(dir.dir.clone()));
        Ok(Scratch(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        stop::remove_at_exit(None);
    }
}

/// Puts `state/` back as it was when the dry run ends, however it ends.
struct Restore(Option<Untouched>);

impl Drop for Restore {
    fn drop(&mut self) {
        if let Some(untouched) = self.0.take() {
            untouched.restore();
        }
    }
}

/// One certificate of the dry run, once planned.
struct Trial<'a> {
    spec: &'a CertSpec,
    hook: Option<Hook>,
    certbot: Option<Hook>,
    /// The names to order: domains.txt's, or those of the CSR the `generate_csr` hook gave.
    names: Vec<String>,
    csr: Option<Csr>,
    /// What a real run decides now.
    decision: Decision,
    /// The live certificate's not-after.
    not_after: Option<i64>,
    index: usize,
}

/// Asks the hook for a CSR and decides as a real run would, changing nothing: no repair of an
/// interrupted run (said, and left to the next real run), no record in `state/`.
fn plan<'a>(
    session: &Session,
    rules: &Rules,
    states: &StateDir,
    spec: &'a CertSpec,
    index: usize,
) -> std::result::Result<Trial<'a>, Outcome> {
    let config = &session.config;
    // The hooks see the configured CA's variables, as startup_hook does, and DRY_RUN=yes.
    let hook = hook_for(config, Some((spec, &spec.names))).map(|h| session.dry(h));
    let certbot = certbot_runner(config, Some((spec, &spec.names))).map(|h| session.dry(h));
    let recorded = states.cert(&spec.name);
    if recorded.pending.is_some() {
        logging::info(format_args!(
            "{}: an interrupted run left a certificate to deploy; a real run deploys it first, \
             without a new order",
            spec.name
        ));
    }
    let (names, csr) = match hook.as_ref().map(|h| generated_csr(h, config, spec)) {
        Some(Ok(Some((csr, names)))) => (names, Some(csr)),
        Some(Ok(None)) | None => (spec.names.clone(), None),
        Some(Err(e)) => {
            report::failure(spec, hook.as_ref(), &e);
            return Err(Outcome::failed(None, e));
        }
    };
    let facts = Facts::read(config, spec, recorded);
    let asked = Asked::of(spec, csr.as_ref().map(|_| &names[..]));
    let decision = decide(config, rules, spec, asked, &facts, unix_now());
    let not_after = facts.readable().map(|l| l.facts.not_after);
    Ok(Trial {
        spec,
        hook,
        certbot,
        names,
        csr,
        decision,
        not_after,
        index,
    })
}

/// The body of `--cron --dry-run` between startup_hook and exit_hook: every certificate in
/// scope is ordered from the CA the dry run goes to, except those held back (a back-off, a
/// rate limit), which fail as in a real run unless `--force`. The status, and the names of
/// the certificates that failed.
pub fn batch(session: &Session, entries: &[Entry]) -> Result<(Status, Vec<String>)> {
    let config = &session.config;
    let rehearsal = Rehearsal::start(config)?;
    let trial = &rehearsal.trial;
    let states = StateDir::new(&config.basedir);
    // Only the challenge journals go there, and they go again: then state/ is put back as it
    // was.
    let _untouched = Restore(Some(states.untouched()));
    let rules = Rules::new(config, session.opts.force, &states);
    let mut outcomes: Vec<Option<Outcome>> = entries.iter().map(|_| None).collect();
    let mut go: Vec<Trial<'_>> = Vec::new();
    logging::progress_start(entries.len());
    for (index, entry) in entries.iter().enumerate() {
        let folder = CertDir::new(&config.certdir, entry.name());
        if folder.given_away() {
            logging::warn(format_args!(
                "{}: the folder is another user's or open to others' writes; a real run takes \
                 it back, a dry run leaves it as it is",
                folder.dir.display()
            ));
        }
        let spec = match entry {
            Entry::Ready(spec) => spec,
            Entry::Broken(b) => {
                outcomes[index] = Some(report::broken(b));
                continue;
            }
        };
        logging::progress(format_args!("{}: planning", spec.name));
        match plan(session, &rules, &states, spec, index) {
            Ok(t) => match t.decision {
                Decision::Hold { hold, until, .. } => {
                    let e = report::held_back(t.spec, hold, until);
                    report::failure(t.spec, None, &e);
                    outcomes[index] = Some(Outcome::failed(Some(t.decision.clone()), e));
                }
                _ => go.push(t),
            },
            Err(outcome) => outcomes[index] = Some(outcome),
        }
    }
    // Those that end here are done on the progress line.
    for _ in 0..entries.len() - go.len() {
        logging::progress_done();
    }

    let settings: Vec<&CertSettings> = go.iter().map(|t| &*t.spec.settings).collect();
    let responder = start_responder(trial, &settings)?;
    go.retain(
        |t| match check_webroot(&t.spec.settings, responder.is_some()) {
            Ok(()) => true,
            Err(e) => {
                report::failure(t.spec, None, &e);
                outcomes[t.index] = Some(Outcome::failed(Some(t.decision.clone()), e));
                logging::progress_done();
                false
            }
        },
    );
    if !go.is_empty() {
        let certdir = rehearsal.scratch.0.certdir();
        let responder = responder.as_ref();
        let tried = rehearsal.connect().and_then(|client| {
            let account = rehearsal.account(session, &client)?;
            let ctx = Ctx {
                client: &client,
                account: &account,
                workers: AUTHZ_WORKERS,
                force_validation: session.opts.force_validation,
            };
            let done = parallel::map(&go, config.jobs, |t| {
                // A dry run orders every certificate, due or not: forced, as far as the order
                // goes.
                let job = Job {
                    spec: t.spec,
                    hook: t.hook.as_ref(),
                    certbot: t.certbot.as_ref(),
                    names: &t.names,
                    csr: t.csr.as_ref(),
                    cert_id: None,
                    reason: t.decision.reason().unwrap_or(&Reason::Forced),
                };
                let tried = try_one(&ctx, trial, &job, responder, &certdir);
                logging::progress_done();
                tried
            });
            logging::debug(format_args!(
                "{} requests sent to the CA",
                client.requests()
            ));
            Ok(done)
        });
        match tried {
            Ok(done) => {
                for (t, result) in go.iter().zip(done) {
                    outcomes[t.index] = Some(outcome(t, result));
                }
            }
            Err(e) => {
                let e = Arc::new(e);
                // Nothing could be ordered: every certificate failed the same way. A stop is
                // said once, below.
                if !e.is_stop() {
                    logging::error(format_args!("{e}{}", report::hint(&e, None)));
                }
                for t in &go {
                    if let Some(h) = &t.hook {
                        report::request_failure(h, &e);
                    }
                    logging::info(format_args!(
                        "{}: {}",
                        t.spec.name,
                        report::real_run(&t.decision)
                    ));
                    outcomes[t.index] = Some(Outcome::Failed {
                        decision: Some(t.decision.clone()),
                        error: Arc::clone(&e),
                    });
                }
            }
        }
    }
    let outcomes: Vec<Outcome> = outcomes.into_iter().flatten().collect();
    let status = outcomes
        .iter()
        .map(Outcome::status)
        .fold(Status::Ok, Status::merge);
    logging::progress_end();
    if !report::stopped(&outcomes) {
        report::dry_run_summary(&outcomes);
    }
    if session.opts.json {
        report::print_dry_run_json(entries, &outcomes, &shown_url(&trial.ca), status);
    }
    let failed = entries
        .iter()
        .zip(&outcomes)
        .filter(|(_, o)| o.error().is_some())
        .map(|(e, _)| e.name().to_string())
        .collect();
    Ok((status, failed))
}

/// The outcome of one certificate's order, and its line: what the dry run showed, and what a
/// real run decides now.
fn outcome(t: &Trial<'_>, result: Result<i64>) -> Outcome {
    let real_run = report::real_run(&t.decision);
    match result {
        Ok(until) => {
            logging::info(format_args!(
                "{}: dry run passed: a certificate valid until {} was issued and checked, and \
                 not kept; {real_run}",
                t.spec.name,
                logging::utc(until)
            ));
            Outcome::Tried {
                decision: t.decision.clone(),
                not_after: t.not_after,
            }
        }
        Err(e) => {
            report::failure(t.spec, t.hook.as_ref(), &e);
            logging::info(format_args!("{}: dry run failed; {real_run}", t.spec.name));
            Outcome::failed(Some(t.decision.clone()), e)
        }
    }
}
