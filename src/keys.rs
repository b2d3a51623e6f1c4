//! Private keys and CSRs, as bytes in and out, and the key formats and DER they come in. No
//! files.

use std::fmt;

use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, PublicKeyData};

/// The certificate key type, by dehydrated's `KEY_ALGO` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyAlgo {
    /// RSA with `KEYSIZE` bits: 2048, 3072 or 4096.
    Rsa(u32),
    Prime256v1,
    Secp384r1,
}

impl KeyAlgo {
    /// Reads `KEY_ALGO` and `KEYSIZE` as dehydrated spells them; Err says what is accepted.
    pub fn parse(algo: &str, keysize: u32) -> Result<KeyAlgo, String> {
        match algo {
            "rsa" => match keysize {
                2048 | 3072 | 4096 => Ok(KeyAlgo::Rsa(keysize)),
                _ => Err("KEYSIZE is not supported for rsa: use 2048, 3072 or 4096".into()),
            },
            "prime256v1" => Ok(KeyAlgo::Prime256v1),
            "secp384r1" => Ok(KeyAlgo::Secp384r1),
            _ => Err("KEY_ALGO is not supported: use rsa, prime256v1 or secp384r1".into()),
        }
    }
}

impl KeyAlgo {
    /// The `KEY_ALGO` value: `rsa`, `prime256v1` or `secp384r1`.
    pub fn config_name(self) -> &'static str {
        match self {
            KeyAlgo::Rsa(_) => "rsa",
            KeyAlgo::Prime256v1 => "prime256v1",
            KeyAlgo::Secp384r1 => "secp384r1",
        }
    }
}

impl fmt::Display for KeyAlgo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyAlgo::Rsa(bits) => write!(f, "rsa{bits}"),
            KeyAlgo::Prime256v1 => f.write_str("prime256v1"),
            KeyAlgo::Secp384r1 => f.write_str("secp384r1"),
        }
    }
}

/// A certificate's private key. Its `Debug` shows the algorithm only.
pub struct CertKey {
    algo: KeyAlgo,
    pair: KeyPair,
}

impl fmt::Debug for CertKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CertKey({})", self.algo)
    }
}

impl CertKey {
    /// A new key of `algo`. RSA keys take a moment (hundreds of milliseconds for 4096 bits).
    pub fn generate(algo: KeyAlgo) -> Result<CertKey, String> {
        let pair = match algo {
            KeyAlgo::Prime256v1 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256),
            KeyAlgo::Secp384r1 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384),
            KeyAlgo::Rsa(bits) => {
                use rsa::pkcs8::EncodePrivateKey;
                let key = rsa::RsaPrivateKey::new(&mut rand_core::OsRng, bits as usize)
                    .map_err(|e| format!("cannot generate an RSA key: {e}"))?;
                let der = key
                    .to_pkcs8_der()
                    .map_err(|e| format!("cannot encode the RSA key: {e}"))?;
                let pem = pem::encode(&pem::Pem::new("PRIVATE KEY", der.as_bytes()));
                KeyPair::from_pem_and_sign_algo(&pem, &rcgen::PKCS_RSA_SHA256)
            }
        }
        .map_err(|e| format!("cannot generate a {algo} key: {e}"))?;
        Ok(CertKey { algo, pair })
    }

    /// A key as openssl, dehydrated, certbot or we wrote it (see [`private_key_pkcs8`]); its
    /// type found from the key itself.
    pub fn read(text: &str) -> Result<CertKey, String> {
        let (der, algo) = private_key_pkcs8(text)?;
        CertKey::from_pem(&pem::encode(&pem::Pem::new("PRIVATE KEY", der)), algo)
    }

    /// The key type.
    pub fn algo(&self) -> KeyAlgo {
        self.algo
    }

    /// An existing PKCS#8 PEM key of `algo` (certbot's, or one of ours).
    pub fn from_pem(pem: &str, algo: KeyAlgo) -> Result<CertKey, String> {
        let alg = match algo {
            KeyAlgo::Prime256v1 => &rcgen::PKCS_ECDSA_P256_SHA256,
            KeyAlgo::Secp384r1 => &rcgen::PKCS_ECDSA_P384_SHA384,
            KeyAlgo::Rsa(_) => &rcgen::PKCS_RSA_SHA256,
        };
        let pair = KeyPair::from_pem_and_sign_algo(pem, alg)
            .map_err(|e| format!("not a PKCS#8 {algo} key: {e}"))?;
        Ok(CertKey { algo, pair })
    }

    /// The key as PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`), which nginx, Apache, HAProxy,
    /// Postfix and openssl all read.
    pub fn pem(&self) -> String {
        self.pair.serialize_pem()
    }

    /// The key as PKCS#8 DER, for the PKCS#12 export.
    pub fn pkcs8_der(&self) -> Vec<u8> {
        self.pair.serialize_der()
    }

    /// The public key as it sits in a certificate's subjectPublicKey BIT STRING: the EC point,
    /// or the PKCS#1 RSAPublicKey.
    pub fn public_key_bits(&self) -> &[u8] {
        self.pair.der_bytes()
    }

    /// A CSR for `names`, with the first name as CN when it fits (64 characters) and is not
    /// an IP address, as dehydrated does.
    pub fn csr(&self, names: &[String]) -> Result<Csr, String> {
        let mut params = CertificateParams::new(names.to_vec())
            .map_err(|e| format!("cannot put the names into a CSR: {e}"))?;
        let mut dn = DistinguishedName::new();
        if let Some(first) = names
            .first()
            .filter(|n| n.len() <= 64 && n.parse::<std::net::IpAddr>().is_err())
        {
            dn.push(DnType::CommonName, first.as_str());
        }
        params.distinguished_name = dn;
        let csr = params
            .serialize_request(&self.pair)
            .map_err(|e| format!("cannot sign the CSR: {e}"))?;
        let pem = csr
            .pem()
            .map_err(|e| format!("cannot encode the CSR: {e}"))?;
        Ok(Csr {
            der: csr.der().to_vec(),
            pem,
            public_key: self.public_key_bits().to_vec(),
        })
    }
}

