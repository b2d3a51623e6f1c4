//! `--cleanup`, `--cleanup-delete` and `AUTO_CLEANUP`: the files of older sets, and the
//! folders of certificates that left domains.txt.

use std::path::PathBuf;

use super::session::Session;
use crate::config::Config;
use crate::error::{Error, Result, Status};
use crate::logging;
use crate::store;

/// Moves every file of `certs/<name>/` that no symlink points at (older sets, `-revoked`
/// files) to `BASEDIR/archive/<name>/`; with `delete`, deletes them. Broken symlinks are
/// removed.
pub fn cleanup(session: &mut Session, delete: bool) -> Result<Status> {
    session.lock()?;
    archive_unused(&session.config, delete)
}

/// The work of [`cleanup`], for a caller that holds the lock already (`AUTO_CLEANUP` at the
/// end of `--cron`, before its summary line).
pub fn archive_unused(config: &Config, delete: bool) -> Result<Status> {
    let Ok(entries) = std::fs::read_dir(&config.certdir) else {
        return Ok(Status::Ok);
    };
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    for dir in dirs {
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        for unused in store::unused_files(&dir)? {
            let file = dir.join(&unused);
            if delete {
                std::fs::remove_file(&file).map_err(Error::io("cannot delete", &file))?;
                logging::info(format_args!("{name}: deleted unused {unused}"));
            } else {
                let archive = store::archive_dir(&config.basedir, &name);
                store::create_dir(&archive, 0o700)?;
                std::fs::rename(&file, archive.join(&unused))
                    .map_err(Error::io("cannot move to the archive", &file))?;
                logging::info(format_args!("{name}: archived unused {unused}"));
            }
        }
    }
    Ok(Status::Ok)
}

/// `--cleanup` and `--cleanup-delete`: moves the whole folder of every certificate that
/// domains.txt no longer names to `BASEDIR/archive/<name>.removed-<time>/`, key included, never
/// deleting it. Not done by `AUTO_CLEANUP`: a line commented out for a while must not take away
/// a certificate a server still uses. A domains.txt that cannot be read archives nothing.
pub fn archive_removed(session: &mut Session) -> Result<()> {
    let specs = session.specs()?;
    session.lock()?;
    let config = &session.config;
    let now = super::session::unix_now();
    for name in session.removed(&specs) {
        let from = store::CertDir::new(&config.certdir, &name).dir;
        let to = store::removed_archive_dir(&config.basedir, &name, now);
        if let Some(archive) = to.parent() {
            store::create_dir(archive, 0o700)?;
        }
        std::fs::rename(&from, &to).map_err(Error::io("cannot move to the archive", &from))?;
        logging::info(format_args!(
            "{name}: no longer in domains.txt, archived to {}",
            to.display()
        ));
    }
    Ok(())
}
