#!/bin/sh
# deploy/docker/debian-root.sh — a Debian 12 root file system made from Debian's own packages
# (debootstrap --variant=minbase bookworm), for hosts that cannot pull debian:12 from an image
# registry. Used by `make image` (imported as the base image) and by the systemd test (booted
# with systemd-nspawn). The root is made once and cached; later calls print its path at once.
#
# Usage: debian-root.sh [--systemd]
#   prints the root's directory: $ELECTD_ROOT_CACHE/bookworm-minbase (or bookworm-systemd,
#   which adds systemd, systemd-sysv and dbus so that `systemd-nspawn --boot` can boot it,
#   and libcjson1 and procps, what the electd package depends on beyond the base system).
# Env:   ELECTD_ROOT_CACHE  the cache directory (default /var/cache/electd-test)
#        DEBIAN_MIRROR      the archive to use; by default the one this host's apt already uses
#                           for bookworm (read from /etc/apt/sources.list*), so no other host
#                           is contacted.
# Needs root and debootstrap (deploy/install-deps.sh --containers).
set -eu

flavour=minbase
include=""
if [ "${1:-}" = "--systemd" ]; then
    flavour=systemd
    include="--include=systemd,systemd-sysv,dbus,libcjson1,procps"
elif [ -n "${1:-}" ]; then
    echo "usage: debian-root.sh [--systemd]" >&2
    exit 2
fi

cache="${ELECTD_ROOT_CACHE:-/var/cache/electd-test}"
root="$cache/bookworm-$flavour"
if [ -f "$root/.electd-root-complete" ]; then
    echo "$root"
    exit 0
fi

# The bookworm archive of this host's apt sources: one-line "deb [opts] URI bookworm ..."
# entries and deb822 stanzas (URIs: / Suites:) alike.
host_mirror()
{
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -r "$f" ] || continue
        awk '$1 == "deb" { i = 2; if ($2 ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
                           if ($(i + 1) == "bookworm") { print $i; exit } }' "$f"
    done
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -r "$f" ] || continue
        awk 'function flush() { if (suites ~ /(^| )bookworm( |$)/ && uri != "") print uri;
                                uri = ""; suites = "" }
             /^[ \t]*$/ { flush(); next }
             /^URIs:/ { uri = $2 }
             /^Suites:/ { $1 = ""; suites = $0 " " }
             END { flush() }' "$f"
    done
}

mirror="${DEBIAN_MIRROR:-$(host_mirror | head -n 1)}"
if [ -z "$mirror" ]; then
    echo "debian-root.sh: no bookworm archive in /etc/apt/sources.list*; set DEBIAN_MIRROR" >&2
    exit 1
fi
command -v debootstrap >/dev/null 2>&1 || {
    echo "debian-root.sh: debootstrap is missing (sh deploy/install-deps.sh --containers)" >&2
    exit 1
}

mkdir -p "$cache"
rm -rf "$root.tmp"
echo "debian-root.sh: debootstrap --variant=minbase bookworm from $mirror into $root" >&2
# shellcheck disable=SC2086
debootstrap --variant=minbase $include bookworm "$root.tmp" "$mirror" >&2
# What an image does not need: the downloaded packages, package lists, caches, documentation.
rm -rf "$root.tmp"/var/cache/apt/archives/*.deb "$root.tmp"/var/lib/apt/lists/* \
    "$root.tmp"/var/cache/apt/*.bin \
    "$root.tmp"/usr/share/doc/* "$root.tmp"/usr/share/man/* "$root.tmp"/usr/share/info/*
touch "$root.tmp/.electd-root-complete"
rm -rf "$root"
mv "$root.tmp" "$root"
echo "$root"
