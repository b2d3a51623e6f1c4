//! One certificate from one order: the order's status drives every step, from newOrder to the
//! checked certificate. Nothing here writes certificate files.

use std::cell::{Cell, RefCell};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::json;

use crate::account::Account;
use crate::acme::jws::b64;
use crate::acme::poll::Work;
use crate::acme::wire::{Authorization, AuthorizationStatus, Order, OrderStatus};
use crate::acme::{Client, Ordered, Problem};
use crate::challenge::{Deployed, Proof, Solver};
use crate::config::ChallengeType;
use crate::error::{Error, Result};
use crate::keys::{CertKey, Csr, KeyAlgo};
use crate::{logging, parallel, x509};

/// How long the CA may take to validate a challenge.
const VALIDATION_TIMEOUT: Duration = Duration::from_secs(300);
/// How long the CA may take to sign after finalize.
const PROCESSING_TIMEOUT: Duration = Duration::from_secs(300);
/// The earliest first look at the order after its challenges were answered, unless the CA says
/// when with `Retry-After`; a CA farther away, or one that took longer lately, is first asked
/// later (see `Schedule::wait`): a CA on the same machine has validated by then.
const FIRST_VALIDATION_POLL: Duration = Duration::from_millis(4);
/// The earliest first look at an order the CA is signing, unless it says when.
const FIRST_PROCESSING_POLL: Duration = Duration::from_millis(4);
/// Order states passed through before the loop gives up on a CA that keeps going back.
const MAX_STEPS: usize = 8;
/// Polls of a still pending order after which its authorizations are looked at, and again
/// after as many more: a CA that keeps the order `pending` once a challenge failed (RFC 8555
/// says it becomes `invalid`; acme2certifier leaves it) is found out within a few of its own
/// polling intervals, and a CA that validates normally is never asked.
const POLLS_BEFORE_AUTHZ_LOOK: u32 = 3;

/// What the run shares with every order: the CA and the account.
pub struct Ctx<'a> {
    pub client: &'a Client,
    pub account: &'a Account,
    /// Threads for the authorizations of one order.
    pub workers: usize,
    /// `--force-validation`: prove names again even where the authorization is valid.
    pub force_validation: bool,
}

/// Where the certificate's key comes from.
pub enum KeySource {
    /// A new key of this type, made while the CA validates.
    Generate(KeyAlgo),
    /// This key, which is on disk already (`PRIVATE_KEY_RENEW=no`, a rollover key).
    Existing(Box<CertKey>),
    /// A CSR made elsewhere (the `generate_csr` hook, `--signcsr`): no key of ours.
    Csr(Csr),
}

/// A certificate as the CA issued it, checked against what was asked.
pub struct Issued {
    /// The new key; None when the CSR came from elsewhere.
    pub key: Option<CertKey>,
    pub csr: Csr,
    /// The leaf, PEM.
    pub cert: String,
    /// The intermediates, PEM, in the CA's order.
    pub chain: String,
    pub not_after: i64,
}

/// What to order.
pub struct Request<'a> {
    /// The certificate's folder name, for messages.
    pub subject: &'a str,
    pub names: &'a [String],
    pub key: KeySource,
    /// `PREFERRED_CHAIN`: the issuer common name of the chain's topmost certificate.
    pub preferred_chain: Option<&'a str>,
    /// `ACME_PROFILE`: the CA's certificate profile to ask for.
    pub profile: Option<&'a str>,
    /// The RFC 9773 certID of the certificate this one replaces.
    pub replaces: Option<String>,
}

/// What [`issue`] hands back once the challenges are taken away: the certificate, what `keep`
/// made of it, and how taking the challenges away went.
pub struct Done<T> {
    pub issued: Issued,
    pub kept: T,
    /// A failure here does not undo the certificate: the CA has signed it, and ordering it
    /// again would count against the CA's limits a second time.
    pub cleaned: Result<()>,
}

