//! `METRICS_FILE`: the Prometheus text exposition file that node_exporter's textfile collector
//! reads. Owns the name of every metric; the file is rendered from the figures `--cron` and
//! `--check` already hold, and written the crash-safe way into a folder opened as the trust
//! rules for folders outside BASEDIR say.

use std::fmt::Write;
use std::path::Path;

use crate::error::{Error, Result};
use crate::renewal::{Decision, Reason};
use crate::state::{CertState, LastRun};
use crate::x509::CertFacts;
use crate::{store, trust};

/// What a certificate is, as the metrics tell it: one of a fixed set, each a sample of
/// `desiccant_certificate_state` (1 for the current one, 0 for the others).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Live and outside its renewal window.
    Valid,
    /// Inside its renewal window (or the CA asked for an early renewal, or the chain or
    /// profile changed): still served, the next run renews it.
    Due,
    /// Past its notAfter.
    Expired,
    /// No certificate yet.
    Missing,
    /// Unreadable, or not what domains.txt and the config ask for (names, key type, CA).
    Invalid,
    /// Its own config cannot be used: not renewed until that is fixed.
    Broken,
}

impl State {
    /// Every state, in the order the file lists them.
    pub const ALL: [State; 6] = [
        State::Valid,
        State::Due,
        State::Expired,
        State::Missing,
        State::Invalid,
        State::Broken,
    ];

    /// The value of the `state` label.
    pub fn label(self) -> &'static str {
        match self {
            State::Valid => "valid",
            State::Due => "due",
            State::Expired => "expired",
            State::Missing => "missing",
            State::Invalid => "invalid",
            State::Broken => "broken",
        }
    }

    /// The state a renewal decision stands for; None is a certificate whose own config cannot
    /// be used.
    pub fn of(decision: Option<&Decision>) -> State {
        let Some(decision) = decision else {
            return State::Broken;
        };
        match decision.reason() {
            None => State::Valid,
            Some(Reason::Expired) => State::Expired,
            Some(Reason::Missing) => State::Missing,
            Some(
                Reason::Unreadable(_)
                | Reason::NamesChanged { .. }
                | Reason::KeyChanged { .. }
                | Reason::CaChanged { .. },
            ) => State::Invalid,
            Some(
                Reason::Forced
                | Reason::Due { .. }
                | Reason::Ari { .. }
                | Reason::ChainChanged
                | Reason::ProfileChanged,
            ) => State::Due,
        }
    }
}

/// One certificate's figures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cert {
    /// Its folder name under `certs/`: the `certificate` label.
    pub name: String,
    pub not_before: Option<i64>,
    pub not_after: Option<i64>,
    /// When it is planned to be renewed (Unix seconds); None when no decision was made.
    pub renew_at: Option<i64>,
    /// None when no decision was made (a run that stopped before it decided).
    pub state: Option<State>,
    pub last_success: Option<i64>,
    pub last_failure: Option<i64>,
    /// Attempts that failed for good since the last success.
    pub failures: u32,
    /// Attempts deferred by a temporary failure since the last success.
    pub deferrals: u32,
}

impl Cert {
    /// The figures of certificate `name`: its live certificate's `facts`, the renewal
    /// `decision` made on them at `now` (None when its own config cannot be used), and what
    /// `state/` recorded of its attempts.
    pub fn decided(
        name: &str,
        facts: Option<&CertFacts>,
        decision: Option<&Decision>,
        recorded: &CertState,
        now: i64,
    ) -> Cert {
        Cert {
            renew_at: decision.map(|d| renewal_time(d, now)),
            state: Some(State::of(decision)),
            ..Cert::undecided(name, facts, recorded)
        }
    }

    /// These figures with the attempts as `recorded` holds them now.
    pub fn with_attempts(self, recorded: &CertState) -> Cert {
        Cert {
            last_success: recorded.last_success,
            last_failure: recorded.last_failure,
            failures: recorded.failed_attempts,
            deferrals: recorded.deferred_attempts,
            ..self
        }
    }

    /// The figures of certificate `name` without a decision: its dates and attempts only.
    pub fn undecided(name: &str, facts: Option<&CertFacts>, recorded: &CertState) -> Cert {
        Cert {
            name: name.to_string(),
            not_before: facts.map(|f| f.not_before),
            not_after: facts.map(|f| f.not_after),
            renew_at: None,
            state: None,
            last_success: recorded.last_success,
            last_failure: recorded.last_failure,
            failures: recorded.failed_attempts,
            deferrals: recorded.deferred_attempts,
        }
    }
}

