//! `Link` headers (RFC 8288), where the CA names alternate chains: relation types are single
//! lower-case words; the links read, written back (rel quoted and escaped), read the same; and
//! any URL, written as one link, reads back as exactly that link.
#![no_main]

use desiccant::fuzzing;
use libfuzzer_sys::fuzz_target;

fn write(links: &[(String, String)]) -> String {
    links
        .iter()
        .map(|(rel, url)| {
            let rel = rel.replace('\\', r"\\").replace('"', r#"\""#);
            format!("<{url}>; rel=\"{rel}\"")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fuzz_target!(|data: &[u8]| {
    let Ok(value) = std::str::from_utf8(data) else {
        return;
    };
    let links = fuzzing::links(value);
    for (rel, url) in &links {
        assert!(!url.contains('>'), "url {url:?}");
        assert!(
            !rel.is_empty() && !rel.contains(char::is_whitespace),
            "rel {rel:?}"
        );
        assert_eq!(*rel, rel.to_ascii_lowercase());
    }
    let written = write(&links);
    assert_eq!(
        fuzzing::links(&written),
        links,
        "written back as {written:?}"
    );
    // A URI reference never holds <, >, quotes, white space or controls (RFC 3986).
    let url = value;
    if !url.is_empty()
        && !url.contains(|c: char| "<>\"".contains(c) || c.is_whitespace() || c.is_control())
    {
        let one = vec![("alternate".to_string(), url.to_string())];
        assert_eq!(fuzzing::links(&write(&one)), one, "url {url:?}");
    }
});
