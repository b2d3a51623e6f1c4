//! What the CA says, made fit to use: the one rendering of outside text for a log line or a
//! message, the bounded text handed to hooks, and the grammars of what becomes a name or a
//! request's target.
//!
//! Names, types, tokens and URLs have a grammar and anything else is refused; free text (a
//! problem's detail, `termsOfService`, an `explanationURL`) is shown with [`shown`], never as
//! it came.

use std::borrow::Cow;
use std::fmt::Write;

/// The most of one outside text a message shows, in bytes; the rest is cut off with `…`.
pub const MAX_SHOWN: usize = 1024;
/// The longest URL taken from the CA.
pub const MAX_URL: usize = 2048;
/// The longest challenge token taken from the CA (RFC 8555 asks for at least 128 bits, which
/// is 22 characters).
pub const MAX_TOKEN: usize = 256;
/// The longest challenge or identifier type taken from the CA.
const MAX_TYPE: usize = 64;

/// True for what must not reach a terminal or a log line as it is: control characters (line
/// breaks, escape, NUL, C1), the Unicode line and paragraph separators, and the invisible
/// characters that reorder or hide text (bidirectional overrides, zero-width ones).
fn hidden(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2060}'..='\u{2069}' | '\u{feff}'
        )
}

/// `text` from outside (the CA, a certificate it signed) as it may appear in a log line or a
/// message: each control or invisible character written as a visible escape (`\n`, `\0`,
/// `\u{1b}`), so that it stays on one line, cannot forge another line or its journal priority
/// and cannot steer a terminal; at most [`MAX_SHOWN`] bytes, the rest cut off with `…`.
/// Borrowed when there was nothing to change.
pub fn shown(text: &str) -> Cow<'_, str> {
    if text.len() <= MAX_SHOWN && !text.contains(hidden) {
        return text.into();
    }
    let mut out = String::with_capacity(text.len().min(MAX_SHOWN + 8));
    for c in text.chars() {
        let at = out.len();
        if hidden(c) {
            let _ = write!(out, "{}", c.escape_debug());
        } else {
            out.push(c);
        }
        if out.len() > MAX_SHOWN - '…'.len_utf8() {
            out.truncate(at);
            out.push('…');
            break;
        }
    }
    out.into()
}

/// `text` as a hook argument: NUL and every control character but line break and tab written
/// as visible escapes (a NUL cannot be passed to a program at all), at most `max` bytes with
/// the rest cut off with `…` (Linux refuses to start a program with one argument over
/// 128 KiB).
pub fn for_argument(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max));
    for c in text.chars() {
        let at = out.len();
        if hidden(c) && c != '\n' && c != '\t' {
            let _ = write!(out, "{}", c.escape_debug());
        } else {
            out.push(c);
        }
        if out.len() > max.saturating_sub('…'.len_utf8()) {
            out.truncate(at);
            out.push('…');
            break;
        }
    }
    out
}

/// Ok for a challenge token: base64url (RFC 8555 §8.1), at most [`MAX_TOKEN`] characters, so
/// that it can be a file name and never a path or a hidden file.
pub fn check_token(token: &str) -> Result<(), String> {
    let base64url = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'_';
    fits(
        token,
        MAX_TOKEN,
        base64url,
        "a challenge token that is not base64url",
    )
}

/// Ok for a challenge or identifier type: lower-case letters, digits and `-`, as every type
/// registered for ACME is (`http-01`, `dns-account-01`, `dns`).
pub fn check_type(kind: &str) -> Result<(), String> {
    let name = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-';
    fits(kind, MAX_TYPE, name, "a type that is not one")
}

/// The longest domain name (RFC 1035 §2.3.4, without the trailing dot).
const MAX_DOMAIN: usize = 253;
/// The most issuer domain names one dns-persist-01 challenge may carry (draft §3.1).
pub const MAX_ISSUER_DOMAIN_NAMES: usize = 10;

