//! dns-persist-01 (draft-ietf-acme-dns-persist): the standing TXT record that binds names to an
//! account, what it says, whether every authoritative name server has it, and its publication,
//! once, by RFC 2136 or by the hook.

use std::net::SocketAddr;

use crate::acme::text::shown;
use crate::config::{DnsConfig, PersistConfig};
use crate::dns::{self, RData};
use crate::dns01::{self, TxtRecord};
use crate::error::{Error, Result};
use crate::hooks::{Hook, HookEvent};

/// The label in front of the name validated (draft §4).
pub const LABEL: &str = "_validation-persist";

/// The record one name (a base name and its wildcard together) needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The name validated: the base name for a wildcard.
    pub domain: String,
    /// `_validation-persist.<domain>`.
    pub name: String,
    /// The issue-value desiccant publishes: `<issuer>; accounturi=<url>[; policy=wildcard]
    /// [; persistUntil=<unix>]`.
    pub value: String,
    /// Whether a record is only good with `policy=wildcard`: the certificate has `*.<domain>`.
    pub needs_wildcard: bool,
}

/// The records for `names` (IP addresses have none), one per base name in the order of the
/// names: `policy=wildcard` where the names have a wildcard or `persist` asks for it everywhere,
/// and `persistUntil` when set.
pub fn records(
    names: &[String],
    issuer: &str,
    account_url: &str,
    persist: &PersistConfig,
) -> Vec<Record> {
    let mut bases: Vec<(String, bool)> = Vec::new();
    for name in names {
        if name.parse::<std::net::IpAddr>().is_ok() {
            continue;
        }
        let (base, wildcard) = match name.strip_prefix("*.") {
            Some(base) => (base, true),
            None => (name.as_str(), false),
        };
        match bases.iter_mut().find(|(b, _)| b == base) {
            Some((_, w)) => *w |= wildcard,
            None => bases.push((base.to_string(), wildcard)),
        }
    }
    bases
        .into_iter()
        .map(|(domain, needs_wildcard)| {
            let mut value = format!("{issuer}; accounturi={account_url}");
            if needs_wildcard || persist.wildcard {
                value.push_str("; policy=wildcard");
            }
            if let Some(until) = persist.until {
                value.push_str(&format!("; persistUntil={until}"));
            }
            Record {
                name: format!("{LABEL}.{domain}"),
                domain,
                value,
                needs_wildcard,
            }
        })
        .collect()
}

/// The record as a zone file line: the value in strings of at most 255 bytes (RFC 1035
/// §3.3.14; the draft asks clients to split a long one), `"` and `\` escaped.
pub fn zone_line(record: &Record) -> String {
    let strings: Vec<String> = record
        .value
        .as_bytes()
        .chunks(255)
        .map(|chunk| {
            let text = String::from_utf8_lossy(chunk);
            format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
        })
        .collect();
    format!("{}. IN TXT {}", record.name, strings.join(" "))
}

/// The issuer domain name the records carry: `PERSIST_ISSUER`, else the first of the
/// directory's `caaIdentities` (the draft lets a CA draw its challenge's names from there).
pub fn issuer(
    configured: Option<&str>,
    caa_identities: &[String],
) -> std::result::Result<String, String> {
    if let Some(issuer) = configured {
        return Ok(issuer.to_string());
    }
    let first = caa_identities.first().ok_or(
        "the CA's directory names no caaIdentities, so its issuer domain name is not known \
         before an order; set PERSIST_ISSUER to the one it documents",
    )?;
    crate::acme::text::check_issuer_domain_name(first)?;
    Ok(first.clone())
}

/// Whether the TXT value `text` binds the name to `account_url` for one of `issuers`, as a CA
/// reads it (RFC 8659 issue-value, draft §4): the issuer first, then `tag=value` parameters
/// separated by `;` (tags in any case, unknown ones ignored), `accounturi` equal to the
/// account's URL, `policy=wildcard` when `wildcard` is needed, and `persistUntil`, when there,
/// after `now`. A record with a malformed parameter binds nothing.
pub fn binds(text: &str, issuers: &[String], account_url: &str, wildcard: bool, now: i64) -> bool {
    let wsp = |c: char| c == ' ' || c == '\t';
    let mut parts = text.split(';');
    let issuer = parts.next().unwrap_or_default().trim_matches(wsp);
    if !issuers.iter().any(|i| i == issuer) {
        return false;
    }
    let (mut account, mut policy, mut until) = (None, None, None);
    for param in parts {
        let Some((tag, value)) = param.split_once('=') else {
            return false;
        };
        let (tag, value) = (tag.trim_matches(wsp), value.trim_matches(wsp));
        let slot = match tag.to_ascii_lowercase().as_str() {
            "" => return false,
            "accounturi" => &mut account,
            "policy" => &mut policy,
            "persistuntil" => &mut until,
            _ => continue,
        };
        if slot.replace(value).is_some() {
            return false;
        }
    }
    if account != Some(account_url) {
        return false;
    }
    if wildcard && !policy.is_some_and(|p| p.eq_ignore_ascii_case("wildcard")) {
        return false;
    }
    match until {
        None => true,
        Some(t) => t.parse::<i64>().is_ok_and(|t| t > now),
    }
}

