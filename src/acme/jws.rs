//! The account key: it signs JWS requests and names itself by its thumbprint, and never leaves.
//!
//! It is made from PKCS#8 DER bytes; reading a key file in whatever form it was written
//! (PEM, PKCS#1, SEC1) is `keys.rs`'s job, which its caller runs first.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair, RsaKeyPair};
use serde_json::{Value, json};

/// base64url without padding, as JOSE and ACME use it.
pub fn b64(data: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(data)
}

/// Why an account key file could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyError(pub String);

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

enum Signer {
    /// ES256 or ES384, by curve.
    Ec(EcdsaKeyPair, &'static str),
    /// RS256, for RSA keys that dehydrated and older clients created.
    Rsa(RsaKeyPair),
}

/// An ACME account key. It can sign and describe its public half; the private half stays inside.
pub struct AccountKey {
    signer: Signer,
    /// The RFC 7638 canonical JWK: required members only, in lexicographic order.
    jwk: String,
    thumbprint: String,
}

/// Whose key signs a request: the new account's own JWK, or the account URL (RFC 8555 §6.2).
#[derive(Debug, Clone, Copy)]
pub enum KeyId<'a> {
    Jwk,
    Kid(&'a str),
}

impl AccountKey {
    /// A new P-256 key and its PKCS#8 PEM.
    #[cfg(test)]
    pub fn generate() -> Result<(AccountKey, String), KeyError> {
        let rng = SystemRandom::new();
        let alg = &signature::ECDSA_P256_SHA256_FIXED_SIGNING;
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &rng)
            .map_err(|_| KeyError("cannot generate a P-256 key".into()))?;
        let key = AccountKey::from_pkcs8(pkcs8.as_ref())?;
        let pem = pem::encode_config(
            &pem::Pem::new("PRIVATE KEY", pkcs8.as_ref()),
            pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
        );
        Ok((key, pem))
    }

    /// The key of a PKCS#8 `PrivateKeyInfo`: EC on P-256 or P-384, or RSA of 2048 to 4096
    /// bits. An RSA key is taken as written, CRT parts and all: read it through
    /// `keys::private_key_pkcs8`, which checks them.
    pub fn from_pkcs8(der: &[u8]) -> Result<AccountKey, KeyError> {
        let rng = SystemRandom::new();
        let curves = [
            (
                &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                "ES256",
                "P-256",
            ),
            (
                &signature::ECDSA_P384_SHA384_FIXED_SIGNING,
                "ES384",
                "P-384",
            ),
        ];
        for (alg, name, crv) in curves {
            if let Ok(pair) = EcdsaKeyPair::from_pkcs8(alg, der, &rng) {
                // An uncompressed point: 0x04 || X || Y, both of the same length.
                let point = pair.public_key().as_ref();
                let (x, y) = point[1..].split_at((point.len() - 1) / 2);
                let jwk = format!(
                    r#"{{"crv":"{crv}","kty":"EC","x":"{}","y":"{}"}}"#,
                    b64(x),
                    b64(y)
                );
                return Ok(AccountKey::new(Signer::Ec(pair, name), jwk));
            }
        }
        match RsaKeyPair::from_pkcs8(der) {
            Ok(pair) => AccountKey::rsa(pair),
            Err(e) => Err(KeyError(format!(
                "PKCS#8 key is neither EC P-256/P-384 nor RSA of 2048 to 4096 bits: {e}"
            ))),
        }
    }

    fn rsa(pair: RsaKeyPair) -> Result<AccountKey, KeyError> {
        let public: signature::RsaPublicKeyComponents<Vec<u8>> = pair.public().into();
        let jwk = format!(
            r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
            b64(&public.e),
            b64(&public.n)
        );
        Ok(AccountKey::new(Signer::Rsa(pair), jwk))
    }

    fn new(signer: Signer, jwk: String) -> AccountKey {
        let thumbprint = b64(ring::digest::digest(&ring::digest::SHA256, jwk.as_bytes()));
        AccountKey {
            signer,
            jwk,
            thumbprint,
        }
    }

