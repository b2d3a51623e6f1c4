//! `--cron`: the periodic run. Decides for every certificate from the disk alone, then issues
//! the due ones concurrently, with dehydrated's hooks around every step, and merges their
//! outcomes into the exit status.

use std::path::Path;

use serde_json::{Value, json};

use crate::account::Found;
use crate::acme::Client;
use crate::challenge::Deployed;
use crate::cli::Cli;
use crate::commands::{
    certificates, check_webroots, connect, current, hook_env, hook_for, load_account, lock, policy,
    solver, start_responder, unix_now,
};
use crate::config::{CertSettings, CertSpec, Config};
use crate::error::{Error, Result, Status};
use crate::hooks::{Hook, HookEvent};
use crate::issue::{self, Ctx, Issued, KeySource, Request};
use crate::keys::{CertKey, Csr};
use crate::renewal::{self, Decision, Reason};
use crate::responder::Responder;
use crate::state::{CertState, RunState, StateDir};
use crate::store::{self, CertDir, CertFiles};
use crate::{ari, logging, parallel, pkcs12, x509};

/// How long a certificate is left alone after a `rateLimited` answer without `Retry-After`.
const RATE_LIMIT_WAIT: std::time::Duration = std::time::Duration::from_secs(3600);
/// The longest a `Retry-After` of a `rateLimited` answer is obeyed: a week.
const MAX_RATE_LIMIT_WAIT: std::time::Duration = std::time::Duration::from_secs(7 * 86400);

/// Threads that answer the authorizations of one order.
const AUTHZ_WORKERS: usize = 16;

/// How one certificate of a `--cron` run ended.
struct Outcome {
    state: &'static str,
    reason: Option<String>,
    not_after: Option<i64>,
    error: Option<String>,
    status: Status,
}

impl Outcome {
    fn failed(reason: Option<&Reason>, e: &Error) -> Outcome {
        Outcome {
            state: "failed",
            reason: reason.map(|r| r.to_string()),
            not_after: None,
            error: Some(e.to_string()),
            status: e.status(),
        }
    }
}

/// One certificate that is due, with what its order and hooks need.
struct Job<'a> {
    spec: &'a CertSpec,
    hook: Option<Hook>,
    /// The names to order: domains.txt's, or those of the CSR the `generate_csr` hook gave.
    names: Vec<String>,
    csr: Option<Csr>,
    reason: Reason,
    /// Where the outcome goes in the report.
    index: usize,
}

/// Calls every hook with a handler no hook knows, as dehydrated does at start-up: a hook that
/// does not exit 0 on it would break on the next new handler, so it is a config error, found
/// before any order.
fn check_hooks(config: &Config, specs: &[CertSpec]) -> Result<()> {
    let mut paths: Vec<&Path> = specs
        .iter()
        .filter_map(|s| s.settings.hook.as_deref())
        .chain(config.defaults.hook.as_deref())
        .collect();
    paths.sort();
    paths.dedup();
    for path in paths {
        let hook = Hook {
            path: path.to_path_buf(),
            timeout: config.hook_timeout,
            env: hook_env(config, None),
            log: Some(logging::hook_line),
        };
        hook.run(&HookEvent::Bricker, &[]).map_err(|e| {
            Error::Config(format!(
                "{e}; a hook must exit 0 on handlers it does not know (see dehydrated's \
                 docs/examples/hook.sh)"
            ))
        })?;
    }
    Ok(())
}