/// What a name server lacks: a record for this account at `record.name`.
struct Missing<'a> {
    record: &'a Record,
    server: SocketAddr,
    seen: String,
}

impl Missing<'_> {
    fn message(&self, hint: &str) -> String {
        format!(
            "name server {} has no dns-persist-01 record for this account at {} ({}); {hint}: {}",
            self.server,
            self.record.name,
            self.seen,
            zone_line(self.record)
        )
    }
}

/// The records of `records` that some authoritative name server (`DNS_CHECK_SERVERS`, else
/// the zone's) does not answer with a value that [`binds`], each with the first such server
/// and what it answered.
fn missing<'a>(
    dns: &DnsConfig,
    records: &'a [Record],
    issuers: &[String],
    account_url: &str,
    now: i64,
) -> std::result::Result<Vec<Missing<'a>>, String> {
    let mut out = Vec::new();
    for record in records {
        for server in dns01::servers_for(dns, &record.name).map_err(|e| e.0)? {
            let answer = dns::query(server, &record.name, dns::TXT, false).map_err(|e| e.0)?;
            let values: Vec<&str> = answer
                .answers
                .iter()
                .filter_map(|r| match &r.data {
                    RData::Txt(v) => Some(v.as_str()),
                    _ => None,
                })
                .collect();
            let bound = |v: &&str| binds(v, issuers, account_url, record.needs_wildcard, now);
            if values.iter().any(bound) {
                continue;
            }
            let seen = if values.is_empty() {
                format!("it answers {}", dns::rcode_name(answer.rcode))
            } else {
                let quoted: Vec<String> = values.iter().map(|v| format!("\"{v}\"")).collect();
                format!("it has only {}", shown(&quoted.join(", ")))
            };
            out.push(Missing {
                record,
                server,
                seen,
            });
            break;
        }
    }
    Ok(out)
}

/// How [`ensure`] may publish a missing record.
pub struct Publisher<'a> {
    /// Publish at all: not in a dry run.
    pub allowed: bool,
    pub hook: Option<&'a Hook>,
}

