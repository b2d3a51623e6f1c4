//! The HTTP headers ACME reads, parsed: `Link`, `Replay-Nonce`, `Retry-After` and `Date`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A `Link` header entry (RFC 8288): `<url>;rel="alternate"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub rel: String,
    pub url: String,
}

/// Parses one `Link` header value (RFC 8288 §3), which may hold several comma-separated
/// links: `<url>; rel="alternate"`. Commas and semicolons inside `<...>` or a quoted string
/// are part of it; a `rel` with several relation types (`rel="up alternate"`) gives a link
/// for each, lower-cased; links without `rel` are left out.
pub fn parse_links(value: &str) -> Vec<Link> {
    let mut links = Vec::new();
    let mut rest = value;
    while let Some(start) = rest.find('<') {
        let Some((url, after)) = rest[start + 1..].split_once('>') else {
            break;
        };
        let (params, next) = link_params(after);
        // RFC 8288 §3.3: a second rel is ignored.
        if let Some((_, rel)) = params.iter().find(|(name, _)| name == "rel") {
            for rel in rel.split_whitespace() {
                links.push(Link {
                    rel: rel.to_ascii_lowercase(),
                    url: url.to_string(),
                });
            }
        }
        rest = next;
    }
    links
}

/// The `; name=value` parameters after a link's `<url>`, values plain or quoted, names
/// lower-cased, up to the comma that ends the link; and what follows that comma.
fn link_params(mut s: &str) -> (Vec<(String, String)>, &str) {
    let mut params = Vec::new();
    loop {
        s = s.trim_start();
        let Some(param) = s.strip_prefix(';') else {
            // The comma that ends this link, or something that is no parameter: skip it.
            let next = s.split_once(',').map_or("", |(_, next)| next);
            return (params, next);
        };
        let param = param.trim_start();
        let end = param
            .find(|c: char| c == '=' || c == ';' || c == ',' || c.is_whitespace())
            .unwrap_or(param.len());
        let name = param[..end].to_ascii_lowercase();
        let mut value = String::new();
        s = param[end..].trim_start();
        if let Some(v) = s.strip_prefix('=') {
            let v = v.trim_start();
            if let Some(quoted) = v.strip_prefix('"') {
                let mut chars = quoted.char_indices();
                s = "";
                while let Some((i, c)) = chars.next() {
                    match c {
                        '"' => {
                            s = &quoted[i + 1..];
                            break;
                        }
                        '\\' => value.extend(chars.next().map(|(_, c)| c)),
                        c => value.push(c),
                    }
                }
            } else {
                let end = v
                    .find(|c: char| c == ';' || c == ',' || c.is_whitespace())
                    .unwrap_or(v.len());
                value.push_str(&v[..end]);
                s = &v[end..];
            }
        }
        params.push((name, value));
    }
}

/// A `Replay-Nonce` value: base64url without padding (RFC 8555 §6.5.1). None for anything
/// else, which the RFC says to ignore rather than send back.
pub fn parse_replay_nonce(value: &str) -> Option<&str> {
    let value = value.trim();
    let ok = !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    ok.then_some(value)
}

/// `Retry-After` as delta-seconds or as an IMF-fixdate (RFC 9110 §10.2.3), relative to `now`.
/// A date in the past is zero; anything else unreadable is None. Capped at one day.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let cap = Duration::from_secs(86_400);
    if let Ok(secs) = value.trim().parse::<u64>() {
        return Some(Duration::from_secs(secs).min(cap));
    }
    let at = parse_http_date(value.trim())?;
    let now = now.duration_since(UNIX_EPOCH).ok()?.as_secs();
    let at = u64::try_from(at).unwrap_or(0);
    Some(Duration::from_secs(at.saturating_sub(now)).min(cap))
}

/// A `Date` header (an IMF-fixdate) as Unix seconds; None when unreadable or before 1970.
pub fn parse_date(value: &str) -> Option<u64> {
    parse_http_date(value.trim()).and_then(|d| u64::try_from(d).ok())
}

