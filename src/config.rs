//! The configuration: dehydrated's config syntax (parsed, never executed), the environment and
//! the command line, merged once into a [`Config`].

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::keys::KeyAlgo;

/// Where the config file is looked for when `--config` is not given.
pub const CONFIG_LOOKUP: &[&str] = &[
    "/etc/desiccant/config",
    "/usr/local/etc/desiccant/config",
    "./config",
];

/// CA shortcuts, as dehydrated names them, plus Google's.
pub const CA_PRESETS: &[(&str, &str)] = &[
    (
        "letsencrypt",
        "https://acme-v02.api.letsencrypt.org/directory",
    ),
    (
        "letsencrypt-test",
        "https://acme-staging-v02.api.letsencrypt.org/directory",
    ),
    ("zerossl", "https://acme.zerossl.com/v2/DV90"),
    ("buypass", "https://api.buypass.com/acme/directory"),
    (
        "buypass-test",
        "https://api.test4.buypass.no/acme/directory",
    ),
    ("google", "https://dv.acme-v02.api.pki.goog/directory"),
    (
        "google-test",
        "https://dv.acme-v02.test-api.pki.goog/directory",
    ),
];

/// The origin of BASEDIR when nothing set it.
const BASEDIR_DEFAULT: &str = "the config file's folder";

/// What this version does with a config key.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Support {
    /// Read and acted on.
    Used,
    /// Accepted for compatibility; nothing for us to do with it.
    Ignored,
    /// Accepted with a warning when set: the feature is gone from the ACME world.
    Obsolete,
    /// A dehydrated feature this version does not have yet: setting it is an error, so that
    /// nobody believes it happened.
    NotYet,
}

/// Every key a config file may set.
const KEYS: &[(&str, Support)] = &[
    ("BASEDIR", Support::Used),
    ("CA", Support::Used),
    ("CA_BUNDLE", Support::Used),
    ("CERTDIR", Support::Used),
    ("ACCOUNTDIR", Support::Used),
    ("DOMAINS_TXT", Support::Used),
    ("WELLKNOWN", Support::Used),
    ("KEY_ALGO", Support::Used),
    ("KEYSIZE", Support::Used),
    ("CONTACT_EMAIL", Support::Used),
    ("LOCKFILE", Support::Used),
    ("RENEW_DAYS", Support::Used),
    ("CHALLENGETYPE", Support::Used),
    ("CONFIG_D", Support::Used),
    ("JOBS", Support::Used),
    ("PRIVATE_KEY_RENEW", Support::Used),
    ("OLDCA", Support::Ignored),
    ("OPENSSL", Support::Ignored),
    ("OPENSSL_CNF", Support::Ignored),
    ("CURL_OPTS", Support::Ignored),
    ("API", Support::Ignored),
    ("CHAINCACHE", Support::Ignored),
    ("ALPNCERTDIR", Support::Ignored),
    ("HOOK_CHAIN", Support::Ignored),
    ("OCSP_MUST_STAPLE", Support::Obsolete),
    ("OCSP_FETCH", Support::Obsolete),
    ("OCSP_DAYS", Support::Obsolete),
    ("HOOK", Support::NotYet),
    ("DOMAINS_D", Support::NotYet),
    ("PRIVATE_KEY_ROLLOVER", Support::NotYet),
    ("PREFERRED_CHAIN", Support::NotYet),
    ("AUTO_CLEANUP", Support::NotYet),
    ("IP_VERSION", Support::NotYet),
    ("DEHYDRATED_USER", Support::NotYet),
    ("DEHYDRATED_GROUP", Support::NotYet),
    ("EAB_KID", Support::NotYet),
    ("EAB_HMAC_KEY", Support::NotYet),
];

fn support(key: &str) -> Option<Support> {
    KEYS.iter().find(|(k, _)| *k == key).map(|(_, s)| *s)
}

/// Where a value came from, for error messages: `file:line`, an environment variable or a flag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin(String);

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone)]
struct Setting {
    value: String,
    origin: Origin,
}

