//! `--check`: every certificate's state from the disk alone, for people and for monitoring:
//! the same decision `--cron` acts on, read as a monitoring-plugin state and printed as the
//! Monitoring Plugins guidelines ask (`STATE - text | perfdata`, then the long output).

mod output;

use super::session::{Asked, Entry, Facts, Rules, Session, decide, schedule, unix_now};
use crate::acme::text::shown;
use crate::error::{CheckStatus, Error, Result};
use crate::logging;
use crate::metrics;
use crate::renewal::{self, Decision, Hold, Reason, TooSlow};
use crate::state::{Attempt, StateDir};
use crate::x509::CertFacts;

pub use output::unknown;
use output::{brief, number, print_json, print_text, unknown_line};

/// What `--check` was asked, beside the config: its thresholds and the certificates in scope.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CheckArgs {
    /// `--warning DAYS`: WARNING below this many days left, instead of inside the renewal
    /// window.
    pub warning: Option<f64>,
    /// `--critical DAYS`: CRITICAL below this many days left, instead of below half of the
    /// warning days.
    pub critical: Option<f64>,
    /// `--domain` (and `--alias`): only the domains.txt certificates that carry one of these
    /// names or whose folder is one of them.
    pub select: Vec<String>,
}

impl CheckArgs {
    /// The thresholds as given; an error unless `--critical` is below `--warning`.
    pub fn new(warning: Option<f64>, critical: Option<f64>, select: Vec<String>) -> Result<Self> {
        if let (Some(w), Some(c)) = (warning, critical)
            && c >= w
        {
            return Err(Error::Usage(format!(
                "--critical ({}) must be less than --warning ({})",
                number(c),
                number(w)
            )));
        }
        Ok(CheckArgs {
            warning,
            critical,
            select,
        })
    }
}

/// One line of the `--check` table.
struct CheckRow<'a> {
    entry: &'a Entry,
    state: CheckStatus,
    /// None for a certificate whose own config cannot be used.
    decision: Option<Decision>,
    what: String,
    /// What the first line says of it after its name: `expires in 2 d`, `missing`.
    brief: String,
    facts: Option<CertFacts>,
    limits: Limits,
    renew_at: Option<i64>,
    /// The profile the live certificate was issued under, as we recorded it.
    profile: Option<String>,
    /// The schedule cannot keep up with it.
    slow: Option<TooSlow>,
    /// The last attempt to issue it, as `state/` recorded it.
    last_attempt: Option<Attempt>,
    /// Its figures for `METRICS_FILE`.
    metrics: metrics::Cert,
}

/// A certificate folder that domains.txt no longer names: listed, without changing the
/// status, until `--cleanup` archives it.
struct Removed {
    name: String,
    not_after: Option<i64>,
}

/// A row's note when the schedule cannot keep up with it; the lines below the table say more.
const SLOW: &str = "schedule too slow (below)";

const DAY: f64 = 86_400.0;

/// The days-left thresholds of one certificate, as they judge it and as its performance data
/// carries them.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Limits {
    warning: Option<f64>,
    critical: Option<f64>,
}

impl Limits {
    /// `--warning`, else the renewal window of `facts` (the days left when it becomes due);
    /// `--critical`, else half of the warning days (a 90-day certificate: 30 and 15 days, a
    /// 6-day one: 3 and 1.5). None where there is no certificate to measure. Both in whole
    /// hundredths of a day, as the performance data shows them, and the warning limit never
    /// below the critical one (`--critical 40` alone on a 30-day window warns from 40 too).
    fn of(args: &CheckArgs, facts: Option<&CertFacts>, renew_days: Option<u32>) -> Limits {
        let hundredths = |days: f64| (days * 100.0).round() / 100.0;
        let window = facts.map(|f| {
            (f.not_after - renewal::renew_at(f.not_before, f.not_after, renew_days)) as f64 / DAY
        });
        let warning = args.warning.or(window).map(hundredths);
        let critical = args.critical.or(warning.map(|w| w / 2.0)).map(hundredths);
        Limits {
            warning: match (warning, critical) {
                (Some(w), Some(c)) => Some(w.max(c)),
                _ => warning,
            },
            critical,
        }
    }
}