/// Orders the certificate `request` asks for, proves control of every name through `solver`,
/// finalizes and downloads, and checks what came back; then hands it to `keep` (to be written)
/// while the challenges may still be being taken away, and returns once that is over. `keep`
/// must run no hook: the hooks of one certificate come in dehydrated's order, every
/// `clean_challenge` before `sync_cert`.
pub fn issue<T>(
    ctx: &Ctx<'_>,
    request: Request<'_>,
    solver: &Solver<'_>,
    keep: impl FnOnce(&Issued) -> Result<T>,
) -> Result<Done<T>> {
    let Request {
        subject,
        names,
        key,
        preferred_chain,
        profile,
        replaces,
    } = request;
    thread::scope(|scope| {
        let mut key = match key {
            KeySource::Csr(csr) => KeyJob {
                handle: None,
                ready: Some((None, csr)),
            },
            KeySource::Existing(key) => {
                let csr = key.csr(names).map_err(|msg| Error::refused(subject, msg))?;
                KeyJob {
                    handle: None,
                    ready: Some((Some(*key), csr)),
                }
            }
            KeySource::Generate(algo) => KeyJob {
                handle: Some(scope.spawn(move || {
                    let key = CertKey::generate(algo)?;
                    crate::failpoint::hit("key-generated");
                    let csr = key.csr(names)?;
                    crate::failpoint::hit("csr-made");
                    Ok((Some(key), csr))
                })),
                ready: None,
            },
        };
        let order = NewOrder {
            names,
            profile,
            replaces,
        };
        let mut cleaning = None;
        let issued = run_order(
            ctx,
            (scope, &mut cleaning),
            solver,
            subject,
            order,
            &mut key,
            preferred_chain,
        );
        let kept = issued.and_then(|issued| keep(&issued).map(|kept| (issued, kept)));
        // Challenges are taken away while the order goes on; that must have ended too.
        let cleaned = cleaning
            .map_or(Ok(()), |h: Cleaning<'_>| {
                h.join().unwrap_or_else(|_| {
                    Err(Error::refused(subject, "taking challenges away panicked"))
                })
            })
            .map_err(|e| {
                Error::refused(
                    subject,
                    format!(
                        "{e}; the challenges for {} may still be in place",
                        names.join(", ")
                    ),
                )
            });
        match kept {
            Ok((issued, kept)) => Ok(Done {
                issued,
                kept,
                cleaned,
            }),
            Err(e) => {
                // The first error is the one that counts; this one is still told.
                if let Err(cleaning) = cleaned {
                    logging::warn(cleaning);
                }
                Err(e)
            }
        }
    })
}

/// The challenges of a validated order being taken away on their own thread.
type Cleaning<'scope> = thread::ScopedJoinHandle<'scope, Result<()>>;

type KeyAndCsr = (Option<CertKey>, Csr);

/// The certificate key and CSR, made on their own thread while the order goes on.
struct KeyJob<'scope> {
    handle: Option<thread::ScopedJoinHandle<'scope, std::result::Result<KeyAndCsr, String>>>,
    ready: Option<KeyAndCsr>,
}

impl KeyJob<'_> {
    fn wait(&mut self, subject: &str) -> Result<&KeyAndCsr> {
        if let Some(handle) = self.handle.take() {
            let pair = handle
                .join()
                .map_err(|_| Error::refused(subject, "key generation panicked"))?
                .map_err(|msg| Error::refused(subject, msg))?;
            self.ready = Some(pair);
        }
        self.ready
            .as_ref()
            .ok_or_else(|| Error::refused(subject, "the certificate key was used up"))
    }

    fn take(&mut self, subject: &str) -> Result<KeyAndCsr> {
        self.wait(subject)?;
        self.ready
            .take()
            .ok_or_else(|| Error::refused(subject, "the certificate key was used up"))
    }
}

/// What newOrder carries.
struct NewOrder<'a> {
    names: &'a [String],
    profile: Option<&'a str>,
    replaces: Option<String>,
}

