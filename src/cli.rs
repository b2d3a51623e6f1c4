//! The command line, with dehydrated's spellings. The doc comments are the `--help` text.

use std::ffi::{OsStr, OsString};
use std::path::PathBuf;

use clap::builder::{PossibleValue, StringValueParser, TypedValueParser};
use clap::{ArgGroup, Parser, ValueHint};

use crate::values::{CA_PRESETS, CHALLENGE_TYPES, KEY_ALGOS};

/// An ACME client that keeps certificates in dehydrated's layout: a drop-in for dehydrated's
/// `--cron` runs, with no shell, openssl or curl at run time.
#[derive(Parser, Debug, Default, Clone)]
#[command(
    name = "desiccant",
    disable_version_flag = true,
    max_term_width = 80,
    override_usage = "desiccant <COMMAND> [OPTIONS]",
    group(ArgGroup::new("command").required(true).multiple(false)),
    after_help = "Exit status: 0 all certificates valid, 1 a certificate failed (its own config \
                  included; the others were still renewed), 2 bad command line, 75 temporary \
                  failure (CA unreachable, rate limited, lock busy), 78 bad configuration of the \
                  run.\nSee README for every config key."
)]
pub struct Cli {
    /// Sign or renew every certificate of domains.txt that is missing, changed or due
    #[arg(short = 'c', long, group = "command", help_heading = "Commands")]
    pub cron: bool,

    /// Report every certificate's state without network or lock; exit 0 OK, 1 WARNING (due),
    /// 2 CRITICAL (expired, missing, unreadable, not matching), 3 UNKNOWN
    #[arg(long, group = "command", help_heading = "Commands")]
    pub check: bool,

