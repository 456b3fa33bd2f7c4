#!/usr/bin/env bash
# Runs every test billd has, on a fresh machine: the prerequisites are the Rust
# toolchain (cargo) and python3 (for localstripe, the Stripe double, which this script
# installs into .venv-localstripe/ from PyPI at a pinned version, and for the OpenAPI
# validator, installed into .venv-openapi/). The suite runs twice: on SQLite, then on a
# throwaway PostgreSQL cluster (Debian's postgresql package, installed with apt when
# missing; scripts/pg-cluster.sh), started here and removed afterwards. The browser
# tests use headless Chromium (Debian's chromium and chromium-driver packages, installed
# with apt when missing).
# Usage: scripts/test.sh [extra cargo test arguments]
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
    echo "scripts/test.sh: cargo is not installed; install the Rust toolchain (rustup) first" >&2
    exit 1
fi

# localstripe: a stateful fake Stripe API that also sends signed webhooks. The tests
# start one per test on a free port (tests/common/localstripe.rs).
LOCALSTRIPE_VERSION=1.15.10
venv=.venv-localstripe
if ! "$venv/bin/localstripe" --help >/dev/null 2>&1 \
    || [ "$(cat "$venv/.version" 2>/dev/null)" != "$LOCALSTRIPE_VERSION" ]; then
    if ! command -v python3 >/dev/null 2>&1; then
        echo "scripts/test.sh: python3 is needed to install localstripe (the Stripe double)" >&2
        exit 1
    fi
    echo "scripts/test.sh: installing localstripe $LOCALSTRIPE_VERSION into $venv/" >&2
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "localstripe==$LOCALSTRIPE_VERSION"
    echo "$LOCALSTRIPE_VERSION" >"$venv/.version"
fi
export LOCALSTRIPE="$PWD/$venv/bin/localstripe"

# The committed OpenAPI document must be valid OpenAPI 3.1 (tests/docs.rs checks it is
# the one the binary serves). The validator and its dependencies are pinned in
# scripts/openapi-validator.txt; a venv of their own, so a change to one pin list never
# reinstalls the other's venv.
requirements=scripts/openapi-validator.txt
validator_venv=.venv-openapi
if ! "$validator_venv/bin/openapi-spec-validator" --version >/dev/null 2>&1 \
    || ! cmp -s "$requirements" "$validator_venv/.requirements"; then
    echo "scripts/test.sh: installing openapi-spec-validator into $validator_venv/" >&2
    rm -rf "$validator_venv"
    python3 -m venv "$validator_venv"
    "$validator_venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
    cp "$requirements" "$validator_venv/.requirements"
fi
"$validator_venv/bin/openapi-spec-validator" --schema 3.1 docs/openapi.json

# Headless Chromium and chromedriver for the browser tests (`/docs` as a browser renders
# it: tests/docs.rs, through tests/common/browser.rs), named to them in
# BILLD_TEST_CHROMIUM and BILLD_TEST_CHROMEDRIVER (set them yourself to use others).
# Debian's packages, installed with apt-get when missing (as root). With CI set, no
# browser fails the run; without it, the browser tests are skipped with a warning.
install_browser() {
    if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        echo "scripts/test.sh: cannot install chromium (needs root and apt-get)" >&2
        return 1
    fi
    echo "scripts/test.sh: installing chromium and chromium-driver with apt-get" >&2
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        chromium chromium-driver >&2; then
        echo "scripts/test.sh: apt-get install failed; retrying after apt-get update" >&2
        DEBIAN_FRONTEND=noninteractive apt-get update >&2 || true
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
            chromium chromium-driver >&2 || return 1
    fi
}
chromium=${BILLD_TEST_CHROMIUM:-/usr/bin/chromium}
chromedriver=${BILLD_TEST_CHROMEDRIVER:-/usr/bin/chromedriver}
if { [ -x "$chromium" ] && [ -x "$chromedriver" ]; } \
    || { install_browser && [ -x "$chromium" ] && [ -x "$chromedriver" ]; }; then
    export BILLD_TEST_CHROMIUM="$chromium" BILLD_TEST_CHROMEDRIVER="$chromedriver"
elif [ -n "${CI:-}" ]; then
    echo "scripts/test.sh: no headless browser ($chromium, $chromedriver) for the browser tests" >&2
    exit 1
else
    echo "scripts/test.sh: WARNING: no chromium/chromedriver; the browser tests are skipped" >&2
    unset BILLD_TEST_CHROMIUM BILLD_TEST_CHROMEDRIVER
fi

# Unit tests, integration tests (real server on random ports, temporary databases,
# signed webhooks, a SIGKILL crash test, the Stripe API against localstripe and an HTTP
# mock) and the man-page staleness check. Benchmarks are not run here (they are
# measurements, run with `cargo bench`), but they must keep compiling.
cargo check --locked --benches --quiet
log=$(mktemp)
pg_dir=/tmp/billd-test-pg-$$
cleanup() {
    rm -f "$log"
    if [ -d "$pg_dir" ]; then scripts/pg-cluster.sh stop "$pg_dir" >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT
# No doc tests (there are none): their empty run would otherwise be the last line.
echo "scripts/test.sh: the suite on SQLite" >&2
cargo test --locked --lib --bins --tests "$@" 2>&1 | tee "$log"

# The same integration suite on PostgreSQL: every test gets a fresh database of this
# cluster (tests/common/mod.rs, BILLD_TEST_POSTGRES). With CI set, a cluster that
# cannot start fails the run; without it, the PostgreSQL half is skipped with a warning.
if pg_url=$(scripts/pg-cluster.sh start "$pg_dir"); then
    echo "scripts/test.sh: the suite on PostgreSQL ($pg_url)" >&2
    BILLD_TEST_POSTGRES="$pg_url" cargo test --locked --tests "$@" 2>&1 | tee -a "$log"
elif [ -n "${CI:-}" ]; then
    echo "scripts/test.sh: cannot start PostgreSQL for the second half of the suite" >&2
    exit 1
else
    echo "scripts/test.sh: WARNING: no PostgreSQL cluster; the PostgreSQL half was skipped" >&2
fi
# One closing line for the whole run.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed;?$/) p += $i; if ($(i+1) ~ /^failed;?$/) f += $i } }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