/// newOrder, with `replaces` when given; when the CA refuses it (the old certificate is
/// already replaced, or the CA does not take the field), once more without.
fn new_order(
    ctx: &Ctx<'_>,
    subject: &str,
    order: &NewOrder<'_>,
    ordered: &Ordered,
) -> Result<crate::acme::Response> {
    let (client, account) = (ctx.client, ctx.account);
    let mut payload = json!({ "identifiers": ordered.identifiers() });
    if let Some(profile) = order.profile {
        payload["profile"] = json!(profile);
    }
    if let Some(replaces) = &order.replaces {
        payload["replaces"] = json!(replaces);
    }
    let post = |payload: &serde_json::Value| {
        client.post(
            &account.key,
            account.kid(),
            &client.directory.new_order,
            Some(payload),
        )
    };
    match post(&payload) {
        Err(e) if order.replaces.is_some() && !e.is_temporary() && e.problem().is_some() => {
            logging::debug(format_args!(
                "{subject}: the CA refused replaces ({e}); ordering without"
            ));
            if let Some(map) = payload.as_object_mut() {
                map.remove("replaces");
            }
            post(&payload)
        }
        other => other,
    }
    .map_err(Error::acme(subject))
}

fn run_order<'scope>(
    ctx: &Ctx<'_>,
    (scope, cleaning): (
        &'scope thread::Scope<'scope, '_>,
        &mut Option<Cleaning<'scope>>,
    ),
    solver: &'scope Solver<'scope>,
    subject: &str,
    request: NewOrder<'_>,
    key: &mut KeyJob<'_>,
    preferred_chain: Option<&str>,
) -> Result<Issued> {
    let (client, account) = (ctx.client, ctx.account);
    let acme = || Error::acme(subject);
    let names = request.names;
    // Every answer about this order is checked against what it was for.
    let ordered = Ordered::new(names);
    let response = new_order(ctx, subject, &request, &ordered)?;
    crate::failpoint::hit("order-created");
    let order_url = response.location().map_err(acme())?.to_string();
    let mut order = ordered.order(&response).map_err(acme())?;
    logging::debug(format_args!(
        "{subject}: order {order_url} is {:?}",
        order.status
    ));
    // When to look at a processing order first: the finalize answer's Retry-After, if any.
    let mut first_poll = FIRST_PROCESSING_POLL;
    for _ in 0..MAX_STEPS {
        order = match order.status {
            OrderStatus::Pending | OrderStatus::Ready => {
                let this = (&ordered, order_url.as_str());
                if order.status == OrderStatus::Pending
                    && let Some(deployed) =
                        authorize(ctx, solver, subject, this, &order.authorizations)?
                {
                    *cleaning = Some(scope.spawn(move || solver.clean(deployed)));
                }
                // Every authorization is valid now, so the order is ready: finalize at once
                // rather than fetch the order to be told so.
                let (next, wait) = finalize(ctx, subject, this, &order, &key.wait(subject)?.1)?;
                first_poll = wait.unwrap_or(first_poll);
                next
            }
            OrderStatus::Processing => client
                .poll_until(
                    Work::Signing,
                    (&account.key, account.kid()),
                    &order_url,
                    first_poll,
                    Instant::now() + client.wait_limit(PROCESSING_TIMEOUT),
                    |r| {
                        let o = ordered.order(r)?;
                        Ok((o.status != OrderStatus::Processing).then_some(o))
                    },
                )
                .map_err(acme())?,
            OrderStatus::Valid => {
                let (key, csr) = key.take(subject)?;
                return download(ctx, subject, &order, names, key, csr, preferred_chain);
            }
            OrderStatus::Invalid => return Err(order_invalid(subject, order.error)),
            OrderStatus::Unknown => {
                return Err(Error::refused(
                    subject,
                    format!("{order_url}: the order has a status this client does not know"),
                ));
            }
        };
        logging::debug(format_args!("{subject}: order is {:?}", order.status));
    }
    Err(Error::refused(
        subject,
        format!("{order_url}: the order did not become valid after {MAX_STEPS} steps"),
    ))
}