/// A certificate signing request: DER for the CA, PEM for `cert-<ts>.csr`, and the public key
/// it asks for, to check the certificate against.
#[derive(Debug, Clone)]
pub struct Csr {
    pub der: Vec<u8>,
    pub pem: String,
    pub public_key: Vec<u8>,
}

/// The few DER encodings written here (key and PKCS#12 wrappers).
pub mod der {
    /// One DER TLV with a definite length.
    pub fn der(tag: u8, value: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        let len = value.len();
        if len < 0x80 {
            out.push(len as u8);
        } else {
            let bytes: Vec<u8> = len
                .to_be_bytes()
                .into_iter()
                .skip_while(|b| *b == 0)
                .collect();
            out.push(0x80 | bytes.len() as u8);
            out.extend(bytes);
        }
        out.extend_from_slice(value);
        out
    }

    /// A SEQUENCE of already encoded parts.
    pub fn seq(parts: &[&[u8]]) -> Vec<u8> {
        der(0x30, &parts.concat())
    }

    /// An OBJECT IDENTIFIER from its dotted form.
    pub fn oid(dotted: &str) -> Vec<u8> {
        let arcs: Vec<u64> = dotted.split('.').filter_map(|a| a.parse().ok()).collect();
        let mut body = vec![(arcs[0] * 40 + arcs[1]) as u8];
        for &arc in &arcs[2..] {
            let mut chunk = vec![(arc & 0x7f) as u8];
            let mut rest = arc >> 7;
            while rest > 0 {
                chunk.push(0x80 | (rest & 0x7f) as u8);
                rest >>= 7;
            }
            chunk.reverse();
            body.extend(chunk);
        }
        der(0x06, &body)
    }

    /// A non-negative INTEGER.
    pub fn int(value: u64) -> Vec<u8> {
        let mut bytes: Vec<u8> = value
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        if bytes.first().is_none_or(|b| b & 0x80 != 0) {
            bytes.insert(0, 0);
        }
        der(0x02, &bytes)
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn known_encodings() {
            assert_eq!(
                oid("1.2.840.10045.2.1"),
                [0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01]
            );
            assert_eq!(int(0), [0x02, 0x01, 0x00]);
            assert_eq!(int(2048), [0x02, 0x02, 0x08, 0x00]);
            assert_eq!(int(128), [0x02, 0x02, 0x00, 0x80]);
            assert_eq!(der(0x04, &[0; 200])[..3], [0x04, 0x81, 200]);
            assert_eq!(seq(&[&int(3)]), [0x30, 0x03, 0x02, 0x01, 0x03]);
        }
    }
}

const OID_EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
/// The curve OIDs (contents only) a SEC1 key may be on.
const OID_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const OID_P384: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];

