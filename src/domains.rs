//! domains.txt: one certificate per line, its names, and the alias its folder is named after.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use crate::error::{Error, Result};
use crate::trust;

/// The most names one certificate may have. Public CAs issue at most 100 (Let's Encrypt,
/// ZeroSSL, Google Trust Services); the bound leaves room for private CAs and refuses a line
/// that no CA would sign before anything is asked or written.
pub const MAX_NAMES: usize = 1000;

/// One certificate as a domains.txt line asks for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertLine {
    /// The folder name under `certs/`: the alias, else the first name.
    pub name: String,
    /// Every name, first one first, lower-cased, duplicates removed.
    pub names: Vec<String>,
    /// `file:line`, for messages.
    pub origin: String,
}

/// Reads a domains.txt file. A missing file is an error that says how to create one; one
/// that others than root or we could change is refused ([`trust::check`]).
pub fn read(path: &Path) -> Result<Vec<CertLine>> {
    if let Err(e) = std::fs::metadata(path) {
        return Err(Error::Config(format!(
            "{}: cannot read domains.txt: {e}; create it with one certificate per line",
            path.display()
        )));
    }
    let text = trust::read_to_string(path, "domains.txt")?;
    parse(&text, &path.display().to_string())
}

/// Parses domains.txt text the way dehydrated reads it: case folded, `#` lines skipped,
/// `name... > alias` or `name...>alias`. Every error names `file:line` and what to change.
pub fn parse(text: &str, file: &str) -> Result<Vec<CertLine>> {
    let mut certs: Vec<CertLine> = Vec::new();
    let mut seen: HashMap<String, String> = HashMap::new();
    for (i, raw) in text.lines().enumerate() {
        let origin = format!("{file}:{}", i + 1);
        let line = raw.trim().to_lowercase();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let cert = parse_line(&line, &origin)?;
        if let Some(first) = seen.insert(cert.name.clone(), origin.clone()) {
            return Err(Error::Config(format!(
                "{origin}: certificate name {} is already used on {first}; give one of them \
                 another alias with \"> alias\"",
                cert.name
            )));
        }
        certs.push(cert);
    }
    Ok(certs)
}

/// One certificate from `--domain` names and an optional `--alias`.
pub fn from_args(names: &[String], alias: Option<&str>) -> Result<CertLine> {
    let mut line = names.join(" ").to_lowercase();
    if let Some(alias) = alias {
        line.push_str(" > ");
        line.push_str(alias);
    }
    parse_line(&line, "--domain")
}

fn parse_line(line: &str, origin: &str) -> Result<CertLine> {
    let bad = |msg: String| Error::Config(format!("{origin}: {msg}"));
    let (names_part, alias) = match line.split_once('>') {
        None => (line, None),
        Some((names, alias)) => {
            let alias = alias.trim();
            if alias.contains('>') {
                return Err(bad("only one \"> alias\" is allowed per line".into()));
            }
            if alias.is_empty() || alias.contains(char::is_whitespace) {
                return Err(bad(
                    "\">\" must be followed by one alias, the certificate's folder name".into(),
                ));
            }
            (names, Some(alias.to_string()))
        }
    };
    let mut names: Vec<String> = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    for word in names_part.split_whitespace() {
        let name = identifier(word).map_err(|msg| bad(format!("{word}: {msg}")))?;
        if seen.insert(name.clone()) {
            if names.len() == MAX_NAMES {
                return Err(bad(format!(
                    "more than {MAX_NAMES} names for one certificate, more than any CA \
                     signs (public CAs take at most 100): split the line"
                )));
            }
            names.push(name);
        }
    }
    let Some(first) = names.first() else {
        return Err(bad("an alias without any name".into()));
    };
    let name = match alias {
        Some(alias) => {
            check_alias(&alias).map_err(|msg| bad(format!("alias {alias}: {msg}")))?;
            alias
        }
        None if first.starts_with("*.") => {
            return Err(bad(format!(
                "{first} is a wildcard, which cannot name a folder: add \"> alias\" at the end \
                 of the line (for example \"> star_{}\")",
                &first[2..]
            )));
        }
        None => first.clone(),
    };
    Ok(CertLine {
        name,
        names,
        origin: origin.to_string(),
    })
}

/// An alias becomes a folder name: one path component, nothing hidden.
fn check_alias(alias: &str) -> std::result::Result<(), String> {
    if alias.starts_with('.') || alias.contains('/') || alias.contains('\0') {
        return Err("must be a plain folder name: no \"/\", not starting with \".\"".into());
    }
    if alias.starts_with("*.") {
        return Err("an alias cannot be a wildcard: it names a folder".into());
    }
    Ok(())
}

/// A name as the certificate will carry it: a checked DNS name, or for `ip:ADDRESS` (RFC 8738)
/// the address in its normal form (`ip:2001:DB8:0::1` is `2001:db8::1`).
fn identifier(word: &str) -> std::result::Result<String, String> {
    if let Some(ip) = word.strip_prefix("ip:") {
        return ip
            .parse::<std::net::IpAddr>()
            .map(|ip| ip.to_string())
            .map_err(|_| "is not an IPv4 or IPv6 address after \"ip:\"".to_string());
    }
    if word.parse::<std::net::IpAddr>().is_ok() {
        return Err(format!(
            "an IP address needs \"ip:\" in front (ip:{word}), so that it is not read as a name"
        ));
    }
    check_name(word)?;
    Ok(word.to_string())
}