/// POSTs the CSR to the order's finalize URL and returns the order with the answer's
/// `Retry-After`. When the CA says the order is not ready yet, waits for it to leave `pending`
/// and tries once more. When the answer is lost (a reset, a timeout), the CSR may have reached
/// the CA all the same: the order is read again, and finalized again only if it is still
/// `ready`, so the CA never gets a second CSR for one order.
fn finalize(
    ctx: &Ctx<'_>,
    subject: &str,
    (ordered, order_url): (&Ordered, &str),
    order: &Order,
    csr: &Csr,
) -> Result<(Order, Option<Duration>)> {
    let (client, account) = (ctx.client, ctx.account);
    logging::progress(format_args!("{subject}: finalizing"));
    let payload = json!({ "csr": b64(&csr.der) });
    let post = || client.post(&account.key, account.kid(), &order.finalize, Some(&payload));
    let response = match post() {
        Err(e) if e.problem().is_some_and(|p| p.is("orderNotReady")) => {
            let now = match validated(
                ctx,
                subject,
                (ordered, order_url),
                &[],
                FIRST_VALIDATION_POLL,
            )? {
                Validated::Order(order) => order,
                Validated::Failed(e) => return Err(e),
            };
            if now.status != OrderStatus::Ready {
                return Ok((now, None));
            }
            post()
        }
        Err(e @ crate::acme::Error::Transport { .. }) => {
            logging::debug(format_args!(
                "{subject}: {e}; reading the order again before anything else"
            ));
            let now = client
                .post(&account.key, account.kid(), order_url, None)
                .and_then(|r| ordered.order(&r))
                .map_err(Error::acme(subject))?;
            if now.status != OrderStatus::Ready {
                return Ok((now, None));
            }
            post()
        }
        other => other,
    }
    .map_err(Error::acme(subject))?;
    crate::failpoint::hit("order-finalized");
    let order = ordered.order(&response).map_err(Error::acme(subject))?;
    Ok((order, response.retry_after))
}

