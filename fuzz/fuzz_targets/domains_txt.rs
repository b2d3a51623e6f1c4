//! domains.txt: every certificate read has a plain folder name of its own and checked,
//! lower-case names; what was read, written back one line per certificate, reads the same;
//! every error names its line.
#![no_main]

use std::collections::HashSet;
use std::net::IpAddr;

use desiccant::fuzzing;
use libfuzzer_sys::fuzz_target;

fn dns_name_ok(name: &str) -> bool {
    let host = name.strip_prefix("*.").unwrap_or(name);
    name.len() <= 253
        && host.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let certs = match fuzzing::domains_txt(text) {
        Ok(certs) => certs,
        Err(msg) => {
            let line = msg
                .strip_prefix(fuzzing::DOMAINS_FILE)
                .and_then(|r| r.strip_prefix(':'))
                .and_then(|r| r.split_once(": "))
                .and_then(|(n, _)| n.parse::<usize>().ok());
            assert!(
                line.is_some_and(|n| n >= 1 && n <= text.lines().count()),
                "error without its line: {msg}"
            );
            return;
        }
    };
    let mut folders = HashSet::new();
    for (folder, names) in &certs {
        assert!(
            !folder.is_empty()
                && !folder.starts_with('.')
                && !folder.contains(['/', '\0'])
                && !folder.contains(char::is_whitespace),
            "folder {folder:?}"
        );
        assert!(folders.insert(folder), "folder {folder:?} twice");
        assert!(!names.is_empty());
        let mut seen = HashSet::new();
        for name in names {
            assert!(seen.insert(name), "name {name:?} twice");
            match name.parse::<IpAddr>() {
                Ok(ip) => assert_eq!(ip.to_string(), *name, "IP address not normalised"),
                Err(_) => assert!(dns_name_ok(name), "name {name:?}"),
            }
        }
    }
    let written: Vec<String> = certs
        .iter()
        .map(|(folder, names)| {
            let names: Vec<String> = names
                .iter()
                .map(|n| match n.parse::<IpAddr>() {
                    Ok(_) => format!("ip:{n}"),
                    Err(_) => n.clone(),
                })
                .collect();
            format!("{} > {folder}", names.join(" "))
        })
        .collect();
    let written = written.join("\n");
    assert_eq!(
        fuzzing::domains_txt(&written).as_ref(),
        Ok(&certs),
        "written back as {written:?}"
    );
});
