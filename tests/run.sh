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
needs=(ps:procps promtool:prometheus setsid:util-linux man:man-db cc:gcc strace:strace faketime:faketime pebble:pebble pebble-challtestsrv:pebble dehydrated:dehydrated certbot:certbot named:bind9 dig:bind9-dnsutils nginx:nginx curl:curl openssl:openssl python3:python3 systemd-analyze:systemd tinyproxy:tinyproxy)
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

# The newest Pebble as well as Debian's (tests/pebble_head.rs and others): built from source by
# ../shared/pebble/build.sh, about a minute the first time and nothing after; it prints the
# folder of the binaries, which the tests find in DESICCANT_PEBBLE_HEAD.
pebble_head_build=${PEBBLE_HEAD_BUILD:-../shared/pebble/build.sh}
DESICCANT_PEBBLE_HEAD=$("$pebble_head_build")
export DESICCANT_PEBBLE_HEAD
# acme2certifier (tests/acme2certifier.rs) runs in a Python virtual environment of its own,
# made here when missing (the harness would make it on first use too) and reused.
if ! python3 -c 'import ensurepip' 2>/dev/null; then
    [ "$(id -u)" -eq 0 ] && sudo="" || sudo="sudo"
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq python3-venv >/dev/null
fi
tests/a2c-venv.sh >/dev/null

cargo fmt --all -- --check
cargo clippy --locked --all-targets --features failpoints -- -D warnings
cargo clippy --locked --all-targets -- -D warnings
# Every test program runs in a session of its own, with its temporary folders in one folder of
# this run's (TMPDIR): afterwards, a process still in one of those sessions, or one whose
# command line names that folder, is something a test started and did not stop. Processes of
# other test runs on the machine are in neither.
run_tmp=$(mktemp -d /tmp/desiccant-run.XXXXXX)
sessions="$run_tmp/sessions"
touch "$sessions"
stop_tests() {
    local sid
    while read -r sid; do pkill -KILL -s "$sid" 2>/dev/null || true; done < "$sessions"
}
lanes=()
# The lanes first, so that they start no further program.
trap 'kill "${lanes[@]}" 2>/dev/null; stop_tests; exit 130' INT TERM
trap 'rm -rf "$run_tmp"' EXIT
leftovers() {
    local -A ours=()
    local sid pid args
    while read -r sid; do ours[$sid]=1; done < "$sessions"
    ps -e -o pid=,sid=,args= | while read -r pid sid args; do
        if [ -n "${ours[$sid]:-}" ] || [[ "$args" == *"$run_tmp"* ]]; then
            printf '  %s %s\n' "$pid" "$args"
        fi
    done
}
in_session() {
    TMPDIR="$run_tmp" setsid --wait bash -c 'echo $$ >> "$0"; exec "$@"' "$sessions" "$@"
}
[ -z "$long" ] || export DESICCANT_LONG=1

# The crash tests need the kill points of src/failpoint.rs compiled in.
features=(--locked --features failpoints)
cargo test "${features[@]}" --no-run --message-format=json-render-diagnostics > "$run_tmp/built.json"
mapfile -t programs < <(python3 -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["profile"]["test"] and m.get("executable"):
        print(m["target"]["src_path"].split("/")[-1], m["executable"])' < "$run_tmp/built.json" | sort)
[ "${#programs[@]}" -gt 0 ] || { echo "tests/run.sh: no test program was built" >&2; exit 1; }
# Two lanes: the programs that mostly wait on dehydrated's and the fault proxy's own sleeps
# and deadlines run beside all the others, one after the other in each lane.
slow=(dehydrated.rs server_faults.rs)
lane() {
    local failed=0 entry
    for entry in "$@"; do
        echo "     Running ${entry%% *}"
        in_session "${entry#* }" || failed=1
    done
    return "$failed"
}
main_lane=() slow_lane=()
for entry in "${programs[@]}"; do
    if [[ " ${slow[*]} " == *" ${entry%% *} "* ]]; then slow_lane+=("$entry"); else main_lane+=("$entry"); fi
done
status=0
# In the background, so that an interrupt reaches the trap above at once; the slow lane's
# output is shown when it is done.
lane "${slow_lane[@]}" > "$run_tmp/slow-lane.log" 2>&1 &
lanes+=($!)
(lane "${main_lane[@]}" && echo "     Doc-tests" && in_session cargo test "${features[@]}" --doc) &
lanes+=($!)
for pid in "${lanes[@]}"; do
    wait "$pid" || status=1
done
cat "$run_tmp/slow-lane.log"
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
if [ "$status" -ne 0 ]; then
    echo "tests/run.sh: tests failed (see above)" >&2
    exit "$status"
fi
if [ -n "$fuzz" ]; then
    tests/fuzz.sh
fi
if [ -n "$package" ]; then
    if [ "$(id -u)" -eq 0 ]; then tests/package.sh; else sudo tests/package.sh; fi
fi
