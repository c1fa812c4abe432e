#!/bin/sh
# Installs, from Debian's packages, everything electd needs to build and test.
# Idempotent: packages already present are left alone. Needs root or sudo.
# python3-yaml and shellcheck are for tests/deploy (manifests parse, scripts are clean);
# the openssl CLI makes the throwaway certificates of the TLS tests. lintian, man-db, zsh and
# prometheus (for promtool) are for tests/deploy's deb_package (the .deb linted, the man page
# rendered, the zsh completion parsed, the alert rules and a live /metrics checked).
#
# Usage: install-deps.sh               build and test dependencies (what `make test` needs)
#        install-deps.sh --build       only what building electd needs (the Dockerfile's stage)
#        install-deps.sh --containers  also podman, buildah, runc, catatonit (the pause
#                                      process of `podman play kube`), debootstrap and
#                                      systemd-container, for `make image` and the tests of
#                                      tests/containers (all from Debian's archive, through
#                                      this host's own apt sources)
set -eu

BUILD_PKGS="build-essential cmake pkg-config libuv1-dev libcjson-dev libsqlite3-dev \
node-llhttp libssl-dev"
PKGS="$BUILD_PKGS libcriterion-dev openssl clang \
python3-yaml shellcheck lintian man-db zsh prometheus"

case "${1:-}" in
"") ;;
--build) PKGS="$BUILD_PKGS" ;;
--containers) PKGS="$PKGS podman buildah runc catatonit debootstrap systemd-container" ;;
*)
    echo "usage: install-deps.sh [--build | --containers]" >&2
    exit 2
    ;;
esac

missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done

if [ -z "$missing" ]; then
    echo "install-deps: all build dependencies are installed"
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        echo "install-deps: need root (or sudo) to install:$missing" >&2
        exit 1
    fi
fi

echo "install-deps: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing
