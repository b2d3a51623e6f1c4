//! Dehydrated's layout on disk as typed paths; crash-safe writes, atomic symlink switches and
//! the run lock.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use base64::Engine;

use crate::error::{Error, Result};

/// Mode of private keys, whatever the umask.
pub const KEY_MODE: u32 = 0o600;
/// Mode of the account folder.
pub const ACCOUNT_DIR_MODE: u32 = 0o700;
/// Mode of certificates, chains and CSRs: public data.
pub const PUBLIC_MODE: u32 = 0o644;

/// The names dehydrated gives the parts of `BASEDIR` when its config does not set them.
pub mod defaults {
    pub const CERTDIR: &str = "certs";
    pub const ACCOUNTDIR: &str = "accounts";
    pub const DOMAINS_TXT: &str = "domains.txt";
    pub const LOCKFILE: &str = "lock";
    pub const ALPNCERTDIR: &str = "alpn-certs";
    pub const CHAINCACHE: &str = "chains";
}

/// `WEBROOT/.well-known/acme-challenge`: where a document root serves http-01 files (RFC 8555
/// §8.3).
pub fn webroot_challenges(webroot: &Path) -> PathBuf {
    webroot.join(".well-known").join("acme-challenge")
}

/// `BASEDIR/archive/<name>/`: where `--cleanup` moves the unused files of a certificate.
pub fn archive_dir(basedir: &Path, name: &str) -> PathBuf {
    basedir.join("archive").join(name)
}

/// `CHAINCACHE/<issuer hash>.chain`: dehydrated's chain cache.
pub fn cached_chain(chain_cache: &Path, issuer_hash: &str) -> PathBuf {
    chain_cache.join(format!("{issuer_hash}.chain"))
}

/// `BASEDIR/state/`: our own run state beside dehydrated's layout, one file per certificate,
/// one for the CA and one for the runs.
#[derive(Debug, Clone)]
pub struct StateLayout {
    pub dir: PathBuf,
}

impl StateLayout {
    pub fn new(basedir: &Path) -> StateLayout {
        StateLayout {
            dir: basedir.join("state"),
        }
    }

    /// What we remember of certificate `name`.
    pub fn cert(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.json"))
    }

    /// The challenges of `name` while they are in place.
    pub fn challenges(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.challenges.json"))
    }

    /// The certificates whose challenges are noted as in place ([`StateLayout::challenges`]),
    /// from one listing of the folder: None when it cannot be listed, and none when it is
    /// not there.
    pub fn challenges_left(&self) -> Option<std::collections::HashSet<String>> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Some(Default::default()),
            Err(_) => return None,
        };
        Some(
            entries
                .filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter_map(|n| n.strip_suffix(".challenges.json").map(str::to_string))
                .collect(),
        )
    }

    /// What we learnt of the CA's directory. Its name starts with a dot, which no certificate's
    /// name can (domains.txt refuses such an alias), so that a certificate called `ca` keeps
    /// its own state.
    pub fn ca(&self) -> PathBuf {
        self.dir.join(".ca.json")
    }

    /// What we remember of the runs; a dot first, as [`StateLayout::ca`].
    pub fn run(&self) -> PathBuf {
        self.dir.join(".run.json")
    }

    /// What was read of every live certificate, with the identity of the file it was read
    /// from: a cache, so that an unchanged `cert.pem` is not parsed again. A dot first, as
    /// [`StateLayout::ca`].
    pub fn live_cache(&self) -> PathBuf {
        self.dir.join(".live.json")
    }
}

/// A name for a temporary file next to `path`, unique within this process and across processes.
fn temp_name(path: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp-{}-{n}", std::process::id()))
}

/// Writes `bytes` to `path` so that no reader ever sees a partial file: a temporary file in the
/// same folder, created with `mode` (never wider, whatever the umask), written, fsynced, renamed
/// over `path`; then the folder is fsynced.
pub fn write_file(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    replace_file(path, bytes, Owner::mode(mode), true)?;
    sync_dir(parent(path))
}

/// Like [`write_file`] but without any fsync, for files that need not survive a crash (challenge
/// files): readers still never see a partial file.
pub fn write_ephemeral(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    replace_file(path, bytes, Owner::mode(mode), false)
}

/// The mode, and optionally the owner and group, a written file or folder gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    pub mode: u32,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
}

impl Owner {
    /// Only a mode; owner and group are the process's.
    pub fn mode(mode: u32) -> Owner {
        Owner {
            mode,
            uid: None,
            gid: None,
        }
    }
}

/// How the files of `certs/<name>/` are written: `CERT_FILE_MODE`, `KEY_FILE_MODE`,
/// `CERT_DIR_MODE`, `CERT_OWNER` and `CERT_GROUP`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CertModes {
    /// Certificates, chains and CSRs.
    pub file: Owner,
    /// Private keys.
    pub key: Owner,
    /// The folder.
    pub dir: Owner,
}

impl Default for CertModes {
    fn default() -> Self {
        CertModes {
            file: Owner::mode(PUBLIC_MODE),
            key: Owner::mode(KEY_MODE),
            dir: Owner::mode(0o755),
        }
    }
}

/// A temporary file written (and fsynced when `durable`), renamed over `path`. It is created
/// readable by its owner only, given its owner and group, and only then opened up to the
/// mode asked: never wider than that at any moment, whatever the umask.
fn replace_file(path: &Path, bytes: &[u8], owner: Owner, durable: bool) -> Result<()> {
    let tmp = temp_name(path);
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(owner.mode & 0o700)
            .open(&tmp)?;
        if owner.uid.is_some() || owner.gid.is_some() {
            std::os::unix::fs::fchown(&file, owner.uid, owner.gid)?;
        }
        file.set_permissions(fs::Permissions::from_mode(owner.mode))?;
        file.write_all(bytes)?;
        if durable {
            file.sync_all()?;
        }
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map_err(Error::io("cannot write", path))
}

/// Points the symlink `link` at `target` (a name in the same folder) by renaming a new link over
/// it, so that `link` always resolves to the old or the new file.
pub fn switch_link(link: &Path, target: &str) -> Result<()> {
    let tmp = temp_name(link);
    std::os::unix::fs::symlink(target, &tmp).map_err(Error::io("cannot create a symlink", &tmp))?;
    fs::rename(&tmp, link).map_err(|e| {
        let _ = fs::remove_file(&tmp);
        Error::io("cannot switch the symlink", link)(e)
    })
}

/// The path of the folder a handle holds, `/proc/self/fd/<n>`: the folder opened, whatever has
/// been renamed or swapped for a link since. Only the last component of a path under it is
/// looked up by name, and creating (`O_EXCL`), renaming over or removing an entry never follows
/// a symlink there.
pub fn held(dir: &File) -> PathBuf {
    use std::os::fd::AsRawFd;
    PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd()))
}

/// [`write_ephemeral`] of `name` into the folder `dir` holds (see [`crate::trust::open_folder`]);
/// errors name `shown`, the folder's path as configured.
pub fn write_at(dir: &File, shown: &Path, name: &str, bytes: &[u8], mode: u32) -> Result<()> {
    plain_name(name, shown)?;
    replace_file(&held(dir).join(name), bytes, Owner::mode(mode), false).map_err(|e| match e {
        Error::Io { what, err, .. } => Error::Io {
            path: shown.join(name),
            what,
            err,
        },
        other => other,
    })
}

