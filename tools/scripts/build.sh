#!/usr/bin/env bash
# Configure (or reconfigure) and build roamdisk with meson + ninja.
#
# Usage: tools/scripts/build.sh [BUILD_DIR] [extra meson setup args...]
#   BUILD_DIR defaults to "build" (relative to the repository root).
#   e.g. tools/scripts/build.sh build-asan -Db_sanitize=address,undefined -Db_lundef=false
set -euo pipefail

die() {
    echo "build: error: $*" >&2
    exit 1
}

main() {
    local root
    root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
    cd "$root"

    local build_dir=build
    if (($# > 0)) && [[ "$1" != -* ]]; then
        build_dir=$1
        shift
    fi

    command -v meson >/dev/null || die "meson not found (run tools/scripts/install-deps.sh as root)"
    command -v ninja >/dev/null || die "ninja not found (run tools/scripts/install-deps.sh as root)"

    if [[ -f "$build_dir/meson-private/coredata.dat" ]]; then
        if (($# > 0)); then
            meson setup --reconfigure "$build_dir" "$@" || die "meson reconfigure of $build_dir failed"
        fi
        # Without new options, ninja regenerates the build files by itself
        # whenever a meson.build changed.
    else
        meson setup "$build_dir" "$@" ||
            die "meson setup of $build_dir failed (if it is a broken build directory, delete it and retry)"
    fi
    ninja -C "$build_dir" || die "ninja -C $build_dir failed"
}

main "$@"
