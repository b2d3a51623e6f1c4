//! `--cleanup`, `--cleanup-delete` and `AUTO_CLEANUP`: the files of older sets.

use std::path::PathBuf;

use super::session::Session;
use crate::error::{Error, Result, Status};
use crate::logging;
use crate::store;

/// Moves every file of `certs/<name>/` that no symlink points at (older sets, `-revoked`
/// files) to `BASEDIR/archive/<name>/`; with `delete`, deletes them. Broken symlinks are
/// removed.
pub fn cleanup(session: &mut Session, delete: bool) -> Result<Status> {
    session.lock()?;
    let config = &session.config;
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
