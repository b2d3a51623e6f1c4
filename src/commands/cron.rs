//! `--cron`: the periodic run. Plans every certificate from the disk alone (the repair of an
//! interrupted run, then [`renewal::decide`](crate::renewal::decide)), lets the CA's renewal
//! information move kept ones to the due ones, issues the due ones concurrently with
//! dehydrated's hooks around every step, and merges their outcomes into the exit status.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::renew::{Job, renew_one};
use super::report::{self, Outcome, Tally};
use super::session::{
    Asked, Broken, Entry, Facts, Rules, Session, certbot_runner, check_webroot, connect, decide,
    folder_found_whole, folder_whole, hook_at, hook_for, keep_live_cache, schedule, solver,
    start_responder, unix_now,
};
use crate::account::Found;
use crate::acme::Client;
use crate::acme::pace::{self, OrderLimit};
use crate::acme::poll::Work;
use crate::config::{CertSettings, CertSpec, Config};
use crate::error::{Error, Result, Status};
use crate::hooks::{Hook, HookEvent};
use crate::issue::Ctx;
use crate::keys::Csr;
use crate::renewal::{self, Decision, Reason, TooSlow};
use crate::state::{CaState, CertState, StateDir};
use crate::store::{self, CertDir};
use crate::{ari, deploy, failpoint, logging, metrics, parallel, x509};

/// Threads that answer the authorizations of one order.
const AUTHZ_WORKERS: usize = 16;

/// One certificate of the run, once planned: what its order and hooks need.
struct Planned<'a> {
    spec: &'a CertSpec,
    hook: Option<Hook>,
    /// What runs its certbot hooks, when it has any.
    certbot: Option<Hook>,
    /// The names to order: domains.txt's, or those of the CSR the `generate_csr` hook gave.
    names: Vec<String>,
    csr: Option<Csr>,
    facts: Facts,
    decision: Decision,
    /// Its set was made live and deployed by [`deploy::recover`] in this run.
    resumed: bool,
    /// Where the outcome goes in the report.
    index: usize,
}

impl Planned<'_> {
    fn not_after(&self) -> Option<i64> {
        self.facts.readable().map(|l| l.facts.not_after)
    }

    fn cert_id(&self) -> Option<&str> {
        self.facts.readable().and_then(|l| l.cert_id.as_deref())
    }

    /// Its metrics' figures, decided by `rules` at `now` on the facts its decision was made
    /// on; after an attempt (`after`), on what `state/` records now and, when a new certificate
    /// went live, on that one.
    fn figures(
        &self,
        config: &Config,
        rules: &Rules,
        after: Option<(CertState, bool)>,
        now: i64,
    ) -> metrics::Cert {
        let read;
        let facts = match after {
            None => &self.facts,
            Some((recorded, true)) => {
                read = Facts::read(config, self.spec, recorded);
                &read
            }
            Some((recorded, false)) => {
                read = Facts {
                    live: self.facts.live.clone(),
                    recorded,
                };
                &read
            }
        };
        let decision = decide(config, rules, self.spec, self.asked(), facts, now);
        metrics::Cert::decided(
            &self.spec.name,
            facts.readable().map(|l| &l.facts),
            Some(&decision),
            &facts.recorded,
            now,
        )
    }

    fn asked(&self) -> Asked<'_> {
        Asked::of(self.spec, self.csr.as_ref().map(|_| &self.names[..]))
    }
}

/// Calls every hook with a handler no hook knows, as dehydrated does at start-up: a hook that
/// does not exit 0 on it would break on the next new handler. The run's hook failing is a
/// config error of the run; a certificate's own hook failing breaks that certificate alone.
/// Found before any order.
fn check_hooks(session: &Session, entries: &mut [Entry]) -> Result<()> {
    let config = &session.config;
    let run_hook = config.defaults.hook.as_deref();
    if let Some(path) = run_hook {
        probe_hook(session, path)?;
    }
    let mut probed: Vec<(PathBuf, Option<Arc<Error>>)> = Vec::new();
    for entry in entries.iter_mut() {
        let Entry::Ready(spec) = entry else {
            continue;
        };
        let Some(path) = spec
            .settings
            .hook
            .as_deref()
            .filter(|p| Some(*p) != run_hook)
        else {
            continue;
        };
        let failed = match probed.iter().find(|(p, _)| p == path) {
            Some((_, failed)) => failed.clone(),
            None => {
                let failed = probe_hook(session, path)
                    .err()
                    .map(|e| Arc::new(e.of_one_cert()));
                probed.push((path.to_path_buf(), failed.clone()));
                failed
            }
        };
        if let Some(error) = failed {
            *entry = Entry::Broken(Broken {
                name: spec.name.clone(),
                names: spec.names.clone(),
                error,
            });
        }
    }
    Ok(())
}

