//! `--signcsr FILE`: a certificate for a CSR made elsewhere, printed as dehydrated prints it.

use std::path::Path;

use super::dry_run::Rehearsal;
use super::session::{Session, certbot_runner, check_webroot, connect, solver, start_responder};
use crate::error::{Error, Result, Status};
use crate::issue::{self, Ctx, KeySource, Request};
use crate::{logging, x509};

/// Threads that answer the authorizations of the order.
const AUTHZ_WORKERS: usize = 16;

/// Orders a certificate for the CSR at `path` and prints it, as dehydrated does: `# CERT #`,
/// the certificate, an empty line, and with `--full-chain` `# CHAIN #` and the chain.
/// Everything else goes to stderr; nothing is written under `certs/`. With `--dry-run` the CA
/// is the test endpoint of the configured one when it has one, and nothing is printed on
/// stdout: a line on stderr says what was issued.
pub fn sign_csr(session: &mut Session, path: &Path) -> Result<Status> {
    logging::stdout_is_data();
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::Config(format!("{}: cannot read the CSR: {e}", path.display())))?;
    let (csr, names) =
        x509::read_csr(&text).map_err(|msg| Error::Config(format!("{}: {msg}", path.display())))?;
    session.lock()?;
    let rehearsal = if session.opts.dry_run {
        Some(Rehearsal::start(&session.config)?)
    } else {
        None
    };
    let config = rehearsal.as_ref().map_or(&session.config, |r| &r.trial);
    let responder = start_responder(config, &[&config.defaults])?;
    check_webroot(&config.defaults, responder.is_some())?;
    let client = connect(config)?;
    let account = match &rehearsal {
        Some(r) => r.account(session, &client)?,
        None => session.account(&client)?.0,
    };
    let ctx = Ctx {
        client: &client,
        account: &account,
        workers: AUTHZ_WORKERS,
        force_validation: false,
    };
    let hook = session.hook(None);
    let certbot = certbot_runner(&session.config, None).map(|h| session.dry(h));
    let solver = solver(
        config,
        &config.defaults,
        hook.as_ref(),
        certbot.as_ref(),
        responder.as_ref(),
    );
    let request = Request {
        subject: &names[0],
        names: &names,
        key: KeySource::Csr(csr),
        preferred_chain: config.defaults.preferred_chain.as_deref(),
        profile: config.defaults.profile.as_deref(),
        replaces: None,
    };
    let issue::Done {
        issued, cleaned, ..
    } = issue::issue(&ctx, request, &solver, |_| Ok(()))?;
    if rehearsal.is_some() {
        logging::info(format_args!(
            "dry run passed: a certificate for {} valid until {} was issued and checked, and \
             not printed",
            names.join(", "),
            logging::utc(issued.not_after)
        ));
        return cleaned.map(|()| Status::Ok);
    }
    let mut out = format!("# CERT #\n{}\n", issued.cert);
    if session.opts.full_chain {
        out.push_str(&format!("# CHAIN #\n{}", issued.chain));
    }
    logging::data(format_args!("{out}"));
    // The certificate is printed all the same; what was left in place is an error.
    cleaned.map(|()| Status::Ok)
}
