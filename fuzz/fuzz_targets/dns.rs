//! What a name server sends back: DNS answers, and the TSIG record that signs the answer to an
//! RFC 2136 update. Nothing panics; an answer read has lower-case names and as many records
//! in each section as its header counts; an answer signed with a key is never taken for a
//! success with another secret or for another request (an unsigned TSIG record may only
//! report an error); a well-formed answer, signed as a name server signs it, verifies and
//! reads with its TSIG record last.
#![no_main]

use desiccant::fuzzing;
use libfuzzer_sys::fuzz_target;

const SECRET: &[u8] = b"the update key's secret";
const OTHER_SECRET: &[u8] = b"another secret";

/// The section counts of a message's header.
fn counts(msg: &[u8]) -> Option<[usize; 3]> {
    let count = |at: usize| {
        Some(usize::from(u16::from_be_bytes([
            *msg.get(at)?,
            *msg.get(at + 1)?,
        ])))
    };
    Some([count(6)?, count(8)?, count(10)?])
}

fn check_answer(msg: &[u8]) {
    let Ok((rcode, sections)) = fuzzing::dns_answer(msg) else {
        return;
    };
    assert!(rcode <= 15, "rcode {rcode}");
    let counts = counts(msg).expect("an answer read has a header");
    for (section, count) in sections.iter().zip(counts) {
        assert_eq!(
            section.len(),
            count,
            "records read against the header's count"
        );
        for (name, _) in section {
            assert!(
                !name.bytes().any(|b| b.is_ascii_uppercase()),
                "name {name:?}"
            );
        }
    }
}

/// A well-formed answer: the header of `data` (its ID and flags) with one TXT record at the
/// root holding the rest of `data` as its data.
fn one_txt_record(data: &[u8]) -> Option<Vec<u8>> {
    let header = data.get(..4)?;
    let rdata = &data[4..];
    let mut msg = header.to_vec();
    msg.extend([0, 0, 0, 1, 0, 0, 0, 0]);
    msg.extend([0, 0, 16, 0, 1, 0, 0, 0, 60]);
    msg.extend(u16::try_from(rdata.len()).ok()?.to_be_bytes());
    msg.extend(rdata);
    Some(msg)
}

fuzz_target!(|data: &[u8]| {
    // As it came: an answer, and an update's answer with a request MAC of the first bytes.
    check_answer(data);
    let split = data
        .first()
        .map_or(0, |n| usize::from(n % 65))
        .min(data.len().saturating_sub(1));
    let (request_mac, msg) = data.get(1..).unwrap_or_default().split_at(split);
    let _ = fuzzing::tsig_verify(msg, request_mac, SECRET);

    // Signed as a name server signs: only this key and this request's MAC accept it.
    if let Some(signed) = fuzzing::tsig_sign_reply(msg, request_mac, SECRET) {
        check_answer(&signed);
        assert_ne!(
            fuzzing::tsig_verify(&signed, request_mac, OTHER_SECRET),
            Ok(0),
            "a success with another secret"
        );
        let mut other_request = request_mac.to_vec();
        other_request.push(0);
        assert_ne!(
            fuzzing::tsig_verify(&signed, &other_request, SECRET),
            Ok(0),
            "a success for another request"
        );
    }

    // A well-formed answer always reads, and verifies once signed.
    if let Some(msg) = one_txt_record(data) {
        let (_, [answers, authority, additional]) =
            fuzzing::dns_answer(&msg).expect("a well-formed answer reads");
        assert_eq!(answers, [(String::new(), 16)]);
        assert!(authority.is_empty() && additional.is_empty());
        let signed = fuzzing::tsig_sign_reply(&msg, request_mac, SECRET).expect("it can be signed");
        assert_eq!(fuzzing::tsig_verify(&signed, request_mac, SECRET), Ok(0));
        let (_, [_, _, additional]) = fuzzing::dns_answer(&signed).expect("a signed answer reads");
        assert_eq!(additional, [(fuzzing::TSIG_KEY_NAME.to_string(), 250)]);
    }
});
