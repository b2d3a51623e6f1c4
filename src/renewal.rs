//! Whether a certificate must be issued now: one pure function of the live certificate's
//! facts, what is wanted, what `state/` recorded, the policy and `now`. `--cron`, `--check` and
//! their `--json` reports all ask it, and nothing else decides.

use std::fmt;

use crate::acme::text::shown;
use crate::keys::KeyAlgo;
use crate::state::CertState;
use crate::x509::CertFacts;

/// What the configuration asks of the decision itself.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// `--force`: renew whatever the rest says, and ignore back-off and rate-limit waits.
    pub force: bool,
    /// `RENEW_DAYS`; None renews when a third of the lifetime is left (half for short-lived).
    pub renew_days: Option<u32>,
    /// `ARI=yes`: a renewal window the CA suggested is obeyed.
    pub ari: bool,
}

/// What the live certificate is, as read from `certs/<name>/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Live {
    pub facts: CertFacts,
    /// Its RFC 9773 certID, None when it has no Authority Key Identifier.
    pub cert_id: Option<String>,
    /// The common name of the topmost issuer of the live chain, when it was read: it is asked
    /// only for a certificate with a `PREFERRED_CHAIN` and no record of the chain it was issued
    /// under.
    pub top_issuer: Option<String>,
    /// Its issuer's organisation, else common name: what tells, for a certificate `state/` has
    /// no record of, whether a staging CA issued it.
    pub issuer: Option<String>,
}

/// What the configuration wants the certificate to be.
#[derive(Debug, Clone, Copy)]
pub struct Wanted<'a> {
    /// Its names, in any order.
    pub names: &'a [String],
    /// The key type; None when the key is made elsewhere (a CSR from the `generate_csr` hook).
    pub key: Option<KeyAlgo>,
    /// `ACME_PROFILE`.
    pub profile: Option<&'a str>,
    /// `PREFERRED_CHAIN`.
    pub preferred_chain: Option<&'a str>,
    /// The directory URL of the configured CA.
    pub ca: &'a str,
    /// The CAs (directory URLs) ACCOUNTDIR holds accounts of when it holds none of `ca`'s:
    /// then a certificate with no record of its CA was issued by one of them.
    pub earlier_cas: &'a [String],
}

/// Why a certificate is issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    Forced,
    Missing,
    Unreadable(String),
    NamesChanged {
        had: Vec<String>,
    },
    KeyChanged {
        had: String,
    },
    /// Issued by another CA than the configured one (staging, then production).
    CaChanged {
        had: String,
    },
    Expired,
    /// Inside the renewal window: `days_left` days of validity remain.
    Due {
        days_left: i64,
    },
    /// The CA's renewal information (RFC 9773) says it is time, with its explanation URL.
    Ari {
        explanation: Option<String>,
    },
    /// `PREFERRED_CHAIN` is not what the live certificate was issued under.
    ChainChanged,
    /// `ACME_PROFILE` is not what the live certificate was issued under.
    ProfileChanged,
}

impl Reason {
    /// A stable one-word name, for `--json` reports and scripts.
    pub fn code(&self) -> &'static str {
        match self {
            Reason::Forced => "forced",
            Reason::Missing => "missing",
            Reason::Unreadable(_) => "unreadable",
            Reason::NamesChanged { .. } => "names-changed",
            Reason::KeyChanged { .. } => "key-changed",
            Reason::CaChanged { .. } => "ca-changed",
            Reason::Expired => "expired",
            Reason::Due { .. } => "due",
            Reason::Ari { .. } => "ari",
            Reason::ChainChanged => "chain-changed",
            Reason::ProfileChanged => "profile-changed",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Forced => f.write_str("forced"),
            Reason::Missing => f.write_str("no certificate yet"),
            // What a certificate file says is outside text: whoever can write the file (a
            // `CERT_OWNER`) chose it, so it is shown as every outside text is.
            Reason::Unreadable(why) => {
                write!(f, "the current certificate is unreadable: {}", shown(why))
            }
            Reason::NamesChanged { had } => {
                write!(
                    f,
                    "names changed (the certificate has {})",
                    shown(&had.join(" "))
                )
            }
            Reason::KeyChanged { had } => write!(f, "key type changed (the certificate has {had})"),
            Reason::CaChanged { had } => {
                write!(
                    f,
                    "issued by another CA ({}) than the configured one",
                    shown(had)
                )
            }
            Reason::Expired => f.write_str("expired"),
            Reason::Due { days_left } => write!(f, "{days_left} days left"),
            Reason::Ari { .. } => f.write_str("the CA's renewal information says so"),
            Reason::ChainChanged => f.write_str("preferred chain changed"),
            Reason::ProfileChanged => f.write_str("profile changed"),
        }
    }
}