/// How grave a reason to renew is for monitoring: WARNING when the next run simply renews a
/// certificate that still serves, CRITICAL when what is served is wrong or gone.
fn severity(reason: &Reason) -> CheckStatus {
    match reason {
        Reason::Due { .. } | Reason::Ari { .. } | Reason::ChainChanged | Reason::ProfileChanged => {
            CheckStatus::Warning
        }
        Reason::Forced
        | Reason::Missing
        | Reason::Unreadable(_)
        | Reason::NamesChanged { .. }
        | Reason::KeyChanged { .. }
        | Reason::CaChanged { .. }
        | Reason::Expired => CheckStatus::Critical,
    }
}

/// The state of a certificate `days_left` from expiry (None: none readable) whose renewal
/// decision says `base`: with `--warning` the renewal window (`Due`, `Ari`) no longer warns
/// by itself, fewer days than the warning limit do; fewer than the critical limit are
/// CRITICAL whatever the decision.
fn graded(
    base: CheckStatus,
    reason: Option<&Reason>,
    days_left: Option<f64>,
    limits: Limits,
    args: &CheckArgs,
) -> CheckStatus {
    let windowed = matches!(reason, Some(Reason::Due { .. } | Reason::Ari { .. }));
    let mut state = if args.warning.is_some() && windowed {
        CheckStatus::Ok
    } else {
        base
    };
    let below = |limit: Option<f64>| matches!((days_left, limit), (Some(d), Some(l)) if d < l);
    if args.warning.is_some() && below(limits.warning) {
        state = state.max(CheckStatus::Warning);
    }
    if below(limits.critical) {
        state = CheckStatus::Critical;
    }
    state
}

/// `renew_at` of a certificate to renew: now when it is inside its renewal window, else none.
fn due_now(reason: &Reason, now: i64) -> Option<i64> {
    matches!(reason, Reason::Due { .. }).then_some(now)
}

/// What a row says of a decision to renew.
fn describe(reason: &Reason) -> String {
    match reason {
        Reason::Due { .. } => "due for renewal".to_string(),
        other => other.to_string(),
    }
}