/// Ok for an issuer domain name (draft-ietf-acme-dns-persist §3.1): at most 253 bytes of
/// lower-case A-labels (letters, digits, `-`) joined by dots, no empty label, no trailing dot.
pub fn check_issuer_domain_name(name: &str) -> Result<(), String> {
    let ldh = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.';
    fits(
        name,
        MAX_DOMAIN,
        ldh,
        "an issuer domain name that is not one",
    )?;
    if name
        .split('.')
        .any(|label| label.is_empty() || label.len() > 63)
    {
        return Err(format!(
            "the CA sent an issuer domain name that is not one: \"{}\"",
            shown(name)
        ));
    }
    Ok(())
}

/// Ok for a dns-persist-01 challenge's `issuer-domain-names`: 1 to
/// [`MAX_ISSUER_DOMAIN_NAMES`] names, each one ([`check_issuer_domain_name`]); the draft says a
/// client must refuse any other list.
pub fn check_issuer_domain_names(names: &[String]) -> Result<(), String> {
    if names.is_empty() || names.len() > MAX_ISSUER_DOMAIN_NAMES {
        return Err(format!(
            "the CA sent a dns-persist-01 challenge with {} issuer domain names (1 to {} allowed)",
            names.len(),
            MAX_ISSUER_DOMAIN_NAMES
        ));
    }
    names.iter().try_for_each(|n| check_issuer_domain_name(n))
}

/// Ok when `text` is 1 to `max` bytes, each `allowed`; else an error that says the CA sent
/// `what`, and shows it.
fn fits(text: &str, max: usize, allowed: fn(u8) -> bool, what: &str) -> Result<(), String> {
    if !text.is_empty() && text.len() <= max && text.bytes().all(allowed) {
        Ok(())
    } else {
        Err(format!("the CA sent {what}: \"{}\"", shown(text)))
    }
}

/// Ok for a URL the CA gives (a resource, a chain, an account): printable ASCII without
/// spaces, at most [`MAX_URL`] bytes. Whether it is a URL at all is the HTTP client's to say.
pub fn check_url(url: &str) -> Result<(), String> {
    fits(
        url,
        MAX_URL,
        |b| b.is_ascii_graphic(),
        "a URL that is not one",
    )
}

/// `url` as a message, a report or a record shows it: without the user and password a URL
/// may carry before its host (`https://user:secret@host/` is shown as `https://host/`), then
/// cleaned as [`shown`] cleans outside text. Borrowed when there was nothing to change.
pub fn shown_url(url: &str) -> Cow<'_, str> {
    let Some(scheme) = url.find("://").map(|i| i + 3) else {
        return shown(url);
    };
    let rest = &url[scheme..];
    let authority = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority].rfind('@') {
        Some(at) => {
            let bare = format!("{}{}", &url[..scheme], &rest[at + 1..]);
            Cow::Owned(shown(&bare).into_owned())
        }
        None => shown(url),
    }
}