/// The start-up probe of the hook at `path`: a config error when it does not exit 0.
fn probe_hook(session: &Session, path: &Path) -> Result<()> {
    let hook = session.dry(hook_at(&session.config, path.to_path_buf(), None));
    hook.run(&HookEvent::Bricker, &[]).map(|_| ()).map_err(|e| {
        // Then it never ran: its handlers are not at fault.
        if crate::hooks::interpreter_problem(path).is_some() {
            return Error::Config(e.to_string());
        }
        if crate::hooks::reads_certbot_vars(path) {
            return Error::Config(format!(
                "{e}; it reads certbot's variables (CERTBOT_*, RENEWED_*), so it looks like a \
                 certbot hook, which HOOK does not run: set it as AUTH_HOOK (a \
                 --manual-auth-hook), CLEANUP_HOOK (--manual-cleanup-hook) or DEPLOY_HOOK \
                 (--deploy-hook) instead, and remove HOOK"
            ));
        }
        Error::Config(format!(
            "{e}; a hook must exit 0 on handlers it does not know (see dehydrated's \
             docs/examples/hook.sh)"
        ))
    })
}

/// Asks the hook for a CSR (`generate_csr`); Some when it printed one.
pub(super) fn generated_csr(
    hook: &Hook,
    config: &Config,
    spec: &CertSpec,
) -> Result<Option<(Csr, Vec<String>)>> {
    let out = hook.run(
        &HookEvent::GenerateCsr {
            domain: spec.names[0].clone(),
            cert_dir: CertDir::new(&config.certdir, &spec.name).dir,
            altnames: spec.names.join(" "),
        },
        &[],
    )?;
    if !out.stdout.contains("-----BEGIN CERTIFICATE REQUEST-----")
        && !out
            .stdout
            .contains("-----BEGIN NEW CERTIFICATE REQUEST-----")
    {
        return Ok(None);
    }
    x509::read_csr(&out.stdout)
        .map(Some)
        .map_err(|msg| Error::refused(&spec.name, format!("the CSR from generate_csr: {msg}")))
}

/// `--cron`: decides for every certificate without a request, then issues the due ones
/// concurrently over one connection pool, with dehydrated's hooks around each step. Prints
/// nothing when nothing was due (and no hook printed anything). Whatever its status, except
/// when another run holds the lock or it is a dry run, the run is recorded in `state/` and
/// `METRICS_FILE`.
pub fn sign_domains(session: &mut Session) -> Result<Status> {
    let started = (unix_now(), std::time::Instant::now());
    let mut tally = Tally::default();
    let result = sign_domains_once(session, &mut tally);
    if !session.opts.dry_run && !matches!(result, Err(Error::LockBusy { .. })) {
        report::finish(&session.config, tally, &result, started);
    }
    result
}