/// Fetches every authorization, puts every needed challenge in place, answers all of them at
/// once, then waits on the order alone (one request a poll, however many names) until it is
/// no longer pending; only when it failed, or stayed pending for a few polls, are the
/// authorizations read again, for the CA's words about each name. After a failure every challenge is taken away here; after success
/// what is in place is returned, to be taken away while the order goes on.
fn authorize(
    ctx: &Ctx<'_>,
    solver: &Solver<'_>,
    subject: &str,
    (ordered, order_url): (&Ordered, &str),
    urls: &[String],
) -> Result<Option<Deployed>> {
    let (client, account) = (ctx.client, ctx.account);
    let fetched = parallel::map(urls, ctx.workers, |url| {
        client
            .post(&account.key, account.kid(), url, None)
            .and_then(|r| ordered.authorization(&r))
            .map_err(Error::acme(subject))
    });
    let mut todo: Vec<Pending> = Vec::new();
    for (url, authz) in urls.iter().zip(fetched) {
        let authz = authz?;
        let name = display_name(&authz);
        match authz.status {
            AuthorizationStatus::Valid if !ctx.force_validation => continue,
            AuthorizationStatus::Pending | AuthorizationStatus::Valid => {}
            other => {
                return Err(Error::refused(
                    name,
                    format!("the authorization is {other:?}, not pending"),
                ));
            }
        }
        let kind = solver.kind.name();
        let challenge = authz
            .challenges
            .iter()
            .find(|c| c.kind == kind)
            .ok_or_else(|| {
                let offered: Vec<&str> = authz.challenges.iter().map(|c| c.kind.as_str()).collect();
                Error::refused(
                    &name,
                    format!(
                        "the CA offers no {kind} challenge for this name (it offers {}); \
                         choose another CHALLENGETYPE for this certificate",
                        offered.join(", ")
                    ),
                )
            })?;
        let (token, key_authorization) = if solver.kind == ChallengeType::DnsPersist01 {
            // No token: the standing record names the account (checked before the order) and
            // one of the issuers the challenge names (draft §3.1), which must be ours.
            persist_issuer_offered(solver, &name, challenge)?;
            (String::new(), String::new())
        } else {
            let token = challenge.token.clone().ok_or_else(|| {
                Error::refused(&name, format!("the {kind} challenge has no token"))
            })?;
            let key_authorization = account.key.key_authorization(&token);
            (token, key_authorization)
        };
        todo.push(Pending {
            name,
            kind,
            authz_url: url.clone(),
            challenge_url: challenge.url.clone(),
            proof: Proof {
                domain: authz.identifier.value.clone(),
                key_authorization,
                account_url: account.url.clone(),
                token,
            },
        });
    }
    if todo.is_empty() {
        return Ok(None);
    }
    let proofs: Vec<Proof> = todo.iter().map(|p| p.proof.clone()).collect();
    let mut deployed = Deployed::new(solver.journal.clone());
    logging::progress(format_args!("{subject}: deploying challenges"));
    let result = solver.deploy(&proofs, &mut deployed).and_then(|()| {
        crate::failpoint::hit("challenges-deployed");
        logging::progress(format_args!("{subject}: validating"));
        let answers = parallel::map(&todo, ctx.workers, |p| answer(ctx, p));
        let mut first_wait = FIRST_VALIDATION_POLL;
        for answer in answers {
            if let Some(wait) = answer? {
                first_wait = first_wait.max(wait);
            }
        }
        let order = match validated(ctx, subject, (ordered, order_url), &todo, first_wait)? {
            Validated::Order(order) => order,
            // The order stayed pending with a name that failed: that name's words end it.
            Validated::Failed(e) => {
                if let Error::Invalid { name, response, .. } = &e {
                    let domain = name.strip_prefix("*.").unwrap_or(name);
                    solver.invalid(domain, response)?;
                }
                return Err(e);
            }
        };
        if order.status != OrderStatus::Invalid {
            logging::debug(format_args!("{subject}: every name validated"));
            return Ok(());
        }
        let outcomes = parallel::map(&todo, ctx.workers, |p| verdict(ctx, ordered, p));
        if outcomes.iter().all(Result::is_ok) {
            return Err(order_invalid(subject, order.error));
        }
        for outcome in &outcomes {
            if let Err(Error::Invalid { name, response, .. }) = outcome {
                let domain = name.strip_prefix("*.").unwrap_or(name);
                solver.invalid(domain, response)?;
            }
        }
        worst(outcomes)
    });
    match result {
        Ok(()) => Ok(Some(deployed)),
        // Cleaning runs after a failure too; the first error is the one that counts.
        Err(e) => {
            let _ = solver.clean(deployed);
            Err(e)
        }
    }
}

/// Ok when the dns-persist-01 `challenge` names the issuer domain name the standing record
/// carries; else an error naming both, so that `PERSIST_ISSUER` can be set to one the CA takes.
fn persist_issuer_offered(
    solver: &Solver<'_>,
    name: &str,
    challenge: &crate::acme::wire::Challenge,
) -> Result<()> {
    let offered = challenge.issuer_domain_names.as_deref().unwrap_or_default();
    match &solver.persist_issuer {
        Some(issuer) if !offered.contains(issuer) => Err(Error::refused(
            name,
            format!(
                "the CA's dns-persist-01 challenge names the issuer domain names {}, not {issuer}, \
                 which the record carries; set PERSIST_ISSUER to one of them",
                offered.join(", ")
            ),
        )),
        _ => Ok(()),
    }
}

/// An authorization whose challenge is to be answered.
struct Pending {
    name: String,
    kind: &'static str,
    authz_url: String,
    challenge_url: String,
    proof: Proof,
}

/// What waiting on a validating order came to.
enum Validated {
    /// The order left `pending`.
    Order(Order),
    /// The order stayed `pending`, and the authorization of a name in it failed.
    Failed(Error),
}

