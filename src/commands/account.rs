//! The account commands: `--register`, `--account` (contact, or with `--rollover` the key),
//! `--deactivate`, and `--display-terms`.

use serde_json::json;

use super::session::{Session, unix_now};
use crate::account::{self, Found};
use crate::error::{Error, Result, Status};
use crate::logging;
use crate::store;

/// `--register`: registers the account key with the CA (with `--accept-terms`).
pub fn register(session: &mut Session) -> Result<Status> {
    session.lock()?;
    let client = session.connect()?;
    let (account, found) = session.account(&client)?;
    match found {
        Found::Registered => logging::info(format_args!("account: registered as {}", account.url)),
        Found::Existing => logging::info(format_args!(
            "account: already registered as {}",
            account.url
        )),
    }
    Ok(Status::Ok)
}

/// `--account --rollover`: a new account key, made known to the CA.
pub fn rollover(session: &mut Session) -> Result<Status> {
    session.lock()?;
    let client = session.connect()?;
    let account = session.existing_account(&client)?;
    let account = account::rollover(
        &client,
        &session.account_dir(),
        account,
        session.config.account_key_algo,
        unix_now(),
    )?;
    logging::info(format_args!(
        "account: {} has a new {} key ({})",
        account.url,
        account.key.alg(),
        account.key.thumbprint()
    ));
    Ok(Status::Ok)
}

/// `--account`: sets the account's contact to `CONTACT_EMAIL` (none when unset), and keeps the
/// CA's answer in `registration_info.json`, the old one saved as `registration_info-<ts>.json`.
pub fn update_contact(session: &mut Session) -> Result<Status> {
    session.lock()?;
    let client = session.connect()?;
    let account = session.existing_account(&client)?;
    let contact: Vec<String> = session
        .config
        .contact_email
        .iter()
        .map(|m| format!("mailto:{m}"))
        .collect();
    let response = client
        .post(
            &account.key,
            account.kid(),
            &account.url,
            Some(&json!({ "contact": contact })),
        )
        .map_err(Error::acme("account"))?;
    let dir = session.account_dir();
    let registration = dir.registration();
    if std::fs::read(&registration).ok().as_deref() != Some(&response.body[..]) {
        if registration.exists() {
            let backup = dir.registration_backup(unix_now());
            std::fs::copy(&registration, &backup).map_err(Error::io("cannot copy", &backup))?;
        }
        store::write_file(&registration, &response.body, 0o600)?;
    }
    logging::info(format_args!(
        "account: contact of {} is now {}",
        account.url,
        if contact.is_empty() {
            "none".to_string()
        } else {
            contact.join(", ")
        }
    ));
    Ok(Status::Ok)
}

/// `--deactivate`: deactivates the account at the CA for good and marks its folder, as
/// dehydrated does, so that no later run uses it.
pub fn deactivate(session: &mut Session) -> Result<Status> {
    session.lock()?;
    let client = session.connect()?;
    let account = session.existing_account(&client)?;
    let response = client
        .post(
            &account.key,
            account.kid(),
            &account.url,
            Some(&json!({ "status": "deactivated" })),
        )
        .map_err(Error::acme("account"))?;
    let status = response
        .json::<serde_json::Value>()
        .map_err(Error::acme("account"))?["status"]
        .clone();
    if status != "deactivated" {
        return Err(Error::refused(
            "account",
            format!(
                "the CA answered the deactivation with status {}",
                crate::acme::text::shown(&status.to_string())
            ),
        ));
    }
    store::write_file(&session.account_dir().deactivated(), b"", 0o600)?;
    logging::info(format_args!("account: {} deactivated", account.url));
    Ok(Status::Ok)
}

/// `--display-terms`: the CA's terms of service URL.
pub fn display_terms(session: &Session) -> Result<Status> {
    let client = session.connect()?;
    match &client.directory.meta.terms_of_service {
        Some(url) => logging::data_line(format_args!("The current terms of service: {url}")),
        None => logging::data_line(format_args!("The CA publishes no terms of service URL.")),
    }
    Ok(Status::Ok)
}
