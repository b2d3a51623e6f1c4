//! Build-time facts and documents:
//! - `DESICCANT_GIT_REV` (the commit built, `-dirty` when the tree had changes; taken from the
//!   environment when set, for builds outside a git checkout) and the versions of the TLS and
//!   crypto crates from Cargo.lock, for `--version`;
//! - the man page `desiccant.1` and the bash, zsh and fish completions, written to `OUT_DIR`
//!   from the same clap definitions as `--help` (src/cli.rs), so they cannot drift from it.
//!   The man page's CONFIGURATION, FILES and EXIT STATUS sections are README's tables.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

#[allow(dead_code)]
#[path = "src/cli.rs"]
mod cli;

fn main() {
    let root = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("set by cargo"));
    // A path that does not exist makes cargo run this script on every build (a tarball has no
    // .git; in a git worktree .git is a file): only those that exist are named.
    // `src` as a whole: an edited source makes the tree dirty, which --version must say.
    let mut watched: Vec<String> = ["src", "README.md", "Cargo.lock", ".git/HEAD", ".git/index"]
        .map(String::from)
        .to_vec();
    if let Some(reference) = fs::read_to_string(root.join(".git/HEAD"))
        .ok()
        .and_then(|head| head.strip_prefix("ref: ").map(|r| r.trim().to_string()))
    {
        watched.push(format!(".git/{reference}"));
    }
    for path in watched.iter().filter(|p| root.join(p).exists()) {
        println!("cargo:rerun-if-changed={path}");
    }
    println!("cargo:rerun-if-env-changed=DESICCANT_GIT_REV");
    println!("cargo:rustc-env=DESICCANT_GIT_REV={}", git_rev(&root));
    let lock = fs::read_to_string(root.join("Cargo.lock")).unwrap_or_default();
    for (krate, var) in [
        ("rustls", "DESICCANT_RUSTLS"),
        ("ring", "DESICCANT_RING"),
        ("rsa", "DESICCANT_RSA"),
    ] {
        println!(
            "cargo:rustc-env={var}={}",
            locked_version(&lock, krate).unwrap_or_else(|| "?".into())
        );
    }

    let readme = fs::read_to_string(root.join("README.md")).unwrap_or_default();
    let mut command =
        <cli::Cli as clap::CommandFactory>::command().version(env!("CARGO_PKG_VERSION"));
    let mut page = Vec::new();
    clap_mangen::Man::new(command.clone())
        .render(&mut page)
        .expect("the man page renders");
    page.extend_from_slice(man_sections(&readme).as_bytes());
    fs::write(out.join("desiccant.1"), page).expect("OUT_DIR is writable");
    for shell in [
        clap_complete::Shell::Bash,
        clap_complete::Shell::Zsh,
        clap_complete::Shell::Fish,
    ] {
        clap_complete::generate_to(shell, &mut command, "desiccant", &out)
            .expect("completions are written");
    }
}

/// `git rev-parse`, with `-dirty` when tracked files changed; `DESICCANT_GIT_REV` wins;
/// "unknown" outside a checkout.
fn git_rev(root: &Path) -> String {
    if let Ok(rev) = env::var("DESICCANT_GIT_REV") {
        return rev;
    }
    let git = |args: &[&str]| {
        Command::new("git")
            .arg("-C")
            .arg(root)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    match git(&["rev-parse", "--short=12", "HEAD"]) {
        Some(rev) if !rev.is_empty() => {
            let dirty = git(&["status", "--porcelain", "--untracked-files=no"])
                .is_some_and(|s| !s.is_empty());
            if dirty { format!("{rev}-dirty") } else { rev }
        }
        _ => "unknown".into(),
    }
}

/// The version of `krate` in Cargo.lock.
fn locked_version(lock: &str, krate: &str) -> Option<String> {
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line == format!("name = \"{krate}\"") {
            return lines
                .next()?
                .strip_prefix("version = \"")?
                .strip_suffix('"')
                .map(str::to_string);
        }
    }
    None
}

