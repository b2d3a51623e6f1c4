//! Problem documents and error answers: however the CA words them, what we print is one line
//! without control characters (no forged log lines, no terminal escapes), and a problem
//! document written back as JSON reads the same.
#![no_main]

use desiccant::fuzzing;
use libfuzzer_sys::fuzz_target;

fn one_clean_line(text: &str) -> bool {
    !text.contains(char::is_control)
}

fuzz_target!(|data: &[u8]| {
    if let Some((shown, json)) = fuzzing::problem(data) {
        assert!(one_clean_line(&shown), "shown as {shown:?}");
        assert_eq!(fuzzing::problem(json.as_bytes()), Some((shown, json)));
    }
    for (status, content_type) in [
        (400, "application/problem+json"),
        (429, "application/json"),
        (502, "text/html"),
        (500, ""),
    ] {
        let shown = fuzzing::error_answer(status, content_type, data);
        assert!(one_clean_line(&shown), "shown as {shown:?}");
    }
});