/// [`write_file`] of `name` into the folder `dir` holds (see [`crate::trust::open_folder`]): a
/// temporary file fsynced and renamed over `name`, then the folder fsynced through its handle;
/// errors name `shown`, the folder's path as configured.
pub fn write_durable_at(
    dir: &File,
    shown: &Path,
    name: &str,
    bytes: &[u8],
    mode: u32,
) -> Result<()> {
    plain_name(name, shown)?;
    replace_file(&held(dir).join(name), bytes, Owner::mode(mode), true).map_err(|e| match e {
        Error::Io { what, err, .. } => Error::Io {
            path: shown.join(name),
            what,
            err,
        },
        other => other,
    })?;
    dir.sync_all()
        .map_err(Error::io("cannot sync the folder", shown))
}

/// Removes the `names` from the folder `dir` holds (never following a link), then the
/// temporary files of dead processes beside them; a missing file is no error.
pub fn remove_at(dir: &File, names: &[&std::ffi::OsStr]) {
    for name in names {
        if !name.as_encoded_bytes().contains(&b'/') {
            let _ = fs::remove_file(held(dir).join(name));
        }
    }
    remove_dead_temp_files(&held(dir));
}

/// Makes the folder `name` in the folder `dir` holds with `mode` whatever the umask, unless
/// something is there already (a folder, or a link root made, which is left as it is).
pub fn make_dir_at(dir: &File, shown: &Path, name: &str, mode: u32) -> Result<()> {
    plain_name(name, shown)?;
    let path = held(dir).join(name);
    let cannot = |e| Error::io("cannot create the folder", shown.join(name))(e);
    match fs::DirBuilder::new().mode(mode).create(&path) {
        Ok(()) => open_dir(&path)
            .and_then(|d| d.set_permissions(fs::Permissions::from_mode(mode)))
            .map_err(cannot),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(cannot(e)),
    }
}

fn plain_name(name: &str, shown: &Path) -> Result<()> {
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        return Err(Error::io("cannot write into", shown)(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a plain file name",
        )));
    }
    Ok(())
}

/// Flushes a folder's entries (renames, new files) to disk.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(Error::io("cannot sync the folder", dir))
}

/// Creates `dir` and its parents when missing; a new last folder gets `mode`, new parents
/// [`FOLDER_MODE`], whatever the umask.
pub fn create_dir(dir: &Path, mode: u32) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    make_dir(dir, mode)
}

/// The mode of a folder made on the way to another (`certs/`, `accounts/`, the lock's):
/// never writable by group or others, and traversable, so that a `CERT_OWNER` can reach its
/// files whatever the umask.
pub const FOLDER_MODE: u32 = 0o755;

/// Creates `dir` when missing and gives it `owner`'s mode and group. The folder always stays
/// the run's own (`owner.uid` is not used): one that another user owns, as an earlier version
/// gave `certs/<name>/` to `CERT_OWNER`, is taken back. It is opened without following a
/// symlink and changed through that handle, and never gets write bits for group or others.
/// Returns whether it was taken back from another user.
pub fn own_dir(dir: &Path, owner: Owner) -> Result<bool> {
    if fs::symlink_metadata(dir).is_err() {
        make_dir(dir, owner.mode & 0o700)?;
    }
    let handle = open_dir(dir).map_err(Error::io("cannot open the folder", dir))?;
    let meta = handle
        .metadata()
        .map_err(Error::io("cannot read the folder", dir))?;
    let taken = meta.uid() != effective_uid();
    let regroup = owner.gid.filter(|&g| g != meta.gid());
    if taken || regroup.is_some() {
        std::os::unix::fs::fchown(&handle, taken.then(effective_uid), owner.gid)
            .map_err(Error::io("cannot change the owner of", dir))?;
    }
    let mode = owner.mode & !0o022;
    if meta.mode() & 0o7777 != mode || taken {
        handle
            .set_permissions(fs::Permissions::from_mode(mode))
            .map_err(Error::io("cannot set the mode of", dir))?;
    }
    Ok(taken)
}

/// The user this process acts as on files.
pub fn effective_uid() -> u32 {
    // SAFETY: geteuid cannot fail and touches no memory.
    unsafe { libc::geteuid() }
}

/// The name of user `uid` in /etc/passwd, for messages.
pub fn user_name(uid: u32) -> Option<String> {
    let text = fs::read_to_string("/etc/passwd").ok()?;
    text.lines().find_map(|l| {
        let mut f = l.split(':');
        let name = f.next()?;
        (f.nth(1)?.parse::<u32>().ok()? == uid).then(|| name.to_string())
    })
}

/// What to do when this run was not permitted to use `path`: when `path` (or, when it does not
/// exist, its folder) belongs to another user than this run's, which user owns it and which
/// this run is, and to run as the owner or root. None when this run is root or the owner (then
/// the mode is the cause, and the error says enough).
pub fn not_permitted_advice(path: &Path) -> Option<String> {
    let me = effective_uid();
    if me == 0 {
        return None;
    }
    let (at, owner) = std::iter::successors(Some(path), |p| p.parent())
        .take(2)
        .find_map(|p| fs::symlink_metadata(p).ok().map(|m| (p, m.uid())))?;
    if owner == me {
        return None;
    }
    let name = |uid: u32| user_name(uid).map_or_else(|| format!("uid {uid}"), |n| n.to_string());
    let run_as = if owner == 0 {
        "root".to_string()
    } else {
        format!("{} or as root", name(owner))
    };
    Some(format!(
        "{} belongs to {} and this run is {}: run desiccant as {run_as}",
        at.display(),
        name(owner),
        name(me)
    ))
}

/// Opens folder `dir` as a handle, refusing a symlink in its place.
pub fn open_dir(dir: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(dir)
}

/// Opens `name`, a plain name in the folder `dir` is a handle of, for reading: never through a
/// symlink, and only a regular file (a FIFO or device planted there is refused, not waited on).
fn open_in(dir: &File, name: &str) -> io::Result<File> {
    use std::os::fd::{AsRawFd, FromRawFd};
    if name.contains('/') {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a plain name",
        ));
    }
    let c_name = std::ffi::CString::new(name)?;
    let flags = libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC;
    // SAFETY: a valid folder descriptor and C string; the result is checked.
    let fd = unsafe { libc::openat(dir.as_raw_fd(), c_name.as_ptr(), flags) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just opened and is owned by nobody else.
    let file = unsafe { File::from_raw_fd(fd) };
    plain(file)
}

/// `file` when it is a regular file; the error otherwise.
fn plain(file: File) -> io::Result<File> {
    if file.metadata()?.is_file() {
        Ok(file)
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        ))
    }
}

/// Reads a file of the layout (state, account, chain cache) without following a symlink in its
/// place, and only when it is a regular file.
pub fn read_plain(path: &Path) -> io::Result<Vec<u8>> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)?;
    let mut bytes = Vec::new();
    plain(file)?.read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Opens a file of `state/` for reading as [`read_plain`] does, but only when this process's
