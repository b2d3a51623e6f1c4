//! Reading certificates: the facts renewal decides on, and the checks of what a CA sent.

use x509_parser::prelude::*;
use x509_parser::public_key::PublicKey;

use crate::acme::text::shown;
use crate::keys::{Csr, KeyAlgo};

/// The most certificates one download may hold, the leaf included: real chains have two to
/// four.
pub const MAX_CHAIN: usize = 10;
/// The largest one certificate of a download may be (DER): a leaf with a hundred long names
/// is some 30 KiB.
pub const MAX_CERT: usize = 64 * 1024;

/// What a certificate says about itself, as far as renewal cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertFacts {
    /// Every DNS and IP name, lower-cased and sorted.
    pub names: Vec<String>,
    /// Unix seconds.
    pub not_before: i64,
    pub not_after: i64,
    /// The key type, when it is one we issue.
    pub key: Option<KeyAlgo>,
}

/// Splits PEM text into the DER of each `CERTIFICATE` block, in order.
pub fn pem_certs(text: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let blocks = ::pem::parse_many(text).map_err(|e| format!("not PEM: {e}"))?;
    let ders: Vec<Vec<u8>> = blocks
        .into_iter()
        .filter(|b| b.tag() == "CERTIFICATE")
        .map(::pem::Pem::into_contents)
        .collect();
    if ders.is_empty() {
        return Err("no certificate in it".into());
    }
    Ok(ders)
}

/// PEM text of certificates, LF line endings, as openssl writes them.
pub fn to_pem(ders: &[Vec<u8>]) -> String {
    ders.iter()
        .map(|d| {
            ::pem::encode_config(
                &::pem::Pem::new("CERTIFICATE", d.clone()),
                ::pem::EncodeConfig::new().set_line_ending(::pem::LineEnding::LF),
            )
        })
        .collect()
}

fn parse(der: &[u8]) -> Result<X509Certificate<'_>, String> {
    X509Certificate::from_der(der)
        .map(|(_, c)| c)
        .map_err(|e| format!("not an X.509 certificate: {e}"))
}

/// The facts of the first certificate in PEM `text`.
pub fn facts(text: &[u8]) -> Result<CertFacts, String> {
    let ders = pem_certs(text)?;
    cert_facts(&parse(&ders[0])?)
}

/// What renewal reads of a live certificate, from one parse of the first certificate in PEM
/// `text`: its facts, its RFC 9773 certID (None when it has no Authority Key Identifier) and
/// its issuer's organisation, else common name (the CA's text: shown through [`shown`] in
/// messages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leaf {
    pub facts: CertFacts,
    pub cert_id: Option<String>,
    pub issuer: Option<String>,
}

/// The [`Leaf`] of the first certificate in PEM `text`; Err as [`facts`] when it cannot be
/// read.
pub fn leaf(text: &[u8]) -> Result<Leaf, String> {
    let ders = pem_certs(text)?;
    let cert = parse(&ders[0])?;
    Ok(Leaf {
        facts: cert_facts(&cert)?,
        cert_id: cert_id(&cert),
        issuer: issuer(&cert),
    })
}

fn cert_facts(cert: &X509Certificate<'_>) -> Result<CertFacts, String> {
    let validity = cert.validity();
    Ok(CertFacts {
        names: names(cert)?,
        not_before: validity.not_before.timestamp(),
        not_after: validity.not_after.timestamp(),
        key: key_algo(cert),
    })
}

/// The RFC 9773 certID: base64url of the Authority Key Identifier's keyIdentifier, a dot,
/// base64url of the serial number's DER content octets. None when it has no AKI.
fn cert_id(cert: &X509Certificate<'_>) -> Option<String> {
    let aki = cert
        .extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::AuthorityKeyIdentifier(aki) => {
                aki.key_identifier.as_ref().map(|k| k.0.to_vec())
            }
            _ => None,
        })?;
    Some(format!(
        "{}.{}",
        crate::acme::jws::b64(aki),
        crate::acme::jws::b64(cert.raw_serial())
    ))
}

/// The issuer common name of the last (topmost) certificate of a chain: the name
/// `PREFERRED_CHAIN` is matched against, as dehydrated matches it. The CA's text: shown
/// through [`shown`] in messages.
pub fn top_issuer(chain: &[Vec<u8>]) -> Option<String> {
    let last = parse(chain.last()?).ok()?;
    last.issuer()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .map(str::to_string)
}