/// What the command line contributes: the config file to read and values that win over it.
#[derive(Debug, Default)]
pub struct LoadOptions {
    pub config: Option<PathBuf>,
    /// `(KEY, value, flag)`: a flag's value for a config key, e.g. `("CA", url, "--ca")`.
    pub overrides: Vec<(&'static str, String, &'static str)>,
    pub no_lock: bool,
    pub lock_suffix: Option<String>,
}

/// The whole configuration of a run, resolved once.
#[derive(Debug, Clone)]
pub struct Config {
    /// The config file read, if any.
    pub file: Option<PathBuf>,
    pub basedir: PathBuf,
    /// The CA's directory URL (presets resolved).
    pub ca: String,
    pub ca_bundle: Option<PathBuf>,
    pub certdir: PathBuf,
    pub accountdir: PathBuf,
    pub domains_txt: PathBuf,
    pub wellknown: PathBuf,
    pub key_algo: KeyAlgo,
    pub contact_email: Option<String>,
    /// None with `--no-lock`.
    pub lockfile: Option<PathBuf>,
    /// Renew when fewer days than this are left; None: when a third of the lifetime is left.
    pub renew_days: Option<u32>,
    /// Certificates issued at the same time.
    pub jobs: usize,
    /// Warnings found while reading (obsolete keys), for the caller to log.
    pub warnings: Vec<String>,
}

impl Config {
    /// Reads the config file (and `CONFIG_D`), then `DESICCANT_<KEY>` variables of `env`, then
    /// the flags in `opts`; later sources win. Errors name the file and line, or the variable.
    pub fn load(opts: &LoadOptions, env: &dyn Fn(&str) -> Option<String>) -> Result<Config> {
        let file = match &opts.config {
            Some(path) => {
                if !path.is_file() {
                    return Err(Error::Config(format!(
                        "{}: config file not found",
                        path.display()
                    )));
                }
                Some(path.clone())
            }
            None => CONFIG_LOOKUP
                .iter()
                .map(PathBuf::from)
                .find(|p| p.is_file()),
        };
        let mut vars = Vars::default();
        let basedir_default = match &file {
            Some(f) => parent_dir(f),
            None => PathBuf::from("."),
        };
        vars.set(
            "BASEDIR",
            basedir_default.to_string_lossy().into_owned(),
            Origin(BASEDIR_DEFAULT.into()),
        );
        if let Some(f) = &file {
            read_config_file(f, &mut vars, env)?;
            if let Some(dir) = vars.get("CONFIG_D").filter(|d| !d.is_empty()) {
                let dir = PathBuf::from(dir);
                for f in config_d_files(&dir)? {
                    read_config_file(&f, &mut vars, env)?;
                }
            }
        }
        for (key, _) in KEYS {
            if let Some(value) = env(&format!("DESICCANT_{key}")) {
                vars.set(
                    key,
                    value,
                    Origin(format!("environment variable DESICCANT_{key}")),
                );
            }
        }
        for (key, value, flag) in &opts.overrides {
            vars.set(key, value.clone(), Origin((*flag).to_string()));
        }
        Config::resolve(file, &vars, opts)
    }

