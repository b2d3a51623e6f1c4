//! The ACME account: its key and URL, read from dehydrated's account files, or registered.

use serde_json::{Value, json};

use crate::acme::text::shown_url;
use crate::acme::{AccountKey, Client, Eab, KeyId};
use crate::error::{Error, Result};
use crate::keys::{CertKey, KeyAlgo};
use crate::store::{self, AccountDir};

/// A registered account: the key that signs, and the URL that names it (the JWS `kid`).
#[derive(Debug)]
pub struct Account {
    pub key: AccountKey,
    pub url: String,
}

impl Account {
    pub fn kid(&self) -> KeyId<'_> {
        KeyId::Kid(&self.url)
    }
}

/// The account key of a PEM key file in any form openssl, dehydrated or we write (see
/// [`crate::keys::private_key_pkcs8`]); Err says why it cannot sign.
pub fn read_key(text: &str) -> std::result::Result<AccountKey, String> {
    let (pkcs8, _) = crate::keys::private_key_pkcs8(text)?;
    AccountKey::from_pkcs8(&pkcs8).map_err(|e| e.0)
}

/// What registration needs to know.
#[derive(Debug, Clone, Copy)]
pub struct Terms<'a> {
    /// `--accept-terms` was given.
    pub accepted: bool,
    /// `CONTACT_EMAIL`, sent as `mailto:`.
    pub contact: Option<&'a str>,
    /// The type of a new account key (`ACCOUNT_KEY_ALGO`).
    pub key_algo: KeyAlgo,
    /// External account binding (`EAB_KID`, `EAB_HMAC_KEY`), for CAs that want it.
    pub eab: Option<&'a Eab>,
    /// Unix seconds, for the names of kept old keys.
    pub now: i64,
}

/// Whether [`load_or_register`] found an account or made one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found {
    Existing,
    Registered,
}

/// The account for this CA. With a stored key and URL this sends nothing. A key without a URL
/// (dehydrated writes the URL only after it looked it up once) is looked up with
/// `onlyReturnExisting`. Without a key, a new key of `terms.key_algo` is created and
/// registered, but only when the terms were accepted.
pub fn load_or_register(
    client: &Client,
    dir: &AccountDir,
    terms: Terms<'_>,
) -> Result<(Account, Found)> {
    let subject = "account";
    let key = match stored_key(dir)? {
        Some(key) => key,
        None => {
            if !terms.accepted {
                return Err(not_registered(client));
            }
            let key_path = dir.key();
            dir.create()?;
            let pem = CertKey::generate(terms.key_algo)
                .map_err(|msg| Error::refused(subject, msg))?
                .pem();
            let key = read_key(&pem).map_err(|e| Error::refused(subject, e))?;
            store::write_file(&key_path, pem.as_bytes(), store::KEY_MODE)?;
            crate::failpoint::hit("account-key-written");
            let url = register(client, dir, &key, terms)?;
            return Ok((Account { key, url }, Found::Registered));
        }
    };
    if let Some(url) = stored_url(dir) {
        let account = Account { key, url };
        if let Some(finished) = finish_rollover(client, dir, &account, terms.now)? {
            return Ok((finished, Found::Existing));
        }
        return Ok((account, Found::Existing));
    }
    match look_up(client, &key)? {
        Some(url) => {
            write_id(dir, &url)?;
            Ok((Account { key, url }, Found::Existing))
        }
        None if terms.accepted => {
            let url = register(client, dir, &key, terms)?;
            Ok((Account { key, url }, Found::Registered))
        }
        None => Err(not_registered(client)),
    }
}

/// The URL of the CA's account for `key`, asked with `onlyReturnExisting`; None when the CA
/// has none (`accountDoesNotExist`).
fn look_up(client: &Client, key: &AccountKey) -> Result<Option<String>> {
    let lookup = client.post(
        key,
        KeyId::Jwk,
        &client.directory.new_account,
        Some(&json!({ "onlyReturnExisting": true })),
    );
    match lookup {
        Ok(response) => Ok(Some(
            response
                .location()
                .map_err(Error::acme("account"))?
                .to_string(),
        )),
        Err(e) if e.problem().is_some_and(|p| p.is("accountDoesNotExist")) => Ok(None),
        Err(e) => Err(Error::acme("account")(e)),
    }
}

