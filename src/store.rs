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

/// Flushes a folder's entries (renames, new files) to disk.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(Error::io("cannot sync the folder", dir))
}

/// Creates `dir` and its parents when missing; a new last folder gets `mode`.
pub fn create_dir(dir: &Path, mode: u32) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    make_dir(dir, mode)
}

/// Creates `dir` when missing, and gives it `owner`'s mode, owner and group either way.
pub fn own_dir(dir: &Path, owner: Owner) -> Result<()> {
    if !dir.is_dir() {
        make_dir(dir, owner.mode & 0o700)?;
    }
    if owner.uid.is_some() || owner.gid.is_some() {
        std::os::unix::fs::chown(dir, owner.uid, owner.gid)
            .map_err(Error::io("cannot change the owner of", dir))?;
    }
    fs::set_permissions(dir, fs::Permissions::from_mode(owner.mode))
        .map_err(Error::io("cannot set the mode of", dir))
}

fn make_dir(dir: &Path, mode: u32) -> Result<()> {
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).map_err(Error::io("cannot create the folder", parent))?;
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

    /// Writes a new set as `<kind>-<ts>.<ext>`, every file fsynced, then the folder; nothing is
    /// live yet. The timestamp is `now`, or the next second free of an earlier set.
    pub fn write_set(
        &self,
        files: &CertFiles<'_>,
        now: i64,
        modes: &CertModes,
    ) -> Result<WrittenSet> {
        own_dir(&self.dir, modes.dir)?;
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
        let whole = |p: &Path| fs::metadata(p).is_ok_and(|m| m.is_file() && m.len() > 0);
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
pub struct RunLock {
    path: PathBuf,
    _file: File,
}

impl RunLock {
    /// Takes the lock, waiting up to `wait` for another run to finish; then
    /// [`Error::LockBusy`].
    pub fn acquire(path: &Path, wait: Duration) -> Result<RunLock> {
        let deadline = Instant::now() + wait;
        if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            fs::create_dir_all(dir).map_err(Error::io("cannot create the lock's folder", dir))?;
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
                .open(path)
                .map_err(Error::io("cannot open the lock file", path))?;
            let mut holder = None;
            match file.try_lock() {
                Ok(()) => {
                    // The holder before us may have removed the file after we opened it; then
                    // our lock is on an orphan and we must lock the file now at `path`.
                    let ours = file.metadata().map(|m| m.ino()).ok();
                    let current = fs::metadata(path).map(|m| m.ino()).ok();
                    if ours.is_some() && ours == current {
                        let mut file = file;
                        let mut content = String::new();
                        let _ = file.read_to_string(&mut content);
                        match dehydrated_holds(&content) {
                            None => {
                                let _ = file.set_len(0);
                                let _ = file.seek(io::SeekFrom::Start(0));
                                let _ = writeln!(file, "{}", std::process::id());
                                return Ok(RunLock {
                                    path: path.to_path_buf(),
                                    _file: file,
                                });
                            }
                            // Dropping `file` unlocks it; the file itself stays dehydrated's.
                            Some(since) => holder = Some(format!("dehydrated, since {since}")),
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

/// dehydrated takes its lock by creating the file with the date in it and removes it when
/// done; it never locks the file. So a lock file that holds text other than a process id is a
/// running dehydrated's (or a crashed one's, which dehydrated itself would also wait for).
/// Returns that text.
fn dehydrated_holds(content: &str) -> Option<String> {
    let text = content.trim();
    if text.is_empty() || text.parse::<u32>().is_ok() {
        None
    } else {
        Some(text.chars().take(60).collect())
    }
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
        assert_eq!(dehydrated_holds(""), None);
        assert_eq!(dehydrated_holds("12345\n"), None);
        assert_eq!(
            dehydrated_holds("Mon Nov 23 12:00:00 UTC 2026\n").as_deref(),
            Some("Mon Nov 23 12:00:00 UTC 2026")
        );
        let dir = tempdir("dehydrated-lock");
        let path = dir.join("lock");
        fs::write(&path, "Mon Nov 23 12:00:00 UTC 2026\n").unwrap();
        let err = RunLock::acquire(&path, Duration::ZERO).err().unwrap();
        assert!(
            err.to_string().contains("dehydrated, since Mon Nov 23"),
            "{err}"
        );
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            "Mon Nov 23 12:00:00 UTC 2026\n"
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_lock_is_exclusive_and_its_file_goes_with_it() {
        let dir = tempdir("lock");
        let path = dir.join("lock");
        let first = RunLock::acquire(&path, Duration::ZERO).unwrap();
        assert!(path.exists());
        let second = RunLock::acquire(&path, Duration::from_millis(250));
        assert!(matches!(second, Err(Error::LockBusy { .. })));
        drop(first);
        assert!(!path.exists());
        let third = RunLock::acquire(&path, Duration::ZERO).unwrap();
        drop(third);
        fs::remove_dir_all(&dir).unwrap();
    }
}