    fn resolve(file: Option<PathBuf>, vars: &Vars, opts: &LoadOptions) -> Result<Config> {
        let mut warnings = Vec::new();
        if file.is_none() && vars.origin("BASEDIR") == BASEDIR_DEFAULT {
            warnings.push(format!(
                "no config file found (looked for {}); using the defaults with BASEDIR .",
                CONFIG_LOOKUP.join(", ")
            ));
        }
        for (key, setting) in &vars.map {
            match support(key) {
                Some(Support::Obsolete) if !setting.value.is_empty() && setting.value != "no" => {
                    warnings.push(format!(
                        "{}: {key} is ignored: CAs no longer run OCSP, so there is nothing to fetch or staple",
                        setting.origin
                    ))
                }
                Some(Support::NotYet) if !setting.value.is_empty() => {
                    return Err(Error::Config(format!(
                        "{}: {key} is not supported by this version of desiccant yet; \
                         remove it, or keep running dehydrated for this set-up",
                        setting.origin
                    )));
                }
                _ => {}
            }
        }
        let basedir = PathBuf::from(vars.get("BASEDIR").unwrap_or("."));
        let under = |key: &str, default: &str| -> PathBuf {
            match vars.get(key).filter(|v| !v.is_empty()) {
                Some(v) => PathBuf::from(v),
                None => basedir.join(default),
            }
        };
        let ca = vars
            .get("CA")
            .filter(|v| !v.is_empty())
            .unwrap_or("letsencrypt");
        let ca = match CA_PRESETS.iter().find(|(name, _)| *name == ca) {
            Some((_, url)) => (*url).to_string(),
            None if ca.starts_with("https://") => ca.to_string(),
            None => {
                return Err(vars.bad(
                    "CA",
                    "is neither an https:// directory URL nor one of letsencrypt, \
                     letsencrypt-test, zerossl, buypass, buypass-test, google, google-test",
                ));
            }
        };
        let keysize = vars.number("KEYSIZE", 4096)?;
        let algo = vars
            .get("KEY_ALGO")
            .filter(|v| !v.is_empty())
            .unwrap_or("secp384r1");
        // With rsa only the size can be wrong; name the line that set it.
        let blame = if algo == "rsa" { "KEYSIZE" } else { "KEY_ALGO" };
        let key_algo = KeyAlgo::parse(algo, keysize).map_err(|msg| vars.bad_with(blame, &msg))?;
        match vars.get("CHALLENGETYPE").filter(|v| !v.is_empty()) {
            None | Some("http-01") => {}
            Some(_) => {
                return Err(vars.bad(
                    "CHALLENGETYPE",
                    "is not supported by this version yet: only http-01 is",
                ));
            }
        }
        match vars.get("PRIVATE_KEY_RENEW").filter(|v| !v.is_empty()) {
            None | Some("yes") => {}
            Some(_) => {
                return Err(vars.bad(
                    "PRIVATE_KEY_RENEW",
                    "can only be yes in this version: every certificate gets a new key",
                ));
            }
        }
        let renew_days = match vars.get("RENEW_DAYS").filter(|v| !v.is_empty()) {
            None => None,
            Some(_) => Some(vars.number("RENEW_DAYS", 0)?),
        };
        let jobs = vars.number("JOBS", 4)?;
        if jobs == 0 || jobs > 64 {
            return Err(vars.bad("JOBS", "must be between 1 and 64"));
        }
        let lockfile = if opts.no_lock {
            None
        } else {
            let mut lock = under("LOCKFILE", "lock").into_os_string();
            if let Some(suffix) = &opts.lock_suffix {
                lock.push(format!("-{suffix}"));
            }
            Some(PathBuf::from(lock))
        };
        let contact_email = vars
            .get("CONTACT_EMAIL")
            .filter(|v| !v.is_empty())
            .map(str::to_string);
        if let Some(mail) = &contact_email
            && (!mail.contains('@') || mail.contains(char::is_whitespace) || mail.contains(','))
        {
            return Err(vars.bad("CONTACT_EMAIL", "must be one e-mail address"));
        }
        Ok(Config {
            file,
            certdir: under("CERTDIR", "certs"),
            accountdir: under("ACCOUNTDIR", "accounts"),
            domains_txt: under("DOMAINS_TXT", "domains.txt"),
            wellknown: vars
                .get("WELLKNOWN")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("/var/www/dehydrated")),
            ca_bundle: vars
                .get("CA_BUNDLE")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from),
            basedir,
            ca,
            key_algo,
            contact_email,
            lockfile,
            renew_days,
            jobs: jobs as usize,
            warnings,
        })
    }
}

/// The folder of `file`, or `.` for a bare file name.
fn parent_dir(file: &Path) -> PathBuf {
    match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// The `*.sh` files of a `CONFIG_D` folder, in name order, as the shell's glob gives them.
fn config_d_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        Error::Config(format!(
            "{}: CONFIG_D is not a readable folder: {e}",
            dir.display()
        ))
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "sh"))
        .collect();
    files.sort();
    Ok(files)
}

/// The keys set so far, in the order the shell would have seen them.
#[derive(Default)]
struct Vars {
    map: HashMap<String, Setting>,
}