/// The private key of a PEM file as PKCS#8 DER, with its type, from any form openssl,
/// dehydrated, certbot or we write: PKCS#8 (EC P-256, P-384 or RSA), PKCS#1 RSA or SEC1 EC;
/// `EC PARAMETERS` blocks are skipped. An RSA key is read as the rsa crate reads it, which
/// checks that its private exponent agrees with its primes and computes the CRT parts
/// afresh, and is written anew: ring alone takes those parts as written and fails only at the
/// first signature when they do not agree (a damaged file). Err says why, in a few words.
pub fn private_key_pkcs8(text: &str) -> Result<(Vec<u8>, KeyAlgo), String> {
    let blocks = pem::parse_many(text).map_err(|e| format!("not a PEM file: {e}"))?;
    let block = blocks
        .iter()
        .find(|b| b.tag() != "EC PARAMETERS")
        .ok_or("no private key in the file")?;
    match block.tag() {
        "PRIVATE KEY" => match ec_curve(block.contents()) {
            Some(algo) => Ok((block.contents().to_vec(), algo)),
            None => rsa_pkcs8(block.contents(), false).map_err(|e| {
                format!("PKCS#8 key is neither EC P-256/P-384 nor RSA of 2048 to 4096 bits: {e}")
            }),
        },
        "RSA PRIVATE KEY" => rsa_pkcs8(block.contents(), true),
        "EC PRIVATE KEY" => [OID_P256, OID_P384]
            .iter()
            .map(|curve| sec1_to_pkcs8(block.contents(), curve))
            .find_map(|der| ec_curve(&der).map(|algo| (der, algo)))
            .ok_or_else(|| "EC private key is not on P-256 or P-384".into()),
        other => Err(format!(
            "a \"{other}\" block is not a private key this client can use"
        )),
    }
}

/// The curve of a PKCS#8 EC key that ring can sign with; None for any other key.
fn ec_curve(pkcs8: &[u8]) -> Option<KeyAlgo> {
    use ring::signature::{
        ECDSA_P256_SHA256_FIXED_SIGNING, ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair,
    };
    let rng = ring::rand::SystemRandom::new();
    [
        (&ECDSA_P256_SHA256_FIXED_SIGNING, KeyAlgo::Prime256v1),
        (&ECDSA_P384_SHA384_FIXED_SIGNING, KeyAlgo::Secp384r1),
    ]
    .into_iter()
    .find_map(|(alg, algo)| {
        EcdsaKeyPair::from_pkcs8(alg, pkcs8, &rng)
            .is_ok()
            .then_some(algo)
    })
}

/// An RSA key from PKCS#1 (`pkcs1`) or PKCS#8 DER, checked and written anew as PKCS#8 (see
/// [`private_key_pkcs8`]).
fn rsa_pkcs8(der: &[u8], pkcs1: bool) -> Result<(Vec<u8>, KeyAlgo), String> {
    use rsa::pkcs1::DecodeRsaPrivateKey;
    use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey};
    use rsa::traits::PublicKeyParts;
    let key = if pkcs1 {
        rsa::RsaPrivateKey::from_pkcs1_der(der).map_err(|e| e.to_string())
    } else {
        rsa::RsaPrivateKey::from_pkcs8_der(der).map_err(|e| e.to_string())
    }
    .map_err(|e| format!("bad RSA private key: {e}"))?;
    let pkcs8 = key
        .to_pkcs8_der()
        .map_err(|e| format!("bad RSA private key: {e}"))?;
    let bits = u32::try_from(key.size() * 8).map_err(|_| "bad RSA private key: too large")?;
    Ok((pkcs8.as_bytes().to_vec(), KeyAlgo::Rsa(bits)))
}

/// Wraps a SEC1 `ECPrivateKey` into a PKCS#8 `PrivateKeyInfo` for the given curve OID.
fn sec1_to_pkcs8(sec1: &[u8], curve_oid: &[u8]) -> Vec<u8> {
    use der::der;
    let mut alg = der(0x06, OID_EC_PUBLIC_KEY);
    alg.extend(der(0x06, curve_oid));
    let mut info = der(0x02, &[0]);
    info.extend(der(0x30, &alg));
    info.extend(der(0x04, sec1));
    der(0x30, &info)
}

#[cfg(test)]
mod tests {
    use super::*;
    use x509_parser::prelude::*;

    #[test]
    fn keysize_and_algo_are_checked() {
        assert_eq!(KeyAlgo::parse("rsa", 3072), Ok(KeyAlgo::Rsa(3072)));
        assert_eq!(KeyAlgo::parse("secp384r1", 0), Ok(KeyAlgo::Secp384r1));
        assert!(
            KeyAlgo::parse("rsa", 1024)
                .unwrap_err()
                .contains("2048, 3072 or 4096")
        );
        assert!(
            KeyAlgo::parse("ed25519", 0)
                .unwrap_err()
                .contains("KEY_ALGO")
        );
    }

