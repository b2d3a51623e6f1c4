//! `--import-certbot DIR`: certbot's lineages become desiccant certificates, so that nothing is
//! reissued before it is due: a `domains.txt` line each, the current files as a set in
//! `certs/<name>/`, and a certificate config where certbot's settings differ from ours: the key
//! type, the webroot as `WEBROOT`, the challenge type, and certbot's hooks as `AUTH_HOOK`,
//! `CLEANUP_HOOK` and `DEPLOY_HOOK`.

use std::fs;
use std::path::{Path, PathBuf};

use crate::config::{ChallengeType, Config};
use crate::domains;
use crate::error::{Error, Result};
use crate::keys::{CertKey, KeyAlgo};
use crate::state::{CertState, StateDir};
use crate::store::{self, CertDir, CertFiles};
use crate::trust;
use crate::x509;

/// One lineage's renewal config, as certbot writes `renewal/<name>.conf`.
#[derive(Debug, Default)]
struct Lineage {
    name: String,
    cert: Option<PathBuf>,
    privkey: Option<PathBuf>,
    chain: Option<PathBuf>,
    authenticator: Option<String>,
    webroot: Option<String>,
    key_type: Option<String>,
    curve: Option<String>,
    rsa_size: Option<u32>,
    /// The directory URL of the CA it was issued by (`server`, `--staging`'s among them).
    server: Option<String>,
    /// `pref_challs`: the challenge types asked for, first first.
    pref_challs: Vec<String>,
    /// `manual_auth_hook`, `manual_cleanup_hook`, and `renew_hook` (where certbot keeps
    /// `--deploy-hook`): shell commands.
    auth_hook: Option<String>,
    cleanup_hook: Option<String>,
    deploy_hook: Option<String>,
    /// `pre_hook` or `post_hook` was set.
    pre_or_post_hook: bool,
}

/// A value as configobj writes it: quoted when it holds a comma, `#` or edge spaces.
fn unquote(value: &str) -> String {
    for q in ['"', '\''] {
        if let Some(inner) = value.strip_prefix(q).and_then(|v| v.strip_suffix(q)) {
            return inner.to_string();
        }
    }
    value.to_string()
}

/// certbot's renewal config: `key = value` lines, `[renewalparams]` and `[[webroot_map]]`
/// sections; the first webroot is the one used.
fn read_lineage(path: &Path) -> Result<Lineage> {
    // It names the files copied into certs/, keys included: only root's or ours is obeyed.
    let text = trust::read_to_string(path, "certbot renewal config")?;
    let mut l = Lineage {
        name: path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default(),
        ..Lineage::default()
    };
    let mut section = String::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        if line.starts_with('[') {
            section = line.trim_matches(|c| c == '[' || c == ']').to_string();
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let raw = unquote(value.trim());
        let (key, value) = (
            key.trim(),
            value.trim().trim_end_matches(',').trim().to_string(),
        );
        match (section.as_str(), key) {
            ("renewalparams", "manual_auth_hook") => l.auth_hook = Some(raw),
            ("renewalparams", "manual_cleanup_hook") => l.cleanup_hook = Some(raw),
            ("renewalparams", "renew_hook" | "deploy_hook") => l.deploy_hook = Some(raw),
            ("renewalparams", "pre_hook" | "post_hook") => l.pre_or_post_hook = true,
            ("renewalparams", "pref_challs") => {
                l.pref_challs = value
                    .split(',')
                    .map(|c| c.trim().to_string())
                    .filter(|c| !c.is_empty())
                    .collect();
            }
            ("", "cert") => l.cert = Some(value.into()),
            ("", "privkey") => l.privkey = Some(value.into()),
            ("", "chain") => l.chain = Some(value.into()),
            ("renewalparams", "authenticator") => l.authenticator = Some(value),
            ("renewalparams", "webroot_path") => l.webroot = l.webroot.or(Some(value)),
            ("renewalparams", "key_type") => l.key_type = Some(value),
            ("renewalparams", "elliptic_curve") => l.curve = Some(value),
            ("renewalparams", "rsa_key_size") => l.rsa_size = value.parse().ok(),
            ("renewalparams", "server") => l.server = Some(value),
            ("webroot_map", _) => l.webroot = l.webroot.or(Some(value)),
            _ => {}
        }
    }
    Ok(l)
}

impl Lineage {
    /// The key type certbot uses for it; certbot's defaults when the config does not say.
    fn key_algo(&self) -> KeyAlgo {
        match (self.key_type.as_deref(), self.curve.as_deref()) {
            (Some("rsa"), _) => KeyAlgo::Rsa(self.rsa_size.unwrap_or(2048)),
            (_, Some("secp384r1")) => KeyAlgo::Secp384r1,
            (Some("ecdsa"), _) | (None, _) | (Some(_), _) => KeyAlgo::Prime256v1,
        }
    }
}

/// Imports every lineage of certbot's folder `dir` (`/etc/letsencrypt`); returns one line per
/// lineage saying what was done. certbot's own files are only read.
pub fn import_certbot(config: &Config, dir: &Path, now: i64) -> Result<Vec<String>> {
    let renewal = dir.join("renewal");
    let mut confs: Vec<PathBuf> = fs::read_dir(&renewal)
        .map_err(|e| {
            Error::Config(format!(
                "{}: not certbot's renewal folder: {e}",
                renewal.display()
            ))
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "conf"))
        .collect();
    confs.sort();
    let known: Vec<String> = domains::read(&config.domains_txt)
        .map(|lines| lines.into_iter().map(|l| l.name).collect())
        .unwrap_or_default();
    let mut said = Vec::new();
    let mut new_lines = String::new();
    for conf in confs {
        let l = read_lineage(&conf)?;
        let live = dir.join("live").join(&l.name);
        let read = |p: &Option<PathBuf>, file: &str| -> Result<String> {
            let path = p.clone().unwrap_or_else(|| live.join(file));
            trust::read_to_string(&path, "certbot file")
                .map_err(|e| Error::Config(format!("{}: {e}", conf.display())))
        };
        if known.contains(&l.name) {
            said.push(format!("{}: already in domains.txt, left as it is", l.name));
            continue;
        }
        let (cert, key, chain) = (
            read(&l.cert, "cert.pem")?,
            read(&l.privkey, "privkey.pem")?,
            read(&l.chain, "chain.pem")?,
        );
        let names =
            names_in_order(&cert).map_err(|m| Error::Config(format!("{}: {m}", conf.display())))?;
        let line = format!("{} > {}", names.join(" "), l.name);
        domains::parse(&line, &conf.display().to_string())?;
        let dir = CertDir::new(&config.certdir, &l.name);
        if dir.cert().exists() {
            said.push(format!(
                "{}: {} exists, left as it is",
                l.name,
                dir.dir.display()
            ));
            continue;
        }
        let facts = x509::facts(cert.as_bytes())
            .map_err(|m| Error::Config(format!("{}: {m}", conf.display())))?;
        // certbot keeps no CSR; one for the same key and names keeps the layout whole.
        let algo = facts.key.unwrap_or_else(|| l.key_algo());
        let csr = CertKey::from_pem(&key, algo)
            .and_then(|k| {
                k.csr(
                    &names
                        .iter()
                        .map(|n| n.trim_start_matches("ip:").to_string())
                        .collect::<Vec<_>>(),
                )
            })
            .map_err(|m| Error::Config(format!("{}: the key: {m}", conf.display())))?;
        let files = CertFiles {
            privkey: Some(&key),
            csr: &csr.pem,
            cert: &cert,
            chain: &chain,
            p12: None,
        };
        let set = dir.write_set(&files, now, &config.modes)?;
        dir.switch(&set)?;
        // The CA that issued it, so that a certificate from another one (certbot's --staging)
        // is renewed from the configured CA. A value that is not a URL is not recorded.
        if let Some(server) = l
            .server
            .as_deref()
            .filter(|s| s.starts_with("https://") && crate::acme::text::check_url(s).is_ok())
        {
            let state = CertState {
                ca: Some(server.to_string()),
                ..CertState::default()
            };
            StateDir::new(&config.basedir).save_cert(&l.name, &state)?;
        }
        let settings = cert_config(config, &l);
        if !settings.is_empty() {
            store::write_file(&dir.config(), settings.as_bytes(), 0o644)?;
        }
        new_lines.push_str(&line);
        new_lines.push('\n');
        said.push(format!(
            "{}: imported ({}), valid until {}",
            l.name,
            names.join(" "),
            crate::logging::utc(facts.not_after)
        ));
    }
    if !new_lines.is_empty() {
        let mut text = fs::read_to_string(&config.domains_txt).unwrap_or_default();
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(&format!("# imported from certbot ({})\n", dir.display()));
        text.push_str(&new_lines);
        store::write_file(&config.domains_txt, text.as_bytes(), 0o644)?;
    }
    Ok(said)
}