impl Vars {
    fn set(&mut self, key: &str, value: String, origin: Origin) {
        self.map.insert(key.to_string(), Setting { value, origin });
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.map.get(key).map(|s| s.value.as_str())
    }

    fn origin(&self, key: &str) -> String {
        self.map
            .get(key)
            .map(|s| s.origin.to_string())
            .unwrap_or_else(|| "config".into())
    }

    /// A config error about `key` that names where it was set.
    fn bad(&self, key: &str, what: &str) -> Error {
        let value = self.get(key).unwrap_or_default();
        Error::Config(format!("{}: {key}={value:?} {what}", self.origin(key)))
    }

    fn bad_with(&self, key: &str, msg: &str) -> Error {
        Error::Config(format!("{}: {msg}", self.origin(key)))
    }

    fn number(&self, key: &str, default: u32) -> Result<u32> {
        match self.get(key).filter(|v| !v.is_empty()) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|_| self.bad(key, "is not a whole number")),
        }
    }
}

fn read_config_file(
    path: &Path,
    vars: &mut Vars,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<()> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::Config(format!("{}: cannot read: {e}", path.display())))?;
    for (i, line) in text.lines().enumerate() {
        let at = || format!("{}:{}", path.display(), i + 1);
        let parsed = parse_line(line, &|name| {
            vars.get(name).map(str::to_string).or_else(|| env(name))
        })
        .map_err(|msg| Error::Config(format!("{}: {msg}", at())))?;
        if let Some((key, value)) = parsed {
            if support(&key).is_none() {
                return Err(Error::Config(format!(
                    "{}: unknown key {key}; see the list of keys in README",
                    at()
                )));
            }
            vars.set(&key, value, Origin(at()));
        }
    }
    Ok(())
}

/// One line of shell-style config: blank, a comment, or `[export ]KEY=VALUE [# comment]`, with
/// `'...'`, `"..."`, backslash escapes and `$KEY`/`${KEY}` expansion through `lookup`. Anything
/// a shell would execute is refused, so that nothing is ever run.
pub fn parse_line(
    line: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> std::result::Result<Option<(String, String)>, String> {
    let line = line.trim_start();
    if line.is_empty() || line.starts_with('#') {
        return Ok(None);
    }
    let line = line
        .strip_prefix("export")
        .filter(|rest| rest.starts_with([' ', '\t']))
        .map(str::trim_start)
        .unwrap_or(line);
    let name_len = line
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(line.len());
    let key = &line[..name_len];
    if key.is_empty()
        || key.starts_with(|c: char| c.is_ascii_digit())
        || !line[name_len..].starts_with('=')
    {
        return Err(format!(
            "not a KEY=value line: {:?}; the config is read, not run by a shell, so only \
             assignments and comments are allowed",
            line.trim_end()
        ));
    }
    let value = parse_value(&line[name_len + 1..], lookup)?;
    Ok(Some((key.to_string(), value)))
}

fn parse_value(
    input: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> std::result::Result<String, String> {
    let mut out = String::new();
    let mut chars = input.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' => {
                let rest: String = chars.collect();
                let rest = rest.trim();
                if rest.is_empty() || rest.starts_with('#') {
                    return Ok(out);
                }
                return Err(format!(
                    "unquoted space in the value: quote it (\"{out} {rest}\")"
                ));
            }
            '\'' => loop {
                match chars.next() {
                    Some('\'') => break,
                    Some(c) => out.push(c),
                    None => return Err("a single quote is not closed".into()),
                }
            },
            '"' => loop {
                match chars.next() {
                    Some('"') => break,
                    Some('\\') => match chars.next() {
                        Some(c @ ('"' | '\\' | '$' | '`')) => out.push(c),
                        Some(c) => {
                            out.push('\\');
                            out.push(c);
                        }
                        None => return Err("a double quote is not closed".into()),
                    },
                    Some('$') => expand(&mut chars, &mut out, lookup)?,
                    Some('`') => return Err(no_commands()),
                    Some(c) => out.push(c),
                    None => return Err("a double quote is not closed".into()),
                }
            },
            '\\' => match chars.next() {
                Some(c) => out.push(c),
                None => return Err("the line ends in a backslash".into()),
            },
            '$' => expand(&mut chars, &mut out, lookup)?,
            '`' => return Err(no_commands()),
            ';' | '&' | '|' | '<' | '>' | '(' | ')' => {
                return Err(format!(
                    "{c:?} in an unquoted value: quote the value; the config is not run by a shell"
                ));
            }
            c => out.push(c),
        }
    }
    Ok(out)
}

