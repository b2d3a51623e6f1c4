//! Proving control of names: http-01 files in the webroot and dehydrated's challenge hooks, put
//! in place all at once and taken away whatever happens.

use std::fs;
use std::path::PathBuf;

use crate::error::{Error, Result};
use crate::hooks::{Hook, HookEvent, Triplet};
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
}

/// One name to prove: what the CA asked for it.
#[derive(Debug, Clone)]
pub struct Proof {
    /// The identifier as the authorization names it (the base name for a wildcard).
    pub domain: String,
    pub token: String,
    /// `token.thumbprint`; a secret until the challenge is done, never logged.
    pub key_authorization: String,
}

/// How the challenges of one certificate are put in place: the http-01 webroot, and the
/// certificate's hook, if any, told of every challenge as dehydrated tells it.
pub struct Solver<'a> {
    pub webroot: Webroot,
    pub hook: Option<&'a Hook>,
    /// `HOOK_CHAIN=yes`: one hook call for all challenges instead of one each.
    pub chain: bool,
}

/// What [`Solver::deploy`] put in place, for [`Solver::clean`] to take away.
#[derive(Debug, Default)]
pub struct Deployed {
    files: Vec<PathBuf>,
    hooked: Vec<Triplet>,
}

impl Solver<'_> {
    fn triplet(p: &Proof) -> Triplet {
        Triplet {
            domain: p.domain.clone(),
            token_filename: p.token.clone(),
            token_value: p.key_authorization.clone(),
        }
    }

    /// Writes every challenge file (world-readable, so the web server can serve it), then runs
    /// `deploy_challenge`. On an error, what was already in place is in `deployed` for
    /// [`Solver::clean`].
    pub fn deploy(&self, proofs: &[Proof], deployed: &mut Deployed) -> Result<()> {
        for p in proofs {
            let name = validate_token(&p.token).map_err(|msg| Error::refused(&p.domain, msg))?;
            let path = self.webroot.dir.join(name);
            store::write_ephemeral(&path, p.key_authorization.as_bytes(), store::PUBLIC_MODE)?;
            deployed.files.push(path);
        }
        let Some(hook) = self.hook else {
            return Ok(());
        };
        let triplets: Vec<Triplet> = proofs.iter().map(Self::triplet).collect();
        if self.chain {
            hook.run(&HookEvent::DeployChallenge(triplets.clone()), &[])?;
            deployed.hooked = triplets;
        } else {
            for t in triplets {
                hook.run(&HookEvent::DeployChallenge(vec![t.clone()]), &[])?;
                deployed.hooked.push(t);
            }
        }
        Ok(())
    }

    /// Removes every file and runs `clean_challenge` for every challenge the hook was told of,
    /// even after a failure. Returns the first hook error, after trying them all.
    pub fn clean(&self, deployed: Deployed) -> Result<()> {
        for path in &deployed.files {
            let _ = fs::remove_file(path);
        }
        let (Some(hook), false) = (self.hook, deployed.hooked.is_empty()) else {
            return Ok(());
        };
        if self.chain {
            return hook
                .run(&HookEvent::CleanChallenge(deployed.hooked), &[])
                .map(|_| ());
        }
        let mut first_error = None;
        for t in deployed.hooked {
            if let Err(e) = hook.run(&HookEvent::CleanChallenge(vec![t]), &[]) {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Runs `invalid_challenge` for a name the CA found invalid, with the CA's answer.
    pub fn invalid(&self, domain: &str, response: &str) -> Result<()> {
        match self.hook {
            Some(hook) => hook
                .run(
                    &HookEvent::InvalidChallenge {
                        domain: domain.to_string(),
                        response: response.to_string(),
                    },
                    &[],
                )
                .map(|_| ()),
            None => Ok(()),
        }
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
        let solver = Solver {
            webroot: Webroot { dir: root.clone() },
            hook: None,
            chain: false,
        };
        let proof = |token: &str| Proof {
            domain: "example.org".into(),
            token: token.into(),
            key_authorization: format!("{token}.thumb"),
        };
        for bad in ["../escape", "a/b"] {
            let mut deployed = Deployed::default();
            assert!(solver.deploy(&[proof(bad)], &mut deployed).is_err());
            assert!(deployed.files.is_empty());
        }
        assert!(!dir.join("escape").exists());
        let mut deployed = Deployed::default();
        solver
            .deploy(&[proof("good-token_1")], &mut deployed)
            .unwrap();
        let path = root.join("good-token_1");
        assert_eq!(deployed.files, std::slice::from_ref(&path));
        assert_eq!(fs::read_to_string(&path).unwrap(), "good-token_1.thumb");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o644
        );
        solver.clean(deployed).unwrap();
        assert_eq!(fs::read_dir(&root).unwrap().count(), 0);
        fs::remove_dir_all(&dir).unwrap();
    }
}
