//! dehydrated's config syntax, read and never run: `[export ]KEY=value` lines with shell
//! quoting and `$KEY` expansion, and comments. Anything a shell would execute is refused.
//!
//! An error names the file, the line and the key, and never shows a value or the line: a
//! value can be a secret (`EAB_HMAC_KEY`, `DNS_UPDATE_KEY_SECRET`, `PKCS12_PASSPHRASE`), and
//! a typo can put a secret into any key's value or any line, so no part of one is printed.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::trust;

/// Where a value came from, for error messages: `file:line`, an environment variable or a flag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin(pub String);

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One `KEY=value` line, its value already unquoted and expanded.
#[derive(Debug, Clone)]
pub struct Assignment {
    pub key: String,
    pub value: String,
    pub origin: Origin,
}

/// Keys and values as the shell would hold them after reading the files, with where each was set.
#[derive(Debug, Clone, Default)]
pub struct Vars {
    map: HashMap<String, (String, Origin)>,
}

impl Vars {
    pub fn set(&mut self, key: &str, value: String, origin: Origin) {
        self.map.insert(key.to_string(), (value, origin));
    }

    pub fn remove(&mut self, key: &str) {
        self.map.remove(key);
    }

    pub fn apply(&mut self, assignments: Vec<Assignment>) {
        for a in assignments {
            self.set(&a.key, a.value, a.origin);
        }
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.map.get(key).map(|(v, _)| v.as_str())
    }

    /// The value when it is set and not empty: dehydrated treats `KEY=` as unset.
    pub fn value(&self, key: &str) -> Option<&str> {
        self.get(key).filter(|v| !v.is_empty())
    }

    pub fn origin(&self, key: &str) -> Option<&Origin> {
        self.map.get(key).map(|(_, o)| o)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str, &Origin)> {
        self.map
            .iter()
            .map(|(k, (v, o))| (k.as_str(), v.as_str(), o))
    }
}

/// Reads one config file, once [`trust::check`] allows it: only root or the user desiccant
/// runs as may be able to change it. `$KEY` expands to a key set earlier in this file, else in
/// `known`, else in the environment through `env`; an unset name is an error, as under
/// `set -u`.
pub fn read_file(
    path: &Path,
    known: &Vars,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<Assignment>> {
    let text = trust::read_to_string(path, "config")?;
    parse_text(&text, &path.display().to_string(), known, env)
}

/// The assignments of config `text` read from `file` (named in origins), as [`read_file`].
pub fn parse_text(
    text: &str,
    file: &str,
    known: &Vars,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<Assignment>> {
    let mut out: Vec<Assignment> = Vec::new();
    // The latest value of each key of this file, so that `$KEY` is found without a search.
    let mut latest: HashMap<String, usize> = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        let origin = Origin(format!("{file}:{}", i + 1));
        let lookup = |name: &str| {
            latest
                .get(name)
                .map(|&at| out[at].value.clone())
                .or_else(|| known.get(name).map(str::to_string))
                .or_else(|| env(name))
        };
        let parsed =
            parse_line(line, &lookup).map_err(|msg| Error::Config(format!("{origin}: {msg}")))?;
        if let Some((key, value)) = parsed {
            latest.insert(key.clone(), out.len());
            out.push(Assignment { key, value, origin });
        }
    }
    Ok(out)
}

/// The `*.sh` files of a `CONFIG_D` folder, in name order, as the shell's glob gives them.
/// The folder itself must be one only root or we can change ([`trust::check`]). A folder that
/// is not there is not named: the value may be a secret a typo put in the wrong key.
pub fn config_d_files(dir: &Path) -> std::result::Result<Vec<PathBuf>, String> {
    let unreadable = |e: std::io::Error| format!("CONFIG_D is not a readable folder: {e}");
    std::fs::metadata(dir).map_err(unreadable)?;
    trust::check(dir, trust::Kind::Folder, "CONFIG_D folder").map_err(|e| e.to_string())?;
    let entries = std::fs::read_dir(dir).map_err(unreadable)?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "sh"))
        .collect();
    files.sort();
    Ok(files)
}

/// One line: blank, a comment, or `[export ]KEY=VALUE [# comment]`, with `'...'`, `"..."`,
/// backslash escapes and `$KEY`/`${KEY}` expansion through `lookup`. An error starts with the
/// key when the line has one, and never holds any part of the value or of the line.
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
    let is_name = !key.is_empty() && !key.starts_with(|c: char| c.is_ascii_digit());
    if !is_name || !line[name_len..].starts_with('=') {
        // Name the key only when the line is plainly an assignment: a line that is one word
        // may be a secret on a line of its own.
        if is_name && line[name_len..].trim_start().starts_with('=') {
            return Err(format!(
                "{key}: a space before \"=\": write KEY=value, without spaces around \"=\""
            ));
        }
        return Err(
            "not a KEY=value line; the config is read, not run by a shell, so only \
                    assignments and comments are allowed"
                .into(),
        );
    }
    let value =
        parse_value(key, &line[name_len + 1..], lookup).map_err(|msg| format!("{key}: {msg}"))?;
    Ok(Some((key.to_string(), value)))
}

