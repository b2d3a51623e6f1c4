//! `Retry-After`, as delay-seconds or an HTTP date: bounded by a day, readable at every time
//! alike, never longer when read later, and exact for delay-seconds.
#![no_main]

use desiccant::fuzzing;
use libfuzzer_sys::fuzz_target;

/// 1970, 1994 (RFC 9110's example), 2023, 2100, the end of 9999.
const NOWS: [u64; 5] = [
    0,
    784_111_777,
    1_700_000_000,
    4_102_444_800,
    253_402_300_799,
];

fuzz_target!(|data: &[u8]| {
    let Ok(value) = std::str::from_utf8(data) else {
        return;
    };
    let got: Vec<Option<u64>> = NOWS
        .iter()
        .map(|&now| fuzzing::retry_after(value, now))
        .collect();
    for (i, wait) in got.iter().enumerate() {
        assert_eq!(wait.is_some(), got[0].is_some(), "{value:?} at {}", NOWS[i]);
        if let Some(wait) = wait {
            assert!(*wait <= 86_400, "{value:?} at {}: {wait}", NOWS[i]);
        }
    }
    for pair in got.windows(2) {
        if let [Some(earlier), Some(later)] = pair {
            assert!(later <= earlier, "{value:?}: {got:?}");
        }
    }
    if value.trim().bytes().all(|b| b.is_ascii_digit())
        && let Ok(secs) = value.trim().parse::<u64>()
    {
        assert_eq!(got[0], Some(secs.min(86_400)));
    }
});
