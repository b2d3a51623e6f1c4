//! Whether a certificate must be issued now: a pure function of what is on disk, what is
//! wanted, the policy and `now`.

use std::fmt;

use crate::keys::KeyAlgo;
use crate::x509::CertFacts;

/// What the configuration asks of one certificate.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// `--force`.
    pub force: bool,
    /// `RENEW_DAYS`; None renews when a third of the lifetime is left (half for short-lived).
    pub renew_days: Option<u32>,
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
    Expired,
    /// Inside the renewal window: `days_left` days of validity remain.
    Due {
        days_left: i64,
    },
    /// `PREFERRED_CHAIN` is not what the live certificate was issued under.
    ChainChanged,
    /// `ACME_PROFILE` is not what the live certificate was issued under.
    ProfileChanged,
    /// The CA's renewal information (RFC 9773) says it is time.
    Ari,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Forced => f.write_str("forced"),
            Reason::Missing => f.write_str("no certificate yet"),
            Reason::Unreadable(why) => write!(f, "the current certificate is unreadable: {why}"),
            Reason::NamesChanged { had } => {
                write!(f, "names changed (the certificate has {})", had.join(" "))
            }
            Reason::KeyChanged { had } => write!(f, "key type changed (the certificate has {had})"),
            Reason::Expired => f.write_str("expired"),
            Reason::Due { days_left } => write!(f, "{days_left} days left"),
            Reason::ChainChanged => f.write_str("preferred chain changed"),
            Reason::ProfileChanged => f.write_str("profile changed"),
            Reason::Ari => f.write_str("the CA's renewal information says so"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Renew(Reason),
    /// Nothing to do until `renew_at` (Unix seconds).
    Keep {
        renew_at: i64,
    },
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
/// cannot be read. `names` are the wanted names; `key` the wanted key type, None when the key
/// is made elsewhere (a CSR from the `generate_csr` hook).
pub fn decide(
    current: Option<&Result<CertFacts, String>>,
    names: &[String],
    key: Option<KeyAlgo>,
    policy: Policy,
    now: i64,
) -> Decision {
    let facts = match current {
        None => return Decision::Renew(Reason::Missing),
        Some(Err(why)) => return Decision::Renew(Reason::Unreadable(why.clone())),
        Some(Ok(facts)) => facts,
    };
    if policy.force {
        return Decision::Renew(Reason::Forced);
    }
    let mut wanted = names.to_vec();
    wanted.sort();
    wanted.dedup();
    if facts.names != wanted {
        return Decision::Renew(Reason::NamesChanged {
            had: facts.names.clone(),
        });
    }
    if let Some(key) = key
        && facts.key != Some(key)
    {
        let had = facts
            .key
            .map(|k| k.to_string())
            .unwrap_or_else(|| "another type".into());
        return Decision::Renew(Reason::KeyChanged { had });
    }
    if now >= facts.not_after {
        return Decision::Renew(Reason::Expired);
    }
    let at = renew_at(facts.not_before, facts.not_after, policy.renew_days);
    if now >= at {
        return Decision::Renew(Reason::Due {
            days_left: (facts.not_after - now) / 86_400,
        });
    }
    Decision::Keep { renew_at: at }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;
    const T0: i64 = 1_800_000_000;

    fn cert(days: i64) -> Result<CertFacts, String> {
        Ok(CertFacts {
            names: vec!["a.example".into(), "b.example".into()],
            not_before: T0,
            not_after: T0 + days * DAY,
            key: Some(KeyAlgo::Secp384r1),
        })
    }

    fn names() -> Vec<String> {
        vec!["b.example".into(), "a.example".into()]
    }

    const AUTO: Policy = Policy {
        force: false,
        renew_days: None,
    };

    fn run(c: &Result<CertFacts, String>, policy: Policy, now: i64) -> Decision {
        decide(Some(c), &names(), Some(KeyAlgo::Secp384r1), policy, now)
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
            force: false,
            renew_days: Some(10),
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
    fn missing_unreadable_changed_expired_forced() {
        assert_eq!(
            decide(None, &names(), Some(KeyAlgo::Secp384r1), AUTO, T0),
            Decision::Renew(Reason::Missing)
        );
        assert_eq!(
            run(&Err("truncated".into()), AUTO, T0),
            Decision::Renew(Reason::Unreadable("truncated".into()))
        );
        let other = decide(
            Some(&cert(90)),
            &["a.example".into()],
            Some(KeyAlgo::Secp384r1),
            AUTO,
            T0,
        );
        assert!(matches!(
            other,
            Decision::Renew(Reason::NamesChanged { .. })
        ));
        let rsa = decide(
            Some(&cert(90)),
            &names(),
            Some(KeyAlgo::Rsa(2048)),
            AUTO,
            T0,
        );
        assert_eq!(
            rsa,
            Decision::Renew(Reason::KeyChanged {
                had: "secp384r1".into()
            })
        );
        assert_eq!(
            run(&cert(90), AUTO, T0 + 91 * DAY),
            Decision::Renew(Reason::Expired)
        );
        let force = Policy {
            force: true,
            renew_days: None,
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
        let read = |pem: &str| crate::x509::facts(pem.as_bytes());
        let (c90, c45, c6) = (read(&issued(90)), read(&issued(45)), read(&issued(6)));
        assert_eq!(c90.as_ref().unwrap().not_after, day(90));
        assert_eq!(c45.as_ref().unwrap().not_after, day(45));
        assert_eq!(c6.as_ref().unwrap().not_after, day(6));
        let garbage: Result<CertFacts, String> =
            read("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n");
        assert!(garbage.is_err());
        let renew_days = |d| Policy {
            force: false,
            renew_days: Some(d),
        };
        let force = Policy {
            force: true,
            renew_days: None,
        };
        let keep = |at: i64| Decision::Keep { renew_at: at };
        let due = |left: i64| Decision::Renew(Reason::Due { days_left: left });
        let p384 = KeyAlgo::Secp384r1;
        let both = names();
        let one: Vec<String> = vec!["a.example".into()];
        let sorted: Vec<String> = vec!["a.example".into(), "b.example".into()];
        // (certificate, wanted names, key, policy, now, decision)
        type Row<'a> = (
            Option<&'a Result<CertFacts, String>>,
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
        for (i, (cert, wanted, key, policy, now, expected)) in table.into_iter().enumerate() {
            assert_eq!(
                decide(cert, wanted, Some(key), policy, now),
                expected,
                "row {i}"
            );
        }
    }
}