    /// Sign a CSR made elsewhere; print the certificate (and with --full-chain the chain)
    #[arg(
        short = 's',
        long,
        value_name = "CSR",
        group = "command",
        value_hint = ValueHint::FilePath,
        help_heading = "Commands"
    )]
    pub signcsr: Option<PathBuf>,

    /// Revoke a certificate (by the account key, or by its own key with --privkey)
    #[arg(
        short = 'r',
        long,
        value_name = "CERT",
        group = "command",
        value_hint = ValueHint::FilePath,
        help_heading = "Commands"
    )]
    pub revoke: Option<PathBuf>,

    /// Register the account key with the CA (with --accept-terms)
    #[arg(long, group = "command", help_heading = "Commands")]
    pub register: bool,

    /// Update the account's contact to CONTACT_EMAIL
    #[arg(long, group = "command", help_heading = "Commands")]
    pub account: bool,

    /// Deactivate the account for good (the CA refuses it afterwards)
    #[arg(long, group = "command", help_heading = "Commands")]
    pub deactivate: bool,

    /// Move certificate files no symlink points at to BASEDIR/archive/, and the folders of
    /// certificates no longer in domains.txt (also -gc)
    #[arg(long, group = "command", help_heading = "Commands")]
    pub cleanup: bool,

    /// Delete certificate files no symlink points at; archive the folders of certificates no
    /// longer in domains.txt (also -gcd)
    #[arg(long, group = "command", help_heading = "Commands")]
    pub cleanup_delete: bool,

    /// Take over certbot's certificates from DIR (/etc/letsencrypt): domains.txt lines, the
    /// current files, their settings (key type, webroot as WEBROOT, manual and deploy hooks as
    /// AUTH_HOOK, CLEANUP_HOOK, DEPLOY_HOOK); nothing is reissued before it is due
    #[arg(
        long,
        value_name = "DIR",
        value_hint = ValueHint::DirPath,
        group = "command",
        help_heading = "Commands"
    )]
    pub import_certbot: Option<PathBuf>,

    /// Print the CA's terms of service URL
    #[arg(long, group = "command", help_heading = "Commands")]
    pub display_terms: bool,

    /// Print the dns-persist-01 TXT record each name needs for this account
    #[arg(long, group = "command", help_heading = "Commands")]
    pub persist_record: bool,

    /// Print the configuration as shell variables, as dehydrated --env does
    #[arg(short = 'e', long, group = "command", help_heading = "Commands")]
    pub env: bool,

    /// Print version information
    #[arg(short = 'v', long, group = "command", help_heading = "Commands")]
    pub version: bool,

    /// With --check: WARNING below DAYS days left
    #[arg(
        long,
        value_name = "DAYS",
        value_parser = parse_days,
        allow_negative_numbers = true,
        value_hint = ValueHint::Other
    )]
    pub warning: Option<f64>,

    /// With --check: CRITICAL below DAYS days left
    #[arg(
        long,
        value_name = "DAYS",
        value_parser = parse_days,
        allow_negative_numbers = true,
        value_hint = ValueHint::Other
    )]
    pub critical: Option<f64>,

    /// Accept the CA's terms of service
    #[arg(long)]
    pub accept_terms: bool,

    /// With --account: replace the account key with a new one (ACCOUNT_KEY_ALGO)
    #[arg(long, requires = "account")]
    pub rollover: bool,

    /// With --signcsr: print the chain after the certificate (also -fc)
    #[arg(long)]
    pub full_chain: bool,

    /// With --revoke: sign with this key (the certificate's own) instead of the account key
    #[arg(short = 'p', long, value_name = "KEY", value_hint = ValueHint::FilePath)]
    pub privkey: Option<PathBuf>,

    /// With --revoke: the RFC 5280 reason, by name or code
    #[arg(long, value_name = "REASON", value_parser = Offered::new(reason_names, parse_reason))]
    pub reason: Option<u8>,

    /// Use these names instead of domains.txt: all --domain names make one certificate
    #[arg(short = 'd', long = "domain", value_name = "DOMAIN", value_hint = ValueHint::Other)]
    pub domains: Vec<String>,

    /// Folder name of the --domain certificate instead of its first name
    #[arg(long, value_name = "ALIAS", requires = "domains")]
    pub alias: Option<String>,

    /// Go on with the other certificates after one fails (always done; accepted for dehydrated)
    #[arg(short = 'g', long)]
    pub keep_going: bool,

    /// Renew certificates even when they are not due
    #[arg(short = 'x', long)]
    pub force: bool,

    /// Rehearse --cron or --signcsr; keep nothing
    #[arg(long)]
    pub dry_run: bool,

    /// Do not take the lock (two runs at once may then collide)
    #[arg(short = 'n', long)]
    pub no_lock: bool,

    /// Append -SUFFIX to the lock file's name
    #[arg(long, value_name = "SUFFIX")]
    pub lock_suffix: Option<String>,

    /// Wait up to SECS for another run to release the lock, then exit 75
    #[arg(long, value_name = "SECS", default_value_t = 0, value_hint = ValueHint::Other)]
    pub lock_wait: u64,

    /// Use this domains.txt instead of the configured one
    #[arg(long, value_name = "PATH", value_hint = ValueHint::FilePath)]
    pub domains_txt: Option<PathBuf>,

    /// Use this config file; else the first of /etc/desiccant/config,
    /// /usr/local/etc/desiccant/config, then dehydrated's: /etc/dehydrated/config,
    /// /usr/local/etc/dehydrated/config, ./config, the program's folder
    #[arg(short = 'f', long, value_name = "PATH", value_hint = ValueHint::FilePath)]
    pub config: Option<PathBuf>,

    /// Use this hook program (dehydrated's hook protocol) instead of HOOK; certbot's hooks
    /// are the config keys AUTH_HOOK, CLEANUP_HOOK and DEPLOY_HOOK
    #[arg(short = 'k', long, value_name = "PATH", value_hint = ValueHint::ExecutablePath)]
    pub hook: Option<PathBuf>,

    /// Write certificates into this folder instead of CERTDIR
    #[arg(short = 'o', long, value_name = "DIR", value_hint = ValueHint::DirPath)]
    pub out: Option<PathBuf>,

    /// Resolve and connect over IPv4 only
    #[arg(short = '4', long, conflicts_with = "ipv6")]
    pub ipv4: bool,

    /// Resolve and connect over IPv6 only
    #[arg(short = '6', long)]
    pub ipv6: bool,

    /// Write tls-alpn-01 certificates into this folder instead of ALPNCERTDIR
    #[arg(long, value_name = "DIR", value_hint = ValueHint::DirPath)]
    pub alpn: Option<PathBuf>,

    /// Prefer the chain whose topmost certificate is issued by this common name
    #[arg(long, value_name = "ISSUER_CN")]
    pub preferred_chain: Option<String>,

    /// dns-persist-01 records allow wildcards and subdomains (PERSIST_POLICY)
    #[arg(long)]
    pub persist_wildcard: bool,

    /// dns-persist-01 records end then: Unix seconds or YYYY-MM-DD (PERSIST_UNTIL)
    #[arg(long, value_name = "DATE")]
    pub persist_until: Option<String>,

    /// Ask for OCSP must-staple (obsolete: CAs no longer run OCSP; accepted with a warning)
    #[arg(long)]
    pub ocsp: bool,

    /// With --force: validate every name again even where the CA holds a valid authorization
    #[arg(long, requires = "force")]
    pub force_validation: bool,

    /// Challenge type
    #[arg(short = 't', long, value_name = "TYPE", value_parser = Offered::new(|| CHALLENGE_TYPES.to_vec(), any))]
    pub challenge: Option<String>,

    /// Certificate key
    #[arg(short = 'a', long, value_name = "ALGO", value_parser = Offered::new(|| KEY_ALGOS.to_vec(), any))]
    pub algo: Option<String>,

    /// CA directory URL (https://...) or preset
    #[arg(long, value_name = "URL", value_parser = Offered::new(ca_presets, any))]
    pub ca: Option<String>,

    /// Trust only the CAs in this PEM bundle for HTTPS to the ACME server
    #[arg(long, value_name = "PATH", value_hint = ValueHint::FilePath)]
    pub ca_bundle: Option<PathBuf>,

    /// Issue up to N certificates at the same time
    #[arg(long, value_name = "N", value_hint = ValueHint::Other)]
    pub jobs: Option<usize>,

    /// Print one JSON report on stdout instead of lines
    #[arg(long)]
    pub json: bool,

    /// Also log to syslog (the default when there is neither a terminal nor systemd's journal)
    #[arg(long)]
    pub syslog: bool,

    /// Print errors only
    #[arg(short = 'q', long, conflicts_with = "verbose")]
    pub quiet: bool,

    /// Print every step and every request to the CA
    #[arg(long)]
    pub verbose: bool,
}

