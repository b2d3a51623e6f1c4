//! One due certificate of a `--cron` run: its order, its deployment, and what `state/`
//! records of how it went (what it was issued under, a failed validation, a rate limit, the
//! attempt itself).

use super::report::{self, Outcome};
use super::session::{solver, unix_now};
use crate::config::{CertSpec, ChallengeType, Config};
use crate::error::{Error, Result};
use crate::hooks::Hook;
use crate::issue::{self, Ctx, KeySource, Request};
use crate::keys::Csr;
use crate::renewal::{Decision, Reason};
use crate::responder::Responder;
use crate::state::StateDir;
use crate::{deploy, failpoint, logging, persist};

/// How long a certificate is left alone after a `rateLimited` answer without `Retry-After`.
const RATE_LIMIT_WAIT: std::time::Duration = std::time::Duration::from_secs(3600);
/// The longest a `Retry-After` of a `rateLimited` answer is obeyed: a week.
const MAX_RATE_LIMIT_WAIT: std::time::Duration = std::time::Duration::from_secs(7 * 86400);

/// What a due certificate is ordered with.
pub struct Job<'a> {
    pub spec: &'a CertSpec,
    pub hook: Option<&'a Hook>,
    /// What runs its certbot hooks, when it has any.
    pub certbot: Option<&'a Hook>,
    /// The names to order: domains.txt's, or those of the CSR the `generate_csr` hook gave.
    pub names: &'a [String],
    pub csr: Option<&'a Csr>,
    /// The live certificate's certID, for `replaces` (RFC 9773 §5).
    pub cert_id: Option<&'a str>,
    pub reason: &'a Reason,
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
        crate::acme::text::shown_url(&ctx.client.directory_url),
        if names.is_empty() {
            "no profiles".to_string()
        } else {
            names.join(", ")
        }
    )))
}

/// dns-persist-01: every authoritative name server has the standing record of each name for
/// this account before anything is ordered, published first when missing (never with
/// `publish` false: a dry run); returns the issuer domain name the records carry. None for
/// every other challenge type.
fn persist_ready(
    ctx: &Ctx<'_>,
    config: &Config,
    p: &Job<'_>,
    publish: bool,
) -> Result<Option<String>> {
    let spec = p.spec;
    if spec.settings.challenge != ChallengeType::DnsPersist01 {
        return Ok(None);
    }
    let caa = &ctx.client.directory.meta.caa_identities;
    let issuer = persist::issuer(config.persist.issuer.as_deref(), caa)
        .map_err(|msg| Error::CertConfig(format!("{}: {msg}", spec.name)))?;
    let records = persist::records(p.names, &issuer, &ctx.account.url, &config.persist);
    let publisher = persist::Publisher {
        allowed: publish,
        hook: p.hook,
    };
    let binding = (std::slice::from_ref(&issuer), ctx.account.url.as_str());
    persist::ensure(
        &spec.name,
        &config.dns,
        &records,
        binding,
        &publisher,
        unix_now(),
    )?;
    Ok(Some(issuer))
}

