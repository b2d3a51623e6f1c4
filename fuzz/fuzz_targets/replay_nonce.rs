//! `Replay-Nonce`: a nonce taken into the pool is exactly the header's base64url value, and
//! anything else is ignored, as RFC 8555 §6.5.1 asks.
#![no_main]

use desiccant::fuzzing;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = std::str::from_utf8(data) else {
        return;
    };
    let trimmed = value.trim();
    let base64url = !trimmed.is_empty()
        && trimmed
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    match fuzzing::replay_nonce(value) {
        Some(nonce) => {
            assert!(base64url, "took {value:?}");
            assert_eq!(nonce, trimmed);
        }
        None => assert!(!base64url, "ignored {value:?}"),
    }
});
