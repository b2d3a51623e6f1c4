//! The names a few settings take (challenge type, key type, CA preset), owned here so that the
//! config, `--help` and the shell completions (build.rs reads this file too) offer the same.

/// `CHALLENGETYPE` and `--challenge`: every [`ChallengeType`](crate::config::ChallengeType)'s
/// name.
pub const CHALLENGE_TYPES: [&str; 3] = ["http-01", "dns-01", "tls-alpn-01"];

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ChallengeType;
    use crate::keys::KeyAlgo;

    #[test]
    fn the_lists_are_what_the_config_reads() {
        let challenges = [
            ChallengeType::Http01,
            ChallengeType::Dns01,
            ChallengeType::TlsAlpn01,
        ];
        assert_eq!(challenges.map(ChallengeType::name), CHALLENGE_TYPES);
        for name in KEY_ALGOS {
            assert_eq!(KeyAlgo::parse(name, 2048).unwrap().config_name(), name);
        }
        let algos = [KeyAlgo::Rsa(2048), KeyAlgo::Prime256v1, KeyAlgo::Secp384r1];
        assert_eq!(algos.map(KeyAlgo::config_name), KEY_ALGOS);
    }
}