/// The account of `dir` for a `--dry-run`, read and never written: None when `dir` holds no
/// key. A key whose URL is not stored yet is looked up with `onlyReturnExisting` and the URL
/// is not written; a key change a killed run left half done is not finished.
pub fn load_existing(client: &Client, dir: &AccountDir) -> Result<Option<Account>> {
    let Some(key) = stored_key(dir)? else {
        return Ok(None);
    };
    if let Some(url) = stored_url(dir) {
        return Ok(Some(Account { key, url }));
    }
    Ok(look_up(client, &key)?.map(|url| Account { key, url }))
}

/// Replaces the account key (RFC 8555 §7.3.5): the new key is written next to the old one
/// first, then the CA is asked, and only when it has accepted does the new key take the old
/// one's place; the old key stays as `account_key-<ts>.pem`. Returns the account with its new
/// key. A run killed in between is finished by [`finish_rollover`] on the next run.
pub fn rollover(
    client: &Client,
    dir: &AccountDir,
    account: Account,
    algo: KeyAlgo,
    now: i64,
) -> Result<Account> {
    let url = client.directory.key_change.clone().ok_or_else(|| {
        Error::refused(
            "account",
            "the CA offers no key change (no keyChange in its directory)",
        )
    })?;
    let pem = CertKey::generate(algo)
        .map_err(|m| Error::refused("account", m))?
        .pem();
    let new = read_key(&pem).map_err(|e| Error::refused("account", e))?;
    let pending = dir.key_pending();
    store::write_file(&pending, pem.as_bytes(), store::KEY_MODE)?;
    let inner = new
        .key_change(&url, &account.url, &account.key)
        .map_err(|e| Error::refused("account", e.0))?;
    if let Err(e) = client.post(&account.key, account.kid(), &url, Some(&inner)) {
        let _ = std::fs::remove_file(&pending);
        return Err(Error::acme("account")(e));
    }
    swap_in(dir, now)?;
    Ok(Account {
        key: new,
        url: account.url,
    })
}

/// Moves `account_key.pem` aside as `account_key-<ts>.pem` and the pending new key into its
/// place.
fn swap_in(dir: &AccountDir, now: i64) -> Result<()> {
    let old = dir.key();
    let backup = dir.key_backup(now);
    std::fs::rename(&old, &backup).map_err(Error::io("cannot keep the old key as", &backup))?;
    let pending = dir.key_pending();
    std::fs::rename(&pending, &old).map_err(Error::io("cannot put the new key in place", &old))?;
    store::sync_dir(&dir.dir)
}

/// A key change that a killed run left half done: asks the CA which key it knows. The old one:
/// the pending key is dropped. The new one: it takes the old one's place.
fn finish_rollover(
    client: &Client,
    dir: &AccountDir,
    account: &Account,
    now: i64,
) -> Result<Option<Account>> {
    let pending = dir.key_pending();
    let Ok(text) = read_text(&pending) else {
        return Ok(None);
    };
    if client
        .post(&account.key, account.kid(), &account.url, None)
        .is_ok()
    {
        let _ = std::fs::remove_file(&pending);
        return Ok(None);
    }
    let new = read_key(&text).map_err(|e| Error::refused("account", e))?;
    client
        .post(&new, KeyId::Kid(&account.url), &account.url, None)
        .map_err(Error::acme("account"))?;
    swap_in(dir, now)?;
    Ok(Some(Account {
        key: new,
        url: account.url.clone(),
    }))
}