    /// The JWS algorithm name: ES256, ES384 or RS256.
    pub fn alg(&self) -> &'static str {
        match &self.signer {
            Signer::Ec(_, name) => name,
            Signer::Rsa(_) => "RS256",
        }
    }

    /// The public key as a JWK object.
    pub fn jwk(&self) -> Value {
        // The canonical form is built from our own encoder, so it always parses.
        serde_json::from_str(&self.jwk).unwrap_or(Value::Null)
    }

    /// The RFC 7638 thumbprint, base64url of SHA-256 of the canonical JWK.
    pub fn thumbprint(&self) -> &str {
        &self.thumbprint
    }

    /// `token.thumbprint` (RFC 8555 §8.1). The result is a secret until the challenge is done.
    pub fn key_authorization(&self, token: &str) -> String {
        format!("{token}.{}", self.thumbprint)
    }

    /// Signs `data` with the JWS algorithm of [`AccountKey::alg`].
    pub fn sign(&self, data: &[u8]) -> Result<Vec<u8>, KeyError> {
        let rng = SystemRandom::new();
        match &self.signer {
            Signer::Ec(pair, _) => pair
                .sign(&rng, data)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| KeyError("ECDSA signing failed".into())),
            Signer::Rsa(pair) => {
                let mut sig = vec![0; pair.public().modulus_len()];
                pair.sign(&signature::RSA_PKCS1_SHA256, &rng, data, &mut sig)
                    .map_err(|_| KeyError("RSA signing failed".into()))?;
                Ok(sig)
            }
        }
    }

    /// A flattened JWS (RFC 7515 §7.2.2) for `url`. `payload` None is POST-as-GET (empty payload).
    pub fn jws(
        &self,
        url: &str,
        nonce: &str,
        key_id: KeyId<'_>,
        payload: Option<&Value>,
    ) -> Result<String, KeyError> {
        let mut protected = json!({ "alg": self.alg(), "nonce": nonce, "url": url });
        match key_id {
            KeyId::Jwk => protected["jwk"] = self.jwk(),
            KeyId::Kid(kid) => protected["kid"] = Value::from(kid),
        }
        let protected = b64(protected.to_string());
        let payload = payload.map(|p| b64(p.to_string())).unwrap_or_default();
        let signature = b64(self.sign(format!("{protected}.{payload}").as_bytes())?);
        Ok(
            json!({ "protected": protected, "payload": payload, "signature": signature })
                .to_string(),
        )
    }

    /// The inner JWS of a key change (RFC 8555 §7.3.5), signed by this, the new key: its JWK,
    /// no nonce, and the account URL with the old key's JWK as payload.
    pub fn key_change(
        &self,
        url: &str,
        account: &str,
        old: &AccountKey,
    ) -> Result<Value, KeyError> {
        let protected =
            b64(json!({ "alg": self.alg(), "jwk": self.jwk(), "url": url }).to_string());
        let payload = b64(json!({ "account": account, "oldKey": old.jwk() }).to_string());
        let signature = b64(self.sign(format!("{protected}.{payload}").as_bytes())?);
        Ok(json!({ "protected": protected, "payload": payload, "signature": signature }))
    }
}

/// External account binding credentials (RFC 8555 §7.3.4), as a CA hands them out.
/// Its `Debug` shows the key id only, never the MAC key.
#[derive(Clone)]
pub struct Eab {
    pub kid: String,
    mac_key: Vec<u8>,
    /// HS256, HS384 or HS512.
    pub alg: &'static str,
}

impl fmt::Debug for Eab {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Eab({} {})", self.kid, self.alg)
    }
}