fn no_commands() -> String {
    "command substitution is not supported: the config is read, not run by a shell".into()
}

/// Expands `$NAME` or `${NAME}` after a `$`; an unset name is an error, as under `set -u`.
fn expand(
    chars: &mut std::iter::Peekable<std::str::Chars<'_>>,
    out: &mut String,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> std::result::Result<(), String> {
    let mut name = String::new();
    match chars.peek() {
        Some('{') => {
            chars.next();
            loop {
                match chars.next() {
                    Some('}') => break,
                    Some(c) if c.is_ascii_alphanumeric() || c == '_' => name.push(c),
                    Some(_) => {
                        return Err(
                            "only ${NAME} is supported, not other ${...} forms or defaults".into(),
                        );
                    }
                    None => return Err("a ${ is not closed".into()),
                }
            }
        }
        Some('(') => return Err(no_commands()),
        _ => {
            while let Some(&c) = chars.peek() {
                if c.is_ascii_alphanumeric() || c == '_' {
                    name.push(c);
                    chars.next();
                } else {
                    break;
                }
            }
            if name.is_empty() {
                out.push('$');
                return Ok(());
            }
        }
    }
    match lookup(&name) {
        Some(v) => {
            out.push_str(&v);
            Ok(())
        }
        None => Err(format!(
            "${name} is not set: set it on an earlier line or in the environment"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> std::result::Result<Option<(String, String)>, String> {
        parse_line(line, &|name| match name {
            "BASEDIR" => Some("/etc/dehydrated".to_string()),
            _ => None,
        })
    }

    fn value(line: &str) -> String {
        parse(line).unwrap().unwrap().1
    }

    #[test]
    fn dehydrated_style_assignments() {
        assert_eq!(parse("# comment").unwrap(), None);
        assert_eq!(parse("   ").unwrap(), None);
        assert_eq!(
            parse("CA=letsencrypt").unwrap(),
            Some(("CA".to_string(), "letsencrypt".to_string()))
        );
        assert_eq!(
            value(r#"WELLKNOWN="${BASEDIR}/acme-challenges""#),
            "/etc/dehydrated/acme-challenges"
        );
        assert_eq!(value("CERTDIR=$BASEDIR/certs"), "/etc/dehydrated/certs");
        assert_eq!(value("export KEY_ALGO='secp384r1'"), "secp384r1");
        assert_eq!(value(r#"CONTACT_EMAIL="a@b.org" # who"#), "a@b.org");
        assert_eq!(value("HOOK='/x/$BASEDIR'"), "/x/$BASEDIR");
        assert_eq!(value(r#"X="a \"q\" \$ b""#), r#"a "q" $ b"#);
        assert_eq!(value("X="), "");
        assert_eq!(value("X=a\\ b"), "a b");
        assert_eq!(value("X=\"a\"'b'c"), "abc");
    }

    #[test]
    fn anything_a_shell_would_run_is_refused() {
        for line in [
            "X=$(id)",
            "X=`id`",
            "X=\"`id`\"",
            "X=\"$(id)\"",
            "X=a; rm -rf /",
            "X=a && b",
            "if true; then",
            "my_hook() {",
            "source other.sh",
            ". other.sh",
            "X=${Y:-default}",
            "X=$UNSET_NAME",
            "X=\"open",
            "X=a b",
        ] {
            assert!(parse(line).is_err(), "{line} was accepted");
        }
    }

    fn load(files: &[(&str, &str)], env: &[(&str, &str)], opts: LoadOptions) -> Result<Config> {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("desiccant-config-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("conf.d")).unwrap();
        for (name, text) in files {
            std::fs::write(dir.join(name), text.replace("@DIR@", dir.to_str().unwrap())).unwrap();
        }
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let opts = LoadOptions {
            config: Some(dir.join("config")),
            ..opts
        };
        let result = Config::load(&opts, &|k| env.get(k).cloned());
        std::fs::remove_dir_all(&dir).unwrap();
        result
    }

    #[test]
    fn defaults_follow_dehydrated_under_the_config_folder() {
        let c = load(
            &[("config", "CONTACT_EMAIL=me@example.org\n")],
            &[],
            LoadOptions::default(),
        )
        .unwrap();
        let dir = c.basedir.clone();
        assert_eq!(c.certdir, dir.join("certs"));
        assert_eq!(c.accountdir, dir.join("accounts"));
        assert_eq!(c.domains_txt, dir.join("domains.txt"));
        assert_eq!(c.lockfile, Some(dir.join("lock")));
        assert_eq!(c.wellknown, PathBuf::from("/var/www/dehydrated"));
        assert_eq!(c.ca, "https://acme-v02.api.letsencrypt.org/directory");
        assert_eq!(c.key_algo, KeyAlgo::Secp384r1);
        assert_eq!(c.renew_days, None);
        assert_eq!(c.jobs, 4);
        assert_eq!(c.contact_email.as_deref(), Some("me@example.org"));
    }

    #[test]
    fn config_d_then_environment_then_flags() {
        let c = load(
            &[
                (
                    "config",
                    "CONFIG_D=@DIR@/conf.d\nCA=letsencrypt-test\nKEY_ALGO=rsa\nKEYSIZE=2048\n",
                ),
                ("conf.d/10-a.sh", "BASEDIR=/srv/acme\nKEYSIZE=3072\n"),
                ("conf.d/20-b.sh", "CERTDIR=\"$BASEDIR/live\"\n"),
                ("conf.d/ignored.conf", "THIS IS NOT READ\n"),
            ],
            &[("DESICCANT_KEYSIZE", "4096"), ("DESICCANT_CA", "zerossl")],
            LoadOptions {
                overrides: vec![("CA", "https://ca.internal/dir".into(), "--ca")],
                lock_suffix: Some("x".into()),
                ..LoadOptions::default()
            },
        )
        .unwrap();
        assert_eq!(c.basedir, PathBuf::from("/srv/acme"));
        assert_eq!(c.certdir, PathBuf::from("/srv/acme/live"));
        assert_eq!(c.key_algo, KeyAlgo::Rsa(4096));
        assert_eq!(c.ca, "https://ca.internal/dir");
        assert_eq!(c.lockfile, Some(PathBuf::from("/srv/acme/lock-x")));
    }

    #[test]
    fn errors_name_the_file_and_line() {
        let err = load(
            &[("config", "CA=letsencrypt\n\nFOO=bar\n")],
            &[],
            LoadOptions::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.ends_with("/config:3: unknown key FOO; see the list of keys in README"),
            "{err}"
        );
        let err = load(
            &[("config", "KEY_ALGO=ed448\n")],
            &[],
            LoadOptions::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("/config:1: KEY_ALGO \"ed448\" is not supported"),
            "{err}"
        );
        let err = load(
            &[("config", "RENEW_DAYS=soon\n")],
            &[],
            LoadOptions::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("/config:1: RENEW_DAYS=\"soon\" is not a whole number"),
            "{err}"
        );
        let err = load(&[("config", "X=1\n")], &[], LoadOptions::default()).unwrap_err();
        assert_eq!(err.status(), crate::error::Status::Config);
    }

    #[test]
    fn obsolete_keys_warn_and_missing_features_refuse() {
        let c = load(
            &[("config", "OCSP_FETCH=yes\n")],
            &[],
            LoadOptions::default(),
        )
        .unwrap();
        assert!(
            c.warnings[0].contains("OCSP_FETCH is ignored"),
            "{:?}",
            c.warnings
        );
        let c = load(
            &[("config", "OCSP_FETCH=no\nOPENSSL=openssl\n")],
            &[],
            LoadOptions::default(),
        )
        .unwrap();
        assert!(c.warnings.is_empty());
        let err = load(
            &[("config", "HOOK=/etc/dehydrated/hook.sh\n")],
            &[],
            LoadOptions::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("/config:1: HOOK is not supported"), "{err}");
    }
}
