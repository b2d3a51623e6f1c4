//! Proving control of names: http-01 files in the webroot, put in place all at once and
//! removed whatever happens.

use std::fs;
use std::path::PathBuf;

use crate::error::{Error, Result};
use crate::store;

/// The token as a file name, only if it is base64url (RFC 8555 §8.1) and so cannot be a path
/// or hidden file. Anything else the CA sends is refused.
pub fn validate_token(token: &str) -> std::result::Result<&str, String> {
    let ok = !token.is_empty()
        && token.len() <= 256
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(token)
    } else {
        Err(format!(
            "the CA sent a challenge token that is not base64url: {:?}",
            token.chars().take(80).collect::<String>()
        ))
    }
}

/// http-01 through a folder that a web server serves at `/.well-known/acme-challenge/`.
#[derive(Debug, Clone)]
pub struct Webroot {
    pub dir: PathBuf,
}

/// One challenge file in place; [`Webroot::clean`] takes it away.
#[derive(Debug)]
pub struct Deployed {
    pub path: PathBuf,
}

impl Webroot {
    /// Ok when the folder exists; a config error otherwise, found before any request.
    pub fn check(&self) -> Result<()> {
        if self.dir.is_dir() {
            Ok(())
        } else {
            Err(Error::Config(format!(
                "{}: WELLKNOWN folder does not exist; create it and have the web server serve it \
                 at /.well-known/acme-challenge/",
                self.dir.display()
            )))
        }
    }

    /// Writes `key_authorization` to `<dir>/<token>`, world-readable so the web server can
    /// serve it.
    pub fn deploy(&self, token: &str, key_authorization: &str) -> Result<Deployed> {
        let name = validate_token(token).map_err(|msg| Error::refused("http-01", msg))?;
        let path = self.dir.join(name);
        store::write_ephemeral(&path, key_authorization.as_bytes(), store::PUBLIC_MODE)?;
        Ok(Deployed { path })
    }

    /// Removes a file [`Webroot::deploy`] wrote. Never fails: a file already gone is fine.
    pub fn clean(&self, deployed: &Deployed) {
        let _ = fs::remove_file(&deployed.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_base64url_tokens_become_file_names() {
        assert_eq!(
            validate_token("LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0"),
            Ok("LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0")
        );
        for bad in [
            "",
            "../x",
            "a/b",
            "..",
            ".hidden",
            "a b",
            "a\0b",
            "a\\b",
            "tok=",
            "tök",
            &"a".repeat(257),
        ] {
            assert!(validate_token(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn a_bad_token_writes_nothing_and_a_good_one_stays_inside_the_webroot() {
        let dir = std::env::temp_dir().join(format!("desiccant-webroot-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let root = dir.join("webroot");
        fs::create_dir_all(&root).unwrap();
        let webroot = Webroot { dir: root.clone() };
        assert!(webroot.deploy("../escape", "x").is_err());
        assert!(webroot.deploy("a/b", "x").is_err());
        assert!(!dir.join("escape").exists());
        let d = webroot
            .deploy("good-token_1", "good-token_1.thumb")
            .unwrap();
        assert_eq!(d.path.parent(), Some(root.as_path()));
        assert_eq!(fs::read_to_string(&d.path).unwrap(), "good-token_1.thumb");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            fs::metadata(&d.path).unwrap().permissions().mode() & 0o777,
            0o644
        );
        webroot.clean(&d);
        assert_eq!(fs::read_dir(&root).unwrap().count(), 0);
        fs::remove_dir_all(&dir).unwrap();
    }
}