fn parse_value(
    key: &str,
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
                return Err(
                    "an unquoted space in the value: quote the value, or start a comment with \
                     \" #\""
                        .into(),
                );
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
                    Some('$') => expand(key, &mut chars, &mut out, lookup)?,
                    Some('`') => return Err(no_commands()),
                    Some(c) => out.push(c),
                    None => return Err("a double quote is not closed".into()),
                }
            },
            '\\' => match chars.next() {
                Some(c) => out.push(c),
                None => return Err("the line ends in a backslash".into()),
            },
            '$' => expand(key, &mut chars, &mut out, lookup)?,
            '`' => return Err(no_commands()),
            ';' | '&' | '|' | '<' | '>' | '(' | ')' => {
                return Err(
                    "one of ; & | < > ( ) in an unquoted value: quote the value; the \
                            config is not run by a shell"
                        .into(),
                );
            }
            c => out.push(c),
        }
    }
    Ok(out)
}

fn no_commands() -> String {
    "command substitution is not supported: the config is read, not run by a shell".into()
}

/// The variables a hook command gets when it runs (`POST_RENEW_HOOK`'s `RENEWED_CERTS`,
/// certbot's `RENEWED_*` and `CERTBOT_*`): in a config value they can only be meant for the
/// command, in single quotes.
const RUN_TIME_NAMES: [&str; 2] = ["RENEWED_", "CERTBOT_"];

/// Expands `$NAME` or `${NAME}` after a `$` in the value of `key`.
fn expand(
    key: &str,
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
    if RUN_TIME_NAMES.iter().any(|prefix| name.starts_with(prefix)) {
        // A name of ours, not the admin's: no secret to hide.
        return Err(format!(
            "${name} is set only when the command runs, but here it is expanded while the \
             config is read, to nothing: write the value in single quotes, as {key}='... \
             ${name}'"
        ));
    }
    match lookup(&name) {
        Some(v) => {
            out.push_str(&v);
            Ok(())
        }
        // The name is part of the value, which may be a secret with a "$" in it.
        None => Err(
            "the value expands a $NAME that is not set: set it on an earlier line or \
                     in the environment, or write the value in single quotes if the \"$\" is \
                     meant as it is"
                .into(),
        ),
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
        assert_eq!(value("  export\tKEY_ALGO=rsa"), "rsa");
        assert_eq!(value(r#"CONTACT_EMAIL="a@b.org" # who"#), "a@b.org");
        assert_eq!(value("HOOK='/x/$BASEDIR'"), "/x/$BASEDIR");
        assert_eq!(value(r#"X="a \"q\" \$ b""#), r#"a "q" $ b"#);
        assert_eq!(value(r#"X="a\nb""#), r"a\nb");
        assert_eq!(value("X="), "");
        assert_eq!(value("X=''"), "");
        assert_eq!(value("X=a\\ b"), "a b");
        assert_eq!(value("X=\"a\"'b'c"), "abc");
        assert_eq!(value("X=price$"), "price$");
        assert_eq!(value("X=\"$BASEDIR\"/x\"y z\""), "/etc/dehydrated/xy z");
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
            "X=a | b",
            "X=a > /tmp/x",
            "if true; then",
            "my_hook() {",
            "source other.sh",
            ". other.sh",
            "X=${Y:-default}",
            "X=$UNSET_NAME",
            "X=\"open",
            "X='open",
            "X=a b",
            "1X=a",
            "=a",
        ] {
            assert!(parse(line).is_err(), "{line} was accepted");
        }
    }

    #[test]
    fn a_file_expands_its_own_earlier_keys_then_known_ones_then_the_environment() {
        let dir = std::env::temp_dir().join(format!("desiccant-cf-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("config");
        std::fs::write(
            &path,
            "A=one\n# note\nB=\"$A-$KNOWN-$FROM_ENV\"\nA=two\nC=$A\n",
        )
        .unwrap();
        let mut known = Vars::default();
        known.set("KNOWN", "k".into(), Origin("test".into()));
        let got = read_file(&path, &known, &|n| {
            (n == "FROM_ENV").then(|| "e".to_string())
        })
        .unwrap();
        let pairs: Vec<(&str, &str, &str)> = got
            .iter()
            .map(|a| (a.key.as_str(), a.value.as_str(), a.origin.0.as_str()))
            .collect();
        let at = |n: usize| format!("{}:{n}", path.display());
        assert_eq!(
            pairs,
            [
                ("A", "one", at(1).as_str()),
                ("B", "one-k-e", at(3).as_str()),
                ("A", "two", at(4).as_str()),
                ("C", "two", at(5).as_str()),
            ]
        );
        std::fs::write(&path, "A=1\nB=$(date)\n").unwrap();
        let err = read_file(&path, &known, &|_| None).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "{}: B: command substitution is not supported: the config is read, not run by a shell",
                at(2)
            )
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