/// The planned renewal time of `decision` made at `now`: when a kept certificate enters its
/// window, when a held-back one may be tried again, else now.
pub fn renewal_time(decision: &Decision, now: i64) -> i64 {
    match decision {
        Decision::Keep { renew_at } => *renew_at,
        Decision::Hold { until, .. } => *until,
        Decision::Renew(_) => now,
    }
}

/// What goes into the file: every certificate's figures, the last `--cron` run as `state/`
/// recorded it, and when `--check` wrote it (None for a run).
pub struct Report<'a> {
    pub certs: &'a [Cert],
    pub run: Option<&'a LastRun>,
    pub checked: Option<i64>,
}

/// A metric: its name, its HELP text, and how its value is read from `T` (None: no sample).
type Metric<T, V> = (&'static str, &'static str, fn(&T) -> V);

/// One metric family: its HELP and TYPE lines (all are gauges), then its samples.
fn family(out: &mut String, name: &str, help: &str, samples: &[(String, String)]) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} gauge");
    for (labels, value) in samples {
        let _ = writeln!(out, "{name}{labels} {value}");
    }
}

/// A label value as the text format wants it: backslash, double quote and line feed escaped.
fn escaped(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The samples of a per-certificate figure, for the certificates that have it.
fn per_cert(certs: &[Cert], figure: impl Fn(&Cert) -> Option<i64>) -> Vec<(String, String)> {
    certs
        .iter()
        .filter_map(|c| {
            figure(c).map(|v| {
                (
                    format!("{{certificate=\"{}\"}}", escaped(&c.name)),
                    v.to_string(),
                )
            })
        })
        .collect()
}

/// The file's text, in the Prometheus text exposition format (version 0.0.4).
pub fn render(report: &Report<'_>) -> String {
    let certs = report.certs;
    let mut out = String::new();
    let timestamps: [Metric<Cert, Option<i64>>; 5] = [
        (
            "desiccant_certificate_not_after_timestamp_seconds",
            "When the live certificate expires (its notAfter), in Unix seconds.",
            |c| c.not_after,
        ),
        (
            "desiccant_certificate_not_before_timestamp_seconds",
            "When the live certificate became valid (its notBefore), in Unix seconds.",
            |c| c.not_before,
        ),
        (
            "desiccant_certificate_renewal_timestamp_seconds",
            "When the certificate is planned to be renewed, in Unix seconds; a due one's is \
             the time of the run or check.",
            |c| c.renew_at,
        ),
        (
            "desiccant_certificate_last_success_timestamp_seconds",
            "When a new certificate last went live, in Unix seconds.",
            |c| c.last_success,
        ),
        (
            "desiccant_certificate_last_failure_timestamp_seconds",
            "When an attempt to renew the certificate last failed or was deferred, in Unix seconds.",
            |c| c.last_failure,
        ),
    ];
    for (name, help, figure) in timestamps {
        family(&mut out, name, help, &per_cert(certs, figure));
    }
    family(
        &mut out,
        "desiccant_certificate_consecutive_failures",
        "Attempts to renew the certificate that failed for good (the CA refused, validation \
         failed, a hook failed) since its last success; 0 after a success.",
        &per_cert(certs, |c| Some(i64::from(c.failures))),
    );
    family(
        &mut out,
        "desiccant_certificate_consecutive_deferrals",
        "Attempts to renew the certificate deferred by a temporary failure (the CA \
         unreachable, rate limited, the run stopped) since its last success; 0 after a success.",
        &per_cert(certs, |c| Some(i64::from(c.deferrals))),
    );
    let states: Vec<(String, String)> = certs
        .iter()
        .filter_map(|c| c.state.map(|state| (c, state)))
        .flat_map(|(c, state)| {
            State::ALL.iter().map(move |s| {
                (
                    format!(
                        "{{certificate=\"{}\",state=\"{}\"}}",
                        escaped(&c.name),
                        s.label()
                    ),
                    u8::from(state == *s).to_string(),
                )
            })
        })
        .collect();
    family(
        &mut out,
        "desiccant_certificate_state",
        "1 for the certificate's state: valid, due (inside its renewal window), expired, \
         missing, invalid (unreadable or not as configured) or broken (its own config cannot \
         be used); 0 for the others.",
        &states,
    );
    let run = |figure: fn(&LastRun) -> String| -> Vec<(String, String)> {
        report
            .run
            .map(|r| (String::new(), figure(r)))
            .into_iter()
            .collect()
    };
    let runs: [Metric<LastRun, String>; 6] = [
        (
            "desiccant_last_run_timestamp_seconds",
            "When the last --cron run started, in Unix seconds.",
            |r| r.start.to_string(),
        ),
        (
            "desiccant_last_run_duration_seconds",
            "How long the last --cron run took.",
            |r| format!("{:.3}", r.duration),
        ),
        (
            "desiccant_last_run_exit_status",
            "The exit status of the last --cron run: 0 success, 1 a certificate failed, 75 \
             temporary failures only, 78 a config error.",
            |r| r.exit_status.to_string(),
        ),
        (
            "desiccant_last_run_certificates_renewed",
            "Certificates that went live in the last --cron run.",
            |r| r.renewed.to_string(),
        ),
        (
            "desiccant_last_run_certificates_failed",
            "Certificates that failed or were held back in the last --cron run.",
            |r| r.failed.to_string(),
        ),
        (
            "desiccant_last_run_requests",
            "HTTP requests the last --cron run sent to the CA.",
            |r| r.requests.to_string(),
        ),
    ];
    for (name, help, figure) in runs {
        family(&mut out, name, help, &run(figure));
    }
    if let Some(at) = report.checked {
        family(
            &mut out,
            "desiccant_last_check_timestamp_seconds",
            "When --check wrote this file, in Unix seconds.",
            &[(String::new(), at.to_string())],
        );
    }
    out
}

/// Writes `report` to `path`: a temporary file in the same folder, fsynced, renamed over it,
/// mode 0644 whatever the umask; the folder is opened as [`trust::open_folder`] allows (a
/// symlink on the way only when root's or ours) and written through its handle.
pub fn write(path: &Path, report: &Report<'_>) -> Result<()> {
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let dir = trust::open_folder(folder, "METRICS_FILE")?;
    store::write_durable_at(
        &dir,
        folder,
        &name,
        render(report).as_bytes(),
        store::PUBLIC_MODE,
    )
    .map_err(|e| match e {
        // The file is made beside the old one and renamed over it: the folder refused.
        Error::Io { err, .. } if err.kind() == std::io::ErrorKind::PermissionDenied => Error::Io {
            path: folder.to_path_buf(),
            what: "cannot write METRICS_FILE in this folder",
            err,
        },
        other => other,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert(name: &str, state: State) -> Cert {
        Cert {
            name: name.into(),
            not_before: Some(100),
            not_after: Some(200),
            renew_at: Some(150),
            state: Some(state),
            last_success: Some(90),
            last_failure: None,
            failures: 0,
            deferrals: 0,
        }
    }

    #[test]
    fn every_family_has_help_and_type_and_labels_are_escaped() {
        let certs = [cert("a.example", State::Valid), cert("b\"\\\n", State::Due)];
        let run = LastRun {
            start: 1000,
            duration: 1.5,
            exit_status: 1,
            renewed: 1,
            failed: 1,
            requests: 12,
        };
        let text = render(&Report {
            certs: &certs,
            run: Some(&run),
            checked: Some(2000),
        });
        let lines: Vec<&str> = text.lines().collect();
        for name in lines.iter().filter_map(|l| l.strip_prefix("# TYPE ")) {
            let name = name.strip_suffix(" gauge").unwrap();
            assert!(
                lines
                    .iter()
                    .any(|l| l.starts_with(&format!("# HELP {name} ")))
            );
        }
        assert!(lines.contains(
            &"desiccant_certificate_not_after_timestamp_seconds{certificate=\"a.example\"} 200"
        ));
        assert!(lines.contains(
            &"desiccant_certificate_state{certificate=\"b\\\"\\\\\\n\",state=\"due\"} 1"
        ));
        assert!(
            lines.contains(
                &"desiccant_certificate_state{certificate=\"a.example\",state=\"due\"} 0"
            )
        );
        assert!(lines.contains(&"desiccant_last_run_duration_seconds 1.500"));
        assert!(lines.contains(&"desiccant_last_run_exit_status 1"));
        assert!(lines.contains(&"desiccant_last_check_timestamp_seconds 2000"));
        // No last failure: no sample, but the family is still described.
        assert!(
            !text.contains("desiccant_certificate_last_failure_timestamp_seconds{"),
            "{text}"
        );
    }

    #[test]
    fn states_follow_the_decision() {
        assert_eq!(State::of(None), State::Broken);
        assert_eq!(
            State::of(Some(&Decision::Keep { renew_at: 5 })),
            State::Valid
        );
        assert_eq!(
            State::of(Some(&Decision::Renew(Reason::Missing))),
            State::Missing
        );
        let held = Decision::Hold {
            reason: Reason::Due { days_left: 3 },
            hold: crate::renewal::Hold::BackedOff { failures: 2 },
            until: 77,
        };
        assert_eq!(State::of(Some(&held)), State::Due);
        assert_eq!(renewal_time(&held, 10), 77);
        assert_eq!(renewal_time(&Decision::Renew(Reason::Expired), 10), 10);
    }
}
