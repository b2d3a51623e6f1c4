//! PEM certificates and CSRs as a CA, a hook or an old installation hands them over: the
//! certificates found, written back as we write them, read the same; the names read are sorted
//! and unique; a certID is two base64url parts.
#![no_main]

use desiccant::fuzzing;
use libfuzzer_sys::fuzz_target;

fn base64url(part: &str) -> bool {
    part.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fuzz_target!(|data: &[u8]| {
    if let Some(ders) = fuzzing::pem_certs(data) {
        assert!(!ders.is_empty());
        let written = fuzzing::certs_to_pem(&ders);
        assert_eq!(fuzzing::pem_certs(written.as_bytes()), Some(ders));
    }
    if let Some((names, cert_id)) = fuzzing::cert_facts(data) {
        assert!(names.windows(2).all(|w| w[0] < w[1]), "names {names:?}");
        if let Some(id) = cert_id {
            let (aki, serial) = id.split_once('.').expect("certID has a dot");
            assert!(base64url(aki) && base64url(serial), "certID {id}");
        }
    }
    if let Ok(text) = std::str::from_utf8(data)
        && let Some(names) = fuzzing::csr_names(text)
    {
        assert!(!names.is_empty());
    }
});
