#!/usr/bin/env bash
# Crash cycles (issue 12, docs/reliability.md): tests/crash_cycles.rs with many cycles,
# on SQLite and on a throwaway PostgreSQL cluster (scripts/pg-cluster.sh), printing each
# backend's summary line. The README's test command runs the same test with 3 cycles.
#
#   scripts/crash-cycles.sh [CYCLES]    (default 20)
#
# BILLD_TEST_SEED=N repeats a run's random choices (each run prints its seed).
set -euo pipefail
cd "$(dirname "$0")/.."

cycles=${1:-20}
pg_dir=$(mktemp -u /tmp/billd-cycles-pg.XXXXXX)
trap 'scripts/pg-cluster.sh stop "$pg_dir" >/dev/null 2>&1 || true' EXIT

run() {
    BILLD_CRASH_CYCLES="$cycles" cargo test --locked --quiet --test crash_cycles -- --nocapture 2>&1 |
        grep -E '^(seed|cycle|crash cycles)|panicked|test result'
}

echo "== SQLite, $cycles cycles"
run
pg_url=$(scripts/pg-cluster.sh start "$pg_dir")
echo "== PostgreSQL, $cycles cycles"
BILLD_TEST_POSTGRES="$pg_url" run