    #[test]
    fn a_csr_holds_every_name_and_the_key_and_verifies() {
        for algo in [KeyAlgo::Prime256v1, KeyAlgo::Secp384r1, KeyAlgo::Rsa(2048)] {
            let key = CertKey::generate(algo).unwrap();
            assert!(key.pem().starts_with("-----BEGIN PRIVATE KEY-----"));
            let names = vec!["example.org".to_string(), "www.example.org".to_string()];
            let csr = key.csr(&names).unwrap();
            let (_, block) = x509_parser::pem::parse_x509_pem(csr.pem.as_bytes()).unwrap();
            assert_eq!(block.contents, csr.der);
            let (_, csr) = X509CertificationRequest::from_der(&block.contents).unwrap();
            csr.verify_signature().unwrap();
            let info = &csr.certification_request_info;
            assert_eq!(
                info.subject_pki.subject_public_key.data.as_ref(),
                key.public_key_bits()
            );
            let cn: Vec<_> = info
                .subject
                .iter_common_name()
                .map(|c| c.as_str().unwrap().to_string())
                .collect();
            assert_eq!(cn, ["example.org"]);
            let mut sans = Vec::new();
            for ext in csr.requested_extensions().unwrap() {
                if let ParsedExtension::SubjectAlternativeName(san) = ext {
                    for n in &san.general_names {
                        if let GeneralName::DNSName(d) = n {
                            sans.push(d.to_string());
                        }
                    }
                }
            }
            assert_eq!(sans, names, "{algo}");
        }
    }

    #[test]
    fn keys_are_read_in_every_form_openssl_writes() {
        // The same fixtures the account key reader is tested with.
        let read = |f: &str| {
            CertKey::read(
                &std::fs::read_to_string(format!("{}/tests/data/{f}", env!("CARGO_MANIFEST_DIR")))
                    .unwrap(),
            )
            .unwrap()
        };
        assert_eq!(read("rsa2048-pkcs1.pem").algo(), KeyAlgo::Rsa(2048));
        assert_eq!(read("rsa2048-pkcs8.pem").algo(), KeyAlgo::Rsa(2048));
        assert_eq!(read("p256-sec1.pem").algo(), KeyAlgo::Prime256v1);
        assert_eq!(read("p256-pkcs8.pem").algo(), KeyAlgo::Prime256v1);
        assert_eq!(
            read("rsa2048-pkcs1.pem").public_key_bits(),
            read("rsa2048-pkcs8.pem").public_key_bits()
        );
        let ours = CertKey::generate(KeyAlgo::Secp384r1).unwrap();
        let again = CertKey::read(&ours.pem()).unwrap();
        assert_eq!(again.algo(), KeyAlgo::Secp384r1);
        assert_eq!(again.public_key_bits(), ours.public_key_bits());
        assert!(CertKey::read("junk").is_err());
    }

    #[test]
    fn every_form_becomes_the_same_pkcs8_and_junk_says_why() {
        let read = |f: &str| {
            private_key_pkcs8(
                &std::fs::read_to_string(format!("{}/tests/data/{f}", env!("CARGO_MANIFEST_DIR")))
                    .unwrap(),
            )
            .unwrap()
        };
        // An RSA key is written anew, so both forms give the very same bytes.
        assert_eq!(read("rsa2048-pkcs1.pem"), read("rsa2048-pkcs8.pem"));
        assert_eq!(read("p256-sec1.pem").1, KeyAlgo::Prime256v1);
        let err = |text: &str| private_key_pkcs8(text).unwrap_err();
        assert_eq!(err("hello"), "no private key in the file");
        let cert = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert!(err(cert).contains("\"CERTIFICATE\" block"), "{}", err(cert));
        let ec = "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n";
        assert_eq!(err(ec), "EC private key is not on P-256 or P-384");
    }

    #[test]
    fn a_long_first_name_is_left_out_of_the_cn() {
        let key = CertKey::generate(KeyAlgo::Prime256v1).unwrap();
        let long = format!("{}.example.org", "a".repeat(60));
        let csr = key.csr(&[long]).unwrap();
        let (_, csr) = X509CertificationRequest::from_der(&csr.der).unwrap();
        assert_eq!(
            csr.certification_request_info
                .subject
                .iter_common_name()
                .count(),
            0
        );
    }
}
