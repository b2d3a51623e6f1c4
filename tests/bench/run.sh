#!/usr/bin/env bash
# Benchmarks desiccant against dehydrated, lego, certbot and uacme on a local Pebble and prints
# BENCHMARKS.md (with --write: writes it at the repository top). Installs the Debian packages it
# needs when they are missing, builds desiccant (unless DESICCANT names a binary), then runs
# tests/bench/bench.py with this script's arguments (--runs N, --quick, --clients a,b,
# --scenarios a,b, --write, --wan). Must run as root: bench.py adds Pebble's CA to the system
# trust store inside a private mount namespace. Every run saves its results in
# target/bench-results.json; `python3 tests/bench/bench.py --render target/bench-results.json
# [--write]` makes BENCHMARKS.md from them again without measuring anything.
#
# --wan measures across a WAN instead: every client reaches Pebble through
# tests/common/wan_relay.py (round trips of 50 and 150 ms, Let's Encrypt's request limits),
# Pebble validating after 0-2 s; `--wan --write` rewrites only BENCHMARKS.md's WAN section (a
# loopback --write keeps it), from results saved in target/bench-wan-results.json.
set -euo pipefail
cd "$(dirname "$0")/../.."

if [ "$(id -u)" -ne 0 ]; then
    echo "tests/bench/run.sh must run as root (it needs a private mount namespace): sudo $0 $*" >&2
    exit 1
fi

# program:package pairs the benchmark runs.
needs=(pebble:pebble pebble-challtestsrv:pebble dehydrated:dehydrated lego:lego certbot:certbot
    uacme:uacme openssl:openssl python3:python3 curl:curl unshare:util-linux nginx:nginx)
missing=()
for need in "${needs[@]}"; do
    command -v "${need%%:*}" >/dev/null 2>&1 || missing+=("${need#*:}")
done
if [ "${#missing[@]}" -gt 0 ]; then
    mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
    echo "installing: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [ -n "${DESICCANT:-}" ]; then
    bin="$DESICCANT"
else
    if [ -n "${SUDO_USER:-}" ] && [ "$SUDO_USER" != root ]; then
        # Build as the user who called sudo, with their toolchain, so target/ stays theirs.
        runuser -u "$SUDO_USER" -- bash -lc 'cd "$1" && cargo build --release --locked' _ "$PWD"
    else
        cargo build --release --locked
    fi
    bin="$PWD/target/release/desiccant"
fi

exec python3 tests/bench/bench.py --desiccant "$bin" "$@"