/// user owns it and neither group nor others may write it: Ok(None) for a file someone else
/// could have written.
pub fn open_own(path: &Path) -> io::Result<Option<File>> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() || meta.uid() != effective_uid() || meta.mode() & 0o022 != 0 {
        return Ok(None);
    }
    Ok(Some(file))
}

/// What tells one version of a file from another without reading it: a file whose device,
/// inode, size, owner, modification and change times are all the same has not been written
/// since (a write always moves the change time, which no user can set).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FileId {
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    pub uid: u32,
    /// Modification time, nanoseconds since the epoch (64 bits hold them until 2262).
    pub mtime: i64,
    /// Change time, nanoseconds since the epoch.
    pub ctime: i64,
}

/// A file time as [`FileId`] keeps it: nanoseconds since the epoch, saturated.
fn nanos_since_epoch(secs: i64, nsecs: i64) -> i64 {
    secs.saturating_mul(1_000_000_000).saturating_add(nsecs)
}

impl FileId {
    fn of(meta: &fs::Metadata) -> FileId {
        let nanos = nanos_since_epoch;
        FileId {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            uid: meta.uid(),
            mtime: nanos(meta.mtime(), meta.mtime_nsec()),
            ctime: nanos(meta.ctime(), meta.ctime_nsec()),
        }
    }

    /// Whether the file was written less than `secs` seconds before `now` (Unix seconds): a
    /// write within the file system's clock tick of a read may leave the times unchanged, so
    /// what was read then is not kept against this identity.
    pub fn recent(&self, now: i64, secs: i64) -> bool {
        let newest = self.mtime.max(self.ctime) / 1_000_000_000;
        newest > now - secs
    }
}

fn make_dir(dir: &Path, mode: u32) -> Result<()> {
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty())
        && !parent.is_dir()
    {
        make_dir(parent, FOLDER_MODE)?;
    }
    match fs::DirBuilder::new().mode(mode).create(dir) {
        Ok(()) => fs::set_permissions(dir, fs::Permissions::from_mode(mode))
            .map_err(Error::io("cannot set the mode of", dir)),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        Err(e) => Err(Error::io("cannot create the folder", dir)(e)),
    }
}

fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// `accounts/<base64url(CA URL + "\n")>/`, as dehydrated names it (it encodes `echo`'s output).
pub struct AccountDir {
    pub dir: PathBuf,
}

/// The folders in `dir` (not following symlinks); none when it cannot be read.
fn subfolders(dir: &Path) -> Vec<fs::DirEntry> {
    fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .collect()
        })
        .unwrap_or_default()
}

/// The directory URLs of the CAs `accountdir` holds account folders of, decoded from the
/// folders' names; names that are not dehydrated's encoding are left out. Outside text: the
/// caller checks what it shows.
pub fn account_cas(accountdir: &Path) -> Vec<String> {
    let mut cas: Vec<String> = subfolders(accountdir)
        .into_iter()
        .filter_map(|e| {
            let name = e.file_name();
            let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(name.as_encoded_bytes())
                .ok()?;
            let url = String::from_utf8(bytes).ok()?;
            url.strip_suffix('\n').map(str::to_string)
        })
        .collect();
    cas.sort();
    cas
}

impl AccountDir {
    pub fn new(accountdir: &Path, ca_url: &str) -> AccountDir {
        let hash = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{ca_url}\n"));
        AccountDir {
            dir: accountdir.join(hash),
        }
    }

    pub fn key(&self) -> PathBuf {
        self.dir.join("account_key.pem")
    }

    /// The CA's answer to newAccount.
    pub fn registration(&self) -> PathBuf {
        self.dir.join("registration_info.json")
    }

    /// `{"url": "<account URL>"}`.
    pub fn id(&self) -> PathBuf {
        self.dir.join("account_id.json")
    }

    /// dehydrated's marker of an account deactivated at the CA: no later run uses it.
    pub fn deactivated(&self) -> PathBuf {
        self.dir.join("deactivated")
    }

    /// Where `--account` keeps the CA's previous answer.
    pub fn registration_backup(&self, ts: i64) -> PathBuf {
        self.dir.join(format!("registration_info-{ts}.json"))
    }

    /// Where a key rollover keeps the old account key.
    pub fn key_backup(&self, ts: i64) -> PathBuf {
        self.dir.join(format!("account_key-{ts}.pem"))
    }

    /// The new account key while a rollover is under way.
    pub fn key_pending(&self) -> PathBuf {
        self.dir.join("account_key.pem.new")
    }

    /// Creates the folder 0700.
    pub fn create(&self) -> Result<()> {
        create_dir(&self.dir, ACCOUNT_DIR_MODE)
    }
}

/// A `--dry-run`'s temporary folder under `TMPDIR`: made 0700 under a name nobody held
/// before, holding what the dry run writes in the layout's own names; removed with everything
/// in it when dropped.
pub struct ScratchDir {
    pub dir: PathBuf,
}

impl ScratchDir {
    /// Makes a new folder `desiccant-dry-run.<pid>.<n>` in the temporary folder (`TMPDIR`,
    /// else `/tmp`); one that exists already, whoever made it, is never used.
    pub fn create() -> Result<ScratchDir> {
        let tmp = std::env::temp_dir();
        let salt = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let mut last = None;
        for n in 0..64u32 {
            let dir = tmp.join(format!(
                "desiccant-dry-run.{}.{:08x}",
                std::process::id(),
                salt.wrapping_add(n.wrapping_mul(0x9e37_79b9))
            ));
            match fs::DirBuilder::new().mode(0o700).create(&dir) {
                // Made by this call: the umask may only have taken bits away.
                Ok(()) => {
                    return fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))
                        .map(|()| ScratchDir { dir: dir.clone() })
                        .map_err(Error::io("cannot set the mode of", &dir));
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(dir),
                Err(e) => return Err(Error::io("cannot create the folder", &dir)(e)),
            }
        }
        let dir = last.unwrap_or(tmp);
        Err(Error::io("cannot create the folder", &dir)(
            io::Error::from(io::ErrorKind::AlreadyExists),
        ))
    }

    /// Where the dry run's certificate sets go: its own `certs/`.
    pub fn certdir(&self) -> PathBuf {
        self.dir.join(defaults::CERTDIR)
    }

    /// Where a throwaway account's key goes: its own `accounts/`.
    pub fn accountdir(&self) -> PathBuf {
        self.dir.join(defaults::ACCOUNTDIR)
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// A live file of a certificate folder, found by [`CertDir::live_file`]: its identity as it
/// was when found, and where to open it.
pub struct LiveFile {
    dir: File,
    name: String,
    pub id: FileId,
}

impl LiveFile {
    /// Opens the file, without following a symlink and only when it is a regular file, and
    /// returns it with its identity as of this opening (the file may have been replaced since
    /// it was found).
    pub fn open(&self) -> io::Result<(File, FileId)> {
        let file = open_in(&self.dir, &self.name)?;
        let id = FileId::of(&file.metadata()?);
        Ok((file, id))
    }
}

/// The files of a set, in dehydrated's order of switching their links, and our PKCS#12 export
/// last when there is one.
const SET: [(&str, &str); 6] = [
    ("privkey", "pem"),
    ("chain", "pem"),
    ("fullchain", "pem"),
    ("cert", "csr"),
    ("cert", "pem"),
    ("cert", "p12"),
];

/// The contents of one certificate set, ready to be written. `privkey` is None when the key
/// is not ours (a CSR from the `generate_csr` hook): the live key stays as it is.
pub struct CertFiles<'a> {
    pub privkey: Option<&'a str>,
    pub csr: &'a str,
    pub cert: &'a str,
    pub chain: &'a str,
    /// `cert.p12`, written with the key's mode, when `PKCS12_EXPORT=yes`.
    pub p12: Option<&'a [u8]>,
}

