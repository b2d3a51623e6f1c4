//! The RFC 8555 objects as they travel on the wire, with the RFC's field names.

use std::fmt;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::text::{check_url, shown};

/// An object as the CA sends it, checked before anyone uses it: URLs, names and types that do
/// not fit their grammar are refused, free text is made fit to show ([`shown`]). An order and
/// an authorization are checked against what was ordered instead (`super::order::Ordered`).
pub trait Wire: DeserializeOwned {
    /// Err says what was refused, with the CA's words shown.
    fn check(&mut self) -> Result<(), String>;
}

/// `text` replaced by what [`shown`] makes of it.
pub(crate) fn clean(text: &mut String) {
    if let std::borrow::Cow::Owned(cleaned) = shown(text) {
        *text = cleaned;
    }
}

/// The most subproblems of one problem kept: each one is a part of one log line.
const MAX_SUBPROBLEMS: usize = 10;

/// The CA's directory (RFC 8555 §7.1.1). Only the URLs we use are required.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Directory {
    pub new_nonce: String,
    pub new_account: String,
    pub new_order: String,
    #[serde(default)]
    pub revoke_cert: Option<String>,
    #[serde(default)]
    pub key_change: Option<String>,
    /// RFC 9773: where renewal information is asked for.
    #[serde(default)]
    pub renewal_info: Option<String>,
    #[serde(default)]
    pub meta: DirectoryMeta,
}