/// Why a certificate that is due is not ordered now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hold {
    /// The CA answered `rateLimited`: not asked again before its `Retry-After`.
    RateLimited,
    /// Validation failed `failures` times in a row: backed off so as not to spend the CA's
    /// failure limits.
    BackedOff { failures: u32 },
}

impl Hold {
    /// A stable one-word name, for `--json` reports and scripts.
    pub fn code(self) -> &'static str {
        match self {
            Hold::RateLimited => "rate-limited",
            Hold::BackedOff { .. } => "backed-off",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Order a new certificate now.
    Renew(Reason),
    /// Due for `reason`, but not to be ordered before `until` (Unix seconds).
    Hold {
        reason: Reason,
        hold: Hold,
        until: i64,
    },
    /// Nothing to do until `renew_at` (Unix seconds).
    Keep { renew_at: i64 },
}

impl Decision {
    /// The reason it is due, if it is.
    pub fn reason(&self) -> Option<&Reason> {
        match self {
            Decision::Renew(reason) | Decision::Hold { reason, .. } => Some(reason),
            Decision::Keep { .. } => None,
        }
    }

    /// `keep`, or the reason's code: what `--json` reports as `decision`.
    pub fn code(&self) -> &'static str {
        self.reason().map_or("keep", Reason::code)
    }
}

/// Certificates that live this long or less renew at half their lifetime, not a third, so
/// that a 6-day certificate still gets several tries.
const SHORT_LIVED: i64 = 10 * 86_400;

/// When a certificate valid from `not_before` to `not_after` enters its renewal window.
pub fn renew_at(not_before: i64, not_after: i64, renew_days: Option<u32>) -> i64 {
    match renew_days {
        Some(days) => not_after - i64::from(days) * 86_400,
        None => {
            let lifetime = (not_after - not_before).max(0);
            let left = if lifetime <= SHORT_LIVED {
                lifetime / 2
            } else {
                lifetime / 3
            };
            not_after - left
        }
    }
}

/// How many of the latest runs' start times `state/` keeps to judge the schedule by.
pub const RECENT_RUNS: usize = 8;

/// An interval between two runs longer than this is no schedule: a clock that was wrong (a
/// board that boots in 1970 before NTP) or a machine that was off.
const MAX_GAP: i64 = 366 * 86_400;

/// The time the schedule leaves between two runs, as the start times `runs` (oldest first)
/// show it: the longest interval between two that follow each other, so that runs started by
/// hand in between do not hide a weekly schedule; intervals that go back in time or are longer
/// than a year do not count. None before two runs: no history, no verdict.
pub fn run_gap(runs: &[i64]) -> Option<i64> {
    runs.windows(2)
        .map(|w| w[1] - w[0])
        .filter(|gap| (1..=MAX_GAP).contains(gap))
        .max()
}

/// A schedule that cannot keep up with a certificate: runs `gap` seconds apart, while it is
/// renewed `window` seconds before it expires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooSlow {
    pub gap: i64,
    pub window: i64,
    /// The longest period between runs that gives it two tries inside its window: 24, 12, 6
    /// or 1 hours.
    pub every_hours: i64,
}

/// Some when runs `gap` apart can let a certificate valid from `not_before` to `not_after`
/// expire before a run renews it: its renewal window (from the time it is due to its expiry)
/// is shorter than the gap.
pub fn too_slow(
    not_before: i64,
    not_after: i64,
    renew_days: Option<u32>,
    gap: i64,
) -> Option<TooSlow> {
    let window = not_after - renew_at(not_before, not_after, renew_days);
    let every_hours = [24, 12, 6]
        .into_iter()
        .find(|h| 2 * h * 3600 <= window)
        .unwrap_or(1);
    (window < gap).then_some(TooSlow {
        gap,
        window,
        every_hours,
    })
}