impl Eab {
    /// From the key id, the MAC key in base64url (standard base64 is accepted too) and the
    /// algorithm name.
    pub fn new(kid: &str, mac_key: &str, alg: &str) -> Result<Eab, KeyError> {
        let alg = match alg {
            "HS256" => "HS256",
            "HS384" => "HS384",
            "HS512" => "HS512",
            other => {
                return Err(KeyError(format!(
                    "EAB algorithm {other:?} is not HS256, HS384 or HS512"
                )));
            }
        };
        let text = mac_key.trim().trim_end_matches('=');
        let mac_key = URL_SAFE_NO_PAD
            .decode(text)
            .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(text))
            .map_err(|_| KeyError("the EAB MAC key is not base64url".into()))?;
        Ok(Eab {
            kid: kid.to_string(),
            mac_key,
            alg,
        })
    }

    /// The `externalAccountBinding` member of a newAccount request for `account` at `url`: the
    /// account's JWK, signed with the MAC key.
    pub fn binding(&self, account: &AccountKey, url: &str) -> Value {
        let protected = b64(json!({ "alg": self.alg, "kid": self.kid, "url": url }).to_string());
        let payload = b64(account.jwk().to_string());
        let algorithm = match self.alg {
            "HS384" => ring::hmac::HMAC_SHA384,
            "HS512" => ring::hmac::HMAC_SHA512,
            _ => ring::hmac::HMAC_SHA256,
        };
        let key = ring::hmac::Key::new(algorithm, &self.mac_key);
        let signature = b64(ring::hmac::sign(
            &key,
            format!("{protected}.{payload}").as_bytes(),
        ));
        json!({ "protected": protected, "payload": payload, "signature": signature })
    }
}