fn sign_domains_once(session: &mut Session, tally: &mut Tally) -> Result<Status> {
    crate::stop::deadline(session.config.run_timeout);
    // Only a run that writes takes back a certificate folder another user was given.
    let mut entries = if session.opts.dry_run {
        session.specs()?
    } else {
        session.specs_to_write()?
    };
    check_hooks(session, &mut entries)?;
    session.lock()?;
    tally.locked = true;
    failpoint::hit("locked");
    let config = &session.config;
    let dry_run = session.opts.dry_run;
    // Temporary files of killed runs; those of certificate folders go in `recover`. A dry
    // run leaves them to the next real one.
    if !dry_run {
        for dir in [
            StateDir::new(&config.basedir).path(),
            &session.account_dir().dir,
            &config.chain_cache,
        ] {
            store::remove_dead_temp_files(dir);
        }
    }
    let hook = session.hook(None);
    // While startup_hook runs, the CA is reached for a run sure to order (as dehydrated reaches
    // it before its hooks); a run with nothing due opens no connection.
    let early = hook.as_ref().filter(|_| !dry_run).map(|_| {
        let config = config.clone();
        let specs: Vec<CertSpec> = entries.iter().filter_map(Entry::spec).cloned().collect();
        let force = session.opts.force;
        std::thread::spawn(move || early_client(force, &config, &specs))
    });
    let result = match &hook {
        Some(h) => h.run(&HookEvent::StartupHook, &[]).map(|_| ()),
        None => Ok(()),
    }
    .and_then(|()| {
        let early = early.and_then(|h| h.join().ok()).flatten();
        if dry_run {
            super::dry_run::batch(session, &entries)
        } else {
            batch(session, &entries, early, tally)
        }
    });
    if !dry_run {
        let whole = session.opts.domains.is_empty();
        keep_live_cache(&session.config, whole.then_some(&entries[..]));
    }
    logging::progress_end();
    if let Some(h) = &hook {
        let error = match &result {
            Err(e) => Some(e.to_string()),
            Ok((_, failed)) if !failed.is_empty() => Some(format!(
                "{} of {} certificates failed: {}",
                failed.len(),
                entries.len(),
                failed.join(", ")
            )),
            Ok(_) => None,
        };
        if let Err(e) = h.run(&HookEvent::ExitHook { error }, &[]) {
            logging::error(&e);
        }
    }
    result.map(|(status, _)| status)
}

/// The CA's client, with a nonce in its pool, or the error that kept it from the CA, when
/// local rules alone are sure that a certificate will be ordered; None otherwise. Not sure:
/// a set an interrupted run left to deploy (finished without an order), changed names (a
/// `generate_csr` hook may name others), a certificate held back.
fn early_client(force: bool, config: &Config, specs: &[CertSpec]) -> Option<Result<Client>> {
    let states = StateDir::new(&config.basedir);
    let rules = Rules::new(config, force, &states);
    let now = unix_now();
    let sure = specs.iter().any(|spec| {
        let state = states.cert(&spec.name);
        if state.pending.is_some() {
            return false;
        }
        let facts = Facts::read(config, spec, state);
        // No key type: the CSR of a `generate_csr` hook may hold any key.
        let asked = Asked {
            names: &spec.names,
            key: None,
        };
        matches!(
            decide(config, &rules, spec, asked, &facts, now),
            Decision::Renew(ref reason) if !matches!(reason, Reason::NamesChanged { .. })
        )
    });
    sure.then(|| {
        let client = connect(config)?;
        client.stock_nonce();
        Ok(client)
    })
}

/// Repairs what an interrupted run left of `spec` (its challenges looked for only when
/// `challenges` says they may be in place), asks its hook for a CSR, and decides.
fn plan<'a>(
    config: &Config,
    rules: &Rules,
    (spec, index): (&'a CertSpec, usize),
    states: &StateDir,
    challenges: bool,
    now: i64,
) -> std::result::Result<Planned<'a>, Outcome> {
    let hook = hook_for(config, Some((spec, &spec.names)));
    let certbot = certbot_runner(config, Some((spec, &spec.names)));
    let cleaner = solver(
        config,
        &spec.settings,
        hook.as_ref(),
        certbot.as_ref(),
        None,
    );
    let hooks = deploy::Hooks {
        hook: hook.as_ref(),
        certbot: certbot.as_ref(),
    };
    let mut recorded = states.cert(&spec.name);
    // A folder unchanged since a run found it whole has nothing to repair.
    let folder = CertDir::new(&config.certdir, &spec.name);
    let changed = !folder
        .stamp()
        .is_ok_and(|id| folder_whole(config, &spec.name, &id));
    let left_over = (challenges, changed);
    let resumed = match deploy::recover(config, spec, hooks, &cleaner, &mut recorded, left_over) {
        Ok(resumed) => {
            if changed && let Ok(id) = folder.stamp() {
                folder_found_whole(config, &spec.name, id);
            }
            resumed.is_some()
        }
        Err(e) => {
            report::failure(spec, None, &e);
            return Err(Outcome::failed(None, e));
        }
    };
    let generated = match &hook {
        Some(h) => generated_csr(h, config, spec),
        None => Ok(None),
    };
    let (names, csr) = match generated {
        Ok(Some((csr, names))) => (names, Some(csr)),
        Ok(None) => (spec.names.clone(), None),
        Err(e) => {
            report::failure(spec, hook.as_ref(), &e);
            return Err(Outcome::failed(None, e));
        }
    };
    let mut planned = Planned {
        spec,
        hook,
        certbot,
        names,
        csr,
        facts: Facts::read(config, spec, recorded),
        decision: Decision::Keep { renew_at: now },
        resumed,
        index,
    };
    // What the hook's CSR asks is kept for --check, which runs no hook; written when it
    // changed.
    let csr_names = planned.csr.as_ref().map(|_| planned.names.clone());
    if planned.facts.recorded.csr_names != csr_names {
        planned.facts.recorded.csr_names = csr_names;
        if let Err(e) = states.save_cert(&spec.name, &planned.facts.recorded) {
            logging::warn(e);
        }
    }
    planned.decision = decide(config, rules, spec, planned.asked(), &planned.facts, now);
    // Where a certificate without a record came from is found once and recorded, so that it
    // is still known when the evidence is gone (the new CA's account registered) and its
    // renewal failed.
    if let (None, Some(Reason::CaChanged { had })) =
        (&planned.facts.recorded.ca, planned.decision.reason())
    {
        planned.facts.recorded.ca = Some(had.clone());
        if let Err(e) = states.save_cert(&spec.name, &planned.facts.recorded) {
            logging::warn(e);
        }
    }
    Ok(planned)
}