/// The moment inside an ARI suggested window `[start, end]` when this certificate renews: a
/// point spread uniformly over the window by the certID, so the same on every run and
/// different between certificates (RFC 9773 §4.2).
pub fn ari_point(start: i64, end: i64, cert_id: &str) -> i64 {
    let digest = ring::digest::digest(&ring::digest::SHA256, cert_id.as_bytes());
    let mut eight = [0u8; 8];
    eight.copy_from_slice(&digest.as_ref()[..8]);
    let fraction = u64::from_be_bytes(eight) as f64 / u64::MAX as f64;
    let span = (end - start).max(0);
    start + (span as f64 * fraction) as i64
}

/// Decides for one certificate. `current` is None when there is no `cert.pem`, `Err` when it
/// cannot be read. In order: missing or unreadable; `--force`; names or key type not as
/// wanted; issued by another CA; expired; inside the local renewal window (`RENEW_DAYS` or
/// the share of the lifetime); past the point chosen in the CA's renewal information window;
/// a preferred chain or profile other than it was issued under. A certificate that is due is
/// then held back while `recorded` says the CA's rate limit or our back-off still runs (never
/// with `--force`).
pub fn decide(
    current: Option<&Result<Live, String>>,
    wanted: &Wanted<'_>,
    recorded: &CertState,
    policy: Policy,
    now: i64,
) -> Decision {
    let due = match current {
        None => Err(Reason::Missing),
        Some(Err(why)) => Err(Reason::Unreadable(why.clone())),
        Some(Ok(live)) => judge(live, wanted, recorded, policy, now),
    };
    let reason = match due {
        Ok(renew_at) => return Decision::Keep { renew_at },
        Err(reason) => reason,
    };
    if policy.force {
        return Decision::Renew(reason);
    }
    if let Some(until) = recorded.rate_limited_until.filter(|until| *until > now) {
        return Decision::Hold {
            reason,
            hold: Hold::RateLimited,
            until,
        };
    }
    if let Some(until) = recorded.backed_off(now) {
        return Decision::Hold {
            reason,
            hold: Hold::BackedOff {
                failures: recorded.failures,
            },
            until,
        };
    }
    Decision::Renew(reason)
}

/// The rules for a readable certificate: Ok(when it renews) or Err(why it renews now).
fn judge(
    live: &Live,
    wanted: &Wanted<'_>,
    recorded: &CertState,
    policy: Policy,
    now: i64,
) -> Result<i64, Reason> {
    let facts = &live.facts;
    if policy.force {
        return Err(Reason::Forced);
    }
    let mut names = wanted.names.to_vec();
    names.sort();
    names.dedup();
    if facts.names != names {
        return Err(Reason::NamesChanged {
            had: facts.names.clone(),
        });
    }
    if let Some(key) = wanted.key
        && facts.key != Some(key)
    {
        let had = facts
            .key
            .map(|k| k.to_string())
            .unwrap_or_else(|| "another type".into());
        return Err(Reason::KeyChanged { had });
    }
    if let Some(had) = other_ca(live, wanted, recorded) {
        return Err(Reason::CaChanged { had });
    }
    if now >= facts.not_after {
        return Err(Reason::Expired);
    }
    let local = renew_at(facts.not_before, facts.not_after, policy.renew_days);
    if now >= local {
        return Err(Reason::Due {
            days_left: (facts.not_after - now) / 86_400,
        });
    }
    // The CA's window, when it is the answer for this very certificate.
    let ari = recorded
        .ari
        .as_ref()
        .filter(|_| policy.ari)
        .filter(|a| live.cert_id.as_deref() == Some(a.cert_id.as_str()));
    let mut renew = local;
    if let Some(ari) = ari {
        let point = ari_point(ari.start, ari.end, &ari.cert_id);
        if now >= point {
            return Err(Reason::Ari {
                explanation: ari.explanation.clone(),
            });
        }
        renew = renew.min(point);
    }
    if chain_changed(live, wanted, recorded) {
        return Err(Reason::ChainChanged);
    }
    if recorded.profile.as_deref().unwrap_or_default() != wanted.profile.unwrap_or_default() {
        return Err(Reason::ProfileChanged);
    }
    Ok(renew)
}

/// The directory URL of Let's Encrypt's staging CA, whose issuers' names start with
/// [`STAGING_ISSUER`].
const LE_STAGING: &str = "https://acme-staging-v02.api.letsencrypt.org/directory";
const STAGING_ISSUER: &str = "(STAGING)";

