//! Private key files (certificate keys and account keys, PKCS#8, PKCS#1 or SEC1): a key read
//! and written back reads as the same key; the certificate key reader and the account key
//! reader accept the same files; an account key has a JWS algorithm and an RFC 7638
//! thumbprint.
#![no_main]

use desiccant::fuzzing;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let cert_key = fuzzing::cert_key(text);
    let account_key = fuzzing::account_key(text);
    if let Some((algo, pem)) = &cert_key {
        assert_eq!(
            fuzzing::cert_key(pem).as_ref(),
            Some(&(algo.clone(), pem.clone()))
        );
    }
    if let Some((alg, thumbprint)) = &account_key {
        assert!(["ES256", "ES384", "RS256"].contains(&alg.as_str()), "{alg}");
        assert!(
            thumbprint.len() == 43
                && thumbprint
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "thumbprint {thumbprint}"
        );
    }
    assert_eq!(
        cert_key.is_some(),
        account_key.is_some(),
        "one reader takes the key, the other does not"
    );
});
