//! Challenge tokens, which become file names in WELLKNOWN: one accepted is base64url, 1 to 256
//! characters, and as a path exactly one plain component (no `..`, no `/`, not hidden); all
//! base64url tokens of that length are accepted.
#![no_main]

use std::path::{Component, Path};

use desiccant::fuzzing;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    let base64url = (1..=256).contains(&token.len())
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    let accepted = fuzzing::token(token);
    assert_eq!(accepted, base64url, "{token:?}");
    if accepted {
        let mut parts = Path::new(token).components();
        assert_eq!(parts.next(), Some(Component::Normal(token.as_ref())));
        assert_eq!(parts.next(), None);
        assert!(!token.starts_with('.'));
    }
});
