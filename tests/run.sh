#!/usr/bin/env bash
# Runs the whole test suite: formatting, clippy, unit tests and the end-to-end tests against a
# real Pebble. Installs the Debian packages the tests need when they are missing.
#
#   tests/run.sh           what CI runs
#   tests/run.sh --long    also the long modes: the big kill campaign and 500 issuances under
#                          badNonce (see FAULTS.md)
#   tests/run.sh --fuzz    also runs every fuzz target for 30 s (tests/fuzz.sh: cargo fuzz on
#                          the nightly toolchain, installed when missing; see README, "Fuzzing")
#   tests/run.sh --package also builds the Debian package, installs, checks, removes and purges
#                          it on this machine (tests/package.sh; needs root)
set -euo pipefail
cd "$(dirname "$0")/.."

long=""
fuzz=""
package=""
for arg in "$@"; do
    case "$arg" in
        --long) long=1 ;;
        --fuzz) fuzz=1 ;;
        --package) package=1 ;;
        -h|--help) sed -n '2,/^set/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "tests/run.sh: unknown option $arg (see tests/run.sh --help)" >&2; exit 2 ;;
    esac
done

# program:package pairs the tests run (and this script: ps, setsid).
needs=(ps:procps setsid:util-linux man:man-db cc:gcc strace:strace faketime:faketime pebble:pebble pebble-challtestsrv:pebble dehydrated:dehydrated certbot:certbot named:bind9 dig:bind9-dnsutils nginx:nginx curl:curl openssl:openssl python3:python3 systemd-analyze:systemd)
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
cargo clippy --locked --all-targets --features failpoints -- -D warnings
cargo clippy --locked --all-targets -- -D warnings
# The tests run in a session of their own, with their temporary folders in one folder of
# this run's (TMPDIR): afterwards, a process still in that session, or one whose command line
# names that folder, is something a test started and did not stop. Processes of other test
# runs on the machine are in neither.
run_tmp=$(mktemp -d /tmp/desiccant-run.XXXXXX)
sid_file="$run_tmp/session"
test_sid=""
stop_tests() {
    [ -n "$test_sid" ] || test_sid=$(cat "$sid_file" 2>/dev/null || true)
    [ -z "$test_sid" ] || pkill -KILL -s "$test_sid" 2>/dev/null || true
}
trap 'stop_tests; exit 130' INT TERM
trap 'rm -rf "$run_tmp"' EXIT
leftovers() {
    ps -e -o pid=,sid=,args= | while read -r pid sid args; do
        if [ "$sid" = "$test_sid" ] || [[ "$args" == *"$run_tmp"* ]]; then
            printf '  %s %s\n' "$pid" "$args"
        fi
    done
}
long_env=()
[ -z "$long" ] || long_env=(DESICCANT_LONG=1)
# The crash tests need the kill points of src/failpoint.rs compiled in. In the background, so
# that an interrupt reaches the trap above at once.
TMPDIR="$run_tmp" setsid --wait bash -c 'echo $$ > "$0"; exec "$@"' "$sid_file" \
    env "${long_env[@]}" cargo test --locked --features failpoints &
status=0
wait $! || status=$?
test_sid=$(cat "$sid_file")
# A process killed as a test ended may take a moment to go.
for _ in $(seq 100); do
    [ -z "$(leftovers)" ] && break
    sleep 0.05
done
left=$(leftovers)
if [ -n "$left" ]; then
    echo "tests/run.sh: the tests left these processes running:" >&2
    echo "$left" >&2
    stop_tests
    exit 1
fi
[ "$status" -eq 0 ] || exit "$status"
if [ -n "$fuzz" ]; then
    tests/fuzz.sh
fi
if [ -n "$package" ]; then
    if [ "$(id -u)" -eq 0 ]; then tests/package.sh; else sudo tests/package.sh; fi
fi
