//! Who may write the files desiccant obeys: the config, `CONFIG_D` and its files, `DOMAINS_D`
//! and the per-certificate configs, domains.txt, the hook, `CA_BUNDLE`. As sshd's StrictModes:
//! such a file, and every folder on the way to it from `/` (symlinks followed and checked the
//! same way), must be owned by root or by the user desiccant runs as, and not be writable by
//! group or others. A folder writable by others is accepted only with the sticky bit set (a
//! `/tmp`-like folder): there only the owner of an entry can remove or rename it, and the entry
//! itself must be root's or ours.
//!
//! Everything here is checked before the file is read or run, and a file is read through the
//! very entry that was checked (`O_NOFOLLOW`, same device and inode), so that a change between
//! the check and the read is refused too.

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::fs::{self, File, Metadata, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};

use crate::error::{Error, Result};
use crate::store::{effective_uid, user_name};

/// What kind of entry a checked path must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A file read as instructions or trust anchors.
    File,
    /// A folder whose files are read (`CONFIG_D`, `DOMAINS_D`).
    Folder,
    /// A program run (the hook): a file with an execute bit.
    Program,
}

/// Symlinks followed on the way before giving up, as the kernel's own limit.
const MAX_LINKS: usize = 40;

/// Ok when `path` may be obeyed (see the module's doc); else an error naming the entry that is
/// not, its owner and mode, and what to run to fix it. `what` names the file for the message
/// ("config", "hook", ...).
pub fn check(path: &Path, kind: Kind, what: &str) -> Result<()> {
    resolve(path, kind, what).map(|_| ())
}

/// The text of `path` once [`check`] allows it, read through the checked entry.
pub fn read_to_string(path: &Path, what: &str) -> Result<String> {
    let bytes = read(path, what)?;
    String::from_utf8(bytes).map_err(|_| {
        Error::Config(format!(
            "{}: cannot read the {what}: it is not UTF-8 text",
            path.display()
        ))
    })
}

/// The bytes of `path` once [`check`] allows it, read through the checked entry.
pub fn read(path: &Path, what: &str) -> Result<Vec<u8>> {
    let (real, checked) = resolve(path, Kind::File, what)?;
    let cannot = |e: std::io::Error| {
        Error::Config(format!("{}: cannot read the {what}: {e}", path.display()))
    };
    let mut file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(&real)
        .map_err(cannot)?;
    let opened = file.metadata().map_err(cannot)?;
    if (opened.dev(), opened.ino()) != (checked.dev(), checked.ino()) {
        return Err(Error::Config(format!(
            "{}: the {what} changed while it was checked; run again",
            path.display()
        )));
    }
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).map_err(cannot)?;
    Ok(bytes)
}

/// Walks `path` from `/`, component by component, following symlinks by hand so that every
/// folder and link on the way is checked; returns the final entry's real path and metadata.
fn resolve(path: &Path, kind: Kind, what: &str) -> Result<(PathBuf, Metadata)> {
    let refuse = |msg: String| Error::Config(format!("{}: {msg}", path.display()));
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map_err(|e| refuse(format!("cannot find the current folder: {e}")))?
            .join(path)
    };
    let me = effective_uid();
    let mut at = PathBuf::from("/");
    let mut at_meta = fs::metadata(&at).map_err(|e| refuse(format!("cannot read /: {e}")))?;
    folder_ok(&at, &at_meta, me).map_err(|m| refuse(refusal(what, &m)))?;
    let mut pending: VecDeque<OsString> = components(&absolute);
    let mut links = 0;
    while let Some(name) = pending.pop_front() {
        if name == ".." {
            at.pop();
            at_meta = fs::metadata(&at).map_err(|e| refuse(format!("cannot read {e}")))?;
            continue;
        }
        let next = at.join(&name);
        let meta = fs::symlink_metadata(&next)
            .map_err(|e| refuse(format!("cannot use the {what}: {}: {e}", next.display())))?;
        owner_ok(&next, &meta, me).map_err(|m| refuse(refusal(what, &m)))?;
        if meta.file_type().is_symlink() {
            links += 1;
            if links > MAX_LINKS {
                return Err(refuse(format!(
                    "cannot use the {what}: too many symlinks on the way"
                )));
            }
            let target = fs::read_link(&next)
                .map_err(|e| refuse(format!("cannot read the link {}: {e}", next.display())))?;
            if target.is_absolute() {
                at = PathBuf::from("/");
            }
            for c in components(&target).into_iter().rev() {
                pending.push_front(c);
            }
            continue;
        }
        if pending.is_empty() {
            final_ok(&next, &meta, kind).map_err(|m| refuse(refusal(what, &m)))?;
            return Ok((next, meta));
        }
        if !meta.is_dir() {
            return Err(refuse(format!(
                "cannot use the {what}: {} is not a folder",
                next.display()
            )));
        }
        folder_ok(&next, &meta, me).map_err(|m| refuse(refusal(what, &m)))?;
        at = next;
        at_meta = meta;
    }
    // The path was `/` itself.
    final_ok(&at, &at_meta, kind).map_err(|m| refuse(refusal(what, &m)))?;
    Ok((at, at_meta))
}