/// CONFIGURATION, FILES, EXIT STATUS and SEE ALSO, from README.
fn man_sections(readme: &str) -> String {
    let mut roff = String::new();
    roff.push_str(".SH CONFIGURATION\n");
    roff.push_str(&paragraphs(section(readme, "## Configuration"), 2));
    for row in table(section(readme, "## Configuration")) {
        if let [key, default, meaning] = row.as_slice() {
            roff.push_str(&format!(
                ".TP\n{} (default: {})\n{}\n",
                inline(key),
                inline(default),
                inline(meaning)
            ));
        }
    }
    roff.push_str(".SH FILES\n");
    let on_disk = section(readme, "## On disk");
    roff.push_str(".nf\n");
    for line in on_disk.lines().filter(|l| l.starts_with("    ")) {
        roff.push_str(&escape(line.strip_prefix("    ").unwrap_or(line)));
        roff.push('\n');
    }
    roff.push_str(".fi\n");
    roff.push_str(".SH \"EXIT STATUS\"\n");
    for row in table(section(readme, "## Exit status")) {
        if let [code, meaning, ..] = row.as_slice() {
            roff.push_str(&format!(".TP\n{}\n{}\n", inline(code), inline(meaning)));
        }
    }
    roff.push_str(".PP\n\\fB\\-\\-check\\fR:\n");
    let check = section(readme, "## Exit status");
    let after = check.split("`--check` follows").nth(1).unwrap_or("");
    for row in table(after) {
        if let [code, meaning] = row.as_slice() {
            roff.push_str(&format!(".TP\n{}\n{}\n", inline(code), inline(meaning)));
        }
    }
    roff.push_str(
        ".SH \"SEE ALSO\"\n/usr/share/doc/desiccant/README.md, \
         /usr/share/doc/desiccant/FAULTS.md, dehydrated(1), systemd.timer(5), crontab(5)\n",
    );
    roff
}

/// The text of README from the `heading` line to the next heading of the same level.
fn section<'a>(readme: &'a str, heading: &str) -> &'a str {
    let Some(start) = readme.find(&format!("\n{heading}\n")) else {
        return "";
    };
    let body = &readme[start + heading.len() + 2..];
    let end = body.find("\n## ").unwrap_or(body.len());
    &body[..end]
}

/// The first `n` paragraphs of prose of a section, as roff.
fn paragraphs(text: &str, n: usize) -> String {
    text.split("\n\n")
        .map(str::trim)
        .filter(|p| !p.is_empty() && !p.starts_with('|') && !p.starts_with("    "))
        .take(n)
        .map(|p| format!(".PP\n{}\n", inline(&p.replace('\n', " "))))
        .collect()
}

/// The rows of the first markdown table in `text`, cells trimmed, header and rule skipped.
fn table(text: &str) -> Vec<Vec<String>> {
    let rows: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .collect();
    rows.iter()
        .skip(2)
        .map(|row| {
            row.trim()
                .trim_matches('|')
                .split(" | ")
                .map(|cell| cell.trim().to_string())
                .collect()
        })
        .collect()
}

/// Markdown inline text as roff: `code` bold, **strong** bold, links as their text.
fn inline(text: &str) -> String {
    let mut out = String::new();
    let mut code = false;
    let mut rest = text.replace("**", "");
    // [text](target) -> text
    while let Some(open) = rest.find("](") {
        let Some(start) = rest[..open].rfind('[') else {
            break;
        };
        let Some(close) = rest[open..].find(')') else {
            break;
        };
        rest = format!(
            "{}{}{}",
            &rest[..start],
            &rest[start + 1..open],
            &rest[open + close + 1..]
        );
    }
    for c in escape(&rest).chars() {
        if c == '`' {
            out.push_str(if code { "\\fR" } else { "\\fB" });
            code = !code;
        } else {
            out.push(c);
        }
    }
    if code {
        out.push_str("\\fR");
    }
    out
}

/// Text safe in roff: backslashes escaped, no line starting with a control character.
fn escape(text: &str) -> String {
    let text = text.replace('\\', "\\e").replace('-', "\\-");
    if text.starts_with('.') || text.starts_with('\'') {
        format!("\\&{text}")
    } else {
        text
    }
}
