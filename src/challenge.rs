//! Proving control of names: http-01 files or the built-in responder, dns-01 and dns-account-01
//! records by hook or by RFC 2136, tls-alpn-01 certificates, dehydrated's challenge hooks and certbot's auth and
//! cleanup hooks; all put in place at once and taken away whatever happens.

use std::fs;
use std::path::{Path, PathBuf};

use ring::digest;

use crate::acme::jws::b64;
use crate::acme::text::check_token;
use crate::config::{CertbotHooks, ChallengeType, DnsConfig};
use crate::dns01::{self, TxtRecord};
use crate::error::{Error, Result};
use crate::hooks::{CertbotChallenge, CertbotEvent, Hook, HookEvent, Triplet};
use crate::responder::Responder;
use crate::store;
use crate::trust;

/// http-01 through a folder that a web server serves at `/.well-known/acme-challenge/`.
#[derive(Debug, Clone)]
pub struct Webroot {
    pub dir: PathBuf,
    /// `WEBROOT`, the document root `dir` is under, when it was given that way.
    pub document_root: Option<PathBuf>,
}

/// Mode of the folders made under a `WEBROOT`: the web server, whoever it runs as, reads them.
const WEBROOT_FOLDER_MODE: u32 = 0o755;

impl Webroot {
    /// Ok when the folder exists (under a `WEBROOT` that exists, once its missing folders are
    /// made, 0755 whatever the umask) and can be reached without a symlink another user put on
    /// the way ([`trust::open_folder`]); a config error otherwise, found before any request.
    pub fn check(&self) -> Result<()> {
        self.open().map(|_| ())
    }

    /// The folder as a handle that every write and removal goes through.
    fn open(&self) -> Result<fs::File> {
        if let Some(root) = &self.document_root {
            if !root.is_dir() {
                return Err(Error::Config(format!(
                    "{}: WEBROOT folder does not exist; set it to the document root the web \
                     server serves for these names",
                    root.display()
                )));
            }
            // Each missing folder is made inside its parent's handle, so a link another user
            // put there leads nowhere.
            let well_known = root.join(".well-known");
            for (parent, name) in [(root, ".well-known"), (&well_known, "acme-challenge")] {
                let folder = trust::open_folder(parent, "WEBROOT")?;
                store::make_dir_at(&folder, parent, name, WEBROOT_FOLDER_MODE)?;
            }
        } else if !self.dir.is_dir() {
            return Err(Error::Config(format!(
                "{}: WELLKNOWN folder does not exist; create it and have the web server serve it \
                 at /.well-known/acme-challenge/, or set WEBROOT to the document root instead",
                self.dir.display()
            )));
        }
        trust::open_folder(&self.dir, "WELLKNOWN")
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
    /// The account's URL (its `kid`), which names dns-account-01's record.
    pub account_url: String,
}

/// How the challenges of one certificate are put in place: by challenge type, through WELLKNOWN
/// or the built-in responder, built-in DNS updates, tls-alpn-01 certificates; and the
/// certificate's hook, if any, told of every challenge as dehydrated tells it.
pub struct Solver<'a> {
    pub kind: ChallengeType,
    /// http-01 through files; None when the responder serves them.
    pub webroot: Option<Webroot>,
    pub responder: Option<&'a Responder>,
    pub hook: Option<&'a Hook>,
    /// `HOOK_CHAIN=yes`: one hook call for all challenges instead of one each.
    pub chain: bool,
    /// certbot's `AUTH_HOOK` and `CLEANUP_HOOK`, with what runs them (`/bin/sh`, with the
    /// certificate's environment), when `AUTH_HOOK` is set.
    pub certbot: Option<(&'a Hook, &'a CertbotHooks)>,
    pub dns: &'a DnsConfig,
    /// tls-alpn-01: where the validation certificates go.
    pub alpn_dir: &'a Path,
    /// Where what is put in place is noted before it is, so that a run killed before it took
    /// the challenges away can have the next run take them away ([`Deployed::left_over`]).
    pub journal: Option<PathBuf>,
    /// dns-persist-01: the issuer domain name the standing record carries, which the CA's
    /// challenge must name (set once the record was found in place).
    pub persist_issuer: Option<String>,
}

/// What [`Solver::deploy`] put in place, for [`Solver::clean`] to take away.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Deployed {
    #[serde(default)]
    files: Vec<PathBuf>,
    #[serde(skip)]
    tokens: Vec<String>,
    #[serde(default)]
    hooked: Vec<Triplet>,
    #[serde(default)]
    dns_added: Option<dns01::Added>,
    /// Challenges `AUTH_HOOK` was run for, each with what it printed.
    #[serde(default)]
    authed: Vec<Authed>,
    #[serde(skip)]
    journal: Option<PathBuf>,
}

