//! `--revoke FILE`: revocation by the account key, or with `--privkey` by the certificate's own.

use std::path::{Path, PathBuf};

use serde_json::json;

use super::session::Session;
use crate::acme::KeyId;
use crate::acme::jws::b64;
use crate::error::{Error, Result, Status};
use crate::{logging, x509};

/// Revokes the certificate at `path`, signed by the account key, or by `key` (the
/// certificate's own); then renames the file to `FILE-revoked`, as dehydrated does (a symlink
/// is followed to the file it names).
pub fn revoke(
    session: &mut Session,
    path: &Path,
    key: Option<&Path>,
    reason: Option<u8>,
) -> Result<Status> {
    let file = match std::fs::read_link(path) {
        Ok(target) if target.is_absolute() => target,
        Ok(target) => path.parent().unwrap_or(Path::new(".")).join(target),
        Err(_) => path.to_path_buf(),
    };
    let subject = file.display().to_string();
    let bytes = std::fs::read(&file)
        .map_err(|e| Error::Config(format!("{subject}: cannot read the certificate: {e}")))?;
    let der = x509::pem_certs(&bytes)
        .map_err(|msg| Error::Config(format!("{subject}: {msg}")))?
        .remove(0);
    let cert_key = match key {
        None => None,
        Some(k) => {
            let text = std::fs::read_to_string(k)
                .map_err(|e| Error::Config(format!("{}: cannot read the key: {e}", k.display())))?;
            Some(
                crate::account::read_key(&text).map_err(|e| {
                    Error::Config(format!("{}: cannot use this key: {e}", k.display()))
                })?,
            )
        }
    };
    session.lock()?;
    let client = session.connect()?;
    let url = client.directory.revoke_cert.clone().ok_or_else(|| {
        Error::refused(
            &subject,
            "the CA offers no revocation (no revokeCert in its directory)",
        )
    })?;
    let mut payload = json!({ "certificate": b64(&der) });
    if let Some(reason) = reason {
        payload["reason"] = json!(reason);
    }
    let account;
    let (key, key_id) = match &cert_key {
        Some(key) => (key, KeyId::Jwk),
        None => {
            account = session.existing_account(&client)?;
            (&account.key, account.kid())
        }
    };
    client
        .post(key, key_id, &url, Some(&payload))
        .map_err(Error::acme(&subject))?;
    let revoked = PathBuf::from(format!("{}-revoked", file.display()));
    std::fs::rename(&file, &revoked).map_err(Error::io("cannot rename", &file))?;
    logging::info(format_args!(
        "{subject}: revoked, renamed to {}",
        revoked.display()
    ));
    Ok(Status::Ok)
}