/// A DNS name as certificates carry it: LDH labels of 1 to 63 characters, at most 253 in all,
/// an optional `*.` first label, no trailing dot.
pub fn check_name(name: &str) -> std::result::Result<(), String> {
    if !name.is_ascii() {
        return Err(
            "has non-ASCII characters: write an internationalised name in its \
                    punycode form (xn--...)"
                .into(),
        );
    }
    if name.len() > 253 {
        return Err(format!(
            "is {} characters long; at most 253 are allowed",
            name.len()
        ));
    }
    let host = name.strip_prefix("*.").unwrap_or(name);
    if host.is_empty() {
        return Err("a wildcard needs a domain after \"*.\"".into());
    }
    for label in host.split('.') {
        if label.is_empty() {
            return Err("has an empty label (two dots in a row, or a dot at an end)".into());
        }
        if label.len() > 63 {
            return Err(format!(
                "label {label} is {} characters long; at most 63 are allowed",
                label.len()
            ));
        }
        if let Some(c) = label
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
        {
            return Err(if c == '*' {
                "a wildcard is only allowed as the whole first label (*.example.org)".into()
            } else {
                format!("{c:?} is not allowed: only letters, digits, \"-\" and \".\"")
            });
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!("label {label} starts or ends with \"-\""));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        parse(text, "domains.txt").unwrap_err().to_string()
    }

    #[test]
    fn lines_aliases_and_comments() {
        let certs = parse(
            "# comment\n\n  Example.ORG www.example.org\nmail.example.org>mail\n\
             *.example.net example.net > star_example_net\na.example  a.example\n",
            "domains.txt",
        )
        .unwrap();
        let got: Vec<(&str, Vec<&str>, &str)> = certs
            .iter()
            .map(|c| {
                (
                    c.name.as_str(),
                    c.names.iter().map(String::as_str).collect(),
                    c.origin.as_str(),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    "example.org",
                    vec!["example.org", "www.example.org"],
                    "domains.txt:3"
                ),
                ("mail", vec!["mail.example.org"], "domains.txt:4"),
                (
                    "star_example_net",
                    vec!["*.example.net", "example.net"],
                    "domains.txt:5"
                ),
                ("a.example", vec!["a.example"], "domains.txt:6"),
            ]
        );
    }

    #[test]
    fn bad_lines_name_the_line_and_the_fix() {
        assert!(
            err("ok.example\nbad_name.example\n")
                .starts_with("domains.txt:2: bad_name.example: '_' is not allowed")
        );
        assert!(err("*.example.org\n").contains("domains.txt:1: *.example.org is a wildcard"));
        assert!(err("a.example > x > y\n").contains("only one"));
        assert!(err("> alias\n").contains("an alias without any name"));
        assert!(err("a.example > ../etc\n").contains("plain folder name"));
        assert!(err("a..example\n").contains("empty label"));
        assert!(err("-a.example\n").contains("starts or ends"));
        assert!(err("a.*.example\n").contains("whole first label"));
        assert!(err("bücher.example\n").contains("punycode"));
        assert!(err(&format!("{}.example\n", "a".repeat(64))).contains("at most 63"));
        assert!(err("a.example\nb.example > a.example\n").contains(
            "domains.txt:2: certificate name a.example is already used on domains.txt:1"
        ));
    }

    #[test]
    fn ip_addresses_need_their_prefix_and_are_normalised() {
        let certs = parse(
            "ip:192.0.2.1 ip:2001:DB8:0:0::1 > both\nip:198.51.100.7\n",
            "domains.txt",
        )
        .unwrap();
        assert_eq!(certs[0].names, ["192.0.2.1", "2001:db8::1"]);
        assert_eq!(certs[0].name, "both");
        assert_eq!(certs[1].name, "198.51.100.7");
        assert!(err("192.0.2.1\n").contains("needs \"ip:\" in front (ip:192.0.2.1)"));
        assert!(err("ip:192.0.2.300\n").contains("not an IPv4 or IPv6 address"));
        assert!(err("ip:example.org\n").contains("not an IPv4 or IPv6 address"));
    }

    #[test]
    fn a_line_has_at_most_max_names_different_names() {
        let line = |n: usize| {
            let mut text: String = (0..n).map(|i| format!("n{i}.example ")).collect();
            // Repeats do not count.
            text.push_str("n0.example N1.example\n");
            text
        };
        let certs = parse(&line(MAX_NAMES), "domains.txt").unwrap();
        assert_eq!(certs[0].names.len(), MAX_NAMES);
        assert_eq!(
            certs[0].names[MAX_NAMES - 1],
            format!("n{}.example", MAX_NAMES - 1)
        );
        assert!(err(&line(MAX_NAMES + 1)).starts_with(&format!(
            "domains.txt:1: more than {MAX_NAMES} names for one certificate"
        )));
    }

    #[test]
    fn domain_flags_make_one_certificate() {
        let c = from_args(&["A.example".into(), "b.example".into()], Some("both")).unwrap();
        assert_eq!(c.name, "both");
        assert_eq!(c.names, ["a.example", "b.example"]);
    }
}
