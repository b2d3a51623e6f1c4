//! dehydrated's `config`, a bash file read without running it: every line is an assignment,
//! a comment or an error naming its line; every value read, written back single-quoted as a
//! tool would write it, reads the same; the whole config resolves or fails without panicking.
#![no_main]

use desiccant::fuzzing;
use libfuzzer_sys::fuzz_target;

/// `value` in single quotes, a `'` as `'\''`, as `printf %q`-like tools write it.
fn single_quoted(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

/// Whether `msg` starts with `config:<n>: ` for a line `n` of `text`.
fn names_a_line(msg: &str, text: &str) -> bool {
    let Some(rest) = msg
        .strip_prefix(fuzzing::CONFIG_FILE)
        .and_then(|r| r.strip_prefix(':'))
    else {
        return false;
    };
    let Some((n, _)) = rest.split_once(": ") else {
        return false;
    };
    n.parse::<usize>()
        .is_ok_and(|n| n >= 1 && n <= text.lines().count())
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match fuzzing::config_assignments(text) {
        Ok(pairs) => {
            for (key, value) in pairs {
                assert!(
                    !key.is_empty()
                        && !key.starts_with(|c: char| c.is_ascii_digit())
                        && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'),
                    "key {key:?}"
                );
                let line = format!("{key}={}", single_quoted(&value));
                assert_eq!(
                    fuzzing::config_assignments(&line),
                    Ok(vec![(key, value)]),
                    "written back as {line:?}"
                );
            }
        }
        Err(msg) => assert!(names_a_line(&msg, text), "error without its line: {msg}"),
    }
    if let Err(msg) = fuzzing::config(text) {
        assert!(
            msg.starts_with(fuzzing::CONFIG_FILE),
            "error not naming the config: {msg}"
        );
    }
});
