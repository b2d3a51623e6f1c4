//! The CA's JSON objects: directory, order, authorization, challenge, renewal information.
//! Nothing panics; the renewal point chosen lies inside the CA's window; and a time written
//! in RFC 3339 reads back as the same second.
#![no_main]

use desiccant::fuzzing;
use libfuzzer_sys::fuzz_target;

/// The last second of 9999, the end of four-digit years.
const MAX_TIME: i64 = 253_402_300_799;

/// `ts` as RFC 3339, from the `2026-11-23 12:00:00 UTC` the program prints.
fn rfc3339(ts: i64) -> String {
    let printed = fuzzing::utc(ts);
    let (date, rest) = printed.split_once(' ').expect("date and time");
    let time = rest.strip_suffix(" UTC").expect("UTC");
    format!("{date}T{time}Z")
}

fuzz_target!(|data: &[u8]| {
    if let Some((start, end, point)) = fuzzing::acme_objects(data) {
        assert!(
            start <= point && point <= end.max(start),
            "renewal at {point}, outside the window {start}..{end}"
        );
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = fuzzing::rfc3339(text);
    }
    if let Some(eight) = data.get(..8) {
        let ts = i64::from_le_bytes(eight.try_into().expect("8 bytes")).rem_euclid(MAX_TIME + 1);
        let text = rfc3339(ts);
        assert_eq!(fuzzing::rfc3339(&text), Some(ts), "{text}");
    }
});