/// `text` with every key authorization in it (`token.thumbprint`: base64url, a dot, and the
/// 43 characters of a SHA-256 thumbprint, as a CA's `incorrectResponse` detail may quote it)
/// replaced by `<key authorization>`, for what is kept on disk.
pub fn without_key_authorizations(text: &str) -> String {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.';
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(word) {
        out.push_str(&rest[..start]);
        let run = &rest[start..];
        let end = run.find(|c: char| !word(c)).unwrap_or(run.len());
        let parts: Vec<&str> = run[..end].split('.').collect();
        let key_authorization = parts
            .windows(2)
            .any(|w| w[0].len() >= 16 && w[1].len() == 43);
        out.push_str(if key_authorization {
            "<key authorization>"
        } else {
            &run[..end]
        });
        rest = &run[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shown_url_has_no_user_or_password() {
        for (url, want) in [
            (
                "https://user:secret@ca.example/dir",
                "https://ca.example/dir",
            ),
            (
                "https://us3r:pa55@ca.example:8443",
                "https://ca.example:8443",
            ),
            (
                "https://a@b:c@ca.example/x?y=1@2",
                "https://ca.example/x?y=1@2",
            ),
            ("https://ca.example/dir@x", "https://ca.example/dir@x"),
            ("https://ca.example/dir", "https://ca.example/dir"),
            ("not a url", "not a url"),
            ("https://u:p@ca.example/\n", "https://ca.example/\\n"),
        ] {
            assert_eq!(shown_url(url), want, "{url}");
        }
        assert!(matches!(
            shown_url("https://ca.example/d"),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn key_authorizations_are_taken_out_of_kept_text() {
        let ka = "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0.9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI";
        assert_eq!(
            without_key_authorizations(&format!(
                "The key authorization file from the server did not match this challenge \"{ka}\" != \"x\""
            )),
            "The key authorization file from the server did not match this challenge \"<key authorization>\" != \"x\""
        );
        let plain = "a.example: 404 from http://a.example/.well-known/acme-challenge/LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0";
        assert_eq!(without_key_authorizations(plain), plain);
    }

    #[test]
    fn outside_text_is_shown_on_one_line_with_its_controls_visible() {
        assert!(matches!(shown("plain text"), Cow::Borrowed("plain text")));
        assert_eq!(
            shown("a\n<0>forged\r\u{1b}[2J\0end\u{85}"),
            "a\\n<0>forged\\r\\u{1b}[2J\\0end\\u{85}"
        );
        // Text that reorders or hides itself on a terminal, and Unicode line breaks.
        assert_eq!(
            shown("x\u{202e}y\u{200b}z\u{2028}w"),
            "x\\u{202e}y\\u{200b}z\\u{2028}w"
        );
        // Other scripts are shown as they are.
        assert_eq!(shown("bücher.example 例え"), "bücher.example 例え");
    }

    #[test]
    fn outside_text_is_cut_at_its_bound_and_showing_it_again_changes_nothing() {
        let long = "é".repeat(MAX_SHOWN);
        let once = shown(&long);
        assert!(once.len() <= MAX_SHOWN, "{}", once.len());
        assert!(once.ends_with('…'));
        assert_eq!(shown(&once), once);
        let escapes = "\u{1b}".repeat(MAX_SHOWN);
        let once = shown(&escapes);
        assert!(once.len() <= MAX_SHOWN, "{}", once.len());
        assert!(once.starts_with("\\u{1b}\\u{1b}") && once.ends_with("\\u{1b}…"));
        assert_eq!(shown(&once), once);
        let exact = "x".repeat(MAX_SHOWN);
        assert_eq!(shown(&exact), exact);
    }

    #[test]
    fn a_hook_argument_has_no_nul_and_a_bound() {
        assert_eq!(
            for_argument("{\n\t\"detail\": \"a\0b\u{1b}[2J\r\"\n}", 100),
            "{\n\t\"detail\": \"a\\0b\\u{1b}[2J\\r\"\n}"
        );
        let cut = for_argument(&"ab".repeat(100_000), 1000);
        assert!(cut.len() <= 1000 && cut.ends_with('…'), "{}", cut.len());
    }

    #[test]
    fn urls_tokens_and_types_have_a_grammar() {
        assert!(check_url("https://ca.example/acme/authz/1?x=y#z").is_ok());
        for bad in [
            "",
            "https://ca.example/a b",
            "https://ca.example/\n<0>x",
            "https://ca.example/\u{1b}",
            "https://ca.example/ü",
            &format!("https://ca.example/{}", "a".repeat(MAX_URL)),
        ] {
            assert!(check_url(bad).is_err(), "{bad:?}");
        }
        assert!(check_token("LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0").is_ok());
        for bad in [
            "",
            "../x",
            "a/b",
            "..",
            ".hidden",
            "a b",
            "a\0b",
            "a\\b",
            "tok=",
            "tök",
            &"a".repeat(MAX_TOKEN + 1),
        ] {
            assert!(check_token(bad).is_err(), "{bad:?}");
        }
        for good in [
            "http-01",
            "dns-01",
            "tls-alpn-01",
            "dns-account-01",
            "dns",
            "ip",
        ] {
            assert!(check_type(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "HTTP-01",
            "http 01",
            "x\n<0>",
            "http_01",
            &"a".repeat(65),
        ] {
            assert!(check_type(bad).is_err(), "{bad:?}");
        }
        let err = check_type("x\n<0>\u{1b}[2J").unwrap_err();
        assert_eq!(
            err,
            "the CA sent a type that is not one: \"x\\n<0>\\u{1b}[2J\""
        );
    }
}