/// The order once the CA has decided on every name: polled from `first_wait` on until it
/// leaves `pending`, for at most [`VALIDATION_TIMEOUT`]. While it stays pending, the
/// authorizations of `todo` are looked at every [`POLLS_BEFORE_AUTHZ_LOOK`] polls (paced as the
/// polls are, so by the CA's `Retry-After` too), and the wait ends at the first that failed.
fn validated(
    ctx: &Ctx<'_>,
    subject: &str,
    (ordered, order_url): (&Ordered, &str),
    todo: &[Pending],
    first_wait: Duration,
) -> Result<Validated> {
    let polls = Cell::new(0u32);
    let seen_valid = RefCell::new(vec![false; todo.len()]);
    ctx.client
        .poll_until(
            Work::Validating,
            (&ctx.account.key, ctx.account.kid()),
            order_url,
            first_wait,
            Instant::now() + ctx.client.wait_limit(VALIDATION_TIMEOUT),
            |r| {
                let o = ordered.order(r)?;
                if o.status != OrderStatus::Pending {
                    return Ok(Some(Validated::Order(o)));
                }
                polls.set(polls.get() + 1);
                if todo.is_empty() || !polls.get().is_multiple_of(POLLS_BEFORE_AUTHZ_LOOK) {
                    return Ok(None);
                }
                let found = first_failed(ctx, ordered, todo, &mut seen_valid.borrow_mut())?;
                Ok(found.map(Validated::Failed))
            },
        )
        .map_err(Error::acme(subject))
}

/// Reads the authorizations of `todo` not yet seen valid, one after the other, and stops at
/// the first that is neither valid nor pending: its challenge's problem, as [`verdict`] gives
/// it. `seen_valid` remembers the valid ones, so that a later look skips them.
fn first_failed(
    ctx: &Ctx<'_>,
    ordered: &Ordered,
    todo: &[Pending],
    seen_valid: &mut [bool],
) -> crate::acme::error::Result<Option<Error>> {
    for (p, valid) in todo.iter().zip(seen_valid.iter_mut()) {
        if *valid {
            continue;
        }
        let authz = ctx
            .client
            .post(&ctx.account.key, ctx.account.kid(), &p.authz_url, None)
            .and_then(|r| ordered.authorization(&r))?;
        match authz.status {
            AuthorizationStatus::Valid => *valid = true,
            AuthorizationStatus::Pending => {}
            _ => {
                logging::debug(format_args!(
                    "{}: the authorization is {:?} while the order is still pending",
                    p.name, authz.status
                ));
                return Ok(Some(failed(p, &authz)));
            }
        }
    }
    Ok(None)
}

/// Tells the CA to look; returns the answer's `Retry-After`.
fn answer(ctx: &Ctx<'_>, p: &Pending) -> Result<Option<Duration>> {
    let (client, account) = (ctx.client, ctx.account);
    let answered = client
        .post(
            &account.key,
            account.kid(),
            &p.challenge_url,
            Some(&json!({})),
        )
        .map_err(Error::acme(&p.name))?;
    crate::failpoint::hit("challenge-answered");
    Ok(answered.retry_after)
}

/// After the order failed: Ok for a name whose authorization is valid or not decided, the
/// CA's words about its challenge for one that is not.
fn verdict(ctx: &Ctx<'_>, ordered: &Ordered, p: &Pending) -> Result<()> {
    let (client, account) = (ctx.client, ctx.account);
    let authz = client
        .post(&account.key, account.kid(), &p.authz_url, None)
        .and_then(|r| ordered.authorization(&r))
        .map_err(Error::acme(&p.name))?;
    if matches!(
        authz.status,
        AuthorizationStatus::Valid | AuthorizationStatus::Pending
    ) {
        return Ok(());
    }
    Err(failed(p, &authz))
}

/// The CA's words about the challenge of `p` in its failed authorization `authz`, or the
/// authorization's status when the challenge carries none.
fn failed(p: &Pending, authz: &Authorization) -> Error {
    let challenge = authz.challenges.iter().find(|c| c.url == p.challenge_url);
    let problem = challenge
        .and_then(|c| c.error.clone())
        .unwrap_or_else(|| Problem {
            detail: format!("the authorization is {:?}", authz.status),
            ..Problem::default()
        });
    let response = challenge
        .and_then(|c| serde_json::to_string(c).ok())
        .unwrap_or_default();
    Error::Invalid {
        name: p.name.clone(),
        kind: p.kind,
        problem: Box::new(problem),
        response,
    }
}

