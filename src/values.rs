//! The names a few settings take (challenge type, key type, CA preset), owned here so that the
//! config, `--help` and the shell completions (build.rs reads this file too) offer the same.

/// `CHALLENGETYPE` and `--challenge`: every [`ChallengeType`](crate::config::ChallengeType)'s
/// name.
pub const CHALLENGE_TYPES: [&str; 5] = [
    "http-01",
    "dns-01",
    "tls-alpn-01",
    "dns-account-01",
    "dns-persist-01",
];

/// `KEY_ALGO` and `--algo`: every [`KeyAlgo`](crate::keys::KeyAlgo)'s name.
pub const KEY_ALGOS: [&str; 3] = ["rsa", "prime256v1", "secp384r1"];

/// `CA` and `--ca` shortcuts, as dehydrated names them, plus Google's: name and directory URL.
pub const CA_PRESETS: &[(&str, &str)] = &[
    (
        "letsencrypt",
        "https://acme-v02.api.letsencrypt.org/directory",
    ),
    (
        "letsencrypt-test",
        "https://acme-staging-v02.api.letsencrypt.org/directory",
    ),
    ("zerossl", "https://acme.zerossl.com/v2/DV90"),
    ("buypass", "https://api.buypass.com/acme/directory"),
    (
        "buypass-test",
        "https://api.test4.buypass.no/acme/directory",
    ),
    ("google", "https://dv.acme-v02.api.pki.goog/directory"),
    (
        "google-test",
        "https://dv.acme-v02.test-api.pki.goog/directory",
    ),
];

/// The test endpoint of each preset that has one: where `--dry-run` goes instead of the
/// production CA, as certbot's `--dry-run` goes to Let's Encrypt's staging.
const TEST_SIBLINGS: &[(&str, &str)] = &[
    ("letsencrypt", "letsencrypt-test"),
    ("buypass", "buypass-test"),
    ("google", "google-test"),
];

/// The directory URL of the test endpoint of the CA at `ca_url`, with its preset name, when
/// `ca_url` is a preset's production CA that has one, written in any way that names the same
/// resource (see [`same_url`]); None for every other CA (a URL, ZeroSSL, an endpoint that is
/// a test one already).
pub fn test_sibling(ca_url: &str) -> Option<(&'static str, &'static str)> {
    let url_of = |name: &str| CA_PRESETS.iter().find(|(n, _)| *n == name).map(|(_, u)| *u);
    let (production, _) = CA_PRESETS.iter().find(|(_, url)| same_url(url, ca_url))?;
    let (_, test) = TEST_SIBLINGS.iter().find(|(p, _)| p == production)?;
    url_of(test).map(|url| (*test, url))
}

/// Whether two `https://` URLs name the same directory: the scheme and host compared without
/// regard to case, a user and password and the default port `:443` left out, and a slash at
/// the end of the path not counted.
fn same_url(a: &str, b: &str) -> bool {
    fn normal(url: &str) -> Option<(String, &str)> {
        let (scheme, rest) = url.split_once("://")?;
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(end);
        let host = authority.rsplit('@').next().unwrap_or(authority);
        let host = host.strip_suffix(":443").unwrap_or(host);
        let origin = format!("{scheme}://{host}").to_ascii_lowercase();
        Some((origin, path.trim_end_matches('/')))
    }
    a == b || normal(a).is_some_and(|n| Some(n) == normal(b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ChallengeType;
    use crate::keys::KeyAlgo;

    #[test]
    fn the_lists_are_what_the_config_reads() {
        assert_eq!(ChallengeType::ALL.map(ChallengeType::name), CHALLENGE_TYPES);
        for name in CHALLENGE_TYPES {
            assert_eq!(
                ChallengeType::parse(name).map(ChallengeType::name),
                Some(name)
            );
        }
        assert_eq!(ChallengeType::parse("dns-persist-02"), None);
        assert_eq!(
            ChallengeType::parse("dns-persist-01"),
            Some(ChallengeType::DnsPersist01)
        );
        for name in KEY_ALGOS {
            assert_eq!(KeyAlgo::parse(name, 2048).unwrap().config_name(), name);
        }
        let algos = [KeyAlgo::Rsa(2048), KeyAlgo::Prime256v1, KeyAlgo::Secp384r1];
        assert_eq!(algos.map(KeyAlgo::config_name), KEY_ALGOS);
    }

    #[test]
    fn every_production_preset_with_a_test_endpoint_maps_to_it() {
        let url = |name: &str| CA_PRESETS.iter().find(|(n, _)| *n == name).unwrap().1;
        for (production, test) in [
            ("letsencrypt", "letsencrypt-test"),
            ("buypass", "buypass-test"),
            ("google", "google-test"),
        ] {
            assert_eq!(test_sibling(url(production)), Some((test, url(test))));
        }
        assert_eq!(
            test_sibling("https://acme-v02.api.letsencrypt.org/directory"),
            Some((
                "letsencrypt-test",
                "https://acme-staging-v02.api.letsencrypt.org/directory"
            ))
        );
        // A test endpoint, a CA without one, and any other URL are used as they are.
        for none in ["letsencrypt-test", "buypass-test", "google-test", "zerossl"] {
            assert_eq!(test_sibling(url(none)), None, "{none}");
        }
        assert_eq!(test_sibling("https://127.0.0.1:14000/dir"), None);
        // The production URL written another way still has its test endpoint.
        for production in [
            "https://acme-v02.api.letsencrypt.org/directory/",
            "HTTPS://ACME-V02.API.LetsEncrypt.org/directory",
            "https://acme-v02.api.letsencrypt.org:443/directory",
            "https://user:pass@acme-v02.api.letsencrypt.org/directory",
        ] {
            assert_eq!(
                test_sibling(production).map(|(name, _)| name),
                Some("letsencrypt-test"),
                "{production}"
            );
        }
        assert_eq!(
            test_sibling("https://acme-v02.api.letsencrypt.org/Directory"),
            None,
            "a path is compared as it is"
        );
        assert_eq!(
            test_sibling("letsencrypt"),
            None,
            "a URL is asked, not a name"
        );
    }
}