fn issuer(cert: &X509Certificate<'_>) -> Option<String> {
    let issuer = cert.issuer();
    issuer
        .iter_organization()
        .chain(issuer.iter_common_name())
        .find_map(|a| a.as_str().ok())
        .map(str::to_string)
}

/// The subject's common name of the first certificate in PEM `text`, lower-cased.
pub fn common_name(text: &[u8]) -> Result<Option<String>, String> {
    let ders = pem_certs(text)?;
    let cert = parse(&ders[0])?;
    Ok(cert
        .subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .map(str::to_ascii_lowercase))
}

fn names(cert: &X509Certificate<'_>) -> Result<Vec<String>, String> {
    let mut names = Vec::new();
    let san = cert
        .subject_alternative_name()
        .map_err(|e| format!("bad subjectAltName: {e}"))?;
    for name in san.iter().flat_map(|s| s.value.general_names.iter()) {
        match name {
            GeneralName::DNSName(d) => names.push(d.to_ascii_lowercase()),
            GeneralName::IPAddress(ip) => {
                let addr = if let Ok(v4) = <[u8; 4]>::try_from(*ip) {
                    std::net::IpAddr::from(v4)
                } else if let Ok(v6) = <[u8; 16]>::try_from(*ip) {
                    std::net::IpAddr::from(v6)
                } else {
                    return Err("an IP address name of odd length".into());
                };
                names.push(addr.to_string());
            }
            _ => {}
        }
    }
    names.sort();
    names.dedup();
    Ok(names)
}

fn key_algo(cert: &X509Certificate<'_>) -> Option<KeyAlgo> {
    match cert.public_key().parsed().ok()? {
        PublicKey::RSA(rsa) => Some(KeyAlgo::Rsa(rsa.key_size() as u32)),
        PublicKey::EC(point) => match point.key_size() {
            256 => Some(KeyAlgo::Prime256v1),
            384 => Some(KeyAlgo::Secp384r1),
            _ => None,
        },
        _ => None,
    }
}

/// Checks what the CA sent before anything is written: nothing but certificates, at most
/// [`MAX_CHAIN`] of at most [`MAX_CERT`] bytes each, the leaf not expired at `now` (Unix
/// seconds), holding `public_key_bits` and exactly `names`, and each certificate issued by
/// the next ([`issued_by`]). Returns (leaf, chain) DER.
pub fn check_issued(
    pem_chain: &[u8],
    public_key_bits: &[u8],
    wanted: &[String],
    now: i64,
) -> Result<(Vec<u8>, Vec<Vec<u8>>), String> {
    let blocks = ::pem::parse_many(pem_chain).map_err(|e| format!("not PEM: {e}"))?;
    if let Some(other) = blocks.iter().find(|b| b.tag() != "CERTIFICATE") {
        // The block's tag is not repeated when it is a key's: logs are searched for key tags.
        let what = if other.tag().contains("PRIVATE") {
            "a private key".to_string()
        } else {
            format!("a {:?} block", other.tag())
        };
        return Err(format!(
            "the answer holds {what} besides certificates; nothing was written"
        ));
    }
    let mut ders = pem_certs(pem_chain)?;
    if ders.len() > MAX_CHAIN {
        return Err(format!(
            "the answer holds {} certificates, more than the {MAX_CHAIN} a chain may have; \
             nothing was written",
            ders.len()
        ));
    }
    if let Some(big) = ders.iter().find(|d| d.len() > MAX_CERT) {
        return Err(format!(
            "the answer holds a certificate of {} bytes, more than the {MAX_CERT} one may have; \
             nothing was written",
            big.len()
        ));
    }
    let leaf_der = ders.remove(0);
    let leaf = parse(&leaf_der)?;
    let not_after = leaf.validity().not_after.timestamp();
    if not_after <= now {
        return Err(format!(
            "the certificate expired at {} (Unix time {not_after}); nothing was written",
            leaf.validity().not_after
        ));
    }
    if leaf.public_key().subject_public_key.data.as_ref() != public_key_bits {
        return Err("the certificate does not hold the key we asked for".into());
    }
    let mut wanted: Vec<String> = wanted.to_vec();
    wanted.sort();
    wanted.dedup();
    let got = names(&leaf)?;
    if got != wanted {
        return Err(format!(
            "the certificate names {} but we asked for {}",
            shown(&got.join(" ")),
            wanted.join(" ")
        ));
    }
    if ders.is_empty() {
        return Err("the CA sent no chain with the certificate".into());
    }
    let mut child = leaf;
    for (i, der) in ders.iter().enumerate() {
        let issuer = parse(der)?;
        issued_by(&child, &issuer).map_err(|e| {
            format!(
                "{} is not signed by the chain's certificate {} ({e}); nothing was written",
                if i == 0 {
                    "the certificate".to_string()
                } else {
                    format!("the chain's certificate {i}")
                },
                i + 1
            )
        })?;
        child = issuer;
    }
    Ok((leaf_der, ders))
}

