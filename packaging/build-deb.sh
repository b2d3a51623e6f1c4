#!/usr/bin/env bash
# Builds the Debian package into target/debian/: a release build, the man page and the shell
# completions build.rs made from the clap definitions, then `cargo deb` (installed from the
# crate registry when missing). Prints the path of the .deb.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo-deb >/dev/null 2>&1; then
    echo "installing cargo-deb from the crate registry" >&2
    cargo install --locked cargo-deb >&2
fi
# The OUT_DIR of this package's build script, where the man page and completions are.
out_dir=$(cargo build --release --locked --message-format=json \
    | grep '"reason":"build-script-executed"' \
    | grep '"package_id":"[^"]*desiccant' \
    | sed -n 's/.*"out_dir":"\([^"]*\)".*/\1/p' | tail -n 1)
if [ -z "$out_dir" ] || [ ! -f "$out_dir/desiccant.1" ]; then
    echo "build-deb.sh: the build did not say where the man page is" >&2
    exit 1
fi
mkdir -p target/assets
cp "$out_dir/desiccant.1" "$out_dir/desiccant.bash" "$out_dir/_desiccant" \
    "$out_dir/desiccant.fish" target/assets/
cargo deb --no-build --locked --output target/debian/ >&2
ls -t target/debian/desiccant_*.deb | head -n 1