/// The CA other than the configured one that issued the live certificate, when it is known:
/// as `state/` recorded it at issuance or import. For a certificate without that record
/// (issued by dehydrated or an older version): Let's Encrypt's staging CA when its issuer is
/// one of staging's (and staging is not the configured CA), else the CAs of
/// [`Wanted::earlier_cas`]. None when nothing says another CA issued it: such a certificate is
/// not renewed on a guess.
fn other_ca(live: &Live, wanted: &Wanted<'_>, recorded: &CertState) -> Option<String> {
    if let Some(had) = &recorded.ca {
        return (had != wanted.ca).then(|| had.clone());
    }
    let staging = live
        .issuer
        .as_deref()
        .is_some_and(|i| i.starts_with(STAGING_ISSUER) || i.starts_with("Fake LE"));
    if staging && wanted.ca != LE_STAGING {
        return Some(LE_STAGING.to_string());
    }
    (!wanted.earlier_cas.is_empty()).then(|| wanted.earlier_cas.join(" or "))
}

/// True when the chain preference differs from the one the live certificate was issued under,
/// or, for a certificate with no record of it, from the live chain's topmost issuer.
fn chain_changed(live: &Live, wanted: &Wanted<'_>, recorded: &CertState) -> bool {
    let want = wanted.preferred_chain.unwrap_or_default();
    match &recorded.preferred_chain {
        Some(had) => had != want,
        None if want.is_empty() => false,
        None => live.top_issuer.as_deref() != Some(want),
    }
}

