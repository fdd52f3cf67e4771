#!/usr/bin/env sh
# What `make run` and `make test` need from the machine besides Python and Node: PostgreSQL's
# server binaries (the throwaway and local clusters), Chromium (the page's browser tests) and
# curl (the docs' examples run in the tests).
# As root on a Debian-like machine, what is missing is installed with apt-get, as CI does;
# otherwise one line says what to install, before anything starts.
#
#   scripts/prerequisites.sh [postgresql] [chromium] [curl]
set -eu

CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"

has() {
    case "$1" in
        postgresql) command -v pg_ctl >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 ;;
        chromium) [ -x "$CHROMIUM" ] ;;
        curl) command -v curl >/dev/null 2>&1 ;;
        *) echo "prerequisites.sh: unknown prerequisite '$1'" >&2; exit 2 ;;
    esac
}

why() {
    case "$1" in
        postgresql) echo "PostgreSQL's server binaries (pg_ctl)" ;;
        chromium) echo "Chromium ($CHROMIUM) for the page's browser tests" ;;
        curl) echo "curl for the docs' examples" ;;
    esac
}

for need in "$@"; do
    has "$need" && continue
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "Installing $(why "$need") with apt-get..."
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$need" >/dev/null
        has "$need" || { echo "apt-get installed $need, but $(why "$need") is still missing" >&2; exit 1; }
    else
        echo "Missing $(why "$need"): install it (Debian: sudo apt-get install $need), or run this as root to have it installed." >&2
        exit 1
    fi
done