/// Asks the hook for a CSR (`generate_csr`); Some when it printed one.
fn generated_csr(
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
/// nothing when nothing was due (and no hook printed anything).
pub fn sign_domains(cli: &Cli, config: &Config) -> Result<Status> {
    crate::stop::deadline(config.run_timeout);
    let specs = certificates(cli, config)?;
    check_hooks(config, &specs)?;
    let _lock = lock(cli, config)?;
    crate::failpoint::hit("locked");
    // Temporary files of killed runs; those of certificate folders go in `recover`.
    for dir in [
        StateDir::new(&config.basedir).path(),
        &store::AccountDir::new(&config.accountdir, &config.ca).dir,
        &config.chain_cache,
    ] {
        store::remove_dead_temp_files(dir);
    }
    let hook = hook_for(config, None);
    // While startup_hook runs, the CA is reached for a run sure to order (as dehydrated reaches
    // it before its hooks); a run with nothing due opens no connection.
    let early = hook.as_ref().map(|_| {
        let (config, specs) = (config.clone(), specs.clone());
        let force = cli.force;
        std::thread::spawn(move || early_client(force, &config, &specs))
    });
    let result = match &hook {
        Some(h) => h.run(&HookEvent::StartupHook, &[]).map(|_| ()),
        None => Ok(()),
    }
    .and_then(|()| {
        let early = early.and_then(|h| h.join().ok()).flatten();
        batch(cli, config, &specs, early)
    });
    if let Some(h) = &hook {
        let error = match &result {
            Err(e) => Some(e.to_string()),
            Ok((_, failed)) if !failed.is_empty() => Some(format!(
                "{} of {} certificates failed: {}",
                failed.len(),
                specs.len(),
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

/// A certificate local rules keep, until renewal information has had its say.
struct Kept<'a> {
    spec: &'a CertSpec,
    hook: Option<Hook>,
    names: Vec<String>,
    csr: Option<Csr>,
    index: usize,
    renew_at: i64,
    not_after: Option<i64>,
    cert_id: Option<String>,
    /// Its set was made live and deployed by [`recover`] in this run.
    resumed: bool,
}

/// The CA's client, with a nonce in its pool, or the error that kept it from the CA, when
/// local rules alone are sure that a certificate will be ordered; None otherwise. Not sure:
/// a set an interrupted run left to deploy (finished without an order), changed names (a
/// `generate_csr` hook may name others), a certificate held back.
fn early_client(force: bool, config: &Config, specs: &[CertSpec]) -> Option<Result<Client>> {
    let states = StateDir::new(&config.basedir);
    let now = unix_now();
    let sure = specs.iter().any(|spec| {
        let state = states.cert(&spec.name);
        if state.pending.is_some() {
            return false;
        }
        let current = current(config, spec);
        // No key type: the CSR of a `generate_csr` hook may hold any key.
        let asked = (spec.names.as_slice(), None);
        match decide(force, config, spec, asked, (current.as_ref(), &state), now) {
            Decision::Renew(Reason::NamesChanged { .. }) | Decision::Keep { .. } => false,
            Decision::Renew(_) => held_back(force, spec, &state, now).is_none(),
        }
    });
    sure.then(|| {
        let client = connect(config)?;
        client.stock_nonce();
        Ok(client)
    })
}

/// The body of `--cron` between startup_hook and exit_hook: the status, and the names of the
/// certificates that failed. `early` is what reaching the CA gave, when it was tried already:
/// an error is not met twice (an unreachable CA would cost its time-out twice).
fn batch(
    cli: &Cli,
    config: &Config,
    specs: &[CertSpec],
    early: Option<Result<Client>>,
) -> Result<(Status, Vec<String>)> {
    let now = unix_now();
    let states = StateDir::new(&config.basedir);
    let run_interval = states.run().last_run.map(|t| now - t).filter(|i| *i > 0);
    let mut outcomes: Vec<Option<Outcome>> = specs.iter().map(|_| None).collect();
    let mut due: Vec<Job<'_>> = Vec::new();
    let mut kept: Vec<Kept<'_>> = Vec::new();
    for (index, spec) in specs.iter().enumerate() {
        let hook = hook_for(config, Some((spec, &spec.names)));
        let resumed = match recover(config, spec, hook.as_ref(), &states) {
            Ok(resumed) => resumed.is_some(),
            Err(e) => {
                report_failure(spec, None, &e);
                outcomes[index] = Some(Outcome::failed(None, &e));
                continue;
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
                report_failure(spec, hook.as_ref(), &e);
                outcomes[index] = Some(Outcome::failed(None, &e));
                continue;
            }
        };
        let current = current(config, spec);
        let key = csr.is_none().then_some(spec.settings.key_algo);
        let state = states.cert(&spec.name);
        let decision = decide(
            cli.force,
            config,
            spec,
            (&names, key),
            (current.as_ref(), &state),
            now,
        );
        match decision {
            Decision::Renew(reason) => {
                if let Some(e) = held_back(cli.force, spec, &state, now) {
                    report_failure(spec, None, &e);
                    outcomes[index] = Some(Outcome::failed(Some(&reason), &e));
                    continue;
                }
                due.push(Job {
                    spec,
                    hook,
                    names,
                    csr,
                    reason,
                    index,
                });
            }
            Decision::Keep { renew_at } => {
                let cert = std::fs::read(CertDir::new(&config.certdir, &spec.name).cert())
                    .unwrap_or_default();
                kept.push(Kept {
                    spec,
                    hook,
                    names,
                    csr,
                    index,
                    renew_at,
                    not_after: current.and_then(|c| c.ok()).map(|f| f.not_after),
                    cert_id: x509::ari_cert_id(&cert),
                    resumed,
                });
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
    // Renewal information may move kept certificates to the due ones.
    if config.ari && !kept.is_empty() {
        let candidates: Vec<ari::Candidate<'_>> = kept
            .iter()
            .filter_map(|k| {
                k.cert_id.clone().map(|cert_id| ari::Candidate {
                    name: &k.spec.name,
                    cert_id,
                })
            })
            .collect();
        if !candidates.is_empty() {
            let verdicts = ari::check(
                &config.ca,
                &states,
                &mut client,
                &reach,
                &candidates,
                config.jobs * 2,
                now,
            );
            let renew: Vec<&str> = candidates
                .iter()
                .zip(verdicts)
                .filter_map(|(c, v)| {
                    v.map(|explanation| {
                        if let Some(url) = explanation {
                            logging::info(format_args!(
                                "{}: the CA asks for early renewal: {url}",
                                c.name
                            ));
                        }
                        c.name
                    })
                })
                .collect();
            let (go, stay): (Vec<Kept<'_>>, Vec<Kept<'_>>) = kept
                .into_iter()
                .partition(|k| renew.contains(&k.spec.name.as_str()));
            kept = stay;
            due.extend(go.into_iter().map(|k| Job {
                spec: k.spec,
                hook: k.hook,
                names: k.names,
                csr: k.csr,
                reason: Reason::Ari,
                index: k.index,
            }));
        }
    }
    for k in kept {
        if let (Some(interval), Some(not_after)) = (run_interval, k.not_after) {
            warn_if_too_slow(k.spec, not_after - k.renew_at, interval);
        }
        outcomes[k.index] = Some(unchanged(config, &k));
    }

    if !due.is_empty() {
        let settings: Vec<&CertSettings> = due.iter().map(|j| &j.spec.settings).collect();
        let responder = start_responder(config, &settings)?;
        check_webroots(&settings, responder.is_some())?;
        let responder = responder.as_ref();
        let client = match client.take() {
            Some(c) => Ok(c),
            None => reach(),
        };
        let renewed = client.and_then(|client| {
            ari::remember(&states, &client, now);
            let (account, found) = load_account(cli, config, &client)?;
            if found == Found::Registered {
                logging::info(format_args!("account: registered as {}", account.url));
            }
            let ctx = Ctx {
                client: &client,
                account: &account,
                workers: AUTHZ_WORKERS,
                force_validation: cli.force_validation,
            };
            let done = parallel::map(&due, config.jobs, |job| {
                renew_one(&ctx, config, job, responder)
            });
            logging::debug(format_args!(
                "{} requests sent to the CA, the quickest answered in {:.1} ms",
                client.requests(),
                client.round_trip().unwrap_or_default().as_secs_f64() * 1000.0
            ));
            Ok(done)
        });
        match renewed {
            Ok(done) => {
                for (job, outcome) in due.iter().zip(done) {
                    outcomes[job.index] = Some(outcome);
                }
            }
            Err(e) => {
                // Nothing could be ordered: every due certificate failed the same way.
                logging::error(format_args!("{e}{}", hint(&e, None)));
                for job in &due {
                    if let Some(h) = &job.hook {
                        request_failure(h, &e);
                    }
                    outcomes[job.index] = Some(Outcome::failed(Some(&job.reason), &e));
                }
            }
        }
    }
    let outcomes: Vec<Outcome> = outcomes.into_iter().flatten().collect();
    let mut status = outcomes
        .iter()
        .map(|o| o.status)
        .fold(Status::Ok, Status::merge);
    let renewed: Vec<&str> = specs
        .iter()
        .zip(&outcomes)
        .filter(|(_, o)| o.state == "issued")
        .map(|(s, _)| s.name.as_str())
        .collect();
    if let (Some(command), false) = (&config.post_renew_hook, renewed.is_empty()) {
        status = status.merge(post_renew(config, command, &renewed));
    }
    if let Err(e) = states.save_run(&RunState {
        last_run: Some(now),
    }) {
        logging::warn(e);
    }
    if cli.json {
        print_report(specs, &outcomes, status);
    }
    let failed = specs
        .iter()
        .zip(&outcomes)
        .filter(|(_, o)| o.error.is_some())
        .map(|(s, _)| s.name.clone())
        .collect();
    Ok((status, failed))
}

/// What local rules say of one certificate ordered for `names` with a key of type `key` (None:
/// the CSR came from a hook): from its live certificate and our state of it, without a request.
fn decide(
    force: bool,
    config: &Config,
    spec: &CertSpec,
    (names, key): (&[String], Option<crate::keys::KeyAlgo>),
    (current, state): (
        Option<&std::result::Result<x509::CertFacts, String>>,
        &CertState,
    ),
    now: i64,
) -> Decision {
    let dir = CertDir::new(&config.certdir, &spec.name);
    match renewal::decide(current, names, key, policy(force, spec), now) {
        Decision::Keep { .. } if chain_changed(spec, state, &dir) => {
            Decision::Renew(Reason::ChainChanged)
        }
        Decision::Keep { .. } if profile_changed(spec, state) => {
            Decision::Renew(Reason::ProfileChanged)
        }
        other => other,
    }
}

/// Why a due certificate is not ordered in this run (the CA's rate limit, or our back-off after
/// failed validations); None when it is, and always with `--force`.
fn held_back(force: bool, spec: &CertSpec, state: &CertState, now: i64) -> Option<Error> {
    if force {
        return None;
    }
    if let Some(until) = state.rate_limited_until.filter(|until| *until > now) {
        return Some(Error::Deferred {
            subject: spec.name.clone(),
            msg: format!(
                "the CA's rate limit: not asked again before {} (its Retry-After); --force asks \
                 now",
                logging::utc(until)
            ),
        });
    }
    state.backed_off(now).map(|until| {
        Error::refused(
            &spec.name,
            format!(
                "not tried again before {} after {} failed validations in a row, so as not to \
                 spend the CA's failure limits; --force tries now",
                logging::utc(until),
                state.failures
            ),
        )
    })
}

/// A kept certificate's outcome, after its `unchanged_cert` hook; one that [`recover`]
/// deployed in this run counts as issued.
fn unchanged(config: &Config, k: &Kept<'_>) -> Outcome {
    if k.resumed {
        return Outcome {
            state: "issued",
            reason: Some("finished what an interrupted run left".into()),
            not_after: k.not_after,
            error: None,
            status: Status::Ok,
        };
    }
    logging::debug(format_args!(
        "{}: unchanged, renews after {}",
        k.spec.name,
        logging::utc(k.renew_at)
    ));
    let told = match &k.hook {
        Some(h) => {
            let dir = CertDir::new(&config.certdir, &k.spec.name);
            h.run(
                &HookEvent::UnchangedCert {
                    domain: k.names[0].clone(),
                    keyfile: dir.live("privkey.pem"),
                    certfile: dir.live("cert.pem"),
                    fullchainfile: dir.live("fullchain.pem"),
                    chainfile: dir.live("chain.pem"),
                },
                &[],
            )
            .map(|_| ())
        }
        None => Ok(()),
    };
    match told {
        Ok(()) => Outcome {
            state: "unchanged",
            reason: None,
            not_after: k.not_after,
            error: None,
            status: Status::Ok,
        },
        Err(e) => {
            report_failure(k.spec, None, &e);
            Outcome::failed(None, &e)
        }
    }
}

/// True when `ACME_PROFILE` differs from the profile the live certificate was issued under
/// (none, for a certificate issued before profiles were asked for).
fn profile_changed(spec: &CertSpec, state: &CertState) -> bool {
    let wanted = spec.settings.profile.clone().unwrap_or_default();
    state.profile.clone().unwrap_or_default() != wanted
}

/// Runs `POST_RENEW_HOOK` once, with the renewed certificates' names in `RENEWED_CERTS`.
fn post_renew(config: &Config, command: &str, renewed: &[&str]) -> Status {
    let hook = Hook {
        path: "/bin/sh".into(),
        timeout: config.hook_timeout,
        env: hook_env(config, None),
        log: Some(logging::hook_line),
    };
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

fn print_report(specs: &[CertSpec], outcomes: &[Outcome], status: Status) {
    let certificates: Vec<Value> = specs
        .iter()
        .zip(outcomes)
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
    logging::data_line(format_args!(
        "{}",
        json!({ "exit_status": status.code(), "certificates": certificates })
    ));
}

/// Issues one certificate, writes it, runs sync_cert, switches the links, runs deploy_cert,
/// and logs its line.
fn renew_one(
    ctx: &Ctx<'_>,
    config: &Config,
    job: &Job<'_>,
    responder: Option<&Responder>,
) -> Outcome {
    let spec = job.spec;
    let reason = &job.reason;
    logging::debug(format_args!("{}: renewing ({reason})", spec.name));
    let states = StateDir::new(&config.basedir);
    let mut solver = solver(config, &spec.settings, job.hook.as_ref(), responder);
    solver.journal = Some(states.challenges(&spec.name));
    let dir = CertDir::new(&config.certdir, &spec.name);
    let key = match &job.csr {
        Some(csr) => KeySource::Csr(csr.clone()),
        None => key_source(spec, &dir),
    };
    // The certificate this one replaces, for CAs with renewal information (RFC 9773 §5).
    let replaces = ctx
        .client
        .directory
        .renewal_info
        .as_ref()
        .and_then(|_| std::fs::read(dir.cert()).ok())
        .and_then(|cert| x509::ari_cert_id(&cert));
    let request = Request {
        subject: &spec.name,
        names: &job.names,
        key,
        preferred_chain: spec.settings.preferred_chain.as_deref(),
        profile: spec.settings.profile.as_deref(),
        replaces,
    };
    // The new set is written while the challenges are taken away, and made live after.
    let write = |issued: &Issued| {
        // A kept key is written into the new set too, so that every set is whole.
        let privkey = issued.key.as_ref().map(|k| k.pem());
        let p12 = pkcs12(config, spec, issued)?;
        let files = CertFiles {
            privkey: privkey.as_deref(),
            csr: &issued.csr.pem,
            cert: &issued.cert,
            chain: &issued.chain,
            p12: p12.as_deref(),
        };
        let set = dir.write_set(&files, unix_now(), &config.modes)?;
        // From here on the set is whole on disk: a run that stops before deploy_cert
        // succeeded leaves it to the next run to finish (see `recover`).
        let mut state = states.cert(&spec.name);
        state.pending = Some(set.ts);
        states.save_cert(&spec.name, &state)?;
        crate::failpoint::hit("pending-noted");
        Ok(set)
    };
    let result = offered_profile(ctx, spec)
        .and_then(|()| issue::issue(ctx, request, &solver, write))
        .and_then(|done| {
            let issue::Done {
                issued,
                kept: set,
                cleaned,
            } = done;
            let deployed = go_live(job.hook.as_ref(), &dir, &set)
                .and_then(|()| roll_key(spec, &dir))
                .and_then(|()| {
                    cache_chain(config, &issued);
                    deploy(job.hook.as_ref(), &job.names[0], &dir, set.ts)
                });
            match deployed {
                Ok(()) => Ok((issued.not_after, cleaned)),
                Err(e) => {
                    // The first error is the one that counts; this one is still told.
                    if let Err(cleaning) = cleaned {
                        logging::warn(cleaning);
                    }
                    Err(e)
                }
            }
        });
    let mut state = states.cert(&spec.name);
    match &result {
        Ok(_) => {
            state.pending = None;
            state.rate_limited_until = None;
            state.succeeded();
            state.preferred_chain = Some(spec.settings.preferred_chain.clone().unwrap_or_default());
            state.profile = Some(spec.settings.profile.clone().unwrap_or_default());
            state.ari = None;
        }
        Err(Error::Invalid { .. }) => {
            state.failed(unix_now());
        }
        Err(Error::Acme { err, .. }) if err.problem().is_some_and(|p| p.is("rateLimited")) => {
            let wait = err
                .retry_after()
                .unwrap_or(RATE_LIMIT_WAIT)
                .min(MAX_RATE_LIMIT_WAIT);
            state.rate_limited_until = Some(unix_now() + wait.as_secs().cast_signed());
        }
        Err(_) => {}
    }
    if let Err(e) = states.save_cert(&spec.name, &state) {
        logging::warn(e);
    }
    crate::failpoint::hit("state-written");
    match result {
        Ok((not_after, cleaned)) => {
            logging::info(format_args!(
                "{}: issued, valid until {} ({reason})",
                spec.name,
                logging::utc(not_after)
            ));
            // Issued and deployed, but something was left in place: the run says so.
            let error = cleaned.err();
            if let Some(e) = &error {
                report_failure(spec, None, e);
            }
            Outcome {
                state: "issued",
                reason: Some(reason.to_string()),
                not_after: Some(not_after),
                status: error.as_ref().map_or(Status::Ok, Error::status),
                error: error.map(|e| e.to_string()),
            }
        }
        Err(e) => {
            report_failure(spec, job.hook.as_ref(), &e);
            Outcome::failed(Some(reason), &e)
        }
    }
}

/// Runs `sync_cert` on a written set, then moves the links to it.
fn go_live(hook: Option<&Hook>, dir: &CertDir, set: &store::WrittenSet) -> Result<()> {
    if let Some(h) = hook {
        h.run(
            &HookEvent::SyncCert {
                keyfile: set
                    .privkey
                    .clone()
                    .unwrap_or_else(|| dir.live("privkey.pem")),
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

/// Runs `deploy_cert` on the live set, written at `ts`.
fn deploy(hook: Option<&Hook>, domain: &str, dir: &CertDir, ts: i64) -> Result<()> {
    crate::failpoint::hit("deploy-cert-before");
    if let Some(h) = hook {
        h.run(
            &HookEvent::DeployCert {
                domain: domain.to_string(),
                keyfile: dir.live("privkey.pem"),
                certfile: dir.live("cert.pem"),
                fullchainfile: dir.live("fullchain.pem"),
                chainfile: dir.live("chain.pem"),
                timestamp: ts,
            },
            &[],
        )?;
    }
    crate::failpoint::hit("deploy-cert-after");
    Ok(())
}

/// Finishes what an interrupted run left of one certificate, before anything is decided for
/// it: takes away the challenges it left in place (running `clean_challenge` for those the
/// hook was told of), moves links left pointing at two sets to the newest whole one, and makes
/// live and deploys a set that was written but whose `deploy_cert` never succeeded, without
/// a new order. Returns the timestamp of the set it deployed, if any.
fn recover(
    config: &Config,
    spec: &CertSpec,
    hook: Option<&Hook>,
    states: &StateDir,
) -> Result<Option<i64>> {
    if let Some(left) = Deployed::left_over(states.challenges(&spec.name)) {
        logging::info(format_args!(
            "{}: taking away the challenges an interrupted run left in place",
            spec.name
        ));
        let solver = solver(config, &spec.settings, hook, None);
        if let Err(e) = solver.clean(left) {
            logging::warn(e);
        }
    }
    let dir = CertDir::new(&config.certdir, &spec.name);
    if let Some(ts) = dir.repair()? {
        logging::warn(format_args!(
            "{}: an interrupted run left the links pointing at two sets; all point at the set \
             of {} now",
            spec.name,
            logging::utc(ts)
        ));
    }
    let mut state = states.cert(&spec.name);
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
            go_live(hook, &dir, set)?;
        }
        deploy(hook, &spec.names[0], &dir, ts)?;
    }
    state.pending = None;
    states.save_cert(&spec.name, &state)?;
    Ok(set.map(|s| s.ts))
}

/// Ok when the certificate asks for no profile, or for one the CA offers; a config error
/// naming the ones offered otherwise.
fn offered_profile(ctx: &Ctx<'_>, spec: &CertSpec) -> Result<()> {
    let Some(wanted) = &spec.settings.profile else {
        return Ok(());
    };
    let offered = &ctx.client.directory.meta.profiles;
    if offered.contains_key(wanted) {
        return Ok(());
    }
    let names: Vec<&str> = offered.keys().map(String::as_str).collect();
    Err(Error::Config(format!(
        "{}: ACME_PROFILE {wanted:?} is not offered by {}; it offers {}",
        spec.name,
        ctx.client.directory_url,
        if names.is_empty() {
            "no profiles".to_string()
        } else {
            names.join(", ")
        }
    )))
}

/// True when the chain preference differs from the one the live certificate was issued under,
/// or, for a certificate we did not issue, from the live chain's topmost issuer.
fn chain_changed(spec: &CertSpec, state: &CertState, dir: &CertDir) -> bool {
    let wanted = spec.settings.preferred_chain.clone().unwrap_or_default();
    match &state.preferred_chain {
        Some(had) => *had != wanted,
        None if wanted.is_empty() => false,
        None => {
            let chain = std::fs::read(dir.live("chain.pem"))
                .ok()
                .and_then(|b| x509::pem_certs(&b).ok())
                .unwrap_or_default();
            x509::top_issuer(&chain).as_deref() != Some(wanted.as_str())
        }
    }
}

/// The schedule warning of a run that comes too seldom for a certificate: its renewal
/// window (from renewal to expiry) is shorter than the time since the last run.
fn warn_if_too_slow(spec: &CertSpec, window: i64, interval: i64) {
    if window < interval {
        let days = |s: i64| s as f64 / 86_400.0;
        logging::warn(format_args!(
            "{}: it is renewed {:.1} days before it expires, but the last run was {:.1} days ago; \
             run desiccant at least daily (the commented daily line of cron/desiccant, or the \
             systemd timer)",
            spec.name,
            days(window),
            days(interval)
        ));
    }
}

/// The key for a new certificate: the live key with `PRIVATE_KEY_RENEW=no` (when it is of the
/// wanted type), else the key waiting in `privkey.roll.pem` with `PRIVATE_KEY_ROLLOVER=yes`,
/// else a new one.
fn key_source(spec: &CertSpec, dir: &CertDir) -> KeySource {
    let settings = &spec.settings;
    let read = |path: std::path::PathBuf| {
        std::fs::read_to_string(path)
            .ok()
            .and_then(|text| CertKey::read(&text).ok())
            .filter(|k| k.algo() == settings.key_algo)
    };
    if !settings.key_renew
        && let Some(key) = read(dir.live("privkey.pem"))
    {
        return KeySource::Existing(Box::new(key));
    }
    if settings.key_renew
        && settings.key_rollover
        && let Some(key) = read(dir.live("privkey.roll.pem"))
    {
        return KeySource::Existing(Box::new(key));
    }
    KeySource::Generate(settings.key_algo)
}

/// With `PRIVATE_KEY_ROLLOVER=yes`, makes the next key ready in `privkey.roll.pem` (for key
/// pinning: publish it before it is used); without, removes a stale one, as dehydrated does.
fn roll_key(spec: &CertSpec, dir: &CertDir) -> Result<()> {
    let path = dir.live("privkey.roll.pem");
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
    let path = config.chain_cache.join(format!("{name}.chain"));
    if std::fs::read(&path).is_ok_and(|cached| cached == issued.chain.as_bytes()) {
        return;
    }
    let written = store::create_dir(&config.chain_cache, 0o755)
        .and_then(|()| store::write_file(&path, issued.chain.as_bytes(), store::PUBLIC_MODE));
    if let Err(e) = written {
        logging::warn(e);
    }
}

/// The `cert.p12` export when `PKCS12_EXPORT=yes` and the key is ours.
fn pkcs12(config: &Config, spec: &CertSpec, issued: &Issued) -> Result<Option<Vec<u8>>> {
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

/// Logs a certificate's error with what to do next, and tells its hook of a failed request.
fn report_failure(spec: &CertSpec, hook: Option<&Hook>, e: &Error) {
    let text = e.to_string();
    let hint = hint(e, Some(spec));
    if text.starts_with(&format!("{}:", spec.name)) {
        logging::error(format_args!("{text}{hint}"));
    } else {
        logging::error(format_args!("{}: {text}{hint}", spec.name));
    }
    if let Some(h) = hook {
        request_failure(h, e);
    }
}

/// dehydrated's `request_failure` for a request the CA answered with an error status.
fn request_failure(hook: &Hook, e: &Error) {
    let Error::Acme {
        err: crate::acme::Error::Problem { status, raw, .. },
        ..
    } = e
    else {
        return;
    };
    let event = HookEvent::RequestFailure {
        status: *status,
        reason: raw.body.clone(),
        req_type: raw.method.to_string(),
        headers: raw.headers.clone(),
    };
    if let Err(e) = hook.run(&event, &[]) {
        logging::error(e);
    }
}

/// What to do next about `e`, as `"; ..."`, or nothing when the message says it all.
fn hint(e: &Error, spec: Option<&CertSpec>) -> String {
    let next = match e {
        Error::Invalid {
            name,
            kind,
            problem,
            ..
        } => {
            let base = name.strip_prefix("*.").unwrap_or(name);
            if problem.is("caa") {
                format!("the CAA records of {base} do not allow this CA to issue")
            } else if problem.is("rejectedIdentifier") {
                format!("the CA will not issue for {name}")
            } else if *kind == "dns-01" {
                format!(
                    "check that the TXT record _acme-challenge.{base} holds the value the hook \
                     or the DNS update was given, on every name server of the zone"
                )
            } else if problem.is("dns") {
                format!("check that {base} has A or AAAA records that point at this server")
            } else if *kind == "tls-alpn-01" {
                format!(
                    "check that port 443 of {base} answers acme-tls/1 with the certificate in ALPNCERTDIR"
                )
            } else {
                let dir = spec.map_or_else(
                    || "WELLKNOWN".to_string(),
                    |s| s.settings.wellknown.display().to_string(),
                );
                format!(
                    "check that http://{base}/.well-known/acme-challenge/ reaches this server \
                     and serves the files of {dir} (or HTTP_LISTEN)"
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
        Error::Hook {
            event: "deploy_cert",
            ..
        } => "the new certificate is live; the next run runs deploy_cert again (no new order)"
            .to_string(),
        _ => return String::new(),
    };
    format!("; {next}")
}