/// The account key of `dir`; None when it has none. Refused when `dir` is marked deactivated
/// or its key cannot sign.
fn stored_key(dir: &AccountDir) -> Result<Option<AccountKey>> {
    let subject = "account";
    if dir.deactivated().exists() {
        return Err(Error::refused(
            subject,
            format!(
                "{} is marked deactivated; remove that folder and run --register --accept-terms",
                dir.dir.display()
            ),
        ));
    }
    let key_path = dir.key();
    match read_text(&key_path) {
        Ok(text) => read_key(&text).map(Some).map_err(|e| {
            Error::refused(
                subject,
                format!("{}: cannot use this key: {e}", key_path.display()),
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io("cannot read", &key_path)(e)),
    }
}

fn not_registered(client: &Client) -> Error {
    let terms = client
        .directory
        .meta
        .terms_of_service
        .as_deref()
        .unwrap_or("(the CA publishes no terms URL)");
    Error::refused(
        "account",
        format!(
            "no account with {} yet; read the terms at {terms}, then run with --accept-terms \
             (or desiccant --register --accept-terms) to register",
            shown_url(&client.directory_url)
        ),
    )
}

/// newAccount with `termsOfServiceAgreed`; writes the CA's answer and the account URL as
/// dehydrated does. Returns the URL.
fn register(
    client: &Client,
    dir: &AccountDir,
    key: &AccountKey,
    terms: Terms<'_>,
) -> Result<String> {
    let url = &client.directory.new_account;
    let mut payload = json!({ "termsOfServiceAgreed": true });
    if let Some(mail) = terms.contact {
        payload["contact"] = json!([format!("mailto:{mail}")]);
    }
    match terms.eab {
        Some(eab) => payload["externalAccountBinding"] = eab.binding(key, url),
        None if client.directory.meta.external_account_required => {
            return Err(Error::refused(
                "account",
                format!(
                    "{} registers only accounts bound to an account with the CA: set EAB_KID \
                     and EAB_HMAC_KEY from the CA's web site",
                    shown_url(&client.directory_url)
                ),
            ));
        }
        None => {}
    }
    let response = client
        .post(
            key,
            KeyId::Jwk,
            &client.directory.new_account,
            Some(&payload),
        )
        .map_err(Error::acme("account"))?;
    crate::failpoint::hit("account-registered");
    let url = response
        .location()
        .map_err(Error::acme("account"))?
        .to_string();
    // Keep the CA's answer as it was sent, as dehydrated does; check only that it is JSON.
    response.json::<Value>().map_err(Error::acme("account"))?;
    store::write_file(&dir.registration(), &response.body, 0o600)?;
    crate::failpoint::hit("account-registration-written");
    write_id(dir, &url)?;
    Ok(url)
}

fn write_id(dir: &AccountDir, url: &str) -> Result<()> {
    let text = format!("{}\n", json!({ "url": url }));
    store::write_file(&dir.id(), text.as_bytes(), 0o600)
}

/// A file of the account folder, never read through a symlink ([`store::read_plain`]).
fn read_text(path: &std::path::Path) -> std::io::Result<String> {
    String::from_utf8(store::read_plain(path)?)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

fn stored_url(dir: &AccountDir) -> Option<String> {
    let text = read_text(&dir.id()).ok()?;
    let value: Value = serde_json::from_str(&text).ok()?;
    value
        .get("url")
        .and_then(Value::as_str)
        .filter(|u| u.starts_with("https://"))
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(file: &str) -> String {
        let path = format!("{}/tests/data/{file}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(path).unwrap()
    }

    // Test keys written by `openssl genrsa -traditional`, `openssl pkcs8 -topk8` and
    // `openssl ecparam -genkey`, with the thumbprints openssl and a shell computed for them.
    #[test]
    fn openssl_keys_in_every_form_read_as_the_same_account_key() {
        for (file, alg, thumbprint) in [
            (
                "rsa2048-pkcs1.pem",
                "RS256",
                "jUJDFlhpSTGbXbfUq0WkMTNHvHh8Se5ku9E-vL22XjE",
            ),
            (
                "rsa2048-pkcs8.pem",
                "RS256",
                "jUJDFlhpSTGbXbfUq0WkMTNHvHh8Se5ku9E-vL22XjE",
            ),
            (
                "p256-sec1.pem",
                "ES256",
                "ooeDpRovvytq7z5hGBu3pZeuGhjZUU22b1eUbhldOMw",
            ),
            (
                "p256-pkcs8.pem",
                "ES256",
                "ooeDpRovvytq7z5hGBu3pZeuGhjZUU22b1eUbhldOMw",
            ),
        ] {
            let key = read_key(&fixture(file)).unwrap();
            assert_eq!(key.alg(), alg, "{file}");
            assert_eq!(key.thumbprint(), thumbprint, "{file}");
            assert!(key.sign(b"x").is_ok(), "{file}");
        }
    }

    #[test]
    fn a_damaged_rsa_key_is_refused_when_read_not_at_its_first_signature() {
        // Found by fuzzing: tests/data/rsa2048-pkcs1.pem with one digit swapped in d and two
        // letters in dP was read, and every signature then failed ("RSA signing failed").
        let good = fixture("rsa2048-pkcs1.pem");
        let damaged = good
            .replace("ITrov1WTz748aO30", "ITrov1WTz784aO30")
            .replace("dxaO4pBmVcbkcRTJz8jN", "dxaO4pBmVcbkcJRzT8jN");
        assert_ne!(damaged, good);
        let err = read_key(&damaged).unwrap_err();
        assert!(err.starts_with("bad RSA private key"), "{err}");
        assert!(read_key(&good).unwrap().sign(b"x").is_ok());
    }

    #[test]
    fn junk_is_refused_with_a_reason() {
        assert!(read_key("hello").is_err());
        let cert = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        let err = read_key(cert).unwrap_err();
        assert!(err.contains("CERTIFICATE"), "{err}");
    }
}
