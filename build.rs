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
#[allow(dead_code)]
#[path = "src/values.rs"]
mod values;

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

/// The sections of README the man page carries, in its order: README's heading, and the man
/// page's (`.SH`). A `###` subsection listed here on its own is left out of its parent; the
/// others are `.SS` under it.
const MAN_SECTIONS: &[(&str, &str)] = &[
    ("## Configuration", "CONFIGURATION"),
    ("### Environment", "ENVIRONMENT"),
    ("## When certificates are renewed", "RENEWAL"),
    ("## Challenges", "CHALLENGES"),
    ("## Dry run", "DRY RUN"),
    ("## Hooks", "HOOKS"),
    ("## Stopping a run", "STOPPING A RUN"),
    ("## On disk", "FILES"),
    ("## Exit status", "EXIT STATUS"),
    ("## Output", "OUTPUT"),
    ("## Security", "SECURITY"),
    ("## Quick start", "EXAMPLES"),
    ("## Running it periodically", "RUNNING IT PERIODICALLY"),
];

/// The man page's sections after the options, each made from README's section
/// ([`MAN_SECTIONS`]), then SEE ALSO. A reference `see "X"` to a section the page carries
/// names it as the page does; one to a section it does not carry says README.md.
fn man_sections(readme: &str) -> String {
    // README's heading (lower case, as a reference is matched) -> the page's.
    let mut names: Vec<(String, String)> = Vec::new();
    for (heading, man) in MAN_SECTIONS {
        let title = heading.trim_start_matches('#').trim();
        names.push((title.to_lowercase(), man.to_string()));
        for line in section(readme, heading).lines() {
            if let Some(sub) = line.strip_prefix("### ") {
                names.push((sub.to_lowercase(), sub.to_string()));
            }
        }
    }
    // No hyphenation: a name or key is never split at the end of a line.
    let mut roff = String::from(".nh\n");
    for (heading, man) in MAN_SECTIONS {
        roff.push_str(&format!(".SH \"{man}\"\n"));
        let mut skip = false;
        let mut kept = String::new();
        for line in section(readme, heading).lines() {
            if line.starts_with("### ") {
                skip = MAN_SECTIONS.iter().any(|(h, _)| *h == line);
            }
            if !skip {
                kept.push_str(line);
                kept.push('\n');
            }
        }
        roff.push_str(&blocks(&references(&kept, &names)));
    }
    roff.push_str(
        ".SH \"SEE ALSO\"\n/usr/share/doc/desiccant/README.md, \
         /usr/share/doc/desiccant/FAULTS.md, dehydrated(1), systemd.timer(5), crontab(5)\n",
    );
    roff
}

/// The text of README under `heading` (without it), to the next heading of the same level or
/// above.
fn section<'a>(readme: &'a str, heading: &str) -> &'a str {
    let Some(start) = readme.find(&format!("\n{heading}\n")) else {
        return "";
    };
    let body = &readme[start + heading.len() + 2..];
    let mut end = body.find("\n## ").unwrap_or(body.len());
    if heading.starts_with("### ") {
        end = end.min(body.find("\n### ").unwrap_or(body.len()));
    }
    &body[..end]
}

/// Markdown links to README's own headings as quoted names (`[Limits](#limits)` ->
/// `"Limits"`), other links as their text; then every `see "X"` named as the page names X,
/// or as README.md's when the page does not carry it.
fn references(text: &str, names: &[(String, String)]) -> String {
    let mut rest = text.to_string();
    while let Some(open) = rest.find("](") {
        let Some(start) = rest[..open].rfind('[') else {
            break;
        };
        let Some(close) = rest[open..].find(')') else {
            break;
        };
        let label = &rest[start + 1..open];
        let label = if rest[open + 2..].starts_with('#') {
            format!("\"{label}\"")
        } else {
            label.to_string()
        };
        rest = format!("{}{label}{}", &rest[..start], &rest[open + close + 1..]);
    }
    let mut out = String::new();
    while let Some(at) = rest.find("see \"") {
        let (before, after) = rest.split_at(at + 5);
        out.push_str(before);
        let Some(end) = after.find('"') else {
            rest = after.to_string();
            break;
        };
        let name = &after[..end];
        match names
            .iter()
            .find(|(readme, _)| *readme == name.to_lowercase())
        {
            Some((_, man)) => out.push_str(&format!("{man}\"")),
            None => out.push_str(&format!("{name}\" in README.md")),
        }
        rest = after[end + 1..].to_string();
    }
    out.push_str(&rest);
    out
}