/// Ok when `issuer` issued `cert`: its subject is `cert`'s issuer, and its key verifies
/// `cert`'s signature when the algorithm is one we can verify (all that CAs use today; a
/// cross-signature by an old root in another may only be matched by name).
fn issued_by(cert: &X509Certificate<'_>, issuer: &X509Certificate<'_>) -> Result<(), String> {
    // The same bytes, or the same name in other string types or case (RFC 5280 §7.1).
    let same_name = cert.issuer().as_raw() == issuer.subject().as_raw()
        || cert
            .issuer()
            .to_string()
            .eq_ignore_ascii_case(&issuer.subject().to_string());
    if !same_name {
        return Err("its issuer is not that certificate's subject".into());
    }
    match cert.verify_signature(Some(issuer.public_key())) {
        Ok(()) | Err(X509Error::SignatureUnsupportedAlgorithm) => Ok(()),
        Err(e) => Err(format!("the signature does not verify: {e}")),
    }
}

/// A PEM CSR made elsewhere (dehydrated's `generate_csr` hook, `--signcsr`): checked to be
/// signed by its own key, with its names (DNS and IP subjectAltNames, else the CN) in order.
pub fn read_csr(pem_text: &str) -> Result<(Csr, Vec<String>), String> {
    let block = ::pem::parse_many(pem_text.as_bytes())
        .map_err(|e| format!("not PEM: {e}"))?
        .into_iter()
        .find(|b| b.tag() == "CERTIFICATE REQUEST" || b.tag() == "NEW CERTIFICATE REQUEST")
        .ok_or("no CERTIFICATE REQUEST block in it")?;
    let der = block.contents().to_vec();
    let (_, csr) = X509CertificationRequest::from_der(&der)
        .map_err(|e| format!("not a certificate signing request: {e}"))?;
    csr.verify_signature()
        .map_err(|e| format!("its signature does not verify: {e}"))?;
    let info = &csr.certification_request_info;
    let mut names = Vec::new();
    for ext in csr.requested_extensions().into_iter().flatten() {
        if let ParsedExtension::SubjectAlternativeName(san) = ext {
            for name in &san.general_names {
                match name {
                    GeneralName::DNSName(d) => names.push(d.to_ascii_lowercase()),
                    GeneralName::IPAddress(ip) => {
                        let addr = if let Ok(v4) = <[u8; 4]>::try_from(*ip) {
                            std::net::IpAddr::from(v4)
                        } else if let Ok(v6) = <[u8; 16]>::try_from(*ip) {
                            std::net::IpAddr::from(v6)
                        } else {
                            return Err("an IP address name of odd length".into());
                        };
                        names.push(addr.to_string());
                    }
                    other => return Err(format!("a name CAs do not sign: {other:?}")),
                }
            }
        }
    }
    if names.is_empty() {
        names.extend(
            info.subject
                .iter_common_name()
                .filter_map(|cn| cn.as_str().ok())
                .map(str::to_ascii_lowercase),
        );
    }
    if names.is_empty() {
        return Err("it names no domain".into());
    }
    let public_key = info.subject_pki.subject_public_key.data.to_vec();
    let pem = ::pem::encode_config(
        &::pem::Pem::new("CERTIFICATE REQUEST", der.clone()),
        ::pem::EncodeConfig::new().set_line_ending(::pem::LineEnding::LF),
    );
    Ok((
        Csr {
            der,
            pem,
            public_key,
        },
        names,
    ))
}

/// SHA-256 of a file's bytes, in hex: what `state/` records of a certificate file it wrote.
pub fn fingerprint(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
    let mut hex = String::with_capacity(64);
    for b in digest.as_ref() {
        let _ = write!(hex, "{b:02x}");
    }
    hex
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ari_cert_id_of_rfc_9773s_example() {
        // RFC 9773 §4.1: keyIdentifier 69:88:5B:6B:87:46:40:41:E1:B3:7B:84:7B:A0:AE:2C:DE:01:C8:D4
        // and serial 00:87:65:43:21 give aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE.
        let aki = vec![
            0x69, 0x88, 0x5B, 0x6B, 0x87, 0x46, 0x40, 0x41, 0xE1, 0xB3, 0x7B, 0x84, 0x7B, 0xA0,
            0xAE, 0x2C, 0xDE, 0x01, 0xC8, 0xD4,
        ];
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca.key_identifier_method = rcgen::KeyIdMethod::PreSpecified(aki);
        let issuer = rcgen::Issuer::new(ca, ca_key);
        let key = rcgen::KeyPair::generate().unwrap();
        let mut leaf = rcgen::CertificateParams::new(vec!["example.org".to_string()]).unwrap();
        leaf.use_authority_key_identifier_extension = true;
        leaf.serial_number = Some(rcgen::SerialNumber::from_slice(&[
            0x00, 0x87, 0x65, 0x43, 0x21,
        ]));
        let cert = leaf.signed_by(&key, &issuer).unwrap();
        assert_eq!(
            super::leaf(cert.pem().as_bytes())
                .unwrap()
                .cert_id
                .as_deref(),
            Some("aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE")
        );
    }

    /// A root, an intermediate it signed, and a leaf for `example.org` the intermediate
    /// signed: (leaf key bits, leaf, intermediate, root) DER.
    fn chain() -> (Vec<u8>, Vec<u8>, Vec<u8>, Vec<u8>) {
        let ca = |name: &str| {
            let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
            params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, name);
            params
        };
        let root_key = rcgen::KeyPair::generate().unwrap();
        let root_params = ca("Test Root");
        let root = root_params.self_signed(&root_key).unwrap();
        let root_issuer = rcgen::Issuer::new(root_params, root_key);
        let int_key = rcgen::KeyPair::generate().unwrap();
        let int_params = ca("Test Intermediate");
        let int = int_params.signed_by(&int_key, &root_issuer).unwrap();
        let int_issuer = rcgen::Issuer::new(int_params, int_key);
        let leaf_key = rcgen::KeyPair::generate().unwrap();
        let leaf = rcgen::CertificateParams::new(vec!["example.org".to_string()])
            .unwrap()
            .signed_by(&leaf_key, &int_issuer)
            .unwrap();
        (
            leaf_key.public_key_raw().to_vec(),
            leaf.der().to_vec(),
            int.der().to_vec(),
            root.der().to_vec(),
        )
    }

    #[test]
    fn a_chain_is_bounded_and_each_certificate_is_issued_by_the_next() {
        let (key, leaf, int, root) = chain();
        let names = ["example.org".to_string()];
        let check = |ders: &[&Vec<u8>]| {
            let owned: Vec<Vec<u8>> = ders.iter().map(|d| d.to_vec()).collect();
            check_issued(to_pem(&owned).as_bytes(), &key, &names, 0)
        };
        let (got_leaf, got_chain) = check(&[&leaf, &int]).unwrap();
        assert_eq!((got_leaf, got_chain), (leaf.clone(), vec![int.clone()]));
        assert_eq!(
            check(&[&leaf, &int, &root]).unwrap().1,
            [int.clone(), root.clone()]
        );
        // The intermediate again and again: too many, and not a chain either.
        let bloated: Vec<&Vec<u8>> = std::iter::once(&leaf)
            .chain(std::iter::repeat_n(&int, 1500))
            .collect();
        let err = check(&bloated).unwrap_err();
        assert!(err.contains("1501 certificates, more than the 10"), "{err}");
        let err = check(&[&leaf, &int, &int]).unwrap_err();
        assert!(
            err.contains("the chain's certificate 1 is not signed by"),
            "{err}"
        );
        let err = check(&[&leaf, &root]).unwrap_err();
        assert!(err.contains("the certificate is not signed by"), "{err}");
        // Another CA's certificate of the same name: the signature tells.
        let (_, _, other_int, _) = chain();
        let err = check(&[&leaf, &other_int]).unwrap_err();
        assert!(err.contains("the signature does not verify"), "{err}");
        let err = check(&[&leaf]).unwrap_err();
        assert!(err.contains("no chain"), "{err}");
    }
}