/// `--check`: every certificate's state from disk alone: no lock, no request. It ends within
/// `RUN_TIMEOUT` too, as UNKNOWN.
pub fn check(session: &Session, args: &CheckArgs) -> Result<CheckStatus> {
    let config = &session.config;
    crate::stop::exit_status(CheckStatus::Unknown.code().into());
    let json = session.opts.json;
    crate::stop::last_line(Some(Box::new(move |reason| unknown_line(reason, json))));
    crate::stop::deadline(config.run_timeout);
    let all = session.specs()?;
    let scoped = !args.select.is_empty();
    let entries = select(all, &args.select, config)?;
    crate::stop::check()?;
    let now = unix_now();
    let states = StateDir::new(&config.basedir);
    // What the certificates are, not what --force would do (refused with --check anyway).
    let rules = Rules::new(config, false, &states);
    let runs = states.run();
    let gap = renewal::run_gap(&runs.recent());
    let rows: Vec<CheckRow<'_>> = entries
        .iter()
        .map(|entry| match entry {
            Entry::Ready(spec) => {
                let facts = Facts::read(config, spec, states.cert(&spec.name));
                let asked = Asked::of(spec, facts.recorded.csr_names.as_deref());
                let decision = decide(config, &rules, spec, asked, &facts, now);
                let live = facts.readable().map(|l| l.facts.clone());
                let limits = Limits::of(args, live.as_ref(), spec.settings.renew_days);
                let (base, mut what, renew_at) = judge(&decision, now);
                let mut state = graded(
                    base,
                    decision.reason(),
                    days_left(live.as_ref(), now),
                    limits,
                    args,
                );
                let slow = schedule(spec, &facts, gap);
                if slow.is_some() {
                    state = state.max(CheckStatus::Warning);
                    what = format!("{what}; {SLOW}");
                }
                let metrics = metrics::Cert::decided(
                    &spec.name,
                    live.as_ref(),
                    Some(&decision),
                    &facts.recorded,
                    now,
                );
                CheckRow {
                    metrics,
                    entry,
                    state,
                    brief: brief(Some(&decision), live.as_ref(), slow.is_some(), now),
                    slow,
                    decision: Some(decision),
                    what,
                    facts: live,
                    limits,
                    last_attempt: facts.recorded.last_attempt,
                    profile: facts.recorded.profile.filter(|p| !p.is_empty()),
                    renew_at,
                }
            }
            // Nothing renews it until its config is fixed: as grave as a missing certificate.
            Entry::Broken(b) => {
                let facts = Facts::read_named(config, &b.name, states.cert(&b.name));
                let live = facts.readable().map(|l| l.facts.clone());
                CheckRow {
                    metrics: metrics::Cert::decided(
                        &b.name,
                        live.as_ref(),
                        None,
                        &facts.recorded,
                        now,
                    ),
                    entry,
                    slow: None,
                    state: CheckStatus::Critical,
                    decision: None,
                    what: format!("not renewed: {}", b.error),
                    brief: brief(None, live.as_ref(), false, now),
                    limits: Limits::of(args, live.as_ref(), None),
                    facts: live,
                    last_attempt: facts.recorded.last_attempt,
                    profile: None,
                    renew_at: None,
                }
            }
        })
        .collect();
    let removed: Vec<Removed> = if scoped {
        Vec::new()
    } else {
        session
            .removed(&entries)
            .into_iter()
            .map(|name| {
                let facts = Facts::read_named(config, &name, states.cert(&name));
                Removed {
                    not_after: facts.readable().map(|l| l.facts.not_after),
                    name,
                }
            })
            .collect()
    };
    // What was read of the live certificates is not kept in state/.live.json: a check writes
    // nothing but METRICS_FILE.
    crate::stop::check()?;
    // The one place --check writes the metrics file; not for a check limited with --domain,
    // whose file would lose every other certificate, nor by a user who cannot read state/
    // (a monitoring user), whose file would lose the last run's figures and every failure.
    if let (Some(path), false) = (&config.metrics_file, scoped) {
        if states.readable() {
            let certs: Vec<metrics::Cert> = rows.iter().map(|r| r.metrics.clone()).collect();
            let report = metrics::Report {
                certs: &certs,
                run: runs.last.as_ref(),
                checked: Some(now),
            };
            if let Err(e) = metrics::write(path, &report) {
                logging::error(e);
            }
        } else {
            logging::debug(format_args!(
                "{}: not written: this user cannot read {}",
                path.display(),
                states.path().display()
            ));
        }
    }
    let status = rows
        .iter()
        .map(|r| r.state)
        .max()
        .unwrap_or(CheckStatus::Ok);
    // From here the output says the state: a stop that cannot wait exits with it.
    crate::stop::last_line(None);
    crate::stop::exit_status(status.code().into());
    if session.opts.json {
        print_json(status, &rows, &removed, now);
    } else {
        print_text(status, &rows, &removed, now);
    }
    Ok(status)
}

/// The certificates of `entries` that `select` names (by a name they carry or their folder),
/// all of them when it is empty; an error for a name no certificate carries.
fn select(
    entries: Vec<Entry>,
    select: &[String],
    config: &crate::config::Config,
) -> Result<Vec<Entry>> {
    if select.is_empty() {
        return Ok(entries);
    }
    let wanted: Vec<String> = select
        .iter()
        .map(|n| n.trim_end_matches('.').to_lowercase())
        .collect();
    let carries =
        |e: &Entry, name: &str| e.name() == name || e.names().iter().any(|n| n.as_str() == name);
    if let Some(missing) = wanted
        .iter()
        .find(|w| !entries.iter().any(|e| carries(e, w)))
    {
        return Err(Error::Config(format!(
            "{}: no certificate carries {} (as a name or as its folder)",
            config.domains_txt.display(),
            shown(missing)
        )));
    }
    Ok(entries
        .into_iter()
        .filter(|e| wanted.iter().any(|w| carries(e, w)))
        .collect())
}

/// Days left of `facts` at `now`, None without a readable certificate.
fn days_left(facts: Option<&CertFacts>, now: i64) -> Option<f64> {
    facts.map(|f| (f.not_after - now) as f64 / DAY)
}