/// The certificate's names, its subject's CN first as certbot and dehydrated order them.
fn names_in_order(cert_pem: &str) -> std::result::Result<Vec<String>, String> {
    let facts = x509::facts(cert_pem.as_bytes())?;
    let cn = x509::common_name(cert_pem.as_bytes())?;
    let mut names: Vec<String> = cn.into_iter().filter(|c| facts.names.contains(c)).collect();
    for n in facts.names {
        if !names.contains(&n) {
            names.push(n);
        }
    }
    Ok(names
        .into_iter()
        .map(|n| {
            if n.parse::<std::net::IpAddr>().is_ok() {
                format!("ip:{n}")
            } else {
                n
            }
        })
        .collect())
}

/// The lines of a certificate config that keep what certbot did where it differs from ours.
fn cert_config(config: &Config, l: &Lineage) -> String {
    let mut out = String::new();
    let algo = l.key_algo();
    if algo != config.defaults.key_algo {
        out.push_str(&format!("KEY_ALGO={}\n", algo.config_name()));
        if let KeyAlgo::Rsa(bits) = algo {
            out.push_str(&format!("KEYSIZE={bits}\n"));
        }
    }
    match l.authenticator.as_deref() {
        Some("webroot") => {
            if let Some(root) = &l.webroot {
                let root = Path::new(root);
                if store::webroot_challenges(root) != config.defaults.wellknown {
                    out.push_str(&format!("WEBROOT={}\n", quote(&root.to_string_lossy())));
                }
            }
        }
        Some("manual") => {
            // certbot's manual plugin asks for http-01 before dns-01 unless told otherwise.
            let asked = l
                .pref_challs
                .iter()
                .find_map(|c| match c.as_str() {
                    "http-01" | "http" => Some(ChallengeType::Http01),
                    "dns-01" | "dns" => Some(ChallengeType::Dns01),
                    _ => None,
                });
            let challenge = match (asked, &l.auth_hook) {
                (Some(c), _) => c,
                (None, Some(_)) => ChallengeType::Http01,
                (None, None) => ChallengeType::Dns01,
            };
            if l.auth_hook.is_none() {
                out.push_str(
                    "# certbot validated by hand (manual); set AUTH_HOOK, HOOK or \
                     DNS_UPDATE_SERVER\n",
                );
            }
            if challenge != config.defaults.challenge {
                out.push_str(&format!("CHALLENGETYPE={}\n", challenge.name()));
            }
            hook_line(&mut out, "AUTH_HOOK", &l.auth_hook);
            hook_line(&mut out, "CLEANUP_HOOK", &l.cleanup_hook);
        }
        Some(a) if a.starts_with("dns") => out.push_str(&format!(
            "# certbot validated with its {a} plugin; set HOOK, AUTH_HOOK or DNS_UPDATE_SERVER for dns-01\nCHALLENGETYPE=dns-01\n"
        )),
        Some(a) => out.push_str(&format!(
            "# certbot validated with its {a} plugin; desiccant uses WEBROOT or WELLKNOWN, or HTTP_LISTEN behind a proxy\n"
        )),
        None => {}
    }
    hook_line(&mut out, "DEPLOY_HOOK", &l.deploy_hook);
    if l.pre_or_post_hook {
        out.push_str(
            "# certbot ran a pre_hook or post_hook: desiccant has POST_RENEW_HOOK, once after a \
             run that renewed something (main config)\n",
        );
    }
    out
}

/// `KEY='command'`, or a comment when the command cannot be one config line.
fn hook_line(out: &mut String, key: &str, command: &Option<String>) {
    match command {
        Some(c) if c.contains(['\n', '\r', '\0']) => out.push_str(&format!(
            "# certbot's {key} spans lines: put it into a script and set {key} to that\n"
        )),
        Some(c) => out.push_str(&format!("{key}={}\n", quote(c))),
        None => {}
    }
}

/// `value` in single quotes, as our config reads it back unchanged: `'` as `'\''`.
fn quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', "'\\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quoted_command_reads_back_unchanged() {
        for command in [
            "/usr/local/bin/hook.sh",
            "python /app/hook.py --auth",
            "echo 'it''s' \"$CERTBOT_DOMAIN\" $(date) ; a & b | c",
        ] {
            let line = format!("AUTH_HOOK={}", quote(command));
            let read = crate::config_file::parse_line(&line, &|_| None).unwrap();
            assert_eq!(read, Some(("AUTH_HOOK".to_string(), command.to_string())));
        }
        assert_eq!(unquote("\"a, b\""), "a, b");
        assert_eq!(unquote("plain"), "plain");
    }
}