/// The body of `--cron` between startup_hook and exit_hook: the status, and the names of the
/// certificates that failed. `early` is what reaching the CA gave, when it was tried already:
/// an error is not met twice (an unreachable CA would cost its time-out twice).
fn batch(
    session: &Session,
    entries: &[Entry],
    early: Option<Result<Client>>,
    tally: &mut Tally,
) -> Result<(Status, Vec<String>)> {
    let config = &session.config;
    let now = unix_now();
    let states = StateDir::new(&config.basedir);
    let rules = Rules::new(config, session.opts.force, &states);
    // The schedule is judged by the runs that cover domains.txt, this one included.
    let mut history = states.run();
    let scheduled = session.opts.domains.is_empty();
    let mut runs = history.recent();
    if scheduled {
        runs.push(now);
    }
    let gap = renewal::run_gap(&runs);
    let mut slow: Vec<Option<TooSlow>> = entries.iter().map(|_| None).collect();
    let mut outcomes: Vec<Option<Outcome>> = entries.iter().map(|_| None).collect();
    // The metrics' figures of every planned certificate, from the facts read for the decision;
    // made as if without --force, which says nothing of the certificate.
    let calm = Rules {
        force: false,
        ..rules.clone()
    };
    let mut figures: Vec<Option<metrics::Cert>> = entries.iter().map(|_| None).collect();
    // Only what may still be ordered is kept past its planning: a certificate kept whose
    // decision no answer of the CA can change is settled at once, so that what the run holds
    // does not grow with the certificates that stay as they are.
    let mut planned: Vec<Planned<'_>> = Vec::new();
    let left = states.challenges_left();
    logging::progress_start(entries.len());
    for (index, entry) in entries.iter().enumerate() {
        let spec = match entry {
            Entry::Ready(spec) => spec,
            Entry::Broken(b) => {
                states.attempted(&b.name, now, Err(&b.error));
                settle(&mut outcomes, index, report::broken(b));
                continue;
            }
        };
        logging::progress(format_args!("{}: planning", spec.name));
        let challenges = left.as_ref().is_none_or(|l| l.contains(&spec.name));
        match plan(config, &rules, (spec, index), &states, challenges, now) {
            Ok(p) => {
                slow[index] = schedule(spec, &p.facts, gap);
                match p.decision {
                    Decision::Keep { renew_at } if !asks_ari(&rules, &p, now) => {
                        if config.metrics_file.is_some() {
                            figures[index] = Some(p.figures(config, &calm, None, now));
                        }
                        let outcome = unchanged(config, &p, renew_at);
                        settle(&mut outcomes, index, outcome);
                    }
                    _ => planned.push(p),
                }
            }
            Err(outcome) => {
                if let Some(e) = outcome.error() {
                    states.attempted(&spec.name, now, Err(e));
                }
                settle(&mut outcomes, index, outcome);
            }
        }
    }

    let (mut client, early_error) = match early {
        Some(Ok(client)) => (Some(client), None),
        Some(Err(e)) => (None, Some(e)),
        None => (None, None),
    };
    let early_error = std::cell::Cell::new(early_error);
    let reach = || early_error.take().map_or_else(|| connect(config), Err);
    // Renewal information may move kept certificates to the due ones, and an answer past its
    // Retry-After is asked again before it renews one: the new answers go to state/ and the
    // decision is made again with them.
    if rules.ari {
        let asked: Vec<usize> = (0..planned.len())
            .filter(|&i| {
                let p = &planned[i];
                let kept_or_ari = matches!(
                    p.decision,
                    Decision::Keep { .. } | Decision::Renew(Reason::Ari { .. })
                );
                kept_or_ari && p.cert_id().is_some()
            })
            .collect();
        let candidates: Vec<ari::Candidate<'_>> = asked
            .iter()
            .filter_map(|&i| {
                planned[i].cert_id().map(|cert_id| ari::Candidate {
                    name: &planned[i].spec.name,
                    cert_id: cert_id.to_string(),
                })
            })
            .collect();
        if !candidates.is_empty() {
            logging::progress("asking the CA for renewal information");
            let fresh = ari::refresh(
                &config.ca,
                &states,
                &mut client,
                &reach,
                &candidates,
                config.jobs * 2,
                now,
            );
            for (c, answer) in fresh {
                let p = &mut planned[asked[c]];
                p.facts.recorded.ari = Some(answer);
                p.decision = decide(config, &rules, p.spec, p.asked(), &p.facts, now);
            }
        }
    }

    let mut due: Vec<(Planned<'_>, Reason)> = Vec::new();
    for p in planned {
        if config.metrics_file.is_some() {
            figures[p.index] = Some(p.figures(config, &calm, None, now));
        }
        match p.decision.clone() {
            Decision::Renew(reason) => {
                if let Reason::Ari {
                    explanation: Some(url),
                } = &reason
                {
                    logging::info(format_args!(
                        "{}: the CA asks for early renewal: {url}",
                        p.spec.name
                    ));
                }
                due.push((p, reason));
            }
            Decision::Hold {
                reason,
                hold,
                until,
            } => {
                let e = report::held_back(p.spec, hold, until);
                report::failure(p.spec, None, &e);
                let decision = Decision::Hold {
                    reason,
                    hold,
                    until,
                };
                settle(&mut outcomes, p.index, Outcome::failed(Some(decision), e));
            }
            Decision::Keep { renew_at } => {
                let outcome = unchanged(config, &p, renew_at);
                settle(&mut outcomes, p.index, outcome);
            }
        }
    }

    let settings: Vec<&CertSettings> = due.iter().map(|(p, _)| &*p.spec.settings).collect();
    let responder = start_responder(config, &settings)?;
    // A webroot that is not there fails its own certificates, before any request.
    due.retain(
        |(p, reason)| match check_webroot(&p.spec.settings, responder.is_some()) {
            Ok(()) => true,
            Err(e) => {
                report::failure(p.spec, None, &e);
                states.attempted(&p.spec.name, now, Err(&e));
                let decision = Decision::Renew(reason.clone());
                settle(&mut outcomes, p.index, Outcome::failed(Some(decision), e));
                false
            }
        },
    );
    if !due.is_empty() {
        let responder = responder.as_ref();
        let client = match client.take() {
            Some(c) => Ok(c),
            None => reach(),
        };
        let renewed = client.and_then(|client| {
            ari::remember(&states, &client, now);
            let (account, found) = session.account(&client)?;
            if found == Found::Registered {
                logging::info(format_args!("account: registered as {}", account.url));
            }
            let ctx = Ctx {
                client: &client,
                account: &account,
                workers: AUTHZ_WORKERS,
                force_validation: session.opts.force_validation,
            };
            let record = states.ca().about(&client.directory_url);
            client.set_timings(record.timings.clone().bounded());
            let sent = record.orders_of(&account.url);
            let (go, left) = within_order_limit(config, &client, &due, sent, now);
            let record = Arc::new(Mutex::new(record));
            client.on_order(note_orders(config, &record, &account.url));
            let jobs = if config.jobs_set {
                config.jobs
            } else {
                // The first order needs a nonce anyway; its request is the cleanest measure of
                // the round trip (the directory's included the handshakes).
                client.stock_nonce();
                pace::default_jobs(
                    &config.rate_limits,
                    client.round_trip().unwrap_or_default(),
                    client
                        .timings()
                        .expected(Work::Validating)
                        .unwrap_or_default(),
                )
            };
            logging::debug(format_args!("{jobs} certificates at a time"));
            let done = parallel::map(&go, jobs, |&i| {
                let (p, reason) = &due[i];
                let job = Job {
                    spec: p.spec,
                    hook: p.hook.as_ref(),
                    certbot: p.certbot.as_ref(),
                    names: &p.names,
                    csr: p.csr.as_ref(),
                    cert_id: p.cert_id(),
                    reason,
                };
                let outcome = renew_one(&ctx, config, &job, responder);
                logging::progress_done();
                outcome
            });
            logging::debug(format_args!(
                "{} requests sent to the CA, the quickest answered in {:.1} ms",
                client.requests(),
                client.round_trip().unwrap_or_default().as_secs_f64() * 1000.0
            ));
            remember_ca(config, &states, &client, &record, &account.url);
            Ok((go, left, done))
        });
        match renewed {
            Ok((go, left, done)) => {
                for (&i, outcome) in go.iter().zip(done) {
                    outcomes[due[i].0.index] = Some(outcome);
                }
                for i in left {
                    let (p, reason) = &due[i];
                    let outcome = Outcome::Left {
                        reason: reason.clone(),
                        not_after: p.not_after(),
                    };
                    settle(&mut outcomes, p.index, outcome);
                }
            }
            Err(e) => {
                let e = Arc::new(e);
                // Nothing could be ordered: every due certificate failed the same way. A stop
                // is told once at the end.
                if !e.is_stop() {
                    logging::error(format_args!("{e}{}", report::hint(&e, None)));
                }
                for (p, reason) in &due {
                    if let Some(h) = &p.hook {
                        report::request_failure(h, &e);
                    }
                    states.attempted(&p.spec.name, unix_now(), Err(&e));
                    let outcome = Outcome::Failed {
                        decision: Some(Decision::Renew(reason.clone())),
                        error: Arc::clone(&e),
                    };
                    settle(&mut outcomes, p.index, outcome);
                }
            }
        }
    }
    let outcomes: Vec<Outcome> = outcomes.into_iter().flatten().collect();
    let mut status = outcomes
        .iter()
        .map(Outcome::status)
        .fold(Status::Ok, Status::merge);
    let renewed: Vec<&str> = entries
        .iter()
        .zip(&outcomes)
        .filter(|(_, o)| o.renewed())
        .map(|(e, _)| e.name())
        .collect();
    if let (Some(command), false) = (&config.post_renew_hook, renewed.is_empty()) {
        logging::progress("running POST_RENEW_HOOK");
        status = status.merge(post_renew(config, command, &renewed));
    }
    logging::progress_end();
    for (entry, slow) in entries.iter().zip(&slow) {
        if let Some(slow) = slow {
            logging::error(format_args!("{}: {}", entry.name(), report::too_slow(slow)));
            status = status.merge(Status::Failed);
        }
    }
    if scheduled {
        history.record(now);
    }
    history.last_run = Some(now);
    tally.history = Some(history);
    tally.scoped = !scheduled;
    // What state/ holds now, the attempts of this run included.
    let recorded: Vec<CertState> = if session.opts.json || config.metrics_file.is_some() {
        entries.iter().map(|e| states.cert(e.name())).collect()
    } else {
        Vec::new()
    };
    if config.metrics_file.is_some() {
        // An attempt changed what is decided: a certificate that went live is read again, a
        // failed one may be backed off.
        for (p, _) in &due {
            let after = (recorded[p.index].clone(), outcomes[p.index].renewed());
            figures[p.index] = Some(p.figures(config, &calm, Some(after), now));
        }
        tally.certs = Some(report::figures(config, entries, figures, &recorded, now));
    }
    let stopped = report::stopped(&outcomes);
    // AUTO_CLEANUP: --cleanup after the run, under its lock; its lines come before the
    // summary, which closes the run.
    if config.auto_cleanup
        && !stopped
        && let Err(e) = super::cleanup::archive_unused(config, false)
    {
        logging::error(&e);
        status = status.merge(e.status());
    }
    if !stopped {
        report::summary(&outcomes);
    }
    if session.opts.json {
        report::print_json(entries, &outcomes, &slow, &recorded, status);
    }
    let failed: Vec<String> = entries
        .iter()
        .zip(&outcomes)
        .filter(|(_, o)| o.error().is_some())
        .map(|(e, _)| e.name().to_string())
        .collect();
    tally.renewed = renewed.len();
    tally.failed = failed.len();
    Ok((status, failed))
}

/// Which due certificates (indices into `due`) are ordered now and which are left for the next
/// run, under the account's order limit when `sent` are the times of its past orders
/// ([`split_by_order_limit`]); an ARI renewal carries `replaces`, which is what the CA
/// exempts. Says how many are left when any are.
fn within_order_limit(
    config: &Config,
    client: &Client,
    due: &[(Planned<'_>, Reason)],
    sent: &[i64],
    now: i64,
) -> (Vec<usize>, Vec<usize>) {
    let ari = client.directory.renewal_info.is_some();
    let exempt: Vec<bool> = due
        .iter()
        .map(|(p, reason)| ari && matches!(reason, Reason::Ari { .. }) && p.cert_id().is_some())
        .collect();
    let (go, left) = split_by_order_limit(config.order_limit, &exempt, sent, now);
    if let (Some(limit), false) = (config.order_limit, left.is_empty()) {
        let before = limit.orders as usize - limit.room(sent, now);
        logging::warn(format_args!(
            "{} certificate{} left for the next run: ORDER_LIMIT allows {limit} and {before} \
             {} sent in that time; {} ordered in this run",
            left.len(),
            if left.len() == 1 { " is" } else { "s are" },
            if before == 1 { "was" } else { "were" },
            go.len()
        ));
    }
    (go, left)
}

/// Splits the due certificates (by index; `exempt[i]` when the CA exempts the i-th from its
/// limits, an ARI renewal) into those ordered now and those left for the next run: the exempt
/// ones first and always, then the others in their order, as many as `limit` has room for
/// at `now` after the orders sent at `sent`. Without a limit, all go.
fn split_by_order_limit(
    limit: Option<OrderLimit>,
    exempt: &[bool],
    sent: &[i64],
    now: i64,
) -> (Vec<usize>, Vec<usize>) {
    let (mut go, others): (Vec<usize>, Vec<usize>) = (0..exempt.len()).partition(|&i| exempt[i]);
    let room = limit.map_or(others.len(), |l| l.room(sent, now));
    let fit = others.len().min(room);
    go.extend(&others[..fit]);
    (go, others[fit..].to_vec())
}

/// What notes each new order of `account` in `state/` as the CA accepts it, before anything
/// else is done with it: a run killed later still counts it against `ORDER_LIMIT`. `record`
/// is the CA's record this run started from, kept up to date.
fn note_orders(
    config: &Config,
    record: &Arc<Mutex<CaState>>,
    account: &str,
) -> crate::acme::transport::OrderSink {
    let (record, account) = (Arc::clone(record), account.to_string());
    let (states, limit) = (StateDir::new(&config.basedir), config.order_limit);
    Box::new(move |at| {
        let mut record = record.lock().unwrap_or_else(|e| e.into_inner());
        record.ordered(&account, at, limit);
        if let Err(e) = states.note_ca(&record) {
            logging::warn(e);
        }
    })
}

/// Keeps in `state/` what this run learnt of the CA: how long it took to validate and to
/// sign, beside `account`'s new orders (noted as they were sent, by [`note_orders`]) that are
/// still inside `ORDER_LIMIT`'s window.
fn remember_ca(
    config: &Config,
    states: &StateDir,
    client: &Client,
    record: &Mutex<CaState>,
    account: &str,
) {
    let mut record = record.lock().unwrap_or_else(|e| e.into_inner());
    if record.account != account {
        record.account = account.to_string();
        record.orders.clear();
    }
    record.orders = config
        .order_limit
        .map_or_else(Vec::new, |limit| limit.recent(&record.orders, unix_now()));
    record.timings = client.timings();
    if let Err(e) = states.save_ca(&record) {
        logging::warn(e);
    }
}

/// Whether the CA's renewal information is asked for `p` in this run ([`ari::refresh`]): ARI
/// counts, its live certificate has a certID, and no answer for it is kept past which the
/// CA's `Retry-After` has not yet come.
fn asks_ari(rules: &Rules, p: &Planned<'_>, now: i64) -> bool {
    let Some(cert_id) = p.cert_id().filter(|_| rules.ari) else {
        return false;
    };
    p.facts
        .recorded
        .ari
        .as_ref()
        .filter(|a| a.cert_id == cert_id)
        .is_none_or(|a| a.next_check <= now)
}

/// Records how a certificate of the run ended, and counts it done on the progress line.
fn settle(outcomes: &mut [Option<Outcome>], index: usize, outcome: Outcome) {
    outcomes[index] = Some(outcome);
    logging::progress_done();
}

/// A kept certificate's outcome, after its `unchanged_cert` hook; one that
/// [`deploy::recover`] deployed in this run counts as issued.
fn unchanged(config: &Config, p: &Planned<'_>, renew_at: i64) -> Outcome {
    if p.resumed {
        return Outcome::Resumed {
            not_after: p.not_after(),
        };
    }
    logging::debug(format_args!(
        "{}: unchanged, renews after {}",
        p.spec.name,
        logging::utc(renew_at)
    ));
    let told = match &p.hook {
        Some(h) => deploy::unchanged(config, p.spec, h, &p.names[0]),
        None => Ok(()),
    };
    match told {
        Ok(()) => Outcome::Unchanged {
            not_after: p.not_after(),
        },
        Err(e) => {
            report::failure(p.spec, None, &e);
            Outcome::failed(Some(p.decision.clone()), e)
        }
    }
}

/// Runs `POST_RENEW_HOOK` once, with the renewed certificates' names in `RENEWED_CERTS`.
fn post_renew(config: &Config, command: &str, renewed: &[&str]) -> Status {
    let hook = hook_at(config, "/bin/sh".into(), None);
    let names = renewed.join(" ");
    match hook.run_shell(command, &[("RENEWED_CERTS", &names)]) {
        Ok(_) => Status::Ok,
        Err(e) => {
            logging::error(format_args!(
                "{e}; the certificates were renewed, but what uses them may not have them yet"
            ));
            Status::Failed
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = 3600;

    fn limit(orders: u32) -> Option<OrderLimit> {
        Some(OrderLimit {
            orders,
            window: 3 * HOUR,
        })
    }

    #[test]
    fn ari_renewals_go_first_and_always_then_what_the_limit_has_room_for() {
        let now = 100 * HOUR;
        // Four due, the last moved by ARI; room for two.
        let exempt = [false, false, false, true];
        assert_eq!(
            split_by_order_limit(limit(2), &exempt, &[], now),
            (vec![3, 0, 1], vec![2])
        );
        // No room at all: the ARI renewal still goes.
        let sent = [now - HOUR, now - 2 * HOUR];
        assert_eq!(
            split_by_order_limit(limit(2), &exempt, &sent, now),
            (vec![3], vec![0, 1, 2])
        );
        // Orders older than the window take no room.
        let old = [now - 3 * HOUR, now - 4 * HOUR];
        assert_eq!(
            split_by_order_limit(limit(2), &exempt, &old, now),
            (vec![3, 0, 1], vec![2])
        );
        // One of two sent inside the window: room for one.
        let mixed = [now - 3 * HOUR, now - 1];
        assert_eq!(
            split_by_order_limit(limit(2), &[false; 3], &mixed, now),
            (vec![0], vec![1, 2])
        );
    }

    #[test]
    fn without_a_limit_every_due_certificate_goes() {
        let sent: Vec<i64> = (0..1000).collect();
        assert_eq!(
            split_by_order_limit(None, &[false, true, false], &sent, 1000),
            (vec![1, 0, 2], vec![])
        );
        assert_eq!(
            split_by_order_limit(limit(5), &[], &sent, 1000),
            (vec![], vec![])
        );
    }
}