impl Wire for Directory {
    fn check(&mut self) -> Result<(), String> {
        for url in [&self.new_nonce, &self.new_account, &self.new_order]
            .into_iter()
            .chain(&self.revoke_cert)
            .chain(&self.key_change)
            .chain(&self.renewal_info)
        {
            check_url(url)?;
        }
        let meta = &mut self.meta;
        if let Some(terms) = &mut meta.terms_of_service {
            clean(terms);
        }
        if let Some(website) = &mut meta.website {
            clean(website);
        }
        meta.caa_identities.iter_mut().for_each(clean);
        meta.profiles = std::mem::take(&mut meta.profiles)
            .into_iter()
            .map(|(mut name, mut description)| {
                clean(&mut name);
                clean(&mut description);
                (name, description)
            })
            .collect();
        Ok(())
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DirectoryMeta {
    #[serde(default)]
    pub terms_of_service: Option<String>,
    #[serde(default)]
    pub website: Option<String>,
    #[serde(default)]
    pub caa_identities: Vec<String>,
    #[serde(default)]
    pub external_account_required: bool,
    /// Certificate profiles the CA offers, by name, with their descriptions.
    #[serde(default)]
    pub profiles: std::collections::BTreeMap<String, String>,
}

/// RFC 9773 renewal information: when the CA wants the certificate renewed.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RenewalInfo {
    pub suggested_window: SuggestedWindow,
    #[serde(default, rename = "explanationURL")]
    pub explanation_url: Option<String>,
}

impl Wire for RenewalInfo {
    fn check(&mut self) -> Result<(), String> {
        let window = &mut self.suggested_window;
        for text in [&mut window.start, &mut window.end] {
            clean(text);
        }
        if let Some(url) = &mut self.explanation_url {
            clean(url);
        }
        Ok(())
    }
}

/// Any JSON the CA sends that is only stored (as JSON, which escapes every control
/// character), never shown: an account object.
impl Wire for serde_json::Value {
    fn check(&mut self) -> Result<(), String> {
        Ok(())
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct SuggestedWindow {
    pub start: String,
    pub end: String,
}

/// An RFC 3339 time (`2026-11-23T12:00:00Z`, fractions and offsets allowed) as Unix seconds.
/// None for anything else, a year before 1970 or after 9999, a field out of its range, or a
/// day the month does not have.
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    // A field of digits only, at most `max`.
    let field = |text: &str, max: i64| -> Option<i64> {
        if !text.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        text.parse().ok().filter(|n| *n <= max)
    };
    let (date, time) = text.split_once(['T', 't', ' '])?;
    let mut d = date.split('-');
    let year = d.next()?;
    let (y, m, day) = (
        field(year, 9999).filter(|_| year.len() == 4)?,
        field(d.next()?, 12)?,
        field(d.next()?, 31)?,
    );
    if m < 1 || day < 1 || y < 1970 {
        return None;
    }
    let (clock, offset) = match time.find(['Z', 'z', '+', '-']) {
        Some(i) => time.split_at(i),
        None => return None,
    };
    let mut c = clock.split(':');
    let (h, min) = (field(c.next()?, 23)?, field(c.next()?, 59)?);
    // Up to 60 for a leap second, with any fraction, which is dropped.
    let sec: f64 = c.next()?.parse().ok()?;
    if !(0.0..61.0).contains(&sec) {
        return None;
    }
    let offset_secs = match offset {
        "Z" | "z" => 0,
        o => {
            let sign = if o.starts_with('-') { -1 } else { 1 };
            let (oh, om) = o[1..].split_once(':')?;
            sign * (field(oh, 23)? * 3600 + field(om, 59)? * 60)
        }
    };
    let date = time::Date::from_calendar_date(
        i32::try_from(y).ok()?,
        time::Month::try_from(u8::try_from(m).ok()?).ok()?,
        u8::try_from(day).ok()?,
    )
    .ok()?;
    let days = (date - time::OffsetDateTime::UNIX_EPOCH.date()).whole_days();
    Some(days * 86_400 + h * 3600 + min * 60 + sec as i64 - offset_secs)
}

/// An identifier of an order or authorization (RFC 8555 §9.7.7, RFC 8738).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identifier {
    #[serde(rename = "type")]
    pub kind: String,
    pub value: String,
}

impl Identifier {
    /// A `dns` identifier, or an `ip` one when `name` is an IP address.
    pub fn for_name(name: &str) -> Identifier {
        let kind = if name.parse::<std::net::IpAddr>().is_ok() {
            "ip"
        } else {
            "dns"
        };
        Identifier {
            kind: kind.to_string(),
            value: name.to_string(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OrderStatus {
    Pending,
    Ready,
    Processing,
    Valid,
    Invalid,
    #[serde(other)]
    Unknown,
}

/// An order as the CA sent it. Only `super::order::Ordered` reads one from an answer, which
/// checks it against what was ordered.
#[derive(Debug, Clone, Deserialize)]
pub struct Order {
    pub status: OrderStatus,
    /// What the CA says the order is for.
    #[serde(default)]
    pub identifiers: Vec<Identifier>,
    #[serde(default)]
    pub authorizations: Vec<String>,
    pub finalize: String,
    #[serde(default)]
    pub certificate: Option<String>,
    #[serde(default)]
    pub error: Option<Problem>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthorizationStatus {
    Pending,
    Valid,
    Invalid,
    Deactivated,
    Expired,
    Revoked,
    #[serde(other)]
    Unknown,
}

/// An authorization as the CA sent it. Only `super::order::Ordered` reads one from an answer,
/// which checks that its identifier was ordered.
#[derive(Debug, Clone, Deserialize)]
pub struct Authorization {
    pub identifier: Identifier,
    pub status: AuthorizationStatus,
    #[serde(default)]
    pub challenges: Vec<Challenge>,
    #[serde(default)]
    pub wildcard: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Challenge {
    #[serde(rename = "type")]
    pub kind: String,
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// dns-persist-01 (draft-ietf-acme-dns-persist §3.1): the names the CA goes by, one of
    /// which the record must carry.
    #[serde(
        rename = "issuer-domain-names",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub issuer_domain_names: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Problem>,
}

/// A problem document (RFC 7807, RFC 8555 §6.7). Its `Display` is one log line.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Problem {
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub detail: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identifier: Option<Identifier>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subproblems: Vec<Problem>,
}

pub const ERROR_PREFIX: &str = "urn:ietf:params:acme:error:";

impl Problem {
    /// True when the problem's type is `urn:ietf:params:acme:error:<name>`.
    pub fn is(&self, name: &str) -> bool {
        self.kind
            .strip_prefix(ERROR_PREFIX)
            .is_some_and(|rest| rest == name)
    }

    /// Made fit to show, as every problem the CA sends is before anyone sees it: each text
    /// through [`shown`], at most [`MAX_SUBPROBLEMS`] subproblems (the last one saying how many
    /// more there were), none of them nested. Cleaning again changes nothing.
    pub fn clean(&mut self) {
        self.clean_at(0);
    }

    fn clean_at(&mut self, depth: usize) {
        clean(&mut self.kind);
        clean(&mut self.detail);
        if let Some(id) = &mut self.identifier {
            clean(&mut id.kind);
            clean(&mut id.value);
        }
        if depth > 0 {
            self.subproblems.clear();
        }
        let over = self.subproblems.len() > MAX_SUBPROBLEMS;
        let left_out = self.subproblems.len().saturating_sub(MAX_SUBPROBLEMS - 1);
        if over {
            self.subproblems.truncate(MAX_SUBPROBLEMS - 1);
        }
        for sub in &mut self.subproblems {
            sub.clean_at(depth + 1);
        }
        if over {
            self.subproblems.push(Problem {
                detail: format!("and {left_out} more"),
                ..Problem::default()
            });
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let detail = if self.detail.is_empty() {
            "no detail given"
        } else {
            &self.detail
        };
        write!(f, "{}", shown(detail))?;
        if !self.kind.is_empty() {
            write!(f, " ({})", shown(&self.kind))?;
        }
        for sub in &self.subproblems {
            write!(f, "; ")?;
            if let Some(id) = &sub.identifier {
                write!(f, "{}: ", shown(&id.value))?;
            }
            write!(f, "{sub}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_statuses_do_not_fail_parsing() {
        let order: Order = serde_json::from_str(
            r#"{"status":"somethingnew","finalize":"https://ca/f","authorizations":[]}"#,
        )
        .unwrap();
        assert_eq!(order.status, OrderStatus::Unknown);
    }

    #[test]
    fn rfc3339_times() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339("2025-01-02T04:00:00Z"), Some(1_735_790_400));
        assert_eq!(
            parse_rfc3339("2025-01-02T04:00:00.123456Z"),
            Some(1_735_790_400)
        );
        assert_eq!(
            parse_rfc3339("2025-01-02T06:00:00+02:00"),
            Some(1_735_790_400)
        );
        assert_eq!(
            parse_rfc3339("2025-01-02T02:30:00-01:30"),
            Some(1_735_790_400)
        );
        assert_eq!(parse_rfc3339("2025-13-02T04:00:00Z"), None);
        assert_eq!(parse_rfc3339("2024-02-29T00:00:00Z"), Some(1_709_164_800));
        assert_eq!(parse_rfc3339("yesterday"), None);
    }

    #[test]
    fn rfc3339_fields_out_of_range_are_unreadable_not_overflows() {
        // Found by fuzzing an ARI window: huge seconds overflowed the sum.
        let seconds = format!("2025-01-02T04:00:{}00Z", "3".repeat(94));
        assert_eq!(parse_rfc3339(&seconds), None);
        for bad in [
            "2025-01-02T99999999999999999:00:00Z",
            "99999999999999999-01-02T04:00:00Z",
            "2025-01-02T04:00:00+99999999999999999:00",
            "2025-01-02T04:00:inf",
            "2025-01-02T04:00:NaNZ",
            "2025-01-02T04:00:-1Z",
            "2025-01-02T24:00:00Z",
            "2025-01-02T04:60:00Z",
            "+2025-01-02T04:00:00Z",
            "20250-01-02T04:00:00Z",
            "2025-02-29T04:00:00Z",
            "2025-04-31T04:00:00Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
        assert_eq!(
            parse_rfc3339("9999-12-31T23:59:60.999Z"),
            Some(253_402_300_800)
        );
    }

    #[test]
    fn renewal_information_as_rfc_9773_shows_it() {
        let info: RenewalInfo = serde_json::from_str(
            r#"{"suggestedWindow": {"start": "2025-01-02T04:00:00Z", "end": "2025-01-03T04:00:00Z"},
                "explanationURL": "https://acme.example.com/docs/ari"}"#,
        )
        .unwrap();
        assert_eq!(
            parse_rfc3339(&info.suggested_window.start),
            Some(1_735_790_400)
        );
        assert_eq!(
            info.explanation_url.as_deref(),
            Some("https://acme.example.com/docs/ari")
        );
    }

    #[test]
    fn identifiers_for_ip_addresses() {
        assert_eq!(Identifier::for_name("192.0.2.1").kind, "ip");
        assert_eq!(Identifier::for_name("2001:db8::1").kind, "ip");
        assert_eq!(Identifier::for_name("example.org").kind, "dns");
    }

    #[test]
    fn problem_prints_detail_type_and_subproblems_on_one_line() {
        let p: Problem = serde_json::from_str(
            r#"{"type":"urn:ietf:params:acme:error:rejectedIdentifier","detail":"some names were refused",
               "subproblems":[{"type":"urn:ietf:params:acme:error:caa","detail":"CAA forbids",
               "identifier":{"type":"dns","value":"b.example"}}]}"#,
        )
        .unwrap();
        assert!(p.is("rejectedIdentifier"));
        assert!(!p.is("caa"));
        assert_eq!(
            p.to_string(),
            "some names were refused (urn:ietf:params:acme:error:rejectedIdentifier); \
             b.example: CAA forbids (urn:ietf:params:acme:error:caa)"
        );
    }

    #[test]
    fn a_problem_is_shown_on_one_line_whatever_the_ca_wrote() {
        // Found by fuzzing: control characters went into the line as they came, so a CA could
        // start a new log line (with its own <N> journal priority) or send terminal escapes.
        let p: Problem = serde_json::from_str(
            r#"{"type":"urn:ietf:params:acme:error:malformed\u0000","detail":"bad\n<0>forged\r\u001b[2J",
               "subproblems":[{"detail":"x\u0085y","identifier":{"type":"dns","value":"a\nb"}}]}"#,
        )
        .unwrap();
        assert_eq!(
            p.to_string(),
            r"bad\n<0>forged\r\u{1b}[2J (urn:ietf:params:acme:error:malformed\0); a\nb: x\u{85}y"
        );
    }

    #[test]
    fn a_problem_is_cleaned_once_with_a_bounded_number_of_subproblems() {
        let sub = r#"{"detail":"d\n<0>x","identifier":{"type":"dns","value":"v\u001b"},
                      "subproblems":[{"detail":"nested"}]}"#;
        let text = format!(
            r#"{{"type":"t\r","detail":"{}","subproblems":[{}]}}"#,
            "y".repeat(5000),
            vec![sub; 25].join(",")
        );
        let mut p: Problem = serde_json::from_str(&text).unwrap();
        p.clean();
        assert_eq!(p.kind, r"t\r");
        assert!(p.detail.len() <= crate::acme::text::MAX_SHOWN);
        assert_eq!(p.subproblems.len(), MAX_SUBPROBLEMS);
        assert_eq!(p.subproblems[0].detail, r"d\n<0>x");
        assert_eq!(
            p.subproblems[0].identifier.as_ref().unwrap().value,
            r"v\u{1b}"
        );
        assert!(p.subproblems[0].subproblems.is_empty());
        assert_eq!(p.subproblems[MAX_SUBPROBLEMS - 1].detail, "and 16 more");
        assert!(!p.to_string().contains(char::is_control));
        let mut again = p.clone();
        again.clean();
        assert_eq!(again.to_string(), p.to_string());
    }

    #[test]
    fn a_directory_with_a_url_that_is_none_is_refused_and_its_texts_are_cleaned() {
        let mut d: Directory = serde_json::from_str(
            r#"{"newNonce":"https://ca/n","newAccount":"https://ca/a","newOrder":"https://ca/o",
               "meta":{"termsOfService":"https://ca/tos\n<0>x\u001b[2J","website":"w\r",
                       "caaIdentities":["ca\u0000"],"profiles":{"p\n":"d\u001b"}}}"#,
        )
        .unwrap();
        d.check().unwrap();
        assert_eq!(
            d.meta.terms_of_service.as_deref(),
            Some(r"https://ca/tos\n<0>x\u{1b}[2J")
        );
        assert_eq!(d.meta.website.as_deref(), Some(r"w\r"));
        assert_eq!(d.meta.caa_identities, [r"ca\0"]);
        assert_eq!(
            d.meta.profiles.get(r"p\n").map(String::as_str),
            Some(r"d\u{1b}")
        );
        d.new_order = "https://ca/o\n<0>".into();
        assert!(d.check().is_err());
    }
}
