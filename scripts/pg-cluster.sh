#!/usr/bin/env bash
# Starts and stops a throwaway PostgreSQL cluster for tests.
#
#   scripts/pg-cluster.sh start DIR   creates DIR, initdb's a cluster in DIR/data, starts it
#                                     on a free 127.0.0.1 port (socket in DIR), creates the
#                                     superuser role `billd`, and prints one line on stdout:
#                                     postgres://billd@127.0.0.1:PORT/postgres
#   scripts/pg-cluster.sh stop DIR    stops that cluster (immediate) and removes DIR.
#   scripts/pg-cluster.sh pause DIR   stops the server (fast), keeping DIR: a database outage.
#   scripts/pg-cluster.sh resume DIR  starts it again on the same port.
#
# Authentication is `trust` on the socket and on 127.0.0.1: for tests only.
# DIR must not exist yet. The server runs as the `postgres` user, which must be able to
# reach DIR: the parents this script creates are made 0755, and an existing parent that
# `postgres` cannot traverse (e.g. a 0700 `mktemp -d` owned by root) is an error; use a
# DIR under /tmp or chmod 755 its parent.
#
# When the PostgreSQL binaries are missing and this runs as root with apt-get, it installs
# Debian's `postgresql` package and keeps the package's default cluster stopped.
# Everything but the URL goes to stderr (DIR/log has the server's log).

set -euo pipefail

readonly PG_USER=postgres
readonly ROLE=billd

die() {
    printf 'pg-cluster.sh: %s\n' "$*" >&2
    exit 1
}

usage() {
    printf 'usage: %s start DIR | stop DIR\n' "$0" >&2
    exit 1
}