/// `*.example.org` for a wildcard authorization, else its identifier.
fn display_name(authz: &Authorization) -> String {
    if authz.wildcard {
        format!("*.{}", authz.identifier.value)
    } else {
        authz.identifier.value.clone()
    }
}

/// Ok when every outcome is; else the gravest error, the others logged.
fn worst(outcomes: Vec<Result<()>>) -> Result<()> {
    let mut errors: Vec<Error> = outcomes.into_iter().filter_map(|o| o.err()).collect();
    if errors.is_empty() {
        return Ok(());
    }
    let at = (0..errors.len())
        .max_by_key(|&i| (errors[i].status(), std::cmp::Reverse(i)))
        .unwrap_or(0);
    let chosen = errors.remove(at);
    // A stop is told once, by the run.
    for other in errors.into_iter().filter(|e| !e.is_stop()) {
        logging::error(other);
    }
    Err(chosen)
}

/// Unix seconds now, for the expiry check of what the CA sent.
fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// A certificate as downloaded and checked, and the URLs of its other chains.
struct Downloaded {
    leaf: Vec<u8>,
    chain: Vec<Vec<u8>>,
    alternates: Vec<String>,
}

/// Downloads the certificate and checks it before anyone writes it; with a chain preference,
/// the chain whose topmost issuer has that name, else the default with a warning.
fn download(
    ctx: &Ctx<'_>,
    subject: &str,
    order: &Order,
    names: &[String],
    key: Option<CertKey>,
    csr: Csr,
    preferred_chain: Option<&str>,
) -> Result<Issued> {
    logging::progress(format_args!("{subject}: downloading"));
    let url = order
        .certificate
        .as_deref()
        .ok_or_else(|| Error::refused(subject, "the order is valid but names no certificate"))?;
    let fetch = |url: &str| -> Result<Downloaded> {
        let response = ctx
            .client
            .download_chain(&ctx.account.key, ctx.account.kid(), url)
            .map_err(Error::acme(subject))?;
        let (leaf, chain) = x509::check_issued(&response.body, &csr.public_key, names, now())
            .map_err(|msg| Error::refused(subject, format!("{url}: {msg}")))?;
        let alternates = response
            .links
            .iter()
            .filter(|l| l.rel == "alternate")
            .map(|l| l.url.clone())
            .collect();
        Ok(Downloaded {
            leaf,
            chain,
            alternates,
        })
    };
    let Downloaded {
        mut leaf,
        mut chain,
        alternates,
    } = fetch(url)?;
    // The other chains are fetched only when the default one is not the one preferred.
    if let Some(wanted) = preferred_chain
        && x509::top_issuer(&chain).as_deref() != Some(wanted)
    {
        let mut found = false;
        for alternate in &alternates {
            let other = fetch(alternate)?;
            if x509::top_issuer(&other.chain).as_deref() == Some(wanted) {
                (leaf, chain, found) = (other.leaf, other.chain, true);
                break;
            }
        }
        if !found {
            logging::warn(format_args!(
                "{subject}: no chain of the CA ends at an issuer named {wanted:?}; the default \
                 one (issued by {}) is used",
                crate::acme::text::shown(&x509::top_issuer(&chain).unwrap_or_default())
            ));
        }
    }
    crate::failpoint::hit("certificate-downloaded");
    let cert = x509::to_pem(std::slice::from_ref(&leaf));
    let not_after = x509::facts(cert.as_bytes())
        .map_err(|msg| Error::refused(subject, msg))?
        .not_after;
    Ok(Issued {
        key,
        csr,
        cert,
        chain: x509::to_pem(&chain),
        not_after,
    })
}

/// The CA marked the order invalid, in its own words when it gave some.
fn order_invalid(subject: &str, problem: Option<crate::acme::Problem>) -> Error {
    let why = problem.map_or_else(|| "no reason given".into(), |p| p.to_string());
    Error::refused(subject, format!("the CA marked the order invalid: {why}"))
}
