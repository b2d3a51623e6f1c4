//! PKCS#12 export (RFC 7292): key, certificate and chain in one passphrase-protected file, for
//! Java, Windows and appliances that want one. The key is encrypted with PBES2 (PBKDF2 with
//! HMAC-SHA-256, AES-256-CBC) and the whole file carries an HMAC-SHA-256 MAC, as OpenSSL 3
//! writes them; certificates are stored in the clear, as they are public.

use aes::cipher::{BlockEncryptMut, KeyIvInit, block_padding::Pkcs7};
use ring::rand::{SecureRandom, SystemRandom};
use ring::{digest, hmac, pbkdf2};

use crate::keys::der::{der, int, oid, seq};

const ITERATIONS: u32 = 2048;

const DATA: &str = "1.2.840.113549.1.7.1";
const SHROUDED_KEY_BAG: &str = "1.2.840.113549.1.12.10.1.2";
const CERT_BAG: &str = "1.2.840.113549.1.12.10.1.3";
const X509_CERTIFICATE: &str = "1.2.840.113549.1.9.22.1";
const FRIENDLY_NAME: &str = "1.2.840.113549.1.9.20";
const LOCAL_KEY_ID: &str = "1.2.840.113549.1.9.21";
const PBES2: &str = "1.2.840.113549.1.5.13";
const PBKDF2: &str = "1.2.840.113549.1.5.12";
const HMAC_SHA256: &str = "1.2.840.113549.2.9";
const AES256_CBC: &str = "2.16.840.1.101.3.4.1.42";
const SHA256: &str = "2.16.840.1.101.3.4.2.1";
const NULL: &[u8] = &[0x05, 0x00];

/// `[0] EXPLICIT` around an encoded value.
fn explicit0(inner: &[u8]) -> Vec<u8> {
    der(0xa0, inner)
}

fn octets(bytes: &[u8]) -> Vec<u8> {
    der(0x04, bytes)
}

/// A ContentInfo of type data holding `content`.
fn data(content: &[u8]) -> Vec<u8> {
    seq(&[&oid(DATA), &explicit0(&octets(content))])
}

fn random<const N: usize>() -> Result<[u8; N], String> {
    let mut bytes = [0u8; N];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| "no randomness for the PKCS#12 salt".to_string())?;
    Ok(bytes)
}

/// UTF-16BE, the content of a BMPString.
fn utf16(text: &str) -> Vec<u8> {
    text.encode_utf16().flat_map(u16::to_be_bytes).collect()
}

/// The password as PKCS#12's MAC key derivation wants it: UTF-16BE with two zero bytes.
fn bmp(text: &str) -> Vec<u8> {
    let mut out = utf16(text);
    out.extend([0, 0]);
    out
}