/// `Sun, 06 Nov 1994 08:49:37 GMT` to Unix seconds (negative before 1970). A day the month
/// does not have (`31 Apr`) is unreadable.
fn parse_http_date(s: &str) -> Option<i64> {
    use time::Month::*;
    let mut it = s.split_whitespace();
    let _weekday = it.next()?;
    let day: u8 = it.next()?.parse().ok()?;
    let month = it.next()?;
    let month = [
        ("Jan", January),
        ("Feb", February),
        ("Mar", March),
        ("Apr", April),
        ("May", May),
        ("Jun", June),
        ("Jul", July),
        ("Aug", August),
        ("Sep", September),
        ("Oct", October),
        ("Nov", November),
        ("Dec", December),
    ]
    .into_iter()
    .find_map(|(name, m)| (name == month).then_some(m))?;
    let year = it.next()?;
    if year.len() != 4 || !year.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let year: i32 = year.parse().ok()?;
    let mut hms = it.next()?.split(':').map(|p| p.parse::<i64>().ok());
    let (h, m, sec) = (hms.next()??, hms.next()??, hms.next()??);
    let bad = |v: i64, max: i64| !(0..=max).contains(&v);
    if it.next()? != "GMT" || bad(h, 23) || bad(m, 59) || bad(sec, 60) {
        return None;
    }
    let date = time::Date::from_calendar_date(year, month, day).ok()?;
    let days = (date - time::OffsetDateTime::UNIX_EPOCH.date()).whole_days();
    Some(days * 86_400 + h * 3600 + m * 60 + sec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_seconds_and_dates() {
        let now = UNIX_EPOCH + Duration::from_secs(784_111_777); // Sun, 06 Nov 1994 08:49:37 GMT
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:51:37 GMT", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(
            parse_retry_after("9999999", now),
            Some(Duration::from_secs(86_400))
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(
            parse_date(" Thu, 29 Feb 2024 00:00:00 GMT"),
            Some(1_709_164_800)
        );
        assert_eq!(parse_date("Wed, 31 Dec 1969 23:59:59 GMT"), None);
        assert_eq!(
            parse_retry_after("Sun, 06 Foo 1994 08:51:37 GMT", now),
            None
        );
    }

    #[test]
    fn retry_after_dates_before_1970_are_past_and_odd_years_unreadable() {
        // Found by fuzzing: a year before 1970 overflowed the day count.
        let now = UNIX_EPOCH + Duration::from_secs(784_111_777);
        for past in [
            "Sun, 06 Nov 1676 08:49:37 GMT",
            "Sat, 01 Jan 0000 00:00:00 GMT",
            "Wed, 31 Dec 1969 23:59:59 GMT",
        ] {
            assert_eq!(parse_retry_after(past, now), Some(Duration::ZERO), "{past}");
        }
        for odd in [
            "Sun, 06 Nov 99999999999999 08:49:37 GMT",
            "Sun, 06 Nov 94 08:49:37 GMT",
            "Sun, 06 Nov +994 08:49:37 GMT",
            "Sun, 06 Nov 1994 -8:49:37 GMT",
            "Thu, 31 Apr 2025 08:49:37 GMT",
            "Sun, 29 Feb 2026 08:49:37 GMT",
            "Sun, 00 Nov 1994 08:49:37 GMT",
        ] {
            assert_eq!(parse_retry_after(odd, now), None, "{odd}");
        }
    }

    #[test]
    fn links_with_several_rels() {
        let links = parse_links(
            r#"<https://ca/dir>;rel="index", <https://ca/cert/1/alt/1>; rel="alternate""#,
        );
        assert_eq!(
            links,
            vec![
                Link {
                    rel: "index".into(),
                    url: "https://ca/dir".into()
                },
                Link {
                    rel: "alternate".into(),
                    url: "https://ca/cert/1/alt/1".into()
                },
            ]
        );
    }

    #[test]
    fn links_keep_commas_and_quotes_where_rfc_8288_puts_them() {
        let link = |rel: &str, url: &str| Link {
            rel: rel.into(),
            url: url.into(),
        };
        // Found by fuzzing: the rest of the parameter after a quoted rel became part of the
        // relation type, quote and all.
        assert_eq!(
            parse_links(
                "<https://127.0.5.1:14950/dib>;rel=\"inde<https:am\0_ttps://exax\"p_//example.com/"
            ),
            [link(
                "inde<https:am\0_ttps://exax",
                "https://127.0.5.1:14950/dib"
            )]
        );
        assert_eq!(
            parse_links(r#"<https://ca/cert/1,2>;rel="alternate""#),
            [link("alternate", "https://ca/cert/1,2")]
        );
        assert_eq!(
            parse_links(
                r#"<https://ca/a>; title="x, <y>; rel=no"; REL="UP alternate"; rel=index, <https://ca/b>;rel=index"#
            ),
            [
                link("up", "https://ca/a"),
                link("alternate", "https://ca/a"),
                link("index", "https://ca/b")
            ]
        );
        assert_eq!(
            parse_links(r#"<https://ca/q>; rel="a\"b""#),
            [link("a\"b", "https://ca/q")]
        );
        assert_eq!(
            parse_links("<https://ca/none>, garbage, <https://ca/c>;rel=up"),
            [link("up", "https://ca/c")]
        );
    }

    #[test]
    fn replay_nonces_are_base64url_or_ignored() {
        assert_eq!(
            parse_replay_nonce(" oFvnlFP1wIhRlYS2jTaXbA "),
            Some("oFvnlFP1wIhRlYS2jTaXbA")
        );
        assert_eq!(parse_replay_nonce("a-b_C9"), Some("a-b_C9"));
        for bad in ["", " ", "abc=", "a b", "a+b/c", "\"nonce\"", "nonce,nonce"] {
            assert_eq!(parse_replay_nonce(bad), None, "{bad:?}");
        }
    }
}
