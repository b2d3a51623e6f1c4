#!/usr/bin/env bash
# The Debian package, as an admin meets it: builds the .deb (packaging/build-deb.sh), installs
# it with dpkg on this machine, and checks what got installed: the binary and its --version,
# the man page, the completions (bash completes --cro to --cron), the units (systemd-analyze
# verify and security, the timer left disabled, and the service run by a real systemd in
# namespaces of its own: tests/unit_sandbox.sh), the examples and the conffiles; then removes
# the package (configuration and BASEDIR kept) and purges it: the conffiles, the lock and the
# chains/ cache go, accounts/, certs/, archive/ and state/ stay, and the purge says so.
#
# It changes this machine: /usr/bin/desiccant, /etc/desiccant and the units. It refuses to run
# when a desiccant package is already installed, or /etc/desiccant exists. Run as root, or
# through tests/run.sh --package.
set -euo pipefail
cd "$(dirname "$0")/.."

fail() { echo "package test: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || fail "needs root (dpkg -i)"
if dpkg-query -W -f '${Status}' desiccant 2>/dev/null | grep -q installed; then
    fail "a desiccant package is installed already; remove it first"
fi
[ ! -e /etc/desiccant ] || fail "/etc/desiccant exists already; move it away first"

deb=$(packaging/build-deb.sh)
[ -f "$deb" ] || fail "no package built"
echo "built $deb ($(du -k "$deb" | cut -f1) KiB)"
trap 'dpkg -P desiccant >/dev/null 2>&1 || true; rm -rf /etc/desiccant' EXIT
dpkg -i "$deb" >/dev/null

# The binary, and what it says it is.
version=$(/usr/bin/desiccant --version)
echo "$version"
echo "$version" | head -n 1 | grep -Eq '^desiccant [0-9]+\.[0-9]+\.[0-9]+ \(git ([0-9a-f]{12}(-dirty)?|unknown)\)$' \
    || fail "--version's first line: $version"
echo "$version" | grep -q '^TLS: rustls ' || fail "--version names no TLS backend"
echo "$version" | grep -q '^crypto: ring ' || fail "--version names no crypto backend"

# Every installed path, with its mode.
while read -r mode path; do
    [ -e "$path" ] || fail "$path is not installed"
    got=$(stat -c %a "$path")
    [ "$got" = "$mode" ] || fail "$path has mode $got, not $mode"
done <<'PATHS'
755 /usr/bin/desiccant
644 /lib/systemd/system/desiccant.service
644 /lib/systemd/system/desiccant.timer
644 /etc/desiccant/config
644 /etc/desiccant/domains.txt
644 /usr/share/doc/desiccant/examples/cron.d-desiccant
644 /usr/share/doc/desiccant/examples/desiccant-failure@.service
644 /usr/share/man/man1/desiccant.1.gz
644 /usr/share/bash-completion/completions/desiccant
644 /usr/share/zsh/vendor-completions/_desiccant
644 /usr/share/fish/vendor_completions.d/desiccant.fish
644 /usr/share/doc/desiccant/README.md
644 /usr/share/doc/desiccant/FAULTS.md
644 /usr/share/doc/desiccant/LICENSE
644 /usr/share/doc/desiccant/copyright
PATHS
dpkg-query -W -f '${Conffiles}\n' desiccant | grep -q '/etc/desiccant/config ' \
    || fail "/etc/desiccant/config is not a conffile"
dpkg-query -W -f '${Conffiles}\n' desiccant | grep -q '/etc/desiccant/domains.txt ' \
    || fail "/etc/desiccant/domains.txt is not a conffile"
[ ! -e /etc/cron.d/desiccant ] || fail "the cron example must not be active"

# The man page: it renders, and holds the options, the config keys, the files, the exit status.
page=$(MANWIDTH=100 man -l /usr/share/man/man1/desiccant.1.gz 2>&1)
for want in "--cron" "CONFIGURATION" "RUN_TIMEOUT (default: 3600)" "HTTPS_PROXY" "FILES" \
    "EXIT STATUS" "only temporary failures" "ENVIRONMENT" "EXAMPLES" "HOOKS" "domains.txt"; do
    grep -qF -- "$want" <<<"$page" || fail "the man page lacks: $want"
done
echo "man page: $(wc -l <<<"$page") lines"

# bash completes --cro to --cron.
completed=$(bash -c '
    source /usr/share/bash-completion/completions/desiccant
    COMP_WORDS=(desiccant --cro); COMP_CWORD=1; COMP_LINE="desiccant --cro"; COMP_POINT=${#COMP_LINE}
    _desiccant desiccant --cro desiccant
    printf "%s\n" "${COMPREPLY[@]}"')
[ "$completed" = "--cron" ] || fail "bash completed --cro to: $completed"
echo "bash: --cro completes to $completed"

# The units: systemd's own checks, the exposure score, and the timer left disabled.
systemd-analyze verify /lib/systemd/system/desiccant.service /lib/systemd/system/desiccant.timer
score=$(systemd-analyze security --offline=true --no-pager /lib/systemd/system/desiccant.service \
    | sed -n 's/.*Overall exposure level for desiccant.service: \([0-9.]*\).*/\1/p')
[ -n "$score" ] || fail "no exposure score"
awk -v s="$score" 'BEGIN { exit !(s <= 2.5) }' || fail "exposure $score is above 2.5"
echo "systemd-analyze security: exposure $score"
[ ! -e /etc/systemd/system/timers.target.wants/desiccant.timer ] || fail "the timer is enabled"

# The installed unit run by a real systemd: http-01, dns-01 and a hook calling systemctl all
# work inside its sandbox (/etc/desiccant is put back as it was).
tests/unit_sandbox.sh

# Remove: configuration and what BASEDIR holds are kept.
echo 'CONTACT_EMAIL=admin@example.org' >> /etc/desiccant/config
mkdir -p /etc/desiccant/certs/example.org
echo kept > /etc/desiccant/certs/example.org/cert-1.pem
dpkg -r desiccant >/dev/null
[ ! -e /usr/bin/desiccant ] || fail "the binary is still there after remove"
grep -q CONTACT_EMAIL=admin@example.org /etc/desiccant/config || fail "remove lost the config"
[ -f /etc/desiccant/domains.txt ] || fail "remove lost domains.txt"
[ -f /etc/desiccant/certs/example.org/cert-1.pem ] || fail "remove lost a certificate"

# Purge: dpkg deletes the conffiles, postrm the lock and the chains/ cache; the accounts,
# certificates, archive and state/ stay, and the purge names them and says how to delete them.
account=/etc/desiccant/accounts/aHR0cHM6Ly9hY21lLXYwMi5hcGkubGV0c2VuY3J5cHQub3JnL2RpcmVjdG9yeQo
mkdir -p "$account" /etc/desiccant/archive/old.example /etc/desiccant/state \
    /etc/desiccant/chains
echo key > "$account/account_key.pem"
echo old > /etc/desiccant/archive/old.example/cert-1.pem
echo '{}' > /etc/desiccant/state/example.org.json
echo chain > /etc/desiccant/chains/issuer.chain
: > /etc/desiccant/lock
said=$(dpkg -P desiccant 2>&1)
echo "$said"
grep -qxF "desiccant: purge kept /etc/desiccant/accounts /etc/desiccant/archive \
/etc/desiccant/certs /etc/desiccant/state (account keys, certificates, private keys and the \
run's state are not deleted with the package)." <<<"$said" || fail "purge did not say what it kept"
grep -qxF "desiccant: once nothing uses them, delete them by hand: rm -rf /etc/desiccant" \
    <<<"$said" || fail "purge did not say how to delete what it kept"
[ "$(cat "$account/account_key.pem")" = key ] || fail "purge lost the account key"
[ "$(cat /etc/desiccant/certs/example.org/cert-1.pem)" = kept ] || fail "purge lost a certificate"
[ "$(cat /etc/desiccant/archive/old.example/cert-1.pem)" = old ] || fail "purge lost the archive"
[ "$(cat /etc/desiccant/state/example.org.json)" = '{}' ] || fail "purge lost state/"
left=$(cd /etc/desiccant && ls -A | tr '\n' ' ')
[ "$left" = "accounts archive certs state " ] || fail "purge left: $left"
rm -rf /etc/desiccant

# Purge of an installation that made nothing: /etc/desiccant goes, and nothing is said.
dpkg -i "$deb" >/dev/null
said=$(dpkg -P desiccant 2>&1)
[ ! -e /etc/desiccant ] || fail "purge left /etc/desiccant"
! grep -q "purge kept" <<<"$said" || fail "purge spoke of nothing kept: $said"
trap - EXIT
echo "package test: passed"
