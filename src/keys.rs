//! Certificate keys and CSRs, as bytes in and out. No files.

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
                other => Err(format!(
                    "KEYSIZE {other} is not supported for rsa: use 2048, 3072 or 4096"
                )),
            },
            "prime256v1" => Ok(KeyAlgo::Prime256v1),
            "secp384r1" => Ok(KeyAlgo::Secp384r1),
            other => Err(format!(
                "KEY_ALGO {other:?} is not supported: use rsa, prime256v1 or secp384r1"
            )),
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

    /// A key as openssl, dehydrated, certbot or we wrote it: PKCS#8, SEC1 EC (after an
    /// `EC PARAMETERS` block) or PKCS#1 RSA; its type found from the key itself.
    pub fn read(text: &str) -> Result<CertKey, String> {
        use rsa::pkcs1::DecodeRsaPrivateKey;
        use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey};
        use rsa::traits::PublicKeyParts;
        let blocks = pem::parse_many(text).map_err(|e| format!("not PEM: {e}"))?;
        let block = blocks
            .iter()
            .find(|b| b.tag() != "EC PARAMETERS")
            .ok_or("no private key in it")?;
        let pkcs8 = |der: Vec<u8>| pem::encode(&pem::Pem::new("PRIVATE KEY", der));
        let rsa_size = |key: &rsa::RsaPrivateKey| KeyAlgo::Rsa((key.size() * 8) as u32);
        match block.tag() {
            "PRIVATE KEY" => {
                let pem = pkcs8(block.contents().to_vec());
                for algo in [KeyAlgo::Prime256v1, KeyAlgo::Secp384r1] {
                    if let Ok(key) = CertKey::from_pem(&pem, algo) {
                        return Ok(key);
                    }
                }
                let rsa = rsa::RsaPrivateKey::from_pkcs8_der(block.contents())
                    .map_err(|_| "a PKCS#8 key that is neither P-256, P-384 nor RSA".to_string())?;
                CertKey::from_pem(&pem, rsa_size(&rsa))
            }
            "RSA PRIVATE KEY" => {
                let rsa = rsa::RsaPrivateKey::from_pkcs1_der(block.contents())
                    .map_err(|e| format!("a bad RSA key: {e}"))?;
                let der = rsa.to_pkcs8_der().map_err(|e| e.to_string())?;
                CertKey::from_pem(&pkcs8(der.as_bytes().to_vec()), rsa_size(&rsa))
            }
            "EC PRIVATE KEY" => {
                for (curve, algo) in [
                    (crate::acme::jws::OID_P256, KeyAlgo::Prime256v1),
                    (crate::acme::jws::OID_P384, KeyAlgo::Secp384r1),
                ] {
                    let der = crate::acme::jws::sec1_to_pkcs8(block.contents(), curve);
                    if let Ok(key) = CertKey::from_pem(&pkcs8(der), algo) {
                        return Ok(key);
                    }
                }
                Err("an EC key on neither P-256 nor P-384".into())
            }
            other => Err(format!("a \"{other}\" block is not a private key")),
        }
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