/// Makes sure every authoritative name server has a record of `records` for this account and
/// one of `issuers` before anything is ordered. With `DNS_CHECK=no` nothing is asked. When one
/// is missing: published by RFC 2136 (`DNS_UPDATE_SERVER`), else by the hook's
/// `deploy_persist_record`, then waited for as dns-01's records are; without either, or in a
/// dry run, an error naming the record, the server, what it has, and the line to publish.
/// Where every record is in place, nothing but the check queries touches DNS.
pub fn ensure(
    subject: &str,
    dns: &DnsConfig,
    records: &[Record],
    (issuers, account_url): (&[String], &str),
    publisher: &Publisher<'_>,
    now: i64,
) -> Result<()> {
    let refused = |msg: String| Error::refused(subject, msg);
    if !dns.check || records.is_empty() {
        return Ok(());
    }
    let missing = missing(dns, records, issuers, account_url, now).map_err(refused)?;
    let Some(first) = missing.first() else {
        return Ok(());
    };
    let txt: Vec<TxtRecord> = missing
        .iter()
        .map(|m| TxtRecord {
            name: m.record.name.clone(),
            value: m.record.value.clone(),
        })
        .collect();
    match (&dns.update, publisher.hook) {
        _ if !publisher.allowed => {
            return Err(refused(
                first.message("a dry run publishes nothing; publish"),
            ));
        }
        (Some((server, key, ttl)), _) => {
            let added = dns01::by_zone(*server, &txt).map_err(|e| refused(e.0))?;
            dns01::add(*server, key, *ttl, &added).map_err(|e| refused(e.0))?;
            for m in &missing {
                crate::logging::info(format_args!(
                    "{subject}: published {} by RFC 2136 to {server}",
                    zone_line(m.record)
                ));
            }
        }
        (None, Some(hook)) => {
            for m in &missing {
                hook.run(
                    &HookEvent::DeployPersistRecord {
                        domain: m.record.domain.clone(),
                        record_name: m.record.name.clone(),
                        value: m.record.value.clone(),
                    },
                    &[],
                )?;
            }
        }
        (None, None) => return Err(refused(first.message("publish it"))),
    }
    dns01::wait_until_visible(dns, &txt).map_err(|e| {
        refused(format!(
            "{}; the dns-persist-01 record to publish: {}",
            e.0,
            zone_line(first.record)
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACCT: &str = "https://ca.example/acct/123";

    fn issuers() -> Vec<String> {
        vec!["authority.example".into(), "ca.example.net".into()]
    }

    #[test]
    fn a_record_binds_as_the_draft_and_pebble_read_it() {
        let i = issuers();
        let now = 1_800_000_000;
        for good in [
            "authority.example; accounturi=https://ca.example/acct/123",
            "ca.example.net;accounturi=https://ca.example/acct/123",
            " authority.example ;\tAccountURI=https://ca.example/acct/123 ; future=x",
            "authority.example; accounturi=https://ca.example/acct/123; persistUntil=1800000001",
        ] {
            assert!(binds(good, &i, ACCT, false, now), "{good}");
        }
        for bad in [
            "other.example; accounturi=https://ca.example/acct/123",
            "authority.example; accounturi=https://ca.example/acct/124",
            "authority.example",
            "authority.example; accounturi=https://ca.example/acct/123;",
            "authority.example; accounturi=https://ca.example/acct/123; accounturi=x",
            "authority.example; accounturi=https://ca.example/acct/123; persistUntil=1800000000",
            "authority.example; accounturi=https://ca.example/acct/123; persistUntil=soon",
            "authority.example; accounturi",
        ] {
            assert!(!binds(bad, &i, ACCT, false, now), "{bad}");
        }
        // A wildcard needs the policy, in any case; a plain name takes a record that has it.
        let plain = "authority.example; accounturi=https://ca.example/acct/123";
        let wild = "authority.example; accounturi=https://ca.example/acct/123; Policy=WildCard";
        assert!(!binds(plain, &i, ACCT, true, now));
        assert!(binds(wild, &i, ACCT, true, now));
        assert!(binds(wild, &i, ACCT, false, now));
    }

    #[test]
    fn one_record_per_base_name_with_the_policy_where_a_wildcard_needs_it() {
        let names: Vec<String> = [
            "example.org",
            "*.example.org",
            "www.example.net",
            "192.0.2.1",
        ]
        .map(String::from)
        .to_vec();
        let r = records(&names, "ca.example", ACCT, &PersistConfig::default());
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].name, "_validation-persist.example.org");
        assert_eq!(
            r[0].value,
            "ca.example; accounturi=https://ca.example/acct/123; policy=wildcard"
        );
        assert!(r[0].needs_wildcard);
        assert_eq!(
            zone_line(&r[1]),
            "_validation-persist.www.example.net. IN TXT \
             \"ca.example; accounturi=https://ca.example/acct/123\""
        );
        let every = PersistConfig {
            issuer: None,
            wildcard: true,
            until: Some(1_900_000_000),
        };
        let r = records(&names[2..3], "ca.example", ACCT, &every);
        assert_eq!(
            r[0].value,
            "ca.example; accounturi=https://ca.example/acct/123; policy=wildcard; \
             persistUntil=1900000000"
        );
        assert!(!r[0].needs_wildcard);
        for record in &r {
            assert!(binds(&record.value, &["ca.example".into()], ACCT, true, 0));
        }
    }

    #[test]
    fn a_long_value_is_split_into_strings_of_255_bytes() {
        let url = format!("https://ca.example/acct/{}", "1".repeat(300));
        let r = records(
            &["a.example".into()],
            "ca.example",
            &url,
            &PersistConfig::default(),
        );
        let line = zone_line(&r[0]);
        let strings: Vec<&str> = line
            .split_once(" IN TXT ")
            .unwrap()
            .1
            .split("\" \"")
            .collect();
        assert_eq!(strings.len(), 2, "{line}");
        assert_eq!(strings[0].len(), 256, "a quote and 255 bytes");
    }

    #[test]
    fn the_issuer_is_the_configured_one_else_the_first_caa_identity() {
        let caa = vec!["pebble.letsencrypt.org".to_string()];
        assert_eq!(issuer(Some("ca.example"), &caa).unwrap(), "ca.example");
        assert_eq!(issuer(None, &caa).unwrap(), "pebble.letsencrypt.org");
        assert!(issuer(None, &[]).unwrap_err().contains("PERSIST_ISSUER"));
        assert!(issuer(None, &["Bad Name".into()]).is_err());
    }
}