/// RFC 5280 §5.3.1 revocation reasons, by their names.
const REASONS: &[(&str, u8)] = &[
    ("unspecified", 0),
    ("keyCompromise", 1),
    ("cACompromise", 2),
    ("affiliationChanged", 3),
    ("superseded", 4),
    ("cessationOfOperation", 5),
    ("certificateHold", 6),
    ("removeFromCRL", 8),
    ("privilegeWithdrawn", 9),
    ("aACompromise", 10),
];

fn reason_names() -> Vec<&'static str> {
    REASONS.iter().map(|(name, _)| *name).collect()
}

fn ca_presets() -> Vec<&'static str> {
    CA_PRESETS.iter().map(|(name, _)| *name).collect()
}

/// Any value: the config checks it where it reads it, with the config's own error.
fn any(text: &str) -> Result<String, String> {
    Ok(text.to_string())
}

/// The value parser of an option that takes one of a few names: `parse` keeps the option's
/// own rules (a URL for `--ca`, a code for `--reason`), and `names` are what `--help` lists
/// and the shell completions offer.
#[derive(Clone)]
struct Offered<T> {
    names: fn() -> Vec<&'static str>,
    parse: fn(&str) -> Result<T, String>,
}

impl<T> Offered<T> {
    fn new(names: fn() -> Vec<&'static str>, parse: fn(&str) -> Result<T, String>) -> Self {
        Offered { names, parse }
    }
}

impl<T: Clone + Send + Sync + 'static> TypedValueParser for Offered<T> {
    type Value = T;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &OsStr,
    ) -> Result<T, clap::Error> {
        let text = StringValueParser::new().parse_ref(cmd, arg, value)?;
        (self.parse)(&text).map_err(|msg| {
            let arg = arg.map_or_else(|| "...".to_string(), ToString::to_string);
            clap::Error::raw(
                clap::error::ErrorKind::ValueValidation,
                format!("invalid value '{text}' for '{arg}': {msg}\n"),
            )
            .with_cmd(cmd)
        })
    }

    fn possible_values(&self) -> Option<Box<dyn Iterator<Item = PossibleValue> + '_>> {
        Some(Box::new((self.names)().into_iter().map(PossibleValue::new)))
    }
}