/// A set written to disk but not yet live.
#[derive(Debug, Clone)]
pub struct WrittenSet {
    pub ts: i64,
    pub privkey: Option<PathBuf>,
    pub csr: PathBuf,
    pub cert: PathBuf,
    pub chain: PathBuf,
    pub fullchain: PathBuf,
    pub p12: Option<PathBuf>,
}

/// `certs/<name>/`: the timestamped files and the five symlinks to the newest set.
pub struct CertDir {
    pub dir: PathBuf,
}

impl CertDir {
    pub fn new(certdir: &Path, name: &str) -> CertDir {
        CertDir {
            dir: certdir.join(name),
        }
    }

    /// The live key: the `privkey.pem` link.
    pub fn privkey(&self) -> PathBuf {
        self.dir.join("privkey.pem")
    }

    /// The live certificate: the `cert.pem` link.
    pub fn cert(&self) -> PathBuf {
        self.dir.join("cert.pem")
    }

    /// The live chain: the `chain.pem` link.
    pub fn chain(&self) -> PathBuf {
        self.dir.join("chain.pem")
    }

    /// The live certificate and chain: the `fullchain.pem` link.
    pub fn fullchain(&self) -> PathBuf {
        self.dir.join("fullchain.pem")
    }

    /// The next key, made ready with `PRIVATE_KEY_ROLLOVER=yes`: `privkey.roll.pem`.
    pub fn roll_key(&self) -> PathBuf {
        self.dir.join("privkey.roll.pem")
    }

    /// The certificate's own config, when `DOMAINS_D` is not set.
    pub fn config(&self) -> PathBuf {
        self.dir.join("config")
    }

    /// Makes the folder (see [`own_dir`]: always the run's own, never writable by group or
    /// others; one another user owns is taken back) and lets `CERT_OWNER` and `CERT_GROUP`
    /// through `certs/` to it. Returns whether the folder was taken back from another user.
    pub fn secure(&self, modes: &CertModes) -> Result<bool> {
        let taken = own_dir(&self.dir, modes.dir)?;
        let through = if modes.file.uid.is_some() { 0o001 } else { 0 }
            | if modes.file.gid.is_some() { 0o010 } else { 0 };
        let certdir = parent(&self.dir);
        if let Ok(meta) = fs::metadata(certdir)
            && meta.uid() == effective_uid()
            && meta.mode() & through != through
        {
            fs::set_permissions(
                certdir,
                fs::Permissions::from_mode(meta.mode() & 0o7777 | through),
            )
            .map_err(Error::io("cannot set the mode of", certdir))?;
        }
        Ok(taken)
    }

    /// Takes the folder back when another user owns it or others may write it (what an earlier
    /// version left with `CERT_OWNER`, or a umask of 000), before anything in it is read. Does
    /// nothing when there is no folder yet or all is as it should be.
    pub fn take_back(&self, modes: &CertModes) -> Result<bool> {
        if self.given_away() {
            self.secure(modes)
        } else {
            Ok(false)
        }
    }

    /// Whether [`CertDir::take_back`] would take the folder back: another user owns it or
    /// others may write it. Changes nothing.
    pub fn given_away(&self) -> bool {
        fs::symlink_metadata(&self.dir)
            .is_ok_and(|m| m.uid() != effective_uid() || m.mode() & 0o022 != 0)
    }

