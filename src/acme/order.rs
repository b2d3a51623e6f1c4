//! One order's identifiers as they were sent, and every answer about that order checked
//! against them: an order or authorization is only ever read from an answer here.

use std::net::IpAddr;

use super::error::Result;
use super::text::{check_issuer_domain_names, check_token, check_type, check_url, shown};
use super::transport::Response;
use super::wire::{Authorization, Identifier, Order};

/// The identifiers of one newOrder, as sent.
#[derive(Debug, Clone)]
pub struct Ordered {
    identifiers: Vec<Identifier>,
}

impl Ordered {
    /// A `dns` identifier for each name (`*.example.org` as it is), an `ip` one for an address.
    pub fn new(names: &[String]) -> Ordered {
        Ordered {
            identifiers: names.iter().map(|n| Identifier::for_name(n)).collect(),
        }
    }

    /// What newOrder carries.
    pub fn identifiers(&self) -> &[Identifier] {
        &self.identifiers
    }

    /// The order in `response`, refused unless every URL in it is one, every identifier it
    /// names was ordered, and it has no more authorizations than identifiers were ordered; so
    /// no authorization of an order that was not asked for is ever fetched.
    pub fn order(&self, response: &Response) -> Result<Order> {
        let mut order: Order = response.parse()?;
        self.check_order(&mut order)
            .map_err(|msg| response.refused(msg))?;
        Ok(order)
    }

    /// The authorization in `response`, refused unless its identifier is one that was ordered
    /// (a wildcard one as `*.` and its base name, RFC 8555 §7.1.4), and its challenges have
    /// types, URLs and tokens that fit their grammars. Its identifier is then spelt as it was
    /// ordered (the base name for a wildcard), and so is the only name later steps see: a file
    /// name under ALPNCERTDIR, a hook's DOMAIN.
    pub fn authorization(&self, response: &Response) -> Result<Authorization> {
        let mut authz: Authorization = response.parse()?;
        self.check_authorization(&mut authz)
            .map_err(|msg| response.refused(msg))?;
        Ok(authz)
    }

    fn check_order(&self, order: &mut Order) -> std::result::Result<(), String> {
        check_url(&order.finalize)?;
        for url in order.certificate.iter().chain(&order.authorizations) {
            check_url(url)?;
        }
        if let Some(problem) = &mut order.error {
            problem.clean();
        }
        for id in &order.identifiers {
            if self.ordered(id, false).is_none() {
                return Err(self.not_ordered("an order", id, false));
            }
        }
        if order.identifiers.len() > self.identifiers.len() {
            return Err(format!(
                "the order names {} identifiers for {} ordered",
                order.identifiers.len(),
                self.identifiers.len()
            ));
        }
        if order.authorizations.len() > self.identifiers.len() {
            return Err(format!(
                "the order has {} authorizations for {} identifiers ordered; none was fetched",
                order.authorizations.len(),
                self.identifiers.len()
            ));
        }
        Ok(())
    }

    fn check_authorization(&self, authz: &mut Authorization) -> std::result::Result<(), String> {
        let found = self
            .ordered(&authz.identifier, authz.wildcard)
            .filter(|_| !authz.identifier.value.starts_with("*."));
        let Some(ordered) = found else {
            return Err(self.not_ordered("an authorization", &authz.identifier, authz.wildcard));
        };
        let base = ordered.value.strip_prefix("*.").unwrap_or(&ordered.value);
        authz.identifier = Identifier {
            kind: ordered.kind.clone(),
            value: base.to_string(),
        };
        for challenge in &mut authz.challenges {
            check_type(&challenge.kind)?;
            check_url(&challenge.url)?;
            if let Some(token) = &challenge.token {
                check_token(token)?;
            }
            match &challenge.issuer_domain_names {
                Some(names) => check_issuer_domain_names(names)?,
                None if challenge.kind == "dns-persist-01" => {
                    return Err(
                        "the CA sent a dns-persist-01 challenge without issuer-domain-names".into(),
                    );
                }
                None => {}
            }
            if let Some(problem) = &mut challenge.error {
                problem.clean();
            }
        }
        Ok(())
    }

    /// The identifier ordered that `id` (with `wildcard` set, `*.` and its value) stands for:
    /// the same type, and for `dns` the same name in any case (DNS names are not case
    /// sensitive), for `ip` the same address in any spelling.
    fn ordered(&self, id: &Identifier, wildcard: bool) -> Option<&Identifier> {
        if wildcard && id.value.starts_with("*.") {
            // RFC 8555 §7.1.4: a wildcard authorization names the base name.
            return None;
        }
        let value = if wildcard {
            format!("*.{}", id.value)
        } else {
            id.value.clone()
        };
        self.identifiers.iter().find(|o| {
            o.kind == id.kind
                && match o.kind.as_str() {
                    "dns" => o.value.eq_ignore_ascii_case(&value),
                    "ip" => matches!(
                        (o.value.parse::<IpAddr>(), value.parse::<IpAddr>()),
                        (Ok(a), Ok(b)) if a == b
                    ),
                    _ => false,
                }
        })
    }

