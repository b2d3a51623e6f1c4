#!/usr/bin/env bash
# Runs every fuzz target of fuzz/ (cargo fuzz, on the nightly toolchain) for a short fixed time,
# seeded from fuzz/corpus/<target>/, and fails when any finds a crash or a broken property;
# libFuzzer keeps the input in fuzz/artifacts/<target>/. Installs the nightly toolchain and
# cargo-fuzz when they are missing. What a run adds to the corpus is thrown away.
#
#   tests/fuzz.sh          30 seconds per target: about 6 minutes with the build
#   tests/fuzz.sh SECONDS  that long per target
set -euo pipefail
cd "$(dirname "$0")/.."

case "${1:-}" in
    -h|--help) sed -n '2,/^set/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
esac
seconds="${1:-30}"
case "$seconds" in
    ''|*[!0-9]*) echo "tests/fuzz.sh: SECONDS must be a whole number (see tests/fuzz.sh --help)" >&2; exit 2 ;;
esac

rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
command -v cargo-fuzz >/dev/null 2>&1 || cargo install --locked cargo-fuzz
cargo +nightly fuzz build

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
failed=()
for target in $(cargo +nightly fuzz list); do
    mkdir "$scratch/$target"
    log="$scratch/$target.log"
    # The value profile helps libFuzzer through the parsers' comparisons of numbers and words.
    if cargo +nightly fuzz run "$target" "$scratch/$target" "fuzz/corpus/$target" -- \
        -max_total_time="$seconds" -use_value_profile=1 -print_final_stats=1 >"$log" 2>&1; then
        echo "fuzz $target: $(grep -o 'Done [0-9]* runs in [0-9]* second(s)' "$log")"
    else
        echo "fuzz $target: FAILED" >&2
        grep -E -A3 'panicked at|ERROR: libFuzzer|Test unit written' "$log" >&2 || tail -n 30 "$log" >&2
        failed+=("$target")
    fi
done
if [ "${#failed[@]}" -gt 0 ]; then
    echo "fuzz: ${failed[*]} failed; rerun one input with cargo +nightly fuzz run TARGET fuzz/artifacts/TARGET/FILE" >&2
    exit 1
fi