fn parse_reason(text: &str) -> Result<u8, String> {
    REASONS
        .iter()
        .find(|(name, code)| name.eq_ignore_ascii_case(text) || code.to_string() == text)
        .map(|(_, code)| *code)
        .ok_or_else(|| {
            let names: Vec<&str> = REASONS.iter().map(|(n, _)| *n).collect();
            format!("not a revocation reason; use one of {}", names.join(", "))
        })
}

/// A number of days for `--warning` and `--critical`: not negative, fractions allowed (a
/// 6-day certificate may warn at 1.5) down to hundredths, as the performance data shows them
/// (`0.001` would show as `0:`).
fn parse_days(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(days) if days.is_finite() && days >= 0.0 && (days * 100.0).round() / 100.0 == days => {
            Ok(days)
        }
        _ => Err(
            "not a number of days (0 or more, at most two decimals, such as 14 or 1.5)".to_string(),
        ),
    }
}

/// Parses the command line. dehydrated's multi-letter short options (`-gc`, `-gcd`, `-fc`) are
/// read as the long options they stand for, not as bundles of one-letter flags.
pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Cli, clap::Error> {
    let args = args.into_iter().map(|a| match a.to_str() {
        Some("-gc") => "--cleanup".into(),
        Some("-gcd") => "--cleanup-delete".into(),
        Some("-fc") => "--full-chain".into(),
        _ => a,
    });
    Cli::try_parse_from(args)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cli(args: &[&str]) -> Result<Cli, clap::Error> {
        parse(
            std::iter::once("desiccant")
                .chain(args.iter().copied())
                .map(OsString::from),
        )
    }

    #[test]
    fn dehydrated_spellings() {
        let c = cli(&[
            "-c",
            "-x",
            "-g",
            "-d",
            "a.example",
            "-d",
            "b.example",
            "--alias",
            "ab",
            "-f",
            "/etc/dehydrated/config",
        ])
        .unwrap();
        assert!(c.cron && c.force && c.keep_going);
        assert_eq!(c.domains, ["a.example", "b.example"]);
        assert_eq!(c.alias.as_deref(), Some("ab"));
        assert_eq!(c.config, Some(PathBuf::from("/etc/dehydrated/config")));
        assert!(cli(&["-v"]).unwrap().version);
    }

    #[test]
    fn revocation_reasons_by_name_or_code() {
        assert_eq!(parse_reason("keyCompromise"), Ok(1));
        assert_eq!(parse_reason("superseded"), Ok(4));
        assert_eq!(parse_reason("5"), Ok(5));
        assert!(parse_reason("7").is_err());
        assert!(parse_reason("bored").is_err());
    }

    #[test]
    fn exactly_one_command() {
        assert!(cli(&[]).is_err());
        assert!(cli(&["--cron", "--register"]).is_err());
        assert!(cli(&["--alias", "x", "--cron"]).is_err());
    }

    #[test]
    fn thresholds_are_days_and_only_for_check() {
        let c = cli(&["--check", "--warning", "14", "--critical", "1.5"]).unwrap();
        assert_eq!((c.warning, c.critical), (Some(14.0), Some(1.5)));
        assert!(cli(&["--check", "--critical", "-1"]).is_err());
        assert!(cli(&["--check", "--warning", "NaN"]).is_err());
        assert!(cli(&["--check", "--warning", "a week"]).is_err());
        assert!(cli(&["--check", "--warning", "0.001"]).is_err());
        let c = cli(&["--check", "--warning", "0.29", "--critical", "0.01"]).unwrap();
        assert_eq!((c.warning, c.critical), (Some(0.29), Some(0.01)));
    }

    #[test]
    fn multi_letter_short_options_are_not_flag_bundles() {
        // Without the rewrite, -gc would be --keep-going --cron and start a run.
        assert!(cli(&["-gc"]).unwrap().cleanup);
        assert!(cli(&["-gcd"]).unwrap().cleanup_delete);
        let c = cli(&["-s", "x.csr", "-fc"]).unwrap();
        assert!(c.full_chain);
        assert_eq!(c.signcsr, Some(PathBuf::from("x.csr")));
    }
}