impl fmt::Debug for AccountKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AccountKey({} {})", self.alg(), self.thumbprint())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verify(key: &AccountKey, data: &[u8], sig: &[u8]) -> bool {
        let jwk = key.jwk();
        let field = |k: &str| URL_SAFE_NO_PAD.decode(jwk[k].as_str().unwrap()).unwrap();
        match key.alg() {
            "ES256" => {
                let mut point = vec![4];
                point.extend(field("x"));
                point.extend(field("y"));
                signature::UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                    .verify(data, sig)
                    .is_ok()
            }
            "RS256" => signature::RsaPublicKeyComponents {
                n: field("n"),
                e: field("e"),
            }
            .verify(&signature::RSA_PKCS1_2048_8192_SHA256, data, sig)
            .is_ok(),
            other => panic!("no verifier for {other}"),
        }
    }

    #[test]
    fn a_new_key_is_p256_and_reads_back_from_its_pem() {
        let (key, pem) = AccountKey::generate().unwrap();
        assert_eq!(key.alg(), "ES256");
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
        let again = AccountKey::from_pkcs8(pem::parse(&pem).unwrap().contents()).unwrap();
        assert_eq!(again.thumbprint(), key.thumbprint());
        let sig = again.sign(b"hello").unwrap();
        assert_eq!(sig.len(), 64);
        assert!(verify(&key, b"hello", &sig));
        assert!(!verify(&key, b"hellO", &sig));
    }

    #[test]
    fn a_jws_carries_jwk_or_kid_and_verifies() {
        let (key, _) = AccountKey::generate().unwrap();
        let body = key
            .jws(
                "https://ca/new-acct",
                "n0nce",
                KeyId::Jwk,
                Some(&json!({"a": 1})),
            )
            .unwrap();
        let v: Value = serde_json::from_str(&body).unwrap();
        let protected: Value = serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(v["protected"].as_str().unwrap())
                .unwrap(),
        )
        .unwrap();
        assert_eq!(protected["alg"], "ES256");
        assert_eq!(protected["nonce"], "n0nce");
        assert_eq!(protected["url"], "https://ca/new-acct");
        assert_eq!(protected["jwk"], key.jwk());
        assert!(protected.get("kid").is_none());
        let signed = format!(
            "{}.{}",
            v["protected"].as_str().unwrap(),
            v["payload"].as_str().unwrap()
        );
        let sig = URL_SAFE_NO_PAD
            .decode(v["signature"].as_str().unwrap())
            .unwrap();
        assert!(verify(&key, signed.as_bytes(), &sig));

        let get = key
            .jws(
                "https://ca/acct/1",
                "n",
                KeyId::Kid("https://ca/acct/1"),
                None,
            )
            .unwrap();
        let v: Value = serde_json::from_str(&get).unwrap();
        assert_eq!(v["payload"], "");
        let protected: Value = serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(v["protected"].as_str().unwrap())
                .unwrap(),
        )
        .unwrap();
        assert_eq!(protected["kid"], "https://ca/acct/1");
        assert!(protected.get("jwk").is_none());
    }

    #[test]
    fn rfc7638_thumbprint_example() {
        // The RSA key of RFC 7638 §3.1 has this thumbprint; we build the same canonical JWK.
        let n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
        let jwk = format!(r#"{{"e":"AQAB","kty":"RSA","n":"{n}"}}"#);
        let thumb = b64(ring::digest::digest(&ring::digest::SHA256, jwk.as_bytes()));
        assert_eq!(thumb, "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
    }

    // Test keys written by `openssl pkcs8 -topk8`, with the thumbprints openssl and a shell
    // computed for them. The other forms openssl writes are read by keys.rs.
    fn pkcs8(file: &str) -> Vec<u8> {
        let path = format!("{}/tests/data/{file}", env!("CARGO_MANIFEST_DIR"));
        pem::parse(std::fs::read(path).unwrap())
            .unwrap()
            .into_contents()
    }

    #[test]
    fn an_openssl_rsa_key_signs_rs256() {
        let key = AccountKey::from_pkcs8(&pkcs8("rsa2048-pkcs8.pem")).unwrap();
        assert_eq!(key.alg(), "RS256");
        assert_eq!(
            key.thumbprint(),
            "jUJDFlhpSTGbXbfUq0WkMTNHvHh8Se5ku9E-vL22XjE"
        );
        let sig = key.sign(b"payload").unwrap();
        assert_eq!(sig.len(), 256);
        assert!(verify(&key, b"payload", &sig));
    }

    #[test]
    fn an_openssl_ec_key_signs_es256() {
        let key = AccountKey::from_pkcs8(&pkcs8("p256-pkcs8.pem")).unwrap();
        assert_eq!(key.alg(), "ES256");
        assert_eq!(
            key.thumbprint(),
            "ooeDpRovvytq7z5hGBu3pZeuGhjZUU22b1eUbhldOMw"
        );
        assert!(verify(&key, b"x", &key.sign(b"x").unwrap()));
    }

    #[test]
    fn an_eab_binding_signs_the_account_jwk() {
        let (key, _) = AccountKey::generate().unwrap();
        let eab = Eab::new(
            "kid-1",
            "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W",
            "HS256",
        )
        .unwrap();
        assert_eq!(format!("{eab:?}"), "Eab(kid-1 HS256)");
        let b = eab.binding(&key, "https://ca/new-acct");
        let protected: Value = serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(b["protected"].as_str().unwrap())
                .unwrap(),
        )
        .unwrap();
        assert_eq!(
            protected,
            json!({"alg": "HS256", "kid": "kid-1", "url": "https://ca/new-acct"})
        );
        let payload: Value = serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(b["payload"].as_str().unwrap())
                .unwrap(),
        )
        .unwrap();
        assert_eq!(payload, key.jwk());
        let signed = format!(
            "{}.{}",
            b["protected"].as_str().unwrap(),
            b["payload"].as_str().unwrap()
        );
        let mac = URL_SAFE_NO_PAD
            .decode(b["signature"].as_str().unwrap())
            .unwrap();
        let k = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &eab.mac_key);
        assert!(ring::hmac::verify(&k, signed.as_bytes(), &mac).is_ok());
        assert!(Eab::new("k", "!!", "HS256").is_err());
        assert!(Eab::new("k", "YQ", "HS1").is_err());
    }

    #[test]
    fn junk_is_refused_with_a_reason() {
        let err = AccountKey::from_pkcs8(b"hello").unwrap_err();
        assert!(err.0.starts_with("PKCS#8 key is neither"), "{err}");
    }
}
