#!/usr/bin/env bash
# Make PostgreSQL available to the tests. Idempotent; never fails the build: when it cannot be
# set up here, the PostgreSQL tests are skipped with that reason (or fail under
# MLTRAINER_REQUIRE_EXTRAS=1, as CI runs them).
#   Installs Debian's postgresql package when no server binaries are found. No cluster is
#   started here and no system service is enabled: the tests start a throwaway cluster of their
#   own (tests/sql_fixtures.py: initdb + pg_ctl on a Unix socket in a temporary folder and on
#   127.0.0.1 at a free port, as the 'postgres' user when run as root) and stop it at the end.
set -u
SUDO=""
[ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null && SUDO="sudo -n"

say() { echo "[postgres-setup] $*"; }

bindir() {
    local dir
    dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    if [ -n "$dir" ] && [ -x "$dir/initdb" ]; then echo "$dir"; return 0; fi
    command -v initdb >/dev/null && dirname "$(command -v initdb)"
}

if [ -z "$(bindir)" ]; then
    if ! command -v apt-get >/dev/null; then
        say "no PostgreSQL server and no apt-get to install it; the PostgreSQL tests will be skipped"
        exit 0
    fi
    say "installing Debian's postgresql package"
    if [ ! -f /tmp/.mltrainer-apt-updated ]; then
        $SUDO apt-get update -qq >/dev/null 2>&1 && touch /tmp/.mltrainer-apt-updated
    fi
    # A policy-rc.d that says no, for the install only: the package must not start the
    # system's own cluster, which the tests do not use.
    policy=""
    if [ "$(id -u)" -eq 0 ] && [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
        policy=/usr/sbin/policy-rc.d
    fi
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
        postgresql >/dev/null 2>&1 || say "apt-get install postgresql failed"
    [ -n "$policy" ] && rm -f "$policy"
fi

dir=$(bindir)
if [ -z "$dir" ]; then
    say "PostgreSQL is not available; the PostgreSQL tests will be skipped"
    exit 0
fi
say "server binaries in $dir: $("$dir/postgres" --version)"
if [ "$(id -u)" -eq 0 ] && ! id postgres >/dev/null 2>&1; then
    say "running as root without a 'postgres' user: initdb refuses root, the tests will be skipped"
fi
exit 0
