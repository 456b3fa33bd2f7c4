#!/usr/bin/env bash
# What the dashboard adds to the release binary (issue 15: at most 2 MB; docs/dashboard.md).
# Builds this commit twice with `cargo build --release`: as it is, and with the dashboard
# taken out (its module, its route and maud), then prints both sizes and the difference.
# Run from the repository: scripts/binary-size.sh (about 15 minutes on 2 cores).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# One target directory for both builds, so the dependencies are built once.
export CARGO_TARGET_DIR="$root/target/binary-size"

git -C "$root" archive HEAD | tar -x -C "$work"
(cd "$work" && cargo build --release --quiet --bin billd)
cp "$CARGO_TARGET_DIR/release/billd" "$work/billd-with"

sed -i '/^pub mod dashboard;$/d' "$work/src/http/mod.rs"
sed -i '/\.merge(dashboard::router())/d' "$work/src/http/mod.rs"
sed -i '/^maud = /d' "$work/Cargo.toml"
rm -r "$work/src/http/dashboard" "$work/benches/dashboard.rs"
sed -i '/^\[\[bench\]\]$/{N;/name = "dashboard"/{N;d}}' "$work/Cargo.toml"
(cd "$work" && cargo build --release --quiet --bin billd)
cp "$CARGO_TARGET_DIR/release/billd" "$work/billd-without"

with=$(stat -c %s "$work/billd-with")
without=$(stat -c %s "$work/billd-without")
echo "release binary without the dashboard: $without bytes"
echo "release binary with the dashboard:    $with bytes"
echo "the dashboard adds:                   $((with - without)) bytes ($(( (with - without) / 1024 )) KiB)"
