#!/usr/bin/env bash
# Runs the whole test suite: formatting, clippy, unit tests and the end-to-end tests against a
# real Pebble. Installs the Debian packages the tests need when they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."

# program:package pairs the tests run.
needs=(pebble:pebble pebble-challtestsrv:pebble dehydrated:dehydrated certbot:certbot named:bind9 dig:bind9-dnsutils nginx:nginx curl:curl openssl:openssl python3:python3 systemd-analyze:systemd)
missing=()
for need in "${needs[@]}"; do
    command -v "${need%%:*}" >/dev/null 2>&1 || missing+=("${need#*:}")
done
if [ "${#missing[@]}" -gt 0 ]; then
    mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "installing: ${missing[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

cargo fmt --all -- --check
cargo clippy --locked --all-targets -- -D warnings
cargo test --locked