/// The state, the words and the renewal time of a decision, as a row shows them.
fn judge(decision: &Decision, now: i64) -> (CheckStatus, String, Option<i64>) {
    match decision {
        Decision::Keep { renew_at } => (CheckStatus::Ok, "valid".to_string(), Some(*renew_at)),
        Decision::Renew(reason) => (severity(reason), describe(reason), due_now(reason, now)),
        Decision::Hold {
            reason,
            hold,
            until,
        } => {
            let why = match hold {
                Hold::RateLimited => {
                    format!("rate-limited by the CA until {}", logging::utc(*until))
                }
                Hold::BackedOff { failures } => format!(
                    "{failures} failed attempts in a row, backed off until {}",
                    logging::utc(*until)
                ),
            };
            (
                severity(reason),
                format!("{}; {why}", describe(reason)),
                due_now(reason, now),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: i64 = 86_400;

    fn cert(lifetime_days: i64) -> CertFacts {
        CertFacts {
            names: vec!["a.example".into()],
            not_before: 0,
            not_after: lifetime_days * D,
            key: None,
        }
    }

    fn args(warning: Option<f64>, critical: Option<f64>) -> CheckArgs {
        CheckArgs::new(warning, critical, Vec::new()).unwrap()
    }

    #[test]
    fn default_limits_are_the_window_and_half_of_it() {
        let limits =
            |days, renew_days| Limits::of(&args(None, None), Some(&cert(days)), renew_days);
        assert_eq!(
            limits(90, None),
            Limits {
                warning: Some(30.0),
                critical: Some(15.0)
            }
        );
        assert_eq!(
            limits(6, None),
            Limits {
                warning: Some(3.0),
                critical: Some(1.5)
            }
        );
        assert_eq!(limits(90, Some(20)).critical, Some(10.0));
        // --warning alone moves the default critical limit with it.
        let given = Limits::of(&args(Some(10.0), None), Some(&cert(90)), None);
        assert_eq!(given.critical, Some(5.0));
        let none = Limits::of(&args(None, None), None, None);
        assert_eq!(none.warning, None);
    }

    #[test]
    fn thresholds_grade_by_days_left() {
        use CheckStatus::*;
        let due = Some(&Reason::Due { days_left: 20 });
        let window = Limits::of(&args(None, None), Some(&cert(90)), None);
        // Defaults: the decision warns, fewer days than half the window are critical.
        assert_eq!(
            graded(Warning, due, Some(20.0), window, &args(None, None)),
            Warning
        );
        assert_eq!(
            graded(Warning, due, Some(14.9), window, &args(None, None)),
            Critical
        );
        assert_eq!(graded(Ok, None, Some(40.0), window, &args(None, None)), Ok);
        // --warning 7: inside the window but 20 days left is OK, 6 days is WARNING.
        let a = args(Some(7.0), Some(2.0));
        let limits = Limits::of(&a, Some(&cert(90)), None);
        assert_eq!(graded(Warning, due, Some(20.0), limits, &a), Ok);
        assert_eq!(graded(Warning, due, Some(6.0), limits, &a), Warning);
        assert_eq!(graded(Warning, due, Some(1.0), limits, &a), Critical);
        // What is wrong beyond the window stays as grave as the decision says.
        let missing = Some(&Reason::Missing);
        assert_eq!(graded(Critical, missing, None, limits, &a), Critical);
        let chain = Some(&Reason::ChainChanged);
        assert_eq!(graded(Warning, chain, Some(60.0), limits, &a), Warning);
        // --critical alone: critical below it, the window still warns.
        let c = args(None, Some(40.0));
        let limits = Limits::of(&c, Some(&cert(90)), None);
        assert_eq!(graded(Ok, None, Some(39.0), limits, &c), Critical);
        // Above the window, it takes the warning limit with it: never `30:;40:`.
        assert_eq!(
            limits,
            Limits {
                warning: Some(40.0),
                critical: Some(40.0)
            }
        );
        let c = args(None, Some(10.0));
        assert_eq!(Limits::of(&c, Some(&cert(90)), None).warning, Some(30.0));
        // A window of a certificate that lives a second less than 90 days: what is shown.
        let mut odd = cert(90);
        odd.not_after -= 1;
        let limits = Limits::of(&args(None, None), Some(&odd), None);
        assert_eq!((limits.warning, limits.critical), (Some(30.0), Some(15.0)));
    }

    #[test]
    fn critical_must_be_below_warning() {
        assert!(CheckArgs::new(Some(10.0), Some(5.0), Vec::new()).is_ok());
        assert!(matches!(
            CheckArgs::new(Some(5.0), Some(5.0), Vec::new()),
            Err(Error::Usage(_))
        ));
        assert!(matches!(
            CheckArgs::new(Some(5.0), Some(9.0), Vec::new()),
            Err(Error::Usage(_))
        ));
    }
}
