#!/usr/bin/env bash
# The daily run at hosting scale without a CA: makes (once) a BASEDIR of 100, 1000 and 10000
# valid certificates with nothing due (tests/bench/noop_state.py), runs
# `desiccant --config DIR/config --cron` on each several times under /usr/bin/time, checks
# that every run exits 0 and prints nothing, and prints the median wall time, CPU time (user +
# system) and peak RSS.
#
#   tests/bench/noop_measure.sh [--runs N] [--counts 100,1000,10000] [--dir DIR] [BINARY]
#
# BINARY defaults to target/release/desiccant (build it with `cargo build --release`). The
# states are kept in DIR (default target/noop-bench) and made again only when missing.
set -euo pipefail
cd "$(dirname "$0")/../.."

runs=7
counts=100,1000,10000
dir=target/noop-bench
while [ $# -gt 0 ]; do
    case "$1" in
        --runs) runs="$2"; shift 2 ;;
        --counts) counts="$2"; shift 2 ;;
        --dir) dir="$2"; shift 2 ;;
        *) break ;;
    esac
done
bin="${1:-target/release/desiccant}"
[ -x "$bin" ] || { echo "no $bin: cargo build --release" >&2; exit 1; }

median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

printf '%-10s %6s %10s %10s %14s\n' certs runs "wall ms" "CPU ms" "peak RSS MiB"
for n in ${counts//,/ }; do
    base="$dir/n$n"
    [ -f "$base/domains.txt" ] || python3 tests/bench/noop_state.py "$base" --count "$n"
    walls=()
    rss=()
    cpu=()
    for _ in $(seq "$runs"); do
        start=$(date +%s%N)
        out=$( { /usr/bin/time -f '%M %U %S' "$bin" --config "$base/config" --cron 2>&1 >/dev/null; } 2>&1 ) || {
            echo "n$n: desiccant failed: $out" >&2
            exit 1
        }
        # time's line is the last; anything before it is desiccant's output, and a daily run
        # with nothing due prints nothing.
        if [ "$(printf '%s\n' "$out" | wc -l)" -ne 1 ]; then
            echo "n$n: desiccant printed something: $out" >&2
            exit 1
        fi
        end=$(date +%s%N)
        walls+=("$(( (end - start) / 1000000 ))")
        read -r kib user sys <<<"$out"
        rss+=("$kib")
        cpu+=("$(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%d", (u + s) * 1000 }')")
    done
    wall=$(printf '%s\n' "${walls[@]}" | median)
    kib=$(printf '%s\n' "${rss[@]}" | median)
    cpus=$(printf '%s\n' "${cpu[@]}" | median)
    printf '%-10s %6s %10s %10s %14s\n' "$n" "$runs" "$wall" "$cpus" "$(awk -v k="$kib" 'BEGIN { printf "%.1f", k / 1024 }')"
done