/// One `AUTH_HOOK` call, for its `CLEANUP_HOOK` call.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Authed {
    challenge: CertbotChallenge,
    /// Its stdout, trimmed, as certbot passes it on in `CERTBOT_AUTH_OUTPUT`.
    output: String,
}

impl Deployed {
    /// Nothing in place yet; what will be is noted in `journal`.
    pub fn new(journal: Option<PathBuf>) -> Deployed {
        Deployed {
            journal,
            ..Deployed::default()
        }
    }

    /// What a killed run noted in `journal` and never took away, if anything. The journal
    /// goes with the next [`Solver::clean`].
    pub fn left_over(journal: PathBuf) -> Option<Deployed> {
        let bytes = store::read_plain(&journal).ok()?;
        let mut deployed: Deployed = serde_json::from_slice(&bytes).unwrap_or_default();
        deployed.journal = Some(journal);
        Some(deployed)
    }

    /// Writes down what is (about to be) in place. The journal is readable by us alone: it
    /// holds key authorizations.
    fn note(&self) -> Result<()> {
        let Some(journal) = &self.journal else {
            return Ok(());
        };
        if let Some(dir) = journal.parent() {
            store::create_dir(dir, 0o700)?;
        }
        let text = serde_json::to_vec(self).unwrap_or_default();
        store::write_ephemeral(journal, &text, 0o600)
    }
}

/// base64url(SHA-256(key authorization)): the dns-01 TXT value (RFC 8555 §8.4).
pub fn dns_value(key_authorization: &str) -> String {
    b64(digest::digest(
        &digest::SHA256,
        key_authorization.as_bytes(),
    ))
}

/// The name of the TXT record a DNS challenge of type `kind` looks up for `domain` (the base name
/// for a wildcard): `_acme-challenge.<domain>` for dns-01; for dns-account-01
/// `_<label>._acme-challenge.<domain>`, where the label is the lower-case base32 of the first
/// 10 bytes of SHA-256 of the account URL (draft-ietf-acme-dns-account-label, as Pebble checks
/// it). None for a type that proves nothing in DNS.
pub fn txt_name(kind: ChallengeType, domain: &str, account_url: &str) -> Option<String> {
    match kind {
        ChallengeType::Dns01 => Some(format!("_acme-challenge.{domain}")),
        ChallengeType::DnsAccount01 => {
            let hash = digest::digest(&digest::SHA256, account_url.as_bytes());
            let label = base32_lower(&hash.as_ref()[..10]);
            Some(format!("_{label}._acme-challenge.{domain}"))
        }
        ChallengeType::DnsPersist01 => Some(format!("{}.{domain}", crate::persist::LABEL)),
        ChallengeType::Http01 | ChallengeType::TlsAlpn01 => None,
    }
}