    /// The live `<kind>.<ext>` file opened for reading, where the layout allows it only: the
    /// link must name `<kind>-<ts>.<ext>` in this folder, which is opened without following
    /// a symlink and must be a regular file. Err(NotFound) when there is no live file.
    pub fn open_live(&self, kind: &str, ext: &str) -> io::Result<File> {
        let ts = self.link_ts(kind, ext).ok_or_else(|| {
            match fs::symlink_metadata(self.dir.join(format!("{kind}.{ext}"))) {
                Err(e) => e,
                Ok(_) => io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{kind}.{ext} is not a link to a {kind}-<time>.{ext} of its folder"),
                ),
            }
        })?;
        open_in(&open_dir(&self.dir)?, &format!("{kind}-{ts}.{ext}"))
    }

    /// The identity of the live `<kind>.<ext>` file, found as [`CertDir::open_live`] finds it
    /// but not opened: the folder's handle and the file's name in it, for
    /// [`LiveFile::open`]. Err(NotFound) when there is no live file.
    pub fn live_file(&self, kind: &str, ext: &str) -> io::Result<LiveFile> {
        use std::os::fd::AsRawFd;
        let dir = open_dir(&self.dir)?;
        let link = std::ffi::CString::new(format!("{kind}.{ext}"))?;
        let mut buf = [0u8; 256];
        // SAFETY: a valid folder descriptor, C string and buffer of the length given.
        let n = unsafe {
            libc::readlinkat(
                dir.as_raw_fd(),
                link.as_ptr(),
                buf.as_mut_ptr().cast(),
                buf.len(),
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            return Err(match e.raw_os_error() {
                Some(libc::EINVAL) => self.not_a_set_link(kind, ext),
                _ => e,
            });
        }
        let target = std::str::from_utf8(&buf[..n as usize]).unwrap_or_default();
        let ts = target
            .strip_prefix(&format!("{kind}-"))
            .and_then(|t| t.strip_suffix(&format!(".{ext}")))
            .and_then(|t| t.parse::<i64>().ok());
        let Some(ts) = ts else {
            return Err(self.not_a_set_link(kind, ext));
        };
        let name = format!("{kind}-{ts}.{ext}");
        let c_name = std::ffi::CString::new(name.as_str())?;
        // SAFETY: an all-zero `stat` is a valid value for fstatat to fill.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: a valid folder descriptor, C string and `stat` to fill; the result is checked.
        let r = unsafe {
            libc::fstatat(
                dir.as_raw_fd(),
                c_name.as_ptr(),
                &mut st,
                libc::AT_SYMLINK_NOFOLLOW,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        if st.st_mode & libc::S_IFMT != libc::S_IFREG {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a regular file",
            ));
        }
        let nanos = nanos_since_epoch;
        let id = FileId {
            dev: st.st_dev,
            ino: st.st_ino,
            size: st.st_size as u64,
            uid: st.st_uid,
            mtime: nanos(st.st_mtime, st.st_mtime_nsec),
            ctime: nanos(st.st_ctime, st.st_ctime_nsec),
        };
        Ok(LiveFile { dir, name, id })
    }

    /// The identity of the folder itself ([`FileId`]), not following a link: it changes
    /// whenever a file or link in it is made, renamed or removed, so an unchanged one holds
    /// the same links and files as when it was last looked at.
    pub fn stamp(&self) -> io::Result<FileId> {
        fs::symlink_metadata(&self.dir).map(|meta| FileId::of(&meta))
    }

    fn not_a_set_link(&self, kind: &str, ext: &str) -> io::Error {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{kind}.{ext} is not a link to a {kind}-<time>.{ext} of its folder"),
        )
    }

    /// The key to keep with `PRIVATE_KEY_RENEW=no`: the live key, read as [`CertDir::open_live`]
    /// reads, when it is ours or `given_to`'s (`CERT_OWNER`) and has no other name (a hard link
    /// to another key); else the reason it is not used.
    pub fn kept_key(&self, given_to: Option<u32>) -> std::result::Result<String, String> {
        let file = self
            .open_live("privkey", "pem")
            .map_err(|e| format!("{}: {e}", self.privkey().display()))?;
        read_own_key(file, given_to, &self.privkey())
    }

    /// The next key waiting in `privkey.roll.pem`, when it is a regular file of ours with no
    /// other name; else the reason it is not used.
    pub fn roll_key_text(&self) -> std::result::Result<String, String> {
        let path = self.roll_key();
        let file = open_dir(&self.dir)
            .and_then(|d| open_in(&d, "privkey.roll.pem"))
            .map_err(|e| format!("{}: {e}", path.display()))?;
        read_own_key(file, None, &path)
    }

    /// Writes a new set as `<kind>-<ts>.<ext>`, every file fsynced, then the folder; nothing is
    /// live yet. The timestamp is `now`, or the next second free of an earlier set.
    pub fn write_set(
        &self,
        files: &CertFiles<'_>,
        now: i64,
        modes: &CertModes,
    ) -> Result<WrittenSet> {
        self.secure(modes)?;
        let mut ts = now;
        while self.dir.join(format!("cert-{ts}.pem")).exists() {
            ts += 1;
        }
        let path = |kind: &str, ext: &str| self.dir.join(format!("{kind}-{ts}.{ext}"));
        let set = WrittenSet {
            ts,
            privkey: files.privkey.map(|_| path("privkey", "pem")),
            csr: path("cert", "csr"),
            cert: path("cert", "pem"),
            chain: path("chain", "pem"),
            fullchain: path("fullchain", "pem"),
            p12: files.p12.map(|_| path("cert", "p12")),
        };
        if let (Some(key), Some(at)) = (files.privkey, &set.privkey) {
            replace_file(at, key.as_bytes(), modes.key, true)?;
            crate::failpoint::hit("written-privkey");
        }
        if let (Some(p12), Some(at)) = (files.p12, &set.p12) {
            replace_file(at, p12, modes.key, true)?;
            crate::failpoint::hit("written-p12");
        }
        let fullchain = format!("{}{}", files.cert, files.chain);
        for (at, text, point) in [
            (&set.chain, files.chain, "written-chain"),
            (&set.fullchain, fullchain.as_str(), "written-fullchain"),
            (&set.csr, files.csr, "written-csr"),
            (&set.cert, files.cert, "written-cert"),
        ] {
            replace_file(at, text.as_bytes(), modes.file, true)?;
            crate::failpoint::hit(point);
        }
        sync_dir(&self.dir)?;
        Ok(set)
    }

    /// Switches the symlinks to `set` in dehydrated's order (privkey, chain, fullchain,
    /// cert.csr, cert.pem, then cert.p12), each by a rename, then fsyncs the folder. When a
    /// switch fails (a full or failing disk), the links already moved are moved back, so that
    /// the old set stays whole in use.
    pub fn switch(&self, set: &WrittenSet) -> Result<()> {
        let mut moved: Vec<(PathBuf, Option<PathBuf>)> = Vec::new();
        for (kind, ext) in SET {
            if (kind == "privkey" && set.privkey.is_none()) || (ext == "p12" && set.p12.is_none()) {
                continue;
            }
            let link = self.dir.join(format!("{kind}.{ext}"));
            let old = fs::read_link(&link).ok();
            if let Err(e) = switch_link(&link, &format!("{kind}-{}.{ext}", set.ts)) {
                for (link, old) in moved.iter().rev() {
                    let _ = match old {
                        Some(target) => switch_link(link, &target.to_string_lossy()),
                        None => fs::remove_file(link).map_err(Error::io("cannot remove", link)),
                    };
                }
                let _ = sync_dir(&self.dir);
                return Err(e);
            }
            moved.push((link, old));
            crate::failpoint::hit(&format!("switched-{kind}.{ext}"));
        }
        sync_dir(&self.dir)
    }
}

impl CertDir {
    /// The timestamp of the set a live link points at, when it names one.
    fn link_ts(&self, kind: &str, ext: &str) -> Option<i64> {
        let target = fs::read_link(self.dir.join(format!("{kind}.{ext}"))).ok()?;
        target
            .to_str()?
            .strip_prefix(&format!("{kind}-"))?
            .strip_suffix(&format!(".{ext}"))?
            .parse()
            .ok()
    }

    /// The set written at `ts`, when its certificate, chain, fullchain and CSR are all there
    /// and not empty (its key and PKCS#12 file when they are there).
    pub fn written_set(&self, ts: i64) -> Option<WrittenSet> {
        let path = |kind: &str, ext: &str| self.dir.join(format!("{kind}-{ts}.{ext}"));
        let whole = |p: &Path| fs::symlink_metadata(p).is_ok_and(|m| m.is_file() && m.len() > 0);
        let set = WrittenSet {
            ts,
            privkey: Some(path("privkey", "pem")).filter(|p| whole(p)),
            csr: path("cert", "csr"),
            cert: path("cert", "pem"),
            chain: path("chain", "pem"),
            fullchain: path("fullchain", "pem"),
            p12: Some(path("cert", "p12")).filter(|p| whole(p)),
        };
        [&set.csr, &set.cert, &set.chain, &set.fullchain]
            .iter()
            .all(|p| whole(p))
            .then_some(set)
    }

    /// The timestamp of the live set: the one `cert.pem` points at.
    pub fn live_ts(&self) -> Option<i64> {
        self.link_ts("cert", "pem")
    }

    /// Finishes what a run killed in the middle of [`CertDir::switch`] left: when the links
    /// point at different sets, all of them are moved to the newest set that is whole on disk
    /// (every set is whole before its first link moves, so this rolls forward). Temporary files
    /// of processes that are gone are removed. Returns the timestamp of the set it moved the
    /// links to, if it moved any.
    pub fn repair(&self) -> Result<Option<i64>> {
        remove_dead_temp_files(&self.dir);
        let stamps: Vec<i64> = SET
            .iter()
            .filter_map(|(kind, ext)| self.link_ts(kind, ext))
            .collect();
        let (Some(&newest), Some(&oldest)) = (stamps.iter().max(), stamps.iter().min()) else {
            return Ok(None);
        };
        if newest == oldest {
            return Ok(None);
        }
        let mut candidates = stamps;
        candidates.sort_unstable_by(|a, b| b.cmp(a));
        candidates.dedup();
        let Some(set) = candidates.into_iter().find_map(|ts| self.written_set(ts)) else {
            return Ok(None);
        };
        // A set without a key of its own (a CSR from the hook) leaves the key's link where it
        // was: that is not a half-done switch.
        let behind = SET.iter().any(|(kind, ext)| {
            self.dir.join(format!("{kind}-{}.{ext}", set.ts)).is_file()
                && self.link_ts(kind, ext) != Some(set.ts)
        });
        if !behind {
            return Ok(None);
        }
        self.switch(&set)?;
        Ok(Some(set.ts))
    }
}

