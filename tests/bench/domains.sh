#!/usr/bin/env bash
# How long reading domains.txt takes as it grows: `--check` on N certificates of 100 names
# each (no certificate on disk, so every one is reported missing), then one line of 700,000
# names, which is refused at the 1001st. The times should grow with N, not with N squared.
#
#   tests/bench/domains.sh [path/to/desiccant]   (default: target/release/desiccant)
set -euo pipefail
cd "$(dirname "$0")/../.."
bin="${1:-target/release/desiccant}"
[ -x "$bin" ] || cargo build --release
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
printf 'CA=https://127.0.0.1:9/dir\nRUN_TIMEOUT=600\n' > "$dir/config"
for certs in 100 1000 10000; do
    python3 -c "
import sys
for c in range($certs):
    print(' '.join(f'n{i}.c{c}.example' for i in range(100)))
" > "$dir/domains.txt"
    start=$(date +%s%N)
    "$bin" --config "$dir/config" --check >/dev/null 2>&1 || true
    echo "$certs certificates of 100 names: $(( ($(date +%s%N) - start) / 1000000 )) ms"
done
python3 -c "print(' '.join(f'n{i}.example' for i in range(700000)))" > "$dir/domains.txt"
start=$(date +%s%N)
"$bin" --config "$dir/config" --check >/dev/null 2>&1 || true
echo "one line of 700000 names (refused): $(( ($(date +%s%N) - start) / 1000000 )) ms"