/// The key derivation of RFC 7292 appendix B.2 with SHA-256, for 32 bytes (one hash block).
fn pkcs12_kdf(password: &[u8], salt: &[u8], id: u8, iterations: u32) -> [u8; 32] {
    const V: usize = 64;
    let fill = |s: &[u8]| -> Vec<u8> {
        if s.is_empty() {
            return Vec::new();
        }
        let len = V * s.len().div_ceil(V);
        s.iter().copied().cycle().take(len).collect()
    };
    let mut input = vec![id; V];
    input.extend(fill(salt));
    input.extend(fill(password));
    let mut a = digest::digest(&digest::SHA256, &input);
    for _ in 1..iterations {
        a = digest::digest(&digest::SHA256, a.as_ref());
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(a.as_ref());
    out
}

/// A PKCS#12 file with the key (PKCS#8 DER), the certificate and the chain, the key and the
/// certificate linked by a localKeyId and named `name`.
pub fn build(
    key_pkcs8: &[u8],
    cert: &[u8],
    chain: &[Vec<u8>],
    name: &str,
    passphrase: &str,
) -> Result<Vec<u8>, String> {
    let cert_hash = digest::digest(&digest::SHA256, cert);
    let key_id = &cert_hash.as_ref()[..20];
    let attributes = der(
        0x31,
        &[
            seq(&[&oid(FRIENDLY_NAME), &der(0x31, &der(0x1e, &utf16(name)))]),
            seq(&[&oid(LOCAL_KEY_ID), &der(0x31, &octets(key_id))]),
        ]
        .concat(),
    );

    let salt: [u8; 16] = random()?;
    let iv: [u8; 16] = random()?;
    let mut aes_key = [0u8; 32];
    pbkdf2::derive(
        pbkdf2::PBKDF2_HMAC_SHA256,
        std::num::NonZeroU32::new(ITERATIONS).unwrap_or(std::num::NonZeroU32::MIN),
        &salt,
        passphrase.as_bytes(),
        &mut aes_key,
    );
    let mut buffer = key_pkcs8.to_vec();
    buffer.resize(key_pkcs8.len() + 16, 0);
    let encrypted = cbc::Encryptor::<aes::Aes256>::new(&aes_key.into(), &iv.into())
        .encrypt_padded_mut::<Pkcs7>(&mut buffer, key_pkcs8.len())
        .map_err(|_| "cannot encrypt the key for PKCS#12".to_string())?
        .to_vec();
    let pbes2 = seq(&[
        &oid(PBES2),
        &seq(&[
            &seq(&[
                &oid(PBKDF2),
                &seq(&[
                    &octets(&salt),
                    &int(u64::from(ITERATIONS)),
                    &int(32),
                    &seq(&[&oid(HMAC_SHA256), NULL]),
                ]),
            ]),
            &seq(&[&oid(AES256_CBC), &octets(&iv)]),
        ]),
    ]);
    let key_bag = seq(&[
        &oid(SHROUDED_KEY_BAG),
        &explicit0(&seq(&[&pbes2, &octets(&encrypted)])),
        &attributes,
    ]);
    let cert_bag = |der_cert: &[u8], attrs: Option<&[u8]>| {
        let value = explicit0(&seq(&[
            &oid(X509_CERTIFICATE),
            &explicit0(&octets(der_cert)),
        ]));
        match attrs {
            Some(a) => seq(&[&oid(CERT_BAG), &value, a]),
            None => seq(&[&oid(CERT_BAG), &value]),
        }
    };
    let mut certs = cert_bag(cert, Some(&attributes));
    for c in chain {
        certs.extend(cert_bag(c, None));
    }
    let auth_safe = seq(&[&data(&der(0x30, &certs)), &data(&seq(&[&key_bag]))]);

    let mac_salt: [u8; 16] = random()?;
    let mac_key = pkcs12_kdf(&bmp(passphrase), &mac_salt, 3, ITERATIONS);
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &mac_key), &auth_safe);
    let mac_data = seq(&[
        &seq(&[&seq(&[&oid(SHA256), NULL]), &octets(tag.as_ref())]),
        &octets(&mac_salt),
        &int(u64::from(ITERATIONS)),
    ]);
    Ok(seq(&[&int(3), &data(&auth_safe), &mac_data]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_bmp_strings_with_a_terminator() {
        assert_eq!(bmp(""), [0, 0]);
        assert_eq!(bmp("ab"), [0, b'a', 0, b'b', 0, 0]);
        assert_eq!(bmp("é"), [0, 0xe9, 0, 0]);
    }

    #[test]
    fn the_kdf_depends_on_every_input() {
        let base = pkcs12_kdf(&bmp("pw"), b"salt", 3, 2);
        assert_ne!(base, pkcs12_kdf(&bmp("pW"), b"salt", 3, 2));
        assert_ne!(base, pkcs12_kdf(&bmp("pw"), b"salT", 3, 2));
        assert_ne!(base, pkcs12_kdf(&bmp("pw"), b"salt", 1, 2));
        assert_ne!(base, pkcs12_kdf(&bmp("pw"), b"salt", 3, 3));
        assert_eq!(base, pkcs12_kdf(&bmp("pw"), b"salt", 3, 2));
    }
}