/// Opens a folder desiccant writes into but does not obey, which other users may own (a webroot
/// the web server's user owns, `ALPNCERTDIR`): every folder on the way is opened from its
/// parent's handle without following a symlink in its place, and a symlink on the way is
/// followed only when it is root's or ours (its owner and target read from the link itself), so
/// that it names a place root chose. Writes and removals then go through the handle
/// ([`crate::store::write_at`]), so another user who swaps a folder for a link at any moment
/// still cannot make a root run write or remove anything outside that user's own folders.
pub fn open_folder(path: &Path, what: &str) -> Result<File> {
    let refuse = |msg: String| Error::Config(format!("{what}: {msg}"));
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map_err(|e| refuse(format!("cannot find the current folder: {e}")))?
            .join(path)
    };
    let me = effective_uid();
    let root =
        open_dir_at(None, OsStr::new("/")).map_err(|e| refuse(format!("cannot open /: {e}")))?;
    let mut folders: Vec<(PathBuf, File)> = vec![(PathBuf::from("/"), root)];
    let mut pending: VecDeque<OsString> = components(&absolute);
    let mut links = 0;
    while let Some(name) = pending.pop_front() {
        if name == ".." {
            if folders.len() > 1 {
                folders.pop();
            }
            continue;
        }
        let (at, dir) = folders.last().expect("the root is never popped");
        let next = at.join(&name);
        let link = open_link_at(dir, &name)
            .map_err(|e| refuse(format!("cannot use {}: {e}", next.display())))?;
        if let Some((owner, target)) = link {
            links += 1;
            if links > MAX_LINKS {
                return Err(refuse("too many symlinks on the way".into()));
            }
            // Owner and target come from the same inode: a link of root's (or ours) names a
            // place root chose, wherever it sits; one of another user is not followed.
            if owner != 0 && owner != me {
                return Err(refuse(format!(
                    "the symlink {} is not followed, since it is another user's (uid {owner}); \
                     make it root's or put the real path in the config",
                    next.display()
                )));
            }
            if target.is_absolute() {
                folders.truncate(1);
            }
            for c in components(&target).into_iter().rev() {
                pending.push_front(c);
            }
            continue;
        }
        let opened = open_dir_at(Some(dir), &name).map_err(|e| {
            refuse(format!(
                "cannot open the folder {} (a symlink put there by another user is not \
                 followed): {e}",
                next.display()
            ))
        })?;
        folders.push((next, opened));
    }
    Ok(folders.pop().expect("the root is never popped").1)
}

