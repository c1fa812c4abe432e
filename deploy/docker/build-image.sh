#!/bin/sh
# deploy/docker/build-image.sh — `make image`: builds both targets of deploy/docker/Dockerfile
# with podman and prints their sizes next to the binary's.
#   electd:VERSION          the `runtime` target (what deploy/k8s runs)
#   electd:VERSION-minimal  the `minimal` target (FROM scratch)
# Base images: BUILD_BASE / RUNTIME_BASE when set; else debian:12 and debian:12-slim when
# present or pullable; else a local Debian 12 base, electd-base:12, imported from the root
# that deploy/docker/debian-root.sh makes (and caches) with debootstrap.
# Env: PODMAN_FLAGS  global podman options a constrained host may need, e.g.
#                    "--runtime runc --cgroup-manager cgroupfs" (docs/getting-started.md)
#      BUILD_FLAGS   options of `podman build`, e.g. "--ulimit nofile=4096:4096 --ulimit
#                    nproc=4096:4096" where the default limits cannot be set
#      IMAGE         the image name (default electd)
# Run from the repository root, as root (podman's rootful storage).
set -eu

version=$(sed -n 's/^project(electd VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)
image="${IMAGE:-electd}"
# shellcheck disable=SC2086
pm() { podman ${PODMAN_FLAGS:-} "$@"; }

command -v podman >/dev/null 2>&1 || {
    echo "image: podman is missing (sh deploy/install-deps.sh --containers)" >&2
    exit 1
}

have_or_pull() { pm image exists "$1" || timeout 120 podman pull -q "$1" >/dev/null 2>&1; }

if [ -z "${BUILD_BASE:-}" ]; then
    if have_or_pull debian:12; then
        BUILD_BASE=debian:12
        RUNTIME_BASE="${RUNTIME_BASE:-debian:12-slim}"
        have_or_pull "$RUNTIME_BASE" || RUNTIME_BASE=debian:12
    else
        echo "image: no debian:12 image can be pulled; using a local Debian 12 base" >&2
        if ! pm image exists electd-base:12; then
            root=$(sh deploy/docker/debian-root.sh)
            tar -C "$root" --exclude ./.electd-root-complete -c . |
                pm import --change 'CMD ["/bin/bash"]' - electd-base:12 >/dev/null
        fi
        BUILD_BASE=electd-base:12
    fi
fi
RUNTIME_BASE="${RUNTIME_BASE:-$BUILD_BASE}"
echo "image: build base $BUILD_BASE, runtime base $RUNTIME_BASE"

# Host networking for the build: the stages' apt-get reaches the archive the base's own
# sources name, as the host itself would. The ignore file is named because podman reads only
# .dockerignore/.containerignore of the context by itself. The docker format keeps the
# HEALTHCHECK (OCI images have no field for it).
build() {
    # shellcheck disable=SC2086
    pm build --format docker --network host ${BUILD_FLAGS:-} -f deploy/docker/Dockerfile \
        --ignorefile deploy/docker/Dockerfile.dockerignore \
        --build-arg "BUILD_BASE=$BUILD_BASE" --build-arg "RUNTIME_BASE=$RUNTIME_BASE" "$@" .
}
build --target minimal -t "$image:$version-minimal"
build --target runtime -t "$image:$version"

# The binary's size, for comparison with the images'.
ctr=$(pm create "$image:$version-minimal")
tmp=$(mktemp -d)
pm cp "$ctr:/usr/bin/electd" "$tmp/electd" >/dev/null
pm rm "$ctr" >/dev/null
bin_bytes=$(stat -c %s "$tmp/electd")
rm -rf "$tmp"
echo "image: sizes (electd binary: $((bin_bytes / 1024)) KiB)"
for tag in "$version-minimal" "$version"; do
    bytes=$(pm image inspect --format '{{.Size}}' "$image:$tag")
    echo "  $image:$tag  $((bytes / 1024)) KiB"
done
