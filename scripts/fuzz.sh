#!/usr/bin/env bash
# Fuzzes billd's parsers of outside input with cargo-fuzz (libFuzzer), each target for
# a set time, and prints per target the executions and whether it crashed. The targets
# live in fuzz/ (a crate and workspace of its own: the main build never compiles it):
#   signature_header  the Stripe-Signature header and raw body (billd::signature)
#   event_envelope    a webhook body's envelope, as the webhook and the worker read it
#   handlers          each handled type's lenient parse of data.object, and its handler
#                     on an empty SQLite mirror (rolled back after each input)
#   config            the TOML config: parse, validation, the secrets it names
# Seed corpora are made from tests/fixtures/ (and ../shared/fixtures/stripe/events/
# when present) into fuzz/corpus/<target>/, which the runs then grow (not committed).
# A crash leaves its input in fuzz/artifacts/<target>/ and makes this script exit 1;
# `cargo +nightly fuzz run <target> <file>` replays it.
# Needs the nightly toolchain and python3 (for the seeds); installs cargo-fuzz when
# missing. Figures of the last run: docs/reliability.md.
# Usage: scripts/fuzz.sh [SECONDS_PER_TARGET (default 60)] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-60}
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || [ "$seconds" -eq 0 ]; then
    echo "scripts/fuzz.sh: SECONDS_PER_TARGET must be a positive whole number, got '$seconds'" >&2
    exit 2
fi
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(signature_header event_envelope handlers config)
fi

if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "scripts/fuzz.sh: needs the nightly toolchain (rustup toolchain install nightly)" >&2
    exit 1
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "scripts/fuzz.sh: installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked
fi
if ! command -v python3 >/dev/null 2>&1; then
    echo "scripts/fuzz.sh: python3 is needed to make the seed corpora" >&2
    exit 1
fi

# Seeds, each file named by its content's SHA-1 as libFuzzer names what it adds.
python3 - <<'EOF'
import glob, hashlib, json, os

def seed(target, data):
    if isinstance(data, str):
        data = data.encode()
    d = os.path.join("fuzz", "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, hashlib.sha1(data).hexdigest()), "wb") as f:
        f.write(data)

events = []
for pattern in ["tests/fixtures/events/*.json", "tests/fixtures/events/variants/*.json",
                "../shared/fixtures/stripe/events/*.json",
                "../shared/fixtures/stripe/events/variants/*.json"]:
    events.extend(sorted(glob.glob(pattern)))
for path in events:
    text = open(path, encoding="utf-8").read()
    seed("event_envelope", text)
    try:
        event = json.loads(text)
        object_text = json.dumps(event["data"]["object"], ensure_ascii=False)
        seed("handlers", event["type"] + "\n" + object_text)
    except (ValueError, KeyError, TypeError):
        pass

vectors = json.load(open("tests/fixtures/signatures.json", encoding="utf-8"))["cases"]
for case in vectors:
    seed("signature_header", case["header"] + "\n" + case["payload"])

for path in ["config/billd.toml", "config/billd.example.toml",
             "config/try-localstripe.toml"]:
    if os.path.exists(path):
        seed("config", open(path, encoding="utf-8").read())
EOF

# Build once (debug assertions and overflow checks on, AddressSanitizer), then run.
# (`run` below passes the same flags, so it finds the build up to date.)
nice -n 10 cargo +nightly fuzz build --codegen-units 16 >&2

summary=()
crashed=0
for target in "${targets[@]}"; do
    log=$(mktemp)
    echo "scripts/fuzz.sh: $target for ${seconds}s" >&2
    status=0
    nice -n 10 cargo +nightly fuzz run --codegen-units 16 "$target" "fuzz/corpus/$target" -- \
        -max_total_time="$seconds" -timeout=25 -print_final_stats=1 >"$log" 2>&1 || status=$?
    stat() { awk -v k="stat::$1:" '$1 == k { v = $2 } END { print v }' "$log"; }
    runs=$(stat number_of_executed_units)
    per_sec=$(stat average_exec_per_sec)
    rss=$(stat peak_rss_mb)
    corpus=$(find "fuzz/corpus/$target" -type f | wc -l)
    if [ "$status" -eq 0 ]; then
        verdict="no crash"
    else
        verdict="CRASHED (exit $status; input in fuzz/artifacts/$target/)"
        crashed=1
        grep -E "panicked at|ERROR: |SUMMARY: " "$log" | head -n 5 >&2 || true
    fi
    summary+=("$(printf '%-17s %10s executions in %ss (%s/s), peak RSS %s MB, corpus %s inputs: %s' \
        "$target" "${runs:-?}" "$seconds" "${per_sec:-?}" "${rss:-?}" "$corpus" "$verdict")")
    rm -f "$log"
done
printf '%s\n' "${summary[@]}"
exit "$crashed"