/// The text of a key file when its owner is us or `given_to` and it has one name only.
fn read_own_key(
    mut file: File,
    given_to: Option<u32>,
    path: &Path,
) -> std::result::Result<String, String> {
    let refuse = |why: String| format!("{}: {why}", path.display());
    let meta = file.metadata().map_err(|e| refuse(e.to_string()))?;
    if meta.uid() != effective_uid() && Some(meta.uid()) != given_to {
        return Err(refuse(format!("owned by uid {}, not by us", meta.uid())));
    }
    if meta.nlink() != 1 {
        return Err(refuse("it has other names (a hard link)".into()));
    }
    // The owner can grow the file at will; no key is near this size.
    const MAX_KEY_FILE: u64 = 1 << 20;
    let mut text = String::new();
    (&mut file)
        .take(MAX_KEY_FILE + 1)
        .read_to_string(&mut text)
        .map_err(|e| refuse(e.to_string()))?;
    if text.len() as u64 > MAX_KEY_FILE {
        return Err(refuse("larger than any key file (over 1 MiB)".into()));
    }
    Ok(text)
}

/// Removes `.<name>.tmp-<pid>-<n>` files in `dir` whose process no longer runs: what a crash
/// between writing a temporary file and renaming it leaves.
pub fn remove_dead_temp_files(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|n| n.starts_with('.'))
            .and_then(|n| n.rsplit_once(".tmp-"))
            .and_then(|(_, rest)| rest.split_once('-'))
            .and_then(|(pid, _)| pid.parse::<i32>().ok())
        else {
            continue;
        };
        if pid > 0 && !process_runs(pid) {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// Whether a process with this id exists (it may belong to someone else).
fn process_runs(pid: i32) -> bool {
    // SAFETY: kill with signal 0 only checks that the process exists.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// The names of the folders under `certdir` that hold a live certificate (`cert.pem`), sorted.
pub fn live_cert_names(certdir: &Path) -> Vec<String> {
    let mut names: Vec<String> = subfolders(certdir)
        .into_iter()
        .filter(|e| fs::symlink_metadata(e.path().join("cert.pem")).is_ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    names
}

/// Where `--cleanup` moves the whole folder of a certificate that left domains.txt:
/// `archive/<name>.removed-<ts>/`, its links still pointing at its files.
pub fn removed_archive_dir(basedir: &Path, name: &str, ts: i64) -> PathBuf {
    basedir.join("archive").join(format!("{name}.removed-{ts}"))
}

/// The files of a certificate folder that no live symlink points at: older sets and
/// `-revoked` files, by dehydrated's names. Broken symlinks are removed on the way.
pub fn unused_files(dir: &Path) -> Result<Vec<String>> {
    let mut current = Vec::new();
    for (kind, ext) in SET {
        let link = dir.join(format!("{kind}.{ext}"));
        match fs::read_link(&link) {
            Ok(target) if dir.join(&target).exists() => {
                current.push(target.to_string_lossy().into_owned())
            }
            Ok(_) => {
                fs::remove_file(&link).map_err(Error::io("cannot remove broken link", &link))?
            }
            Err(_) => {}
        }
    }
    let mut unused: Vec<String> = fs::read_dir(dir)
        .map_err(Error::io("cannot read", dir))?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| {
            SET.iter().any(|(kind, ext)| {
                let Some(rest) = name.strip_prefix(&format!("{kind}-")) else {
                    return false;
                };
                let rest = rest.strip_suffix("-revoked").unwrap_or(rest);
                rest.strip_suffix(&format!(".{ext}"))
                    .is_some_and(|ts| !ts.is_empty() && ts.bytes().all(|b| b.is_ascii_digit()))
            })
        })
        .filter(|name| !current.contains(name))
        .collect();
    unused.sort();
    Ok(unused)
}

/// The run lock: an OS lock on `LOCKFILE`, which the kernel releases when the process dies, so
/// a crashed run never blocks the next one. The file is removed on release, so that dehydrated,
/// which only checks whether it exists, can run after us.
///
/// The lock's folder may be one others can write (`/run/lock`, `/tmp`): the file is opened
/// without following a symlink, must be a regular file, and is written (our process id) only
/// when it is ours. What another program left in it is shown only when it is a plain line
/// from a file root or we own, such as dehydrated's date.
///
/// dehydrated's lock file (its date in it) is waited for while a dehydrated process may hold
/// it; one that a crashed dehydrated left, in a file of ours, is taken over.
pub struct RunLock {
    path: PathBuf,
    _file: File,
    /// The date a crashed dehydrated wrote into the lock file this run took over.
    pub taken_over: Option<String>,
}

impl RunLock {
    /// Takes the lock, waiting up to `wait` for another run to finish; then
    /// [`Error::LockBusy`]. `dehydrated_on` says which dehydrated process holds, or may hold,
    /// the lock file; asked only when dehydrated's date is in it.
    pub fn acquire(
        path: &Path,
        wait: Duration,
        dehydrated_on: &dyn Fn() -> Option<u32>,
    ) -> Result<RunLock> {
        let deadline = Instant::now() + wait;
        if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            create_dir(dir, FOLDER_MODE)?;
        }
        let busy = |holder: Option<String>| Error::LockBusy {
            path: path.to_path_buf(),
            waited_secs: wait.as_secs(),
            holder,
        };
        loop {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o644)
                .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
                .open(path)
                .map_err(|e| match e.raw_os_error() {
                    Some(libc::ELOOP) => Error::Config(format!(
                        "{}: the lock file is a symlink, which is never followed: remove it \
                         (and check who put it there)",
                        path.display()
                    )),
                    _ => Error::io("cannot open the lock file", path)(e),
                })?;
            let meta = file
                .metadata()
                .map_err(Error::io("cannot read the lock file", path))?;
            if !meta.is_file() {
                return Err(Error::Config(format!(
                    "{}: the lock file is not a regular file: remove it (and check who put it \
                     there)",
                    path.display()
                )));
            }
            let trusted = meta.uid() == effective_uid() || meta.uid() == 0;
            let mut holder = None;
            match file.try_lock() {
                Ok(()) => {
                    // The holder before us may have removed the file after we opened it; then
                    // our lock is on an orphan and we must lock the file now at `path`.
                    let ours = Some(meta.ino());
                    let current = fs::symlink_metadata(path).map(|m| m.ino()).ok();
                    if ours == current {
                        let mut file = file;
                        let mut content = Vec::new();
                        let _ = (&file).take(LOCK_READ_MAX).read_to_end(&mut content);
                        let mine = meta.uid() == effective_uid();
                        let (held, stale) = match dehydrated_holds(&content, trusted) {
                            None => (None, None),
                            // dehydrated's date, in a file we may write: stale when no
                            // dehydrated process runs on it.
                            Some(Holder::Dehydrated { since }) if mine => match dehydrated_on() {
                                None => (None, Some(since)),
                                Some(pid) => {
                                    let held = format!("dehydrated (process {pid}), since {since}");
                                    (Some(held), None)
                                }
                            },
                            Some(holder) => (Some(holder.to_string()), None),
                        };
                        match held {
                            None if mine => {
                                let _ = file.set_len(0);
                                let _ = file.seek(io::SeekFrom::Start(0));
                                let _ = writeln!(file, "{}", std::process::id());
                                // A dehydrated that ended meanwhile removed its file: the lock
                                // is then taken on the file at `path`, as for any orphan.
                                if fs::symlink_metadata(path).map(|m| m.ino()).ok() != ours {
                                    continue;
                                }
                                return Ok(RunLock {
                                    path: path.to_path_buf(),
                                    _file: file,
                                    taken_over: stale,
                                });
                            }
                            None => {
                                return Err(Error::Config(format!(
                                    "{}: the lock file belongs to uid {}, not to this run's \
                                     user: remove it (and check who put it there)",
                                    path.display(),
                                    meta.uid()
                                )));
                            }
                            // Dropping `file` unlocks it; the file itself stays dehydrated's.
                            Some(since) => holder = Some(since),
                        }
                    }
                }
                Err(fs::TryLockError::WouldBlock) => holder = Some("another desiccant run".into()),
                Err(fs::TryLockError::Error(e)) => {
                    return Err(Error::io("cannot lock", path)(e));
                }
            }
            if holder.is_some() {
                if Instant::now() >= deadline {
                    return Err(busy(holder));
                }
                crate::stop::check()?;
                thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

/// How much of a lock file is read: a date or a process id and then some.
const LOCK_READ_MAX: u64 = 256;

/// Who holds a lock file that is not a desiccant run's.
#[derive(Debug, PartialEq, Eq)]
enum Holder {
    /// dehydrated, running or crashed: its date, a plain line from a file root or we own.
    Dehydrated { since: String },
    /// dehydrated or another program: text we do not show.
    Unknown,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Holder::Dehydrated { since } => write!(f, "dehydrated, since {since}"),
            Holder::Unknown => {
                f.write_str("dehydrated or another program (the lock file is not empty)")
            }
        }
    }
}

/// dehydrated takes its lock by creating the file with the date in it and removes it when
/// done; it never locks the file. So a lock file that holds text other than a process id is a
/// running dehydrated's or a crashed one's. Returns who holds it: with its text only when that
/// is one short line of plain characters from a file root or we own (`trusted`), never what
/// another user's file says.
fn dehydrated_holds(content: &[u8], trusted: bool) -> Option<Holder> {
    let text = String::from_utf8_lossy(content);
    let text = text.trim();
    if text.is_empty() || text.parse::<u32>().is_ok() {
        return None;
    }
    let plain = text.len() <= 60
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || " :+-,./".contains(c));
    Some(if trusted && plain {
        Holder::Dehydrated {
            since: text.to_string(),
        }
    } else {
        Holder::Unknown
    })
}

impl Drop for RunLock {
    fn drop(&mut self) {
        // Removed while still locked; the lock itself goes with the file handle right after.
        let _ = fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tempdir(tag: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("desiccant-store-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn account_folder_named_as_dehydrated_names_it() {
        let d = AccountDir::new(
            Path::new("/x/accounts"),
            "https://acme-v02.api.letsencrypt.org/directory",
        );
        assert_eq!(
            d.dir,
            Path::new(
                "/x/accounts/aHR0cHM6Ly9hY21lLXYwMi5hcGkubGV0c2VuY3J5cHQub3JnL2RpcmVjdG9yeQo"
            )
        );
    }

    #[test]
    fn files_get_their_mode_whatever_the_umask_and_no_temp_file_is_left() {
        let dir = tempdir("mode");
        let key = dir.join("k.pem");
        write_file(&key, b"secret", KEY_MODE).unwrap();
        write_file(&key, b"secret2", KEY_MODE).unwrap();
        assert_eq!(fs::read(&key).unwrap(), b"secret2");
        assert_eq!(
            fs::metadata(&key).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let names: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["k.pem"]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_symlink_switch_replaces_the_old_link() {
        let dir = tempdir("link");
        fs::write(dir.join("a-1.pem"), "1").unwrap();
        fs::write(dir.join("a-2.pem"), "2").unwrap();
        switch_link(&dir.join("a.pem"), "a-1.pem").unwrap();
        switch_link(&dir.join("a.pem"), "a-2.pem").unwrap();
        assert_eq!(
            fs::read_link(dir.join("a.pem")).unwrap(),
            Path::new("a-2.pem")
        );
        assert_eq!(fs::read_to_string(dir.join("a.pem")).unwrap(), "2");
        fs::remove_dir_all(&dir).unwrap();
    }

    fn link(dir: &CertDir, name: &str) -> String {
        fs::read_link(dir.dir.join(name))
            .unwrap()
            .to_string_lossy()
            .into_owned()
    }

    #[test]
    fn links_left_on_two_sets_are_rolled_forward_to_the_whole_one() {
        let base = tempdir("repair");
        let dir = CertDir::new(&base, "x");
        let modes = CertModes::default();
        let files = |cert: &'static str| CertFiles {
            privkey: Some("key"),
            csr: "csr",
            cert,
            chain: "chain",
            p12: None,
        };
        let old = dir.write_set(&files("old"), 100, &modes).unwrap();
        dir.switch(&old).unwrap();
        assert_eq!(
            dir.repair().unwrap(),
            None,
            "a whole switch needs no repair"
        );
        let new = dir.write_set(&files("new"), 200, &modes).unwrap();
        // Killed after the first two links moved.
        switch_link(&dir.privkey(), "privkey-200.pem").unwrap();
        switch_link(&dir.chain(), "chain-200.pem").unwrap();
        assert_eq!(dir.live_ts(), Some(100));
        assert_eq!(dir.repair().unwrap(), Some(200));
        for (name, target) in [
            ("privkey.pem", "privkey-200.pem"),
            ("chain.pem", "chain-200.pem"),
            ("fullchain.pem", "fullchain-200.pem"),
            ("cert.csr", "cert-200.csr"),
            ("cert.pem", "cert-200.pem"),
        ] {
            assert_eq!(link(&dir, name), target);
        }
        assert_eq!(fs::read_to_string(dir.cert()).unwrap(), "new");
        assert_eq!(dir.written_set(new.ts).map(|s| s.ts), Some(200));

        // A set without a key (a CSR from the hook) keeps the old key's link: no repair.
        let keyless = CertFiles {
            privkey: None,
            ..files("keyless")
        };
        let third = dir.write_set(&keyless, 300, &modes).unwrap();
        dir.switch(&third).unwrap();
        assert_eq!(link(&dir, "privkey.pem"), "privkey-200.pem");
        assert_eq!(dir.repair().unwrap(), None);

        // A newest set that is not whole is not rolled forward to: back to the whole one.
        switch_link(&dir.chain(), "chain-400.pem").unwrap();
        fs::write(dir.dir.join("chain-400.pem"), "").unwrap();
        assert_eq!(dir.repair().unwrap(), Some(300));
        assert_eq!(link(&dir, "chain.pem"), "chain-300.pem");
        fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn only_temp_files_of_dead_processes_are_removed() {
        let dir = tempdir("temps");
        // Pid 1 always runs; no process has the largest pid there is.
        let alive = dir.join(".cert.pem.tmp-1-0");
        let dead = dir.join(format!(".cert.pem.tmp-{}-0", i32::MAX));
        let ours = temp_name(&dir.join("cert.pem"));
        let other = dir.join("cert-1.pem");
        for f in [&alive, &dead, &ours, &other] {
            fs::write(f, "x").unwrap();
        }
        remove_dead_temp_files(&dir);
        assert!(alive.exists() && ours.exists() && other.exists());
        assert!(!dead.exists());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_dehydrated_lock_file_is_respected() {
        assert_eq!(dehydrated_holds(b"", true), None);
        assert_eq!(dehydrated_holds(b"12345\n", true), None);
        assert_eq!(
            dehydrated_holds(b"Mon Nov 23 12:00:00 UTC 2026\n", true).map(|h| h.to_string()),
            Some("dehydrated, since Mon Nov 23 12:00:00 UTC 2026".to_string())
        );
        // Never the text of a file others own, or text that is no date.
        for (text, trusted) in [
            (&b"Mon Nov 23 12:00:00 UTC 2026\n"[..], false),
            (b"root:$6$secret:19000:0:99999:7:::\nbin:*", true),
            (b"-----BEGIN PRIVATE KEY-----\nMIIE", true),
        ] {
            assert_eq!(dehydrated_holds(text, trusted), Some(Holder::Unknown));
        }
        let dir = tempdir("dehydrated-lock");
        let path = dir.join("lock");
        fs::write(&path, "Mon Nov 23 12:00:00 UTC 2026\n").unwrap();
        // While a dehydrated process runs on it, it is dehydrated's.
        let err = RunLock::acquire(&path, Duration::ZERO, &|| Some(4242))
            .err()
            .unwrap();
        assert!(
            err.to_string()
                .contains("dehydrated (process 4242), since Mon Nov 23"),
            "{err}"
        );
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            "Mon Nov 23 12:00:00 UTC 2026\n"
        );
        // Left by a crashed one: taken over.
        let lock = RunLock::acquire(&path, Duration::ZERO, &|| None).unwrap();
        assert_eq!(
            lock.taken_over.as_deref(),
            Some("Mon Nov 23 12:00:00 UTC 2026")
        );
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            format!("{}\n", std::process::id())
        );
        drop(lock);
        assert!(!path.exists());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_lock_never_follows_a_symlink_nor_waits_on_a_fifo() {
        let dir = tempdir("lock-link");
        let secret = dir.join("secret");
        for text in ["TOP SECRET first line\n", "12345\n"] {
            fs::write(&secret, text).unwrap();
            let path = dir.join("lock");
            let _ = fs::remove_file(&path);
            std::os::unix::fs::symlink(&secret, &path).unwrap();
            let err = RunLock::acquire(&path, Duration::ZERO, &|| None)
                .err()
                .unwrap();
            assert!(err.to_string().contains("is a symlink"), "{err}");
            assert!(!err.to_string().contains("SECRET"), "{err}");
            assert_eq!(fs::read_to_string(&secret).unwrap(), text);
        }
        let fifo = dir.join("fifo");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid C string.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let err = RunLock::acquire(&fifo, Duration::ZERO, &|| None)
            .err()
            .unwrap();
        assert!(err.to_string().contains("not a regular file"), "{err}");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_kept_key_is_read_only_where_the_layout_puts_it() {
        let base = tempdir("kept");
        let dir = CertDir::new(&base, "x");
        let files = CertFiles {
            privkey: Some("the key"),
            csr: "csr",
            cert: "cert",
            chain: "chain",
            p12: None,
        };
        let set = dir.write_set(&files, 100, &CertModes::default()).unwrap();
        dir.switch(&set).unwrap();
        assert_eq!(dir.kept_key(None).unwrap(), "the key");
        let elsewhere = base.join("account_key.pem");
        fs::write(&elsewhere, "the account key").unwrap();
        // A link to a file outside the folder, or to a name the layout does not give.
        switch_link(&dir.privkey(), "../account_key.pem").unwrap();
        assert!(dir.kept_key(None).is_err());
        // A set file that is itself a symlink.
        std::os::unix::fs::symlink(&elsewhere, dir.dir.join("privkey-200.pem")).unwrap();
        switch_link(&dir.privkey(), "privkey-200.pem").unwrap();
        assert!(dir.kept_key(None).is_err());
        // A hard link to another key.
        fs::hard_link(&elsewhere, dir.dir.join("privkey-300.pem")).unwrap();
        switch_link(&dir.privkey(), "privkey-300.pem").unwrap();
        let err = dir.kept_key(None).unwrap_err();
        assert!(err.contains("hard link"), "{err}");
        if effective_uid() == 0 {
            // A key of another user than us and CERT_OWNER.
            std::os::unix::fs::chown(dir.dir.join("privkey-100.pem"), Some(65534), None).unwrap();
            switch_link(&dir.privkey(), "privkey-100.pem").unwrap();
            assert!(dir.kept_key(None).is_err());
            assert_eq!(dir.kept_key(Some(65534)).unwrap(), "the key");
        }
        fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn a_certificate_folder_is_taken_back_and_never_open_to_writes() {
        let base = tempdir("take-back");
        let dir = CertDir::new(&base.join("certs"), "x");
        let modes = CertModes {
            dir: Owner::mode(0o777),
            ..CertModes::default()
        };
        assert!(!dir.secure(&modes).unwrap());
        assert_eq!(fs::metadata(&dir.dir).unwrap().mode() & 0o7777, 0o755);
        assert_eq!(
            fs::metadata(base.join("certs")).unwrap().mode() & 0o7777,
            0o755
        );
        if effective_uid() == 0 {
            std::os::unix::fs::chown(&dir.dir, Some(65534), None).unwrap();
            assert!(dir.take_back(&modes).unwrap());
            assert_eq!(fs::metadata(&dir.dir).unwrap().uid(), 0);
            assert!(!dir.take_back(&modes).unwrap(), "nothing left to do");
        }
        // A symlink in the folder's place is not followed.
        fs::remove_dir_all(&dir.dir).unwrap();
        let other = base.join("other");
        fs::create_dir(&other).unwrap();
        std::os::unix::fs::symlink(&other, &dir.dir).unwrap();
        assert!(dir.secure(&modes).is_err());
        fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn the_lock_is_exclusive_and_its_file_goes_with_it() {
        let dir = tempdir("lock");
        let path = dir.join("lock");
        let first = RunLock::acquire(&path, Duration::ZERO, &|| None).unwrap();
        assert!(path.exists());
        let second = RunLock::acquire(&path, Duration::from_millis(250), &|| None);
        assert!(matches!(second, Err(Error::LockBusy { .. })));
        drop(first);
        assert!(!path.exists());
        let third = RunLock::acquire(&path, Duration::ZERO, &|| None).unwrap();
        drop(third);
        fs::remove_dir_all(&dir).unwrap();
    }
}