/// RFC 4648 base32 in lower case, without padding (10 bytes make 16 characters, none needed).
fn base32_lower(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut out = String::new();
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &b in bytes {
        buffer = (buffer << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((buffer >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

/// SHA-256 of the key authorization as colon-separated hex, the value dehydrated hands its hook
/// for tls-alpn-01.
fn alpn_value(key_authorization: &str) -> String {
    digest::digest(&digest::SHA256, key_authorization.as_bytes())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

impl Solver<'_> {
    /// What the hook is told for a challenge: the key authorization for http-01, the TXT value
    /// for dns-01, the digest for tls-alpn-01.
    fn triplet(&self, p: &Proof) -> Triplet {
        let token_value = match self.kind {
            ChallengeType::Http01 => p.key_authorization.clone(),
            ChallengeType::Dns01 | ChallengeType::DnsAccount01 => dns_value(&p.key_authorization),
            ChallengeType::TlsAlpn01 => alpn_value(&p.key_authorization),
            // Its record is standing, not a challenge's: the hook never sees it here.
            ChallengeType::DnsPersist01 => String::new(),
        };
        Triplet {
            domain: p.domain.clone(),
            token_filename: p.token.clone(),
            token_value,
            record: txt_name(self.kind, &p.domain, &p.account_url),
        }
    }

    /// Puts every challenge in place: files, responder entries, validation certificates, DNS
    /// records, then `deploy_challenge`, then for dns-01 waits until every name server has the
    /// records. On an error, what was already in place is in `deployed` for
    /// [`Solver::clean`].
    pub fn deploy(&self, proofs: &[Proof], deployed: &mut Deployed) -> Result<()> {
        if self.kind == ChallengeType::DnsPersist01 {
            // The standing record was checked (and published) before the order: nothing to
            // put in place, nothing to take away.
            return Ok(());
        }
        for p in proofs {
            // Checked where it came in (`acme::order`); a journal of a killed run is read too.
            check_token(&p.token).map_err(|msg| Error::refused(&p.domain, msg))?;
        }
        match self.kind {
            ChallengeType::Http01 => self.deploy_http(proofs, deployed)?,
            ChallengeType::TlsAlpn01 => self.deploy_alpn(proofs, deployed)?,
            ChallengeType::DnsPersist01 => {}
            ChallengeType::Dns01 | ChallengeType::DnsAccount01 => {
                if let Some((server, key, ttl)) = &self.dns.update {
                    let refused = |e: crate::dns::DnsError| Error::refused(&proofs[0].domain, e.0);
                    let added =
                        dns01::by_zone(*server, &self.txt_records(proofs)).map_err(refused)?;
                    deployed.dns_added = Some(added);
                    deployed.note()?;
                    if let Some(added) = &deployed.dns_added {
                        dns01::add(*server, key, *ttl, added).map_err(refused)?;
                    }
                }
            }
        }
        if let Some(hook) = self.hook {
            let triplets: Vec<Triplet> = proofs.iter().map(|p| self.triplet(p)).collect();
            if self.chain {
                deployed.hooked = triplets.clone();
                deployed.note()?;
                let env = Triplet::records_env(&triplets);
                hook.run(&HookEvent::DeployChallenge(triplets), &env.pairs())?;
            } else {
                for t in triplets {
                    deployed.hooked.push(t.clone());
                    deployed.note()?;
                    let env = Triplet::records_env(std::slice::from_ref(&t));
                    hook.run(&HookEvent::DeployChallenge(vec![t]), &env.pairs())?;
                }
            }
        }
        if let Some((runner, hooks)) = self.certbot
            && let Some(auth) = &hooks.auth
        {
            self.run_auth_hooks(runner, auth, proofs, deployed)?;
        }
        if self.kind.is_dns() && self.dns.check {
            dns01::wait_until_visible(self.dns, &self.txt_records(proofs))
                .map_err(|e| Error::refused(&proofs[0].domain, e.0))?;
        }
        Ok(())
    }

    /// Runs `AUTH_HOOK` once per challenge as certbot's manual plugin does: the values in
    /// `CERTBOT_*` variables, `CERTBOT_REMAINING_CHALLENGES` counting down to 0.
    fn run_auth_hooks(
        &self,
        runner: &Hook,
        command: &str,
        proofs: &[Proof],
        deployed: &mut Deployed,
    ) -> Result<()> {
        let all_domains = proofs
            .iter()
            .map(|p| p.domain.as_str())
            .collect::<Vec<_>>()
            .join(",");
        for (i, p) in proofs.iter().enumerate() {
            let challenge = CertbotChallenge {
                domain: p.domain.clone(),
                validation: self.triplet(p).token_value,
                token: (self.kind == ChallengeType::Http01).then(|| p.token.clone()),
                remaining: proofs.len() - i - 1,
                all_domains: all_domains.clone(),
            };
            // Noted first: a hook that fails or is killed half-way gets its cleanup too.
            deployed.authed.push(Authed {
                challenge: challenge.clone(),
                output: String::new(),
            });
            deployed.note()?;
            let out = runner.run_certbot(command, &CertbotEvent::Auth(challenge))?;
            if let Some(last) = deployed.authed.last_mut() {
                last.output = out.stdout.trim().to_string();
            }
            deployed.note()?;
        }
        Ok(())
    }

    fn txt_records(&self, proofs: &[Proof]) -> Vec<TxtRecord> {
        proofs
            .iter()
            .filter_map(|p| {
                Some(TxtRecord {
                    name: txt_name(self.kind, &p.domain, &p.account_url)?,
                    value: dns_value(&p.key_authorization),
                })
            })
            .collect()
    }

    fn deploy_http(&self, proofs: &[Proof], deployed: &mut Deployed) -> Result<()> {
        let folder = match (&self.webroot, self.responder) {
            (Some(webroot), None) => Some(webroot.open()?),
            _ => None,
        };
        for p in proofs {
            if let Some(responder) = self.responder {
                responder.insert(&p.token, &p.key_authorization);
                deployed.tokens.push(p.token.clone());
            } else if let (Some(webroot), Some(folder)) = (&self.webroot, &folder) {
                deployed.files.push(webroot.dir.join(&p.token));
                deployed.note()?;
                let bytes = p.key_authorization.as_bytes();
                store::write_at(folder, &webroot.dir, &p.token, bytes, store::PUBLIC_MODE)?;
            }
        }
        Ok(())
    }

    /// Writes `<identifier>.crt.pem` and `<identifier>.key.pem` into ALPNCERTDIR, as dehydrated
    /// does, for a TLS server to present on `acme-tls/1` (RFC 8737).
    fn deploy_alpn(&self, proofs: &[Proof], deployed: &mut Deployed) -> Result<()> {
        store::create_dir(self.alpn_dir, 0o700)?;
        let folder = trust::open_folder(self.alpn_dir, "ALPNCERTDIR")?;
        for p in proofs {
            let (cert, key) = alpn_certificate(&p.domain, &p.key_authorization)
                .map_err(|msg| Error::refused(&p.domain, msg))?;
            let (crt, keyfile) = (
                format!("{}.crt.pem", p.domain),
                format!("{}.key.pem", p.domain),
            );
            deployed.files.push(self.alpn_dir.join(&keyfile));
            deployed.files.push(self.alpn_dir.join(&crt));
            deployed.note()?;
            let dir = self.alpn_dir;
            store::write_at(&folder, dir, &keyfile, key.as_bytes(), store::KEY_MODE)?;
            store::write_at(&folder, dir, &crt, cert.as_bytes(), store::PUBLIC_MODE)?;
        }
        Ok(())
    }

    /// Takes away everything [`Solver::deploy`] put in place and runs `clean_challenge` for
    /// every challenge the hook was told of, even after a failure. Returns the first error,
    /// after trying everything.
    pub fn clean(&self, deployed: Deployed) -> Result<()> {
        // Each folder is opened again as at deploy time, so that a folder swapped for a link
        // since then leads nowhere; a run killed while writing a file left its temporary file
        // beside it, which goes too.
        // Each folder once, however many files were put in it.
        let mut folders: Vec<&Path> = deployed.files.iter().filter_map(|p| p.parent()).collect();
        folders.sort();
        folders.dedup();
        for parent in folders {
            let names: Vec<&std::ffi::OsStr> = deployed
                .files
                .iter()
                .filter(|p| p.parent() == Some(parent))
                .filter_map(|p| p.file_name())
                .collect();
            if let Ok(folder) = trust::open_folder(parent, "challenge folder") {
                store::remove_at(&folder, &names);
            }
        }
        if let Some(responder) = self.responder {
            for token in &deployed.tokens {
                responder.remove(token);
            }
        }
        let mut first_error = None;
        if let (Some(hook), false) = (self.hook, deployed.hooked.is_empty()) {
            let calls: Vec<Vec<Triplet>> = if self.chain {
                vec![deployed.hooked]
            } else {
                deployed.hooked.into_iter().map(|t| vec![t]).collect()
            };
            for triplets in calls {
                let env = Triplet::records_env(&triplets);
                if let Err(e) = hook.run(&HookEvent::CleanChallenge(triplets), &env.pairs()) {
                    first_error.get_or_insert(e);
                }
            }
        }
        if let Some((runner, hooks)) = self.certbot
            && let Some(cleanup) = &hooks.cleanup
        {
            for Authed { challenge, output } in deployed.authed {
                let event = CertbotEvent::Cleanup {
                    challenge,
                    auth_output: output,
                };
                if let Err(e) = runner.run_certbot(cleanup, &event) {
                    first_error.get_or_insert(e);
                }
            }
        }
        if let (Some(added), Some((server, key, _))) = (&deployed.dns_added, &self.dns.update)
            && let Err(e) = dns01::remove(*server, key, added)
        {
            first_error.get_or_insert(Error::refused(self.kind.name(), e.0));
        }
        // Noted things are cleaned once: a hook that fails to clean is not called forever.
        if let Some(journal) = &deployed.journal {
            let _ = fs::remove_file(journal);
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

/// A self-signed certificate for `identifier` with the critical acmeIdentifier extension
/// holding SHA-256 of the key authorization (RFC 8737 §3), and its key, as PEM.
pub fn alpn_certificate(
    identifier: &str,
    key_authorization: &str,
) -> std::result::Result<(String, String), String> {
    let key = rcgen::KeyPair::generate().map_err(|e| e.to_string())?;
    let mut params =
        rcgen::CertificateParams::new(vec![identifier.to_string()]).map_err(|e| e.to_string())?;
    let digest = digest::digest(&digest::SHA256, key_authorization.as_bytes());
    params.custom_extensions = vec![rcgen::CustomExtension::new_acme_identifier(digest.as_ref())];
    let cert = params.self_signed(&key).map_err(|e| e.to_string())?;
    Ok((cert.pem(), key.serialize_pem()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_token_writes_nothing_and_a_good_one_stays_inside_the_webroot() {
        let dir = std::env::temp_dir().join(format!("desiccant-webroot-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let root = dir.join("webroot");
        fs::create_dir_all(&root).unwrap();
        let dns = DnsConfig {
            update: None,
            check: false,
            check_servers: vec![],
            resolver: None,
            wait: std::time::Duration::ZERO,
        };
        let solver = Solver {
            kind: ChallengeType::Http01,
            webroot: Some(Webroot {
                dir: root.clone(),
                document_root: None,
            }),
            responder: None,
            hook: None,
            chain: false,
            certbot: None,
            dns: &dns,
            alpn_dir: &root,
            journal: None,
            persist_issuer: None,
        };
        let proof = |token: &str| Proof {
            domain: "example.org".into(),
            token: token.into(),
            key_authorization: format!("{token}.thumb"),
            account_url: "https://ca.example/acct/1".into(),
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

    #[test]
    fn challenge_values_as_rfc_8555_and_dehydrated_give_them() {
        // RFC 8555 §8.4: base64url(SHA-256(key authorization)), no padding.
        let ka = "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA.nP1qzpXGymHBrUEepNY9HCsQk7K8KhOypzEt62jcerQ";
        assert_eq!(
            dns_value(ka),
            b64(digest::digest(&digest::SHA256, ka.as_bytes()))
        );
        assert_eq!(dns_value(ka).len(), 43);
        let hex = alpn_value("x");
        assert_eq!(hex.len(), 32 * 3 - 1);
        assert!(hex.starts_with("2d:71:16:42"), "{hex}");
    }

    #[test]
    fn dns_account_01_names_its_record_after_the_account() {
        // RFC 4648 §10's test vectors, in lower case and without padding.
        for (input, want) in [
            ("f", "my"),
            ("fo", "mzxq"),
            ("foo", "mzxw6"),
            ("foob", "mzxw6yq"),
            ("fooba", "mzxw6ytb"),
            ("foobar", "mzxw6ytboi"),
        ] {
            assert_eq!(base32_lower(input.as_bytes()), want);
        }
        // The draft's example account URL and label.
        let url = "https://example.com/acme/acct/ExampleAccount";
        let name = txt_name(ChallengeType::DnsAccount01, "example.org", url).unwrap();
        assert_eq!(name, "_ujmmovf2vn55tgye._acme-challenge.example.org");
        // Another account, another label; dns-01's name has none.
        assert_ne!(
            txt_name(
                ChallengeType::DnsAccount01,
                "example.org",
                "https://ca/acct/2"
            ),
            Some(name)
        );
        assert_eq!(
            txt_name(ChallengeType::Dns01, "example.org", url).as_deref(),
            Some("_acme-challenge.example.org")
        );
        assert_eq!(txt_name(ChallengeType::Http01, "example.org", url), None);
    }

    #[test]
    fn a_tls_alpn_certificate_carries_the_critical_acme_identifier() {
        use x509_parser::prelude::*;
        let (cert, _key) = alpn_certificate("alpn.example", "tok.thumb").unwrap();
        let (_, block) = x509_parser::pem::parse_x509_pem(cert.as_bytes()).unwrap();
        let (_, c) = X509Certificate::from_der(&block.contents).unwrap();
        let ext = c
            .extensions()
            .iter()
            .find(|e| e.oid.to_id_string() == "1.3.6.1.5.5.7.1.31")
            .unwrap();
        assert!(ext.critical);
        let digest = digest::digest(&digest::SHA256, b"tok.thumb");
        // The value is an OCTET STRING holding the digest.
        assert_eq!(&ext.value[2..], digest.as_ref());
        let names: Vec<String> = c
            .subject_alternative_name()
            .unwrap()
            .unwrap()
            .value
            .general_names
            .iter()
            .map(|n| n.to_string())
            .collect();
        assert_eq!(names, ["DNSName(alpn.example)"]);
    }
}