/// Whether [`decide`] needs [`Live::top_issuer`] for a certificate: only when a chain is
/// preferred and `state/` has no record of the one it was issued under.
pub fn needs_top_issuer(preferred_chain: Option<&str>, recorded: &CertState) -> bool {
    recorded.preferred_chain.is_none() && preferred_chain.is_some_and(|c| !c.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_a_certificate_file_says_is_shown_cleaned() {
        let forged = "owner.example\n<0>desiccant: forged\u{1b}[2J";
        for reason in [
            Reason::NamesChanged {
                had: vec![forged.into()],
            },
            Reason::CaChanged { had: forged.into() },
            Reason::Unreadable(forged.into()),
        ] {
            let text = reason.to_string();
            assert!(!text.contains('\n') && !text.contains('\u{1b}'), "{text}");
            assert!(text.contains("\\n<0>"), "{text}");
        }
    }
    use crate::state::AriState;

    const DAY: i64 = 86_400;
    const T0: i64 = 1_800_000_000;
    const CA: &str = "https://ca.example/dir";

    fn live(facts: CertFacts) -> Result<Live, String> {
        Ok(Live {
            facts,
            cert_id: Some("aki.serial".into()),
            top_issuer: None,
            issuer: None,
        })
    }

    fn cert(days: i64) -> Result<Live, String> {
        live(CertFacts {
            names: vec!["a.example".into(), "b.example".into()],
            not_before: T0,
            not_after: T0 + days * DAY,
            key: Some(KeyAlgo::Secp384r1),
        })
    }

    fn names() -> Vec<String> {
        vec!["b.example".into(), "a.example".into()]
    }

    fn wanted(names: &[String]) -> Wanted<'_> {
        Wanted {
            names,
            key: Some(KeyAlgo::Secp384r1),
            profile: None,
            preferred_chain: None,
            ca: CA,
            earlier_cas: &[],
        }
    }

    const AUTO: Policy = Policy {
        force: false,
        renew_days: None,
        ari: true,
    };

    fn run(c: &Result<Live, String>, policy: Policy, now: i64) -> Decision {
        decide(
            Some(c),
            &wanted(&names()),
            &CertState::default(),
            policy,
            now,
        )
    }

    #[test]
    fn a_third_of_the_lifetime_or_half_for_short_lived() {
        // (lifetime in days, days after issue, renew?)
        let table = [
            (90, 59, false),
            (90, 60, true),
            (45, 29, false),
            (45, 30, true),
            (6, 2, false),
            (6, 3, true),
            (1826, 1217, false),
            (1826, 1218, true),
        ];
        for (lifetime, after, renew) in table {
            let d = run(&cert(lifetime), AUTO, T0 + after * DAY);
            assert_eq!(
                matches!(d, Decision::Renew(Reason::Due { .. })),
                renew,
                "{lifetime}-day certificate, day {after}: {d:?}"
            );
        }
        assert_eq!(
            run(&cert(90), AUTO, T0),
            Decision::Keep {
                renew_at: T0 + 60 * DAY
            }
        );
    }

    #[test]
    fn a_schedule_too_slow_for_the_renewal_window() {
        assert_eq!(run_gap(&[]), None);
        assert_eq!(run_gap(&[T0]), None);
        // A weekly schedule with a run by hand in between, and a clock that went back.
        assert_eq!(
            run_gap(&[T0, T0 + 7 * DAY, T0 + 8 * DAY, T0 + 14 * DAY, T0 + 13 * DAY]),
            Some(7 * DAY)
        );
        // A clock ten years off, then right again.
        assert_eq!(
            run_gap(&[T0, T0 + 3650 * DAY, T0 + DAY, T0 + 2 * DAY]),
            Some(DAY)
        );
        // (lifetime in days, RENEW_DAYS, days between runs, too slow? hours needed)
        let table = [
            (6, None, 7, Some(24)),
            (6, None, 30, Some(24)),
            (6, None, 2, None),
            (90, None, 7, None),
            (90, None, 30, None),
            (90, None, 31, Some(24)),
            (45, None, 7, None),
            (45, None, 30, Some(24)),
            (90, Some(1), 1, None),
            (90, Some(1), 2, Some(12)),
        ];
        for (lifetime, renew_days, gap, expected) in table {
            let got = too_slow(T0, T0 + lifetime * DAY, renew_days, gap * DAY);
            assert_eq!(
                got.map(|t| t.every_hours),
                expected,
                "{lifetime}-day certificate, RENEW_DAYS {renew_days:?}, runs {gap} days apart: {got:?}"
            );
        }
        let short = too_slow(T0, T0 + 6 * DAY, None, 7 * DAY).unwrap();
        assert_eq!((short.window, short.gap), (3 * DAY, 7 * DAY));
        assert_eq!(
            too_slow(T0, T0 + 3 * 3600, None, DAY).unwrap().every_hours,
            1
        );
    }

    #[test]
    fn the_ari_point_is_inside_the_window_stable_and_spread() {
        let points: Vec<i64> = (0..200)
            .map(|i| ari_point(1000, 1000 + 86_400, &format!("aki.{i}")))
            .collect();
        assert!(points.iter().all(|p| (1000..=1000 + 86_400).contains(p)));
        assert_eq!(ari_point(1000, 1000 + 86_400, "aki.7"), points[7]);
        let early = points.iter().filter(|p| **p < 1000 + 43_200).count();
        assert!(
            (70..130).contains(&early),
            "{early} of 200 in the first half"
        );
        assert_eq!(ari_point(5, 5, "x"), 5);
        assert_eq!(ari_point(10, 5, "x"), 10);
    }

    #[test]
    fn renew_days_when_set() {
        let policy = Policy {
            renew_days: Some(10),
            ..AUTO
        };
        assert!(matches!(
            run(&cert(90), policy, T0 + 79 * DAY),
            Decision::Keep { .. }
        ));
        assert_eq!(
            run(&cert(90), policy, T0 + 81 * DAY),
            Decision::Renew(Reason::Due { days_left: 9 })
        );
    }

    #[test]
    fn what_state_recorded_decides_too() {
        let w = names();
        let ari = |start: i64, end: i64, cert_id: &str| AriState {
            cert_id: cert_id.into(),
            start,
            end,
            explanation: Some("https://ca.example/why".into()),
            next_check: 0,
        };
        let point = ari_point(T0 + 10 * DAY, T0 + 11 * DAY, "aki.serial");
        let chain = Wanted {
            preferred_chain: Some("Root X2"),
            ..wanted(&w)
        };
        let profile = Wanted {
            profile: Some("shortlived"),
            ..wanted(&w)
        };
        let recorded = |f: &dyn Fn(&mut CertState)| {
            let mut s = CertState::default();
            f(&mut s);
            s
        };
        let no_ari = Policy { ari: false, ..AUTO };
        // (wanted, recorded, policy, now, decision)
        let table: Vec<(Wanted<'_>, CertState, Policy, i64, Decision)> = vec![
            (
                wanted(&w),
                recorded(&|s| s.ca = Some("https://staging.example/dir".into())),
                AUTO,
                T0 + DAY,
                Decision::Renew(Reason::CaChanged {
                    had: "https://staging.example/dir".into(),
                }),
            ),
            (
                wanted(&w),
                recorded(&|s| s.ca = Some(CA.into())),
                AUTO,
                T0 + DAY,
                Decision::Keep {
                    renew_at: T0 + 60 * DAY,
                },
            ),
            (
                wanted(&w),
                recorded(&|s| s.ari = Some(ari(T0 + 10 * DAY, T0 + 11 * DAY, "aki.serial"))),
                AUTO,
                point,
                Decision::Renew(Reason::Ari {
                    explanation: Some("https://ca.example/why".into()),
                }),
            ),
            (
                wanted(&w),
                recorded(&|s| s.ari = Some(ari(T0 + 10 * DAY, T0 + 11 * DAY, "aki.serial"))),
                AUTO,
                point - 1,
                Decision::Keep { renew_at: point },
            ),
            // An answer for another certificate, or with ARI=no, is not obeyed.
            (
                wanted(&w),
                recorded(&|s| s.ari = Some(ari(T0 + 10 * DAY, T0 + 11 * DAY, "aki.other"))),
                AUTO,
                T0 + 12 * DAY,
                Decision::Keep {
                    renew_at: T0 + 60 * DAY,
                },
            ),
            (
                wanted(&w),
                recorded(&|s| s.ari = Some(ari(T0 + 10 * DAY, T0 + 11 * DAY, "aki.serial"))),
                no_ari,
                T0 + 12 * DAY,
                Decision::Keep {
                    renew_at: T0 + 60 * DAY,
                },
            ),
            (
                chain,
                recorded(&|s| s.preferred_chain = Some(String::new())),
                AUTO,
                T0 + DAY,
                Decision::Renew(Reason::ChainChanged),
            ),
            // No record: the live chain's top issuer is asked (here: not read, so not it).
            (
                chain,
                CertState::default(),
                AUTO,
                T0 + DAY,
                Decision::Renew(Reason::ChainChanged),
            ),
            (
                profile,
                recorded(&|s| s.profile = Some("classic".into())),
                AUTO,
                T0 + DAY,
                Decision::Renew(Reason::ProfileChanged),
            ),
            (
                profile,
                recorded(&|s| s.profile = Some("shortlived".into())),
                AUTO,
                T0 + DAY,
                Decision::Keep {
                    renew_at: T0 + 60 * DAY,
                },
            ),
            (
                profile,
                recorded(&|s| {
                    s.profile = Some("classic".into());
                    s.rate_limited_until = Some(T0 + 2 * DAY);
                }),
                AUTO,
                T0 + DAY,
                Decision::Hold {
                    reason: Reason::ProfileChanged,
                    hold: Hold::RateLimited,
                    until: T0 + 2 * DAY,
                },
            ),
            (
                wanted(&w),
                recorded(&|s| {
                    s.failures = 3;
                    s.backoff_until = Some(T0 + 61 * DAY);
                }),
                AUTO,
                T0 + 60 * DAY,
                Decision::Hold {
                    reason: Reason::Due { days_left: 30 },
                    hold: Hold::BackedOff { failures: 3 },
                    until: T0 + 61 * DAY,
                },
            ),
            // A wait that is over, or --force, holds nothing back.
            (
                wanted(&w),
                recorded(&|s| s.rate_limited_until = Some(T0 + 60 * DAY)),
                AUTO,
                T0 + 60 * DAY,
                Decision::Renew(Reason::Due { days_left: 30 }),
            ),
            (
                wanted(&w),
                recorded(&|s| s.rate_limited_until = Some(T0 + 2 * DAY)),
                Policy {
                    force: true,
                    ..AUTO
                },
                T0 + DAY,
                Decision::Renew(Reason::Forced),
            ),
        ];
        for (i, (wanted, recorded, policy, now, expected)) in table.into_iter().enumerate() {
            assert_eq!(
                decide(Some(&cert(90)), &wanted, &recorded, policy, now),
                expected,
                "row {i}"
            );
        }
        // The live chain's own top issuer counts when nothing was recorded.
        let mut top = cert(90).unwrap();
        top.top_issuer = Some("Root X2".into());
        assert!(needs_top_issuer(
            chain.preferred_chain,
            &CertState::default()
        ));
        assert!(!needs_top_issuer(None, &CertState::default()));
        assert_eq!(
            decide(
                Some(&Ok(top)),
                &chain,
                &CertState::default(),
                AUTO,
                T0 + DAY
            ),
            Decision::Keep {
                renew_at: T0 + 60 * DAY
            }
        );
    }

    #[test]
    fn a_certificate_without_record_of_its_ca() {
        let w = names();
        let staging_issued = |issuer: &str| {
            let mut l = cert(90).unwrap();
            l.issuer = Some(issuer.into());
            Ok(l)
        };
        let earlier = vec!["https://staging.example/dir".to_string()];
        let after_switch = Wanted {
            earlier_cas: &earlier,
            ..wanted(&w)
        };
        let on_staging = Wanted {
            ca: LE_STAGING,
            ..wanted(&w)
        };
        let none = CertState::default();
        let recorded_here = CertState {
            ca: Some(CA.into()),
            ..CertState::default()
        };
        let keep = Decision::Keep {
            renew_at: T0 + 60 * DAY,
        };
        let changed = |had: &str| Decision::Renew(Reason::CaChanged { had: had.into() });
        // (certificate, wanted, recorded, decision)
        let table: Vec<(Result<Live, String>, Wanted<'_>, &CertState, Decision)> = vec![
            // Nothing says where it came from: kept, as dehydrated's certificates are.
            (cert(90), wanted(&w), &none, keep.clone()),
            (
                staging_issued("(STAGING) Let's Encrypt"),
                wanted(&w),
                &none,
                changed(LE_STAGING),
            ),
            (
                staging_issued("Fake LE Intermediate X1"),
                wanted(&w),
                &none,
                changed(LE_STAGING),
            ),
            (
                staging_issued("(STAGING) Let's Encrypt"),
                on_staging,
                &none,
                keep.clone(),
            ),
            (
                staging_issued("Let's Encrypt"),
                wanted(&w),
                &none,
                keep.clone(),
            ),
            // The only accounts are another CA's: it issued the certificates there are.
            (
                cert(90),
                after_switch,
                &none,
                changed("https://staging.example/dir"),
            ),
            // A record wins over every guess.
            (
                staging_issued("(STAGING) Let's Encrypt"),
                after_switch,
                &recorded_here,
                keep,
            ),
        ];
        for (i, (live, wanted, recorded, expected)) in table.into_iter().enumerate() {
            assert_eq!(
                decide(Some(&live), &wanted, recorded, AUTO, T0 + DAY),
                expected,
                "row {i}"
            );
        }
    }

    #[test]
    fn missing_unreadable_changed_expired_forced() {
        let w = names();
        let none = CertState::default();
        assert_eq!(
            decide(None, &wanted(&w), &none, AUTO, T0),
            Decision::Renew(Reason::Missing)
        );
        assert_eq!(
            run(&Err("truncated".into()), AUTO, T0),
            Decision::Renew(Reason::Unreadable("truncated".into()))
        );
        let one = vec!["a.example".to_string()];
        let other = decide(Some(&cert(90)), &wanted(&one), &none, AUTO, T0);
        assert!(matches!(
            other,
            Decision::Renew(Reason::NamesChanged { .. })
        ));
        let rsa = Wanted {
            key: Some(KeyAlgo::Rsa(2048)),
            ..wanted(&w)
        };
        assert_eq!(
            decide(Some(&cert(90)), &rsa, &none, AUTO, T0),
            Decision::Renew(Reason::KeyChanged {
                had: "secp384r1".into()
            })
        );
        // A key made by the generate_csr hook is not judged by KEY_ALGO.
        let csr = Wanted { key: None, ..rsa };
        assert!(matches!(
            decide(Some(&cert(90)), &csr, &none, AUTO, T0),
            Decision::Keep { .. }
        ));
        assert_eq!(
            run(&cert(90), AUTO, T0 + 91 * DAY),
            Decision::Renew(Reason::Expired)
        );
        let force = Policy {
            force: true,
            ..AUTO
        };
        assert_eq!(run(&cert(90), force, T0), Decision::Renew(Reason::Forced));
    }

    /// A real certificate for a.example and b.example (P-384, as KEY_ALGO's default), valid from
    /// 2026-01-01 for `days` days.
    fn issued(days: u8) -> String {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
        let mut params =
            rcgen::CertificateParams::new(vec!["a.example".into(), "b.example".into()]).unwrap();
        params.not_before = rcgen::date_time_ymd(2026, 1, 1);
        params.not_after = match days {
            90 => rcgen::date_time_ymd(2026, 4, 1),
            45 => rcgen::date_time_ymd(2026, 2, 15),
            6 => rcgen::date_time_ymd(2026, 1, 7),
            other => panic!("no end date for {other} days"),
        };
        params.self_signed(&key).unwrap().pem()
    }

    /// Unix seconds at 2026-01-01 plus `days`.
    fn day(days: i64) -> i64 {
        1_767_225_600 + days * DAY
    }

    #[test]
    fn certificates_of_90_45_and_6_days_against_every_reason() {
        let read = |pem: &str| {
            crate::x509::facts(pem.as_bytes()).map(|facts| Live {
                facts,
                cert_id: None,
                top_issuer: None,
                issuer: None,
            })
        };
        let (c90, c45, c6) = (read(&issued(90)), read(&issued(45)), read(&issued(6)));
        assert_eq!(c90.as_ref().unwrap().facts.not_after, day(90));
        assert_eq!(c45.as_ref().unwrap().facts.not_after, day(45));
        assert_eq!(c6.as_ref().unwrap().facts.not_after, day(6));
        let garbage = read("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n");
        assert!(garbage.is_err());
        let renew_days = |d| Policy {
            renew_days: Some(d),
            ..AUTO
        };
        let force = Policy {
            force: true,
            ..AUTO
        };
        let keep = |at: i64| Decision::Keep { renew_at: at };
        let due = |left: i64| Decision::Renew(Reason::Due { days_left: left });
        let p384 = KeyAlgo::Secp384r1;
        let both = names();
        let one: Vec<String> = vec!["a.example".into()];
        let sorted: Vec<String> = vec!["a.example".into(), "b.example".into()];
        // (certificate, wanted names, key, policy, now, decision)
        type Row<'a> = (
            Option<&'a Result<Live, String>>,
            &'a [String],
            KeyAlgo,
            Policy,
            i64,
            Decision,
        );
        let table: Vec<Row<'_>> = vec![
            (
                None,
                &both,
                p384,
                AUTO,
                day(0),
                Decision::Renew(Reason::Missing),
            ),
            (
                Some(&garbage),
                &both,
                p384,
                AUTO,
                day(0),
                Decision::Renew(Reason::Unreadable(garbage.clone().unwrap_err())),
            ),
            (
                Some(&c90),
                &one,
                p384,
                AUTO,
                day(1),
                Decision::Renew(Reason::NamesChanged {
                    had: sorted.clone(),
                }),
            ),
            (
                Some(&c90),
                &both,
                KeyAlgo::Rsa(2048),
                AUTO,
                day(1),
                Decision::Renew(Reason::KeyChanged {
                    had: "secp384r1".into(),
                }),
            ),
            (
                Some(&c90),
                &both,
                p384,
                AUTO,
                day(90),
                Decision::Renew(Reason::Expired),
            ),
            (
                Some(&c90),
                &both,
                p384,
                force,
                day(1),
                Decision::Renew(Reason::Forced),
            ),
            (Some(&c90), &both, p384, AUTO, day(59), keep(day(60))),
            (Some(&c90), &both, p384, AUTO, day(60), due(30)),
            (
                Some(&c90),
                &both,
                p384,
                renew_days(30),
                day(59),
                keep(day(60)),
            ),
            (
                Some(&c90),
                &both,
                p384,
                renew_days(10),
                day(79),
                keep(day(80)),
            ),
            (Some(&c90), &both, p384, renew_days(10), day(81), due(9)),
            (Some(&c45), &both, p384, AUTO, day(29), keep(day(30))),
            (Some(&c45), &both, p384, AUTO, day(30), due(15)),
            (
                Some(&c45),
                &both,
                p384,
                AUTO,
                day(46),
                Decision::Renew(Reason::Expired),
            ),
            (Some(&c6), &both, p384, AUTO, day(2), keep(day(3))),
            (Some(&c6), &both, p384, AUTO, day(3), due(3)),
            (Some(&c6), &both, p384, AUTO, day(5), due(1)),
        ];
        for (i, (cert, names, key, policy, now, expected)) in table.into_iter().enumerate() {
            let wanted = Wanted {
                key: Some(key),
                ..wanted(names)
            };
            assert_eq!(
                decide(cert, &wanted, &CertState::default(), policy, now),
                expected,
                "row {i}"
            );
        }
    }
}
