#!/usr/bin/env bash
# Runs every test billd has, on a fresh machine: the only prerequisite is the Rust
# toolchain (cargo). Everything else the tests need is built by cargo.
# Usage: scripts/test.sh [extra cargo test arguments]
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
    echo "scripts/test.sh: cargo is not installed; install the Rust toolchain (rustup) first" >&2
    exit 1
fi

# Unit tests, integration tests (real server on random ports, temporary databases,
# signed webhooks, a SIGKILL crash test) and the man-page staleness check.
cargo test --locked --all-targets "$@"
