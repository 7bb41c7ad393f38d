#!/usr/bin/env bash
# Install everything roamdisk needs to build, run, test and benchmark, from
# Debian 12 packages. Idempotent: when every package is already installed it
# only checks (a few dpkg-query calls) and exits.
#
# Usage: tools/scripts/install-deps.sh          (as root; non-root only checks)
# Env:   ROAMDISK_DEPS_LOG=FILE  where apt output goes
#                                (default /tmp/roamdisk-install-deps.log)
set -euo pipefail

PACKAGES=(
    # build
    build-essential gcc make meson ninja-build pkg-config
    libfuse3-dev liblmdb-dev libxxhash-dev libzmq3-dev cppzmq-dev
    libcli11-dev catch2
    # run
    fuse3 kmod
    # tests, demo, benchmark, pjdfstest
    lmdb-utils attr acl sqlite3 git tar coreutils findutils
    autoconf automake libtool perl
    iproute2 util-linux psmisc procps python3 e2fsprogs
    # xfstests (tools/scripts/xfstests.sh): its build and the tools its tests
    # run; xfsprogs also for the power-loss test on XFS
    xfslibs-dev xfsprogs uuid-dev libtool-bin libacl1-dev libattr1-dev libaio-dev
    liburing-dev libcap-dev gawk fio bc
)

LOG=${ROAMDISK_DEPS_LOG:-/tmp/roamdisk-install-deps.log}

die() {
    echo "install-deps: error: $*" >&2
    exit 1
}

# Print the packages from PACKAGES that are not fully installed.
missing_packages() {
    local installed
    installed=$(dpkg-query -W -f='${Package} ${db:Status-Abbrev}\n' "${PACKAGES[@]}" 2>/dev/null |
        awk '$2 == "ii" { print $1 }') || true
    local p
    for p in "${PACKAGES[@]}"; do
        grep -qxF -- "$p" <<<"$installed" || echo "$p"
    done
}

install_packages() {
    local -a missing=("$@")
    [[ $EUID -eq 0 ]] ||
        die "missing packages (${missing[*]}); run as root: sudo $0"
    command -v apt-get >/dev/null || die "apt-get not found: this script expects Debian 12"
    {
        echo "=== $(date -Is) installing: ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -q &&
            apt-get install -y -q --no-install-recommends "${missing[@]}"
    } >>"$LOG" 2>&1 || {
        tail -n 20 "$LOG" >&2
        die "apt-get failed (full log: $LOG)"
    }
    local still
    still=$(missing_packages)
    [[ -z "$still" ]] || die "still missing after apt-get: ${still//$'\n'/ } (log: $LOG)"
    echo "install-deps: installed ${#missing[@]} package(s): ${missing[*]} (log: $LOG)"
}

check_fuse() {
    modprobe fuse 2>/dev/null || true
    if [[ ! -c /dev/fuse ]]; then
        die "/dev/fuse does not exist: load the fuse kernel module (modprobe fuse), or, in a container, pass the device through (e.g. --device /dev/fuse --cap-add SYS_ADMIN)"
    fi
}

main() {
    local -a missing
    mapfile -t missing < <(missing_packages)
    if ((${#missing[@]} == 0)); then
        echo "install-deps: all ${#PACKAGES[@]} packages already installed"
    else
        install_packages "${missing[@]}"
    fi
    check_fuse
}

main "$@"