/// Issues one certificate, writes it, makes it live and deployed, records what it was issued
/// under, and logs its line.
pub fn renew_one(
    ctx: &Ctx<'_>,
    config: &Config,
    p: &Job<'_>,
    responder: Option<&Responder>,
) -> Outcome {
    let spec = p.spec;
    let reason = p.reason;
    logging::debug(format_args!("{}: renewing ({reason})", spec.name));
    logging::progress(format_args!("{}: ordering", spec.name));
    let states = StateDir::new(&config.basedir);
    let mut solver = solver(config, &spec.settings, p.hook, p.certbot, responder);
    solver.journal = Some(states.challenges(&spec.name));
    let key = match &p.csr {
        Some(csr) => KeySource::Csr((*csr).clone()),
        None => deploy::key_source(config, spec),
    };
    // The certificate this one replaces, for CAs with renewal information (RFC 9773 §5); not
    // one another CA issued, which this CA cannot know.
    let replaces = ctx
        .client
        .directory
        .renewal_info
        .as_ref()
        .filter(|_| !matches!(reason, Reason::CaChanged { .. }))
        .and(p.cert_id.map(str::to_string));
    let request = Request {
        subject: &spec.name,
        names: p.names,
        key,
        preferred_chain: spec.settings.preferred_chain.as_deref(),
        profile: spec.settings.profile.as_deref(),
        replaces,
    };
    // The new set is written while the challenges are taken away, and made live after.
    let write = |issued: &issue::Issued| deploy::write(config, spec, issued, unix_now());
    let ready = offered_profile(ctx, spec).and_then(|()| persist_ready(ctx, config, p, true));
    solver.persist_issuer = ready.as_ref().ok().cloned().flatten();
    let result = ready
        .and_then(|_| issue::issue(ctx, request, &solver, write))
        .and_then(|done| {
            let issue::Done {
                issued,
                kept: set,
                cleaned,
            } = done;
            let hooks = deploy::Hooks {
                hook: p.hook,
                certbot: p.certbot,
            };
            logging::progress(format_args!("{}: deploying", spec.name));
            match deploy::go_live(config, spec, hooks, p.names, &set, &issued) {
                Ok(()) => Ok((issued.not_after, issued.cert, cleaned)),
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
        Ok((_, cert, _)) => {
            state.pending = None;
            state.rate_limited_until = None;
            state.succeeded();
            deploy::issued_under(&mut state, config, spec, cert.as_bytes());
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
    state.attempted(unix_now(), result.as_ref().map(|_| ()));
    if let Err(e) = states.save_cert(&spec.name, &state) {
        logging::warn(e);
    }
    failpoint::hit("state-written");
    match result {
        Ok((not_after, _, cleaned)) => {
            logging::info(format_args!(
                "{}: issued, valid until {} ({reason})",
                spec.name,
                logging::utc(not_after)
            ));
            // Issued and deployed, but something was left in place: the run says so.
            let error = cleaned.err();
            if let Some(e) = &error {
                report::failure(spec, None, e);
            }
            Outcome::Issued {
                reason: reason.clone(),
                not_after,
                error,
            }
        }
        Err(e) => {
            report::failure(spec, p.hook, &e);
            Outcome::failed(Some(Decision::Renew(reason.clone())), e)
        }
    }
}

/// A due or kept certificate in a `--dry-run`: ordered, validated through its challenge hooks,
/// finalized, downloaded and checked as [`renew_one`] does, then written into `scratch` (a
/// temporary folder) instead of `CERTDIR`. Returns the test certificate's not-after. Nothing
/// goes live, no deploy hook runs, and `state/` records nothing (no back-off, no rate limit)
/// but the challenge journal while challenges are in place, as a real run writes it, so that
/// the next run takes them away when this one is killed; a kept key (`PRIVATE_KEY_RENEW=no`)
/// is read from `CERTDIR`, never rewritten there.
pub fn try_one(
    ctx: &Ctx<'_>,
    config: &Config,
    p: &Job<'_>,
    responder: Option<&Responder>,
    scratch: &std::path::Path,
) -> Result<i64> {
    let spec = p.spec;
    logging::debug(format_args!("{}: dry run ({})", spec.name, p.reason));
    logging::progress(format_args!("{}: ordering", spec.name));
    let mut solver = solver(config, &spec.settings, p.hook, p.certbot, responder);
    let journal = StateDir::new(&config.basedir).challenges(&spec.name);
    // A journal an interrupted run left is the next real run's to act on: never overwritten
    // (this certificate's challenges then go unnoted).
    solver.journal = std::fs::symlink_metadata(&journal)
        .is_err()
        .then_some(journal);
    let key = match &p.csr {
        Some(csr) => KeySource::Csr((*csr).clone()),
        None => deploy::key_source(config, spec),
    };
    // No `replaces`: the certificate is not replaced, and a test CA does not know it.
    let request = Request {
        subject: &spec.name,
        names: p.names,
        key,
        preferred_chain: spec.settings.preferred_chain.as_deref(),
        profile: spec.settings.profile.as_deref(),
        replaces: None,
    };
    let write = |issued: &issue::Issued| {
        deploy::write_trial(config, spec, issued, scratch, unix_now()).map(|()| issued.not_after)
    };
    offered_profile(ctx, spec)
        .and_then(|()| persist_ready(ctx, config, p, false))
        .and_then(|issuer| {
            solver.persist_issuer = issuer;
            issue::issue(ctx, request, &solver, write)
        })
        .and_then(|done| done.cleaned.map(|()| done.kept))
}