    fn not_ordered(&self, what: &str, id: &Identifier, wildcard: bool) -> String {
        let ordered: Vec<&str> = self.identifiers.iter().map(|i| i.value.as_str()).collect();
        format!(
            "the CA sent {what} for {} \"{}{}\", which was not ordered (ordered: {})",
            shown(&id.kind),
            if wildcard { "*." } else { "" },
            shown(&id.value),
            ordered.join(", ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ordered() -> Ordered {
        Ordered::new(&[
            "example.org".to_string(),
            "*.wild.example".to_string(),
            "2001:db8::1".to_string(),
        ])
    }

    fn authz(kind: &str, value: &str, wildcard: bool) -> Authorization {
        serde_json::from_value(serde_json::json!({
            "identifier": {"type": kind, "value": value},
            "status": "pending",
            "wildcard": wildcard,
            "challenges": [{"type": "http-01", "url": "https://ca/c/1", "token": "tok_en-1"}],
        }))
        .unwrap()
    }

    #[test]
    fn an_authorization_is_taken_only_for_an_identifier_ordered() {
        let o = ordered();
        for (kind, value, wildcard, spelt) in [
            ("dns", "example.org", false, "example.org"),
            ("dns", "EXAMPLE.org", false, "example.org"),
            ("dns", "wild.example", true, "wild.example"),
            ("dns", "Wild.Example", true, "wild.example"),
            ("ip", "2001:DB8:0::1", false, "2001:db8::1"),
        ] {
            let mut a = authz(kind, value, wildcard);
            o.check_authorization(&mut a)
                .unwrap_or_else(|e| panic!("{value}: {e}"));
            assert_eq!(a.identifier.value, spelt);
        }
        for (kind, value, wildcard) in [
            ("dns", "other.example", false),
            ("dns", "/x/victim", false),
            ("dns", "../../etc/x", false),
            ("dns", "example.org", true),
            ("dns", "wild.example", false),
            ("dns", "*.wild.example", false),
            ("dns", "*.wild.example", true),
            ("dns", "x.wild.example", false),
            ("ip", "example.org", false),
            ("dns", "2001:db8::1", false),
            ("ip", "2001:db8::2", false),
            ("email", "example.org", false),
        ] {
            let mut a = authz(kind, value, wildcard);
            assert!(
                o.check_authorization(&mut a).is_err(),
                "{kind} {value} {wildcard}"
            );
        }
        let err = o
            .check_authorization(&mut authz("dns", "x\n<0>\u{1b}[2J", false))
            .unwrap_err();
        assert_eq!(
            err,
            "the CA sent an authorization for dns \"x\\n<0>\\u{1b}[2J\", which was not ordered \
             (ordered: example.org, *.wild.example, 2001:db8::1)"
        );
    }

    #[test]
    fn an_authorization_with_a_challenge_out_of_grammar_is_refused() {
        let o = ordered();
        for (field, value) in [
            ("type", "x\n<0>"),
            ("url", "https://ca/c 1"),
            ("token", "../x"),
        ] {
            let mut a = authz("dns", "example.org", false);
            let mut challenge = serde_json::to_value(&a.challenges[0]).unwrap();
            challenge[field] = value.into();
            a.challenges[0] = serde_json::from_value(challenge).unwrap();
            assert!(o.check_authorization(&mut a).is_err(), "{field}");
        }
    }

    #[test]
    fn a_dns_persist_challenge_names_one_to_ten_issuers_as_the_draft_spells_them() {
        let o = ordered();
        let with = |names: serde_json::Value| {
            let mut a = authz("dns", "example.org", false);
            a.challenges = vec![
                serde_json::from_value(serde_json::json!({
                    "type": "dns-persist-01", "url": "https://ca/c/2", "status": "pending",
                    "issuer-domain-names": names,
                }))
                .unwrap(),
            ];
            o.clone().check_authorization(&mut a)
        };
        assert!(with(serde_json::json!(["ca.example", "authority.example"])).is_ok());
        let eleven: Vec<String> = (0..11).map(|i| format!("ca{i}.example")).collect();
        for bad in [
            serde_json::json!([]),
            serde_json::json!(eleven),
            serde_json::json!(["CA.example"]),
            serde_json::json!(["ca.example."]),
            serde_json::json!(["ca..example"]),
            serde_json::json!(["ca.example; accounturi=x"]),
            serde_json::json!([format!("{}.example", "a".repeat(250))]),
            serde_json::Value::Null,
        ] {
            assert!(with(bad.clone()).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_order_has_no_more_authorizations_than_identifiers_and_none_unordered() {
        let o = ordered();
        let order = |identifiers: serde_json::Value, n: usize| -> Order {
            serde_json::from_value(serde_json::json!({
                "status": "pending",
                "identifiers": identifiers,
                "authorizations": (0..n).map(|i| format!("https://ca/authz/{i}")).collect::<Vec<_>>(),
                "finalize": "https://ca/finalize",
            }))
            .unwrap()
        };
        let sent = serde_json::to_value(o.identifiers()).unwrap();
        assert!(o.check_order(&mut order(sent.clone(), 3)).is_ok());
        assert!(o.check_order(&mut order(serde_json::json!([]), 2)).is_ok());
        let err = o.check_order(&mut order(sent, 3000)).unwrap_err();
        assert!(
            err.contains("3000 authorizations for 3 identifiers"),
            "{err}"
        );
        let other = serde_json::json!([{"type": "dns", "value": "other.example"}]);
        assert!(o.check_order(&mut order(other, 1)).is_err());
    }
}