/// Markdown blocks as roff: `###` headings, paragraphs, tables, lists of `- ` items, and
/// code indented four spaces.
fn blocks(text: &str) -> String {
    let mut roff = String::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        if line.trim().is_empty() {
            continue;
        }
        if let Some(sub) = line.strip_prefix("### ") {
            roff.push_str(&format!(".SS \"{}\"\n", escape(sub)));
        } else if let Some(code) = line.strip_prefix("    ") {
            roff.push_str(".PP\n.RS 4\n.nf\n");
            roff.push_str(&escape(code));
            roff.push('\n');
            while let Some(next) = lines.next_if(|l| l.starts_with("    ")) {
                roff.push_str(&escape(&next[4..]));
                roff.push('\n');
            }
            roff.push_str(".fi\n.RE\n");
        } else if line.starts_with('|') {
            let mut rows = vec![line];
            while let Some(next) = lines.next_if(|l| l.starts_with('|')) {
                rows.push(next);
            }
            roff.push_str(&table(&rows));
        } else if let Some(item) = line.strip_prefix("- ") {
            let mut item = item.to_string();
            while let Some(next) = lines.next_if(|l| l.starts_with("  ") && !l.starts_with("    "))
            {
                item.push(' ');
                item.push_str(next.trim());
            }
            roff.push_str(&format!(".IP \\(bu 2\n{}\n", inline(&item)));
        } else {
            let mut paragraph = line.to_string();
            while let Some(next) = lines.next_if(|l| {
                !l.trim().is_empty()
                    && !l.starts_with('|')
                    && !l.starts_with("    ")
                    && !l.starts_with("- ")
                    && !l.starts_with("### ")
            }) {
                paragraph.push(' ');
                paragraph.push_str(next.trim());
            }
            roff.push_str(&format!(".PP\n{}\n", inline(&paragraph)));
        }
    }
    roff
}

/// A markdown table as tagged paragraphs: the first cell the tag (with the default beside it
/// in a table of config keys), every other cell below it, named by its column when there are
/// more than two.
fn table(rows: &[&str]) -> String {
    // Cells are split at every `|` outside `code`.
    let cells = |row: &str| -> Vec<String> {
        let mut cells = vec![String::new()];
        let mut code = false;
        for c in row.trim().trim_matches('|').chars() {
            match c {
                '`' => code = !code,
                '|' if !code => {
                    cells.push(String::new());
                    continue;
                }
                _ => {}
            }
            if let Some(cell) = cells.last_mut() {
                cell.push(c);
            }
        }
        cells.iter().map(|cell| cell.trim().to_string()).collect()
    };
    let Some(header) = rows.first().map(|r| cells(r)) else {
        return String::new();
    };
    let mut roff = String::new();
    for row in rows.iter().skip(2).map(|r| cells(r)) {
        let Some(tag) = row.first() else { continue };
        if header.get(1).is_some_and(|h| h == "default") && row.len() == 3 {
            let default = if row[1].is_empty() { "none" } else { &row[1] };
            roff.push_str(&format!(
                ".TP\n{} (default: {})\n{}\n",
                inline(tag),
                inline(default),
                inline(&row[2])
            ));
            continue;
        }
        roff.push_str(&format!(".TP\n{}\n", inline(tag)));
        let rest: Vec<String> = row
            .iter()
            .zip(&header)
            .skip(1)
            .filter(|(cell, _)| !cell.is_empty())
            .map(|(cell, name)| {
                if header.len() == 2 {
                    inline(cell)
                } else {
                    format!("\\fI{}\\fR: {}", inline(name), inline(cell))
                }
            })
            .collect();
        roff.push_str(&rest.join("\n.br\n"));
        roff.push('\n');
    }
    roff
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

/// Text safe in roff: backslashes escaped, no line starting with a control character, and
/// ASCII only: the few other characters README uses become glyphs every groff device has, so
/// that the page renders the same in the C locale (cron's) as in a UTF-8 one.
fn escape(text: &str) -> String {
    let text = text.replace('\\', "\\e").replace('-', "\\-");
    let text: String = text
        .chars()
        .map(|c| match c {
            c if c.is_ascii() => c.to_string(),
            '…' => "...".into(),
            '×' => "\\(mu".into(),
            '¦' => "\\(bb".into(),
            '—' => "\\(em".into(),
            '–' => "\\(en".into(),
            '≤' => "\\(<=".into(),
            '≥' => "\\(>=".into(),
            '→' => "\\(->".into(),
            '‘' | '’' => "'".into(),
            '“' | '”' => "\"".into(),
            '§' => "\\(sc".into(),
            // groff's ASCII output has no glyph for most others: a new one is added here.
            c => panic!(
                "README.md: {c:?} (U+{:04X}) has no glyph in the man page: add one to escape() \
                 in build.rs",
                u32::from(c)
            ),
        })
        .collect();
    if text.starts_with('.') || text.starts_with('\'') {
        format!("\\&{text}")
    } else {
        text
    }
}