# The newest /usr/lib/postgresql/*/bin, or nothing.
find_bindir() {
    local best="" best_version=-1 dir version
    for dir in /usr/lib/postgresql/*/bin; do
        [[ -x "$dir/initdb" && -x "$dir/pg_ctl" ]] || continue
        version=${dir#/usr/lib/postgresql/}
        version=${version%%/*}
        # 9.6-style versions compare by their major part.
        version=${version%%.*}
        [[ "$version" =~ ^[0-9]+$ ]] || continue
        if ((version > best_version)); then
            best_version=$version
            best=$dir
        fi
    done
    printf '%s' "$best"
}

# Stops the cluster(s) Debian's package may have started (best effort).
stop_default_clusters() {
    if command -v pg_lsclusters >/dev/null 2>&1 && command -v pg_ctlcluster >/dev/null 2>&1; then
        local version name rest
        while read -r version name rest; do
            [[ -n "$version" && -n "$name" ]] || continue
            pg_ctlcluster "$version" "$name" stop >/dev/null 2>&1 || true
        done < <(pg_lsclusters --no-header 2>/dev/null || true)
    fi
    if command -v service >/dev/null 2>&1; then
        service postgresql stop >/dev/null 2>&1 || true
    fi
}

install_postgresql() {
    [[ "$(id -u)" -eq 0 ]] || die "PostgreSQL binaries not found in /usr/lib/postgresql/*/bin; install the 'postgresql' package (not root: cannot install it)"
    command -v apt-get >/dev/null 2>&1 || die "PostgreSQL binaries not found in /usr/lib/postgresql/*/bin and apt-get is not available"
    printf 'pg-cluster.sh: installing postgresql with apt-get\n' >&2
    # Keep the package's maintainer scripts from starting the default cluster where
    # policy-rc.d is honoured; stopped again below in any case.
    local policy=/usr/sbin/policy-rc.d created_policy=0
    if [[ ! -e "$policy" ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod 755 "$policy"
        created_policy=1
    fi
    local ok=1
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql >&2; then
        printf 'pg-cluster.sh: apt-get install failed; retrying after apt-get update\n' >&2
        DEBIAN_FRONTEND=noninteractive apt-get update >&2 || true
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql >&2 || ok=0
    fi
    if ((created_policy)); then
        rm -f "$policy"
    fi
    ((ok)) || die "apt-get install postgresql failed"
    stop_default_clusters
}

# Runs a command as the postgres user.
as_pg() {
    runuser -u "$PG_USER" -- "$@"
}

# A TCP port free on 127.0.0.1 now (the kernel's choice for port 0).
free_port() {
    if command -v python3 >/dev/null 2>&1; then
        python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
        return
    fi
    # No python3: try random ports until one refuses a connection.
    local port i
    for ((i = 0; i < 100; i++)); do
        port=$((20000 + RANDOM % 40000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            printf '%s\n' "$port"
            return
        fi
    done
    die "no free TCP port found"
}

# Makes DIR's missing parents, each 0755 so that postgres can traverse it (mkdir -p -m
# would set the mode of the last one only), and checks that postgres can reach DIR's
# parent.
make_parents() {
    local parent missing=() d
    parent=$(dirname -- "$1")
    d=$parent
    while [[ ! -e "$d" ]]; do
        missing=("$d" "${missing[@]}")
        d=$(dirname -- "$d")
    done
    for d in "${missing[@]}"; do
        mkdir -m 755 -- "$d" || die "cannot create $d"
    done
    [[ -d "$parent" ]] || die "$parent is not a directory"
    if ! as_pg test -x "$parent"; then
        die "$parent is not reachable by the '$PG_USER' user (chmod 755 it and its parents, or choose a DIR under /tmp)"
    fi
}

start() {
    local dir=$1
    [[ "$(id -u)" -eq 0 ]] || die "start must run as root (it runs initdb and the server as '$PG_USER' with runuser)"
    [[ ! -e "$dir" ]] || die "$dir already exists (stop it first, or choose another DIR)"

    local bindir
    bindir=$(find_bindir)
    if [[ -z "$bindir" ]]; then
        install_postgresql
        bindir=$(find_bindir)
        [[ -n "$bindir" ]] || die "postgresql installed, but no /usr/lib/postgresql/*/bin/initdb found"
    fi
    getent passwd "$PG_USER" >/dev/null || die "no '$PG_USER' user (is the postgresql package installed?)"

    make_parents "$dir"
    mkdir -m 700 -- "$dir" || die "cannot create $dir"
    # Made; from here on a failure stops what started and removes DIR again.
    CLEANUP_DIR=$dir
    CLEANUP_BINDIR=$bindir
    trap cleanup_failed_start EXIT
    chown "$PG_USER:" -- "$dir"

    if ! as_pg "$bindir/initdb" -D "$dir/data" -U postgres -E UTF8 --locale=C \
        --auth-local=trust --auth-host=trust >"$dir/initdb.log" 2>&1; then
        cat "$dir/initdb.log" >&2
        die "initdb failed (see above)"
    fi

    local port attempt started=0
    for attempt in 1 2 3 4 5; do
        port=$(free_port)
        if server_start "$bindir" "$dir" "$port"; then
            started=1
            break
        fi
        # Lost the port to someone else in the meantime (or another failure: the log says).
        printf 'pg-cluster.sh: start on port %s failed (attempt %s)\n' "$port" "$attempt" >&2
        as_pg "$bindir/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
    done
    if ((!started)); then
        tail -n 30 "$dir/log" >&2 || true
        die "the server did not start (the end of its log is above)"
    fi

    if ! as_pg "$bindir/psql" -X -q -h "$dir" -p "$port" -U postgres -d postgres \
        -v ON_ERROR_STOP=1 -c "CREATE ROLE $ROLE LOGIN SUPERUSER" >&2; then
        die "cannot create the role '$ROLE'"
    fi

    printf '%s\n' "$port" >"$dir/port"
    trap - EXIT
    printf 'postgres://%s@127.0.0.1:%s/postgres\n' "$ROLE" "$port"
}

# Starts the server of DIR on PORT and waits until it accepts connections.
server_start() {
    local bindir=$1 dir=$2 port=$3
    as_pg "$bindir/pg_ctl" -D "$dir/data" -l "$dir/log" -w -t 60 \
        -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=on -c max_connections=300 -c shared_buffers=128MB" \
        start >/dev/null 2>&1
}

pause() {
    local dir=$1 bindir
    [[ -f "$dir/port" ]] || die "$dir has no cluster started by this script"
    bindir=$(find_bindir)
    as_pg "$bindir/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>>"$dir/log" ||
        die "pg_ctl stop failed for $dir (see $dir/log)"
}

resume() {
    local dir=$1 bindir
    [[ -f "$dir/port" ]] || die "$dir has no cluster started by this script"
    bindir=$(find_bindir)
    server_start "$bindir" "$dir" "$(cat "$dir/port")" || die "the server of $dir did not start again (see $dir/log)"
}

# On a failed start: stop a server that may have started, remove DIR.
CLEANUP_DIR=""
CLEANUP_BINDIR=""
cleanup_failed_start() {
    local dir=$CLEANUP_DIR bindir=$CLEANUP_BINDIR
    [[ -n "$dir" ]] || return 0
    if [[ -f "$dir/data/postmaster.pid" ]]; then
        as_pg "$bindir/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
    fi
    rm -rf -- "$dir"
}

stop() {
    local dir=$1
    [[ -d "$dir" ]] || die "$dir does not exist"
    [[ -d "$dir/data" ]] || die "$dir has no cluster (no $dir/data)"
    local bindir
    bindir=$(find_bindir)
    [[ -n "$bindir" ]] || die "PostgreSQL binaries not found in /usr/lib/postgresql/*/bin"
    if [[ -f "$dir/data/postmaster.pid" ]]; then
        if ! as_pg "$bindir/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>>"$dir/log"; then
            # Not running after all (a stale pid file)? Then removing is still right.
            if as_pg "$bindir/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
                die "pg_ctl stop failed for $dir (see $dir/log); not removing it"
            fi
        fi
    fi
    rm -rf -- "$dir" || die "cannot remove $dir"
}

main() {
    [[ $# -eq 2 ]] || usage
    local cmd=$1 dir=$2
    [[ -n "$dir" ]] || usage
    # Absolute, without a trailing slash: the socket directory and the messages use it.
    [[ "$dir" == /* ]] || dir="$PWD/$dir"
    dir=${dir%/}
    [[ -n "$dir" && "$dir" != "/" ]] || die "refusing DIR '/'"
    # DIR goes unquoted into the server's command line (pg_ctl -o) and holds its socket.
    [[ "$dir" =~ ^[A-Za-z0-9_./+-]+$ ]] || die "DIR may hold only letters, digits and _ . / + - (got '$dir')"
    # A Unix socket path (DIR/.s.PGSQL.NNNNN) is limited to 107 bytes.
    ((${#dir} <= 88)) || die "DIR is too long for a Unix socket path (at most 88 characters): $dir"
    case "$cmd" in
    start) start "$dir" ;;
    stop) stop "$dir" ;;
    pause) pause "$dir" ;;
    resume) resume "$dir" ;;
    *) usage ;;
    esac
}

main "$@"
