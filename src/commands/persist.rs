//! `--persist-record`: the dns-persist-01 record each name in scope needs for this account, as
//! zone file lines; nothing is ordered and nothing is published.

use std::collections::HashSet;

use super::session::Session;
use crate::error::{Error, Result, Status};
use crate::{logging, persist};

/// Prints one zone file line per name (a wildcard and its base name share one) of every
/// certificate in scope (domains.txt, or `--domain`), each once. Asks the CA for its directory
/// only (for the issuer domain name in `caaIdentities`, unless `PERSIST_ISSUER` is set, and to
/// find the account folder's URL when account_id.json does not have it).
pub fn print_records(session: &Session) -> Result<Status> {
    let config = &session.config;
    let client = session.connect()?;
    let account = session.existing_account(&client)?;
    let caa = &client.directory.meta.caa_identities;
    let issuer = persist::issuer(config.persist.issuer.as_deref(), caa).map_err(Error::Config)?;
    let mut printed = HashSet::new();
    for entry in session.specs()? {
        for record in persist::records(entry.names(), &issuer, &account.url, &config.persist) {
            if printed.insert(record.name.clone()) {
                logging::data_line(format_args!("{}", persist::zone_line(&record)));
            }
        }
    }
    Ok(Status::Ok)
}