/// `name` in the folder `dir` is a handle of (or `/` itself), opened as a folder without
/// following a symlink.
fn open_dir_at(dir: Option<&File>, name: &OsStr) -> std::io::Result<File> {
    use std::os::fd::{AsRawFd, FromRawFd};
    use std::os::unix::ffi::OsStrExt;
    let c_name = std::ffi::CString::new(name.as_bytes())?;
    let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    let at = dir.map_or(libc::AT_FDCWD, |d| d.as_raw_fd());
    // SAFETY: a valid folder descriptor (or AT_FDCWD) and C string; the result is checked.
    let fd = unsafe { libc::openat(at, c_name.as_ptr(), flags) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fd is a new descriptor owned by nobody else.
    Ok(unsafe { File::from_raw_fd(fd) })
}

/// When `name` in the folder `dir` is a handle of is a symlink: its owner and its target, both
/// read through one handle of the link itself (`O_PATH | O_NOFOLLOW`), so that a link swapped
/// in between cannot lend its target to another's owner. None for anything else.
fn open_link_at(dir: &File, name: &OsStr) -> std::io::Result<Option<(u32, PathBuf)>> {
    use std::os::fd::{AsRawFd, FromRawFd};
    use std::os::unix::ffi::{OsStrExt, OsStringExt};
    let c_name = std::ffi::CString::new(name.as_bytes())?;
    let flags = libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    // SAFETY: a valid folder descriptor and C string; the result is checked.
    let fd = unsafe { libc::openat(dir.as_raw_fd(), c_name.as_ptr(), flags) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fd is a new descriptor owned by nobody else.
    let handle = unsafe { File::from_raw_fd(fd) };
    let meta = handle.metadata()?;
    if !meta.file_type().is_symlink() {
        return Ok(None);
    }
    let mut buf = vec![0u8; libc::PATH_MAX as usize];
    // SAFETY: an O_PATH descriptor of a symlink and an empty path read that link (readlinkat(2));
    // the buffer is as long as said.
    let n = unsafe {
        libc::readlinkat(
            handle.as_raw_fd(),
            c"".as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    if n < 0 {
        return Err(std::io::Error::last_os_error());
    }
    buf.truncate(n as usize);
    Ok(Some((meta.uid(), PathBuf::from(OsString::from_vec(buf)))))
}

fn components(path: &Path) -> VecDeque<OsString> {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some("..".into()),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
        })
        .collect()
}

/// Every entry on the way, links included, must be root's or ours.
fn owner_ok(entry: &Path, meta: &Metadata, me: u32) -> std::result::Result<(), String> {
    if meta.uid() == 0 || meta.uid() == me {
        Ok(())
    } else {
        Err(describe(entry, meta, "is owned by another user", me))
    }
}

/// A folder on the way: root's or ours, and not writable by group or others unless sticky.
fn folder_ok(entry: &Path, meta: &Metadata, me: u32) -> std::result::Result<(), String> {
    owner_ok(entry, meta, me)?;
    let sticky = meta.mode() & 0o1000 != 0;
    if meta.mode() & 0o022 != 0 && !sticky {
        return Err(describe(entry, meta, "is writable by group or others", me));
    }
    Ok(())
}

/// The entry itself: of the right kind and not writable by group or others.
fn final_ok(entry: &Path, meta: &Metadata, kind: Kind) -> std::result::Result<(), String> {
    let me = effective_uid();
    match kind {
        Kind::Folder if !meta.is_dir() => {
            return Err(format!("{} is not a folder", entry.display()));
        }
        Kind::File | Kind::Program if !meta.is_file() => {
            return Err(format!("{} is not a regular file", entry.display()));
        }
        _ => {}
    }
    if meta.mode() & 0o022 != 0 {
        return Err(describe(entry, meta, "is writable by group or others", me));
    }
    Ok(())
}

/// `<entry> is owned by another user (owner www-data, uid 33, mode 0644); <fix>`.
fn describe(entry: &Path, meta: &Metadata, problem: &str, me: u32) -> String {
    let e = entry.display();
    let me_name = user_name(me).unwrap_or_else(|| me.to_string());
    let owners = if me == 0 {
        "root".to_string()
    } else {
        format!("root or by {me_name}, the user of this run,")
    };
    format!(
        "{e} {problem} (owner {}, uid {}, mode {:04o}); it must be owned by {owners} and not \
         be writable by group or others: if you trust what it says, chown {me_name} {e} && \
         chmod go-w {e}; else remove it",
        user_name(meta.uid()).unwrap_or_else(|| "unknown".into()),
        meta.uid(),
        meta.mode() & 0o7777,
    )
}

fn refusal(what: &str, why: &str) -> String {
    format!("refused as the {what}, since others could change what it says: {why}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn tempdir(tag: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("desiccant-trust-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        dir
    }

    fn chmod(path: &Path, mode: u32) {
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn a_file_only_root_or_we_can_change_is_read() {
        let dir = tempdir("ok");
        let file = dir.join("config");
        fs::write(&file, "A=1\n").unwrap();
        chmod(&file, 0o644);
        assert_eq!(read_to_string(&file, "config").unwrap(), "A=1\n");
        // Reached through a link in a folder of ours: the link and its target are checked.
        std::os::unix::fs::symlink("config", dir.join("link")).unwrap();
        assert_eq!(
            read_to_string(&dir.join("link"), "config").unwrap(),
            "A=1\n"
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_file_or_folder_others_can_write_is_refused_with_its_owner_and_mode() {
        let dir = tempdir("writable");
        let file = dir.join("config");
        fs::write(&file, "A=1\n").unwrap();
        chmod(&file, 0o666);
        let err = read_to_string(&file, "config").unwrap_err().to_string();
        assert!(
            err.contains("mode 0666") && err.contains("chmod go-w"),
            "{err}"
        );
        chmod(&file, 0o644);
        let sub = dir.join("sub");
        fs::create_dir(&sub).unwrap();
        fs::write(sub.join("hook"), "#!/bin/sh\n").unwrap();
        chmod(&sub.join("hook"), 0o755);
        chmod(&sub, 0o775);
        let err = check(&sub.join("hook"), Kind::Program, "hook")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&format!("{} is writable", sub.display())),
            "{err}"
        );
        assert!(err.contains("mode 0775"), "{err}");
        // The sticky exception: a /tmp-like folder, whose entries only their owners may move.
        chmod(&sub, 0o1777);
        check(&sub.join("hook"), Kind::Program, "hook").unwrap();
        chmod(&sub, 0o755);
        // A link through a folder others can write is refused though its target is fine.
        let open = dir.join("open");
        fs::create_dir(&open).unwrap();
        chmod(&open, 0o777);
        std::os::unix::fs::symlink(&file, open.join("link")).unwrap();
        assert!(read(&open.join("link"), "config").is_err());
        assert!(
            check(&dir, Kind::File, "config").is_err(),
            "a folder is no file"
        );
        check(&dir, Kind::Folder, "CONFIG_D").unwrap();
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_file_of_another_user_is_refused() {
        if effective_uid() != 0 {
            return; // only root can give a file away
        }
        let dir = tempdir("owner");
        let file = dir.join("config");
        fs::write(&file, "A=1\n").unwrap();
        std::os::unix::fs::chown(&file, Some(65534), None).unwrap();
        let err = read(&file, "config").unwrap_err().to_string();
        assert!(
            err.contains("uid 65534,") && err.contains("chown root"),
            "{err}"
        );
        std::os::unix::fs::chown(&file, Some(0), None).unwrap();
        std::os::unix::fs::chown(&dir, Some(65534), None).unwrap();
        let err = read(&file, "config").unwrap_err().to_string();
        assert!(
            err.contains(&format!("{} is owned by", dir.display())),
            "{err}"
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_fifo_is_not_waited_on() {
        let dir = tempdir("fifo");
        let fifo = dir.join("fifo");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid C string.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        assert!(read(&fifo, "config").is_err());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_folder_written_into_is_reached_only_through_links_root_made() {
        if effective_uid() != 0 {
            return; // only root can give a link away
        }
        let dir = tempdir("open-folder");
        let real = dir.join("real");
        fs::create_dir(&real).unwrap();
        // The web server's folder, with a link root made in it: followed.
        let site = dir.join("site");
        fs::create_dir(&site).unwrap();
        std::os::unix::fs::chown(&site, Some(65534), Some(65534)).unwrap();
        std::os::unix::fs::symlink(&real, site.join("by-root")).unwrap();
        let opened = open_folder(&site.join("by-root"), "WELLKNOWN").unwrap();
        let held = fs::canonicalize(crate::store::held(&opened)).unwrap();
        assert_eq!(held, fs::canonicalize(&real).unwrap());
        // A link of that user's: not followed, whatever it points at.
        std::os::unix::fs::symlink(&real, site.join("by-user")).unwrap();
        std::os::unix::fs::lchown(site.join("by-user"), Some(65534), Some(65534)).unwrap();
        let err = open_folder(&site.join("by-user"), "WELLKNOWN")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("is not followed") && err.contains("uid 65534"),
            "{err}"
        );
        fs::remove_dir_all(&dir).unwrap();
    }
}
